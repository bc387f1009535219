"""The paper's degradation: MATLAB-exact bicubic resize and JPEG at a quality factor (DESIGN 5).

``imresize`` reproduces MATLAB's ``imresize(img, scale)`` (bicubic, antialiased when downscaling) on uint8
images pixel for pixel: cv2.INTER_CUBIC and PIL BICUBIC use other kernels and edge rules and are not
interchangeable with it.
"""
from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np
from PIL import Image

from benchmark.errors import InputError


def _cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB's bicubic kernel (a = -0.5)."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


@lru_cache(maxsize=256)
def _resize_matrix(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """Dense (out_len, in_len) matrix of MATLAB ``contributions``: weights with symmetric edge handling."""
    kernel_width = 4.0
    antialias = scale < 1
    if antialias:
        kernel_width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    dist = u[:, None] - idx
    weights = scale * _cubic(scale * dist) if antialias else _cubic(dist)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    src = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    matrix = np.zeros((out_len, in_len))
    np.add.at(matrix, (np.repeat(np.arange(out_len), taps), src.ravel()), weights.ravel())
    return matrix


def _round_uint8(x: np.ndarray) -> np.ndarray:
    """MATLAB's double -> uint8 conversion: round half up (values are non-negative after clipping), saturate."""
    return np.floor(np.clip(x, 0, 255) + 0.5).astype(np.uint8)


def imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB ``imresize(img, scale)`` bicubic for uint8 HxW or HxWxC; output size ceil(scale * input size).

    Rows (height) are resized first, then columns, rounding to uint8 after each pass as MATLAB's uint8 path does.
    """
    if img.dtype != np.uint8:
        raise TypeError(f"imresize expects uint8, got {img.dtype}")
    h, w = img.shape[:2]
    out_h, out_w = int(math.ceil(h * scale)), int(math.ceil(w * scale))
    rows = _resize_matrix(h, out_h, float(scale))
    cols = _resize_matrix(w, out_w, float(scale))
    x = np.tensordot(rows, img.astype(np.float64), axes=(1, 0))
    x = _round_uint8(x).astype(np.float64)
    x = np.moveaxis(np.tensordot(cols, x, axes=(1, 1)), 0, 1)
    return _round_uint8(x)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode with Pillow's libjpeg at ``quality``, 4:2:0 chroma subsampling (OpenCV's default too)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format="JPEG", quality=int(quality), subsampling=2)
    return np.asarray(Image.open(buffer).convert(Image.fromarray(img).mode))


def modcrop(img: np.ndarray, multiple: int) -> np.ndarray:
    """Crop the bottom/right so height and width are multiples of ``multiple``."""
    h, w = img.shape[:2]
    return img[: h - h % multiple, : w - w % multiple]


def degrade(hr: np.ndarray, scale: int = 4, quality: int | None = None) -> np.ndarray:
    """The paper's LR image: MATLAB bicubic downscale by ``scale``, then JPEG at ``quality`` (None: no JPEG)."""
    if min(hr.shape[:2]) < scale:
        raise ValueError(f"image of size {hr.shape[1]}x{hr.shape[0]} is smaller than the scale {scale}")
    lr = imresize(hr, 1 / scale)
    return lr if quality is None else jpeg(lr, quality)


def check_degradation(scale: int | None, quality: int | None) -> None:
    """Refuse a downscale factor below 2 or a JPEG quality outside 1..100, naming the flag (shared by the tasks)."""
    if scale is not None and scale < 2:
        raise InputError(f"--lr-downscale: {scale} is not a downscale factor of at least 2")
    if quality is not None and not 1 <= quality <= 100:
        raise InputError(f"--lr-jpeg-quality: {quality} is not a JPEG quality in 1..100")


def describe_degradation(scale: int | None, quality: int | None) -> str:
    """Words for a table title: 'x4 MATLAB bicubic down + JPEG q20', or '' when nothing is applied."""
    parts = ([f"x{scale} MATLAB bicubic down"] if scale else []) + ([f"JPEG q{quality}"] if quality else [])
    return " + ".join(parts)
