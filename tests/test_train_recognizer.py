"""benchmark/train_recognizer.py: the loss goes down on a fixed batch, an interrupted run resumes exactly, export."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmark import train_recognizer
from benchmark.datasets.icdar import write_lmdb
from benchmark.datasets.synth_text import sample
from benchmark.metrics.text import normalize_label
from benchmark.tasks.ocr import recognizer_from_file
from models.text import CASE_INSENSITIVE, Recognizer, converter_for, transform_for
from models.weights import RECOGNIZER

TINY = ["--output-channel", "32", "--hidden-size", "32", "--batch", "4", "--val-n", "4", "--val-every", "2",
        "--save-every", "1", "--threads", "1", "--device", "cpu", "--warmup", "2"]


@pytest.mark.parametrize("prediction", ["Attn", "CTC"])
def test_loss_decreases_on_a_fixed_batch(prediction):
    args = train_recognizer.build_parser().parse_args(["--out", "unused", "--prediction", prediction,
                                                       "--transformation", "None"] + TINY)
    config = train_recognizer.build_config(args)
    torch.manual_seed(0)
    model = Recognizer(config)
    converter = converter_for(config, CASE_INSENSITIVE)
    samples = [sample(1, i, "train") for i in range(4)]
    images = torch.stack([transform_for(config)(img) for _, img in samples])
    labels = [normalize_label(label) for label, _ in samples]
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(30):
        loss = train_recognizer.loss_on(model, converter, config, images, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_bf16_autocast_keeps_the_trained_loss_because_tps_runs_in_float32():
    """--amp bf16 trains the bundled TRBA at its float32 loss: in bf16 the TPS grid solve alone raised it eightfold."""
    recognizer = recognizer_from_file(RECOGNIZER.path, "cpu", 8)
    model, config = recognizer.model.train(), recognizer.model.config
    converter = converter_for(config, CASE_INSENSITIVE)
    samples = [sample(3, i, "train") for i in range(16)]
    images = torch.stack([transform_for(config)(img) for _, img in samples])
    labels = [normalize_label(label) for label, _ in samples]
    with torch.no_grad():
        fp32 = train_recognizer.loss_on(model, converter, config, images, labels).item()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = train_recognizer.loss_on(model, converter, config, images, labels).item()
            assert model.Transformation(images).dtype == torch.float32
    assert abs(bf16 - fp32) < 0.05 * fp32 + 0.01


def test_interrupted_run_resumes_exactly(tmp_path, monkeypatch):
    assert train_recognizer.main(["--out", str(tmp_path / "straight"), "--iters", "4"] + TINY) == 0
    real = train_recognizer.batch_samples

    def crash_at_iteration_2(seed, rank, world, iteration, size, data):
        if iteration == 2:
            raise KeyboardInterrupt
        return real(seed, rank, world, iteration, size, data)

    monkeypatch.setattr(train_recognizer, "batch_samples", crash_at_iteration_2)
    with pytest.raises(KeyboardInterrupt):
        train_recognizer.main(["--out", str(tmp_path / "resumed"), "--iters", "4"] + TINY)
    monkeypatch.setattr(train_recognizer, "batch_samples", real)
    assert torch.load(tmp_path / "resumed/last.pt", weights_only=True)["iteration"] == 2
    assert train_recognizer.main(["--out", str(tmp_path / "resumed"), "--iters", "4"] + TINY) == 0
    a = torch.load(tmp_path / "straight/last.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed/last.pt", weights_only=True)
    assert a["iteration"] == b["iteration"] == 4
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    losses = [[line.split("\t")[1] for line in (tmp_path / d / "log.tsv").read_text().splitlines()
               if not line.startswith("#")] for d in ("straight", "resumed")]
    assert losses[0] == losses[1]


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_export_is_float16_and_loads_for_the_task(tmp_path, suffix):
    out = tmp_path / f"rec{suffix}"
    assert train_recognizer.main(["--out", str(tmp_path / "run"), "--iters", "1", "--export", str(out)] + TINY) == 0
    recognizer = recognizer_from_file(out)
    assert recognizer.model.config.output_channel == 32 and recognizer.converter.charset == CASE_INSENSITIVE
    text, confidence = recognizer([sample(0, 0)[1]])[0]
    assert isinstance(text, str) and 0 <= confidence <= 1


def test_lmdb_training_data_and_a_mismatched_run_folder(tmp_path, capsys):
    write_lmdb(tmp_path / "lmdb", [(label, img) for label, img in (sample(2, i, "train") for i in range(6))]
               + [("ünïcode", sample(2, 7, "train")[1])])
    assert train_recognizer.main(["--out", str(tmp_path / "run"), "--iters", "2", "--train-lmdb",
                                  str(tmp_path / "lmdb"), "--prediction", "CTC"] + TINY) == 0
    assert train_recognizer.main(["--out", str(tmp_path / "run"), "--iters", "3"] + TINY) == 2
    assert "checkpoint of another architecture" in capsys.readouterr().err
    assert train_recognizer.main(["--out", str(tmp_path / "run2"), "--train-lmdb", str(tmp_path / "none")] + TINY) == 2
    assert "LMDB dataset folder not found" in capsys.readouterr().err


def test_torchrun_ddp_two_cpu_ranks(tmp_path):
    """Two gloo ranks train together on disjoint synthetic samples; rank 0 writes the checkpoint and the log."""
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
         "benchmark.train_recognizer", "--out", str(tmp_path), "--iters", "2"] + TINY,
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert torch.load(tmp_path / "last.pt", weights_only=True)["iteration"] == 2
