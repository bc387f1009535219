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
import string
import sys
from collections.abc import Sequence
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


def _background(rng: np.random.Generator, h: int, w: int, photos: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """A photo patch (random place and zoom, softened) from `photos` (default: the package photos), a flat colour
    or a linear gradient, HxWx3 float."""
    photos = backgrounds() if photos is None else photos
    kind = rng.choice(3, p=[0.55, 0.25, 0.2])
    if kind == 0:
        photo = photos[rng.integers(len(photos))]
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


RICH_CHARS = string.ascii_letters + string.digits
RICH_PUNCTUATION = ".,:;!?'&-/$%()#@\""


@lru_cache(maxsize=512)
def _font_file(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _rich_text(rng: np.random.Generator) -> str:
    """What scene text says: mostly dictionary words (any case), some random letters/digits, numbers, and words
    with punctuation (which the case-insensitive label drops, so the model learns to skip it)."""
    kind = rng.choice(5, p=[0.6, 0.12, 0.1, 0.1, 0.08])
    if kind == 0:
        return _cased(words()[rng.integers(len(words()))], rng)
    if kind == 1:
        return "".join(rng.choice(list(RICH_CHARS), int(rng.integers(1, 11))))
    if kind == 2:
        return "".join(rng.choice(list(string.digits), int(rng.integers(1, 9))))
    word = _cased(words()[rng.integers(len(words()))], rng)
    if kind == 3:
        at = int(rng.integers(len(word) + 1))
        return word[:at] + RICH_PUNCTUATION[rng.integers(len(RICH_PUNCTUATION))] + word[at:]
    other = _cased(words()[rng.integers(len(words()))], rng)  # two short words, as a sign's line shows them
    return (word + other)[:int(rng.integers(4, 16))]


def _draw_mask(rng: np.random.Generator, text: str, font: ImageFont.FreeTypeFont, stroke: int,
               spacing: int) -> np.ndarray:
    """Text mask (float 0..1) with a small margin; `spacing` px between characters (drawn one by one) or 0."""
    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    advance = [font.getlength(c) + spacing for c in text] if spacing else []
    width = int(sum(advance)) + stroke * 2 if spacing else right - left
    pad = max(2, (bottom - top) // 8)
    w, h = max(1, width + 2 * pad), max(1, bottom - top + 2 * pad)
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    if spacing:
        x = pad - min(left, 0)
        for c, step in zip(text, advance):
            draw.text((x, pad - top), c, font=font, fill=255, stroke_width=stroke)
            x += step
    else:
        draw.text((pad - left, pad - top), text, font=font, fill=255, stroke_width=stroke)
    return np.asarray(mask, dtype=np.float32) / 255


def _curve_and_warp(rng: np.random.Generator, layers: list[np.ndarray]) -> list[np.ndarray]:
    """The same random perspective (corners move up to 6% of the width / 15% of the height), rotation (+-6 deg)
    and, for a quarter of the samples, a vertical arc (curved text) applied to every layer."""
    h, w = layers[0].shape[:2]
    grow_x, grow_y = int(0.08 * w) + 2, int(0.25 * h) + 2
    out_w, out_h = w + 2 * grow_x, h + 2 * grow_y
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    angle = np.deg2rad(np.clip(rng.normal(0, 2.5), -6, 6))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([w / 2, h / 2])
    jitter = rng.uniform(-1, 1, (4, 2)) * [0.06 * w, 0.15 * h] * rng.uniform(0, 1)
    dst = np.float32((src - centre) @ rot.T + centre + jitter + [grow_x, grow_y])
    matrix = cv2.getPerspectiveTransform(src, dst)
    warped = [cv2.warpPerspective(layer, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0) for layer in layers]
    if rng.random() < 0.25:
        xs = np.arange(out_w, dtype=np.float32)
        bend = rng.uniform(-0.25, 0.25) * h * (2 * xs / out_w - 1) ** 2
        map_x = np.broadcast_to(xs, (out_h, out_w)).astype(np.float32)
        map_y = (np.arange(out_h, dtype=np.float32)[:, None] + bend[None, :] - bend.mean()).astype(np.float32)
        warped = [cv2.remap(layer, map_x, map_y, cv2.INTER_LINEAR, borderValue=0) for layer in warped]
    return warped


def _luma(colour: np.ndarray) -> float:
    return float(np.asarray(colour) @ [0.299, 0.587, 0.114])


def degrade(rng: np.random.Generator, img: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Camera and web degradations, each applied with a probability scaled by `strength`: low resolution (down to
    8-24 px high, then back up), Gaussian or motion blur, noise, JPEG (quality 15-95). uint8 RGB in and out."""
    h, w = img.shape[:2]
    out = img.astype(np.float32)
    if rng.random() < 0.4 * strength:
        small_h = int(rng.integers(8, 25))
        if small_h < h:
            f = small_h / h
            small = cv2.resize(out, (max(1, round(w * f)), small_h), interpolation=cv2.INTER_AREA)
            out = cv2.resize(small, (w, h), interpolation=[cv2.INTER_LINEAR, cv2.INTER_CUBIC][rng.integers(2)])
    blur = rng.random()
    if blur < 0.3 * strength:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.4, 1.4))
    elif blur < 0.4 * strength:
        k = int(rng.integers(3, 6))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1 / k
        rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), rng.uniform(0, 180), 1)
        out = cv2.filter2D(out, -1, cv2.warpAffine(kernel, rot, (k, k)))
    if rng.random() < 0.5 * strength:
        out += rng.normal(0, rng.uniform(1, 8), out.shape).astype(np.float32)
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.6 * strength:
        out = jpeg(out, int(rng.integers(15, 96)))
    return out


def rich_sample(seed: int, index: int, fonts: Sequence[str | Path],
                photos: Sequence[np.ndarray] | None = None) -> tuple[str, np.ndarray]:
    """(label, uint8 RGB crop) number `index` of the recognizer's training stream (the MJSynth recipe, Jaderberg et
    al. 2014): text from `_rich_text` in one of `fonts` (height 20-56 px, sometimes spaced out), optional border
    (stroke in another colour) and drop shadow; perspective, rotation and arcs; a background of flat colour,
    gradient or natural photo texture (`photos`, default the package photos) with the text blended over it (opacity 0.75-1,
    luminance contrast at least 35, often grey-ish or black/white); random margins (tight to loose, the top and bottom
    sometimes cutting into the glyphs); then
    `degrade`. A pure function of (seed, index, fonts, photos)."""
    rng = np.random.default_rng([seed, 2, index])
    text = _rich_text(rng)
    size = int(rng.integers(20, 57))
    font = _font_file(str(fonts[rng.integers(len(fonts))]), size)
    border = rng.random() < 0.15
    stroke = int(rng.integers(1, max(2, size // 10) + 1)) if border else 0
    spacing = int(rng.integers(1, max(2, size // 4))) if rng.random() < 0.12 else 0
    fill = _draw_mask(rng, text, font, 0, spacing)
    layers = [fill]
    if border:
        outline = _draw_mask(rng, text, font, stroke, spacing)
        pad_y, pad_x = (outline.shape[0] - fill.shape[0]) // 2, (outline.shape[1] - fill.shape[1]) // 2
        fill_big = np.zeros_like(outline)
        fill_big[pad_y:pad_y + fill.shape[0], pad_x:pad_x + fill.shape[1]] = fill[:outline.shape[0] - pad_y,
                                                                                   :outline.shape[1] - pad_x]
        layers = [fill_big, outline]
    layers = _curve_and_warp(rng, layers)
    h, w = layers[0].shape
    background = _background(rng, h, w, photos).astype(np.float32)
    if rng.random() < 0.5:  # signs are rarely saturated: pull the background towards grey
        grey = background @ np.float32([0.299, 0.587, 0.114])
        background += (grey[..., None] - background) * rng.uniform(0.3, 1.0)
    mean = _luma(background.reshape(-1, 3).mean(0))
    if rng.random() < 0.45:  # black, white or grey text, the common case in real scenes
        level = rng.uniform(0, max(1.0, mean - 60)) if mean > 127 else rng.uniform(min(254.0, mean + 60), 255)
        colour = np.full(3, level) + rng.normal(0, 8, 3)
    else:
        colour = _text_colour(rng, background)
    if abs(_luma(colour) - mean) < 35:
        colour = np.full(3, 0.0 if mean > 127 else 255.0)
    img = background
    if rng.random() < 0.15:  # drop shadow: the text mask shifted and blurred, darker than the background
        shift = rng.integers(1, max(2, size // 12) + 1, 2) * rng.choice([-1, 1], 2)
        shadow = np.roll(layers[-1], tuple(shift), axis=(0, 1))
        shadow = cv2.GaussianBlur(shadow, (0, 0), rng.uniform(0.5, 2.0))[..., None]
        img = img * (1 - 0.7 * shadow)
    if border:
        edge = np.clip(rng.uniform(0, 255, 3) if rng.random() < 0.5 else 255 - colour, 0, 255)
        img = img * (1 - layers[1][..., None]) + edge * layers[1][..., None]
    alpha = layers[0][..., None] * rng.uniform(0.75, 1.0)
    img = img * (1 - alpha) + colour * alpha
    if rng.random() < 0.3:  # uneven light across the crop
        img = img * np.linspace(rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0), w)[None, :, None]
    # margins: crop to the ink's box, then keep -5%..+20% of its height around it
    ys, xs = np.nonzero(layers[-1] > 0.1)
    if len(ys):
        th = ys.max() - ys.min() + 1
        m = rng.uniform([-0.05, -0.05, 0, 0], [0.2, 0.2, 0.3, 0.3]) * th
        y0, y1 = int(max(0, ys.min() - m[0])), int(min(h, ys.max() + 1 + m[1]))
        x0, x1 = int(max(0, xs.min() - m[2])), int(min(w, xs.max() + 1 + m[3]))
        img = img[y0:max(y1, y0 + 4), x0:max(x1, x0 + 4)]
    return text, degrade(rng, np.clip(img + 0.5, 0, 255).astype(np.uint8))


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
