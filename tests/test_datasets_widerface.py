"""benchmark.datasets.widerface: the official GT files read, written and read back, layouts, bad input."""
import numpy as np
import pytest
import scipy.io

from benchmark.datasets import widerface as D
from benchmark.errors import InputError


def small_gt():
    boxes = [np.array([[1, 2, 3, 4], [10, 20, 30, 40]], np.int32), np.zeros((1, 4), np.int32),
             np.array([[5, 5, 8, 9]], np.int32), np.zeros((0, 4), np.int32)]
    attrs = [np.arange(len(b) * 6, dtype=np.uint8).reshape(-1, 6) % 3 * b[:, :1].astype(bool) for b in boxes]
    keep = {"easy": [np.array([1]), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)],
            "medium": [np.array([0, 1]), np.zeros(0, np.int64), np.array([0]), np.zeros(0, np.int64)],
            "hard": [np.array([0, 1]), np.zeros(0, np.int64), np.array([0]), np.zeros(0, np.int64)]}
    ids = ["0--Parade/p_1", "0--Parade/p_2", "1--Handshaking/h_1", "1--Handshaking/h_2"]
    return D.WiderFaceGT(ids, boxes, attrs, keep)


def assert_same(a, b, keep=True):
    assert a.image_ids == b.image_ids
    for x, y in zip(a.boxes, b.boxes):
        assert x.dtype == y.dtype == np.int32 and np.array_equal(x, y)
    for x, y in zip(a.attributes, b.attributes):
        assert np.array_equal(x, y)
    if keep:
        assert set(a.keep) == set(b.keep) == set(D.SETTINGS)
        for s in D.SETTINGS:
            assert all(np.array_equal(x, y) for x, y in zip(a.keep[s], b.keep[s]))


def test_bbx_txt_round_trip(tmp_path):
    gt = small_gt()
    D.write_bbx_gt(gt, tmp_path / "gt.txt")
    text = (tmp_path / "gt.txt").read_text()
    assert text.startswith("0--Parade/p_1.jpg\n2\n1 2 3 4 0 1 2 0 1 2 \n")
    assert "0--Parade/p_2.jpg\n1\n0 0 0 0 0 0 0 0 0 0 \n" in text  # val-style face-less image
    assert "1--Handshaking/h_2.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n" in text  # train-style
    assert_same(D.read_bbx_gt(tmp_path / "gt.txt"), gt, keep=False)


def test_mat_round_trip_official_structure(tmp_path):
    gt = small_gt()
    D.write_gt_mat(gt, tmp_path)
    back = D.read_gt_mat(tmp_path)
    gt.boxes[3] = np.zeros((1, 4), np.int32)  # a face-less image gets the official all-zero row
    gt.attributes[3] = np.zeros((1, 6), np.uint8)
    assert_same(back, gt)
    # the access pattern of the official Python port (get_gt_boxes / evaluation)
    mat = scipy.io.loadmat(str(tmp_path / "wider_hard_val.mat"))
    assert str(mat["event_list"][1][0][0]) == "1--Handshaking"
    assert str(mat["file_list"][1][0][0][0][0]) == "h_1"
    assert mat["face_bbx_list"][0][0][0][0].tolist() == [[1, 2, 3, 4], [10, 20, 30, 40]]
    assert mat["gt_list"][0][0][0][0].ravel().tolist() == [1, 2]
    assert mat["gt_list"][0][0][1][0].size == 0


def test_real_gt_files(shared_data):
    root = shared_data / "widerface"
    gt = D.read_gt_mat(root)
    assert len(gt) == 3226 and sum(len(b) for b in gt.boxes) == 39708
    assert [gt.num_faces(s) for s in D.SETTINGS] == [7211, 13319, 31958]
    assert len({i.split("/")[0] for i in gt.image_ids}) == 61
    txt = D.read_bbx_gt(root / "wider_face_val_bbx_gt.txt")
    order = {i: k for k, i in enumerate(txt.image_ids)}
    for k, image_id in enumerate(gt.image_ids):
        assert np.array_equal(gt.boxes[k], txt.boxes[order[image_id]])
        assert np.array_equal(gt.attributes[k], txt.attributes[order[image_id]])


def test_real_gt_writers_reproduce_official_files(shared_data, tmp_path):
    root = shared_data / "widerface"
    gt = D.read_gt_mat(root)
    D.write_gt_mat(gt, tmp_path)
    assert_same(D.read_gt_mat(tmp_path), gt)
    txt = D.read_bbx_gt(root / "wider_face_val_bbx_gt.txt")
    D.write_bbx_gt(txt, tmp_path / "bbx.txt")
    assert (tmp_path / "bbx.txt").read_bytes() == (root / "wider_face_val_bbx_gt.txt").read_bytes()


def test_layouts_and_images_on_disk(tmp_path, shared_data):
    official = tmp_path / "official"
    D.write_gt_mat(small_gt(), official / "eval_tools" / "ground_truth")
    (official / "WIDER_val" / "images" / "0--Parade").mkdir(parents=True)
    (official / "WIDER_val" / "images" / "0--Parade" / "p_1.jpg").write_bytes(b"")
    layout = D.locate(official)
    assert layout.images_dir == official / "WIDER_val" / "images"
    assert layout.gt_dir == official / "eval_tools" / "ground_truth" and layout.bbx_gt is None
    assert D.images_on_disk(layout.images_dir, small_gt().image_ids) == ["0--Parade/p_1"]
    flat = D.locate(shared_data / "widerface")
    assert flat.gt_dir == shared_data / "widerface" and flat.bbx_gt.name == D.BBX_TXT
    gt = D.read_gt_mat(flat.gt_dir)
    assert len(D.images_on_disk(flat.images_dir, gt.image_ids)) == 297
    with pytest.raises(InputError, match="not a WIDER FACE folder"):
        D.locate(tmp_path)


def test_subset_keeps_order_and_refuses_unknown_ids():
    gt = small_gt()
    sub = gt.subset(["1--Handshaking/h_1", "0--Parade/p_1"])
    assert sub.image_ids == ["0--Parade/p_1", "1--Handshaking/h_1"] and sub.num_faces("medium") == 3
    with pytest.raises(InputError, match="not in the ground truth"):
        gt.subset(["0--Parade/p_9"])


@pytest.mark.parametrize("text, line, what", [
    ("0--Parade/a.jpg\nx\n", 2, "expected the face count"),
    ("0--Parade/a.jpg\n1\n1 2 3 4 0 0 0 0 0\n", 3, "expected 10 integers"),
    ("0--Parade/a.jpg\n1\n1 2 3.5 4 0 0 0 0 0 0\n", 3, "expected 10 integers"),
    ("0--Parade/a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n", 4, "declares 2 faces"),
    ("0--Parade/a.jpg\n1\n1 2 3 4 0 0 0 0 0 0\nnot_an_image\n", 4, "expected an image path"),
    ("../etc/a.jpg\n0\n", 1, "unsafe"),
    ("/abs/a.jpg\n0\n", 1, "unsafe"),
    ("0--Parade/../../a.jpg\n0\n", 1, "unsafe"),
])
def test_malformed_bbx_txt_names_file_and_line(tmp_path, text, line, what):
    path = tmp_path / "gt.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=what) as e:
        D.read_bbx_gt(path)
    assert f"{path}:{line}:" in str(e.value) and "\n" not in str(e.value)


def test_train_style_count_zero_without_placeholder(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("0--Parade/a.jpg\n0\n0--Parade/b.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n")
    gt = D.read_bbx_gt(path)
    assert gt.image_ids == ["0--Parade/a", "0--Parade/b"] and [len(b) for b in gt.boxes] == [0, 1]


def test_bad_mat_files(tmp_path):
    with pytest.raises(InputError, match="missing"):
        D.read_gt_mat(tmp_path)
    (tmp_path / D.GT_MAT).write_bytes(b"not a mat file")
    with pytest.raises(InputError, match="not a readable MATLAB file"):
        D.read_gt_mat(tmp_path)
    D.write_gt_mat(small_gt(), tmp_path)
    (tmp_path / "wider_easy_val.mat").unlink()
    with pytest.raises(InputError, match="wider_easy_val.mat: missing"):
        D.read_gt_mat(tmp_path)
    (tmp_path / "flat").mkdir()
    scipy.io.savemat(str(tmp_path / "flat" / D.GT_MAT), {k: np.zeros((2, 1)) for k in
                                                          ("event_list", "file_list", "face_bbx_list")})
    with pytest.raises(InputError, match="not in the official cell-array structure"):
        D.read_gt_mat(tmp_path / "flat")
    gt = small_gt()
    gt.image_ids[0] = "0--Parade/.."
    with pytest.raises(InputError, match="unsafe"):
        D.write_gt_mat(gt, tmp_path / "x")


def test_malformed_mat_entries_are_all_named_and_can_be_skipped(tmp_path):
    D.write_gt_mat(small_gt(), tmp_path)
    mat = scipy.io.loadmat(str(tmp_path / D.GT_MAT))
    mat["file_list"][0, 0][1, 0] = np.array([".."])  # 0--Parade/.. would leave the dataset
    mat["face_bbx_list"][1, 0][0, 0] = np.array([[5, 5, 8]], np.int32)  # h_1: three numbers
    scipy.io.savemat(str(tmp_path / D.GT_MAT), {k: v for k, v in mat.items() if not k.startswith("__")})
    hard = scipy.io.loadmat(str(tmp_path / "wider_hard_val.mat"))
    hard["gt_list"][0, 0][0, 0] = np.array([[3.0]])  # p_1 has two faces
    scipy.io.savemat(str(tmp_path / "wider_hard_val.mat"), {k: v for k, v in hard.items() if not k.startswith("__")})
    gt, problems = D.read_gt_entries(tmp_path)
    assert gt.image_ids == ["1--Handshaking/h_2"] and len(gt.keep["hard"]) == 1
    assert problems == [f"{tmp_path / 'wider_hard_val.mat'}: gt_list of 0--Parade/p_1 is outside 1..2",
                        f"{tmp_path / D.GT_MAT}: event 1, file 2: unsafe or malformed image path '0--Parade/..' "
                        "(expected 'event/name')",
                        f"{tmp_path / D.GT_MAT}: event 2, file 1 (1--Handshaking/h_1): face boxes of shape (1, 3), "
                        "expected N x 4"]
    with pytest.raises(InputError, match=r"^3 of 4 ground-truth entries are unusable:\n") as e:
        D.read_gt_mat(tmp_path)
    assert str(e.value).splitlines()[1:] == [f"  {p}" for p in problems]
