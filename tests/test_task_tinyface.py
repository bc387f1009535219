"""run_all.py --task tinyface: Table III files, official prediction folders that the evaluator reads back, reuse of
finished rows, subsets, pluggable detector and restorer, the restoration cache, resuming a killed run, torchrun
ranks, unusable images (refused together, or scored as failed), one-line errors."""
import contextlib
import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import torch
from fakes import CountingRestorer
from PIL import Image

from benchmark import restore
from benchmark.cli import main
from benchmark.errors import InputError
from benchmark.datasets import synth_faces as S
from benchmark.datasets import widerface as W
from benchmark.degrade import degrade
from benchmark.images import read_image
from benchmark.metrics.widerface import evaluate, read_predictions
from benchmark.tasks import tinyface

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["detector_name", "variant", "ap_easy", "ap_medium", "ap_hard", "n_images", "failed", "time_restore_s",
           "restore_compute_s", "cache_hits", "time_detect_s", "time_total_s", "device"]
SCORES = ["variant", "ap_easy", "ap_medium", "ap_hard", "n_images", "failed"]
BUNDLED = "tiny_faces_r18_wider"  # the bundled detector's sub-folder of --out
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    S.generate(root, 3, seed=0)
    return root


def copy_of(root, tmp_path):
    shutil.copytree(root, tmp_path / "data")
    return tmp_path / "data"


class Oracle:
    """Returns the ground truth of the HR image (x2, y2 the last pixel inside, as Tiny Faces gives them), or of its x4
    downscale divided by 4, with random scores."""

    cache_key = "oracle"
    name = "oracle"

    def __init__(self, root):
        self.calls = 0
        self.boxes = {}
        gt = W.read_gt_mat(root)
        rng = np.random.default_rng(0)
        for image_id, b in zip(gt.image_ids, gt.boxes):
            hr = read_image(W.image_path(root / "images", image_id))
            dets = np.hstack([b[:, :2], b[:, :2] + b[:, 2:] - 1, rng.uniform(-3, 3, (len(b), 1))]).astype(float)
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


class Killed(Exception):
    """Stands for a kill in the middle of a row."""


class Crashing(Oracle):
    """An Oracle whose `crash_at`-th call dies."""

    def __init__(self, root, crash_at):
        super().__init__(root)
        self.crash_at = crash_at

    def __call__(self, image):
        if self.calls + 1 == self.crash_at:
            raise Killed
        return super().__call__(image)


@contextlib.contextmanager
def one_thread():
    """Torch on one thread in this process, as in the subprocesses run with ONE_THREAD: another thread count can
    reorder the float sums of a convolution and so change a detection score in its last bits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def prediction_files(folder):
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*.txt"))}


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
    hr_dir = out / "oracle" / "predictions" / "hr"
    proc = subprocess.run([sys.executable, "-m", "benchmark.metrics.widerface", str(hr_dir), str(synth_root)],
                          capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == pytest.approx({"easy": 1.0, "medium": 1.0, "hard": 1.0})
    first = (hr_dir / "0--chelsea" / "0_chelsea_synth_0000.txt").read_text().splitlines()
    assert first[0] == "0_chelsea_synth_0000.jpg" and int(first[1]) == len(first) - 2
    md = (out / "table3.md").read_text()
    assert "all 3 images" in md and "not the official protocol" not in md
    assert (out / "fig6_pr.png").stat().st_size > 0 and (out / "scene.png").is_file() and (out / "run.json").is_file()
    assert not list((out / "oracle" / "predictions").glob("*.parts"))  # the progress of a finished row is removed
    # same restorers, detector and data: every row is read back, nothing recomputed
    again = tinyface.run(data_root=str(synth_root), variants=["hr", "lr"], out=out, device="cpu",
                         restorers={"lr_identity": restore.Identity()}, detector=oracle)
    assert oracle.calls == calls and again.equals(table)
    files = prediction_files(out / "oracle" / "predictions")
    other = function_detector([1, 2, 30, 40, 0.5])
    tinyface.run(data_root=str(synth_root), variants=["hr"], out=out, device="cpu", detector=other)
    assert prediction_files(out / "oracle" / "predictions") == files  # another detector has its own sub-folder
    assert len(prediction_files(out / "detect" / "predictions")) == 3 and (out / "table3.csv").is_file()


def test_lr_rows_are_detected_again_after_a_change_to_the_degradation_code(synth_root, tmp_path, edit_code):
    oracle = Oracle(synth_root)

    def run(variants):
        return tinyface.run(data_root=str(synth_root), variants=variants, out=tmp_path, device="cpu", detector=oracle)

    run(["hr", "lr"])
    calls = oracle.calls
    edit_code("benchmark.degrade")
    run(["hr"])
    assert oracle.calls == calls  # the HR row does not depend on the x4 downscale's code
    run(["hr", "lr"])
    assert oracle.calls > calls


def matlab_round(v):
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def test_files_hold_boxes_as_the_official_writers_write_them(synth_root, tmp_path):
    dets = np.array([[10.4, 20.5, 30.6, 40.49, 1.25], [-0.5, 2.5, 5.5, 7.5, -2.0], [3.0, 4.0, 3.0, 4.0, 0.5]])

    def fixed(image):
        return dets

    tinyface.run(data_root=str(synth_root), variants=["hr", "lr"], out=tmp_path, device="cpu", detector=fixed)
    for variant, scale in (("hr", 1), ("lr", 4)):
        for path in (tmp_path / "fixed" / "predictions" / variant).rglob("*.txt"):
            rows = [line.split() for line in path.read_text().splitlines()[2:]]
            expected = []
            for x1, y1, x2, y2, score in dets * [scale, scale, scale, scale, 1]:
                x1, y1, x2, y2 = (matlab_round(v) for v in (x1, y1, x2, y2))
                expected.append([x1, y1, x2 - x1 + 1, y2 - y1 + 1, score])  # cnn_widerface_test_AB.m
            assert [[float(v) for v in row] for row in rows] == expected
    hr = (tmp_path / "fixed" / "predictions" / "hr" / "0--chelsea" / "0_chelsea_synth_0000.txt").read_text()
    hr = hr.splitlines()
    assert hr[2:] == ["10 21 22 20 1.25", "-1 3 8 6 -2", "3 4 1 1 0.5"]


def function_detector(box):
    """A plain function (no cache_key), always named `detect`, that finds `box` in every image."""

    def detect(image):
        return np.array([box])

    return detect


def test_function_detectors_are_never_reused_from_an_earlier_run(synth_root, tmp_path, capsys):
    first, second = function_detector([1, 2, 30, 40, 0.5]), function_detector([5, 6, 20, 30, 0.7])
    for detector, line in ((first, "1 2 30 39 0.5"), (second, "5 6 16 25 0.7")):
        tinyface.run(data_root=str(synth_root), variants=["hr"], out=tmp_path, device="cpu", detector=detector)
        for path in (tmp_path / "detect" / "predictions" / "hr").rglob("*.txt"):
            assert path.read_text().splitlines()[2:] == [line]
        err = capsys.readouterr().err
        assert err.count("note: the detector 'detect' has no cache_key, so its rows are recomputed") == 1


def test_warm_up_runs_on_the_first_images_shapes(synth_root, tmp_path):
    shapes = []

    def recording(image):
        shapes.append(image.shape)
        return np.zeros((0, 5))

    counting = CountingRestorer()
    tinyface.run(data_root=str(synth_root), variants=["hr", "lr"], out=tmp_path, device="cpu", detector=recording,
                 restorers={"lr_counting": counting})
    hr = [read_image(W.image_path(synth_root / "images", i)).shape for i in W.read_gt_mat(synth_root).image_ids]
    lr = [degrade(np.zeros(s, np.uint8), 4).shape for s in hr]
    up = [(4 * h, 4 * w, 3) for h, w, _ in lr]
    assert shapes == [hr[0], *hr, lr[0], *lr, up[0], *up]  # each row: warm-up on its first image's shape, then all


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
            "--out", str(out), "--device", "cpu", "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    table = pd.read_csv(out / "table3.csv")
    assert list(table.columns[: len(COLUMNS)]) == COLUMNS and list(table["variant"]) == ["hr", "lr", "lr_cajnn"]
    assert table.loc[2, "time_restore_s"] > 0 and (table["time_detect_s"] > 0).all()
    assert "subset of 1 images, not the official protocol" in capsys.readouterr().out
    gt_root = out / "synth_faces_seed0_n2"
    gt = W.read_gt_mat(gt_root)
    ids = gt.image_ids[:1]
    for _, row in table.iterrows():
        preds = read_predictions(out / BUNDLED / "predictions" / row["variant"], ids)
        assert len(preds[ids[0]])  # the detector keeps its raw logits, so every row has detections
        res = evaluate(preds, gt, image_ids=ids)
        assert [res[s].ap for s in W.SETTINGS] == pytest.approx([row[f"ap_{s}"] for s in W.SETTINGS], nan_ok=True)
    assert main(args) == 0  # reused: same table, same timings
    assert pd.read_csv(out / "table3.csv").equals(table)


def error_lines(capsys, args):
    """The lines of the CLI's error message (progress bars come before it)."""
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    first = next(k for k, line in enumerate(lines) if line.startswith("error: "))
    assert "Traceback" not in err
    return lines[first:]


def error_of(capsys, args):
    lines = error_lines(capsys, args)
    assert len(lines) == 1
    return lines[0]


def test_bad_input_is_a_one_line_error(synth_root, tmp_path, capsys):
    root = copy_of(synth_root, tmp_path)
    base = ["--task", "tinyface", "--data-root", str(root), "--variants", "lr", "--out", str(tmp_path / "out"),
            "--device", "cpu", "--no-cache"]
    bad = root / "images" / "0--chelsea" / "0_chelsea_synth_0000.jpg"
    bad.write_bytes(b"not a jpeg")
    message = error_of(capsys, base)  # one unusable image: a one-line error
    assert message.startswith(f"error: {bad}: cannot decode image") and message.endswith("--keep-going scores them "
                                                                                          "as failed)")

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


def test_restorations_come_from_the_cache_and_the_row_key_does_not_depend_on_it(synth_root, tmp_path):
    counting = CountingRestorer()

    def run(out, cache_dir, detector):
        return tinyface.run(data_root=str(synth_root), variants=["lr_cajnn"], out=tmp_path / out, device="cpu",
                            cache_dir=cache_dir, restorers={"lr_counting": counting}, detector=detector)

    first = run("one", tmp_path / "cache", Oracle(synth_root))
    assert first["cache_hits"].tolist() == [0, 0] and counting.calls == 1 + 3  # the warm-up, then each image
    second = run("two", tmp_path / "cache", Oracle(synth_root))  # another --out: only the cache is shared
    assert second["cache_hits"].tolist() == [3, 3] and counting.calls == 4
    assert second[SCORES].equals(first[SCORES])
    assert second["restore_compute_s"].tolist() == first["restore_compute_s"].tolist()  # stored with each entry
    oracle = Oracle(synth_root)
    assert run("one", None, oracle).equals(first) and oracle.calls == 0  # without the cache: still reused


def test_a_killed_row_resumes_without_redoing_its_finished_images(synth_root, tmp_path):
    kwargs = {"data_root": str(synth_root), "variants": ["hr", "lr"], "device": "cpu"}
    reference = tinyface.run(out=tmp_path / "whole", detector=Oracle(synth_root), **kwargs)
    with pytest.raises(Killed):  # hr: warm-up + 3 images; lr: warm-up + 2 images, then the 3rd dies
        tinyface.run(out=tmp_path / "out", detector=Crashing(synth_root, crash_at=1 + 3 + 1 + 3), **kwargs)
    assert (tmp_path / "out" / "oracle" / "predictions" / "hr.json").is_file()
    assert not (tmp_path / "out" / "oracle" / "predictions" / "lr.json").exists()
    oracle = Oracle(synth_root)
    table = tinyface.run(out=tmp_path / "out", detector=oracle, **kwargs)
    assert oracle.calls == 1 + 1  # hr read back; lr: warm-up and the one unfinished image
    assert table[SCORES].equals(reference[SCORES])
    for variant in ("hr", "lr"):
        assert prediction_files(tmp_path / "out" / "oracle" / "predictions" / variant) == \
            prediction_files(tmp_path / "whole" / "oracle" / "predictions" / variant)
    assert not (tmp_path / "out" / "oracle" / "predictions" / "lr.parts").exists()


def test_a_sigkilled_run_resumes_to_the_uninterrupted_table(tmp_path):
    args = ["--task", "tinyface", "--synth-images", "4", "--variants", "lr_cajnn", "--device", "cpu", "--no-cache"]
    command = [sys.executable, "run_all.py", *args, "--out", str(tmp_path / "killed")]
    parts = tmp_path / "killed" / BUNDLED / "predictions" / "lr_cajnn.parts"

    def finished_images():  # complete lines after each file's key line
        return sum(max(p.read_text().count("\n") - 1, 0) for p in parts.glob("*.jsonl"))

    proc = subprocess.Popen(command, cwd=ROOT, env=ONE_THREAD, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while finished_images() < 1:
            assert proc.poll() is None, "the run ended before the test could kill it"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    done = finished_images()
    assert 1 <= done < 4 and not (tmp_path / "killed" / "table3.csv").exists()
    resumed = subprocess.run(command, cwd=ROOT, env=ONE_THREAD, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"lr_cajnn: resuming, {done} of 4 images already done" in resumed.stdout
    with one_thread():
        assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    whole = pd.read_csv(tmp_path / "whole" / "table3.csv")
    assert pd.read_csv(tmp_path / "killed" / "table3.csv")[SCORES].equals(whole[SCORES])
    assert prediction_files(tmp_path / "killed" / BUNDLED / "predictions" / "lr_cajnn") == \
        prediction_files(tmp_path / "whole" / BUNDLED / "predictions" / "lr_cajnn")
    assert not parts.exists()


def test_two_torchrun_ranks_give_the_single_process_table(tmp_path):
    args = ["--task", "tinyface", "--synth-images", "4", "--limit", "3", "--variants", "hr", "lr", "lr_cajnn",
            "--device", "cpu"]
    with one_thread():
        assert main([*args, "--out", str(tmp_path / "one"), "--no-cache"]) == 0
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "run_all.py", *args, "--out", str(tmp_path / "two"), "--cache-dir", str(tmp_path / "cache")],
                          cwd=ROOT, env=ONE_THREAD, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    one = pd.read_csv(tmp_path / "one" / "table3.csv")
    two = pd.read_csv(tmp_path / "two" / "table3.csv")
    # every process runs torch on one thread, so each image's detections are bit-identical: the ranks only split
    # the images between them, and rank 0 gathers the exact floats
    assert two[SCORES].equals(one[SCORES]) and two["device"].str.endswith(", 2 torchrun ranks").all()
    for variant in one["variant"]:
        assert prediction_files(tmp_path / "two" / BUNDLED / "predictions" / variant) == \
            prediction_files(tmp_path / "one" / BUNDLED / "predictions" / variant)
    assert "subset of 3 images, not the official protocol" in (tmp_path / "two" / "table3.md").read_text()


def bad_corpus(tmp_path):
    """Five synthetic scenes: the first three stored as grey, RGBA and 16-bit PNG (usable), then a corrupt file and a
    1x1 image. Returns the root, its ground truth, the image paths and an Oracle of the usable images."""
    root = tmp_path / "data"
    gt = S.generate(root, 5, seed=0)
    paths = [W.image_path(root / "images", i) for i in gt.image_ids]
    rgb = [read_image(p) for p in paths]
    Image.fromarray(rgb[0]).convert("L").save(paths[0], format="PNG")
    Image.fromarray(np.dstack([rgb[1], np.full(rgb[1].shape[:2], 128, np.uint8)])).save(paths[1], format="PNG")
    grey = np.asarray(Image.fromarray(rgb[2]).convert("L"), np.uint16) * 257
    Image.fromarray(grey).save(paths[2], format="PNG")
    assert Image.open(paths[2]).mode == "I;16"
    oracle = Oracle(root)
    paths[3].write_bytes(b"not a jpeg")
    Image.new("RGB", (1, 1)).save(paths[4], format="JPEG")
    return root, gt, paths, oracle


def test_unusable_images_are_all_named_before_any_work(tmp_path):
    root, _, paths, _ = bad_corpus(tmp_path)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "run_all.py", "--task", "tinyface", "--data-root", str(root), "--out",
                           str(out), "--device", "cpu", "--no-cache"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    lines = lines[next(k for k, line in enumerate(lines) if line.startswith("error: ")):]
    assert lines[0] == "error: 2 of 5 images are unusable (--keep-going scores them as failed):"
    assert lines[1].startswith(f"  {paths[3]}: cannot decode image (")
    assert lines[2] == f"  {paths[4]}: 1x1 px is too small for a x4 downscale (at least 8x8)"
    assert len(lines) == 3 and not (out / BUNDLED / "predictions").exists()


def break_gt_list(root, image_index):
    """Make `image_index`'s hard gt_list point past its faces (a malformed entry of wider_hard_val.mat)."""
    path = root / "wider_hard_val.mat"
    mat = scipy.io.loadmat(str(path))
    k = image_index
    for e in range(mat["gt_list"].shape[0]):
        cell = mat["gt_list"][e, 0]
        if k < cell.shape[0]:
            cell[k, 0] = np.array([[999.0]])
            break
        k -= cell.shape[0]
    scipy.io.savemat(str(path), {key: v for key, v in mat.items() if not key.startswith("__")})


def test_malformed_gt_entries_are_named_with_the_unusable_images(tmp_path, capsys):
    root, gt, paths, oracle = bad_corpus(tmp_path)
    break_gt_list(root, 1)
    base = ["--task", "tinyface", "--data-root", str(root), "--variants", "hr", "--out", str(tmp_path / "out"),
            "--device", "cpu", "--no-cache"]
    lines = error_lines(capsys, base)
    assert lines[0] == ("error: 3 of 5 images are unusable (--keep-going skips malformed ground-truth entries and "
                        "scores unusable images as failed):")
    assert lines[1] == f"  {root / 'wider_hard_val.mat'}: gt_list of {gt.image_ids[1]} is outside 1..{len(gt.boxes[1])}"
    assert lines[2].startswith(f"  {paths[3]}: cannot decode image (") and lines[3].startswith(f"  {paths[4]}: 1x1")
    assert len(lines) == 4 and not (tmp_path / "out" / BUNDLED / "predictions").exists()
    table = tinyface.run(data_root=str(root), variants=["hr"], out=tmp_path / "out", device="cpu", keep_going=True,
                         detector=oracle)
    assert table["n_images"].tolist() == [4] and table["failed"].tolist() == [2]
    md = (tmp_path / "out" / "table3.md").read_text()
    assert "subset of 4 images, not the official protocol" in md
    assert "Skipped ground-truth entries (1; malformed, not scored):\n- " + lines[1].strip() in md
    assert not (tmp_path / "out" / "oracle" / "predictions" / "hr" / f"{gt.image_ids[1]}.txt").exists()


def test_keep_going_scores_unusable_images_as_failed(tmp_path):
    root, gt, paths, oracle = bad_corpus(tmp_path)
    out = tmp_path / "out"
    table = tinyface.run(data_root=str(root), variants=["hr", "lr"], out=out, device="cpu", keep_going=True,
                         detector=oracle)
    assert table["n_images"].tolist() == [5, 5] and table["failed"].tolist() == [2, 2]
    assert (table["ap_hard"] < 1).all()  # the faces of the failed images count as missed
    usable = gt.image_ids[:3]
    for variant in ("hr", "lr"):
        pred_dir = out / "oracle" / "predictions" / variant
        preds = read_predictions(pred_dir, gt.image_ids)
        # grey, RGBA and 16-bit files are read as RGB: the oracle finds every face in them
        assert [evaluate(preds, gt, image_ids=usable)[s].ap for s in W.SETTINGS] == pytest.approx([1, 1, 1])
        for image_id in gt.image_ids[3:]:  # a failed image has an empty prediction file
            assert (pred_dir / f"{image_id}.txt").read_text() == f"{image_id.split('/')[1]}.jpg\n0\n"
    md = (out / "table3.md").read_text()
    assert "Failed images (2; no detections, their faces count as missed):" in md
    assert f"- {paths[3]}: cannot decode image (" in md and f"- {paths[4]}: 1x1 px is too small" in md
    assert len(json.loads((out / "run.json").read_text())["failed"]) == 2 and (out / "scene.png").is_file()


def test_several_detectors_make_one_long_table(synth_root, tmp_path):
    """detector=[a, b]: one row per detector and variant, each detector's files and Fig. 6 in its own folder."""
    oracle = Oracle(synth_root)

    def nothing(image):
        return np.zeros((0, 5), np.float32)

    out = tmp_path / "out"
    table = tinyface.run(data_root=str(synth_root), variants=["hr"], out=out, device="cpu",
                         detector=[oracle, nothing])
    assert list(table["detector_name"]) == ["oracle", "nothing"]
    assert table["ap_hard"].tolist() == pytest.approx([1.0, 0.0])
    for name in ("oracle", "nothing"):
        assert (out / name / "predictions" / "hr.json").is_file() and (out / name / "fig6_pr.png").is_file()
    assert "detector_name" in (out / "table3.md").read_text()
    with pytest.raises(InputError, match="name one detector twice"):
        tinyface.run(data_root=str(synth_root), variants=["hr"], out=out, device="cpu", detector=[nothing, nothing])
