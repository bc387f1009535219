"""benchmark/datasets/text_train.py (bundle builder, real-crop augmentation), synth_text.rich_sample, and the
trainer's --bundle path (batches identical with and without DataLoader workers)."""
import numpy as np
import pytest
import torch
from PIL import Image

from benchmark import train_recognizer
from benchmark.datasets import text_train
from benchmark.datasets.synth_text import FONT_DIR, rich_sample
from benchmark.errors import InputError

FONTS = [FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSerif-Bold.ttf"]


def _fake_train_root(root):
    """IIIT5K_train/ with 10 PNG crops (one 80 px high) and SVT_train/ with 2 JPEGs, in the shared layout."""
    rng = np.random.default_rng(0)
    lines = []
    (root / "IIIT5K_train/train").mkdir(parents=True)
    for i in range(10):
        h = 80 if i == 0 else 30
        Image.fromarray(rng.integers(0, 256, (h, 3 * h, 3), dtype=np.uint8)).save(root / f"IIIT5K_train/train/{i}.png")
        lines.append(f"train/{i}.png\tWord{i}\n")
    (root / "IIIT5K_train/gt.tsv").write_text("".join(lines))
    (root / "SVT_train/IMG").mkdir(parents=True)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (20, 50, 3), dtype=np.uint8)).save(root / f"SVT_train/IMG/{i}.jpg")
    (root / "SVT_train/gt.tsv").write_text("IMG/0.jpg\tLIVING\nIMG/1.jpg\tROOM\n")
    return root


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("text_train")
    out = root / "bundle"
    record = text_train.build_bundle(out, _fake_train_root(root / "train"), [FONT_DIR], font_budget_mib=1.0)
    return out, record


def test_bundle_layout_split_and_crop_encoding(bundle):
    out, record = bundle
    assert record["crops"] == {"iiit5k": {"train": 9, "val": 1}, "svt": {"train": 2, "val": 0}}
    fonts = text_train.bundle_fonts(out)
    assert fonts and sum(p.stat().st_size for p in fonts) <= 2**20
    assert not any("STIXSize" in p.name or "Symbol" in p.name for p in fonts)  # glyph-less and symbol fonts left out
    train, val = text_train.bundle_crops(out, "train"), text_train.bundle_crops(out, "val")
    assert len(train) == 11 and len(val) == 1
    assert {c.label for c in train + val} >= {"LIVING", "ROOM", "Word0"}
    shapes = {c.label: c.image().shape for c in train + val}
    assert shapes["Word0"] == (text_train.CROP_MAX_HEIGHT, 120, 3)  # 80x240 shrunk, aspect kept
    assert shapes["LIVING"] == (20, 50, 3)  # small crops are never enlarged
    assert all(c.data[:2] == b"\xff\xd8" for c in train)  # JPEG
    assert len(text_train.bundle_photos(out)) == 7


def test_bad_train_root_and_missing_bundle_name_the_file(tmp_path):
    with pytest.raises(InputError, match="IIIT5K_train/gt.tsv: train ground truth not found"):
        text_train.build_bundle(tmp_path / "b", tmp_path, [FONT_DIR])
    with pytest.raises(InputError, match="no fonts/ in this bundle"):
        text_train.bundle_fonts(tmp_path)


def test_rich_sample_is_a_pure_function_and_varied():
    a = [rich_sample(3, i, FONTS) for i in range(12)]
    b = [rich_sample(3, i, FONTS) for i in range(12)]
    assert all(la == lb and np.array_equal(ia, ib) for (la, ia), (lb, ib) in zip(a, b))
    assert all(img.dtype == np.uint8 and img.ndim == 3 and min(img.shape[:2]) >= 4 for _, img in a)
    assert len({label for label, _ in a}) >= 10


def test_augment_real_keeps_size_and_depends_on_the_generator(bundle):
    image = text_train.bundle_crops(bundle[0], "train")[0].image()
    one = text_train.augment_real(np.random.default_rng(1), image)
    assert one.shape == image.shape and one.dtype == np.uint8
    assert np.array_equal(one, text_train.augment_real(np.random.default_rng(1), image))
    assert not np.array_equal(one, text_train.augment_real(np.random.default_rng(2), image))


def test_bundle_training_batches_do_not_depend_on_workers(bundle, tmp_path):
    tiny = ["--bundle", str(bundle[0]), "--output-channel", "32", "--hidden-size", "32", "--batch", "4",
            "--iters", "2", "--val-every", "2", "--save-every", "2", "--threads", "1", "--device", "cpu",
            "--warmup", "1", "--transformation", "None"]
    assert train_recognizer.main(["--out", str(tmp_path / "w0"), "--workers", "0"] + tiny) == 0
    assert train_recognizer.main(["--out", str(tmp_path / "w2"), "--workers", "2"] + tiny) == 0
    a = torch.load(tmp_path / "w0/last.pt", weights_only=True)
    b = torch.load(tmp_path / "w2/last.pt", weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert "# val 2 accuracy=" in (tmp_path / "w0/log.tsv").read_text()


def test_max_minutes_stops_exports_and_init_weights_continues(bundle, tmp_path):
    tiny = ["--bundle", str(bundle[0]), "--output-channel", "32", "--hidden-size", "32", "--batch", "4",
            "--threads", "1", "--device", "cpu", "--warmup", "1", "--transformation", "None"]
    export = tmp_path / "rec.safetensors"
    assert train_recognizer.main(["--out", str(tmp_path / "a"), "--iters", "1000", "--max-minutes", "0.0001",
                                  "--export", str(export)] + tiny) == 0
    assert torch.load(tmp_path / "a/last.pt", weights_only=True)["iteration"] == 1
    assert train_recognizer.main(["--out", str(tmp_path / "b"), "--iters", "1", "--init-weights", str(export)]
                                 + tiny) == 0
    assert train_recognizer.main(["--out", str(tmp_path / "d"), "--iters", "1", "--init-weights", str(export),
                                  "--hidden-size", "48"] + tiny[:4] + tiny[6:]) == 2


def test_learning_rate_follows_the_wall_time_budget():
    lr = train_recognizer.learning_rate
    assert lr(500, 1e-3, 10_000, 100) > 0.9e-3
    assert lr(500, 1e-3, 10_000, 100, time_fraction=1.0) == pytest.approx(1e-5)
    assert lr(500, 1e-3, 10_000, 100, time_fraction=0.5) == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5))
