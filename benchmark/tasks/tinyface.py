"""Table III and Fig. 6: tiny-face detection AP (WIDER FACE easy/medium/hard) on the original images, on their x4
MATLAB-bicubic downscale, and on that downscale restored x4 (DESIGN 2, 7).

Rows: ``hr`` (the image as it is), ``lr`` (x4 downscale, optional JPEG; its detections are scaled back x4),
``lr_bicubic`` (control: MATLAB bicubic x4 up), ``lr_cajnn`` (CAJNN x4). Any restorer (``name``, ``scale``,
``cache_key``, ``__call__``) becomes a row from Python, and any detector (uint8 RGB image -> [N, 5] x1, y1, x2, y2,
score) replaces Tiny Faces. Scores are the detector's raw values (Tiny Faces: logits) in every row, because the
official evaluation min-max normalises them over the dataset (DESIGN 6.3).

Data: a WIDER FACE validation folder under ``--data-root`` (official or flat layout); only the images present are
evaluated, and a table from a partial copy says "subset of N images, not the official protocol". Without it, the
embedded default: synthetic crowd scenes in WIDER layout (`benchmark.datasets.synth_faces`), cached under ``--out``.
Each row writes an official prediction folder ``predictions/<variant>/<event>/<name>.txt`` (with
``predictions/<variant>.json`` beside it: its key and timings, written last); a row whose restorer, detector and data
are unchanged is read back instead of recomputed. Timings: warm-up first, device synchronised, per stage.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from benchmark import restore
from benchmark.datasets import synth_faces
from benchmark.datasets.widerface import GT_MAT, SETTING_MAT, SETTINGS, WiderFaceGT, image_path, images_on_disk, \
    locate, read_gt_mat
from benchmark.degrade import degrade
from benchmark.errors import InputError
from benchmark.images import read_image
from benchmark.metrics.widerface import SettingResult, evaluate, read_predictions, write_predictions, xyxy_to_xywh
from benchmark.report import device_description, markdown_table, run_metadata, write_atomic, write_csv, write_json
from models.tiny_faces import TinyFacesDetector, load_tiny_faces
from models.weights import TINY_FACES_R18_SYNTH, sha256_of

SCALE = 4
VARIANTS = ("hr", "lr", "lr_bicubic", "lr_cajnn")
Detector = Callable[[np.ndarray], np.ndarray]


@dataclass
class Variant:
    """A Table III row: the detector sees the HR image (`restorer` None) or `restorer` applied to the x4-downscaled
    image; detections are mapped back to HR pixels by SCALE / restorer.scale."""

    name: str
    restorer: restore.Restorer | None = None

    @property
    def cache_key(self) -> str:
        return "hr" if self.restorer is None else f"lr x{SCALE} >> {self.restorer.cache_key}"


@dataclass
class Dataset:
    """The evaluated images (ids in ground-truth order), their ground truth, a description for the table and a digest
    of the ground truth files and image bytes (the data part of a row's reuse key)."""

    images_dir: Path
    gt: WiderFaceGT
    n_gt_images: int
    description: str
    digest: str


def build_variant(name: str, cajnn_weights: str | None, settings: dict) -> Variant:
    """The row `name` of VARIANTS."""
    if name == "hr":
        return Variant(name)
    if name == "lr":
        return Variant(name, restore.Identity())
    if name == "lr_bicubic":
        return Variant(name, restore.Bicubic(SCALE))
    if name == "lr_cajnn":
        return Variant(name, restore.cajnn(cajnn_weights, **settings))
    raise InputError(f"--variants: unknown {name!r} (choose from {', '.join(VARIANTS)})")


def build_detector(detector_weights: str | None, templates: str, device: torch.device) -> tuple[Detector, str]:
    """Tiny Faces from `detector_weights` (default: the bundled synthetic-trained ResNet-18 variant) and its
    identity for reuse (file sha256 + test settings)."""
    path = Path(detector_weights) if detector_weights else TINY_FACES_R18_SYNTH.path
    if not detector_weights and not path.is_file():
        raise InputError(f"{path}: the bundled detector weights are missing (train them with "
                         "python -m benchmark.train_tinyfaces, or pass --detector-weights)")
    if templates not in ("original", "port"):
        raise InputError(f"--templates: unknown {templates!r} (choose from original, port)")
    detector = TinyFacesDetector(load_tiny_faces(path).to(device), templates=templates)
    key = (f"tiny_faces|{sha256_of(path)}|templates={templates}|scales={detector.scales}|"
           f"prob={detector.prob_thresh}|nms={detector.nms_iou}|max_side={detector.max_side}")
    return detector, key


def load_dataset(data_root: str | None, synth_images: int, seed: int, limit: int | None, cache_dir: Path) -> Dataset:
    """The ground truth of the images present under `data_root` (or of the embedded synthetic set), first `limit`."""
    if data_root is None:
        root = synth_faces.default_test_set(cache_dir, synth_images, seed)
        description = f"embedded synthetic WIDER-layout crowd scenes (seed {seed}), not WIDER FACE"
    else:
        root = Path(data_root)
        description = f"WIDER FACE val at {root}"
    layout = locate(root)
    gt = read_gt_mat(layout.gt_dir)
    ids = images_on_disk(layout.images_dir, gt.image_ids)
    if not ids:
        raise InputError(f"{layout.images_dir}: none of the {len(gt)} images listed in {layout.gt_dir / GT_MAT} "
                         "is on disk")
    ids = ids[:limit] if limit else ids
    digest = hashlib.sha256()
    for name in [GT_MAT] + [SETTING_MAT.format(s) for s in SETTINGS]:
        digest.update((layout.gt_dir / name).read_bytes())
    for image_id in ids:
        digest.update(image_id.encode() + b"\0" + hashlib.sha256(image_path(layout.images_dir, image_id).read_bytes()
                                                                 ).digest())
    return Dataset(layout.images_dir, gt.subset(ids), len(gt), description, digest.hexdigest())


def low_res(hr: np.ndarray, jpeg_quality: int | None, path: Path) -> np.ndarray:
    """The LR input: MATLAB-bicubic x4 downscale, then JPEG at `jpeg_quality` (None: none)."""
    if min(hr.shape[:2]) < 2 * SCALE:
        raise InputError(f"{path}: {hr.shape[1]}x{hr.shape[0]} px is too small for a x{SCALE} downscale")
    return degrade(hr, SCALE, jpeg_quality)


def detect_variant(variant: Variant, detector: Detector, data: Dataset, jpeg_quality: int | None,
                   device: torch.device) -> tuple[dict[str, np.ndarray], dict]:
    """Detections of every image ({id: [N, 5] x, y, w, h, score} in HR pixels) and the per-stage wall times."""
    preds, times = {}, {"time_restore_s": 0.0, "time_detect_s": 0.0}
    warm = np.full((64, 64, 3), 128, np.uint8)
    if variant.restorer is not None:
        variant.restorer(warm[:16, :16])
    detector(warm)  # warm-up, not timed
    box_scale = 1.0 if variant.restorer is None else SCALE / variant.restorer.scale
    start_total = time.perf_counter()
    for image_id in tqdm(data.gt.image_ids, desc=variant.name, leave=False, dynamic_ncols=True):
        path = image_path(data.images_dir, image_id)
        image = read_image(path)
        if variant.restorer is not None:
            lr = low_res(image, jpeg_quality, path)
            restore.synchronize(device)
            start = time.perf_counter()
            image = variant.restorer(lr)
            restore.synchronize(device)
            times["time_restore_s"] += time.perf_counter() - start
        start = time.perf_counter()
        dets = np.array(detector(image), dtype=np.float64).reshape(-1, 5)  # a copy: scaled below
        restore.synchronize(device)
        times["time_detect_s"] += time.perf_counter() - start
        dets[:, :4] *= box_scale
        preds[image_id] = xyxy_to_xywh(dets)
    times["time_total_s"] = time.perf_counter() - start_total
    return preds, times


def finished(meta_path: Path, key: dict) -> dict | None:
    """The stored row of a finished variant with the same key, else None."""
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    return meta if meta.get("key") == key else None


def pr_figure(path: Path, results: dict[str, dict[str, SettingResult]], title: str) -> None:
    """Fig. 6: one panel per setting, one precision-recall curve per row with its AP in the legend."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, setting in zip(axes, SETTINGS):
        for name, res in results.items():
            r = res[setting]
            ok = ~np.isnan(r.precision)
            ax.plot(r.recall[ok], r.precision[ok], label=f"{name} ({r.ap:.3f})")
        ax.set(title=f"{setting} ({results[next(iter(results))][setting].num_faces} faces)", xlabel="recall",
               ylabel="precision", xlim=(0, 1), ylim=(0, 1.01))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scene_figure(path: Path, data: Dataset, preds: dict[str, dict[str, np.ndarray]]) -> None:
    """The first image with its counted faces (green) and each row's detections with a positive score (red)."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    image_id = data.gt.image_ids[0]
    image = read_image(image_path(data.images_dir, image_id))
    counted = data.gt.keep["hard"][0]
    fig, axes = plt.subplots(1, len(preds), figsize=(4.2 * len(preds), 4.2 * image.shape[0] / image.shape[1] + 0.4),
                             squeeze=False)
    for ax, (name, p) in zip(axes[0], preds.items()):
        ax.imshow(image)
        for x, y, w, h in data.gt.boxes[0][counted]:
            ax.add_patch(Rectangle((x, y), w, h, fill=False, color="lime", lw=0.8))
        shown = p[image_id][p[image_id][:, 4] > 0]
        for x, y, w, h, _ in shown:
            ax.add_patch(Rectangle((x, y), w, h, fill=False, color="red", lw=0.8))
        ax.set_title(f"{name}: {len(shown)} detections with score > 0", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(data_root: str | None = None, variants: Sequence[str] = VARIANTS, detector_weights: str | None = None,
        cajnn_weights: str | None = None, templates: str = "original", matlab: bool = False,
        lr_jpeg_quality: int | None = None, synth_images: int = synth_faces.DEFAULT_N,
        out: str | Path = "results/tinyface", device: str = "auto", seed: int = 0, limit: int | None = None,
        restorers: dict[str, restore.Restorer] | None = None, detector: Detector | None = None) -> pd.DataFrame:
    """Compute Table III into ``out``: ``predictions/<variant>/`` (official format) and ``<variant>.json``,
    ``table3.csv``, ``table3.md``, ``fig6_pr.png``, ``scene.png``, ``run.json``; returns the table.

    ``restorers`` adds rows (name -> restorer applied to the LR image); ``detector`` replaces Tiny Faces (its
    ``cache_key`` attribute, if any, lets a finished row be reused)."""
    torch.manual_seed(seed)
    if lr_jpeg_quality is not None and not 1 <= lr_jpeg_quality <= 100:
        raise InputError(f"--lr-jpeg-quality: {lr_jpeg_quality} is not a JPEG quality in 1..100")
    if synth_images < 1:
        raise InputError(f"--synth-images must be at least 1, got {synth_images}")
    torch_device = restore.resolve_device(device)
    settings = {"device": str(torch_device)}
    rows_wanted = [build_variant(v, cajnn_weights, settings) for v in variants]
    rows_wanted += [Variant(name, r) for name, r in (restorers or {}).items()]
    if detector is None:
        detector, detector_key = build_detector(detector_weights, templates, torch_device)
    else:
        detector_key = getattr(detector, "cache_key", None)
    out = Path(out)
    data = load_dataset(data_root, synth_images, seed, limit, out)
    subset = len(data.gt) < data.n_gt_images
    semantics = "MATLAB eval_tools (int32)" if matlab else "official Python port (sorted per image)"

    rows, preds, results = [], {}, {}
    for variant in tqdm(rows_wanted, desc="Table III", dynamic_ncols=True):
        pred_dir, meta_path = out / "predictions" / variant.name, out / "predictions" / f"{variant.name}.json"
        key = {"variant": variant.cache_key, "detector": detector_key, "data": data.digest,
               "lr_jpeg_quality": None if variant.restorer is None else lr_jpeg_quality}
        meta = finished(meta_path, key) if detector_key is not None else None
        if meta is not None:
            preds[variant.name] = read_predictions(pred_dir, data.gt.image_ids)
            timing = meta["timing"]
        else:
            meta_path.unlink(missing_ok=True)
            shutil.rmtree(pred_dir, ignore_errors=True)
            preds[variant.name], timing = detect_variant(variant, detector, data, lr_jpeg_quality, torch_device)
            write_predictions(preds[variant.name], pred_dir)
            timing["device"] = device_description(torch_device)
            write_json(meta_path, {"key": key, "timing": timing})
        results[variant.name] = evaluate(preds[variant.name], data.gt, matlab=matlab)
        rows.append({"variant": variant.name,
                     **{f"ap_{s}": results[variant.name][s].ap for s in SETTINGS},
                     "n_images": len(data.gt), **{k: timing[k] for k in ("time_restore_s", "time_detect_s",
                                                                           "time_total_s", "device")},
                     "restorer": variant.cache_key, "detector": detector_key or getattr(detector, "name", "custom")})
    table = pd.DataFrame(rows)
    write_csv(table, out / "table3.csv")
    scope = (f"subset of {len(data.gt)} images, not the official protocol" if subset
             else f"all {len(data.gt)} images")
    title = (f"Table III: face detection AP, {data.description}, {scope}; evaluation: {semantics}; "
             f"LR = x{SCALE} MATLAB bicubic" + (f" + JPEG q{lr_jpeg_quality}" if lr_jpeg_quality else "") +
             "; raw detector scores")
    shown = table.copy()
    for c in [c for c in shown.columns if c.startswith("ap_")]:
        shown[c] = shown[c].map(lambda v: f"{v:.3f}")
    for c in [c for c in shown.columns if c.startswith("time_")]:
        shown[c] = shown[c].map(lambda v: f"{v:.1f}")
    shown = shown.drop(columns=["restorer", "detector"])
    faces = ", ".join(f"{s} {results[rows[0]['variant']][s].num_faces}" for s in SETTINGS) if rows else ""
    notes = f"\nFaces counted: {faces}. Detector: {detector_key or 'custom'}.\n"
    write_atomic(out / "table3.md", title + "\n\n" + markdown_table(shown) + notes)
    if rows:
        pr_figure(out / "fig6_pr.png", results, title)
        scene_figure(out / "scene.png", data, preds)
    write_json(out / "run.json", run_metadata(torch_device, task="tinyface", data_root=data_root,
                                              description=data.description, n_images=len(data.gt), subset=subset,
                                              evaluation=semantics, lr_jpeg_quality=lr_jpeg_quality,
                                              detector=detector_key, rows={r.name: r.cache_key for r in rows_wanted}))
    print(title + "\n\n" + markdown_table(shown) + notes)
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("tinyface task (Table III)")
    g.add_argument("--detector-weights", help="Tiny Faces checkpoint: tiny-faces-pytorch's released file, a bare "
                   "state_dict or our float16 safetensors (default: the bundled ResNet-18 variant trained on "
                   "synthetic scenes)")
    g.add_argument("--templates", choices=["original", "port"], default="original",
                   help="type-B templates at the 2x level as the original (default) or never, as the PyTorch port")
    g.add_argument("--matlab", action="store_true", help="MATLAB eval_tools int32 semantics (default: the "
                   "official Python port with each image's predictions sorted)")
    g.add_argument("--lr-jpeg-quality", type=int, help="JPEG-compress the LR images at this quality (default: none)")
    g.add_argument("--synth-images", type=int, default=synth_faces.DEFAULT_N,
                   help=f"size of the embedded synthetic test set (default {synth_faces.DEFAULT_N})")


def run_from_args(args: argparse.Namespace) -> pd.DataFrame:
    return run(data_root=args.data_root, variants=args.variants or VARIANTS, detector_weights=args.detector_weights,
               cajnn_weights=args.cajnn_weights, templates=args.templates, matlab=args.matlab,
               lr_jpeg_quality=args.lr_jpeg_quality, synth_images=args.synth_images,
               out=args.out or "results/tinyface", device=args.device, seed=args.seed, limit=args.limit)
