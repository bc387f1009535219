"""Tesseract as a word recognizer (list of uint8 images -> list of (text, confidence)): the classical baseline.

An adapter, not a network of ours: the engine is Debian's `tesseract-ocr` (its LSTM recognizer and `eng`
traineddata). It sits beside the other recognizers because it answers the same `--recognizer` question;
`third_party/` holds no code (it is not installed with the package). Each crop is read in single-word mode
(`--psm 8`) as it is, without the upscaling Tesseract's documentation advises: the restoration rows of Table II are
that upscaling. One `tesseract` process reads a whole batch (an image list, one page per crop): the engine and its
language data load once per batch instead of once per crop, about 3x faster than `pytesseract` per crop, with the
same words (tested against `pytesseract.image_to_data`).
"""
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.errors import InputError
from models.weights import code_digest, sha256_of

INSTALL = "apt-get install tesseract-ocr"


class TesseractRecognizer:
    """Tesseract in single-word mode; text = its words joined by spaces, confidence = their mean confidence / 100
    (0 when it finds no word). `cache_key` names the engine version, language data (sha256), settings and the
    digest of this module's code."""

    def __init__(self, lang: str = "eng", config: str = "--psm 8", command: str = "tesseract"):
        if shutil.which(command) is None:
            raise InputError(f"--recognizer tesseract: the tesseract program is not on PATH ({INSTALL})")
        version = subprocess.run([command, "--version"], capture_output=True, text=True).stdout.split()[1]
        self.command, self.lang, self.config = command, lang, config
        self.name = "tesseract"
        data_sha256 = traineddata_sha256(command, lang)
        self.cache_key = f"tesseract-{version}|{lang} {data_sha256}|{config}|code={code_digest(self)}"

    def __call__(self, images: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        if not len(images):
            return []
        with tempfile.TemporaryDirectory(prefix="carsr-tesseract-") as folder:
            names = []
            for i, image in enumerate(images):
                names.append(str(Path(folder) / f"{i:06d}.png"))
                Image.fromarray(np.ascontiguousarray(image)).save(names[-1], compress_level=1)
            listing = Path(folder) / "images.txt"
            listing.write_text("\n".join(names) + "\n")
            done = subprocess.run([self.command, str(listing), "stdout", "-l", self.lang, *self.config.split(),
                                   "tsv"], capture_output=True, text=True)
        if done.returncode:
            raise InputError(f"tesseract failed on a batch of {len(images)} crops: {done.stderr.strip()[-300:]}")
        return words_per_page(done.stdout, len(images))


def words_per_page(tsv: str, pages: int) -> list[tuple[str, float]]:
    """(words joined by spaces, mean word confidence / 100) for pages 1..`pages` of Tesseract's TSV output (level 5
    rows are words: page_num in column 2, conf in 11, text in 12); ("", 0.0) for a page without words."""
    words: list[list[tuple[str, float]]] = [[] for _ in range(pages)]
    for line in tsv.splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) == 12 and fields[0] == "5" and fields[11].strip():
            words[int(fields[1]) - 1].append((fields[11].strip(), float(fields[10])))
    return [(" ".join(t for t, _ in page), sum(c for _, c in page) / 100 / len(page)) if page else ("", 0.0)
            for page in words]


def traineddata_sha256(command: str, lang: str) -> str:
    """sha256 of `<lang>.traineddata` in the folder `tesseract --list-langs` names; refuses a missing language."""
    listing = subprocess.run([command, "--list-langs"], capture_output=True, text=True).stdout
    folder = re.search(r'"(.+?)"', listing)
    path = Path(folder.group(1) if folder else "") / f"{lang}.traineddata"
    if not folder or not path.is_file():
        raise InputError(f"--recognizer tesseract: no language data {lang!r} (apt-get install tesseract-ocr-{lang})")
    return sha256_of(path)
