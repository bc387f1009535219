"""benchmark/cache.py: lossless round trip, keys separate restorers and images, shared between processes."""
import subprocess
import sys

import numpy as np

from benchmark.cache import RestorationCache, default_cache_dir


def test_round_trip_rgb_and_grey(tmp_path):
    cache = RestorationCache(tmp_path)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (5, 9), dtype=np.uint8)
    cache.put("cajnn|abc", "word_1.png", rgb)
    cache.put("cajnn|abc", "event/img", grey)
    assert np.array_equal(cache.get("cajnn|abc", "word_1.png"), rgb)
    assert np.array_equal(cache.get("cajnn|abc", "event/img"), grey)
    assert cache.get("cajnn|other-weights", "word_1.png") is None
    assert cache.get("cajnn|abc", "word_2.png") is None


def test_persists_across_processes(tmp_path):
    img = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    code = ("import numpy as np, sys; from benchmark.cache import RestorationCache; "
            "RestorationCache(sys.argv[1]).put('k', 'a', np.arange(48, dtype=np.uint8).reshape(4, 4, 3))")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    assert np.array_equal(RestorationCache(tmp_path).get("k", "a"), img)


def test_default_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "carsr-bench" / "restored"
