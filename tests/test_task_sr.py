"""run_all.py --task sr: Table I files, reuse of finished rows, missing rows, and one-line errors."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark import restore
from benchmark.cli import main
from benchmark.degrade import degrade
from benchmark.images import write_image
from benchmark.metrics.image_quality import psnr
from benchmark.progress import ProgressLog
from benchmark.tasks import sr as sr_task
from models.weights import code_digest

ROOT = Path(__file__).resolve().parents[1]


def test_embedded_default_writes_table_one(tmp_path, capsys, edit_code):
    out = tmp_path / "sr"
    args = ["--task", "sr", "--limit", "1", "--qf", "10", "40", "--methods", "bicubic", "rrdb", "cajnn",
            "--out", str(out), "--device", "cpu"]
    assert main(args) == 0
    long = pd.read_csv(out / "table1_long.csv")
    assert {"dataset", "method", "qf", "psnr", "ssim", "crop_border", "n_images", "runtime_s", "params",
            "status"} <= set(long.columns)
    assert len(long) == 6 and set(long["dataset"]) == {"package_photos"}
    rrdb = long[long["method"] == "rrdb"]
    assert rrdb["psnr"].isna().all() and (rrdb["status"] == "missing: pass --rrdb-weights").all()
    ok = long[long["status"] == "ok"].set_index(["method", "qf"])
    assert ok.loc[("bicubic", 40), "psnr"] > ok.loc[("bicubic", 10), "psnr"]
    assert ok.loc[("cajnn", 10), "params"] == 835_843 and ok.loc[("bicubic", 10), "params"] == 0
    md = (out / "table1.md").read_text()
    assert "protocol: paper (RGB, float Y, no border crop)" in md and "| package_photos | rrdb | 0 | missing |" in md
    assert (out / "table1.csv").exists() and (out / "run.json").exists()
    printed = capsys.readouterr().out
    assert "Table I" in printed

    # a second run reuses every finished row: same numbers, including the measured runtime
    assert main(args) == 0
    assert pd.read_csv(out / "table1_long.csv").equals(long)
    # a change to the metric's code is a change of protocol: every computed row is scored again
    edit_code("benchmark.metrics.image_quality")
    assert main(args) == 0
    again = pd.read_csv(out / "table1_long.csv")
    assert (again["protocol_code"] != long["protocol_code"]).all()
    assert (again["runtime_s"] != long["runtime_s"])[long["status"] == "ok"].all()


def test_data_root_folder_and_bicubic_numbers(shared_data, tmp_path):
    assert main(["--task", "sr", "--data-root", str(shared_data / "sr"), "--datasets", "Set5", "--qf", "10",
                 "--methods", "bicubic", "--out", str(tmp_path)]) == 0
    row = pd.read_csv(tmp_path / "table1_long.csv").iloc[0]
    assert row["psnr"] == pytest.approx(23.989, abs=0.0005) and row["ssim"] == pytest.approx(0.6329, abs=5e-5)


@pytest.mark.parametrize("make, args, message", [
    (lambda root: None, ["--datasets", "Nope"], "Nope: dataset folder not found (folders in"),
    (lambda root: (root / "Bad").mkdir() or (root / "Bad/broken.png").write_bytes(b"\x89PNG junk"),
     ["--datasets", "Bad"], "broken.png: cannot decode image"),
    (lambda root: (root / "Empty").mkdir(), ["--datasets", "Empty"], "Empty: no images"),
    (lambda root: write_image(root / "Small/dot.png", np.zeros((5, 30, 3), np.uint8)), ["--datasets", "Small"],
     "dot.png: 28x4 after mod-crop is too small for x4"),
    (lambda root: (root / "junk.pth").write_bytes(b"junk"), ["--cajnn-weights", "{root}/junk.pth"],
     "junk.pth: not a loadable PyTorch checkpoint"),
    (lambda root: None, ["--methods", "bicubic", "srgan"], "--methods: unknown srgan"),
])
def test_bad_input_is_one_line_no_traceback(tmp_path, make, args, message, capsys):
    make(tmp_path)
    (tmp_path / "Good").mkdir(exist_ok=True)
    write_image(tmp_path / "Good/a.png", np.zeros((16, 16, 3), np.uint8))
    args = [a.replace("{root}", str(tmp_path)) for a in args]
    if "--datasets" not in args:
        args += ["--datasets", "Good"]
    code = main(["--task", "sr", "--data-root", str(tmp_path), "--out", str(tmp_path / "out"), "--qf", "10", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and err.splitlines()[-1].startswith("error:")


def test_bad_input_from_the_command_line_has_no_traceback(tmp_path):
    (tmp_path / "Bad").mkdir()
    (tmp_path / "Bad/broken.png").write_bytes(b"\x89PNG junk")
    proc = subprocess.run([sys.executable, "run_all.py", "--task", "sr", "--data-root", str(tmp_path),
                           "--datasets", "Bad", "--out", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "broken.png: cannot decode" in proc.stderr


def test_two_torchrun_ranks_give_the_single_process_table(tmp_path):
    args = ["--task", "sr", "--limit", "3", "--qf", "20", "--methods", "bicubic", "cajnn", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "run_all.py", *args, "--out", str(tmp_path / "two")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    one = pd.read_csv(tmp_path / "one/table1_long.csv")
    two = pd.read_csv(tmp_path / "two/table1_long.csv")
    # Each torchrun rank gets one thread, the in-process run two: float sums in the convolutions run in another order,
    # which can flip the rounding of a rare output pixel. Everything else must be identical.
    columns = ["dataset", "method", "qf", "n_images", "params", "status"]
    assert one[columns].equals(two[columns])
    np.testing.assert_allclose(one[["psnr", "ssim"]], two[["psnr", "ssim"]], rtol=0, atol=1e-4)
    assert (tmp_path / "one/table1.md").read_text().split("| runtime_s")[0] == \
        (tmp_path / "two/table1.md").read_text().split("| runtime_s")[0]


def test_an_interrupted_row_reuses_the_images_it_had_scored(tmp_path):
    """A progress record left by a killed run is used, not recomputed: a planted PSNR of 99 dB for the first image
    moves the row's mean by exactly (99 - its real PSNR) / 2."""
    args = ["--task", "sr", "--limit", "2", "--qf", "20", "--methods", "bicubic", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "fresh")]) == 0
    first = sr_task.dataset_images(None, sr_task.EMBEDDED_DATASET, 2)[0]
    row = {"dataset": sr_task.EMBEDDED_DATASET, "method": "bicubic", "qf": 20, "crop_border": 0,
           "grey_on_grey": False, "round_y": False, "n_images": 2, "restorer": restore.Bicubic(4).cache_key,
           "protocol_code": code_digest(degrade, psnr)}
    real = sr_task.evaluate(restore.Bicubic(4), [first], False, 20, 0, False, torch.device("cpu"),
                            ProgressLog(tmp_path / "scratch", "k"))[0]["psnr"]
    log = ProgressLog(tmp_path / "resumed/parts" / f"{sr_task.EMBEDDED_DATASET}_bicubic_q20", row)
    log.append([{"id": str(first), "psnr": 99.0, "ssim": 1.0, "seconds": 0.0}])
    log.close()
    assert main([*args, "--out", str(tmp_path / "resumed")]) == 0
    fresh = pd.read_csv(tmp_path / "fresh/table1_long.csv")["psnr"].iloc[0]
    resumed = pd.read_csv(tmp_path / "resumed/table1_long.csv")["psnr"].iloc[0]
    assert resumed - fresh == pytest.approx((99.0 - real) / 2, abs=1e-9)
    assert not (tmp_path / "resumed/parts" / f"{sr_task.EMBEDDED_DATASET}_bicubic_q20").exists()
