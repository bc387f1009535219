"""benchmark/report_html.py: paper numbers beside ours, cost/benefit points, model cards, a page that names missing
outputs; run_all.py --task all end to end; and the page as headless Chromium renders it (nothing cut off)."""
import base64
import io
import json
import re
import shlex
import shutil
import subprocess
import sys

import matplotlib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmark import report_html as R
from benchmark.cli import main, split_variants
from models.weights import CAJNN_LITE_CPU, TINY_FACES_R18

CAJNN_KEY = f"cajnn|{CAJNN_LITE_CPU.sha256}|amp=None|tile=256|overlap=24"
USER_SHA = "ab" * 32


def table2() -> pd.DataFrame:
    return pd.DataFrame({"variant": ["raw", "cajnn_x4", "bicubic_x4"], "accuracy": ["20.0", "26.5", "20.4"],
                         "n": ["10", "10", "10"], "failed": ["0", "0", "0"],
                         "restore_compute_s": ["0.0", "2.5", "0.01"], "ms_per_crop": ["50.1", "300.0", "51.0"],
                         "restorer": ["identity", CAJNN_KEY, "bicubic_x4"]})


def table3() -> pd.DataFrame:
    return pd.DataFrame({"variant": ["hr", "lr", "lr_cajnn", "mine"], "ap_easy": ["0.9", "0.8", "0.85", "0.7"],
                         "ap_medium": ["0.9", "0.7", "0.75", "0.6"], "ap_hard": ["0.88", "0.5", "0.56", "0.45"],
                         "n_images": ["4", "4", "4", "4"], "failed": ["0", "0", "1", "0"],
                         "restore_compute_s": ["0", "0", "6.0", "0.4"],
                         "detector": [f"tiny_faces|{TINY_FACES_R18.sha256}|templates=original"] * 4})


def write_task(out, task, table, meta, figures=()):
    """A task's output folder as the task writes it (CSV, Markdown with title and notes, run.json, PNGs)."""
    files = R.TASK_FILES[task](out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(files.table_csv, index=False)
    files.table_md.write_text(f"Title of {task}\n\n| a |\n|---|\n| 1 |\n\n- note one\n- note two\n")
    files.run_json.write_text(json.dumps({"command": "python run_all.py --task all", "seed": 0, **meta}))
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    for path in [p for p in files.figures.values() if p.name in figures]:
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1], [0, 1])
        fig.savefig(path)
        plt.close(fig)


def test_paper_numbers_go_beside_the_matching_rows():
    shown = R.with_paper("ocr", table2())
    columns = list(shown.columns)
    assert columns.index("accuracy (paper)") == columns.index("accuracy") + 1
    assert columns.index("ms_per_crop (paper)") == columns.index("ms_per_crop") + 1
    assert list(shown["accuracy (paper)"]) == ["85.30", "85.75", ""]
    assert list(shown["ms_per_crop (paper)"]) == ["28.51", "37.95", ""]

    sr = pd.DataFrame({"dataset": ["Set5", "Set5", "Set14"], "method": ["cajnn", "rrdb", "cajnn"],
                       "params": ["835843", "0", "835843"], "QF 10": ["24.68 / 0.6884", "missing", "23.47 / 0.5859"]})
    shown = R.with_paper("sr", sr)
    assert list(shown.columns) == ["dataset", "method", "params", "params (paper)", "QF 10", "QF 10 (paper)"]
    assert list(shown["QF 10 (paper)"]) == ["25.04 / 0.7169", "", ""]  # Set14 cajnn is not the paper's Set5 row
    other = sr.assign(dataset="package_photos")
    assert list(R.with_paper("sr", other).columns) == list(other.columns)


def test_html_table_escapes_shades_paper_columns_and_right_aligns_numbers():
    shown = R.html_table(pd.DataFrame({"variant": ["<raw>"], "accuracy": ["20.0"], "accuracy (paper)": ["85.30"]}))
    assert "&lt;raw&gt;" in shown and "<raw>" not in shown
    assert '<td class="num paper">85.30</td>' in shown and '<td class="num">20.0</td>' in shown
    assert "<td>&lt;raw&gt;</td>" in shown


def test_markdown_prose_is_the_text_around_the_table():
    assert R.markdown_prose("Title\n\nData: x\n\n| a |\n|---|\n| 1 |\n\n- note\n") == ("Title\n\nData: x", "- note")
    assert R.prose_html("- a\n- b\n\nText <b>\nmore") == "<ul><li>a</li><li>b</li></ul><p>Text &lt;b&gt; more</p>"


def test_cost_points_are_gains_over_the_unrestored_row_per_image_seconds(tmp_path):
    write_task(tmp_path / "ocr", "ocr", table2(), {"recognizers": {"rec": "rec.safetensors|" + USER_SHA}})
    (panel,), notes = R.cost_panels(R.load_task("ocr", tmp_path / "ocr"))
    assert notes == [] and panel.title == "Table II: recognizer rec"
    assert [(label, s, round(g, 6)) for label, s, g in panel.points] == [("cajnn_x4", 0.25, 6.5),
                                                                         ("bicubic_x4", 0.001, 0.4)]
    assert panel.paper[1] == pytest.approx(10.34 / 1095) and panel.paper[2] == pytest.approx(0.45)

    write_task(tmp_path / "tf", "tinyface", table3(), {})
    (panel,), _ = R.cost_panels(R.load_task("tinyface", tmp_path / "tf"))
    assert [(label, s, round(g, 6)) for label, s, g in panel.points] == [("lr_cajnn", 2.0, 0.06), ("mine", 0.1, -0.05)]
    assert panel.hr_gain == pytest.approx(0.38) and np.isnan(panel.paper[1])
    assert panel.paper[2] == pytest.approx(0.294)
    assert panel.title.startswith(f"Table III: detector tiny_faces ({TINY_FACES_R18.sha256[:8]})")

    write_task(tmp_path / "no_raw", "ocr", table2().iloc[1:], {})
    panels, notes = R.cost_panels(R.load_task("ocr", tmp_path / "no_raw"))
    assert panels == [] and "no 'raw' row" in notes[0]


def test_model_cards_name_bundled_weights_and_user_files(tmp_path):
    write_task(tmp_path / "ocr", "ocr", table2(), {
        "recognizers": {"rec": "rec.safetensors|" + USER_SHA},
        "restorers": {"raw": "identity", "cajnn_x4": CAJNN_KEY, "cajnn_x4_down": CAJNN_KEY + ">>down"}})
    cards = R.model_cards([R.load_task("ocr", tmp_path / "ocr")])
    cajnn, user = cards.split('<div class="card">')[1:]
    assert "cajnn_lite_cpu.safetensors (bundled)" in cajnn and CAJNN_LITE_CPU.sha256 in cajnn
    assert "835,843" in cajnn and "T91" in cajnn and "<summary>8 commands</summary>" in cajnn and "Table II cajnn_x4, Table II cajnn_x4_down" in cajnn
    assert "rec.safetensors" in user and USER_SHA in user and "given by the user" in user
    assert "<code>identity</code>: Table II raw" in cards


def test_missing_outputs_are_named_on_the_page(tmp_path):
    write_task(tmp_path / "tinyface", "tinyface", table3(), {}, figures=("fig6_pr.png",))
    index = R.write_index(tmp_path, {"sr": tmp_path / "sr", "ocr": tmp_path / "ocr",
                                     "tinyface": tmp_path / "tinyface"})
    text = index.read_text()
    for name in ("sr/table1.csv", "sr/run.json", "ocr/table2.csv", "ocr/samples.png", "tinyface/scene.png"):
        assert str(tmp_path / name) in text
    assert f"<code>{tmp_path / 'tinyface/fig6_pr.png'}</code>" not in text
    assert text.count("data:image/png;base64,") == 2  # Fig. 6 and the cost/benefit figure
    assert (tmp_path / "cost_benefit.png").is_file() and "Table III" in text


@pytest.fixture(scope="module")
def all_run(tmp_path_factory):
    """``run_all.py --task all`` on the embedded default, a few items of each task."""
    out = tmp_path_factory.mktemp("all")
    assert main(["--task", "all", "--out", str(out), "--device", "cpu", "--limit", "1", "--methods", "bicubic",
                 "cajnn", "--qf", "10", "--variants", "raw", "cajnn_x4", "bicubic_x4", "lr", "lr_bicubic",
                 "--synth-images", "1"]) == 0
    return out


def test_task_all_writes_each_task_and_an_index(all_run):
    for task, table in (("sr", "table1.csv"), ("ocr", "table2.csv"), ("tinyface", "table3.csv")):
        assert (all_run / task / table).is_file() and (all_run / task / "report.html").is_file()
    assert list(pd.read_csv(all_run / "ocr/table2.csv")["variant"]) == ["raw", "cajnn_x4", "bicubic_x4"]
    assert list(pd.read_csv(all_run / "tinyface/table3.csv")["variant"]) == ["lr", "lr_bicubic"]
    index = (all_run / "index.html").read_text()
    assert "Missing output files" not in index and "<script" not in index
    assert not re.search(r'(src|href)="(?!data:image/png;base64,|#)', index)  # nothing to fetch
    assert all(f'id="{task}"' in index for task in R.TASKS)
    meta = json.loads((all_run / "ocr/run.json").read_text())
    assert meta["command"] == "python " + shlex.join(sys.argv) and meta["seed"] == 0  # this process's command


def test_task_all_gives_each_task_its_rows_extra_ones_too():
    assert split_variants(["raw", "realesrgan_x4", "lr", "lr_realesrgan"]) == {
        "sr": [], "ocr": ["raw", "realesrgan_x4"], "tinyface": ["lr", "lr_realesrgan"]}


def test_task_all_refuses_a_variant_of_no_task(tmp_path, capsys):
    assert main(["--task", "all", "--out", str(tmp_path), "--variants", "raw", "nope"]) == 2
    assert "error: --variants: nope is a row of no task" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- headless Chromium

CHECK = """<script>
const width = document.documentElement.clientWidth, problems = [];
for (const img of document.images) {
  const r = img.getBoundingClientRect();
  if (!img.complete || img.naturalWidth === 0) problems.push('not decoded: ' + img.alt);
  if (r.right > width + 1 || r.width < 100) problems.push('image ' + img.alt + ' spans ' + r.left + '-' + r.right);
}
for (const el of document.querySelectorAll('.scroll, pre, table, figure')) {
  const r = el.getBoundingClientRect();
  if (el.scrollWidth > el.clientWidth + 1 || r.right > width + 1)
    problems.push(el.tagName + ' cut off: ' + el.scrollWidth + ' > ' + el.clientWidth + ' or right ' + r.right);
}
if (document.documentElement.scrollWidth > width + 1) problems.push('page wider than the window');
const result = document.createElement('pre');
result.id = 'layout-check';
result.textContent = JSON.stringify({images: Array.from(document.images, i => i.alt),
  tables: document.querySelectorAll('table').length, problems: problems});
document.body.appendChild(result);
</script>"""


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("headless Chromium is absent (Debian: apt-get install chromium)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2400"]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=180, check=True)


def layout(tmp_path, page: str) -> dict:
    """Chromium's verdict on a page: the images, the table count and everything cut off or undecoded."""
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</body>", CHECK + "</body>"))
    dom = chromium(tmp_path, "--dump-dom", checked.as_uri()).stdout
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                      .replace("&gt;", ">"))


def test_the_layout_check_catches_a_cut_off_table_and_a_broken_image(tmp_path):
    page = ('<html><head><style>.scroll{overflow-x:auto}</style></head><body><div class="scroll"><table><tr><td>'
            + "x" * 600 + '</td></tr></table></div><img alt="broken" src="data:image/png;base64,AAAA"></body></html>')
    problems = layout(tmp_path, page)["problems"]
    assert any("DIV cut off" in p for p in problems) and "not decoded: broken" in problems


def test_index_renders_in_chromium_with_nothing_cut_off(all_run, tmp_path):
    page = (all_run / "index.html").read_text()
    for src in re.findall(r'src="data:image/png;base64,([^"]+)"', page):
        with Image.open(io.BytesIO(base64.b64decode(src))) as image:
            image.load()
            assert min(image.size) > 50
    verdict = layout(tmp_path, page)
    assert verdict["problems"] == []
    assert {"samples.png", "fig6_pr.png", "scene.png", "cost_benefit.png"} <= set(verdict["images"])
    assert verdict["tables"] >= 3 + 3  # Tables I, II, III, the paper's, model cards, metadata

    shot = tmp_path / "page.png"
    chromium(tmp_path, f"--screenshot={shot}", (all_run / "index.html").as_uri())
    grey = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert grey.shape == (2400, 1280) and grey.std() > 20 and (grey < 100).mean() > 0.005  # text and figures drawn
