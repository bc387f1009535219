"""models/text/tesseract.py: a known word, the cache key, the one-line errors; `--recognizer tesseract` selects it."""
import importlib.util
import shutil
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from benchmark.errors import InputError
from benchmark.metrics.text import normalize_prediction
from benchmark.tasks import ocr
from models.text.tesseract import TesseractRecognizer

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None or importlib.util.find_spec("pytesseract") is None,
    reason="tesseract is not installed (apt-get install tesseract-ocr; pip install pytesseract)")


def rendered(word: str) -> np.ndarray:
    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), 64)
    image = Image.new("RGB", (int(font.getlength(word)) + 40, 100), "white")
    ImageDraw.Draw(image).text((20, 10), word, fill="black", font=font)
    return np.asarray(image)


@needs_tesseract
def test_reads_a_clear_rendered_word():
    (text, confidence), = TesseractRecognizer()([rendered("HELLO")])
    assert normalize_prediction(text) == "hello" and 0 < confidence <= 1  # 5.3.0: "‘HELLO", 0.49


@needs_tesseract
def test_cache_key_names_version_language_data_and_config():
    key = TesseractRecognizer().cache_key
    assert key.startswith("tesseract-") and key.endswith("|--psm 8") and "|eng " in key
    assert TesseractRecognizer(config="--psm 7").cache_key != key


@needs_tesseract
def test_ocr_task_selects_it_by_name():
    recognizer, key = ocr.build_recognizer("tesseract", None, "cpu", 8)
    assert isinstance(recognizer, TesseractRecognizer) and key == recognizer.cache_key


def test_missing_program_is_one_line_naming_the_install(monkeypatch):
    pytesseract = pytest.importorskip("pytesseract")
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    with pytest.raises(InputError, match=r"not on PATH \(apt-get install tesseract-ocr; pip install pytesseract\)"):
        TesseractRecognizer()


def test_missing_package_is_one_line_naming_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pytesseract", None)  # import raises ImportError
    with pytest.raises(InputError, match=r"pytesseract is not installed \(apt-get install tesseract-ocr"):
        TesseractRecognizer()
