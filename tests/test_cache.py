"""benchmark/cache.py: lossless round trip, keys separate restorers and images, shared between processes, and
``restore_cached`` computes once, reuses, and lets ``ThenDownsample`` reuse the wrapped restorer's entry."""
import subprocess
import sys

import numpy as np

from fakes import CountingRestorer

from benchmark import restore
from benchmark.cache import RestorationCache, default_cache_dir, image_digest, restore_cached, restore_cached_many


def test_round_trip_rgb_and_grey(tmp_path):
    cache = RestorationCache(tmp_path)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (5, 9), dtype=np.uint8)
    cache.put("cajnn|abc", "word_1.png", rgb, 0.25)
    cache.put("cajnn|abc", "event/img", grey, 1.5)
    hit = cache.get("cajnn|abc", "word_1.png")
    assert np.array_equal(hit.image, rgb) and hit.compute_s == 0.25 and hit.hit
    assert np.array_equal(cache.get("cajnn|abc", "event/img").image, grey)
    assert cache.get("cajnn|other-weights", "word_1.png") is None
    assert cache.get("cajnn|abc", "word_2.png") is None


def test_persists_across_processes(tmp_path):
    img = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    code = ("import numpy as np, sys; from benchmark.cache import RestorationCache; "
            "RestorationCache(sys.argv[1]).put('k', 'a', np.arange(48, dtype=np.uint8).reshape(4, 4, 3), 2.0)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    assert np.array_equal(RestorationCache(tmp_path).get("k", "a").image, img)


def test_default_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "carsr-bench" / "restored"


def test_image_digest_sees_pixels_shape_and_dtype():
    img = np.zeros((4, 6, 3), np.uint8)
    changed = img.copy()
    changed[3, 5, 2] = 1
    digests = {image_digest(img), image_digest(changed), image_digest(img.reshape(6, 4, 3)),
               image_digest(img.astype(np.uint16))}
    assert len(digests) == 4 and image_digest(img) == image_digest(img.copy())


def test_restore_cached_computes_once_and_then_down_reuses_it(tmp_path):
    img = np.random.default_rng(1).integers(0, 256, (8, 10, 3), dtype=np.uint8)
    sr = CountingRestorer(2)
    cache = RestorationCache(tmp_path)
    first = restore_cached(sr, img, cache)
    again = restore_cached(sr, img, cache)
    down = restore_cached(restore.ThenDownsample(sr), img, cache)
    assert sr.calls == 1 and not first.hit and again.hit and down.hit
    assert np.array_equal(again.image, first.image) and again.compute_s == first.compute_s
    assert np.array_equal(down.image, restore.ThenDownsample(sr)(img)) and down.compute_s >= first.compute_s  # 2nd call
    assert restore_cached(sr, img[:, ::-1].copy(), cache).hit is False and sr.calls == 3  # other pixels: a miss
    assert restore_cached(sr, img, None).hit is False and sr.calls == 4  # no cache: always computed


def test_interpolation_is_never_cached(tmp_path):
    img = np.full((6, 6, 3), 7, np.uint8)
    cache = RestorationCache(tmp_path)
    for restorer in (restore.Identity(), restore.Bicubic(4)):
        restore_cached(restorer, img, cache)
        assert cache.get(restorer.cache_key, image_digest(img)) is None


def test_restore_cached_many_reads_hits_and_writes_one_entry_per_image(tmp_path):
    imgs = [np.random.default_rng(k).integers(0, 256, (4 + k, 6, 3), dtype=np.uint8) for k in range(3)]
    sr = CountingRestorer(2)
    cache = RestorationCache(tmp_path)
    restore_cached(sr, imgs[1], cache)
    results = restore_cached_many(sr, imgs, cache)
    assert [r.hit for r in results] == [False, True, False] and sr.calls == 3
    assert all(np.array_equal(r.image, sr(i)) for r, i in zip(results, imgs))
    for img, r in zip(imgs, results):
        entry = cache.get(sr.cache_key, image_digest(img))
        assert np.array_equal(entry.image, r.image) and entry.compute_s == r.compute_s
    down = restore_cached_many(restore.ThenDownsample(sr), imgs, cache)
    assert all(r.hit for r in down) and sr.calls == 6  # the three sr(i) above, none here
