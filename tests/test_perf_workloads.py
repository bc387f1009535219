"""benchmark/perf_workloads.py: FLOPs counted per image shape and per detector call, the detectors timed in each
mode, the summary's ratios, a missing workload's error."""
import time

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from benchmark import perf_workloads as pw
from benchmark.errors import InputError
from benchmark.perf import main
from models.weights import package_dir


def test_restorer_flops_sums_each_image_shape():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    shapes = [(10, 12, 3), (10, 12, 3), (5, 4, 3)]
    assert pw.restorer_flops(conv, shapes) == 2 * 3 * 8 * 9 * (120 + 120 + 20)
    assert conv.weight.device.type == "cpu"  # counted on a meta copy


def test_detector_rows_count_the_flops_of_every_call():
    conv = nn.Conv2d(3, 8, 3, padding=1)

    def detector(img):
        with torch.no_grad():
            conv(torch.from_numpy(img).permute(2, 0, 1)[None].float())
        return np.zeros((0, 5), np.float32)

    images = [np.zeros((10, 12, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)]
    [r] = pw.detector_rows(images, "toy", detector, pw.Mode("fp32", None, False), torch.device("cpu"), "huge")
    assert (r["workload"], r["model"], r["path"], r["n"]) == ("wider_hr", "toy", "per_image", 2)
    assert r["gflops"] * r["s_per_image"] * 2 * 1e9 == pytest.approx(2 * 3 * 8 * 9 * (120 + 20))


def test_interleaved_times_the_pieces_and_calls_the_probe_after_each():
    done = []
    probe = pw.Probe(pw.Mode("fp32", None, False), torch.device("cpu"))
    pieces = [lambda k=k: (time.sleep(0.02), done.append(k)) for k in range(3)]
    seconds = pw.interleaved(pieces, probe, torch.device("cpu"))
    assert done == [0, 1, 2] and probe.calls == 3 and seconds >= 0.06
    assert probe.gflops == pytest.approx(pw.Probe.FLOPS * 3 / probe.seconds / 1e9)


def test_restorer_rows_time_both_paths_with_their_own_probe():
    images = [np.zeros((8 + k, 10, 3), np.uint8) for k in range(3)]
    rows = pw.restorer_rows("set5", images, "cajnn_lite_cpu", pw.Mode("fp32", None, False), torch.device("cpu"),
                            "huge")
    assert [r["path"] for r in rows] == ["one_at_a_time", "batched"]
    assert all(r["n"] == 3 and r["probe_gflops"] > 0 and r["ratio_to_probe"] > 0 for r in rows)


def test_mtcnn_is_timed_in_fp32_only():
    if package_dir("facenet_pytorch") is None:
        pytest.skip("MTCNN's weights come from facenet-pytorch: pip install --no-deps facenet-pytorch")
    fp32 = [name for name, _ in pw.detectors(pw.Mode("fp32", None, False), torch.device("cpu"))]
    for other in (pw.Mode("bf16+cl", "bf16", True), pw.Mode("fp32+cl", None, True)):
        assert [name for name, _ in pw.detectors(other, torch.device("cpu"))] == ["tiny_faces_r18_wider"]
    assert fp32 == ["tiny_faces_r18_wider", "mtcnn"]


def test_summary_gives_bf16_batching_and_ic13_ratios():
    fp32, bf16 = pw.Mode("fp32", None, False), pw.Mode("bf16+cl", "bf16", True)
    fp32_cl = pw.Mode("fp32+cl", None, True)
    table = pd.DataFrame([pw.row("ic13", "cajnn_lite_cpu", fp32, "one_at_a_time", 10, 5.0, 10**12, 200.0),
                          pw.row("ic13", "cajnn_lite_cpu", fp32, "batched", 10, 4.0, 10**12, 200.0),
                          pw.row("ic13", "cajnn_lite_cpu", bf16, "one_at_a_time", 10, 2.5, 10**12, 400.0),
                          pw.row("ic13", "cajnn_lite_cpu", bf16, "batched", 10, 1.0, 10**12, 400.0),
                          pw.row("ic13", "cajnn_lite_cpu", fp32_cl, "batched", 10, 2.0, 10**12, 200.0)])
    assert table["gflops"].tolist() == [200.0, 250.0, 400.0, 1000.0, 500.0]
    assert table["ratio_to_probe"].iloc[0] == 1.0
    lines = "\n".join(pw.summary(table))
    assert "bf16+cl vs fp32, ic13 cajnn_lite_cpu batched: 4.00x (target >= 1.7x)" in lines
    assert "fp32+cl vs fp32, ic13 cajnn_lite_cpu batched: 2.00x\n" in lines  # no target for this mode
    assert "batched vs one at a time, ic13 cajnn_lite_cpu fp32: 1.25x" in lines
    assert "one at a time fp32 0.500 s/crop, best 0.100 s/crop: 5.00x" in lines


def test_summary_holds_only_the_float32_restorers_to_the_probe_target():
    fp32, fp32_cl, bf16 = pw.Mode("fp32", None, False), pw.Mode("fp32+cl", None, True), pw.Mode("bf16+cl", "bf16", True)
    lines = pw.summary(pd.DataFrame([pw.row("wider_hr", "mtcnn", fp32, "per_image", 2, 2.0, 10**11, 100.0),
                                     pw.row("set5", "cajnn_lite_cpu", fp32, "batched", 2, 2.0, 10**11, 100.0),
                                     pw.row("set5", "cajnn_lite_cpu", fp32_cl, "batched", 2, 1.0, 10**11, 125.0),
                                     pw.row("set5", "cajnn_lite_cpu", bf16, "batched", 2, 0.5, 10**11, 500.0)]))
    assert "fp32 wider_hr mtcnn per_image: 50 % of the probe" in lines
    assert "fp32 set5 cajnn_lite_cpu batched: 50 % of the probe (target >= 70 %)" in lines
    assert "fp32+cl set5 cajnn_lite_cpu batched: 80 % of the probe (target >= 70 %)" in lines
    assert sum("% of the probe" in line for line in lines) == 3  # none for bf16


def test_summary_compares_huge_pages_with_4k_pages_and_rates_the_huge_page_rows():
    fp32 = pw.Mode("fp32", None, False)
    table = pd.DataFrame([pw.row("set5", "cajnn_lite_cpu", fp32, "one_at_a_time", 5, 3.0, 10**12, 100.0, "4k"),
                          pw.row("set5", "cajnn_lite_cpu", fp32, "one_at_a_time", 5, 2.0, 10**12, 100.0)])
    lines = pw.summary(table)
    assert "huge pages vs 4 KiB pages, set5 cajnn_lite_cpu fp32 one_at_a_time: 1.50x" in lines
    assert "fp32 set5 cajnn_lite_cpu one_at_a_time: 500 % of the probe (target >= 70 %)" in lines
    assert sum("% of the probe" in line for line in lines) == 1


def test_missing_workload_data_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(InputError, match="IC13"):
        pw.load_workload("ic13", 2, tmp_path)
    assert main(["--workload", "set5", "--restorers", "nope", "--detector-limit", "0", "--limit", "1",
                 "--csv", str(tmp_path / "w.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --") and err.count("\n") == 1  # unknown restorer, or Set5 absent


@pytest.mark.parametrize("native_bf16", [False, True])
def test_a_mode_this_cpu_would_only_emulate_is_skipped(tmp_path, monkeypatch, capsys, native_bf16):
    import cv2

    (tmp_path / "sr" / "Set5").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "sr" / "Set5" / "a.png"), np.full((32, 32, 3), 128, np.uint8))
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native_bf16)
    timed = []
    monkeypatch.setattr(pw, "restorer_rows", lambda workload, images, name, mode, *_: timed.append(mode.name) or [])
    pw.run(["set5"], ["cajnn_lite_cpu"], 1, 1, 0, torch.device("cpu"), shared=tmp_path, page_baseline=False,
           mode_names=tuple(pw.MODES))
    assert timed == (["fp32", "fp32+cl", "bf16+cl"] if native_bf16 else ["fp32", "fp32+cl"])
    assert ("bf16+cl: skipped, this CPU would only emulate it" in capsys.readouterr().out) != native_bf16


def test_an_unknown_mode_is_a_one_line_error(tmp_path, capsys):
    assert main(["--workload", "set5", "--modes", "fp32", "int8", "--detector-limit", "0", "--limit", "1",
                 "--csv", str(tmp_path / "w.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --modes: unknown 'int8'") and err.count("\n") == 1
