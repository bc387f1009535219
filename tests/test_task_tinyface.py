"""run_all.py --task tinyface: Table III files, official prediction folders that the evaluator reads back, reuse of
finished rows, subsets, pluggable detector and restorer, one-line errors."""
import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.io

from benchmark import restore
from benchmark.cli import main
from benchmark.datasets import synth_faces as S
from benchmark.datasets import widerface as W
from benchmark.degrade import degrade
from benchmark.images import read_image
from benchmark.metrics.widerface import evaluate, read_predictions
from benchmark.tasks import tinyface

COLUMNS = ["variant", "ap_easy", "ap_medium", "ap_hard", "n_images", "time_restore_s", "time_detect_s", "time_total_s",
           "device"]


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    S.generate(root, 3, seed=0)
    return root


def copy_of(root, tmp_path):
    shutil.copytree(root, tmp_path / "data")
    return tmp_path / "data"


class Oracle:
    """Returns the ground truth of the HR image, or of its x4 downscale divided by 4, with random scores."""

    cache_key = "oracle"

    def __init__(self, root):
        self.calls = 0
        self.boxes = {}
        gt = W.read_gt_mat(root)
        rng = np.random.default_rng(0)
        for image_id, b in zip(gt.image_ids, gt.boxes):
            hr = read_image(W.image_path(root / "images", image_id))
            dets = np.hstack([b[:, :2], b[:, :2] + b[:, 2:], rng.uniform(-3, 3, (len(b), 1))]).astype(float)
            self.boxes[self.key(hr)] = dets
            lr_dets = dets.copy()
            lr_dets[:, :4] /= 4
            self.boxes[self.key(degrade(hr, 4))] = lr_dets

    @staticmethod
    def key(image):
        return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()

    def __call__(self, image):
        self.calls += 1
        return self.boxes.get(self.key(image), np.zeros((0, 5)))


def test_python_api_any_detector_and_restorer_reuse_and_official_folders(synth_root, tmp_path):
    oracle = Oracle(synth_root)
    out = tmp_path / "out"
    table = tinyface.run(data_root=str(synth_root), variants=["hr", "lr"], out=out, device="cpu",
                         restorers={"lr_identity": restore.Identity()}, detector=oracle)
    assert list(table.columns[: len(COLUMNS)]) == COLUMNS and list(table["variant"]) == ["hr", "lr", "lr_identity"]
    for col in ("ap_easy", "ap_medium", "ap_hard"):
        assert table[col].to_numpy() == pytest.approx(1.0)  # detections on LR are scaled back x4
    assert (table["n_images"] == 3).all()
    calls = oracle.calls
    # the official evaluation tool reads the folder back to the same numbers
    proc = subprocess.run([sys.executable, "-m", "benchmark.metrics.widerface", str(out / "predictions" / "hr"),
                           str(synth_root)], capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == pytest.approx({"easy": 1.0, "medium": 1.0, "hard": 1.0})
    first = (out / "predictions" / "hr" / "0--chelsea" / "0_chelsea_synth_0000.txt").read_text().splitlines()
    assert first[0] == "0_chelsea_synth_0000.jpg" and int(first[1]) == len(first) - 2
    md = (out / "table3.md").read_text()
    assert "all 3 images" in md and "not the official protocol" not in md
    assert (out / "fig6_pr.png").stat().st_size > 0 and (out / "scene.png").is_file() and (out / "run.json").is_file()
    # same restorers, detector and data: every row is read back, nothing recomputed
    again = tinyface.run(data_root=str(synth_root), variants=["hr", "lr"], out=out, device="cpu",
                         restorers={"lr_identity": restore.Identity()}, detector=oracle)
    assert oracle.calls == calls and again.equals(table)


def test_partial_copy_is_a_labelled_subset(synth_root, tmp_path):
    root = copy_of(synth_root, tmp_path)
    next((root / "images" / "1--coffee").glob("*.jpg")).unlink()
    table = tinyface.run(data_root=str(root), variants=["hr"], out=tmp_path / "out", device="cpu",
                         detector=Oracle(synth_root))
    assert table["n_images"].tolist() == [2] and table["ap_hard"].iloc[0] == pytest.approx(1.0)
    assert "subset of 2 images, not the official protocol" in (tmp_path / "out" / "table3.md").read_text()


def test_cli_end_to_end_with_the_bundled_detector(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--task", "tinyface", "--synth-images", "2", "--limit", "1", "--variants", "hr", "lr", "lr_cajnn",
            "--out", str(out), "--device", "cpu"]
    assert main(args) == 0
    table = pd.read_csv(out / "table3.csv")
    assert list(table.columns[: len(COLUMNS)]) == COLUMNS and list(table["variant"]) == ["hr", "lr", "lr_cajnn"]
    assert table.loc[2, "time_restore_s"] > 0 and (table["time_detect_s"] > 0).all()
    assert "subset of 1 images, not the official protocol" in capsys.readouterr().out
    gt_root = out / "synth_faces_seed0_n2"
    gt = W.read_gt_mat(gt_root)
    ids = gt.image_ids[:1]
    for _, row in table.iterrows():
        preds = read_predictions(out / "predictions" / row["variant"], ids)
        assert len(preds[ids[0]])  # the detector keeps its raw logits, so every row has detections
        res = evaluate(preds, gt, image_ids=ids)
        assert [res[s].ap for s in W.SETTINGS] == pytest.approx([row[f"ap_{s}"] for s in W.SETTINGS], nan_ok=True)
    assert main(args) == 0  # reused: same table, same timings
    assert pd.read_csv(out / "table3.csv").equals(table)


def error_of(capsys, args):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # progress bars come before it
    assert err.startswith("error: ")
    return err


def test_bad_input_is_a_one_line_error(synth_root, tmp_path, capsys):
    root = copy_of(synth_root, tmp_path)
    base = ["--task", "tinyface", "--data-root", str(root), "--variants", "lr", "--out", str(tmp_path / "out"),
            "--device", "cpu"]
    bad = root / "images" / "0--chelsea" / "0_chelsea_synth_0000.jpg"
    bad.write_bytes(b"not a jpeg")
    assert f"{bad}: cannot decode image" in error_of(capsys, base)

    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"junk")
    assert "junk.pth: not a loadable PyTorch checkpoint" in error_of(capsys, base + ["--detector-weights", str(junk)])

    for p in (root / "images").rglob("*.jpg"):
        p.unlink()
    assert "none of the 3 images listed in" in error_of(capsys, base)

    for name in ["wider_face_val.mat"] + [f"wider_{s}_val.mat" for s in W.SETTINGS]:
        mat = scipy.io.loadmat(str(root / name))
        mat["event_list"][0, 0] = np.array(["../evil"])
        scipy.io.savemat(str(root / name), {k: v for k, v in mat.items() if not k.startswith("__")})
    assert "unsafe or malformed image path '../evil/" in error_of(capsys, base)

    assert "--lr-jpeg-quality: 0" in error_of(capsys, base + ["--lr-jpeg-quality", "0"])
    assert "--variants: unknown 'x4'" in error_of(capsys, base + ["--variants", "x4"])


def test_real_widerface_subset(shared_data, tmp_path):
    table = tinyface.run(data_root=str(shared_data / "widerface"), variants=["hr", "lr"], out=tmp_path, device="cpu",
                         limit=1)
    assert table["n_images"].tolist() == [1, 1]
    assert "subset of 1 images, not the official protocol" in (tmp_path / "table3.md").read_text()
    assert "WIDER FACE val at" in (tmp_path / "table3.md").read_text()
