"""benchmark.metrics.widerface: hand-computed APs, the official code as oracle, the prediction-folder format."""
import json

import numpy as np
import pytest

import widerface_reference as ref
from benchmark.datasets.widerface import SETTINGS, WiderFaceGT, read_gt_mat, write_gt_mat
from benchmark.errors import InputError
from benchmark.metrics import widerface as W
from benchmark.perf_widerface import synthetic_predictions


def make_gt(images):
    """WiderFaceGT from {id: (boxes xywh, counted indices)}; the same faces count in every setting."""
    ids = list(images)
    boxes = [np.array(images[i][0], dtype=np.int32).reshape(-1, 4) for i in ids]
    keep = [np.array(images[i][1], dtype=np.int64) for i in ids]
    return WiderFaceGT(ids, boxes, [np.zeros((len(b), 6), np.uint8) for b in boxes], {s: keep for s in SETTINGS})


# image ev/a: faces 0 and 1 count, face 2 is ignored; ev/b: one counted face and never any prediction
TINY_GT = {
    "ev/a": ([[0, 0, 10, 10], [100, 100, 10, 10], [200, 0, 10, 10]], [0, 1]),
    "ev/b": ([[50, 50, 20, 20]], [0]),
}
TINY_PRED = np.array([
    [0, 0, 10, 10, 0.9],      # face 0
    [1, 0, 10, 10, 0.8],      # face 0 again: a duplicate, false positive
    [200, 0, 10, 10, 0.7],    # the ignored face: dropped, neither TP nor FP
    [100, 100, 10, 10, 0.6],  # face 1
    [300, 300, 10, 10, 0.5],  # nothing: false positive
])
# PR points (recall of 2 faces, precision): (1/2, 1), (1/2, 1/2), [dropped], (1, 2/3), (1, 1/2)
# -> AP = 1/2 * 1 + 1/2 * 2/3 = 5/6. Were the ignored face's hit a false positive: 1/2 + 1/2 * 1/2 = 3/4.


@pytest.mark.parametrize("matlab", [False, True])
def test_hand_computed_ap_with_ignored_face_and_duplicate(matlab):
    gt = make_gt({"ev/a": TINY_GT["ev/a"]})
    res = W.evaluate({"ev/a": TINY_PRED}, gt, matlab=matlab)
    for setting in SETTINGS:
        assert res[setting].ap == pytest.approx(5 / 6, abs=1e-12)
        assert res[setting].num_faces == 2
        assert res[setting].recall[-1] == 1.0 and res[setting].precision[-1] == 0.5


def test_unsorted_file_and_missing_file(tmp_path):
    gt = make_gt(TINY_GT)
    shuffled = TINY_PRED[[3, 0, 4, 2, 1]]
    W.write_predictions({"ev/a": shuffled}, tmp_path)  # no file for ev/b
    preds = W.read_predictions(tmp_path, gt.image_ids)
    assert list(preds) == ["ev/a"]
    res = W.evaluate(preds, gt)
    # ev/b's face enters the denominator: recall 1/3, 1/3, 2/3, 2/3 -> AP = 1/3 + 1/3 * 2/3 = 5/9
    assert res["hard"].ap == pytest.approx(5 / 9, abs=1e-12)
    assert res["hard"].num_faces == 3
    # the official port without its missing sort scores the shuffled file differently
    assert ref.port_evaluation(preds, gt, sort=False)["hard"][0] != pytest.approx(5 / 9)
    assert ref.port_evaluation(preds, gt, sort=True)["hard"][0] == pytest.approx(5 / 9, abs=1e-12)


def test_port_unsorted_mode_is_the_port_on_a_shuffled_folder(tmp_path, capsys):
    gt = make_gt(TINY_GT)
    write_gt_mat(gt, tmp_path / "gt")
    W.write_predictions({"ev/a": TINY_PRED[[3, 0, 4, 2, 1]]}, tmp_path / "pred")
    preds = W.read_predictions(tmp_path / "pred", gt.image_ids)
    port = ref.port_evaluation(preds, gt, sort=False)
    res = W.evaluate(preds, gt, sort=False)
    for setting in SETTINGS:
        assert res[setting].ap == port[setting][0]
        assert np.array_equal(res[setting].precision, port[setting][1][:, 0], equal_nan=True)
    assert res["hard"].ap != pytest.approx(W.evaluate(preds, gt)["hard"].ap)  # 5/9 sorted
    assert W.main([str(tmp_path / "pred"), str(tmp_path / "gt"), "--port-unsorted"]) == 0
    assert json.loads(capsys.readouterr().out)["hard"] == port["hard"][0]
    with pytest.raises(ValueError, match="always sorts"):
        W.evaluate(preds, gt, sort=False, matlab=True)


def test_image_subset_counts_only_its_faces():
    gt = make_gt(TINY_GT)
    preds = {"ev/a": TINY_PRED}
    assert W.evaluate(preds, gt, image_ids=["ev/a"])["easy"].ap == pytest.approx(5 / 6, abs=1e-12)
    only_b = W.evaluate(preds, gt, image_ids=["ev/b"])["easy"]
    assert only_b.num_faces == 1 and only_b.ap == 0.0
    with pytest.raises(InputError, match="ev/zzz"):
        W.evaluate(preds, gt, image_ids=["ev/zzz"])


def test_matlab_first_gt_wins_where_float_iou_picks_the_best():
    # both GTs reach IoU >= 0.5 (0.77 and 0.90 in float); MATLAB's int32 IoU rounds both to 1 and takes the first,
    # the ignored face, so the prediction is dropped; the port takes the counted face.
    gt = make_gt({"ev/a": ([[0, 0, 10, 10], [2, 0, 10, 10]], [1])})
    pred = np.array([[1.4, 0, 10, 10, 1.0], [500, 500, 10, 10, 0.0]])
    assert W.box_overlaps(pred[:1], gt.boxes[0], matlab=True).tolist() == [[1.0, 1.0]]
    assert W.box_overlaps(pred[:1], gt.boxes[0])[0] == pytest.approx([105.6 / 136.4, 114.4 / 127.6])
    assert W.evaluate({"ev/a": pred}, gt)["hard"].ap == pytest.approx(1.0)
    assert W.evaluate({"ev/a": pred}, gt, matlab=True)["hard"].ap == 0.0


def test_norm_score_starting_bounds():
    preds = {"a": np.array([[0, 0, 1, 1, 0.2], [0, 0, 1, 1, 0.6]])}
    # port: max from 0, min from 1 -> (s - 0.2) / (0.6 - 0.2); MATLAB: plain min-max in single precision
    assert W.norm_score(preds)["a"][:, 4] == pytest.approx([0.0, 1.0])
    high = {"a": np.array([[0, 0, 1, 1, 3.0], [0, 0, 1, 1, 5.0]])}
    assert W.norm_score(high)["a"][:, 4].tolist() == [0.5, 1.0]  # min starts at 1
    assert W.norm_score(high, matlab=True)["a"][:, 4].tolist() == [0.0, 1.0]
    odd = {"a": np.array([[0, 0, 1, 1, 0.1], [0, 0, 1, 1, 0.3], [0, 0, 1, 1, 0.7]])}
    m = W.norm_score(odd, matlab=True)["a"][:, 4]
    assert m.tolist() == [float(np.float32(v)) for v in m]  # single-precision values
    assert preds["a"][0, 4] == 0.2  # inputs untouched


def test_voc_ap_matches_port_with_nan_prefix():
    rng = np.random.default_rng(3)
    for _ in range(20):
        rec = np.sort(rng.random(50))
        prec = rng.random(50)
        rec[:5], prec[:5] = 0.0, np.nan
        assert W.voc_ap(rec, prec) == ref.port_voc_ap(rec, prec)
        assert W.voc_ap(rec, prec) == pytest.approx(ref.matlab_vocap(rec, prec), abs=1e-12)


def test_xyxy_to_xywh():
    dets = np.array([[0.5, 1.5, 10.5, 20.4, 3.0], [-2.5, 0.0, 4.0, 8.0, -1.0]])
    assert W.xyxy_to_xywh(dets) == pytest.approx(np.array([[0.5, 1.5, 10.0, 18.9, 3.0], [-2.5, 0.0, 6.5, 8.0, -1.0]]))
    # the original's files: MATLAB round (half away from zero), then w = x2 - x1 + 1
    assert W.xyxy_to_xywh(dets, inclusive=True).tolist() == [[1, 2, 11, 19, 3.0], [-3, 0, 8, 9, -1.0]]


def test_prediction_folder_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    preds = {
        "1--Handshaking/img_1": np.hstack([rng.uniform(-5, 500, (7, 4)), rng.normal(size=(7, 1))]),
        "1--Handshaking/img_2": np.array([[1, 2, 3, 4, 0.5]]),
        "2--Demo/empty": np.zeros((0, 5)),
    }
    W.write_predictions(preds, tmp_path)
    lines = (tmp_path / "1--Handshaking" / "img_2.txt").read_text().splitlines()
    assert lines == ["img_2.jpg", "1", "1 2 3 4 0.5"]
    back = W.read_predictions(tmp_path, list(preds) + ["2--Demo/no_file"])
    assert set(back) == set(preds)
    for k, v in preds.items():
        assert np.array_equal(back[k], v)


@pytest.mark.parametrize("body, line, what", [
    ("a.jpg\n2\n1 2 3 4 0.5\n1 2 3 x 0.5\n", 4, "5 finite numbers"),
    ("a.jpg\n1\n1 2 3 4\n", 3, "5 finite numbers"),
    ("a.jpg\n1\n1 2 3 4 nan\n", 3, "5 finite numbers"),
    ("a.jpg\nthree\n", 2, "number of detections"),
    ("a.jpg\n3\n1 2 3 4 0.5\n", 4, "declares 3"),
    ("a.jpg\n1\n1 2 3 4 0.5\n5 6 7 8 0.1\n", 4, "after the 1 declared"),
    ("a.jpg\n", 2, "missing the detection count"),
])
def test_malformed_prediction_file_names_file_and_line(tmp_path, body, line, what):
    path = tmp_path / "ev" / "a.txt"
    path.parent.mkdir()
    path.write_text(body)
    with pytest.raises(InputError, match=what) as e:
        W.read_predictions(tmp_path, ["ev/a"])
    assert f"{path}:{line}:" in str(e.value) and "\n" not in str(e.value)


def test_unsafe_ids_are_refused(tmp_path):
    for bad in ["../escape", "/abs/x", "ev/../x", "a/b/c"]:
        with pytest.raises(InputError, match="unsafe"):
            W.write_predictions({bad: np.zeros((0, 5))}, tmp_path)


def test_steps_match_port_and_matlab_per_image(shared_data):
    gt = read_gt_mat(shared_data / "widerface")
    preds = synthetic_predictions(gt, seed=5)
    rng = np.random.default_rng(5)
    for j in rng.choice(len(gt), 12, replace=False):
        image_id, boxes = gt.image_ids[j], gt.boxes[j]
        pred = preds[image_id].copy()
        pred[:, 4] = rng.random(len(pred))  # already normalised, deliberately unsorted
        ignore = np.zeros(len(boxes))
        ignore[gt.keep["hard"][j]] = 1
        corners = lambda b: np.hstack([b[:, :2], b[:, :2] + b[:, 2:4]]).astype(float)
        assert np.array_equal(W.box_overlaps(pred, boxes), ref.port_bbox_overlaps(corners(pred), corners(boxes)))
        rec, prop = W.image_eval(pred, boxes, ignore)
        rec_ref, prop_ref = ref.port_image_eval(pred, boxes.astype(float), ignore, 0.5)
        assert np.array_equal(rec, rec_ref) and np.array_equal(prop, prop_ref)
        assert np.array_equal(W.img_pr_info(pred[:, 4], prop, rec), ref.port_img_pr_info(1000, pred, prop, rec))
        rec_m, prop_m = W.image_eval(pred, boxes, ignore, matlab=True)
        rec_mref, prop_mref = ref.matlab_image_evaluation(pred, boxes, ignore, 0.5)
        assert rec_m.tolist() == rec_mref and prop_m.tolist() == prop_mref


@pytest.mark.parametrize("matlab", [False, True])
def test_evaluate_matches_official_code_on_real_gt(shared_data, matlab):
    gt = read_gt_mat(shared_data / "widerface")
    preds = synthetic_predictions(gt, seed=1)
    ids = gt.image_ids[::40]  # 81 images of all 61 events, some crowded
    oracle = ref.matlab_evaluation(preds, gt.subset(ids)) if matlab else ref.port_evaluation(preds, gt.subset(ids))
    res = W.evaluate(preds, gt, image_ids=ids, matlab=matlab)
    for setting in SETTINGS:
        ap, curve = oracle[setting]
        assert res[setting].ap == pytest.approx(ap, abs=1e-12)
        assert np.array_equal(res[setting].precision, curve[:, 0], equal_nan=True)
        assert np.array_equal(res[setting].recall, curve[:, 1])


def test_cli_present_only_scores_the_images_with_a_file_as_the_task_does(tmp_path, capsys):
    gt = make_gt(TINY_GT)
    write_gt_mat(gt, tmp_path / "gt")
    W.write_predictions({"ev/a": TINY_PRED}, tmp_path / "pred")  # ev/b has no file
    args = [str(tmp_path / "pred"), str(tmp_path / "gt")]
    assert W.main(args) == 0
    assert json.loads(capsys.readouterr().out)["hard"] == pytest.approx(5 / 9)  # ev/b's face counts as missed
    assert W.main(args + ["--present-only"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["hard"] == pytest.approx(W.evaluate({"ev/a": TINY_PRED}, gt, ["ev/a"])["hard"].ap)
    assert json.loads(captured.out)["hard"] == pytest.approx(5 / 6)
    assert "note: subset of 1 images, not the official protocol (those with a prediction file, of 2)" in captured.err
    (tmp_path / "empty").mkdir()
    assert W.main([str(tmp_path / "empty"), str(tmp_path / "gt"), "--present-only"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: {tmp_path / 'empty'}: --present-only: none of the 2 images of {tmp_path / 'gt'} has a "
                   "prediction file here"]


def test_port_unsorted_matches_the_port_on_shuffled_real_gt(shared_data, tmp_path):
    gt = read_gt_mat(shared_data / "widerface")
    ids = gt.image_ids[::40]
    rng = np.random.default_rng(2)
    known = synthetic_predictions(gt, seed=2)
    W.write_predictions({i: known[i][rng.permutation(len(known[i]))] for i in ids}, tmp_path)  # a shuffled copy
    preds = W.read_predictions(tmp_path, ids)
    port = ref.port_evaluation(preds, gt.subset(ids), sort=False)
    unsorted = W.evaluate(preds, gt, image_ids=ids, sort=False)
    in_order = W.evaluate(preds, gt, image_ids=ids)
    for setting in SETTINGS:
        ap, curve = port[setting]
        assert unsorted[setting].ap == pytest.approx(ap, abs=1e-12)
        assert np.array_equal(unsorted[setting].precision, curve[:, 0], equal_nan=True)
        assert np.array_equal(unsorted[setting].recall, curve[:, 1])
        assert abs(unsorted[setting].ap - in_order[setting].ap) > 1e-3  # the sort matters on this folder


def test_cli_prints_json_and_saves_pr(tmp_path, capsys):
    gt = make_gt(TINY_GT)
    write_gt_mat(gt, tmp_path / "gt")
    W.write_predictions({"ev/a": TINY_PRED}, tmp_path / "pred")
    assert W.main([str(tmp_path / "pred"), str(tmp_path / "gt"), "--save-pr", str(tmp_path / "pr.npz")]) == 0
    captured = capsys.readouterr()
    aps = json.loads(captured.out)
    assert set(aps) == {"easy", "medium", "hard"} and aps["medium"] == pytest.approx(5 / 9)
    assert "1 of 2 images have no prediction file" in captured.err
    assert np.load(tmp_path / "pr.npz")["hard"].shape == (1000, 2)
    assert W.main([str(tmp_path / "pred"), str(tmp_path / "gt"), "--matlab"]) == 0
    assert W.main([str(tmp_path / "nope"), str(tmp_path / "gt")]) == 2
    assert "error:" in capsys.readouterr().err
