"""benchmark/train_cajnn.py: the loss goes down, and a resumed run ends in exactly the same state."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark import train_cajnn
from benchmark.datasets.package_photos import package_photo_paths
from benchmark.images import read_image, write_image
from models.cajnn import CAJNN, CONFIGS


@pytest.fixture(scope="module")
def hr_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hr")
    for name, path in package_photo_paths(["astronaut", "coffee"]).items():
        write_image(folder / f"{name}.png", read_image(path)[:160, :160])
    write_image(folder / "tiny.png", np.zeros((20, 20, 3), np.uint8))  # skipped: smaller than the patch
    return folder


def run(hr_dir, out, iters, lr="1e-3", save_every=1, extra=()):
    return train_cajnn.main(["--config", "lite", "--train-dirs", str(hr_dir), "--out", str(out), "--iters", str(iters),
                             "--batch", "2", "--patch", "32", "--lr", lr, "--periods", "1000",
                             "--save-every", str(save_every), "--threads", "1", *extra])


def losses(out):
    return [float(line.split("\t")[1]) for line in (out / "log.tsv").read_text().splitlines() if line[0] != "#"]


def test_loss_decreases(hr_dir, tmp_path, capsys):
    """L1 on a fixed held-out batch: the seeded initial network vs the one trained for 30 iterations."""
    assert run(hr_dir, tmp_path, 30) == 0
    assert len(losses(tmp_path)) == 30
    assert "skipped 1 images smaller than the patch size 32: tiny.png" in capsys.readouterr().err
    images = train_cajnn.load_hr_images([str(hr_dir)], 32)
    lr, hr = train_cajnn.sample_batch(images, np.random.default_rng(123), 8, 32, (10, 100))
    torch.manual_seed(0)
    model = CAJNN(CONFIGS["lite"]).eval()
    with torch.no_grad():
        before = torch.nn.functional.l1_loss(model(lr), hr).item()
        model.load_state_dict(torch.load(tmp_path / "last.pt", weights_only=True)["model"])
        after = torch.nn.functional.l1_loss(model(lr), hr).item()
    assert after < 0.8 * before


def test_resume_reproduces_the_uninterrupted_run(hr_dir, tmp_path):
    assert run(hr_dir, tmp_path / "straight", 6) == 0
    assert run(hr_dir, tmp_path / "resumed", 3) == 0
    assert run(hr_dir, tmp_path / "resumed", 6) == 0
    a = torch.load(tmp_path / "straight/last.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed/last.pt", weights_only=True)
    assert a["iteration"] == b["iteration"] == 6
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert losses(tmp_path / "straight") == losses(tmp_path / "resumed")


def test_a_run_killed_between_checkpoints_logs_each_iteration_once(hr_dir, tmp_path, monkeypatch):
    """Killed at iteration 5 with the last checkpoint at 4: the resumed run redoes 5 and logs it once."""
    assert run(hr_dir, tmp_path / "straight", 6) == 0
    real, calls = train_cajnn.sample_batch, []

    def killed_at_iteration_5(*args):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(train_cajnn, "sample_batch", killed_at_iteration_5)
    with pytest.raises(KeyboardInterrupt):
        run(hr_dir, tmp_path / "resumed", 6, save_every=4)
    with open(tmp_path / "resumed/log.tsv", "a") as log:
        log.write("6\t0.05")  # a torn line, as a kill mid-write leaves
    monkeypatch.setattr(train_cajnn, "sample_batch", real)
    assert [line.split("\t")[0] for line in (tmp_path / "resumed/log.tsv").read_text().splitlines()] == \
        ["1", "2", "3", "4", "5", "6"]
    assert run(hr_dir, tmp_path / "resumed", 6, save_every=4) == 0
    logged = [line.split("\t")[0] for line in (tmp_path / "resumed/log.tsv").read_text().splitlines()]
    assert logged == ["1", "2", "3", "4", "5", "6"]
    assert losses(tmp_path / "straight") == losses(tmp_path / "resumed")


def test_mse_loss_flag(hr_dir, tmp_path):
    """Same seed, same first batch and network: the logged MSE lies between L1 squared (Jensen) and L1 (errors < 1)."""
    assert run(hr_dir, tmp_path / "l1", 1) == 0
    assert run(hr_dir, tmp_path / "mse", 1, extra=["--loss", "mse"]) == 0
    (l1,), (mse,) = losses(tmp_path / "l1"), losses(tmp_path / "mse")
    assert l1 ** 2 <= mse < l1


def test_cosine_restarts():
    assert train_cajnn.cosine_restart_lr(0, 2e-4, [100], 1e-7) == pytest.approx(2e-4)
    assert train_cajnn.cosine_restart_lr(50, 2e-4, [100], 1e-7) == pytest.approx((2e-4 + 1e-7) / 2)
    assert train_cajnn.cosine_restart_lr(100, 2e-4, [100], 1e-7) == pytest.approx(2e-4)
    # periods 100 then 40: iteration 120 is half-way through the second cycle, 140 restarts the 40-cycle
    assert train_cajnn.cosine_restart_lr(120, 2e-4, [100, 40], 1e-7) == pytest.approx((2e-4 + 1e-7) / 2)
    assert train_cajnn.cosine_restart_lr(140, 2e-4, [100, 40], 1e-7) == pytest.approx(2e-4)


def test_no_usable_image_is_a_clear_error(tmp_path, capsys):
    write_image(tmp_path / "small.png", np.zeros((8, 8, 3), np.uint8))
    assert run(tmp_path, tmp_path / "out", 1) == 2
    assert "no training image is at least 32x32" in capsys.readouterr().err


def test_torchrun_ddp_two_cpu_ranks(hr_dir, tmp_path):
    """Two gloo ranks train together; rank 0 writes the checkpoint and the log."""
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
         "benchmark.train_cajnn", "--config", "lite", "--train-dirs", str(hr_dir), "--out", str(tmp_path),
         "--iters", "2", "--batch", "4", "--patch", "32", "--save-every", "1", "--threads", "1", "--device", "cpu"],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert torch.load(tmp_path / "last.pt", weights_only=True)["iteration"] == 2
    assert len(losses(tmp_path)) == 2


def test_data_workers_give_the_same_batches(hr_dir):
    """Batches are a function of (seed, rank, iteration): worker processes change the speed, not the data."""
    images = train_cajnn.load_hr_images([str(hr_dir)], 32)
    args = train_cajnn.build_parser().parse_args(["--train-dirs", "x", "--out", "x", "--iters", "4", "--batch", "2",
                                                  "--patch", "32", "--clean-share", "0.5"])
    stream = train_cajnn.BatchStream(images, args, rank=0, world=1)
    in_process = list(train_cajnn.batches(stream, 1, 0))
    with_workers = list(train_cajnn.batches(stream, 1, 2))
    assert len(in_process) == len(with_workers) == 3
    for (lr_a, hr_a), (lr_b, hr_b) in zip(in_process, with_workers):
        assert torch.equal(lr_a, lr_b) and torch.equal(hr_a, hr_b)


def test_clean_share_skips_the_jpeg_step(hr_dir):
    from benchmark.degrade import imresize

    images = train_cajnn.load_hr_images([str(hr_dir)], 32)
    lr, hr = train_cajnn.sample_batch(images, np.random.default_rng(0), 6, 32, (10, 10), clean_share=1.0)
    hr_u8 = (hr * 255).round().byte().permute(0, 2, 3, 1).numpy()
    for i in range(6):
        assert torch.equal((lr[i] * 255).round().byte(), torch.from_numpy(imresize(hr_u8[i], 0.25)).permute(2, 0, 1))
    lr_q10, _ = train_cajnn.sample_batch(images, np.random.default_rng(0), 6, 32, (10, 10))
    assert not torch.equal(lr_q10, lr)


def test_time_budget_stops_checkpoints_and_exports(hr_dir, tmp_path):
    """A wall-clock budget ends the run early with a checkpoint and an export of the iterations reached."""
    from models.cajnn import load_cajnn
    from models.weights import read_state_dict

    assert run(hr_dir, tmp_path, 100000, save_every=100000,
               extra=["--max-minutes", "0.001", "--export", str(tmp_path / "w.safetensors")]) == 0
    done = torch.load(tmp_path / "last.pt", weights_only=True)["iteration"]
    assert 1 <= done < 100000
    assert read_state_dict(tmp_path / "w.safetensors")[1]["iterations"] == done
    load_cajnn(tmp_path / "w.safetensors")
    assert train_cajnn.time_cosine_lr(0, 60, 2e-4, 0) == pytest.approx(2e-4)
    assert train_cajnn.time_cosine_lr(30, 60, 2e-4, 0) == pytest.approx(1e-4)
    assert train_cajnn.time_cosine_lr(90, 60, 2e-4, 0) == pytest.approx(0)


def test_init_weights_continues_from_an_exported_file(hr_dir, tmp_path, capsys):
    """Weights alone (no last.pt) are enough to continue; another model's file is refused naming it."""
    from models.weights import CAJNN_LITE_CPU, TINY_FACES_R18

    assert run(hr_dir, tmp_path / "a", 1, lr="1e-12", extra=["--init-weights", str(CAJNN_LITE_CPU.path)]) == 0
    trained = torch.load(tmp_path / "a/last.pt", weights_only=True)["model"]
    from models.cajnn import load_cajnn

    bundled = load_cajnn(CAJNN_LITE_CPU.path).state_dict()
    assert all(torch.allclose(trained[k], bundled[k], atol=1e-6) for k in bundled)
    assert run(hr_dir, tmp_path / "b", 1, extra=["--init-weights", str(TINY_FACES_R18.path)]) == 2
    assert "tiny_faces_r18_wider.safetensors" in capsys.readouterr().err
