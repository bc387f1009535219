"""Train CAJNN with the paper's recipe (DESIGN 4); runs alone or under ``torchrun`` (DDP).

    python -m benchmark.train_cajnn --config lite --train-dirs DIR [DIR ...] --out runs/cajnn_lite \
        [--val-dir Set5] [--iters N] [--batch 36] [--patch 128] [--export FILE.safetensors]

HR images -> random ``patch`` crop, random rotation/flip -> MATLAB x4 downscale -> JPEG with quality uniform
in ``--qf-range``; Adam, cosine annealing with restarts, L1. Every batch is a pure function of
(seed, rank, iteration), so resuming from ``OUT/last.pt`` (automatic) continues exactly where it stopped.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from benchmark import distributed
from benchmark.degrade import degrade, modcrop
from benchmark.errors import InputError, run_reporting_input_errors
from benchmark.images import list_images, read_image
from benchmark.metrics.image_quality import psnr
from benchmark.report import open_training_log, save_torch_atomic
from benchmark.restore import NetworkRestorer
from models.cajnn import CAJNN, CONFIGS
from models.weights import save_safetensors_fp16

SCALE = 4


def load_hr_images(dirs: list[str], min_side: int) -> list[np.ndarray]:
    """All images of ``dirs`` as uint8 RGB; those smaller than ``min_side`` are skipped and named on stderr."""
    images, too_small = [], []
    for d in dirs:
        for path in list_images(d):
            img = read_image(path)
            if min(img.shape[:2]) >= min_side:
                images.append(img)
            else:
                too_small.append(path.name)
    if too_small:
        print(f"skipped {len(too_small)} images smaller than the patch size {min_side}: {', '.join(too_small)}",
              file=sys.stderr)
    if not images:
        raise InputError(f"{', '.join(dirs)}: no training image is at least {min_side}x{min_side}")
    return images


def sample_batch(images: list[np.ndarray], rng: np.random.Generator, batch: int, patch: int,
                 qf_range: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR, HR) float tensors in [0, 1]: random crop, rotation and flip, then the paper's degradation."""
    lrs, hrs = [], []
    for _ in range(batch):
        img = images[rng.integers(len(images))]
        y, x = rng.integers(img.shape[0] - patch + 1), rng.integers(img.shape[1] - patch + 1)
        hr = np.rot90(img[y:y + patch, x:x + patch], k=int(rng.integers(4)))
        if rng.integers(2):
            hr = hr[:, ::-1]
        hr = np.ascontiguousarray(hr)
        lrs.append(degrade(hr, SCALE, int(rng.integers(qf_range[0], qf_range[1] + 1))))
        hrs.append(hr)

    def to_tensor(arrs):
        return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).float().div_(255)

    return to_tensor(lrs), to_tensor(hrs)


LOSSES = {"l1": nn.functional.l1_loss, "mse": nn.functional.mse_loss}


def cosine_restart_lr(iteration: int, base_lr: float, periods: list[int], eta_min: float) -> float:
    """Cosine annealing from ``base_lr`` to ``eta_min`` within each period, restarting at the next one
    (BasicSR ``CosineAnnealingRestartLR``); the last period repeats."""
    for period in periods[:-1]:
        if iteration < period:
            break
        iteration -= period
    else:
        period = periods[-1]
        iteration %= period
    return eta_min + 0.5 * (base_lr - eta_min) * (1 + math.cos(math.pi * iteration / period))


def validate(model: nn.Module, val_images: list[np.ndarray], qfs: list[int]) -> dict[int, float]:
    """Mean Y-PSNR (no border crop, the paper's protocol) per quality factor."""
    restorer = NetworkRestorer(model, "val", SCALE, device="cpu" if not next(model.parameters()).is_cuda else "cuda")
    result = {q: float(np.mean([psnr(restorer(degrade(hr, SCALE, q)), hr) for hr in val_images])) for q in qfs}
    model.train()
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark.train_cajnn", description=__doc__.split("\n")[0])
    p.add_argument("--config", choices=sorted(CONFIGS), default="paper", help="network size (default: paper)")
    p.add_argument("--train-dirs", nargs="+", required=True, help="folders of HR training images")
    p.add_argument("--val-dir", help="folder of HR validation images (e.g. Set5)")
    p.add_argument("--val-qf", type=int, nargs="+", default=[10, 20, 40], help="validation JPEG qualities")
    p.add_argument("--val-every", type=int, default=1000, help="validate every N iterations")
    p.add_argument("--out", required=True, help="run folder: last.pt checkpoint (resumed automatically), log")
    p.add_argument("--iters", type=int, default=1_000_000, help="total iterations (default: paper's 1e6)")
    p.add_argument("--batch", type=int, default=36, help="total batch size over all ranks (default: 36)")
    p.add_argument("--patch", type=int, default=128, help="HR patch size (default: 128, LR 32)")
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (default: 2e-4)")
    p.add_argument("--periods", type=int, nargs="+", default=[250_000], help="cosine restart periods in "
                   "iterations, the last one repeating (default: 250000, the paper's restarts every 2.5e5)")
    p.add_argument("--eta-min", type=float, default=1e-7, help="cosine floor (default: 1e-7)")
    p.add_argument("--loss", choices=["l1", "mse"], default="l1", help="training loss (default: l1, the paper's); "
                   "mse optimises PSNR directly, for a final fine-tuning phase")
    p.add_argument("--qf-range", type=int, nargs=2, default=[10, 100], help="JPEG quality range (default: 10 100)")
    p.add_argument("--save-every", type=int, default=200, help="checkpoint every N iterations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--amp", choices=["bf16"], help="bf16 autocast for the forward pass (about 1.8x faster on "
                   "CPUs with AVX512-BF16 and on recent GPUs); the loss and the weights stay fp32")
    p.add_argument("--export", help="at the end, write the weights as float16 safetensors with metadata here")
    return p


def train(args: argparse.Namespace) -> dict[int, float]:
    ctx = distributed.init_training(args.device, args.threads, args.batch)
    rank, world, device = ctx.rank, ctx.world, ctx.device

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images = load_hr_images(args.train_dirs, args.patch)
    val_images = [modcrop(read_image(p), SCALE) for p in list_images(args.val_dir)] if args.val_dir else []

    torch.manual_seed(args.seed)
    model = CAJNN(CONFIGS[args.config]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99))
    start = 0
    ckpt_path = out / "last.pt"
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start = ckpt["iteration"]
    ddp_model = nn.parallel.DistributedDataParallel(model) if ctx.distributed else model
    model.train()

    bar = tqdm(range(start, args.iters), initial=start, total=args.iters, disable=rank != 0, dynamic_ncols=True,
               desc=f"cajnn_{args.config}")
    log = open_training_log(out / "log.tsv", start) if rank == 0 else None
    val = {}
    t0 = time.time()
    for it in bar:
        lr = cosine_restart_lr(it, args.lr, args.periods, args.eta_min)
        for group in optimizer.param_groups:
            group["lr"] = lr
        rng = np.random.default_rng([args.seed, rank, it])
        lr_batch, hr_batch = sample_batch(images, rng, args.batch // world, args.patch, tuple(args.qf_range))
        with torch.autocast(device.type, torch.bfloat16, enabled=args.amp == "bf16"):
            sr_batch = ddp_model(lr_batch.to(device))
        loss = LOSSES[args.loss](sr_batch.float(), hr_batch.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done = it + 1
        if rank == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.2e}",
                            **{f"psnr_q{q}": f"{v:.2f}" for q, v in val.items()})
            log.write(f"{done}\t{loss.item():.6f}\t{lr:.3e}\t{time.time() - t0:.1f}\n")
            if val_images and (done % args.val_every == 0 or done == args.iters):
                val = validate(model, val_images, args.val_qf)
                log.write(f"# val {done} " + " ".join(f"q{q}={v:.3f}" for q, v in val.items()) + "\n")
            if done % args.save_every == 0 or done == args.iters:
                save_torch_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "iteration": done,
                                   "config": CONFIGS[args.config].to_dict()}, ckpt_path)
            log.flush()
    if rank == 0 and args.export:
        sha = save_safetensors_fp16(model.state_dict(), args.export,
                                    {"config": CONFIGS[args.config].to_dict(), "iterations": args.iters,
                                     "command": "python -m benchmark.train_cajnn " + " ".join(sys.argv[1:])})
        print(f"wrote {args.export} sha256 {sha}")
    distributed.close(ctx)
    return val


def main(argv: list[str] | None = None) -> int:
    return run_reporting_input_errors(train, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
