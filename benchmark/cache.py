"""LMDB cache of restored images, keyed by the restorer's ``cache_key`` and the image (DESIGN 8).

A second run with the same restorer (same name, weights sha256, settings and code) reads its outputs instead
of recomputing them, so trying another recognizer or detector never redoes restoration. The image part of the key is
a digest of the input pixels (shape, dtype, bytes) rather than a file name: two datasets that both hold a
``word_1.png`` never share an entry, and a changed file is never served a stale output. Each entry keeps the seconds
its computation took, so a table can report what a restoration costs even when this run read it from the cache.
Several processes (torchrun ranks) may share one cache: LMDB serialises the writers. Images are stored as PNG.
"""
from __future__ import annotations

import hashlib
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import lmdb
import numpy as np

from benchmark import restore
from benchmark.errors import InputError


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/carsr-bench/restored`` (``~/.cache/...`` when unset)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "carsr-bench" / "restored"


def image_digest(img: np.ndarray) -> str:
    """sha256 of an array's shape, dtype and bytes: the image part of a cache key."""
    digest = hashlib.sha256(f"{img.shape}|{img.dtype}|".encode())
    digest.update(np.ascontiguousarray(img).data)
    return digest.hexdigest()[:40]


@dataclass
class Restored:
    """A restorer's output, what computing it cost (seconds, device synchronised, measured when it was computed)
    and whether it came from the cache."""

    image: np.ndarray
    compute_s: float
    hit: bool = False


class RestorationCache:
    """Restored uint8 images with their compute seconds by (cache_key, image id); ``get`` returns None on a miss."""

    def __init__(self, folder: str | Path, map_size: int = 1 << 40):
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.env = lmdb.open(str(self.folder), map_size=map_size, subdir=True, max_dbs=0)
        except (OSError, lmdb.Error) as exc:
            raise InputError(f"{self.folder}: cannot open the restoration cache ({exc})") from None

    @staticmethod
    def _key(cache_key: str, image_id: str) -> bytes:
        return hashlib.sha256(cache_key.encode()).hexdigest()[:32].encode() + b"/" + image_id.encode()

    def get(self, cache_key: str, image_id: str) -> Restored | None:
        with self.env.begin() as txn:
            data = txn.get(self._key(cache_key, image_id))
        if data is None:
            return None
        (compute_s,) = struct.unpack("<d", data[:8])
        img = cv2.imdecode(np.frombuffer(data[8:], np.uint8), cv2.IMREAD_UNCHANGED)
        return Restored(img[..., ::-1].copy() if img.ndim == 3 else img, compute_s, hit=True)

    def put(self, cache_key: str, image_id: str, img: np.ndarray, compute_s: float) -> None:
        bgr = img[..., ::-1] if img.ndim == 3 else img
        ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise ValueError(f"cannot encode the restored image of {image_id}")
        with self.env.begin(write=True) as txn:
            txn.put(self._key(cache_key, image_id), struct.pack("<d", compute_s) + data.tobytes())

    def close(self) -> None:
        self.env.close()


def open_cache(cache_dir: str | Path | None) -> RestorationCache | None:
    """The cache at ``cache_dir`` (None: no cache)."""
    return None if cache_dir is None else RestorationCache(cache_dir)


def restore_cached(restorer: restore.Restorer, img: np.ndarray, cache: RestorationCache | None) -> Restored:
    """``restorer(img)``, read from ``cache`` when it holds that output and written to it otherwise."""
    return restore_cached_many(restorer, [img], cache)[0]


def restore_cached_many(restorer: restore.Restorer, imgs: list[np.ndarray],
                        cache: RestorationCache | None) -> list[Restored]:
    """``restorer(img)`` for each image: read from ``cache`` where it holds that output, the others computed
    together (`restore.restore_many`: batched by size) and each written to its own entry, with its share (by
    pixels) of the batch's seconds as its compute cost.

    ``ThenDownsample`` reuses the entries of the restorer it wraps (``cajnn_x4_down`` costs no second CAJNN pass);
    identity and bicubic are never cached (recomputing them is cheaper than reading a PNG).
    """
    if isinstance(restorer, restore.ThenDownsample):
        results = []
        for inner, img in zip(restore_cached_many(restorer.restorer, imgs, cache), imgs):
            start = time.perf_counter()
            out = restorer.downsample(inner.image, img.shape)
            results.append(Restored(out, inner.compute_s + time.perf_counter() - start, inner.hit))
        return results
    cached = cache is not None and not isinstance(restorer, (restore.Identity, restore.Bicubic))
    image_ids = [image_digest(img) for img in imgs] if cached else []
    results: list[Restored | None] = [cache.get(restorer.cache_key, i) for i in image_ids] if cached \
        else [None] * len(imgs)
    todo = [k for k, r in enumerate(results) if r is None]
    start = time.perf_counter()
    outs = restore.restore_many(restorer, [imgs[k] for k in todo])  # host memory: the device is synchronised
    seconds = time.perf_counter() - start
    pixels = sum(imgs[k].shape[0] * imgs[k].shape[1] for k in todo)
    for k, out in zip(todo, outs):
        results[k] = Restored(out, seconds * imgs[k].shape[0] * imgs[k].shape[1] / pixels)
        if cached:
            cache.put(restorer.cache_key, image_ids[k], out, results[k].compute_s)
    return results
