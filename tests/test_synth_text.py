"""benchmark/datasets/synth_text.py: byte-identical generation per seed, the ICDAR layout, fonts split, cache reuse."""
import numpy as np

from benchmark.datasets.icdar import GT_FILE, IMAGES_DIR, read_icdar2013
from benchmark.datasets.synth_text import (FONT_DIR, TEST_FONTS, TRAIN_FONTS, default_test_set, generate_icdar2013,
                                           main, sample, words)


def files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path):
    generate_icdar2013(tmp_path / "a", n=6, seed=3)
    generate_icdar2013(tmp_path / "b", n=6, seed=3)
    generate_icdar2013(tmp_path / "c", n=6, seed=4)
    a, b, c = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert a == b and len(a) == 7 and GT_FILE in a and f"{IMAGES_DIR}/word_6.png" in a
    assert a[GT_FILE] != c[GT_FILE]


def test_test_split_is_small_jpeg_text_readable_by_the_icdar_reader(tmp_path):
    generate_icdar2013(tmp_path, n=8, seed=0)
    items = read_icdar2013(tmp_path)
    vocabulary = {w.lower() for w in words()}
    assert [i.id for i in items] == [f"word_{k}.png" for k in range(1, 9)]
    for item in items:
        image = item.image()
        assert item.label.lower() in vocabulary
        assert 6 <= image.shape[0] <= 40 and image.shape[1] >= image.shape[0] // 2


def test_sample_is_a_pure_function_and_splits_differ():
    label, image = sample(5, 17, "train")
    again_label, again = sample(5, 17, "train")
    assert label == again_label and np.array_equal(image, again)
    assert image.shape[0] > sample(5, 17, "test")[1].shape[0]  # train crops are not x4 downscaled


def test_fonts_exist_and_the_split_is_disjoint():
    assert not set(TRAIN_FONTS) & set(TEST_FONTS)
    assert all((FONT_DIR / f).is_file() for f in TRAIN_FONTS + TEST_FONTS)
    assert len(words()) > 3000 and len(set(w.lower() for w in words())) == len(words())


def test_default_set_is_reused_when_complete_and_rebuilt_when_not(tmp_path):
    root = default_test_set(tmp_path, n=3, seed=0)
    stamp = (root / GT_FILE).stat().st_mtime_ns
    assert default_test_set(tmp_path, n=3, seed=0) == root and (root / GT_FILE).stat().st_mtime_ns == stamp
    (root / IMAGES_DIR / "word_2.png").unlink()
    rebuilt = default_test_set(tmp_path, n=3, seed=0)
    assert (rebuilt / IMAGES_DIR / "word_2.png").is_file()
    first = files(rebuilt)
    assert files(default_test_set(tmp_path / "other", n=3, seed=0)) == first


def test_command_line(tmp_path, capsys):
    assert main([str(tmp_path), "--n", "2", "--split", "train"]) == 0
    assert len(read_icdar2013(tmp_path)) == 2 and "wrote 2 train crops" in capsys.readouterr().out
