"""run_all.py --task ocr under production conditions: torchrun ranks, the restoration cache, a SIGKILL and resume,
and a corpus of broken inputs."""
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from fakes import CountingRestorer

from benchmark.cli import main
from benchmark.datasets.icdar import GT_FILE, IMAGES_DIR, encode_png
from benchmark.tasks import ocr
from models.weights import RECOGNIZER

BUNDLED = RECOGNIZER.path.stem  # the bundled recognizer's folder under --out

ROOT = Path(__file__).resolve().parents[1]
SCORE_COLUMNS = ["variant", "accuracy", "norm_ed", "correct", "n", "failed", "restorer"]


def read_table(path):
    return pd.read_csv(path, keep_default_na=False)


def test_two_torchrun_ranks_give_the_single_process_table(tmp_path):
    """The default OCR task on 60 crops: same predictions and scores from 2 gloo ranks as from one process."""
    args = ["--task", "ocr", "--limit", "60", "--device", "cpu"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun rank, so that the kernels sum in the same order
    try:
        assert main([*args, "--out", str(tmp_path / "one"), "--cache-dir", str(tmp_path / "cache1")]) == 0
    finally:
        torch.set_num_threads(threads)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "run_all.py", *args, "--out", str(tmp_path / "two"), "--cache-dir", str(tmp_path / "cache2")],
                          cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},  # torchrun keeps a caller's value
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = read_table(tmp_path / "one/table2.csv"), read_table(tmp_path / "two/table2.csv")
    assert one[SCORE_COLUMNS].equals(two[SCORE_COLUMNS]) and list(one["n"]) == [60] * 4
    for variant in ocr.VARIANTS:
        a = ocr.read_predictions(tmp_path / "one" / BUNDLED / f"predictions_{variant}.csv")
        b = ocr.read_predictions(tmp_path / "two" / BUNDLED / f"predictions_{variant}.csv")
        assert a[["image", "label", "prediction", "correct"]].equals(b[["image", "label", "prediction", "correct"]])
        np.testing.assert_allclose(a["confidence"], b["confidence"], atol=1e-5)  # the LSTM's batch differs by rank


def test_a_second_run_reads_every_restoration_from_the_cache(tmp_path):
    restorer = CountingRestorer()
    common = dict(limit=6, variants=[], restorers={"nn": restorer}, device="cpu", cache_dir=tmp_path / "cache")
    first = ocr.run(out=tmp_path / "first", **common)
    assert restorer.calls == 1 + 6 and first["cache_hits"].tolist() == [0]  # a warm-up on a blank crop, then 6
    second = ocr.run(out=tmp_path / "second", **common)
    assert restorer.calls == 7 + 1 and second["cache_hits"].tolist() == [6]  # only the warm-up
    assert second["accuracy"].equals(first["accuracy"])
    assert second["restore_compute_s"].iloc[0] == pytest.approx(first["restore_compute_s"].iloc[0], abs=2e-3)


def test_sigkill_then_restart_finishes_with_the_same_table(tmp_path):
    args = [sys.executable, "run_all.py", "--task", "ocr", "--limit", "40", "--variants", "cajnn_x4",
            "--batch-size", "4", "--device", "cpu", "--no-cache"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "killed"
    proc = subprocess.Popen([*args, "--out", str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    parts = out / BUNDLED / "predictions_cajnn_x4.parts"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if sum(p.read_text().count("\n") - 1 for p in parts.glob("*.jsonl")) >= 8:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "table2.csv").exists()
    again = subprocess.run([*args, "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    resumed = [line for line in again.stderr.splitlines() + again.stdout.splitlines() if "resuming" in line]
    assert resumed and "of 40 crops already finished" in resumed[0] and not parts.exists()
    fresh = subprocess.run([*args, "--out", str(tmp_path / "fresh")], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=600)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    columns = SCORE_COLUMNS
    assert read_table(out / "table2.csv")[columns].equals(read_table(tmp_path / "fresh/table2.csv")[columns])
    assert ocr.read_predictions(out / BUNDLED / "predictions_cajnn_x4.csv")["prediction"].equals(
        ocr.read_predictions(tmp_path / "fresh" / BUNDLED / "predictions_cajnn_x4.csv")["prediction"])


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def broken_dataset(tmp_path):
    """ICDAR2013 layout with a corrupt PNG (word_3), a missing file (word_99), a path leaving the folder, a 1x1
    crop (word_4), grey / RGBA / 16-bit PNGs and labels with odd unicode (all of those usable)."""
    root = tmp_path / "broken"
    images = root / IMAGES_DIR
    images.mkdir(parents=True)
    crop = np.random.default_rng(0).integers(0, 256, (12, 30, 3), dtype=np.uint8)
    (images / "word_1.png").write_bytes(encode_png(crop))
    (images / "word_2.png").write_bytes(encode_png(crop))
    (images / "word_3.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (images / "word_4.png").write_bytes(encode_png(np.zeros((1, 1, 3), np.uint8)))
    (images / "word_5.png").write_bytes(png_bytes(Image.fromarray(crop[..., 0])))
    (images / "word_6.png").write_bytes(png_bytes(Image.fromarray(np.dstack([crop, crop[..., :1]]), "RGBA")))
    (images / "word_7.png").write_bytes(png_bytes(Image.fromarray(crop[..., 0].astype(np.uint16) * 257)))
    gt = ['word_1.png, "Hotel"', 'word_2.png, "na\u00efve\u2014\u65e5\u672c\u200b\\"q\\""', 'word_3.png, "bad"',
          'word_4.png, "dot"', 'word_5.png, "grey"', 'word_6.png, "alpha"', 'word_7.png, "deep"',
          'word_99.png, "gone"', '../../etc/passwd, "root"']
    (root / GT_FILE).write_text("\ufeff" + "\r\n".join(gt) + "\r\n", encoding="utf-8")
    return root


def test_broken_dataset_is_refused_naming_every_bad_crop(tmp_path, broken_dataset, tiny_recognizer):
    proc = subprocess.run([sys.executable, "run_all.py", "--task", "ocr", "--data-root", str(broken_dataset),
                           "--recognizer-weights", str(tiny_recognizer), "--out", str(tmp_path / "out"),
                           "--device", "cpu", "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    err = proc.stderr
    assert proc.returncode == 2 and "Traceback" not in err and err.startswith("error: 4 of 9 word crops are unusable")
    assert "word_3.png: cannot decode image" in err and "image word_99.png not found" in err
    assert "'../../etc/passwd' escapes the dataset folder" in err and "word_4.png: image of 1x1 px is too small" in err
    assert f"{GT_FILE}:8" in err and f"{GT_FILE}:9" in err  # lines named for entries without a file
    assert not (tmp_path / "out" / "table2.csv").exists()


def test_keep_going_scores_bad_crops_as_failed(tmp_path, broken_dataset, tiny_recognizer, capsys):
    code = main(["--task", "ocr", "--data-root", str(broken_dataset), "--recognizer-weights", str(tiny_recognizer),
                 "--variants", "raw", "bicubic_x4", "--out", str(tmp_path / "out"), "--device", "cpu", "--no-cache",
                 "--keep-going"])
    assert code == 0
    table = read_table(tmp_path / "out/table2.csv")
    assert table["n"].tolist() == [9, 9] and table["failed"].tolist() == [4, 4]
    assert table["correct"].max() <= 5
    predictions = ocr.read_predictions(tmp_path / "out/tiny/predictions_raw.csv")
    failed = predictions[predictions["error"] != ""]
    assert failed["image"].tolist() == ["word_3.png", "word_4.png", "word_99.png", "../../etc/passwd"]
    assert not failed["correct"].any() and (failed["prediction"] == "").all()
    assert predictions["label"].iloc[1] == 'na\u00efve\u2014\u65e5\u672c\u200b"q"'
    md = (tmp_path / "out/table2.md").read_text()
    assert "4 unusable and scored as failed" in md and "- word_99.png:" in md


def test_empty_dataset_and_junk_recognizer_are_refused(tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / IMAGES_DIR).mkdir(parents=True)
    (empty / GT_FILE).write_text("")
    assert main(["--task", "ocr", "--data-root", str(empty), "--out", str(tmp_path / "o1"), "--no-cache"]) == 2
    assert "no word crop in subset all" in capsys.readouterr().err
    (tmp_path / "junk.pth").write_bytes(b"\x00junk" * 10)
    assert main(["--task", "ocr", "--limit", "2", "--recognizer-weights", str(tmp_path / "junk.pth"),
                 "--out", str(tmp_path / "o2"), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "junk.pth: not a PyTorch checkpoint" in err and len(err.splitlines()) == 1
