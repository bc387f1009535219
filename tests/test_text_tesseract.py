"""models/text/tesseract.py: a known word, batched equal to pytesseract per crop, the TSV parsing, the cache key, the
one-line errors; `--recognizer tesseract` selects it."""
import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from benchmark.errors import InputError
from benchmark.metrics.text import normalize_prediction
from benchmark.tasks import ocr
from models.text.tesseract import TesseractRecognizer, words_per_page

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None,
                                     reason="tesseract is not installed (apt-get install tesseract-ocr)")


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
def test_cache_key_names_version_language_data_config_and_code(edit_code):
    key = TesseractRecognizer().cache_key
    assert key.startswith("tesseract-") and "|--psm 8|code=" in key and "|eng " in key
    assert TesseractRecognizer(config="--psm 7").cache_key != key and TesseractRecognizer().cache_key == key
    edit_code("models.text.tesseract")
    assert TesseractRecognizer().cache_key != key


@needs_tesseract
def test_ocr_task_selects_it_by_name():
    recognizer, key = ocr.build_recognizer("tesseract", None, "cpu", 8)
    assert isinstance(recognizer, TesseractRecognizer) and key == recognizer.cache_key


@needs_tesseract
def test_one_process_per_batch_reads_as_pytesseract_per_crop(shared_data):
    """The batch (one `tesseract` over an image list) gives pytesseract's words for every crop: 40 real IC13 crops."""
    pytesseract = pytest.importorskip("pytesseract", reason="the reference pytesseract is not installed")
    paths = sorted((shared_data / "text" / "IC13" / "Challenge2_Test_Task3_Images").glob("*.png"))[:40]
    images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    reference = []
    for image in images:
        data = pytesseract.image_to_data(Image.fromarray(image), lang="eng", config="--psm 8",
                                         output_type=pytesseract.Output.DICT)
        reference.append(" ".join(t.strip() for t, level in zip(data["text"], data["level"])
                                  if level == 5 and t.strip()))
    batched = TesseractRecognizer()(images)
    assert [text for text, _ in batched] == reference and sum(map(bool, reference)) >= 30


def test_tsv_words_are_joined_per_page_with_mean_confidence():
    tsv = "\n".join(["level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext",
                     "1\t1\t0\t0\t0\t0\t0\t0\t10\t10\t-1\t",
                     "5\t1\t1\t1\t1\t1\t0\t0\t5\t5\t90.5\tNEW",
                     "5\t1\t1\t1\t1\t2\t5\t0\t5\t5\t70.5\tYORK",
                     "1\t2\t0\t0\t0\t0\t0\t0\t10\t10\t-1\t",
                     "5\t3\t1\t1\t1\t1\t0\t0\t5\t5\t42\tx"])
    assert words_per_page(tsv, 3) == [("NEW YORK", 0.805), ("", 0.0), ("x", 0.42)]


def test_missing_program_is_one_line_naming_the_install():
    with pytest.raises(InputError, match=r"not on PATH \(apt-get install tesseract-ocr\)"):
        TesseractRecognizer(command="/nonexistent/tesseract")
