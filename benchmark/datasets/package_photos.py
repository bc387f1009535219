"""Photos that installed packages ship (scikit-image, matplotlib): the embedded default needs no download.

They serve as the HR set of the default SR table and as backgrounds and faces for the synthetic OCR and face
sets. Files are read from the packages' data folders directly (scikit-image's fetchers may try the network).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import skimage

_SKIMAGE = Path(skimage.__file__).resolve().parent / "data"
_MPL = Path(matplotlib.get_data_path()) / "sample_data"

# name -> file; colour photographs of natural scenes, plus one grey photo (camera) to exercise grey handling.
PHOTOS = {
    "astronaut": _SKIMAGE / "astronaut.png",
    "camera": _SKIMAGE / "camera.png",
    "chelsea": _SKIMAGE / "chelsea.png",
    "coffee": _SKIMAGE / "coffee.png",
    "grace_hopper": _MPL / "grace_hopper.jpg",
    "motorcycle": _SKIMAGE / "motorcycle_left.png",
    "rocket": _SKIMAGE / "rocket.jpg",
}


def package_photo_paths(names: list[str] | None = None) -> dict[str, Path]:
    """Existing package photo files by name (all of ``PHOTOS`` unless ``names`` is given)."""
    chosen = PHOTOS if names is None else {n: PHOTOS[n] for n in names}
    missing = [str(p) for p in chosen.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"package photos missing from the installed packages: {', '.join(missing)}")
    return dict(chosen)
