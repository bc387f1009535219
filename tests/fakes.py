"""Test doubles and inputs shared by several test files."""
from pathlib import Path

import numpy as np


class CountingRestorer:
    """Nearest-neighbour upscaling by ``scale`` under a cache key of its own (so the cache stores its outputs),
    counting its calls."""

    def __init__(self, scale: int = 4):
        self.scale, self.calls = scale, 0
        self.name, self.cache_key = f"counting_x{scale}", f"counting-nn-x{scale}"

    def __call__(self, img):
        self.calls += 1
        return img.repeat(self.scale, axis=0).repeat(self.scale, axis=1)


def render_word(word: str) -> np.ndarray:
    """A clean dark-on-light rendering of ``word`` (DejaVu Sans, 40 px), RGB uint8."""
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), 40)
    image = Image.new("RGB", (int(font.getlength(word)) + 20, 56), (240, 240, 230))
    ImageDraw.Draw(image).text((10, 4), word, fill=(20, 20, 60), font=font)
    return np.asarray(image)
