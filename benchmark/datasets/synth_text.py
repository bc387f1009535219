"""Synthetic word crops for the embedded OCR default (DESIGN 3), written in the ICDAR2013 Task 3 layout.

A word from `words.txt` (in the repo) is drawn in a font that ships with matplotlib, in a colour that contrasts with
a background cut from a package photo (or a flat/gradient fill), slightly rotated, perspective-warped and blurred,
at high resolution (HR). The ``test`` split then applies the paper's degradation — MATLAB bicubic x4 downscale
(word height about 8-16 px) and JPEG at a low quality — so the crops look like small web text and restoration can
matter. The ``train`` split (used by `benchmark.train_recognizer`) uses other fonts and keeps most crops clean or
moderately degraded, as synthetic training text (MJSynth/SynthText) is.

Every sample is a pure function of (seed, split, index): the same seed gives byte-identical files.

Command: `python -m benchmark.datasets.synth_text OUT_DIR [--n 1000] [--seed 0] [--split test]`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from functools import lru_cache
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from benchmark.datasets.icdar import GT_FILE, IMAGES_DIR, read_gt, write_icdar2013
from benchmark.datasets.package_photos import package_photo_paths
from benchmark.degrade import imresize, jpeg
from benchmark.images import read_image

VERSION = 1  # bump when the rendering changes, so cached sets are regenerated
WORDS_FILE = Path(__file__).resolve().parent / "words.txt"
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
# Disjoint font sets: the recognizer never sees a test font during training.
TRAIN_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
               "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
               "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
               "DejaVuSansMono-BoldOblique.ttf", "cmr10.ttf", "cmb10.ttf", "cmti10.ttf")
TEST_FONTS = ("STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
              "cmss10.ttf", "cmtt10.ttf")
SPLITS = ("train", "test")
SCALE = 4
TEST_QF = (15, 40)  # JPEG quality range of the test split (the paper's Table I spans QF 10-40)
DEFAULT_N = 1000


@lru_cache(maxsize=1)
def words() -> tuple[str, ...]:
    """The word list (comment lines start with #)."""
    lines = WORDS_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(w for w in (line.strip() for line in lines) if w and not w.startswith("#"))


@lru_cache(maxsize=1)
def backgrounds() -> tuple[np.ndarray, ...]:
    """The package photos as uint8 RGB, the pool background patches are cut from."""
    return tuple(read_image(p) for p in package_photo_paths().values())


@lru_cache(maxsize=256)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / name), size)


def _cased(word: str, rng: np.random.Generator) -> str:
    """lower, Capitalised or UPPER, as signs and web text mix them."""
    case = rng.choice(3, p=[0.4, 0.3, 0.3])
    return word.lower() if case == 0 else word.capitalize() if case == 1 else word.upper()


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A photo patch (random place and zoom, softened), a flat colour or a linear gradient, HxWx3 float."""
    kind = rng.choice(3, p=[0.55, 0.25, 0.2])
    if kind == 0:
        photo = backgrounds()[rng.integers(len(backgrounds()))]
        zoom = rng.uniform(0.5, 2.0)
        ch, cw = min(photo.shape[0], max(4, int(h / zoom))), min(photo.shape[1], max(4, int(w / zoom)))
        y, x = rng.integers(photo.shape[0] - ch + 1), rng.integers(photo.shape[1] - cw + 1)
        patch = cv2.resize(photo[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float64)
        patch = cv2.GaussianBlur(patch, (0, 0), rng.uniform(0.5, 3.0))
        flat, mix = rng.uniform(0, 255, 3), rng.uniform(0.0, 0.6)
        return patch * (1 - mix) + flat * mix
    start = rng.uniform(0, 255, 3)
    if kind == 1:
        return np.broadcast_to(start, (h, w, 3)).copy()
    end = np.clip(start + rng.uniform(-60, 60, 3), 0, 255)
    t = np.linspace(0, 1, w)[None, :, None] if rng.integers(2) else np.linspace(0, 1, h)[:, None, None]
    return np.broadcast_to(start + t * (end - start), (h, w, 3)).copy()


def _text_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A colour whose luminance differs from the background's mean by at least 70 (of 255)."""
    luma = np.array([0.299, 0.587, 0.114])
    mean = float(background.reshape(-1, 3).mean(0) @ luma)
    for _ in range(20):
        colour = rng.uniform(0, 255, 3)
        if abs(colour @ luma - mean) >= 70:
            return colour
    return np.full(3, 0.0 if mean > 127 else 255.0)


def render_word(rng: np.random.Generator, text: str, font: str, text_height: int) -> np.ndarray:
    """A tight-ish HR crop of `text` whose capital height is about `text_height` px; uint8 RGB, sides multiples of 4."""
    size = max(8, int(round(text_height / 0.72)))
    pil_font = _font(font, size)
    stroke = int(rng.integers(1, max(2, size // 12) + 1)) if rng.random() < 0.15 else 0
    left, top, right, bottom = pil_font.getbbox(text, stroke_width=stroke)
    tw, th = right - left, bottom - top
    pad_x = int(rng.uniform(0.05, 0.25) * th) + 2
    pad_y = int(rng.uniform(0.08, 0.3) * th) + 2
    w, h = tw + 2 * pad_x, th + 2 * pad_y
    w, h = w + (-w) % SCALE, h + (-h) % SCALE
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).text((pad_x - left, pad_y - top), text, font=pil_font, fill=255, stroke_width=stroke)
    mask = np.asarray(mask, dtype=np.float64) / 255

    # slight rotation and perspective: each corner moves by up to 4% of the height / 2% of the width
    angle = np.deg2rad(rng.uniform(-3, 3))
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    centre = np.array([w / 2, h / 2])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    jitter = rng.uniform(-1, 1, (4, 2)) * [0.02 * w, 0.04 * h]
    dst = np.float32((src - centre) @ rot.T + centre + jitter)
    mask = cv2.warpPerspective(mask, cv2.getPerspectiveTransform(src, dst), (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    background = _background(rng, h, w)
    colour = _text_colour(rng, background)
    img = background * (1 - mask[..., None]) + colour * mask[..., None]
    if rng.random() < 0.3:  # shading across the crop
        img *= np.linspace(rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0), w)[None, :, None]
    sigma = rng.uniform(0.0, 1.2)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img += rng.normal(0, rng.uniform(0, 4), img.shape)
    return np.floor(np.clip(img, 0, 255) + 0.5).astype(np.uint8)


def sample(seed: int, index: int, split: str = "test") -> tuple[str, np.ndarray]:
    """(label, image) number `index` of a split: a pure function of its arguments.

    test: HR capital height 32-64 px in a test font, then x4 MATLAB downscale (8-16 px) and JPEG QF in `TEST_QF`.
    train: a train font at 20-48 px; half clean, a third lightly compressed, the rest moderately downscaled (x1.5-2.5)
    and compressed (QF 30-90).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    word = words()[rng.integers(len(words()))]
    text = _cased(word, rng)
    if split == "test":
        hr = render_word(rng, text, TEST_FONTS[rng.integers(len(TEST_FONTS))], int(rng.integers(32, 65)))
        return text, jpeg(imresize(hr, 1 / SCALE), int(rng.integers(TEST_QF[0], TEST_QF[1] + 1)))
    img = render_word(rng, text, TRAIN_FONTS[rng.integers(len(TRAIN_FONTS))], int(rng.integers(20, 49)))
    kind = rng.choice(3, p=[0.5, 0.3, 0.2])
    if kind == 1:
        img = jpeg(img, int(rng.integers(50, 96)))
    elif kind == 2:
        img = jpeg(imresize(img, 1 / rng.uniform(1.5, 2.5)), int(rng.integers(30, 91)))
    return text, img


def generate_icdar2013(root: str | Path, n: int = DEFAULT_N, seed: int = 0, split: str = "test") -> Path:
    """Write `n` samples as `word_1.png ... word_n.png` + GT in the ICDAR2013 Task 3 layout under `root`."""
    return write_icdar2013(root, ((f"word_{i + 1}.png", *sample(seed, i, split)) for i in range(n)))


def _is_complete(root: Path, params: dict) -> bool:
    marker = root / "synth_text.json"
    if not marker.is_file() or json.loads(marker.read_text()) != params:
        return False
    entries = read_gt(root / GT_FILE)
    return len(entries) == params["n"] and all((root / IMAGES_DIR / name).is_file() for name, _, _ in entries)


def default_test_set(cache_dir: str | Path, n: int = DEFAULT_N, seed: int = 0) -> Path:
    """The embedded default OCR test set in `cache_dir/synth_icdar13_seed{seed}_n{n}`, generated once and reused
    while complete (a marker file records the generator version and parameters)."""
    root = Path(cache_dir) / f"synth_icdar13_seed{seed}_n{n}"
    params = {"version": VERSION, "n": n, "seed": seed, "split": "test"}
    if root.is_dir() and _is_complete(root, params):
        return root
    tmp = root.with_name(f".{root.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    generate_icdar2013(tmp, n, seed, "test")
    (tmp / "synth_text.json").write_text(json.dumps(params) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    os.replace(tmp, root)
    return root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.datasets.synth_text", description=__doc__.splitlines()[0])
    p.add_argument("out_dir", type=Path)
    p.add_argument("--n", type=int, default=DEFAULT_N, help=f"number of crops (default {DEFAULT_N})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", choices=SPLITS, default="test", help="test fonts + x4/JPEG degradation, or train")
    args = p.parse_args(argv)
    generate_icdar2013(args.out_dir, args.n, args.seed, args.split)
    print(f"wrote {args.n} {args.split} crops to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
