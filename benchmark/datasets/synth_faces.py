"""Synthetic crowd scenes in the WIDER FACE layout: the embedded default of the tiny-face task (DESIGN 3).

Real face photos that installed packages ship are composited at 8 to 120 px onto package photos:
scikit-image's ``lfw_subset`` (its first 100 entries are grey 25x25 faces, tinted to skin tones; the other 100
are non-face patches, pasted as distractors) and the colour faces of ``astronaut`` and matplotlib's
``grace_hopper``, plus the profile of ``camera``. Each face fills its box (soft elliptical edge, corners from
the background), so the boxes are exact. Attributes follow the WIDER codes (blur 0/1/2, illumination 0/1,
occlusion 0/1/2, pose 1 for the profile), and the settings are nested by size as WIDER's roughly are:
hard = height >= 10 px, medium = hard and height >= 25 and not heavily occluded, easy = medium and height >= 50,
no occlusion, no heavy blur. Faces under 10 px stay in the ground truth but count in no setting (ignored).

Scene ``k`` of a seed is drawn from ``default_rng([seed, k])``, so a set is byte-identical for a seed and a
longer set starts with the shorter one. The test split and the training split share no LFW identity (every
fifth face is held out for test); backgrounds and colour faces are shared.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import skimage
from PIL import Image, ImageFilter

from benchmark.datasets.package_photos import package_photo_paths
from benchmark.datasets.widerface import (BBX_TXT, GT_MAT, SETTING_MAT, SETTINGS, WiderFaceGT, write_bbx_gt,
                                         write_gt_mat)
from benchmark.images import read_image
from benchmark.report import write_json

LFW_SUBSET = Path(skimage.__file__).resolve().parent / "data" / "lfw_subset.npy"
# Face boxes (x1, y1, x2, y2; forehead to chin, as WIDER draws them) in package photos, and their WIDER pose.
COLOUR_FACES = {"astronaut": ((178, 72, 264, 178), 0), "grace_hopper": ((160, 130, 360, 345), 0),
                "camera": ((172, 82, 262, 186), 1)}
BACKGROUNDS = ("chelsea", "coffee", "motorcycle", "rocket")  # package photos without a human face
SCENE_SIZES = ((512, 384), (384, 512))
FACE_HEIGHT = (8, 120)
FACES_PER_SCENE = (8, 28)
DISTRACTORS_PER_SCENE = (2, 8)
HARD_MIN, MEDIUM_MIN, EASY_MIN = 10, 25, 50
SKIN_TONES = np.array([[1.0, 0.86, 0.76], [0.96, 0.78, 0.64], [0.82, 0.62, 0.48], [0.62, 0.44, 0.33],
                       [0.45, 0.31, 0.24], [1.0, 1.0, 1.0]])
JPEG_QUALITY = 92
MANIFEST = "synth_faces.json"
VERSION = 1
DEFAULT_N = 50
DEFAULT_SEED = 0


@dataclass
class Scene:
    """One composited image with its faces: boxes [N, 4] int32 x, y, w, h; attributes [N, 6] uint8 in
    `widerface.ATTRIBUTES` order."""

    image: np.ndarray
    boxes: np.ndarray
    attributes: np.ndarray


@dataclass(frozen=True)
class FaceBank:
    """Face crops (uint8 RGB, the face fills the crop), their pose code, whether they are grey (to be tinted), and
    non-face patches used as distractors."""

    faces: tuple[np.ndarray, ...]
    poses: tuple[int, ...]
    grey: tuple[bool, ...]
    distractors: tuple[np.ndarray, ...]


@lru_cache(maxsize=2)
def face_bank(split: str) -> FaceBank:
    """The faces of `split` ('test': LFW faces 0, 5, ..., 95; 'train': the other 80) plus the colour faces."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    lfw = np.floor(np.load(LFW_SUBSET) * 255 + 0.5).astype(np.uint8)
    held_out = (np.arange(100) % 5 == 0) == (split == "test")
    faces = [np.repeat(f[..., None], 3, axis=2) for f in lfw[:100][held_out]]
    poses, grey = [0] * len(faces), [True] * len(faces)
    photos = package_photo_paths(list(COLOUR_FACES))
    for name, (box, pose) in COLOUR_FACES.items():
        x1, y1, x2, y2 = box
        faces.append(read_image(photos[name])[y1:y2, x1:x2].copy())
        poses.append(pose)
        grey.append(name == "camera")
    distractors = tuple(np.repeat(f[..., None], 3, axis=2) for f in lfw[100:])
    return FaceBank(tuple(faces), tuple(poses), tuple(grey), distractors)


@lru_cache(maxsize=1)
def backgrounds() -> tuple[np.ndarray, ...]:
    return tuple(read_image(p) for p in package_photo_paths(list(BACKGROUNDS)).values())


def _ellipse_alpha(w: int, h: int) -> np.ndarray:
    """[h, w, 1] opacity: 1 inside the inscribed ellipse, fading out just past it, 0 in the corners."""
    y = (np.arange(h) + 0.5) / h * 2 - 1
    x = (np.arange(w) + 0.5) / w * 2 - 1
    r = np.sqrt(x[None, :] ** 2 + y[:, None] ** 2)
    return np.clip((1.2 - r) / 0.25, 0, 1)[..., None]


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((w, h), Image.BICUBIC))


def _background(rng: np.random.Generator, index: int) -> np.ndarray:
    w, h = SCENE_SIZES[int(rng.integers(len(SCENE_SIZES)))]
    photo = backgrounds()[index % len(BACKGROUNDS)]
    s = max(w / photo.shape[1], h / photo.shape[0]) * rng.uniform(1.0, 1.6)
    big = _resize(photo, math.ceil(photo.shape[1] * s), math.ceil(photo.shape[0] * s))
    y, x = int(rng.integers(big.shape[0] - h + 1)), int(rng.integers(big.shape[1] - w + 1))
    crop = big[y:y + h, x:x + w]
    return np.ascontiguousarray(crop[:, ::-1] if rng.integers(2) else crop)


def _place(rng: np.random.Generator, taken: list[tuple[int, int, int, int]], w: int, h: int, shape: tuple,
           tries: int = 40) -> tuple[int, int] | None:
    """A top-left corner for a w x h box inside the image that keeps 2 px from every taken box, or None."""
    for _ in range(tries):
        x, y = int(rng.integers(shape[1] - w + 1)), int(rng.integers(shape[0] - h + 1))
        if all(x + w + 2 <= tx or tx + tw + 2 <= x or y + h + 2 <= ty or ty + th + 2 <= y for tx, ty, tw, th in taken):
            return x, y
    return None


def _face_pixels(rng: np.random.Generator, bank: FaceBank, w: int, h: int) -> tuple[np.ndarray, list[int]]:
    """A face resized to w x h with its appearance jitter, and its attributes (blur, expression, illumination,
    invalid, occlusion, pose; occlusion filled in by the caller)."""
    k = int(rng.integers(len(bank.faces)))
    face = bank.faces[k].astype(np.float64)
    if bank.grey[k]:
        face = face * SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    gain, illumination = rng.uniform(0.8, 1.2), 0
    if rng.random() < 0.1:
        gain, illumination = (rng.uniform(0.3, 0.5) if rng.integers(2) else rng.uniform(1.6, 2.0)), 1
    face = np.clip(face * gain + rng.uniform(-12, 12), 0, 255).astype(np.uint8)
    if rng.integers(2):
        face = face[:, ::-1]
    pil = Image.fromarray(np.ascontiguousarray(face)).resize((w, h), Image.BICUBIC)
    u, blur = rng.random(), 0
    if u < 0.1:
        pil, blur = pil.filter(ImageFilter.GaussianBlur(float(0.08 * h + 0.8))), 2
    elif u < 0.35:
        pil, blur = pil.filter(ImageFilter.GaussianBlur(float(0.03 * h + 0.4))), 1
    return np.asarray(pil), [blur, 0, illumination, 0, 0, bank.poses[k]]


def _paste(canvas: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    h, w = patch.shape[:2]
    alpha = _ellipse_alpha(w, h)
    region = canvas[y:y + h, x:x + w].astype(np.float64)
    canvas[y:y + h, x:x + w] = np.floor(alpha * patch + (1 - alpha) * region + 0.5).astype(np.uint8)


def _occlude(rng: np.random.Generator, canvas: np.ndarray, source: np.ndarray, x: int, y: int, w: int, h: int
             ) -> int:
    """Cover part of the face at (x, y, w, h) from one side with background texture; returns the WIDER code."""
    u = rng.random()
    if u >= 0.28:
        return 0
    code, frac = (2, rng.uniform(0.4, 0.6)) if u < 0.08 else (1, rng.uniform(0.15, 0.35))
    side = int(rng.integers(3))
    if side == 0:  # from the bottom (a scarf, a shoulder)
        ch = max(1, round(h * frac))
        box = (x, y + h - ch, w, ch)
    else:  # from the left or the right
        cw = max(1, round(w * frac))
        box = (x if side == 1 else x + w - cw, y, cw, h)
    bx, by, bw, bh = box
    sy, sx = int(rng.integers(source.shape[0] - bh + 1)), int(rng.integers(source.shape[1] - bw + 1))
    canvas[by:by + bh, bx:bx + bw] = source[sy:sy + bh, sx:sx + bw]
    return code


def make_scene(rng: np.random.Generator, index: int, split: str = "test") -> Scene:
    """One crowd scene: a package-photo background (`index` picks which), faces of log-uniform height in
    FACE_HEIGHT (width 0.75 to 0.95 of it, no two boxes closer than 2 px), then non-face distractors."""
    canvas = _background(rng, index)
    source = canvas.copy()
    bank = face_bank(split)
    heights = np.exp(rng.uniform(*np.log(FACE_HEIGHT), size=int(rng.integers(*FACES_PER_SCENE))))
    taken, attrs = [], []
    for fh in sorted(np.round(heights).astype(int).tolist(), reverse=True):
        fw = max(6, int(round(fh * rng.uniform(0.75, 0.95))))
        spot = _place(rng, taken, fw, fh, canvas.shape)
        if spot is None:
            continue
        face, attributes = _face_pixels(rng, bank, fw, fh)
        _paste(canvas, face, *spot)
        attributes[4] = _occlude(rng, canvas, source, *spot, fw, fh)
        taken.append((*spot, fw, fh))
        attrs.append(attributes)
    for _ in range(int(rng.integers(*DISTRACTORS_PER_SCENE))):
        dh = int(round(np.exp(rng.uniform(*np.log((12, 90))))))
        dw = max(6, int(round(dh * rng.uniform(0.7, 1.1))))
        spot = _place(rng, taken, dw, dh, canvas.shape)
        if spot is not None:
            patch = bank.distractors[int(rng.integers(len(bank.distractors)))].astype(np.float64)
            patch = np.clip(patch * SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], 0, 255).astype(np.uint8)
            _paste(canvas, _resize(patch, dw, dh), *spot)
            taken.append((*spot, dw, dh))
    n = len(attrs)
    boxes = np.array(taken[:n], dtype=np.int32).reshape(n, 4)
    return Scene(canvas, boxes, np.array(attrs, dtype=np.uint8).reshape(n, 6))


def setting_indices(boxes: np.ndarray, attributes: np.ndarray) -> dict[str, np.ndarray]:
    """0-based indices of the faces that count in each setting (hard ⊇ medium ⊇ easy): size, occlusion, blur."""
    h, blur, occlusion = boxes[:, 3], attributes[:, 0], attributes[:, 4]
    hard = h >= HARD_MIN
    medium = hard & (h >= MEDIUM_MIN) & (occlusion < 2)
    easy = medium & (h >= EASY_MIN) & (occlusion == 0) & (blur < 2)
    return {"easy": np.flatnonzero(easy), "medium": np.flatnonzero(medium), "hard": np.flatnonzero(hard)}


def image_id(index: int) -> str:
    bg = index % len(BACKGROUNDS)
    return f"{bg}--{BACKGROUNDS[bg]}/{bg}_{BACKGROUNDS[bg]}_synth_{index:04d}"


def _settings(n_images: int, seed: int) -> dict:
    return {"version": VERSION, "n_images": n_images, "seed": seed, "split": "test"}


def generate(root: str | Path, n_images: int = DEFAULT_N, seed: int = DEFAULT_SEED) -> WiderFaceGT:
    """Write `n_images` test scenes under `root` in the flat WIDER layout (images/<event>/<name>.jpg, the val
    annotation .txt and the four evaluation .mat files), then a manifest with every file's sha256 (written last,
    so its presence means the set is complete). Returns the ground truth."""
    root = Path(root)
    order = sorted(range(n_images), key=lambda k: (k % len(BACKGROUNDS), k))  # grouped by event, as WIDER lists
    ids, boxes, attrs, keep = [], [], [], {s: [] for s in SETTINGS}
    for k in order:
        scene = make_scene(np.random.default_rng([seed, k]), k, "test")
        path = root / "images" / f"{image_id(k)}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(scene.image).save(path, quality=JPEG_QUALITY)
        ids.append(image_id(k))
        boxes.append(scene.boxes)
        attrs.append(scene.attributes)
        for s, idx in setting_indices(scene.boxes, scene.attributes).items():
            keep[s].append(idx)
    gt = WiderFaceGT(ids, boxes, attrs, keep)
    write_bbx_gt(gt, root / BBX_TXT)
    write_gt_mat(gt, root)
    files = [f"images/{i}.jpg" for i in ids] + [BBX_TXT, GT_MAT] + [SETTING_MAT.format(s) for s in SETTINGS]
    write_json(root / MANIFEST, {**_settings(n_images, seed), "sha256": {f: _sha256(root / f) for f in files}})
    return gt


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_complete(root: str | Path, n_images: int, seed: int) -> bool:
    """True if `root` holds a finished set of these settings (manifest present, every listed file there)."""
    root = Path(root)
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    same = all(manifest.get(k) == v for k, v in _settings(n_images, seed).items())
    return same and all((root / f).is_file() for f in manifest.get("sha256", {}))


def default_test_set(cache_dir: str | Path, n_images: int = DEFAULT_N, seed: int = DEFAULT_SEED) -> Path:
    """The folder of the default test set under `cache_dir`, generated unless a complete copy is already there."""
    root = Path(cache_dir) / f"synth_faces_seed{seed}_n{n_images}"
    if not is_complete(root, n_images, seed):
        (root / MANIFEST).unlink(missing_ok=True)
        generate(root, n_images, seed)
    return root

