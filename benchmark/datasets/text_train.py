"""Recognizer training data that travels with the repository: a bundle of fonts and re-encoded real train crops.

A GPU machine without Debian's fonts or ``../shared`` gets everything `benchmark.train_recognizer --bundle` needs
from one small folder (about 13 MiB):

    BUNDLE/fonts/*.ttf|otf   a diverse set of installed fonts (serif/sans/mono/display, regular/bold/italic)
    BUNDLE/crops/<source>/N.jpg  the real train crops (IIIT5K train 2,000, SVT train 257), shrunk to at most
                             `CROP_MAX_HEIGHT` px high (aspect kept, never enlarged; PIL bicubic) and stored as JPEG
                             quality `CROP_QUALITY` (4:2:0): the recognizer's input is 32 px high
    BUNDLE/photos/NAME.jpg   the package photos the synthetic backgrounds are cut from (JPEG quality 90), so a
                             machine whose packages lack a sample file still trains the same way
    BUNDLE/gt.tsv            path<TAB>label<TAB>split<TAB>source; split is `train` or `val` (a fixed
                             `VAL_FRACTION` of each source, drawn with seed 0), the held-out crops validation uses
    BUNDLE/bundle.json       what was built, from where, with which settings

Never put a test set (IC13) in a bundle: it is what the recognizer is measured on.

Command: `python -m benchmark.datasets.text_train build-bundle OUT [--train-root ../shared/data/text/train]
[--font-dirs /usr/share/fonts] [--font-budget-mib 8]`.
"""
from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import sys
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFont

from benchmark.datasets.icdar import decode_image
from benchmark.datasets.package_photos import package_photo_paths
from benchmark.images import read_image
from benchmark.errors import InputError, run_reporting_input_errors

CROP_MAX_HEIGHT = 40
CROP_QUALITY = 90
VAL_FRACTION = 0.1
TRAIN_SOURCES = {"iiit5k": "IIIT5K_train", "svt": "SVT_train"}  # bundle name -> folder under the train root
FONT_SUFFIXES = (".ttf", ".otf")
FONT_MAX_BYTES = 250_000  # large pan-Unicode files buy no Latin variety
FONT_STYLES_PER_PACKAGE = 8
_NOT_TEXT = re.compile(r"symbol|math|dingbat|awesome|emoji|d050000l", re.IGNORECASE)
_PROBE = "AaBbGgQqRr0123456789"


@dataclass(frozen=True)
class Crop:
    """One real training crop of a bundle: JPEG bytes kept in memory (a few MB in all), decoded on demand."""

    label: str
    data: bytes
    origin: str

    def image(self) -> np.ndarray:
        return decode_image(self.data, self.origin)


def _renders_latin(path: Path) -> bool:
    """Whether a font file loads and draws distinct glyphs for letters and digits (not a symbol or math font)."""
    if _NOT_TEXT.search(path.name):
        return False
    try:
        font = ImageFont.truetype(str(path), 32)
        masks = {bytes(font.getmask(c)) for c in _PROBE}
    except (OSError, ValueError):
        return False
    return len(masks) >= len(set(_PROBE)) - 2


def _style_rank(path: Path) -> int:
    """0 regular, 1 bold, 2 italic, 3 bold italic, 4 anything else (light, condensed, ...): the order styles are
    taken in."""
    name = path.stem.lower()
    bold, italic = "bold" in name or name.endswith(("-b", " b", "bd")), "italic" in name or "oblique" in name
    other = any(k in name for k in ("light", "thin", "medium", "semi", "extra", "black", "heavy", "hairline", "cond", "narrow"))
    return 4 if other else 3 if bold and italic else 2 if italic else 1 if bold else 0


def select_fonts(font_dirs: list[Path], budget_bytes: int) -> list[Path]:
    """Fonts to bundle: usable TTF/OTF files under `font_dirs` (at most `FONT_MAX_BYTES` each), taken round-robin
    over font packages (the folder a file sits in), each package cycling over its families (the name before the first
    '-') in style order (regular, bold, italic, ...), at most `FONT_STYLES_PER_PACKAGE` per package, until
    `budget_bytes` is spent. Deterministic for a given set of installed files."""
    packages: dict[str, dict[str, list[Path]]] = defaultdict(lambda: defaultdict(list))
    for folder in font_dirs:
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in FONT_SUFFIXES and path.is_file() and path.stat().st_size <= FONT_MAX_BYTES:
                packages[path.parent.name][re.split(r"[-_ ]", path.stem)[0]].append(path)
    queues = []
    for _, families in sorted(packages.items()):
        ordered = [sorted(paths, key=lambda p: (_style_rank(p), p.stat().st_size, p.name))
                   for _, paths in sorted(families.items())]
        interleaved = [paths[k] for k in range(max(map(len, ordered))) for paths in ordered if k < len(paths)]
        queues.append([p for p in interleaved if _renders_latin(p)][:FONT_STYLES_PER_PACKAGE])
    chosen, names, spent = [], set(), 0
    while any(queues):
        for queue in queues:
            if not queue:
                continue
            path = queue.pop(0)
            size = path.stat().st_size
            if path.stem in names or spent + size > budget_bytes:
                continue
            chosen.append(path)
            names.add(path.stem)
            spent += size
    return chosen


def _read_train_gt(folder: Path) -> list[tuple[str, str]]:
    gt = folder / "gt.tsv"
    if not gt.is_file():
        raise InputError(f"{gt}: train ground truth not found (path<TAB>label lines)")
    rows = []
    for number, line in enumerate(gt.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0]:
            raise InputError(f"{gt}:{number}: malformed line {line[:80]!r}, expected path<TAB>label")
        rows.append((parts[0], parts[1]))
    return rows


def encode_crop(image: np.ndarray) -> bytes:
    """At most `CROP_MAX_HEIGHT` px high (aspect kept, never enlarged), JPEG quality `CROP_QUALITY`."""
    pil = Image.fromarray(image)
    if pil.height > CROP_MAX_HEIGHT:
        width = max(1, round(pil.width * CROP_MAX_HEIGHT / pil.height))
        pil = pil.resize((width, CROP_MAX_HEIGHT), Image.BICUBIC)
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG", quality=CROP_QUALITY)
    return buffer.getvalue()


def build_bundle(out: str | Path, train_root: str | Path, font_dirs: list[str | Path],
                 font_budget_mib: float = 8.0) -> dict:
    """Write the bundle (layout in the module docstring) to `out`, replacing it; returns its bundle.json record."""
    out, train_root = Path(out), Path(train_root)
    dirs = [Path(d) for d in font_dirs if Path(d).is_dir()]
    fonts = select_fonts(dirs, int(font_budget_mib * 2**20))
    if not fonts:
        raise InputError(f"no usable TTF/OTF font under {', '.join(map(str, font_dirs))} "
                         "(install Debian font packages, e.g. fonts-liberation2 fonts-dejavu-extra)")
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "fonts").mkdir(parents=True)
    for path in fonts:
        shutil.copyfile(path, tmp / "fonts" / path.name)
    lines, counts = [], {}
    for name, folder in TRAIN_SOURCES.items():
        rows = _read_train_gt(train_root / folder)
        val = set(np.random.default_rng(0).permutation(len(rows))[:round(VAL_FRACTION * len(rows))].tolist())
        (tmp / "crops" / name).mkdir(parents=True)
        for index, (relative, label) in enumerate(rows):
            source = train_root / folder / relative
            try:
                data = source.read_bytes()
            except OSError as exc:
                raise InputError(f"{source}: cannot read train crop ({exc.strerror})") from None
            path = f"crops/{name}/{index + 1}.jpg"
            (tmp / path).write_bytes(encode_crop(decode_image(data, str(source))))
            lines.append(f"{path}\t{label}\t{'val' if index in val else 'train'}\t{name}\n")
        counts[name] = {"train": len(rows) - len(val), "val": len(val)}
    (tmp / "gt.tsv").write_text("".join(lines), encoding="utf-8")
    (tmp / "photos").mkdir()
    for name, path in package_photo_paths().items():
        Image.fromarray(read_image(path)).save(tmp / "photos" / f"{name}.jpg", quality=CROP_QUALITY)
    record = {"fonts": [p.name for p in fonts], "font_sources": [str(p) for p in fonts], "crops": counts,
              "crop_max_height": CROP_MAX_HEIGHT, "crop_quality": CROP_QUALITY, "val_fraction": VAL_FRACTION,
              "train_root": str(train_root)}
    (tmp / "bundle.json").write_text(json.dumps(record, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return record


def bundle_fonts(bundle: str | Path) -> tuple[Path, ...]:
    """The font files of a bundle, sorted by name (their order fixes which font a sample index draws)."""
    fonts = tuple(sorted(p for p in (Path(bundle) / "fonts").glob("*") if p.suffix.lower() in FONT_SUFFIXES))
    if not fonts:
        raise InputError(f"{bundle}: no fonts/ in this bundle (build it with `python -m "
                         "benchmark.datasets.text_train build-bundle`)")
    return fonts


def bundle_photos(bundle: str | Path) -> tuple[np.ndarray, ...]:
    """The background photos of a bundle (uint8 RGB), sorted by name."""
    paths = sorted((Path(bundle) / "photos").glob("*.jpg"))
    if not paths:
        raise InputError(f"{bundle}: no photos/ in this bundle (rebuild it with `python -m "
                         "benchmark.datasets.text_train build-bundle`)")
    return tuple(read_image(p) for p in paths)


@lru_cache(maxsize=4)
def bundle_crops(bundle: str | Path, split: str) -> tuple[Crop, ...]:
    """The real crops of one split (`train` or `val`) of a bundle, bytes read into memory once per process."""
    bundle = Path(bundle)
    gt = bundle / "gt.tsv"
    if not gt.is_file():
        raise InputError(f"{gt}: bundle ground truth not found (build the bundle with `python -m "
                         "benchmark.datasets.text_train build-bundle`)")
    crops = []
    for number, line in enumerate(gt.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split("\t")
        if len(parts) != 4 or parts[2] not in ("train", "val"):
            raise InputError(f"{gt}:{number}: malformed line {line[:80]!r}, expected path, label, split, source")
        if parts[2] == split:
            crops.append(Crop(parts[1], (bundle / parts[0]).read_bytes(), f"{bundle / parts[0]}"))
    return tuple(crops)


def augment_real(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """A real crop, jittered as a detector's box and a camera would change it: crop jitter (up to 8% of the width
    and 15% of the height per side, in or out), small rotation/perspective, colour jitter (contrast, brightness,
    channel order, sometimes inverted), then the photo degradations of `synth_text.degrade`."""
    from benchmark.datasets.synth_text import degrade

    h, w = image.shape[:2]
    img = image.astype(np.float32)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    side = rng.uniform(-1, 1, 4) * [0.08 * w, 0.15 * h, 0.08 * w, 0.15 * h]  # left, top, right, bottom
    left, top, right, bottom = side
    dst = src + np.float32([[left, top], [-right, top], [-right, -bottom], [left, -bottom]])
    if rng.random() < 0.5:
        dst += rng.uniform(-1, 1, (4, 2)).astype(np.float32) * [0.03 * w, 0.06 * h]
    angle = np.deg2rad(rng.uniform(-4, 4))
    centre = src.mean(0)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    dst = (dst - centre) @ rot.T + centre
    # map the jittered quadrilateral back onto the full output rectangle (the crop box moved, not the text)
    matrix = cv2.getPerspectiveTransform(np.float32(dst), src)
    img = cv2.warpPerspective(img, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < 0.5:
        img = img[..., rng.permutation(3)]
    mean = img.mean()
    img = (img - mean) * rng.uniform(0.6, 1.3) + mean + rng.uniform(-30, 30)
    if rng.random() < 0.1:
        img = 255 - img
    return degrade(rng, np.clip(img, 0, 255).astype(np.uint8), strength=0.4)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.datasets.text_train", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build-bundle", help="write the fonts + real train crops bundle")
    build.add_argument("out", type=Path)
    build.add_argument("--train-root", type=Path, default=Path("../shared/data/text/train"),
                       help="folder holding IIIT5K_train/ and SVT_train/ (default ../shared/data/text/train)")
    build.add_argument("--font-dirs", nargs="+", default=["/usr/share/fonts"], help="where installed fonts are")
    build.add_argument("--font-budget-mib", type=float, default=8.0, help="bytes of fonts to copy (default 8 MiB)")
    args = p.parse_args(argv)

    def run(a):
        record = build_bundle(a.out, a.train_root, a.font_dirs, a.font_budget_mib)
        size = sum(f.stat().st_size for f in a.out.rglob("*") if f.is_file())
        print(f"wrote {a.out}: {len(record['fonts'])} fonts, crops {record['crops']}, {size / 2**20:.1f} MiB")
    return run_reporting_input_errors(run, args)


if __name__ == "__main__":
    sys.exit(main())
