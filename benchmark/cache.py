"""LMDB cache of restored images, keyed by the restorer's ``cache_key`` and the dataset item's id (DESIGN 8).

A second run with the same restorer (same name, weights sha256 and settings) reads its outputs instead of
recomputing them, so trying another recognizer or detector never redoes restoration. Several processes
(torchrun ranks) may share one cache: LMDB serialises the writers. Images are stored as PNG (lossless).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import lmdb
import numpy as np

from benchmark.errors import InputError


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/carsr-bench/restored`` (``~/.cache/...`` when unset)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "carsr-bench" / "restored"


class RestorationCache:
    """Restored uint8 images by (cache_key, image id); ``get`` returns None on a miss."""

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

    def get(self, cache_key: str, image_id: str) -> np.ndarray | None:
        with self.env.begin() as txn:
            data = txn.get(self._key(cache_key, image_id))
        if data is None:
            return None
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        return img[..., ::-1].copy() if img.ndim == 3 else img

    def put(self, cache_key: str, image_id: str, img: np.ndarray) -> None:
        bgr = img[..., ::-1] if img.ndim == 3 else img
        ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise ValueError(f"cannot encode the restored image of {image_id}")
        with self.env.begin(write=True) as txn:
            txn.put(self._key(cache_key, image_id), data.tobytes())

    def close(self) -> None:
        self.env.close()
