"""Tesseract as a word recognizer (list of uint8 images -> list of (text, confidence)): the classical baseline.

An adapter, not a network of ours: the engine is Debian's `tesseract-ocr` (its LSTM recognizer and `eng`
traineddata), called through `pytesseract`. It sits beside the other recognizers because it answers the same
`--recognizer` question; `third_party/` holds no code (it is not installed with the package). Each crop is read in
single-word mode (`--psm 8`) as it is, without the upscaling Tesseract's documentation advises: the restoration
rows of Table II are that upscaling.
"""
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.errors import InputError
from models.weights import sha256_of

INSTALL = "apt-get install tesseract-ocr; pip install pytesseract"


class TesseractRecognizer:
    """Tesseract in single-word mode; text = its words joined by spaces, confidence = their mean confidence / 100
    (0 when it finds no word). `cache_key` names the engine version, language data (sha256) and settings."""

    def __init__(self, lang: str = "eng", config: str = "--psm 8"):
        try:
            import pytesseract
        except ImportError:
            raise InputError(f"--recognizer tesseract: the Python package pytesseract is not installed ({INSTALL})") \
                from None
        command = pytesseract.pytesseract.tesseract_cmd
        if shutil.which(command) is None:
            raise InputError(f"--recognizer tesseract: the tesseract program is not on PATH ({INSTALL})")
        version = pytesseract.get_tesseract_version()
        self.pytesseract, self.lang, self.config = pytesseract, lang, config
        self.name = "tesseract"
        data_sha256 = traineddata_sha256(command, lang)
        self.cache_key = f"tesseract-{version}|{lang} {data_sha256}|{config}"

    def __call__(self, images: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        results = []
        for image in images:
            data = self.pytesseract.image_to_data(Image.fromarray(np.ascontiguousarray(image)), lang=self.lang,
                                                  config=self.config, output_type=self.pytesseract.Output.DICT)
            words = [(t.strip(), float(c)) for t, c, level in zip(data["text"], data["conf"], data["level"])
                     if level == 5 and t.strip()]
            results.append((" ".join(t for t, _ in words), sum(c for _, c in words) / 100 / len(words))
                           if words else ("", 0.0))
        return results


def traineddata_sha256(command: str, lang: str) -> str:
    """sha256 of `<lang>.traineddata` in the folder `tesseract --list-langs` names; refuses a missing language."""
    listing = subprocess.run([command, "--list-langs"], capture_output=True, text=True).stdout
    folder = re.search(r'"(.+?)"', listing)
    path = Path(folder.group(1) if folder else "") / f"{lang}.traineddata"
    if not folder or not path.is_file():
        raise InputError(f"--recognizer tesseract: no language data {lang!r} (apt-get install tesseract-ocr-{lang})")
    return sha256_of(path)
