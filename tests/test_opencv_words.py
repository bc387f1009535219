"""benchmark/datasets/opencv_words.py: the 12 real word crops of Debian's opencv-doc, in the ICDAR2013 layout."""
import numpy as np
import pytest

from benchmark.datasets.icdar import read_icdar2013
from benchmark.datasets.opencv_words import TEXT_DIR, main, word_boxes


def test_mask_is_split_at_the_widest_gaps():
    mask = np.zeros((20, 40), bool)
    mask[5:15, 2:10] = mask[5:15, 12:18] = mask[5:15, 25:30] = True
    assert word_boxes(mask, 2, "m") == [(0, 3, 20, 17), (23, 3, 32, 17)]


@pytest.mark.skipif(not TEXT_DIR.is_dir(), reason="Debian's opencv-doc is not installed")
def test_writes_twelve_labelled_crops(tmp_path):
    assert main([str(tmp_path)]) == 0
    items = read_icdar2013(tmp_path)
    assert len(items) == 12 and items[0].label == "CHINA" and items[-1].label == "PROJECTOR"
    assert all(min(item.image().shape[:2]) >= 16 for item in items)
