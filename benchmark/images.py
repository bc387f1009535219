"""Reading and writing images as uint8 RGB arrays, with one-line errors that name the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from benchmark.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def to_rgb_uint8(img: Image.Image) -> np.ndarray:
    """Any PIL image as uint8 RGB HxWx3: grey replicated, alpha dropped, 16-bit scaled to 8 bits."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.floor(arr / peak * 255 + 0.5).clip(0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    return np.asarray(img.convert("RGB"))


def read_image(path: str | Path, keep_grey: bool = False) -> np.ndarray:
    """Decode an image file to uint8 RGB (``keep_grey``: single-channel files stay HxW).

    Missing or undecodable files raise ``InputError`` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: image file not found")
    try:
        with Image.open(path) as img:
            img.load()
            rgb = to_rgb_uint8(img)
            single_channel = img.mode in ("L", "I", "I;16", "I;16B", "I;16L")
            return rgb[..., 0].copy() if keep_grey and single_channel else rgb
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: cannot decode image ({exc})") from None


def write_image(path: str | Path, img: np.ndarray) -> None:
    """Write a uint8 array losslessly (format from the suffix), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name; a missing or image-less folder is an ``InputError``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: folder not found")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise InputError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    return paths
