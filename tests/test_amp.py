"""``--amp`` where this CPU would only emulate it, and ``--device`` names: one line each on stderr."""
import pytest
import torch

from benchmark.cli import main
from models.amp import emulated_amp_note


@pytest.fixture(params=[False, True], ids=["emulated", "native"])
def native_bf16(request, monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: request.param)
    return request.param


def test_bf16_on_a_cpu_without_native_kernels_is_warned_before_the_run(tmp_path, capsys, native_bf16):
    code = main(["--task", "sr", "--amp", "bf16", "--device", "cpu", "--data-root", str(tmp_path / "missing")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and lines[-1].startswith("error: ") and str(tmp_path / "missing") in lines[-1]
    if native_bf16:
        assert len(lines) == 1
    else:
        assert len(lines) == 2 and lines[0].startswith("warning: --amp bf16: this CPU (")
        assert "emulated" in lines[0] and "drop --amp" in lines[0]


def test_the_note_concerns_cpu_autocast_only(native_bf16):
    assert emulated_amp_note("cpu", None) is None and emulated_amp_note("cuda", "bf16") is None
    assert (emulated_amp_note("cpu", "bf16") is None) == native_bf16


@pytest.mark.parametrize("device, message", [("bogus", "not a device name"), ("cuda:0", "no CUDA device")])
def test_a_device_that_is_not_usable_is_a_one_line_error(tmp_path, capsys, device, message):
    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("a CUDA device is available here")
    code = main(["--task", "sr", "--device", device, "--limit", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: --device {device}: {message}") and len(err.splitlines()) == 1
