"""Test doubles shared by several test files."""


class CountingRestorer:
    """Nearest-neighbour upscaling by ``scale`` under a cache key of its own (so the cache stores its outputs),
    counting its calls."""

    def __init__(self, scale: int = 4):
        self.scale, self.calls = scale, 0
        self.name, self.cache_key = f"counting_x{scale}", f"counting-nn-x{scale}"

    def __call__(self, img):
        self.calls += 1
        return img.repeat(self.scale, axis=0).repeat(self.scale, axis=1)
