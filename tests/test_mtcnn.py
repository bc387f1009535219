"""models/mtcnn.py: facenet-pytorch's weight files load strictly, bad ones are one-line errors, the pipeline's steps
give known answers, and on real WIDER images the detections equal facenet-pytorch's own MTCNN.detect."""
import importlib.util
import shutil

import numpy as np
import pytest
import torch

from benchmark.cli import main
from benchmark.datasets import synth_faces as S
from benchmark.errors import InputError
from benchmark.images import read_image
from benchmark.tasks import tinyface
from models import mtcnn as M
from models.weights import read_state_dict, sha256_of

# Three of the smallest real WIDER val images of ../shared (1024 px wide, 3, 35 and 22 faces at min_face_size 20).
REAL_IMAGES = ["13--Interview/13_Interview_Interview_2_People_Visible_13_254.jpg",
               "0--Parade/0_Parade_marchingband_1_653.jpg", "0--Parade/0_Parade_Parade_0_664.jpg"]


@pytest.fixture(scope="module")
def weights_dir():
    if importlib.util.find_spec("facenet_pytorch") is None:
        pytest.skip("facenet-pytorch is not installed (pip install --no-deps facenet-pytorch): its weight files are "
                    "MTCNN's")
    return M.facenet_weights_dir()


@pytest.fixture(scope="module")
def facenet_mtcnn():
    """facenet-pytorch's own MTCNN class (its package pins an old torch, so importing it may fail)."""
    try:
        from facenet_pytorch import MTCNN
    except Exception as exc:  # any import failure of the reference means: no parity check possible here
        pytest.skip(f"facenet_pytorch cannot be imported ({type(exc).__name__}: {exc}), so there is no reference")
    return MTCNN


def test_shipped_files_have_exactly_our_keys_and_shapes(weights_dir):
    for name, net in zip(M.NETS, (M.PNet(), M.RNet(), M.ONet())):
        state, _ = read_state_dict(weights_dir / f"{name}.pt")
        assert {k: tuple(v.shape) for k, v in state.items()} == {k: tuple(v.shape) for k, v in net.state_dict().items()}
    nets = M.load_mtcnn()
    assert nets.files == {n: weights_dir / f"{n}.pt" for n in M.NETS}
    assert sum(p.numel() for net in (nets.pnet, nets.rnet, nets.onet) for p in net.parameters()) == 6_632 + 100_178 \
        + 389_040
    assert torch.equal(nets.onet.dense6_1.weight, read_state_dict(weights_dir / "onet.pt")[0]["dense6_1.weight"])


def test_wrong_or_missing_weight_files_are_one_line_errors(weights_dir, tmp_path, monkeypatch):
    for name in M.NETS:
        shutil.copy(weights_dir / f"{name}.pt", tmp_path / f"{name}.pt")
    shutil.copy(weights_dir / "rnet.pt", tmp_path / "pnet.pt")
    with pytest.raises(InputError) as err:
        M.load_mtcnn(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'pnet.pt'}: checkpoint does not fit PNet; ")
    assert len(str(err.value).splitlines()) == 1
    shutil.copy(weights_dir / "pnet.pt", tmp_path / "pnet.pt")
    (tmp_path / "onet.pt").write_bytes(b"\x00not a checkpoint" * 8)
    with pytest.raises(InputError, match=f"^{tmp_path / 'onet.pt'}: not a loadable PyTorch checkpoint"):
        M.load_mtcnn(tmp_path)
    (tmp_path / "rnet.pt").unlink()
    with pytest.raises(InputError, match=f"^{tmp_path / 'rnet.pt'}: checkpoint file not found"):
        M.load_mtcnn(tmp_path)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match="pip install --no-deps facenet-pytorch"):
        M.mtcnn_detector()


def test_pyramid_scales():
    # shorter side 100 px, faces from 20 px: 12/20 = 0.6, then x0.709 while the shorter side stays >= 12 px
    assert M.pyramid(100, 200, 20) == pytest.approx([0.6 * 0.709 ** k for k in range(5)])
    assert M.pyramid(11, 500, 12) == []


def test_proposal_of_one_cell_and_the_box_steps():
    probs = torch.zeros(3, 4)
    probs[1, 2] = 0.9  # cell x=2, y=1: the 12 px window at (4, 2) in the scaled image
    reg = torch.arange(4.0).reshape(4, 1, 1).expand(4, 3, 4) / 10
    boxes = M.proposals(reg, probs, 0.5, 0.6)
    assert boxes.tolist() == [pytest.approx([10, 6, 32, 28, 0.9, 0.0, 0.1, 0.2, 0.3])]  # floor((2c+1)/s), (2c+12)/s
    square = M.square(torch.tensor([[0.0, 0.0, 10.0, 4.0, 1.0]]))
    assert square.tolist() == [[0.0, -3.0, 10.0, 7.0, 1.0]]
    moved = M.regress(torch.tensor([[0.0, 0.0, 9.0, 9.0, 1.0]]), torch.tensor([[0.1, -0.2, 0.0, 0.5]]))
    assert moved.tolist() == [pytest.approx([1.0, -2.0, 9.0, 14.0, 1.0])]  # offsets x (side + 1)


def test_min_nms_measures_overlap_by_the_smaller_box():
    boxes = np.array([[0, 0, 99, 99], [10, 10, 29, 29], [90, 90, 139, 139], [200, 200, 209, 209]], np.float32)
    scores = np.array([0.9, 0.8, 0.95, 0.7], np.float32)
    # the small box lies inside the big one (overlap 1 by the smaller area, 0.04 by IoU); the third box overlaps
    # the first by 10x10 px out of its 50x50 (0.04), the fourth nothing
    assert M.nms_min(boxes, scores, 0.7).tolist() == [2, 0, 3]
    assert M.nms_min(boxes[:0], scores[:0], 0.7).tolist() == []


def test_random_cascade_runs_every_stage_and_checks_its_input():
    torch.manual_seed(0)
    nets = M.Cascade(M.PNet(), M.RNet(), M.ONet())
    for net in (nets.pnet, nets.rnet, nets.onet):
        net.eval()
    image = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    dets = M.detect(nets, image, min_face_size=12, thresholds=(0.0, 0.0, 0.0))  # everything passes
    assert dets.ndim == 2 and dets.shape[1] == 5 and len(dets) and np.isfinite(dets).all()
    assert M.detect(nets, image, thresholds=(1.1, 0.0, 0.0)).shape == (0, 5)
    assert M.detect(nets, image[:8, :8]).shape == (0, 5)  # smaller than min_face_size: no pyramid level
    with pytest.raises(InputError, match="uint8 RGB"):
        M.detect(nets, image.astype(np.float32))


def test_detector_identity(weights_dir, edit_code):
    detector = M.mtcnn_detector(min_face_size=15)
    assert detector.name == "mtcnn"
    key = detector.cache_key
    assert sha256_of(weights_dir / "onet.pt") in key and "min_face_size=15" in key and "factor=0.709" in key
    assert M.mtcnn_detector().cache_key != key and M.mtcnn_detector(min_face_size=15).cache_key == key
    edit_code("models.mtcnn")
    assert detector.cache_key != key


def test_equals_facenet_pytorch_detect_on_real_widerface_images(shared_data, weights_dir, facenet_mtcnn):
    ours = M.mtcnn_detector()  # min_face_size 10
    reference = facenet_mtcnn(min_face_size=M.MIN_FACE_SIZE, keep_all=True, select_largest=False)
    counts = []
    for rel in REAL_IMAGES:
        image = read_image(shared_data / "widerface" / "images" / rel)
        boxes, probs = reference.detect(image)
        dets = ours(image)
        assert boxes is not None and len(dets) == len(boxes), rel
        probs = np.asarray(probs, np.float64)
        dets, boxes, probs = dets[np.argsort(-dets[:, 4])], boxes[np.argsort(-probs)], np.sort(probs)[::-1]
        assert np.abs(dets[:, :4] - boxes).max() <= 1.0, rel
        assert np.abs(dets[:, 4] - probs).max() <= 1e-4, rel
        counts.append(len(dets))
    assert counts == [3, 50, 30]  # measured; a real difference from the reference would fail above first


def test_cli_refuses_tiny_faces_weights_for_mtcnn(tmp_path, capsys):
    code = main(["--task", "tinyface", "--variants", "hr", "--detector", "mtcnn", "--detector-weights",
                 str(tmp_path / "x.pth"), "--out", str(tmp_path / "out"), "--no-cache"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == "error: --detector-weights: takes a Tiny Faces checkpoint, not used by " \
                                        "--detector mtcnn"


def test_tinyface_task_runs_mtcnn_by_name_and_reuses_its_row(weights_dir, tmp_path):
    root = tmp_path / "synth"
    S.generate(root, 1, seed=0)
    kwargs = dict(data_root=str(root), variants=["lr"], out=tmp_path / "out", device="cpu", detector="mtcnn")
    table = tinyface.run(**kwargs)
    assert table["detector"].iloc[0] == M.mtcnn_detector().cache_key
    meta = (tmp_path / "out" / "mtcnn" / "predictions" / "lr.json").read_text()  # OUT/<detector name>/
    assert tinyface.run(**kwargs).equals(table)
    assert (tmp_path / "out" / "mtcnn" / "predictions" / "lr.json").read_text() == meta
