"""Word-crop recognition data in two official layouts, ICDAR2013 Challenge 2 Task 3 and clovaai's LMDB, and a flat
folder of crops.

ICDAR2013 (RRC downloads `Challenge2_Test_Task3_Images.zip`, `Challenge2_Test_Task3_GT.txt`):
    ROOT/Challenge2_Test_Task3_Images/word_1.png ...
    ROOT/Challenge2_Test_Task3_GT.txt            lines `word_1.png, "Tiredness"` (UTF-8, optional BOM, CRLF or LF;
                                                 a quote or backslash inside a label is escaped with a backslash)
clovaai LMDB (`create_lmdb_dataset.py`): keys `num-samples` (ASCII int), `image-%09d` (encoded image bytes),
`label-%09d` (UTF-8), indices from 1; every folder holding a `data.mdb` is one dataset.
Flat folder (as IIIT5K/SVT crops are often shared): ROOT/gt.tsv with lines `relative/path.png<TAB>label` (UTF-8),
the images anywhere under ROOT.

Subsets of the 1,095 test words (Baek et al. 2019, Sec. 2): IC13_1015 keeps the labels clovaai's default filter keeps
(at most 25 characters, alphanumeric), empty ones dropped; IC13_857 additionally drops words shorter than 3 characters.

Command: `python -m benchmark.datasets.icdar to-lmdb SRC_DIR DST_DIR [--subset all|1015|857]`.
"""
from __future__ import annotations

import argparse
import io
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from benchmark.errors import InputError
from benchmark.images import to_rgb_uint8
from benchmark.metrics.text import kept_by_filter

if TYPE_CHECKING:  # for annotations only: lmdb is imported where it is used
    import lmdb

IMAGES_DIR = "Challenge2_Test_Task3_Images"
GT_FILE = "Challenge2_Test_Task3_GT.txt"
FLAT_GT = "gt.tsv"
SUBSETS = ("all", "1015", "857")

_GT_LINE = re.compile(r'\s*(?P<name>[^,]*?)\s*,\s*"(?P<label>.*)"\s*')
_ESCAPE = re.compile(r'\\(["\\])')


@dataclass(frozen=True)
class WordItem:
    """One word crop: `id` names the official file (`word_12.png`) or LMDB key (`image-000000012`)."""

    id: str
    label: str
    origin: str  # where the bytes come from, for messages: a file path or `LMDB_DIR:image-%09d`
    read: Callable[[], bytes]
    problem: str = ""  # why the item cannot be used (missing or unsafe image path), named by its GT line

    def image(self) -> np.ndarray:
        """Decoded uint8 RGB HxWx3."""
        return decode_image(self.read(), self.origin)


def decode_image(data: bytes, origin: str) -> np.ndarray:
    """Encoded bytes -> uint8 RGB HxWx3 (`benchmark.images.to_rgb_uint8`: grey/palette/RGBA to RGB, 16-bit scaled)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            img.load()
    except UnidentifiedImageError:
        raise InputError(f"{origin}: cannot decode image (not a recognised image format)") from None
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError and its own errors for bad bytes
        raise InputError(f"{origin}: cannot decode image ({type(exc).__name__}: {exc})") from None
    return to_rgb_uint8(img)


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG bytes of a uint8 grey or RGB array."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _unescape(label: str) -> str:
    return _ESCAPE.sub(r"\1", label)


def _escape(label: str) -> str:
    return label.replace("\\", "\\\\").replace('"', '\\"')


def _inside(folder: Path, name: str, where: str) -> Path:
    """folder/name, refusing names that are absolute or climb out of `folder` (checked on the text, not on links)."""
    relative = Path(os.path.normpath(name))
    if "\x00" in name or relative.is_absolute() or relative.parts[:1] == ("..",) or relative == Path("."):
        raise InputError(f"{where}: image path {name!r} escapes the dataset folder {folder}")
    return folder / relative


def read_gt(gt_path: str | Path, malformed: list[str] | None = None) -> list[tuple[str, str, int]]:
    """(image name, label, line number) per non-blank line of an ICDAR2013 Task 3 GT file.

    A malformed or repeated line raises, or with a ``malformed`` list is described there and skipped."""
    gt_path = Path(gt_path)
    try:
        data = gt_path.read_bytes()
    except OSError as exc:
        raise InputError(f"{gt_path}: cannot read ground truth ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputError(f"{gt_path}:{line}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    entries, seen = [], {}
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        match = _GT_LINE.fullmatch(line)
        if match is None or not match["name"]:
            shown = line if len(line) <= 80 else line[:77] + "..."
            problem = f'{gt_path}:{number}: malformed line {shown!r}, expected: word_N.png, "label"'
        elif match["name"] in seen:
            problem = f"{gt_path}:{number}: {match['name']} already listed on line {seen[match['name']]}"
        else:
            problem = ""
        if problem:
            if malformed is None:
                raise InputError(problem)
            malformed.append(problem)
            continue
        name = match["name"]
        seen[name] = number
        entries.append((name, _unescape(match["label"]), number))
    return entries


def in_subset(label: str, subset: str) -> bool:
    """all: every word; 1015: the labels clovaai's default filter keeps (at most 25 characters, lowercased all in
    [0-9a-z]), empty ones dropped; 857: those of at least 3 characters."""
    if subset not in SUBSETS:
        raise InputError(f"unknown ICDAR2013 subset {subset!r} (choose from {', '.join(SUBSETS)})")
    if subset == "all":
        return True
    return kept_by_filter(label) and len(label) >= (1 if subset == "1015" else 3)


def _file_reader(path: Path) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise InputError(f"{path}: cannot read image ({exc.strerror})") from None
    return read


def read_icdar2013(root: str | Path, subset: str = "all", strict: bool = True,
                   malformed: list[str] | None = None) -> list[WordItem]:
    """Items of ROOT in GT order; every listed image must exist (checked now, decoded on `WordItem.image()`).

    ``strict=False`` keeps a missing or unsafe image as an item with its ``problem`` set instead of raising, and
    with a ``malformed`` list the GT lines that cannot be read are described there (`read_gt`), so a caller can
    name every bad item at once.
    """
    root = Path(root)
    images, gt_path = root / IMAGES_DIR, root / GT_FILE
    if not gt_path.is_file() and (images / GT_FILE).is_file():
        gt_path = images / GT_FILE
    if not gt_path.is_file():
        raise InputError(f"{root}: no {GT_FILE} (ICDAR2013 Task 3 layout: {GT_FILE} and {IMAGES_DIR}/)")
    if not images.is_dir():
        raise InputError(f"{root}: no {IMAGES_DIR}/ folder")
    return _word_items(read_gt(gt_path, malformed), images, gt_path, subset, strict)


def _word_items(entries: list[tuple[str, str, int]], images: Path, gt_path: Path, subset: str,
                strict: bool) -> list[WordItem]:
    """Items of the (name, label, line number) entries of `subset`, the images under `images` (see
    `read_icdar2013` for ``strict``)."""
    items = []
    for name, label, number in entries:
        if not in_subset(label, subset):
            continue
        try:
            path = _inside(images, name, f"{gt_path}:{number}")
            if not path.is_file():
                raise InputError(f"{gt_path}:{number}: image {name} not found in {images}")
        except InputError as exc:
            if strict:
                raise
            items.append(WordItem(name, label, f"{gt_path}:{number}", _unreadable(str(exc)), str(exc)))
            continue
        items.append(WordItem(name, label, str(path), _file_reader(path)))
    return items


def read_flat_gt(gt_path: Path, malformed: list[str] | None = None) -> list[tuple[str, str, int]]:
    """(relative image path, label, line number) per non-blank `path<TAB>label` line; a line without a tab or path,
    or a path listed twice, raises, or with a ``malformed`` list is described there and skipped."""
    try:
        text = gt_path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{gt_path}: cannot read ground truth ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{gt_path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    entries, seen = [], {}
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        name, tab, label = line.partition("\t")
        if not tab or not name:
            shown = line if len(line) <= 80 else line[:77] + "..."
            problem = f"{gt_path}:{number}: malformed line {shown!r}, expected: path<TAB>label"
        elif name in seen:
            problem = f"{gt_path}:{number}: {name} already listed on line {seen[name]}"
        else:
            seen[name] = number
            entries.append((name, label, number))
            continue
        if malformed is None:
            raise InputError(problem)
        malformed.append(problem)
    return entries


def read_flat(root: str | Path, subset: str = "all", strict: bool = True,
              malformed: list[str] | None = None) -> list[WordItem]:
    """Items of a flat crop folder (ROOT/gt.tsv, images under ROOT) in list order; as `read_icdar2013`."""
    root = Path(root)
    gt_path = root / FLAT_GT
    if not gt_path.is_file():
        raise InputError(f"{root}: no {FLAT_GT} (flat layout: {FLAT_GT} with path<TAB>label lines)")
    return _word_items(read_flat_gt(gt_path, malformed), root, gt_path, subset, strict)


def write_flat(root: str | Path, samples: Iterable[tuple[str, str, np.ndarray | bytes]]) -> Path:
    """Write (relative path, label, image) samples as a flat crop folder (arrays as PNG, bytes as is); returns the
    gt.tsv path. A label with a tab or line break cannot be written."""
    root = Path(root)
    lines = []
    for name, label, image in samples:
        if "\t" in name or "\n" in name or "\t" in label or "\n" in label or "\r" in label:
            raise InputError(f"{name!r}, {label!r}: a tab or line break cannot be written in {FLAT_GT}")
        path = _inside(root, name, str(root))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image if isinstance(image, bytes) else encode_png(image))
        lines.append(f"{name}\t{label}\n")
    gt_path = root / FLAT_GT
    gt_path.write_text("".join(lines), encoding="utf-8")
    return gt_path


def _unreadable(problem: str) -> Callable[[], bytes]:
    def read() -> bytes:
        raise InputError(problem)
    return read


def write_icdar2013(root: str | Path, samples: Iterable[tuple[str, str, np.ndarray | bytes]]) -> Path:
    """Write (file name, label, image) samples in the ICDAR2013 Task 3 layout; arrays are saved as PNG, bytes as is.

    The GT is UTF-8 without BOM, LF line ends, quotes and backslashes in labels escaped. Returns the GT path.
    """
    root = Path(root)
    images = root / IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, label, image in samples:
        if "/" in name or "\\" in name or "," in name or '"' in name:
            raise InputError(f"{name!r}: an ICDAR2013 image name must be a plain file name without , or \"")
        path = _inside(images, name, str(root))
        path.write_bytes(image if isinstance(image, bytes) else encode_png(image))
        lines.append(f'{name}, "{_escape(label)}"\n')
    gt_path = root / GT_FILE
    gt_path.write_text("".join(lines), encoding="utf-8")
    return gt_path


def lmdb_dirs(root: str | Path) -> list[Path]:
    """Every folder under ROOT (ROOT included) that holds a `data.mdb`, sorted: one dataset each."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: LMDB dataset folder not found")
    return sorted(p.parent for p in root.rglob("data.mdb"))


def read_lmdb(path: str | Path) -> list[WordItem]:
    """Items of one clovaai LMDB (`num-samples`, `image-%09d`, `label-%09d` from 1); images read lazily."""
    path = Path(path)
    if not (path / "data.mdb").is_file():
        raise InputError(f"{path}: no data.mdb (clovaai LMDB layout)")
    import lmdb  # imported here: the GPU training image has no lmdb and needs none

    try:
        env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=32)
    except lmdb.Error as exc:
        raise InputError(f"{path}: cannot open LMDB ({exc})") from None
    items = []
    with env.begin(buffers=True) as txn:
        raw = txn.get(b"num-samples")
        try:
            count = int(bytes(raw).decode("ascii"))
        except (TypeError, UnicodeDecodeError, ValueError):
            raise InputError(f"{path}: num-samples missing or not an integer") from None
        for index in range(1, count + 1):
            image_key, label_key = f"image-{index:09d}", f"label-{index:09d}"
            label = txn.get(label_key.encode())
            if label is None or txn.get(image_key.encode()) is None:
                raise InputError(f"{path}:{label_key if label is None else image_key}: missing "
                                 f"(num-samples is {count})")
            try:
                label = bytes(label).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}:{label_key}: label is not UTF-8 ({exc.reason})") from None
            items.append(WordItem(image_key, label, f"{path}:{image_key}", _lmdb_reader(env, image_key)))
    return items


def _lmdb_reader(env: lmdb.Environment, key: str) -> Callable[[], bytes]:
    def read() -> bytes:
        with env.begin() as txn:
            return txn.get(key.encode())
    return read


def write_lmdb(path: str | Path, samples: Iterable[tuple[str, np.ndarray | bytes]]) -> int:
    """Write (label, image) samples as a clovaai LMDB at PATH (arrays as PNG, bytes as is); returns the count.

    Unlike `create_lmdb_dataset.py`, which skips undecodable images with a print, a bad image stops the write.
    """
    path = Path(path)
    if (path / "data.mdb").exists():
        raise InputError(f"{path}: already holds an LMDB; write to a new folder")
    encoded = []
    for index, (label, image) in enumerate(samples, start=1):
        data = image if isinstance(image, bytes) else encode_png(image)
        decode_image(data, f"{path}: sample {index} ({label!r})")
        encoded.append((label.encode("utf-8"), data))
    path.mkdir(parents=True, exist_ok=True)
    page = 4096
    map_size = 2 * sum((len(d) + len(lb)) // page + 3 for lb, d in encoded) * page + (1 << 20)
    import lmdb

    env = lmdb.open(str(path), map_size=map_size)
    try:
        with env.begin(write=True) as txn:
            for index, (label, data) in enumerate(encoded, start=1):
                txn.put(f"image-{index:09d}".encode(), data)
                txn.put(f"label-{index:09d}".encode(), label)
            txn.put(b"num-samples", str(len(encoded)).encode())
    finally:
        env.close()
    return len(encoded)


def icdar2013_to_lmdb(src: str | Path, dst: str | Path, subset: str = "all") -> int:
    """Copy an ICDAR2013 Task 3 folder into a clovaai LMDB, image bytes unchanged, in GT order."""
    samples = []
    for item in read_icdar2013(src, subset):
        data = item.read()
        decode_image(data, item.origin)  # name a bad file by its path before anything is written
        samples.append((item.label, data))
    return write_lmdb(dst, samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.datasets.icdar", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    to_lmdb = commands.add_parser("to-lmdb", help="convert an ICDAR2013 Task 3 folder into a clovaai LMDB")
    to_lmdb.add_argument("src_dir", type=Path)
    to_lmdb.add_argument("dst_dir", type=Path)
    to_lmdb.add_argument("--subset", choices=SUBSETS, default="all")
    args = parser.parse_args(argv)
    try:
        count = icdar2013_to_lmdb(args.src_dir, args.dst_dir, args.subset)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {count} samples to {args.dst_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
