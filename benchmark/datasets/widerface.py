"""WIDER FACE ground truth: the official files, read and written, and where they sit on disk (DESIGN 7.2).

Files: `wider_face_val_bbx_gt.txt` (from `wider_face_split/`) and the four evaluation files `wider_face_val.mat`,
`wider_{easy,medium,hard}_val.mat` (from `eval_tools/ground_truth/`). Two layouts are recognised: the official
download (`WIDER_val/images/<event>/`, `wider_face_split/`, `eval_tools/ground_truth/`) and a flat one (every GT file
at the root, `images/<event>/`). The writers reproduce the official files (the val annotation byte for byte, the .mat
files cell for cell), so a synthetic generator can lay out a dataset that the official tools read unchanged.
"""
from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io

from benchmark.errors import InputError, refuse_unusable

SETTINGS = ("easy", "medium", "hard")
ATTRIBUTES = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")
GT_MAT = "wider_face_val.mat"
SETTING_MAT = "wider_{}_val.mat"
BBX_TXT = "wider_face_val_bbx_gt.txt"


@dataclass
class WiderFaceGT:
    """Ground truth of a split, in the official order.

    image_ids: `event/name` (no `.jpg`). boxes: per image [G, 4] int32 x, y, w, h, exactly as the file lists them:
    a face-less val image has one all-zero row (kept, because the official evaluation then scores that image's
    predictions as false positives), a train-style count of 0 has none. attributes: per image [G, 6] uint8 in
    ATTRIBUTES order. keep: per setting, per image the 0-based indices of the faces that count (the .mat `gt_list`
    minus 1); empty when read from the .txt, which has no settings.
    """

    image_ids: list[str]
    boxes: list[np.ndarray]
    attributes: list[np.ndarray]
    keep: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.image_ids)

    def num_faces(self, setting: str) -> int:
        """Faces that count in `setting` (the recall denominator)."""
        return int(sum(len(k) for k in self.keep[setting]))

    def subset(self, image_ids: Iterable[str]) -> WiderFaceGT:
        """The images named in `image_ids`, in this GT's order; an unknown id raises InputError."""
        wanted = set(image_ids)
        unknown = wanted.difference(self.image_ids)
        if unknown:
            raise InputError(f"{len(unknown)} image id(s) not in the ground truth, e.g. {sorted(unknown)[0]!r}")
        rows = [i for i, image_id in enumerate(self.image_ids) if image_id in wanted]
        return WiderFaceGT(
            image_ids=[self.image_ids[i] for i in rows],
            boxes=[self.boxes[i] for i in rows],
            attributes=[self.attributes[i] for i in rows] if self.attributes else [],
            keep={s: [k[i] for i in rows] for s, k in self.keep.items()},
        )


@dataclass(frozen=True)
class WiderFaceLayout:
    """Where the parts of a WIDER FACE validation set are: images_dir/<event>/<name>.jpg, gt_dir (the four .mat
    files), bbx_gt (the split annotation .txt, None when absent)."""

    root: Path
    images_dir: Path
    gt_dir: Path
    bbx_gt: Path | None


def check_image_id(image_id: str, where: str) -> str:
    """Return `image_id` if it is a safe `event/name` (two plain relative parts); else InputError naming `where`."""
    parts = image_id.split("/")
    if (
        len(parts) != 2
        or image_id.startswith("/")
        or "\\" in image_id
        or any(p in ("", ".", "..") or ":" in p for p in parts)
    ):
        raise InputError(f"{where}: unsafe or malformed image path {image_id!r} (expected 'event/name')")
    return image_id


def locate(root: str | Path) -> WiderFaceLayout:
    """Find the images and the GT files under `root`, in the official or the flat layout."""
    root = Path(root)
    candidates = [
        (root / "WIDER_val" / "images", root / "eval_tools" / "ground_truth", root / "wider_face_split" / BBX_TXT),
        (root / "images", root, root / BBX_TXT),
    ]
    for images_dir, gt_dir, bbx_gt in candidates:
        if images_dir.is_dir() and (gt_dir / GT_MAT).is_file():
            return WiderFaceLayout(root, images_dir, gt_dir, bbx_gt if bbx_gt.is_file() else None)
    raise InputError(
        f"{root}: not a WIDER FACE folder (expected WIDER_val/images/ + eval_tools/ground_truth/{GT_MAT}, "
        f"or images/ + {GT_MAT} at the root)"
    )


def image_path(images_dir: str | Path, image_id: str) -> Path:
    """Path of an image: images_dir/event/name.jpg."""
    return Path(images_dir) / f"{check_image_id(image_id, str(images_dir))}.jpg"


def images_on_disk(images_dir: str | Path, image_ids: Iterable[str]) -> list[str]:
    """The ids (in the given order) whose image file exists, so a run on a partial copy can say 'subset of N images'."""
    return [i for i in image_ids if image_path(images_dir, i).is_file()]


# --- wider_face_*_bbx_gt.txt ------------------------------------------------------------------------------------

def _is_placeholder(line: str) -> bool:
    fields = line.split()
    return len(fields) == len(ATTRIBUTES) + 4 and all(f.lstrip("-").isdigit() and int(f) == 0 for f in fields)


def read_bbx_gt(path: str | Path) -> WiderFaceGT:
    """Read a `wider_face_*_bbx_gt.txt`: per image `event/name.jpg`, a count, then `x y w h blur expression
    illumination invalid occlusion pose` per face. A count of 0 may be followed by one all-zero line (train split),
    which is consumed; a count of 1 with an all-zero line (val split) is kept as one all-zero row."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e})") from None
    while lines and not lines[-1].strip():
        lines.pop()
    ids, boxes, attrs = [], [], []
    i = 0
    while i < len(lines):
        name = lines[i].strip()
        if not name.endswith(".jpg"):
            raise InputError(f"{path}:{i + 1}: expected an image path 'event/name.jpg', got {name!r}")
        ids.append(check_image_id(name[: -len(".jpg")], f"{path}:{i + 1}"))
        if i + 1 >= len(lines):
            raise InputError(f"{path}:{i + 2}: missing the face count of {name}")
        try:
            count = int(lines[i + 1])
        except ValueError:
            raise InputError(f"{path}:{i + 2}: expected the face count of {name}, got {lines[i + 1]!r}") from None
        if count < 0:
            raise InputError(f"{path}:{i + 2}: negative face count {count}")
        i += 2
        if count == 0 and i < len(lines) and _is_placeholder(lines[i]):
            i += 1
        rows = np.zeros((count, 10), dtype=np.int64)
        for k in range(count):
            if i >= len(lines):
                raise InputError(f"{path}:{i + 1}: {name} declares {count} faces but the file ends after {k}")
            fields = lines[i].split()
            try:
                if len(fields) != 10:
                    raise ValueError
                rows[k] = [int(f) for f in fields]
            except ValueError:
                raise InputError(
                    f"{path}:{i + 1}: expected 10 integers 'x y w h blur expression illumination invalid occlusion "
                    f"pose', got {lines[i].strip()!r}"
                ) from None
            i += 1
        boxes.append(rows[:, :4].astype(np.int32))
        attrs.append(rows[:, 4:].astype(np.uint8))
    return WiderFaceGT(ids, boxes, attrs)


def _int_boxes(boxes: np.ndarray, image_id: str) -> np.ndarray:
    boxes = np.asarray(boxes).reshape(-1, 4)
    if not np.array_equal(boxes, np.round(boxes)):
        raise ValueError(f"{image_id}: WIDER FACE boxes are whole pixels, got {boxes[:1]}")
    return boxes.astype(np.int32)


def _attributes(gt: WiderFaceGT, k: int) -> np.ndarray:
    n = len(np.asarray(gt.boxes[k]).reshape(-1, 4))
    if not gt.attributes:
        return np.zeros((n, len(ATTRIBUTES)), np.uint8)
    return np.asarray(gt.attributes[k], dtype=np.uint8).reshape(n, len(ATTRIBUTES))


def write_bbx_gt(gt: WiderFaceGT, path: str | Path) -> None:
    """Write `gt` as a `wider_face_*_bbx_gt.txt` (an image with no rows is written train-style: count 0 and an
    all-zero line). Missing attributes are written as 0."""
    out = []
    for k, image_id in enumerate(gt.image_ids):
        check_image_id(image_id, "write_bbx_gt")
        boxes = _int_boxes(gt.boxes[k], image_id)
        rows = np.hstack([boxes, _attributes(gt, k)]) if len(boxes) else np.zeros((1, 10), np.int64)
        out.append(f"{image_id}.jpg\n{len(boxes)}\n")
        out.extend(" ".join(str(int(v)) for v in row) + " \n" for row in rows)
    Path(path).write_text("".join(out), encoding="utf-8")


# --- eval_tools/ground_truth/*.mat --------------------------------------------------------------------------------

def _cell_str(value) -> str:
    return str(np.asarray(value).ravel()[0])


def _loadmat(path: Path, keys: tuple[str, ...]) -> dict:
    try:
        mat = scipy.io.loadmat(str(path))
    except FileNotFoundError:
        raise InputError(f"{path}: missing (the evaluation needs {GT_MAT} and the three setting files)") from None
    except Exception as e:  # scipy raises several types for a corrupt or non-MAT file
        raise InputError(f"{path}: not a readable MATLAB file ({e})") from None
    missing = [k for k in keys if k not in mat]
    if missing:
        raise InputError(f"{path}: not a WIDER FACE ground-truth file (no {', '.join(missing)})")
    return mat


def read_gt_entries(gt_dir: str | Path) -> tuple[WiderFaceGT, list[str]]:
    """Read the official evaluation ground truth from `gt_dir`: `wider_face_val.mat` (boxes, attributes) and
    `wider_{easy,medium,hard}_val.mat` (`gt_list`: 1-based indices of the faces that count in that setting).

    Returns the usable images and one message (file, event, file index) per malformed entry, which is left out: an
    unsafe image path (one that would leave the dataset), boxes that are not N x 4, labels or a `gt_list` that do not
    fit its faces. A file that is missing or not in the official structure raises InputError."""
    gt_dir = Path(gt_dir)
    path = gt_dir / GT_MAT
    mat = _loadmat(path, ("event_list", "file_list", "face_bbx_list"))
    label_keys = [f"{a}_label_list" for a in ATTRIBUTES]
    labels = [mat[k] for k in label_keys] if all(k in mat for k in label_keys) else None
    ids, boxes, attrs, problems = [], [], [], {}
    try:
        for e in range(mat["event_list"].shape[0]):
            event = _cell_str(mat["event_list"][e, 0])
            files = mat["file_list"][e, 0]
            for j in range(files.shape[0]):
                where = f"{path}: event {e + 1}, file {j + 1}"
                ids.append(f"{event}/{_cell_str(files[j, 0])}")
                try:
                    check_image_id(ids[-1], where)
                    b = np.asarray(mat["face_bbx_list"][e, 0][j, 0])
                    if b.size % 4:
                        raise InputError(f"{where} ({ids[-1]}): face boxes of shape {b.shape}, expected N x 4")
                    b = b.reshape(-1, 4).astype(np.int32)
                    a = (np.zeros((len(b), len(ATTRIBUTES)), np.uint8) if labels is None else
                         np.hstack([np.asarray(m[e, 0][j, 0]).reshape(len(b), 1) for m in labels]).astype(np.uint8))
                except InputError as err:
                    problems[len(ids) - 1] = str(err)
                    b, a = np.zeros((0, 4), np.int32), np.zeros((0, len(ATTRIBUTES)), np.uint8)
                except ValueError:
                    problems[len(ids) - 1] = f"{where} ({ids[-1]}): attribute labels do not match its faces"
                    b, a = np.zeros((0, 4), np.int32), np.zeros((0, len(ATTRIBUTES)), np.uint8)
                boxes.append(b)
                attrs.append(a)
    except (IndexError, ValueError, TypeError) as err:
        raise InputError(f"{path}: not in the official cell-array structure ({err})") from None
    keep = {}
    for setting in SETTINGS:
        spath = gt_dir / SETTING_MAT.format(setting)
        gt_list = _loadmat(spath, ("gt_list",))["gt_list"]
        try:
            keep[setting] = [np.asarray(gt_list[e, 0][j, 0]).ravel().astype(np.int64) - 1
                             for e in range(gt_list.shape[0]) for j in range(gt_list[e, 0].shape[0])]
        except (IndexError, ValueError, TypeError) as err:
            raise InputError(f"{spath}: not in the official cell-array structure ({err})") from None
        if len(keep[setting]) != len(ids):
            raise InputError(f"{spath}: lists {len(keep[setting])} images, {path} lists {len(ids)}")
        for k, (kept, b) in enumerate(zip(keep[setting], boxes)):
            if k not in problems and len(kept) and (kept.min() < 0 or kept.max() >= len(b)):
                problems[k] = f"{spath}: gt_list of {ids[k]} is outside 1..{len(b)}"
    rows = [k for k in range(len(ids)) if k not in problems]
    gt = WiderFaceGT([ids[k] for k in rows], [boxes[k] for k in rows], [attrs[k] for k in rows],
                     {s: [v[k] for k in rows] for s, v in keep.items()})
    return gt, [problems[k] for k in sorted(problems)]


def read_gt_mat(gt_dir: str | Path) -> WiderFaceGT:
    """`read_gt_entries`, refusing a file with malformed entries (all named in one InputError)."""
    gt, problems = read_gt_entries(gt_dir)
    refuse_unusable(problems, len(gt) + len(problems), "ground-truth entries")
    return gt


def _cells(items: list) -> np.ndarray:
    cell = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        cell[i, 0] = item
    return cell


def _savemat(path: Path, mdict: dict) -> None:
    """`scipy.io.savemat` with a fixed header text instead of the creation time, so the same data gives the same
    bytes (the 116-byte description is free text; MATLAB reads only the fields after it)."""
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, mdict)
    data = bytearray(buffer.getvalue())
    data[:116] = b"MATLAB 5.0 MAT-file, written by carsr-bench".ljust(116)
    path.write_bytes(bytes(data))


def write_gt_mat(gt: WiderFaceGT, gt_dir: str | Path) -> None:
    """Write `wider_face_val.mat` and `wider_{easy,medium,hard}_val.mat` in the official structure (cell arrays of
    events, then of images; int32 boxes, uint8 labels, double `gt_list` columns). Images are grouped by event in order
    of first appearance. An image with no rows gets one all-zero box, as the official files do."""
    gt_dir = Path(gt_dir)
    gt_dir.mkdir(parents=True, exist_ok=True)
    events: dict[str, list[int]] = {}
    for k, image_id in enumerate(gt.image_ids):
        events.setdefault(check_image_id(image_id, "write_gt_mat").split("/")[0], []).append(k)

    def boxes_of(k):
        b = _int_boxes(gt.boxes[k], gt.image_ids[k])
        return b if len(b) else np.zeros((1, 4), np.int32)

    def attrs_of(k):
        a = _attributes(gt, k)
        return a if len(a) else np.zeros((1, len(ATTRIBUTES)), np.uint8)

    base = {
        "event_list": _cells(list(events)),
        "file_list": _cells([_cells([gt.image_ids[k].split("/")[1] for k in ks]) for ks in events.values()]),
        "face_bbx_list": _cells([_cells([boxes_of(k) for k in ks]) for ks in events.values()]),
    }
    for a, name in enumerate(ATTRIBUTES):
        base[f"{name}_label_list"] = _cells(
            [_cells([attrs_of(k)[:, a : a + 1].copy() for k in ks]) for ks in events.values()]
        )
    _savemat(gt_dir / GT_MAT, base)
    for setting in SETTINGS:
        keep = gt.keep.get(setting)
        if keep is None:
            raise ValueError(f"write_gt_mat: the ground truth has no {setting!r} setting")
        gt_list = _cells([
            _cells([(np.asarray(keep[k], dtype=np.float64).reshape(-1, 1) + 1) for k in ks]) for ks in events.values()
        ])
        _savemat(gt_dir / SETTING_MAT.format(setting), {**base, "gt_list": gt_list})
