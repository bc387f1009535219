"""``run_all.py``: one command per table; the flags map one-to-one onto each task's ``run`` arguments."""
from __future__ import annotations

import argparse
import sys

from benchmark.cache import default_cache_dir
from benchmark.errors import run_reporting_input_errors
from benchmark.tasks import ocr, sr, tinyface

TASKS = {"sr": sr, "ocr": ocr, "tinyface": tinyface}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_all.py",
        description="carsr-bench: does joint JPEG-artifact removal + x4 super-resolution (CAJNN) help downstream "
                    "vision models? Writes CSV and Markdown tables under --out.")
    p.add_argument("--task", choices=sorted(TASKS), required=True,
                   help="sr: Table I (PSNR/SSIM); ocr: Table II (scene-text recognition accuracy); "
                   "tinyface: Table III and Fig. 6 (WIDER FACE AP)")
    p.add_argument("--data-root", help="root of the official data for the task (default: the embedded, generated "
                   "or package-shipped data; no download)")
    p.add_argument("--out", help="output folder (default: results/<task>/)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0, help="seed for everything random (default 0)")
    p.add_argument("--limit", type=int, help="use only the first N items of each dataset (smoke runs)")
    p.add_argument("--cajnn-weights", help="CAJNN checkpoint (default: the bundled cajnn_lite_cpu)")
    p.add_argument("--variants", nargs="+", help="rows of the task's table (default: all of the task's rows; "
                   "ocr: raw cajnn_x4 cajnn_x4_down bicubic_x4, tinyface: hr lr lr_bicubic lr_cajnn)")
    p.add_argument("--cache-dir", default=str(default_cache_dir()), help="LMDB cache of restored images, reused "
                   "by later runs and other recognizers/detectors (default: %(default)s)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the restoration cache")
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none", help="autocast the restorers and "
                   "the detector (bf16: CPUs with AVX512-BF16/AMX and GPUs; fp16: GPUs); default none (fp32)")
    p.add_argument("--channels-last", action="store_true", help="run the restorers and the detector in NHWC "
                   "memory format (often faster with --amp bf16)")
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
    return run_reporting_input_errors(TASKS[args.task].run_from_args, args)
