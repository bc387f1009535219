"""Real word crops from Debian's ``opencv-doc`` package, in the ICDAR2013 Task 3 layout: a check that a recognizer
trained on synthetic text reads real text.

Sources (``/usr/share/doc/opencv-doc/examples/text/``): the four cropped words ``scenetext_word01-04.jpg`` and the
words of the five scene photos ``scenetext_segmented_word01-05.jpg``, cut out with the boxes of their text masks
(``*_mask.png``: one text line each, split into words at wide column gaps). 12 crops, labels as printed.

Command: ``python -m benchmark.datasets.opencv_words OUT_DIR`` (after ``apt-get install opencv-doc``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmark.datasets.icdar import write_icdar2013
from benchmark.errors import InputError
from benchmark.images import read_image

TEXT_DIR = Path("/usr/share/doc/opencv-doc/examples/text")
WORD_CROPS = {"scenetext_word01.jpg": "CHINA", "scenetext_word02.jpg": "HERE", "scenetext_word03.jpg": "riser",
              "scenetext_word04.jpg": "Produkt"}
SEGMENTED = {"scenetext_segmented_word01": ["HOTEL"], "scenetext_segmented_word02": ["Stationery", "Box"],
             "scenetext_segmented_word03": ["Private", "Hire"], "scenetext_segmented_word04": ["FOSTER'S"],
             "scenetext_segmented_word05": ["MULTIMEDIA", "PROJECTOR"]}


def word_boxes(mask: np.ndarray, count: int, where: str) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of the `count` words of a one-line text mask, split at the `count - 1` widest column gaps,
    each padded by 15% of the line height."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise InputError(f"{where}: empty text mask")
    y0, y1 = ys.min(), ys.max() + 1
    columns = np.flatnonzero(mask[y0:y1].any(axis=0))
    gaps = np.diff(columns) - 1
    cuts = sorted(np.argsort(gaps)[::-1][:count - 1]) if count > 1 else []
    starts = [columns[0]] + [columns[c + 1] for c in cuts]
    ends = [columns[c] + 1 for c in cuts] + [columns[-1] + 1]
    pad = max(2, int(0.15 * (y1 - y0)))
    h, w = mask.shape
    return [(max(0, int(a) - pad), max(0, int(y0) - pad), min(w, int(b) + pad), min(h, int(y1) + pad))
            for a, b in zip(starts, ends)]


def opencv_words(text_dir: str | Path = TEXT_DIR) -> list[tuple[str, str, np.ndarray]]:
    """(file name, label, uint8 RGB crop) of the 12 real words."""
    text_dir = Path(text_dir)
    if not text_dir.is_dir():
        raise InputError(f"{text_dir}: not found; install Debian's opencv-doc package (apt-get install opencv-doc)")
    samples = [(name.replace(".jpg", ".png"), label, read_image(text_dir / name)) for name, label in WORD_CROPS.items()]
    for stem, labels in SEGMENTED.items():
        photo = read_image(text_dir / f"{stem}.jpg")
        mask = read_image(text_dir / f"{stem}_mask.png")[..., 0] > 127
        for k, (x0, y0, x1, y1) in enumerate(word_boxes(mask, len(labels), f"{text_dir / stem}_mask.png")):
            samples.append((f"{stem}_{k + 1}.png", labels[k], photo[y0:y1, x0:x1]))
    return samples


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.datasets.opencv_words", description=__doc__.splitlines()[0])
    p.add_argument("out_dir", type=Path)
    p.add_argument("--text-dir", default=str(TEXT_DIR), help=f"opencv-doc text examples (default {TEXT_DIR})")
    args = p.parse_args(argv)
    try:
        samples = opencv_words(args.text_dir)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_icdar2013(args.out_dir, samples)
    print(f"wrote {len(samples)} real word crops to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
