"""Table III and Fig. 6: tiny-face detection AP (WIDER FACE easy/medium/hard) on the original images, on their x4
MATLAB-bicubic downscale, and on that downscale restored x4 (DESIGN 2, 7, 8, 9).

Rows: ``hr`` (the image as it is), ``lr`` (x4 downscale, optional JPEG; its detections are scaled back x4),
``lr_bicubic`` (control: MATLAB bicubic x4 up), ``lr_cajnn`` (CAJNN x4). Any restorer (``name``, ``scale``,
``cache_key``, ``__call__``) becomes a row from Python, and any detector (uint8 RGB image -> [N, 5] x1, y1, x2, y2,
score, with x2, y2 the last pixel inside the box as Tiny Faces gives them) replaces Tiny Faces. Boxes are written as the
official writers write them (tiny-faces-pytorch `evaluation.py`, `cnn_widerface_test_AB.m`): corners rounded, then
w = x2 - x1 + 1, h = y2 - y1 + 1. Scores are the detector's raw values (Tiny Faces: logits) in every row, because the
official evaluation min-max normalises them over the dataset (DESIGN 6.3).

Data: a WIDER FACE validation folder under ``--data-root`` (official or flat layout); only the images present are
evaluated, and a table from a partial copy says "subset of N images, not the official protocol". Without it, the
embedded default: synthetic crowd scenes in WIDER layout (`benchmark.datasets.synth_faces`), cached under ``--out``.
Every image is decoded before any work: unusable ones (undecodable, too small for the x4 downscale) are all named in
one error, or with ``--keep-going`` scored as failed (no detections: their faces count as missed).

Each row writes an official prediction folder ``<detector>/predictions/<variant>/<event>/<name>.txt`` under
``--out``, one sub-folder per detector so that another detector never overwrites it (with ``<variant>.json`` beside
it: its key and timings, written last; the tables stay at ``--out``); a row whose restorer, detector and data are
unchanged is read back instead of recomputed. Restorations go through the LMDB cache (`benchmark.cache`), so another
detector never redoes them. Each finished image is appended to ``<variant>.parts/`` beside the folder
(`benchmark.progress`), so a killed run resumes where it stopped. Under torchrun each rank detects its share of a
row's images and rank 0 gathers them and writes every file. Timings: warm-up first, device synchronised, per stage,
summed over images (so over ranks, and over the runs a resumed row took); the warm-up runs the restorer and detector on
the first image's shapes, so the order of the rows does not change their times.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from benchmark import distributed, restore
from benchmark.cache import RestorationCache, open_cache, restore_cached
from benchmark.datasets import synth_faces
from benchmark.datasets.widerface import GT_MAT, SETTING_MAT, SETTINGS, WiderFaceGT, image_path, images_on_disk, \
    locate, read_gt_entries
from benchmark.degrade import check_degradation, degrade
from benchmark.errors import InputError, refuse_unusable
from benchmark.images import read_image
from benchmark.metrics.widerface import SettingResult, evaluate, read_predictions, scope, write_predictions, \
    xyxy_to_xywh
from benchmark.progress import ProgressLog
from benchmark.report import (device_description, markdown_table, model_folder, run_metadata, write_atomic, write_csv,
                              write_json)
from benchmark.report_html import write_task_report
from models.mtcnn import mtcnn_detector
from models.tiny_faces import TEMPLATE_MODES, TinyFacesDetector, load_tiny_faces
from models.weights import DETECTOR_WEIGHTS, TINY_FACES_R18, code_digest, sha256_of

SCALE = 4
VARIANTS = ("hr", "lr", "lr_bicubic", "lr_cajnn")  # the default rows: the paper's and a control
EXTRA_VARIANTS = ("lr_realesrgan",)  # Real-ESRGAN x4plus (pip install -e ".[real]")
# How a row's files write boxes (part of its reuse key: files written otherwise are recomputed)
BOX_FORMAT = "rounded corners, w = x2 - x1 + 1"
STATS = ("time_restore_s", "restore_compute_s", "cache_hits", "time_detect_s", "time_total_s", "device")
Detector = Callable[[np.ndarray], np.ndarray]
# --detector names besides the default "tinyfaces" (built by build_detector from --detector-weights, --templates):
# name -> factory(device=...) of a detector carrying its `name` and `cache_key`.
DETECTORS = {"mtcnn": mtcnn_detector}


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
    """The evaluated images (ids in ground-truth order), their ground truth, a description for the table, a digest
    of the ground truth files and image bytes (the data part of a row's reuse key), the unusable images (id ->
    problem, naming the file), which every row scores as failed, and the malformed ground-truth entries, skipped."""

    images_dir: Path
    gt: WiderFaceGT
    n_gt_images: int
    description: str
    digest: str
    failed: dict[str, str] = field(default_factory=dict)
    malformed: list[str] = field(default_factory=list)


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
    if name == "lr_realesrgan":
        return Variant(name, restore.realesrgan_x4plus(**settings))
    raise InputError(f"--variants: unknown {name!r} (choose from {', '.join(VARIANTS + EXTRA_VARIANTS)})")


def build_detector(detector_weights: str | None, templates: str, device: torch.device, amp: str | None = None,
                   channels_last: bool = False) -> tuple[Detector, str]:
    """Tiny Faces from `detector_weights`, a file or the name of bundled weights (DETECTOR_WEIGHTS; default: the
    ResNet-18 variant, TINY_FACES_R18), named after the file (and the template mode unless original), and its
    identity for reuse (file sha256 + test settings + code digest)."""
    path = DETECTOR_WEIGHTS[detector_weights].path if detector_weights in DETECTOR_WEIGHTS else \
        Path(detector_weights) if detector_weights else TINY_FACES_R18.path
    if not detector_weights and not path.is_file():
        raise InputError(f"{path}: the bundled detector weights are missing (train them with "
                         "python -m benchmark.train_tinyfaces, or pass --detector-weights)")
    if not path.exists():
        raise InputError(f"--detector-weights {detector_weights}: no such file, and not a bundled name "
                         f"({', '.join(DETECTOR_WEIGHTS)})")
    if templates not in TEMPLATE_MODES:
        raise InputError(f"--templates: unknown {templates!r} (choose from {', '.join(TEMPLATE_MODES)})")
    name = path.stem.split(".")[0] + ("" if templates == "original" else f"_{templates}")
    detector = TinyFacesDetector(load_tiny_faces(path).to(device), templates=templates, name=name, amp=amp,
                                 channels_last=channels_last)
    key = (f"tiny_faces|{sha256_of(path)}|templates={templates}|scales={detector.scales}|"
           f"prob={detector.prob_thresh}|nms={detector.nms_iou}|max_side={detector.max_side}"
           + (f"|amp={amp}" if amp else "") + ("|channels_last" if channels_last else "")
           + f"|code={code_digest(detector, detector.model)}")
    return detector, key


def named_detector(name: str, detector_weights: str | None, device: torch.device) -> Detector:
    """The detector `name` of DETECTORS."""
    if name not in DETECTORS:
        raise InputError(f"--detector: unknown {name!r} (choose from tinyfaces, {', '.join(DETECTORS)})")
    if detector_weights:
        raise InputError(f"--detector-weights: takes a Tiny Faces checkpoint, not used by --detector {name}")
    return DETECTORS[name](device=device)
def resolve_detector(detector: Detector | str | None, detector_weights: str | None, templates: str,
                     device: torch.device, amp: str | None, channels_last: bool,
                     announce: bool) -> tuple[Detector, str | None, str]:
    """(detector, its reuse key or None, its name) for a name of DETECTORS, "tinyfaces"/None (Tiny Faces from
    ``detector_weights``) or a callable; a callable without ``cache_key`` is announced once as never reused."""
    if isinstance(detector, str) and detector != "tinyfaces":
        detector = named_detector(detector, detector_weights, device)
    elif detector is None or detector == "tinyfaces":
        built, key = build_detector(detector_weights, templates, device, amp, channels_last)
        return built, key, detector_name(built)
    key = getattr(detector, "cache_key", None)
    if key is None and announce:
        print(f"note: the detector {detector_name(detector)!r} has no cache_key, so its rows are recomputed, never "
              "reused or resumed from earlier runs (give it a stable cache_key to allow that)", file=sys.stderr)
    return detector, key, detector_name(detector)


def detector_name(detector: Detector) -> str:
    """A detector's name: its `name` attribute, else a function's or class's name."""
    return str(getattr(detector, "name", None) or getattr(detector, "__name__", None) or type(detector).__name__)


def read_hr(path: Path) -> np.ndarray:
    """The image as uint8 RGB (grey, RGBA and 16-bit files converted); one too small for the x4 downscale raises."""
    hr = read_image(path)
    if min(hr.shape[:2]) < 2 * SCALE:
        raise InputError(f"{path}: {hr.shape[1]}x{hr.shape[0]} px is too small for a x{SCALE} downscale "
                         f"(at least {2 * SCALE}x{2 * SCALE})")
    return hr


def load_dataset(data_root: str | None, synth_images: int, seed: int, limit: int | None, cache_dir: Path,
                 keep_going: bool, ctx: distributed.Context) -> Dataset:
    """The ground truth of the images present under `data_root` (or of the embedded synthetic set, which rank 0
    generates while the others wait), first `limit`. Every image is decoded first, on every rank (so all ranks
    agree): the unusable ones and the malformed ground-truth entries are all named in one InputError, or with
    `keep_going` kept as failed and skipped."""
    if data_root is None:
        if ctx.is_main:
            synth_faces.default_test_set(cache_dir, synth_images, seed)
        distributed.barrier(ctx)
        root = synth_faces.default_test_set(cache_dir, synth_images, seed)
        description = f"embedded synthetic WIDER-layout crowd scenes (seed {seed}), not WIDER FACE"
    else:
        root = Path(data_root)
        description = f"WIDER FACE val at {root}"
    layout = locate(root)
    gt, malformed = read_gt_entries(layout.gt_dir)
    ids = images_on_disk(layout.images_dir, gt.image_ids)
    if not ids and (keep_going or not malformed):
        raise InputError(f"{layout.images_dir}: none of the {len(gt)} images listed in {layout.gt_dir / GT_MAT} "
                         "is on disk")
    ids = ids[:limit] if limit else ids
    digest = hashlib.sha256()
    for name in [GT_MAT] + [SETTING_MAT.format(s) for s in SETTINGS]:
        digest.update((layout.gt_dir / name).read_bytes())
    failed = {}
    for image_id in ids:
        path = image_path(layout.images_dir, image_id)
        try:
            read_hr(path)
            content = hashlib.sha256(path.read_bytes()).digest()
        except InputError as exc:
            failed[image_id] = str(exc)
            content = failed[image_id].encode()  # a failed image has no detections whatever its bytes
        digest.update(image_id.encode() + b"\0" + content)
    if not keep_going:
        hint = ("--keep-going skips malformed ground-truth entries and scores unusable images as failed" if malformed
                else "--keep-going scores them as failed")
        refuse_unusable(malformed + list(failed.values()), len(ids) + len(malformed), "images", hint)
    return Dataset(layout.images_dir, gt.subset(ids), len(gt) + len(malformed), description, digest.hexdigest(),
                   failed, malformed)


def detect_images(variant: Variant, detector: Detector, data: Dataset, ids: list[str], jpeg_quality: int | None,
                  cache: RestorationCache | None, log: ProgressLog, ctx: distributed.Context) -> list[dict]:
    """Restore (through `cache`) and detect the images `ids`, appending each image's record to `log` as it finishes:
    id, detections (x, y, w, h, score rows in HR pixels), per-stage wall seconds (device synchronised), what the
    restoration cost when it was computed (`compute_s`) and whether the cache held it (`hit`)."""
    if not ids:
        return []
    # warm-up on the shapes of the first image (kernels and buffers are set up per shape), not timed, so the row
    # run first does not pay for it; the restorer sees a grey image through the cache (a cached row never runs it)
    warm = read_hr(image_path(data.images_dir, ids[0]))
    if variant.restorer is not None:
        grey = np.full_like(degrade(warm, SCALE, jpeg_quality), 128)
        warm = restore_cached(variant.restorer, grey, cache).image
    detector(warm)
    box_scale = 1.0 if variant.restorer is None else SCALE / variant.restorer.scale
    records = []
    for image_id in tqdm(ids, desc=variant.name, leave=False, dynamic_ncols=True, disable=not ctx.is_main):
        start_total = time.perf_counter()
        image = read_hr(image_path(data.images_dir, image_id))
        restore_s, compute_s, hit = 0.0, 0.0, False
        if variant.restorer is not None:
            lr = degrade(image, SCALE, jpeg_quality)
            restore.synchronize(ctx.device)
            start = time.perf_counter()
            restored = restore_cached(variant.restorer, lr, cache)
            restore.synchronize(ctx.device)
            restore_s = time.perf_counter() - start
            image, compute_s, hit = restored.image, restored.compute_s, restored.hit
        start = time.perf_counter()
        dets = np.array(detector(image), dtype=np.float64).reshape(-1, 5)  # a copy: scaled below
        restore.synchronize(ctx.device)
        detect_s = time.perf_counter() - start
        dets[:, :4] *= box_scale
        record = {"id": image_id, "detections": xyxy_to_xywh(dets, inclusive=True).tolist(), "restore_s": restore_s,
                  "detect_s": detect_s, "total_s": time.perf_counter() - start_total, "compute_s": compute_s,
                  "hit": hit}
        log.append([record])
        records.append(record)
    return records


def compute_row(variant: Variant, detector: Detector, data: Dataset, jpeg_quality: int | None,
                cache: RestorationCache | None, log: ProgressLog, resume: bool,
                ctx: distributed.Context) -> dict[str, dict] | None:
    """Records of every usable image of a row, by id, on rank 0 (None on the others): those `log` holds from a
    killed run (when `resume`) and the rest, which the ranks share. Every rank must call it."""
    done = log.done() if resume else {}
    distributed.barrier(ctx)  # every rank has read the same finished images before any rank appends more
    todo = [i for i in data.gt.image_ids if i not in done and i not in data.failed]
    if done and ctx.is_main:
        tqdm.write(f"{variant.name}: resuming, {len(done)} of {len(done) + len(todo)} images already done")
    mine = detect_images(variant, detector, data, distributed.shard(todo, ctx), jpeg_quality, cache, log, ctx)
    shards = distributed.gather(mine, ctx)
    log.close()
    if not ctx.is_main:
        return None
    return {**done, **{r["id"]: r for shard in shards for r in shard}}


def write_row(pred_dir: Path, meta_path: Path, key: dict, records: dict[str, dict], data: Dataset,
              device: str) -> dict:
    """Write a computed row: the official prediction folder (a failed image gets an empty file), then its json (key
    and stats, written last: its presence means the row is complete). Returns the json."""
    meta_path.unlink(missing_ok=True)
    shutil.rmtree(pred_dir, ignore_errors=True)
    write_predictions({i: np.array(records[i]["detections"] if i in records else [], np.float64).reshape(-1, 5)
                       for i in data.gt.image_ids}, pred_dir)
    rs = records.values()
    stats = {"time_restore_s": sum(r["restore_s"] for r in rs), "restore_compute_s": sum(r["compute_s"] for r in rs),
             "cache_hits": sum(r["hit"] for r in rs), "time_detect_s": sum(r["detect_s"] for r in rs),
             "time_total_s": sum(r["total_s"] for r in rs), "device": device}
    meta = {"key": key, "stats": stats}
    write_json(meta_path, meta)
    return meta


def finished(meta_path: Path, key: dict) -> dict | None:
    """The stored row of a finished variant with the same key (and stats in this version's form), else None."""
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    return meta if meta.get("key") == key and "stats" in meta else None


def pr_figure(path: Path, results: dict[str, dict[str, SettingResult]], title: str) -> None:
    """Fig. 6: one panel per setting, one precision-recall curve per row with its AP in the legend."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), layout="constrained")  # constrained: room for the title
    for ax, setting in zip(axes, SETTINGS):
        for name, res in results.items():
            r = res[setting]
            ok = ~np.isnan(r.precision)
            ax.plot(r.recall[ok], r.precision[ok], label=f"{name} ({r.ap:.3f})")
        ax.set(title=f"{setting} ({results[next(iter(results))][setting].num_faces} faces)", xlabel="recall",
               ylabel="precision", xlim=(0, 1), ylim=(0, 1.01))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    fig.suptitle(textwrap.fill(title, 150), fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scene_figure(path: Path, data: Dataset, preds: dict[str, dict[str, np.ndarray]], k: int) -> None:
    """Image `k` with its counted faces (green) and each row's detections with a positive score (red)."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    image_id = data.gt.image_ids[k]
    image = read_image(image_path(data.images_dir, image_id))
    counted = data.gt.keep["hard"][k]
    fig, axes = plt.subplots(1, len(preds), figsize=(4.2 * len(preds), 4.2 * image.shape[0] / image.shape[1] + 0.4),
                             squeeze=False)
    for ax, (name, p) in zip(axes[0], preds.items()):
        ax.imshow(image)
        for x, y, w, h in data.gt.boxes[k][counted]:
            ax.add_patch(Rectangle((x, y), w, h, fill=False, color="lime", lw=0.8))
        shown = p[image_id][p[image_id][:, 4] > 0]
        for x, y, w, h, _ in shown:
            ax.add_patch(Rectangle((x, y), w, h, fill=False, color="red", lw=0.8))
        ax.set_title(textwrap.fill(f"{name}: {len(shown)} detections with score > 0", 40), fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(data_root: str | None = None, variants: Sequence[str] = VARIANTS, detector_weights: str | None = None,
        cajnn_weights: str | None = None, templates: str = "original", matlab: bool = False,
        lr_jpeg_quality: int | None = None, synth_images: int = synth_faces.DEFAULT_N,
        out: str | Path = "results/tinyface", device: str = "auto", seed: int = 0, limit: int | None = None,
        cache_dir: str | Path | None = None, keep_going: bool = False, amp: str | None = None,
        channels_last: bool = True, restorers: dict[str, restore.Restorer] | None = None,
        detector: Detector | str | Sequence[Detector | str] | None = None) -> pd.DataFrame | None:
    """Compute Table III into ``out``: ``<detector name>/predictions/<variant>/`` (official format) and
    ``<variant>.json`` there, ``<detector name>/fig6_pr.png``, and ``table3.csv`` (one row per detector and variant),
    ``table3.md``, ``fig6_pr.png`` and ``scene.png`` (the first detector's), ``run.json``; returns the table (None on
    torchrun ranks > 0, which only detect their share).

    ``cache_dir``: the restoration cache (None: none). ``keep_going``: score unusable images as failed instead of
    refusing the dataset. ``restorers`` adds rows (name -> restorer applied to the LR image, or a checkpoint path that
    spandrel loads); ``detector`` replaces Tiny Faces: a name of DETECTORS ("tinyfaces" for Tiny Faces) or a
    callable (its ``cache_key`` attribute, if any, lets a finished row be reused and a killed one resumed), or a
    list of those (one table, a ``detector_name`` column)."""
    torch.manual_seed(seed)
    check_degradation(None, lr_jpeg_quality)
    if synth_images < 1:
        raise InputError(f"--synth-images must be at least 1, got {synth_images}")
    ctx = distributed.init(device)
    torch_device = ctx.device
    settings = {"device": str(torch_device), "amp": amp, "channels_last": channels_last}
    rows_wanted = [build_variant(v, cajnn_weights, settings) for v in variants]
    rows_wanted += [Variant(name, restore.named(name, r, **settings)) for name, r in (restorers or {}).items()]
    detectors = [resolve_detector(d, detector_weights, templates, torch_device, amp, channels_last, ctx.is_main)
                 for d in (detector if isinstance(detector, (list, tuple)) else [detector])]
    if len({name for _, _, name in detectors}) < len(detectors):
        raise InputError(f"--detector: {', '.join(name for _, _, name in detectors)} name one detector twice")
    out = Path(out)
    data = load_dataset(data_root, synth_images, seed, limit, out, keep_going, ctx)
    subset = len(data.gt) < data.n_gt_images
    semantics = "MATLAB eval_tools (int32)" if matlab else "official Python port (sorted per image)"
    device_text = device_description(torch_device) + (f", {ctx.world} torchrun ranks" if ctx.distributed else "")
    cache = open_cache(cache_dir)
    rows, per_detector = [], {}
    for det, detector_key, name in detectors:
        keys = {v.name: {"variant": v.cache_key, "detector": detector_key, "data": data.digest, "boxes": BOX_FORMAT,
                         "lr_jpeg_quality": None if v.restorer is None else lr_jpeg_quality,
                         "degrade_code": None if v.restorer is None else code_digest(degrade)} for v in rows_wanted}
        pred_root = model_folder(out, name) / "predictions"
        stored = {v.name: finished(pred_root / f"{v.name}.json", keys[v.name]) if detector_key is not None
                  else None for v in rows_wanted}
        distributed.barrier(ctx)  # every rank knows which rows are reused before rank 0 rewrites any
        preds, results = {}, {}
        for variant in tqdm(rows_wanted, desc=f"Table III {name}", dynamic_ncols=True, disable=not ctx.is_main):
            pred_dir, meta_path = pred_root / variant.name, pred_root / f"{variant.name}.json"
            meta = stored[variant.name]
            if meta is None:
                log = ProgressLog(pred_root / f"{variant.name}.parts", keys[variant.name], ctx.rank)
                records = compute_row(variant, det, data, lr_jpeg_quality, cache, log, detector_key is not None, ctx)
                if ctx.is_main:
                    meta = write_row(pred_dir, meta_path, keys[variant.name], records, data, device_text)
                    log.clear()  # after the json: a kill before it resumes from the parts instead of losing them
            if not ctx.is_main:
                continue
            preds[variant.name] = read_predictions(pred_dir, data.gt.image_ids)
            results[variant.name] = evaluate(preds[variant.name], data.gt, matlab=matlab)
            rows.append({"detector_name": name, "variant": variant.name,
                         **{f"ap_{s}": results[variant.name][s].ap for s in SETTINGS},
                         "n_images": len(data.gt), "failed": len(data.failed),
                         **{k: meta["stats"][k] for k in STATS},
                         "restorer": variant.cache_key, "detector": detector_key or name})
        per_detector[name] = (preds, results)
    if cache is not None:
        cache.close()
    distributed.close(ctx)
    if not ctx.is_main:
        return None

    table = pd.DataFrame(rows)
    write_csv(table, out / "table3.csv")
    title = (f"Table III: face detection AP, {data.description}, {scope(len(data.gt), data.n_gt_images)}; "
             f"evaluation: {semantics}; LR = x{SCALE} MATLAB bicubic" +
             (f" + JPEG q{lr_jpeg_quality}" if lr_jpeg_quality else "") +
             "; raw detector scores")
    shown = table.copy()
    for c in [c for c in shown.columns if c.startswith("ap_")]:
        shown[c] = shown[c].map(lambda v: f"{v:.3f}")
    for c in [c for c in shown.columns if c.endswith("_s")]:
        shown[c] = shown[c].map(lambda v: f"{v:.1f}")
    shown = shown.drop(columns=["restorer", "detector"] + (["detector_name"] if len(detectors) == 1 else []))
    first_preds, first_results = next(iter(per_detector.values()))
    faces = ", ".join(f"{s} {first_results[rows[0]['variant']][s].num_faces}" for s in SETTINGS) if rows else ""
    described = "; ".join(f"{name}: {key or name}" for _, key, name in detectors)
    notes = (f"\nFaces counted: {faces}. Detector{'s' if len(detectors) > 1 else ''}: {described}. Seconds are "
             "summed over the images "
             "(over every torchrun rank, and over the runs a resumed row took): time_restore_s is the restoration "
             "wall time as run (cache reads included), restore_compute_s what computing the restorations cost.\n")
    if data.malformed:
        notes += (f"\nSkipped ground-truth entries ({len(data.malformed)}; malformed, not scored):\n" +
                  "".join(f"- {problem}\n" for problem in data.malformed))
    if data.failed:
        notes += (f"\nFailed images ({len(data.failed)}; no detections, their faces count as missed):\n" +
                  "".join(f"- {problem}\n" for problem in data.failed.values()))
    write_atomic(out / "table3.md", title + "\n\n" + markdown_table(shown) + notes)
    usable = [k for k, i in enumerate(data.gt.image_ids) if i not in data.failed]
    if rows:
        for name, (_, results) in per_detector.items():
            pr_figure(model_folder(out, name) / "fig6_pr.png", results, f"{title}; detector {name}")
        pr_figure(out / "fig6_pr.png", first_results, f"{title}; detector {detectors[0][2]}")
    if rows and usable:
        scene_figure(out / "scene.png", data, first_preds, usable[0])
    write_json(out / "run.json", run_metadata(torch_device, task="tinyface", data_root=data_root,
                                              description=data.description, n_images=len(data.gt), subset=subset,
                                              failed=list(data.failed.values()), skipped_gt=data.malformed,
                                              evaluation=semantics,
                                              lr_jpeg_quality=lr_jpeg_quality,
                                              detectors={name: key or name for _, key, name in detectors},
                                              ranks=ctx.world, cache_dir=cache_dir, amp=amp,
                                              channels_last=channels_last, rows={r.name: r.cache_key for r in rows_wanted}))
    print(title + "\n\n" + markdown_table(shown) + notes)
    write_task_report(out, "tinyface")
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("tinyface task (Table III)")
    g.add_argument("--detectors", "--detector", nargs="+", choices=["tinyfaces", *DETECTORS], default=["tinyfaces"],
                   help="one table row per detector and variant: tinyfaces (default: Tiny Faces, see "
                   "--detector-weights) and/or mtcnn (MTCNN with the weights of the facenet-pytorch package: pip "
                   "install --no-deps facenet-pytorch)")
    g.add_argument("--detector-weights", help="Tiny Faces checkpoint: tiny-faces-pytorch's released file, a bare "
                   "state_dict or our float16 safetensors, or the name of bundled weights: tiny_faces_r18_wider "
                   "(the default, fast) or tiny_faces_vgg16_craft (the paper's VGG16 variant, about 13x the "
                   "compute, better on real faces)")
    g.add_argument("--templates", choices=TEMPLATE_MODES, default="original",
                   help="original (default): type-A templates at every level, type B at the 2x level, as the MATLAB "
                   "release; port: what tiny-faces-pytorch's code does (all 25 templates, feature-map columns 0-3 "
                   "and 12-24 zeroed; a level under 25 columns is an error, as it crashes the port); typeA: the "
                   "port's template selection as intended (type A only)")
    g.add_argument("--matlab", action="store_true", help="MATLAB eval_tools int32 semantics (default: the "
                   "official Python port with each image's predictions sorted)")
    g.add_argument("--synth-images", type=int, default=synth_faces.DEFAULT_N,
                   help=f"size of the embedded synthetic test set (default {synth_faces.DEFAULT_N})")


def run_from_args(args: argparse.Namespace) -> pd.DataFrame | None:
    return run(data_root=args.data_root, variants=args.variants or VARIANTS, detector_weights=args.detector_weights,
               cajnn_weights=args.cajnn_weights, templates=args.templates, matlab=args.matlab,
               lr_jpeg_quality=args.lr_jpeg_quality, synth_images=args.synth_images,
               out=args.out or "results/tinyface", device=args.device, seed=args.seed, limit=args.limit,
               cache_dir=args.cache_dir, keep_going=args.keep_going, amp=args.amp,
               channels_last=args.channels_last, detector=list(dict.fromkeys(args.detectors)),
               restorers=restore.parse_restorer_flags(args.restorer))
