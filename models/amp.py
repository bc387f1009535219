"""The suite's one meaning of ``--amp``: None (float32), "bf16" or "fp16" autocast."""
from __future__ import annotations

import torch

AMP_DTYPES = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp(amp: str | None) -> None:
    if amp not in AMP_DTYPES:
        raise ValueError(f"amp must be one of {', '.join(map(str, AMP_DTYPES))}, got {amp!r}")


def autocast(device_type: str, amp: str | None) -> torch.autocast:
    """Autocast to ``amp``'s dtype on ``device_type``; disabled (float32) for None."""
    check_amp(amp)
    return torch.autocast(device_type, dtype=AMP_DTYPES[amp] or torch.bfloat16, enabled=amp is not None)
