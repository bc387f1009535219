"""benchmark/datasets/icdar.py: ICDAR2013 Task 3 GT parsing, subsets, LMDB and flat-folder round trips, image
decoding, bad input."""
import io

import lmdb
import numpy as np
import pytest
from PIL import Image

from benchmark.datasets.icdar import (
    GT_FILE,
    IMAGES_DIR,
    decode_image,
    encode_png,
    icdar2013_to_lmdb,
    in_subset,
    lmdb_dirs,
    main,
    read_flat,
    read_gt,
    read_icdar2013,
    read_lmdb,
    write_flat,
    write_icdar2013,
    write_lmdb,
)
from benchmark.errors import InputError


def crop(seed: int, width: int = 12) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (8, width, 3), dtype=np.uint8)


def make_native(root, lines: list[str], names=None, encoding="utf-8-sig", newline="\r\n"):
    """An ICDAR2013 Task 3 folder whose GT holds `lines` and whose images are the `names` (default: all listed)."""
    images = root / IMAGES_DIR
    images.mkdir(parents=True)
    for i, name in enumerate(names if names is not None else [line.split(",")[0] for line in lines if line]):
        (images / name).write_bytes(encode_png(crop(i)))
    (root / GT_FILE).write_bytes(newline.join(lines).encode(encoding) + newline.encode())
    return root


def test_gt_quotes_commas_escapes_bom_and_crlf(tmp_path):
    lines = ['word_1.png, "Tiredness"', 'word_2.png, "it\\"s"', 'word_3.png, "a,b"', 'word_4.png, "back\\\\slash"',
             'word_5.png, "\\"quoted\\""', "", 'word_6.png,"tight"  ', 'word_7.png, "say "hi""']
    root = make_native(tmp_path, lines)
    entries = read_gt(root / GT_FILE)
    assert [(n, lb) for n, lb, _ in entries] == [
        ("word_1.png", "Tiredness"), ("word_2.png", 'it"s'), ("word_3.png", "a,b"), ("word_4.png", "back\\slash"),
        ("word_5.png", '"quoted"'), ("word_6.png", "tight"), ("word_7.png", 'say "hi"')]
    assert [number for *_, number in entries] == [1, 2, 3, 4, 5, 7, 8]


def test_lf_without_bom_reads_the_same(tmp_path):
    root = make_native(tmp_path, ['word_1.png, "kills"'], encoding="utf-8", newline="\n")
    item, = read_icdar2013(root)
    assert (item.id, item.label) == ("word_1.png", "kills")
    image = item.image()
    assert image.dtype == np.uint8 and image.shape == (8, 12, 3) and np.array_equal(image, crop(0))


def test_subsets_follow_the_1015_and_857_rules():
    labels = ["Tiredness", "A", "it's", "to", "kills", "2013", "", "e-mail", "OK", "x" * 25, "x" * 26]
    assert [lb for lb in labels if in_subset(lb, "all")] == labels
    assert [lb for lb in labels if in_subset(lb, "1015")] == ["Tiredness", "A", "to", "kills", "2013", "OK", "x" * 25]
    assert [lb for lb in labels if in_subset(lb, "857")] == ["Tiredness", "kills", "2013", "x" * 25]
    with pytest.raises(InputError, match="unknown ICDAR2013 subset '900'"):
        in_subset("a", "900")


@pytest.mark.parametrize("subset", ["1015", "857"])
def test_ic13_subsets_are_exactly_the_standard_lists(shared_data, subset):
    root = shared_data / "text" / "IC13"
    listed = [line.split("\t") for line in (root / f"gt_subset_{subset}.tsv").read_text().splitlines()]
    items = read_icdar2013(root, subset)
    assert len(items) == int(subset)
    assert [(f"{IMAGES_DIR}/{i.id}", i.label) for i in items] == [tuple(row) for row in listed]


def test_read_icdar2013_subset_keeps_gt_order(tmp_path):
    root = make_native(tmp_path, ['word_1.png, "Tiredness"', 'word_2.png, "A"', 'word_3.png, "it\'s"',
                                  'word_4.png, "kills"'])
    assert [i.id for i in read_icdar2013(root, "1015")] == ["word_1.png", "word_2.png", "word_4.png"]
    assert [i.id for i in read_icdar2013(root, "857")] == ["word_1.png", "word_4.png"]


def test_native_writer_round_trip(tmp_path):
    samples = [("word_1.png", 'say "hi"', crop(1)), ("word_2.png", "a,b\\c", crop(2, 20)),
               ("word_3.png", "grey", encode_png(crop(3)[:, :, 0]))]
    write_icdar2013(tmp_path, samples)
    items = read_icdar2013(tmp_path)
    assert [(i.id, i.label) for i in items] == [(n, lb) for n, lb, _ in samples]
    assert np.array_equal(items[0].image(), crop(1)) and np.array_equal(items[1].image(), crop(2, 20))
    assert np.array_equal(items[2].image(), np.repeat(crop(3)[:, :, :1], 3, axis=2))
    with pytest.raises(InputError, match="plain file name"):
        write_icdar2013(tmp_path, [("../x.png", "x", crop(0))])


def test_lmdb_round_trip_uses_the_clovaai_keys(tmp_path):
    count = write_lmdb(tmp_path / "eval" / "IC13", [("Tiredness", crop(1)), ("naïve", crop(2))])
    assert count == 2
    env = lmdb.open(str(tmp_path / "eval" / "IC13"), readonly=True, lock=False)
    with env.begin() as txn:
        assert txn.get(b"num-samples") == b"2"
        assert txn.get(b"label-000000002").decode("utf-8") == "naïve"
        assert Image.open(io.BytesIO(txn.get(b"image-000000001"))).format == "PNG"
        assert txn.get(b"label-000000000") is None
    env.close()
    write_lmdb(tmp_path / "eval" / "other", [("x", crop(3))])
    assert lmdb_dirs(tmp_path) == [tmp_path / "eval" / "IC13", tmp_path / "eval" / "other"]
    items = read_lmdb(tmp_path / "eval" / "IC13")
    assert [(i.id, i.label) for i in items] == [("image-000000001", "Tiredness"), ("image-000000002", "naïve")]
    assert np.array_equal(items[1].image(), crop(2))
    with pytest.raises(InputError, match="already holds an LMDB"):
        write_lmdb(tmp_path / "eval" / "IC13", [("y", crop(4))])


def test_converter_command_copies_bytes_in_gt_order(tmp_path, capsys):
    src = make_native(tmp_path / "ic13", ['word_1.png, "Tiredness"', 'word_2.png, "A"', 'word_3.png, "it\'s"'])
    assert main(["to-lmdb", str(src), str(tmp_path / "lmdb"), "--subset", "1015"]) == 0
    assert "wrote 2 samples" in capsys.readouterr().out
    items = read_lmdb(tmp_path / "lmdb")
    assert [i.label for i in items] == ["Tiredness", "A"]
    assert items[1].read() == (src / IMAGES_DIR / "word_2.png").read_bytes()
    assert main(["to-lmdb", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert icdar2013_to_lmdb(src, tmp_path / "all") == 3


# --- image decoding -----------------------------------------------------------------------------------------------

def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_grey_rgba_palette_and_16_bit_pngs_become_uint8_rgb():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    decoded = decode_image(png_bytes(Image.fromarray(grey)), "grey.png")
    assert decoded.shape == (3, 4, 3) and np.array_equal(decoded[:, :, 1], grey)
    rgba = np.dstack([crop(1)[:3, :4], np.full((3, 4), 7, np.uint8)])
    assert np.array_equal(decode_image(png_bytes(Image.fromarray(rgba, "RGBA")), "rgba.png"), rgba[:, :, :3])
    palette = Image.fromarray(crop(2)[:3, :4]).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    assert np.array_equal(decode_image(png_bytes(palette), "p.png"), np.asarray(palette.convert("RGB")))
    deep = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    decoded = decode_image(png_bytes(Image.fromarray(deep)), "deep.png")
    assert decoded.dtype == np.uint8 and decoded.shape == (1, 3, 3) and decoded[0, :, 0].tolist() == [0, 100, 255]


# --- bad input ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("line, words", [
    ('word_1.png "no comma"', "malformed line"),
    ("word_1.png, unquoted", "malformed line"),
    (', "no name"', "malformed line"),
])
def test_malformed_gt_line_names_file_and_line(tmp_path, line, words):
    root = make_native(tmp_path, ['word_1.png, "ok"', line], names=["word_1.png"])
    with pytest.raises(InputError) as info:
        read_icdar2013(root)
    assert f"{root / GT_FILE}:2: {words}" in str(info.value)


def test_missing_image_and_duplicate_names_name_the_line(tmp_path):
    root = make_native(tmp_path / "a", ['word_1.png, "ok"', 'word_2.png, "gone"'], names=["word_1.png"])
    with pytest.raises(InputError, match=r"GT.txt:2: image word_2.png not found"):
        read_icdar2013(root)
    root = make_native(tmp_path / "b", ['word_1.png, "ok"', 'word_1.png, "again"'], names=["word_1.png"])
    with pytest.raises(InputError, match=r"GT.txt:2: word_1.png already listed on line 1"):
        read_icdar2013(root)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "sub/../../word_1.png"])
def test_paths_escaping_the_dataset_are_refused(tmp_path, name):
    root = make_native(tmp_path, ['word_1.png, "ok"', f'{name}, "evil"'], names=["word_1.png"])
    with pytest.raises(InputError) as info:
        read_icdar2013(root)
    assert f"{GT_FILE}:2: image path {name!r} escapes the dataset folder" in str(info.value)


def test_non_utf8_gt_names_the_line(tmp_path):
    root = make_native(tmp_path, ['word_1.png, "ok"'])
    (root / GT_FILE).write_bytes(b'word_1.png, "ok"\r\nword_2.png, "caf\xe9"\r\n')
    with pytest.raises(InputError, match=r"GT.txt:2: not UTF-8 text"):
        read_icdar2013(root)


def test_missing_layout_is_reported(tmp_path):
    with pytest.raises(InputError, match=f"no {GT_FILE}"):
        read_icdar2013(tmp_path)
    (tmp_path / GT_FILE).write_text('word_1.png, "x"\n')
    with pytest.raises(InputError, match=f"no {IMAGES_DIR}/ folder"):
        read_icdar2013(tmp_path)


def test_corrupt_image_bytes_name_the_file(tmp_path):
    root = make_native(tmp_path, ['word_1.png, "ok"'])
    (root / IMAGES_DIR / "word_1.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    item, = read_icdar2013(root)
    with pytest.raises(InputError, match=r"word_1.png: cannot decode image"):
        item.image()
    with pytest.raises(InputError, match=r"word_1.png: cannot decode image"):
        icdar2013_to_lmdb(root, tmp_path / "lmdb")
    assert not (tmp_path / "lmdb" / "data.mdb").exists()


def test_bad_lmdb_contents_name_the_key(tmp_path):
    def make(name, entries):
        env = lmdb.open(str(tmp_path / name), map_size=1 << 20)
        with env.begin(write=True) as txn:
            for key, value in entries.items():
                txn.put(key, value)
        env.close()
        return tmp_path / name

    png = encode_png(crop(0))
    with pytest.raises(InputError, match="num-samples missing"):
        read_lmdb(make("no_count", {b"image-000000001": png}))
    with pytest.raises(InputError, match="label-000000002: missing"):
        read_lmdb(make("short", {b"num-samples": b"2", b"image-000000001": png, b"label-000000001": b"a",
                                 b"image-000000002": png}))
    with pytest.raises(InputError, match="label-000000001: label is not UTF-8"):
        read_lmdb(make("latin1", {b"num-samples": b"1", b"image-000000001": png, b"label-000000001": b"caf\xe9"}))
    item, = read_lmdb(make("corrupt", {b"num-samples": b"1", b"image-000000001": b"junk", b"label-000000001": b"a"}))
    with pytest.raises(InputError, match="corrupt:image-000000001: cannot decode image"):
        item.image()
    with pytest.raises(InputError, match="no data.mdb"):
        read_lmdb(tmp_path)


def test_flat_folder_round_trip(tmp_path):
    samples = [("train/a.png", 'say "hi", ok', crop(0)), ("train/sub/b.png", "Tea", crop(1, 20)),
               ("c.png", "", crop(2))]
    write_flat(tmp_path, samples)
    items = read_flat(tmp_path)
    assert [(i.id, i.label) for i in items] == [(n, lb) for n, lb, _ in samples]
    assert all(np.array_equal(i.image(), image) for i, (*_, image) in zip(items, samples))
    assert [i.id for i in read_flat(tmp_path, "1015")] == ["train/sub/b.png"]
    with pytest.raises(InputError, match="a tab or line break cannot be written"):
        write_flat(tmp_path / "x", [("d.png", "a\tb", crop(3))])


def test_flat_folder_bad_lines_and_paths(tmp_path):
    write_flat(tmp_path, [("a.png", "ok", crop(0))])
    (tmp_path / "gt.tsv").write_text("a.png\tok\nno tab here\n../x.png\tout\na.png\tagain\nb.png\tgone\n")
    with pytest.raises(InputError, match=r"gt.tsv:2: malformed line 'no tab here', expected: path<TAB>label"):
        read_flat(tmp_path)
    malformed = []
    items = read_flat(tmp_path, strict=False, malformed=malformed)
    assert [m.split(": ", 1)[1] for m in malformed] == ["malformed line 'no tab here', expected: path<TAB>label",
                                                         "a.png already listed on line 1"]
    assert [(i.id, bool(i.problem)) for i in items] == [("a.png", False), ("../x.png", True), ("b.png", True)]
    assert "escapes the dataset folder" in items[1].problem and "gt.tsv:5: image b.png not found" in items[2].problem


def test_flat_folder_reads_the_iiit5k_train_crops(shared_data):
    items = read_flat(shared_data / "text" / "train" / "IIIT5K_train")
    assert len(items) == 2000 and (items[0].id, items[0].label) == ("train/1009_2.png", "You")
    assert items[0].image().ndim == 3
