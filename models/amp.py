"""The suite's one meaning of ``--amp``: None (float32), "bf16" or "fp16" autocast."""
from __future__ import annotations

import sys

import torch

AMP_DTYPES = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp(amp: str | None) -> None:
    if amp not in AMP_DTYPES:
        raise ValueError(f"amp must be one of {', '.join(map(str, AMP_DTYPES))}, got {amp!r}")


def autocast(device_type: str, amp: str | None) -> torch.autocast:
    """Autocast to ``amp``'s dtype on ``device_type``; disabled (float32) for None."""
    check_amp(amp)
    return torch.autocast(device_type, dtype=AMP_DTYPES[amp] or torch.bfloat16, enabled=amp is not None)


def emulated_amp_note(device_type: str, amp: str | None) -> str | None:
    """Why ``amp`` autocast will be slower than float32 here, or None. oneDNN has native bf16 convolutions only on
    CPUs with AVX-512 (fp16: AVX512-FP16 or AMX); elsewhere it emulates them: ``cajnn_lite_cpu`` in bf16 took 7x
    the float32 time on an AVX2 EPYC."""
    if device_type != "cpu" or amp is None:
        return None
    native = getattr(torch.ops.mkldnn, f"_is_mkldnn_{amp}_supported", None)  # PyTorch's own test of the kernels
    if native is None or native():
        return None
    return (f"--amp {amp}: this CPU ({torch.backends.cpu.get_cpu_capability()}) has no native {amp} convolutions, so "
            f"autocast is emulated and several times slower than float32 (drop --amp)")


def warn_if_emulated(device_type: str, amp: str | None) -> None:
    """Print `emulated_amp_note` as a one-line warning on stderr, if there is one."""
    note = emulated_amp_note(device_type, amp)
    if note:
        print(f"warning: {note}", file=sys.stderr)
