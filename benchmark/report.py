"""Run outputs: atomic CSV/Markdown/JSON writes and the run's metadata."""
from __future__ import annotations

import io
import json
import os
import platform
import re
import shlex
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

import benchmark


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write via a temporary file in the same folder and rename, so a killed run never leaves half a file. The file
    gets the permissions a plain ``open`` would give it (``mkstemp`` creates 0600, unreadable by other users)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def model_folder(out: str | Path, model_name: str) -> Path:
    """OUT/<model name>/: where one recognizer's or detector's files go, so a second model never overwrites the
    first's; characters unsafe in a file name become '_'."""
    return Path(out) / (re.sub(r"[^A-Za-z0-9._+-]+", "_", model_name).strip("._") or "model")


def save_torch_atomic(obj, path: str | Path) -> None:
    """``torch.save`` through ``write_atomic``: a training checkpoint is never left half-written."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic(path, buffer.getvalue())


def open_training_log(path: str | Path, resumed_at: int):
    """The training log opened for appending, without the lines of iterations after ``resumed_at``.

    A run killed between checkpoints logged iterations it will redo; keeping them would list those twice.
    Lines are ``ITER\t...`` or ``# val ITER ...``; a torn last line is dropped too.
    """
    path = Path(path)
    if path.exists():
        def logged_iteration(line: str) -> int:
            fields = line.split()
            try:
                return int(fields[2] if line.startswith("# val ") else fields[0])
            except (IndexError, ValueError):
                return resumed_at + 1
        kept = [line for line in path.read_text().splitlines(keepends=True)
                if line.endswith("\n") and logged_iteration(line) <= resumed_at]
        write_atomic(path, "".join(kept))
    return open(path, "a")


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    write_atomic(path, df.to_csv(index=False))


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub Markdown table of ``df`` as it is (format the cells before calling)."""
    cells = df.astype(str).values.tolist()
    header = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def run_metadata(device: torch.device, **extra) -> dict:
    """What produced a table: the command, versions, device, seed, and the task's own settings.

    The seed is ``torch.initial_seed()``: every task calls ``torch.manual_seed(seed)`` before any work."""
    return {
        "command": "python " + shlex.join(sys.argv),
        "seed": torch.initial_seed(),
        "carsr_bench": benchmark.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": device_description(device),
        **extra,
    }


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    isa = torch.backends.cpu.get_cpu_capability()
    return f"cpu:{platform.processor() or platform.machine()} {isa} x{torch.get_num_threads()} threads"


def write_json(path: str | Path, obj: dict) -> None:
    write_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")
