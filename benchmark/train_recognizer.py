"""Train the scene-text recognizer (clovaai four-stage family, attention or CTC); runs alone or under ``torchrun``.

    python -m benchmark.train_recognizer --out runs/trba_narrow [--output-channel 128 --hidden-size 128]
        [--prediction Attn|CTC] [--train-lmdb DIR | --bundle DIR [--synth-fraction 0.6]] [--iters N] [--batch 32]
        [--workers N] [--max-minutes M] [--init-weights FILE.safetensors] [--export FILE.safetensors]

Data, one of:
- default: the synthetic generator's ``train`` split (train fonts, mostly clean or moderately degraded crops, seed
  ``--seed``; the benchmark's test set uses other fonts, seed 0 and the ``test`` split); validation on held-out
  synthetic crops;
- ``--bundle DIR`` (built by ``python -m benchmark.datasets.text_train build-bundle``): a ``--synth-fraction`` of
  each batch from the MJSynth-style ``synth_text.rich_sample`` stream in the bundle's fonts plus matplotlib's
  train fonts on the bundle's photos, the rest real train crops (IIIT5K/SVT train) augmented by ``text_train.augment_real``; validation on
  the bundle's held-out real crops (never a test set);
- ``--train-lmdb DIR``: every clovaai LMDB under DIR.
Labels are lowercased and stripped to [0-9a-z] (case-insensitive, 38 attention classes). Adam with warm-up and
cosine decay, gradient clipping at 5 (clovaai ``train.py``). Every batch is a pure function of (seed, rank,
iteration), whichever ``--workers`` build it, and ``OUT/last.pt`` is resumed automatically, so an interrupted run
continues exactly. ``--max-minutes`` bounds the run's wall time (summed over resumes): the cosine then runs over
whichever of the iterations or the minutes ends first (so the learning rate depends on the machine's speed), and
the run stops cleanly, saving last.pt and exporting. ``--init-weights`` starts a new run from exported weights.
The default width (128 channels, hidden 128) trains on a CPU; ``--output-channel 512 --hidden-size 256`` is the
released TRBA.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from benchmark import distributed
from benchmark.datasets.icdar import WordItem, lmdb_dirs, read_lmdb
from benchmark.datasets.synth_text import FONT_DIR, TRAIN_FONTS, rich_sample, sample
from benchmark.datasets.text_train import Crop, augment_real, bundle_crops, bundle_fonts, bundle_photos
from benchmark.errors import InputError, positive_minutes, run_reporting_input_errors
from benchmark.metrics.text import filter_labels, normalize_label, normalize_prediction
from benchmark.report import open_training_log, save_torch_atomic
from models.amp import autocast
from models.text import (CASE_INSENSITIVE, Recognizer, RecognizerConfig, TextRecognizer, converter_for,
                         save_recognizer, transform_for)
from models.weights import load_strict, read_state_dict, save_safetensors_fp16


@dataclass(frozen=True)
class TrainData:
    """Where batches come from: LMDB `items`; else, with `fonts`, the rich synthetic stream mixed with `real` crops
    (a `synth_fraction` of each batch synthetic); else the synthetic generator's train split."""

    items: list[WordItem] | None = None
    fonts: tuple[Path, ...] | None = None
    photos: tuple[np.ndarray, ...] | None = None
    real: tuple[Crop, ...] = ()
    synth_fraction: float = 1.0


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


def load_bundle(bundle: str, synth_fraction: float) -> TrainData:
    """The bundle's fonts (plus matplotlib's train fonts) and its real train crops whose label fits the charset."""
    if not 0 <= synth_fraction <= 1:
        raise InputError(f"--synth-fraction {synth_fraction}: must lie in [0, 1]")
    fonts = bundle_fonts(bundle) + tuple(FONT_DIR / name for name in TRAIN_FONTS)
    crops = bundle_crops(bundle, "train")
    real = tuple(c for c in crops if normalize_label(c.label) and len(c.label) <= 25)
    if synth_fraction < 1 and not real:
        raise InputError(f"{bundle}: no real train crop with a [0-9a-z] label")
    return TrainData(fonts=fonts, photos=bundle_photos(bundle), real=real, synth_fraction=synth_fraction)


def batch_samples(seed: int, rank: int, world: int, iteration: int, size: int,
                  data: TrainData) -> list[tuple[str, np.ndarray]]:
    """The (label, image) samples of one rank's batch: synthetic indices are disjoint across ranks and iterations;
    real crops, LMDB items and the synthetic/real choice are drawn with generators seeded by (seed, rank,
    iteration[, position])."""
    first = (iteration * world + rank) * size
    rng = np.random.default_rng([seed, rank, iteration])
    if data.items is not None:
        return [(data.items[i].label, data.items[i].image()) for i in rng.integers(len(data.items), size=size)]
    if data.fonts is None:
        return [sample(seed, first + k, "train") for k in range(size)]
    samples = []
    for k in range(size):
        if rng.random() < data.synth_fraction:
            samples.append(rich_sample(seed, first + k, data.fonts, data.photos))
        else:
            crop = data.real[rng.integers(len(data.real))]
            samples.append((crop.label, augment_real(np.random.default_rng([seed, rank, iteration, k]), crop.image())))
    return samples


class Batches(torch.utils.data.Dataset):
    """Item `iteration` is that iteration's (images B x C x H x W, normalised labels) of one rank, so DataLoader
    workers can build whole batches in parallel without changing them."""

    def __init__(self, seed: int, rank: int, world: int, size: int, data: TrainData, config: RecognizerConfig):
        self.seed, self.rank, self.world, self.size, self.data = seed, rank, world, size, data
        self.transform = transform_for(config)

    def __len__(self) -> int:
        return sys.maxsize

    def __getitem__(self, iteration: int) -> tuple[torch.Tensor, list[str]]:
        samples = batch_samples(self.seed, self.rank, self.world, iteration, self.size, self.data)
        return torch.stack([self.transform(img) for _, img in samples]), [normalize_label(lb) for lb, _ in samples]


def loss_on(model: nn.Module, converter, config: RecognizerConfig, images: torch.Tensor,
            labels: list[str]) -> torch.Tensor:
    """Attention: cross-entropy with teacher forcing, [GO] padding ignored; CTC: CTC loss (clovaai train.py)."""
    if config.prediction == "Attn":
        text = converter.encode(labels, config.batch_max_length)[0].to(images.device)
        logits = model(images, text[:, :-1], is_train=True).float()
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), text[:, 1:].reshape(-1),
                                           ignore_index=0)
    targets, lengths = converter.encode(labels)
    log_probs = model(images).float().log_softmax(2).permute(1, 0, 2)
    frames = torch.full((images.shape[0],), log_probs.shape[0], dtype=torch.int32)
    return nn.functional.ctc_loss(log_probs, targets, frames, lengths, zero_infinity=True)


def learning_rate(iteration: int, base_lr: float, total: int, warmup: int, time_fraction: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to 1% of ``base_lr`` over the iterations, or faster when the fraction of
    the wall-time budget spent (``time_fraction``) is further along."""
    if iteration < warmup:
        return base_lr * (iteration + 1) / warmup
    t = min(1.0, max((iteration - warmup) / max(1, total - warmup), time_fraction))
    return base_lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


def validate(model: Recognizer, converter, samples: list[tuple[str, np.ndarray]]) -> float:
    """Case-insensitive word accuracy (%) on held-out samples (clovaai test.py's comparison, without nltk)."""
    model.eval()
    predictions = TextRecognizer(model, converter, next(model.parameters()).device)([s[1] for s in samples])
    model.train()
    hits = sum(normalize_prediction(p) == normalize_label(s[0]) for (p, _), s in zip(predictions, samples))
    return hits / len(samples) * 100


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
    p.add_argument("--bundle", help="text_train bundle: rich synthetic stream in its fonts + its real train crops, "
                   "validation on its held-out real crops")
    p.add_argument("--synth-fraction", type=float, default=0.6, help="with --bundle: synthetic share of a batch")
    p.add_argument("--workers", type=int, default=0, help="DataLoader processes building batches (0: in process)")
    p.add_argument("--max-minutes", type=positive_minutes, help="wall-time budget (over resumes): the cosine ends "
                   "by then and the run stops, saves and exports")
    p.add_argument("--init-weights", help="start a new run from these exported .safetensors weights (same config)")
    p.add_argument("--iters", type=int, default=3000, help="total iterations (default 3000)")
    p.add_argument("--batch", type=int, default=32, help="total batch size over all ranks (default 32)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--warmup", type=int, default=200, help="warm-up iterations (default 200)")
    p.add_argument("--clip", type=float, default=5.0, help="gradient norm clip (clovaai: 5)")
    p.add_argument("--amp", choices=["bf16"], help="autocast the forward pass, TPS kept in float32 (bf16: ~1.5x faster "
                   "on AVX512-BF16 at the float32 loss)")
    p.add_argument("--val-n", type=int, default=200, help="held-out synthetic samples (seed + 1) for validation; "
                   "with --bundle: at most this many of its held-out real crops (0: all)")
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
    ctx = distributed.init_training(args.device, args.threads, args.batch, args.amp)
    rank, world, device = ctx.rank, ctx.world, ctx.device

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.train_lmdb and args.bundle:
        raise InputError("--train-lmdb and --bundle: choose one source of training data")
    if args.bundle:
        data = load_bundle(args.bundle, args.synth_fraction)
        val = bundle_crops(args.bundle, "val")
        val_samples = [(c.label, c.image()) for c in val[:args.val_n or len(val)]] if rank == 0 else []
    else:
        data = TrainData(items=load_lmdb_items(args.train_lmdb) if args.train_lmdb else None)
        val_samples = [sample(args.seed + 1, i, "train") for i in range(args.val_n)] if rank == 0 else []

    config = build_config(args)
    converter = converter_for(config, CASE_INSENSITIVE)
    torch.manual_seed(args.seed)
    model = Recognizer(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999))
    start, elapsed_s = 0, 0.0
    ckpt_path = out / "last.pt"
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        if ckpt["config"] != asdict(config):
            raise InputError(f"{ckpt_path}: checkpoint of another architecture; use a new --out")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start, elapsed_s = ckpt["iteration"], ckpt.get("elapsed_s", 0.0)
    elif args.init_weights:
        init_from_export(model, args.init_weights)
    ddp_model = nn.parallel.DistributedDataParallel(model) if ctx.distributed else model
    model.train()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
    batches = torch.utils.data.DataLoader(
        Batches(args.seed, rank, world, args.batch // world, data, config), batch_size=None,
        sampler=range(start, args.iters), num_workers=args.workers, worker_init_fn=distributed.single_threaded_worker,
        prefetch_factor=4 if args.workers else None, pin_memory=device.type == "cuda",
        # LMDB items hold an open environment, which cannot be sent to a spawned worker: those fork
        multiprocessing_context=(distributed.WORKER_CONTEXT if args.workers and data.items is None else None))

    bar = tqdm(range(start, args.iters), initial=start, total=args.iters, disable=rank != 0, dynamic_ncols=True,
               desc=f"{config.name} {config.output_channel}/{config.hidden_size}")
    log = open_training_log(out / "log.tsv", start) if rank == 0 else None
    result = {"loss": float("nan"), "val_accuracy": float("nan")}
    budget_s = args.max_minutes * 60 if args.max_minutes else math.inf
    t0 = time.time() - elapsed_s
    done = start
    for it, (images, labels) in zip(bar, batches):
        time_fraction = (time.time() - t0) / budget_s
        lr = learning_rate(it, args.lr, args.iters, args.warmup, time_fraction)
        for group in optimizer.param_groups:
            group["lr"] = lr
        images = images.to(device, non_blocking=True)
        with autocast(device.type, args.amp):
            loss = loss_on(ddp_model, converter, config, images, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        done = it + 1
        out_of_time = budget_s < math.inf and distributed.agree_any(ctx, time.time() - t0 >= budget_s)
        last = done == args.iters or out_of_time
        if rank == 0:
            result["loss"] = loss.item()
            log.write(f"{done}\t{loss.item():.5f}\t{lr:.3e}\t{time.time() - t0:.1f}\n")
            if val_samples and (done % args.val_every == 0 or last):
                result["val_accuracy"] = validate(model, converter, val_samples)
                log.write(f"# val {done} accuracy={result['val_accuracy']:.2f}\n")
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.1e}", val=f"{result['val_accuracy']:.1f}")
            if done % args.save_every == 0 or last:
                save_torch_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "iteration": done,
                                   "config": asdict(config), "elapsed_s": time.time() - t0}, ckpt_path)
            log.flush()
        if out_of_time:
            break
    bar.close()
    if rank == 0 and args.export:
        source = (args.train_lmdb or (f"bundle {args.bundle}, synth fraction {args.synth_fraction}, seed {args.seed}"
                                      if args.bundle else f"synth_text train split, seed {args.seed}"))
        export(model, args.export, {"iterations": done, "val_accuracy": result["val_accuracy"], "data": source,
                                    "command": "python -m benchmark.train_recognizer " + " ".join(sys.argv[1:])})
    distributed.close(ctx)
    return result


def init_from_export(model: Recognizer, path: str) -> None:
    """Load weights written by ``--export`` (.safetensors) into `model`; the header's config must be the run's."""
    tensors, meta = read_state_dict(path)
    config = meta.get("config")
    expected = asdict(model.config) | {"input_size": list(model.config.input_size)}
    if config is not None and config != expected:
        raise InputError(f"{path}: weights of another architecture ({config}); pass the same width flags")
    load_strict(model, tensors, path)


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
