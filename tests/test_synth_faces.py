"""benchmark/datasets/synth_faces.py: byte-identical generation, official files that the readers and the evaluator
accept, nested settings, disjoint face splits, reuse of a complete cached set."""
import numpy as np
import pytest

from benchmark.datasets import synth_faces as S
from benchmark.datasets import widerface as W
from benchmark.images import read_image
from benchmark.metrics.widerface import evaluate


def files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path):
    S.generate(tmp_path / "a", 5, seed=3)
    S.generate(tmp_path / "b", 5, seed=3)
    S.generate(tmp_path / "c", 5, seed=4)
    a, b, c = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert a == b
    assert {"wider_face_val_bbx_gt.txt", "wider_face_val.mat", "wider_easy_val.mat", "wider_medium_val.mat",
            "wider_hard_val.mat", "synth_faces.json"} < set(a)
    assert sum(k.startswith("images/") for k in a) == 5
    assert a["images/0--chelsea/0_chelsea_synth_0000.jpg"] != c["images/0--chelsea/0_chelsea_synth_0000.jpg"]
    # scene k does not depend on the size of the set
    S.generate(tmp_path / "d", 2, seed=3)
    d = files(tmp_path / "d")
    assert d["images/1--coffee/1_coffee_synth_0001.jpg"] == a["images/1--coffee/1_coffee_synth_0001.jpg"]


def test_official_files_agree_and_settings_are_nested(tmp_path):
    gt = S.generate(tmp_path, 8, seed=0)
    mat = W.read_gt_mat(tmp_path)
    txt = W.read_bbx_gt(tmp_path / W.BBX_TXT)
    layout = W.locate(tmp_path)
    assert layout.images_dir == tmp_path / "images" and layout.bbx_gt == tmp_path / W.BBX_TXT
    assert mat.image_ids == txt.image_ids == gt.image_ids
    assert W.images_on_disk(layout.images_dir, mat.image_ids) == mat.image_ids
    for k, image_id in enumerate(mat.image_ids):
        assert np.array_equal(mat.boxes[k], txt.boxes[k]) and np.array_equal(mat.attributes[k], txt.attributes[k])
        h, w = read_image(W.image_path(layout.images_dir, image_id)).shape[:2]
        b = mat.boxes[k]
        assert len(b) >= 5 and np.all(b[:, :2] >= 0)
        assert np.all(b[:, 0] + b[:, 2] <= w) and np.all(b[:, 1] + b[:, 3] <= h)
        assert np.all((b[:, 3] >= S.FACE_HEIGHT[0]) & (b[:, 3] <= S.FACE_HEIGHT[1]))
        easy, medium, hard = (set(mat.keep[s][k].tolist()) for s in W.SETTINGS)
        assert easy <= medium <= hard
        assert hard == set(np.flatnonzero(b[:, 3] >= S.HARD_MIN).tolist())
        assert all(b[i, 3] >= S.EASY_MIN and mat.attributes[k][i, 4] == 0 for i in easy)
    counts = {s: mat.num_faces(s) for s in W.SETTINGS}
    assert 0 < counts["easy"] < counts["medium"] < counts["hard"]
    # a perfect detector scores AP 1 in every setting under the official rules
    rng = np.random.default_rng(0)
    perfect = {i: np.hstack([b, rng.uniform(0, 1, (len(b), 1))]) for i, b in zip(mat.image_ids, mat.boxes)}
    assert all(r.ap == pytest.approx(1.0) for r in evaluate(perfect, mat).values())


def test_faces_are_exactly_inside_their_boxes(monkeypatch):
    """On a flat grey background and without distractors, every changed pixel lies inside a face box and every box
    holds changed pixels."""
    grey = np.full((600, 600, 3), 128, np.uint8)
    monkeypatch.setattr(S, "backgrounds", lambda: (grey,) * len(S.BACKGROUNDS))
    monkeypatch.setattr(S, "DISTRACTORS_PER_SCENE", (0, 1))
    scene = S.make_scene(np.random.default_rng(0), 0)
    assert scene.image.shape in ((384, 512, 3), (512, 384, 3)) and scene.image.dtype == np.uint8
    inside = np.zeros(scene.image.shape[:2], bool)
    for x, y, w, h in scene.boxes:
        assert (scene.image[y:y + h, x:x + w] != 128).any()
        inside[y:y + h, x:x + w] = True
    changed = (scene.image != 128).any(axis=2)
    assert changed.any() and not (changed & ~inside).any()
    alpha = S._ellipse_alpha(20, 24)
    assert alpha[12, 10, 0] == 1 and alpha[0, 0, 0] == 0 and alpha.shape == (24, 20, 1)


def test_test_and_training_faces_are_disjoint():
    test, train = S.face_bank("test"), S.face_bank("train")
    lfw_test = {f.tobytes() for f, g in zip(test.faces, test.grey) if f.shape == (25, 25, 3)}
    lfw_train = {f.tobytes() for f, g in zip(train.faces, train.grey) if f.shape == (25, 25, 3)}
    assert len(lfw_test) == 20 and len(lfw_train) == 80 and not lfw_test & lfw_train
    assert len(test.faces) == 23 and sum(not g for g in test.grey) == 2  # astronaut, grace_hopper in colour


def test_default_test_set_is_reused_when_complete(tmp_path):
    root = S.default_test_set(tmp_path, 2, seed=0)
    image = next((root / "images").rglob("*.jpg"))
    stamp = image.stat().st_mtime_ns
    assert S.default_test_set(tmp_path, 2, seed=0) == root and image.stat().st_mtime_ns == stamp
    image.unlink()  # incomplete: regenerated, identically
    assert not S.is_complete(root, 2, 0)
    S.default_test_set(tmp_path, 2, seed=0)
    assert image.is_file() and S.is_complete(root, 2, 0) and not S.is_complete(root, 3, 0)
