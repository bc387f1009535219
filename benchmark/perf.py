"""Speed and memory of CAJNN x4 restoration on this machine, against baselines measured in the same run.

    python -m benchmark.perf [--device cpu] [--size 128] [--repeats 3] [--memory-lr 1000x750]
    python -m benchmark.perf --workload ic13 wider_lr set5 [--limit 16]   (benchmark.perf_workloads)

Prints, for ``cajnn_paper``: LR megapixels/s and achieved GFLOP/s for fp32 eager, channels_last and bf16
autocast, next to a dense matmul peak measured in the same run (fp32 and bf16); the PSNR cost of bf16 on Set5
(bundled weights, paper protocol) when ``../shared/data`` or ``--set5`` is available; and the peak memory of a
tiled x4 restoration of a ``--memory-lr`` image, measured in a fresh subprocess.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmark import perf_workloads, restore
from benchmark.errors import run_reporting_input_errors
from benchmark.report import device_description, markdown_table, write_csv
from models.amp import emulated_amp_note
from models.cajnn import cajnn_paper


def timed(fn, device: torch.device, repeats: int) -> float:
    """Best-of-``repeats`` wall time of ``fn`` after one warm-up call, device synchronised."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        restore.synchronize(device)
        start = time.perf_counter()
        fn()
        restore.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype, n: int, repeats: int) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n**3 / timed(lambda: a @ b, device, repeats) / 1e9


def model_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return counter.get_total_flops()


def throughput(device: torch.device, size: int, repeats: int) -> list[dict]:
    """fp32 eager, channels_last and bf16 autocast forward passes of cajnn_paper on a size x size LR batch."""
    torch.manual_seed(0)
    model = cajnn_paper().to(device).eval()
    x = torch.rand(1, 3, size, size, device=device)
    flops = model_flops(model, x)
    rows = []
    for mode in ("fp32", "channels_last", "bf16"):
        m = model.to(memory_format=torch.channels_last) if mode != "fp32" else model
        xi = x.contiguous(memory_format=torch.channels_last) if mode != "fp32" else x

        def run(m=m, xi=xi, mode=mode):
            with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=mode == "bf16"):
                m(xi)

        seconds = timed(run, device, repeats)
        rows.append({"mode": mode, "seconds": seconds, "lr_mpix_per_s": size * size / seconds / 1e6,
                     "gflops": flops / seconds / 1e9})
        model = model.to(memory_format=torch.contiguous_format)
    return rows


def bf16_psnr_cost(set5: Path, device: torch.device) -> dict:
    """Mean Set5 PSNR at QF 10/20/40 with the bundled weights in fp32 and bf16 autocast."""
    from benchmark.degrade import degrade, modcrop
    from benchmark.images import list_images, read_image
    from benchmark.metrics.image_quality import psnr

    hrs = [modcrop(read_image(p), 4) for p in list_images(set5)]
    result = {}
    for amp in (None, "bf16"):
        r = restore.cajnn(device=str(device), amp=amp)
        result[amp or "fp32"] = float(np.mean([psnr(r(degrade(hr, 4, q)), hr) for q in (10, 20, 40) for hr in hrs]))
    result["cost_db"] = result["fp32"] - result["bf16"]
    return result


def peak_memory_child(lr_w: int, lr_h: int, tile: int, device: str) -> None:
    """Run in a fresh process: restore one random LR image tiled; print peak RSS (and CUDA peak) as JSON."""
    torch.manual_seed(0)
    r = restore.NetworkRestorer(cajnn_paper(), "cajnn_paper", 4, device=device, tile=tile)
    img = np.random.default_rng(0).integers(0, 256, (lr_h, lr_w, 3), dtype=np.uint8)
    start = time.perf_counter()
    out = r(img)
    seconds = time.perf_counter() - start
    peak_rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    cuda_peak = torch.cuda.max_memory_allocated() / 1024**3 if r.device.type == "cuda" else None
    print(json.dumps({"out_shape": list(out.shape), "seconds": seconds, "peak_rss_gb": peak_rss_gb,
                      "cuda_peak_gb": cuda_peak}))


def print_machine(device: torch.device) -> None:
    """The report's machine line, and a note when this CPU has no native bf16 convolutions."""
    print(f"device: {device_description(device)}, torch {torch.__version__}")
    if emulated_amp_note(device.type, "bf16"):
        print("note: this CPU has no native bf16 convolutions; bf16 is emulated here (measured as such, or skipped)")


def workloads_main(args: argparse.Namespace) -> int:
    """``--workload``: the table of `perf_workloads.run`, its CSV and the ratios against issue 13's targets."""
    device = restore.resolve_device(args.device)
    print_machine(device)
    table = perf_workloads.run(args.workload, args.restorers, args.limit, args.paper_limit, args.detector_limit,
                               device, page_baseline=not args.no_page_baseline, mode_names=tuple(args.modes))
    write_csv(table, args.csv)
    print(markdown_table(table.round(3)))
    print("\n".join(perf_workloads.summary(table)))
    print(f"wrote {args.csv}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.perf", description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--size", type=int, default=128, help="LR side of the throughput input (default 128)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--matmul-n", type=int, default=4096)
    p.add_argument("--set5", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/sr/Set5")
    p.add_argument("--memory-lr", default="1000x750", help="WxH of the LR image for the peak-memory run")
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    w = p.add_argument_group("real workloads (instead of the measurements above)")
    w.add_argument("--workload", nargs="+", choices=perf_workloads.WORKLOADS,
                   help="time the restorers on these workloads and the detector per WIDER image")
    w.add_argument("--restorers", nargs="+", default=list(perf_workloads.RESTORERS))
    w.add_argument("--limit", type=int, default=16, help="images per workload (default 16)")
    w.add_argument("--paper-limit", type=int, default=2,
                   help="images per workload for the paper-size restorers cajnn_paper and realesrgan_x4plus (default 2)")
    w.add_argument("--detector-limit", type=int, default=2, help="WIDER images for the detector (0: skip)")
    w.add_argument("--no-page-baseline", action="store_true", help="skip timing the first group again on 4 KiB "
                   "pages in a child process (the baseline of the huge pages the suite uses)")
    w.add_argument("--modes", nargs="+", default=list(perf_workloads.DEFAULT_MODES),
                   help=f"precision and memory format: {', '.join(perf_workloads.MODES)} (default: "
                   f"{' '.join(perf_workloads.DEFAULT_MODES)}; "
                   "fp32+cl is the tables' default; bf16 is skipped on a CPU that would only emulate it)")
    w.add_argument("--csv", type=Path, default=Path("results/perf/workloads.csv"))
    args = p.parse_args(argv)
    if args.workload:
        return run_reporting_input_errors(workloads_main, args)
    w, h = (int(v) for v in args.memory_lr.split("x"))
    if args.memory_child:
        peak_memory_child(w, h, args.tile, args.device)
        return 0
    device = restore.resolve_device(args.device)
    print_machine(device)
    peak32 = matmul_peak_gflops(device, torch.float32, args.matmul_n, args.repeats)
    peak16 = matmul_peak_gflops(device, torch.bfloat16, args.matmul_n, args.repeats)
    print(f"matmul peak ({args.matmul_n}^3): fp32 {peak32:.1f} GFLOP/s, bf16 {peak16:.1f} GFLOP/s")
    rows = throughput(device, args.size, args.repeats)
    fp32_s = rows[0]["seconds"]
    print(f"cajnn_paper x4 on a {args.size}x{args.size} LR input:")
    for r in rows:
        print(f"  {r['mode']:>13}: {r['lr_mpix_per_s']:.4f} LR MP/s, {r['gflops']:.1f} GFLOP/s "
              f"= {100 * r['gflops'] / peak32:.0f}% of fp32 matmul peak, speed-up vs fp32 {fp32_s / r['seconds']:.2f}x")
    if args.set5.is_dir():
        cost = bf16_psnr_cost(args.set5, device)
        print(f"bf16 PSNR cost on Set5 (bundled weights, QF 10/20/40 mean): fp32 {cost['fp32']:.3f} dB, "
              f"bf16 {cost['bf16']:.3f} dB, cost {cost['cost_db']:.3f} dB")
    else:
        print(f"bf16 PSNR cost: skipped, {args.set5} not found (pass --set5)")
    child = subprocess.run([sys.executable, "-m", "benchmark.perf", "--memory-child", "--memory-lr", args.memory_lr,
                            "--tile", str(args.tile), "--device", str(device)], capture_output=True, text=True,
                           check=True)
    mem = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"tiled x4 restoration of a {w}x{h} LR image (tile {args.tile}): peak RSS {mem['peak_rss_gb']:.2f} GB"
          + (f", CUDA peak {mem['cuda_peak_gb']:.2f} GB" if mem["cuda_peak_gb"] is not None else "")
          + f", {mem['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
