"""Train the scene-text recognizer (clovaai four-stage family, attention or CTC); runs alone or under ``torchrun``.

    python -m benchmark.train_recognizer --out runs/trba_narrow [--output-channel 128 --hidden-size 128]
        [--prediction Attn|CTC] [--train-lmdb DIR] [--iters N] [--batch 32] [--export FILE.safetensors]

Data: the synthetic generator's ``train`` split (train fonts, mostly clean or moderately degraded crops, seed
``--seed``; the benchmark's test set uses other fonts, seed 0 and the ``test`` split), or every clovaai LMDB under
``--train-lmdb``. Labels are lowercased and stripped to [0-9a-z] (case-insensitive, 38 attention classes). Adam with
warm-up and cosine decay, gradient clipping at 5 (clovaai ``train.py``). Every batch is a pure function of
(seed, rank, iteration) and ``OUT/last.pt`` is resumed automatically, so an interrupted run continues exactly.
The default width (128 channels, hidden 128) trains on a CPU; ``--output-channel 512 --hidden-size 256`` is the
released TRBA.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from benchmark import distributed
from benchmark.datasets.icdar import WordItem, lmdb_dirs, read_lmdb
from benchmark.datasets.synth_text import sample
from benchmark.errors import InputError, run_reporting_input_errors
from benchmark.metrics.text import filter_labels, normalize_label, score
from benchmark.report import open_training_log, save_torch_atomic
from models.text import (CASE_INSENSITIVE, Recognizer, RecognizerConfig, TextRecognizer, converter_for,
                         save_recognizer, transform_for)
from models.weights import save_safetensors_fp16


def build_config(args: argparse.Namespace) -> RecognizerConfig:
    charset_classes = len(CASE_INSENSITIVE) + (2 if args.prediction == "Attn" else 1)
    return RecognizerConfig(args.transformation, args.feature, args.sequence, args.prediction,
                            num_class=charset_classes, output_channel=args.output_channel,
                            hidden_size=args.hidden_size)


def load_lmdb_items(root: str) -> list[WordItem]:
    """Every LMDB under ``root``, labels filtered as clovaai's default (length <= 25, charset [0-9a-z])."""
    dirs = lmdb_dirs(root)
    if not dirs:
        raise InputError(f"{root}: no LMDB (data.mdb) under this folder")
    items = [item for d in dirs for item in read_lmdb(d)]
    kept = [items[i] for i in filter_labels([item.label for item in items])]
    if not kept:
        raise InputError(f"{root}: no label fits the charset [0-9a-z] and 25 characters")
    return kept


def batch_samples(seed: int, rank: int, world: int, iteration: int, size: int,
                  items: list[WordItem] | None) -> list[tuple[str, np.ndarray]]:
    """The (label, image) samples of one rank's batch: synthetic indices are disjoint across ranks and iterations;
    LMDB items are drawn with a generator seeded by (seed, rank, iteration)."""
    if items is None:
        first = (iteration * world + rank) * size
        return [sample(seed, first + k, "train") for k in range(size)]
    rng = np.random.default_rng([seed, rank, iteration])
    return [(items[i].label, items[i].image()) for i in rng.integers(len(items), size=size)]


def loss_on(model: nn.Module, converter, config: RecognizerConfig, images: torch.Tensor,
            labels: list[str]) -> torch.Tensor:
    """Attention: cross-entropy with teacher forcing, [GO] padding ignored; CTC: CTC loss (clovaai train.py)."""
    if config.prediction == "Attn":
        text, _ = converter.encode(labels, config.batch_max_length)
        logits = model(images, text[:, :-1], is_train=True).float()
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), text[:, 1:].reshape(-1),
                                           ignore_index=0)
    targets, lengths = converter.encode(labels)
    log_probs = model(images).float().log_softmax(2).permute(1, 0, 2)
    frames = torch.full((images.shape[0],), log_probs.shape[0], dtype=torch.int32)
    return nn.functional.ctc_loss(log_probs, targets, frames, lengths, zero_infinity=True)


def learning_rate(iteration: int, base_lr: float, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 1% of ``base_lr``."""
    if iteration < warmup:
        return base_lr * (iteration + 1) / warmup
    t = (iteration - warmup) / max(1, total - warmup)
    return base_lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


def validate(model: Recognizer, converter, samples: list[tuple[str, np.ndarray]]) -> float:
    """Case-insensitive word accuracy (%) on held-out samples."""
    model.eval()
    predictions = TextRecognizer(model, converter, next(model.parameters()).device)([s[1] for s in samples])
    model.train()
    return score([p for p, _ in predictions], [s[0] for s in samples])["accuracy"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark.train_recognizer", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="run folder: last.pt checkpoint (resumed automatically), log.tsv")
    p.add_argument("--transformation", choices=["None", "TPS"], default="TPS")
    p.add_argument("--feature", choices=["VGG", "RCNN", "ResNet"], default="ResNet")
    p.add_argument("--sequence", choices=["None", "BiLSTM"], default="BiLSTM")
    p.add_argument("--prediction", choices=["Attn", "CTC"], default="Attn")
    p.add_argument("--output-channel", type=int, default=128, help="feature width (released TRBA: 512)")
    p.add_argument("--hidden-size", type=int, default=128, help="LSTM/attention width (released TRBA: 256)")
    p.add_argument("--train-lmdb", help="folder of clovaai LMDBs to train on (default: the synthetic generator)")
    p.add_argument("--iters", type=int, default=3000, help="total iterations (default 3000)")
    p.add_argument("--batch", type=int, default=32, help="total batch size over all ranks (default 32)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--warmup", type=int, default=200, help="warm-up iterations (default 200)")
    p.add_argument("--clip", type=float, default=5.0, help="gradient norm clip (clovaai: 5)")
    p.add_argument("--amp", choices=["bf16"], help="autocast the forward pass (bf16: ~1.7x faster on AVX512-BF16)")
    p.add_argument("--val-n", type=int, default=200, help="held-out synthetic samples (seed + 1) for validation")
    p.add_argument("--val-every", type=int, default=250, help="validate every N iterations")
    p.add_argument("--save-every", type=int, default=50, help="checkpoint every N iterations")
    p.add_argument("--seed", type=int, default=1, help="seed of the weights and the synthetic stream (default 1)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--export", help="at the end, write float16 weights here: .safetensors (config, charset and "
                   "command in the metadata) or any other suffix for the save_recognizer format")
    return p


def train(args: argparse.Namespace) -> dict:
    """Train (or resume) to ``args.iters``; returns the last loss and validation accuracy."""
    ctx = distributed.init_training(args.device, args.threads, args.batch)
    rank, world, device = ctx.rank, ctx.world, ctx.device

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    items = load_lmdb_items(args.train_lmdb) if args.train_lmdb else None
    val_samples = [sample(args.seed + 1, i, "train") for i in range(args.val_n)] if rank == 0 else []

    config = build_config(args)
    converter = converter_for(config, CASE_INSENSITIVE)
    torch.manual_seed(args.seed)
    model = Recognizer(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999))
    start = 0
    ckpt_path = out / "last.pt"
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        if ckpt["config"] != asdict(config):
            raise InputError(f"{ckpt_path}: checkpoint of another architecture; use a new --out")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start = ckpt["iteration"]
    ddp_model = nn.parallel.DistributedDataParallel(model) if ctx.distributed else model
    model.train()
    transform = transform_for(config)

    bar = tqdm(range(start, args.iters), initial=start, total=args.iters, disable=rank != 0, dynamic_ncols=True,
               desc=f"{config.name} {config.output_channel}/{config.hidden_size}")
    log = open_training_log(out / "log.tsv", start) if rank == 0 else None
    result = {"loss": float("nan"), "val_accuracy": float("nan")}
    t0 = time.time()
    for it in bar:
        lr = learning_rate(it, args.lr, args.iters, args.warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr
        samples = batch_samples(args.seed, rank, world, it, args.batch // world, items)
        images = torch.stack([transform(img) for _, img in samples]).to(device)
        labels = [normalize_label(label) for label, _ in samples]
        autocast = torch.autocast(device.type, dtype=torch.bfloat16) if args.amp else contextlib.nullcontext()
        with autocast:
            loss = loss_on(ddp_model, converter, config, images, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        done = it + 1
        if rank == 0:
            result["loss"] = loss.item()
            log.write(f"{done}\t{loss.item():.5f}\t{lr:.3e}\t{time.time() - t0:.1f}\n")
            if val_samples and (done % args.val_every == 0 or done == args.iters):
                result["val_accuracy"] = validate(model, converter, val_samples)
                log.write(f"# val {done} accuracy={result['val_accuracy']:.2f}\n")
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.1e}", val=f"{result['val_accuracy']:.1f}")
            if done % args.save_every == 0 or done == args.iters:
                save_torch_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "iteration": done,
                                   "config": asdict(config)}, ckpt_path)
            log.flush()
    if rank == 0 and args.export:
        export(model, args.export, {"iterations": args.iters, "val_accuracy": result["val_accuracy"],
                                    "data": args.train_lmdb or f"synth_text train split, seed {args.seed}",
                                    "command": "python -m benchmark.train_recognizer " + " ".join(sys.argv[1:])})
    distributed.close(ctx)
    return result


def export(model: Recognizer, path: str | Path, meta: dict) -> None:
    """float16 weights: safetensors with config/charset/meta in the header, or the save_recognizer format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        config = asdict(model.config) | {"input_size": list(model.config.input_size)}
        save_safetensors_fp16(model.state_dict(), path, {"config": config, "character": CASE_INSENSITIVE, **meta})
    else:
        save_recognizer(path, model, CASE_INSENSITIVE, half=True)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


def main(argv: list[str] | None = None) -> int:
    return run_reporting_input_errors(train, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
