"""A self-contained HTML page of a run: the tables with the paper's numbers beside ours, the figures, a
cost/benefit figure, model cards and the run metadata (issue 14).

Plain HTML + CSS with every figure embedded as a base64 PNG: no script, no network, so the page opens from disk
anywhere. It only reads what the tasks wrote (``TASK_FILES`` names each task's files, one function per task) and
never recomputes a number; a file that is absent is named on the page instead.
"""
from __future__ import annotations

import base64
import html
import json
import math
import re
import textwrap
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import matplotlib
import pandas as pd

from benchmark.report import write_atomic
from models.weights import BUNDLED

TASKS = ("sr", "ocr", "tinyface")
TITLES = {"sr": "Table I: image quality (--task sr)", "ocr": "Table II: scene-text recognition (--task ocr)",
          "tinyface": "Table III and Fig. 6: tiny-face detection (--task tinyface)"}

# The paper's numbers (DESIGN.md's first table), keyed by our tables' row keys and columns.
ROW_KEYS = {"sr": ("dataset", "method"), "ocr": ("variant",), "tinyface": ("variant",)}
PAPER = {
    "sr": {("Set5", "bicubic"): {"QF 10": "23.99 / 0.6329", "QF 20": "25.32 / 0.6761", "QF 40": "26.38 / 0.7154"},
           ("Set5", "cajnn"): {"params": "14.8 M", "QF 10": "25.04 / 0.7169", "QF 20": "26.59 / 0.7604",
                               "QF 40": "28.05 / 0.7981", "runtime_s": "0.48"}},
    "ocr": {("raw",): {"accuracy": "85.30", "ms_per_crop": "28.51"},
            ("cajnn_x4",): {"accuracy": "85.75", "ms_per_crop": "37.95"},
            ("cajnn_x4_down",): {"accuracy": "85.57", "ms_per_crop": "28.51"}},
    "tinyface": {("hr",): {"ap_easy": "0.900", "ap_medium": "0.887", "ap_hard": "0.792"},
                 ("lr",): {"ap_easy": "0.824", "ap_medium": "0.692", "ap_hard": "0.317"},
                 ("lr_cajnn",): {"ap_easy": "0.893", "ap_medium": "0.857", "ap_hard": "0.611"}},
}
PAPER_SOURCE = {
    "sr": "the paper's Table I: Set5, its 14.8 M CAJNN, runtime for Set5 on a Titan Xp",
    "ocr": "the paper's Table II: TRBA on all 1,095 ICDAR2013 crops; ms per crop = its 31.22 / 41.56 / 31.22 s "
           "over 1,095 crops on a Titan Xp",
    "tinyface": "the paper's Table III: Tiny Faces (ResNet-101) on WIDER FACE val",
}
# Where the paper gives a CAJNN gain (and, for Table II, its cost): Table II +0.45 points for (41.56 - 31.22) s
# over 1,095 crops; Table III hard AP 0.611 - 0.317, time not reported.
PAPER_GAIN = {"ocr": ("paper CAJNN x4 (TRBA, Titan Xp)", (41.56 - 31.22) / 1095, 85.75 - 85.30),
              "tinyface": ("paper CAJNN, time not reported", math.nan, 0.611 - 0.317)}
# Columns left out of the shown tables (long keys: the model cards and metadata show them).
HIDDEN = {"ocr": ("restorer",), "tinyface": ("restorer", "detector")}


@dataclass(frozen=True)
class TaskFiles:
    """Where one task's outputs lie in its ``--out`` folder: table CSV and Markdown, run.json, figures."""

    table_csv: Path
    table_md: Path
    run_json: Path
    figures: dict[str, Path] = field(default_factory=dict)  # caption -> PNG


def sr_files(out: Path) -> TaskFiles:
    return TaskFiles(out / "table1.csv", out / "table1.md", out / "run.json")


def ocr_files(out: Path) -> TaskFiles:
    return TaskFiles(out / "table2.csv", out / "table2.md", out / "run.json", {
        "Sample crops: the image each row gave the recognizer, titled with its reading (green right, red wrong); "
        "label at the left": out / "samples.png"})


def tinyface_files(out: Path) -> TaskFiles:
    return TaskFiles(out / "table3.csv", out / "table3.md", out / "run.json", {
        "Fig. 6: precision-recall per setting, AP in the legend": out / "fig6_pr.png",
        "One scene: counted faces green, each row's detections with a positive score red": out / "scene.png"})


TASK_FILES = {"sr": sr_files, "ocr": ocr_files, "tinyface": tinyface_files}


@dataclass
class TaskResult:
    """What one task left in ``out``: its table (as text, as written), the Markdown's prose, run.json, the figures
    present, and the expected files that are absent."""

    task: str
    out: Path
    table: pd.DataFrame | None
    md: str
    meta: dict
    figures: dict[str, Path]
    missing: list[Path]


def load_task(task: str, out: str | Path) -> TaskResult:
    """Read a task's outputs; absent files are listed in ``missing``, never an error."""
    files = TASK_FILES[task](Path(out))
    expected = [files.table_csv, files.table_md, files.run_json, *files.figures.values()]
    missing = [p for p in expected if not p.is_file()]
    table = (pd.read_csv(files.table_csv, dtype=str, keep_default_na=False) if files.table_csv.is_file() else None)
    md = files.table_md.read_text() if files.table_md.is_file() else ""
    meta = json.loads(files.run_json.read_text()) if files.run_json.is_file() else {}
    figures = {caption: p for caption, p in files.figures.items() if p.is_file()}
    return TaskResult(task, Path(out), table, md, meta, figures, missing)


# ---------------------------------------------------------------------------------------------------------- tables

def with_paper(task: str, table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with a "<column> (paper)" column right after each column the paper reports, filled on the rows the
    paper has (same row key); no paper column when no row matches."""
    keys = [tuple(row) for row in table[list(ROW_KEYS[task])].itertuples(index=False)]
    paper = PAPER[task]
    matched = [k for k in keys if k in paper]
    columns = [c for c in table.columns if any(c in paper[k] for k in matched)]
    shown = table.copy()
    for c in reversed(columns):
        shown.insert(shown.columns.get_loc(c) + 1, f"{c} (paper)", [paper.get(k, {}).get(c, "") for k in keys])
    return shown


def formatted(task: str, table: pd.DataFrame) -> pd.DataFrame:
    """The table as the task's Markdown shows it: long key columns hidden, Table III's AP to 3 decimals and its
    seconds to 1."""
    shown = table.drop(columns=[c for c in HIDDEN.get(task, ()) if c in table.columns])
    for column in ("recognizer", "detector_name"):  # one model in the table: its card names it
        if column in shown.columns and shown[column].nunique() == 1:
            shown = shown.drop(columns=[column])
    if task == "tinyface":
        for c in shown.columns:
            if c.startswith("ap_") or c.endswith("_s"):
                shown[c] = [f"{float(v):.{3 if c.startswith('ap_') else 1}f}" if v != "" else v for v in shown[c]]
    return shown


def html_table(df: pd.DataFrame) -> str:
    """An HTML table of string cells: numeric columns right-aligned, "(paper)" columns shaded; headers may break
    after an underscore."""
    def numeric(value: str) -> bool:
        return bool(re.fullmatch(r"-?[\d.,]+( M)?|-|missing|", str(value).strip()))

    classes = {c: " ".join(k for k, on in (("num", all(numeric(v) for v in df[c])), ("paper", c.endswith("(paper)")))
                           if on) for c in df.columns}

    def cell(tag: str, column: str, text: str) -> str:
        return f'<{tag} class="{classes[column]}">{text}</{tag}>' if classes[column] else f"<{tag}>{text}</{tag}>"
    head = "".join(cell("th", c, html.escape(str(c)).replace("_", "_<wbr>")) for c in df.columns)
    rows = "".join("<tr>" + "".join(cell("td", c, html.escape(str(v))) for c, v in zip(df.columns, r)) + "</tr>"
                   for r in df.itertuples(index=False))
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


def paper_table(task: str) -> pd.DataFrame:
    """The paper's rows of a table, for a run none of whose rows the paper has."""
    keys = ROW_KEYS[task]
    return pd.DataFrame([{**dict(zip(keys, k)), **v} for k, v in PAPER[task].items()]).fillna("")


def markdown_prose(md: str) -> tuple[str, str]:
    """The text of a task's Markdown before its table and after it (title and notes)."""
    lines = md.splitlines()
    table_lines = [i for i, line in enumerate(lines) if line.startswith("|")]
    if not table_lines:
        return md.strip(), ""
    return "\n".join(lines[:table_lines[0]]).strip(), "\n".join(lines[table_lines[-1] + 1:]).strip()


def prose_html(text: str) -> str:
    """Paragraphs (blank-line separated) and "- " bullet lines as HTML."""
    parts = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        if lines and all(line.startswith("- ") for line in lines):
            parts.append("<ul>" + "".join(f"<li>{html.escape(line[2:])}</li>" for line in lines) + "</ul>")
        elif block.strip():
            parts.append(f"<p>{html.escape(' '.join(lines))}</p>")
    return "".join(parts)


def image_html(path: Path, caption: str) -> str:
    """A figure with the PNG embedded as base64."""
    data = base64.b64encode(path.read_bytes()).decode()
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(path.name)}">'
            f"<figcaption>{html.escape(caption)} ({html.escape(path.name)})</figcaption></figure>")


def task_section(result: TaskResult) -> str:
    """A task's heading, Markdown title, table with the paper's numbers, notes and figures; or what is missing."""
    parts = [f'<h2 id="{result.task}">{html.escape(TITLES[result.task])}</h2>']
    if result.missing:
        parts.append(missing_html(result.missing))
    if result.table is None:
        return "".join(parts)
    before, after = markdown_prose(result.md)
    shown = with_paper(result.task, formatted(result.task, result.table))
    parts += [prose_html(before), html_table(shown)]
    if any(c.endswith("(paper)") for c in shown.columns):
        parts.append(f'<p class="note">Shaded columns: {html.escape(PAPER_SOURCE[result.task])}; not the data of this '
                     "run unless it says so above.</p>")
    else:
        parts.append(f'<p class="note">No row of this run is one the paper reports; '
                     f"{html.escape(PAPER_SOURCE[result.task])}:</p>" + html_table(paper_table(result.task)))
    parts.append(prose_html(after))
    parts += [image_html(path, caption) for caption, path in result.figures.items()]
    return "".join(parts)


def missing_html(paths: list[Path]) -> str:
    items = "".join(f"<li><code>{html.escape(str(p))}</code></li>" for p in paths)
    return f'<div class="missing">Missing output files (the task was not run, failed, or wrote elsewhere):' \
           f"<ul>{items}</ul></div>"


# ---------------------------------------------------------------------------------------------------- cost/benefit

@dataclass(frozen=True)
class CostPanel:
    """One downstream model's cost/benefit: restorer rows as (label, restoration seconds per image, gain over the
    no-restoration row), the paper's CAJNN point (seconds NaN: a line, the paper gives no time) and, for Table III,
    the gain of the original HR image (an upper bound)."""

    title: str
    ylabel: str
    points: list[tuple[str, float, float]]
    paper: tuple[str, float, float] | None = None
    hr_gain: float | None = None


def cost_panels(result: TaskResult) -> tuple[list[CostPanel], list[str]]:
    """Panels of Table II (accuracy gain over ``raw``) or Table III (hard AP gain over ``lr``), one per recognizer
    or detector, and why a table gives none. Seconds per image are ``restore_compute_s`` (what computing the
    restorations cost, cache or not) over the usable items."""
    if result.task not in ("ocr", "tinyface") or result.table is None:
        return [], []
    table = result.table
    if result.task == "ocr":
        baseline, metric, count, model_column = "raw", "accuracy", "n", "recognizer"
        default_model = next(iter(result.meta.get("recognizers", {"recognizer": ""})))  # a table without the column
        ylabel = "accuracy gain over raw (% points)"
    else:
        baseline, metric, count, model_column = "lr", "ap_hard", "n_images", "detector"
        default_model = "detector"
        ylabel = "hard AP gain over lr (AP, 0-1)"
    models = table[model_column] if model_column in table.columns else pd.Series([default_model] * len(table))
    panels, notes = [], []
    for model in dict.fromkeys(models):
        rows = table[(models == model).to_numpy()]
        base = rows[rows["variant"] == baseline]
        label = model_label(model)
        if base.empty:
            notes.append(f"{TITLES[result.task].split(':')[0]}, {label}: no '{baseline}' row, so no gain to draw.")
            continue
        base_value = float(base[metric].iloc[0])
        points = []
        for _, row in rows[~rows["variant"].isin([baseline, "hr"])].iterrows():
            usable = int(row[count]) - int(row.get("failed", 0) or 0)
            points.append((row["variant"], float(row["restore_compute_s"]) / max(usable, 1),
                           float(row[metric]) - base_value))
        hr = rows[rows["variant"] == "hr"]
        table_name = TITLES[result.task].split(":")[0].replace(" and Fig. 6", "")
        panels.append(CostPanel(f"{table_name}: {model_column} {label}", ylabel, points, PAPER_GAIN[result.task],
                                float(hr[metric].iloc[0]) - base_value if len(hr) else None))
    return panels, notes


def model_label(key: str) -> str:
    """A short name for a model key (``name|sha256|settings``): the name and the first 8 digits of its sha256."""
    fields = str(key).split("|")
    sha = next((f for f in fields if re.fullmatch(r"[0-9a-f]{64}", f)), "")
    return f"{fields[0]} ({sha[:8]})" if sha else fields[0]


def cost_benefit_figure(path: Path, panels: list[CostPanel]) -> None:
    """One panel per downstream model: x restoration seconds per image (log), y gain over no restoration."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        drawn = [p for p in panel.points if p[1] > 0]
        floor = min([p[1] for p in drawn] + ([panel.paper[1]] if panel.paper and panel.paper[1] > 0 else []),
                    default=1e-3) / 3
        for label, seconds, gain in panel.points:
            x = seconds if seconds > 0 else floor
            ax.scatter([x], [gain], s=40, zorder=3)
            ax.annotate(label if seconds > 0 else f"{label} (0 s)", (x, gain), textcoords="offset points",
                        xytext=(5, 5), fontsize=8)
        if panel.paper is not None:
            label, seconds, gain = panel.paper
            if math.isnan(seconds):
                ax.axhline(gain, color="tab:red", ls=":", lw=1.2, label=f"{label}: {gain:+.3g}")
            else:
                ax.scatter([seconds], [gain], marker="*", s=140, color="tab:red", zorder=3,
                           label=f"{label}: {gain:+.3g}")
        if panel.hr_gain is not None:
            ax.axhline(panel.hr_gain, color="grey", ls="--", lw=1,
                       label=f"HR image (upper bound): {panel.hr_gain:+.3g}")
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xscale("log")
        ax.set_xlabel("restoration compute per image (s, log scale)")
        ax.set_ylabel(panel.ylabel)
        ax.set_title("\n".join(textwrap.wrap(panel.title, 48)), fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.margins(x=0.25, y=0.15)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def cost_section(results: list[TaskResult], figure_path: Path) -> str:
    """The cost/benefit figure of Tables II and III (written to ``figure_path`` and embedded), or why there is none."""
    panels, notes = [], []
    for result in results:
        p, n = cost_panels(result)
        panels += p
        notes += n
    if not any(r.task in ("ocr", "tinyface") for r in results):
        return ""
    parts = ['<h2 id="cost">Cost and benefit of restoration</h2>',
             "<p>Per downstream model: restoration compute per image (restore_compute_s over the usable items: "
             "what computing the restorations cost, whether this run read them from the cache or not) against the "
             "gain over the no-restoration row (Table II: accuracy over <code>raw</code>; Table III: hard AP over "
             "<code>lr</code>). The paper's CAJNN gain is drawn in red; Table III's paper gives no time, so a line."
             "</p>"]
    if panels:
        cost_benefit_figure(figure_path, panels)
        parts.append(image_html(figure_path, "Cost/benefit per downstream model"))
    parts += [f'<p class="missing">{html.escape(n)}</p>' for n in notes]
    return "".join(parts)


# ----------------------------------------------------------------------------------------------------- model cards

def model_keys(result: TaskResult) -> list[tuple[str, str, str]]:
    """(role, row name, model key) of every restorer, recognizer and detector in a task's run.json and in its
    table's model columns (a table of several recognizers or detectors), each once."""
    meta = result.meta
    keys = [("restorer", name, key) for name, key in {**meta.get("restorers", {}), **meta.get("rows", {})}.items()]
    for role in ("recognizer", "detector"):
        found = [meta[role]] if meta.get(role) else []
        if meta.get(f"{role}s"):  # several models: run.json maps each name (the table's column) to its key
            found += list(meta[f"{role}s"].values())
        elif result.table is not None and role in result.table.columns:
            found += list(result.table[role])
        keys += [(role, role, key) for key in dict.fromkeys(found)]
    return keys


def model_cards(results: list[TaskResult]) -> str:
    """A card per weights file used (by sha256; bundled files with their training record from models/weights.py),
    and one line for the rows without weights."""
    bundled = {w.sha256: w for w in BUNDLED}
    cards: dict[str, dict] = {}
    weightless = {}
    for result in results:
        table_name = TITLES[result.task].split(":")[0]
        params = {}
        if result.task == "sr" and result.table is not None:
            params = dict(zip(result.table["method"], result.table["params"]))
        for role, row, key in model_keys(result):
            if str(key).startswith("missing"):
                continue
            stages = [s.strip() for s in str(key).split(">>")]
            weighted = [s for s in stages if re.search(r"\|[0-9a-f]{64}", s)]
            if not weighted:
                weightless.setdefault(" >> ".join(stages), []).append(f"{table_name} {row}")
            for stage in weighted:
                fields = stage.split("|")
                sha = next(f for f in fields if re.fullmatch(r"[0-9a-f]{64}", f))
                card = cards.setdefault(sha, {"name": fields[0], "role": role, "used": [], "settings": set(),
                                              "params": None})
                card["used"].append(f"{table_name} {row}")
                card["settings"].add("|".join(f for f in fields[1:] if f != sha))
                if len(stages) == 1 and params.get(row) not in (None, "", "0"):
                    card["params"] = card["params"] or f"{int(params[row]):,}"
    if not cards and not weightless:
        return ""
    parts = ['<h2 id="models">Models</h2><div class="cards">']
    for sha, card in cards.items():
        weights = bundled.get(sha)
        rows = [("role", card["role"]), ("used in", ", ".join(card["used"]))]
        if weights is not None:
            meta = weights.meta
            rows += [("weights file", f"models/weights/{weights.file} (bundled)"), ("sha256", sha),
                     ("parameters", f"{meta['params']:,}" if "params" in meta else card["params"] or "not recorded"),
                     ("trained on", meta.get("data", "not recorded"))]
            rows += [(k.replace("_", " "), str(meta[k])) for k in ("description", "iterations", "wall_time",
                                                                   "wall_time_s", "wall_time_min", "hardware")
                     if k in meta]
            commands = meta.get("commands", [meta["command"]] if "command" in meta else [])
            rows += [("training commands", "\n".join(commands))] if commands else []
        else:
            rows += [("weights file", "given by the user (file name not recorded: identified by sha256)"),
                     ("sha256", sha), ("parameters", card["params"] or "not recorded"),
                     ("trained on", "not a bundled file: see where it came from (third_party/README.md)")]
        rows += [("settings", "; ".join(sorted(s for s in card["settings"] if s)))] if any(card["settings"]) else []
        body = "".join(f"<tr><th>{html.escape(k)}</th><td>{cell_html(k, str(v))}</td></tr>" for k, v in rows)
        parts.append(f'<div class="card"><h3>{html.escape(card["name"])}</h3><table class="kv">{body}</table></div>')
    parts.append("</div>")
    if weightless:
        items = "".join(f"<li><code>{html.escape(k)}</code>: {html.escape(', '.join(v))}</li>"
                        for k, v in weightless.items())
        parts.append("<p>Without a weights file (interpolation, no restoration, or a Python callable without a "
                     f"sha256 in its key):</p><ul>{items}</ul>")
    return "".join(parts)


def cell_html(key: str, value: str) -> str:
    """A card's value; training commands folded into a native <details> (no script) because they run long."""
    if key != "training commands":
        return html.escape(value)
    n = len(value.splitlines())
    return f"<details><summary>{n} command{'s' if n > 1 else ''}</summary><pre>{html.escape(value)}</pre></details>"


# -------------------------------------------------------------------------------------------------------- metadata

def metadata_section(results: list[TaskResult]) -> str:
    """The tasks' run.json side by side, one row per key (command, versions, device, seed, data, subset notes)."""
    results = [r for r in results if r.meta]
    if not results:
        return ""

    def value(v) -> str:
        if isinstance(v, dict):
            return "\n".join(f"{k}: {x}" for k, x in v.items())
        return v if isinstance(v, str) else json.dumps(v)
    keys = list(dict.fromkeys(k for r in results for k in r.meta))
    head = "".join(f"<th>{html.escape(TITLES[r.task].split(':')[0])}<br><code>{html.escape(str(r.out))}</code></th>"
                   for r in results)
    rows = "".join(f"<tr><th>{html.escape(k)}</th>" + "".join(
        f"<td><pre>{html.escape(value(r.meta[k]))}</pre></td>" if k in r.meta else "<td></td>" for r in results)
        + "</tr>" for k in keys)
    return (f'<h2 id="meta">Run metadata</h2><table class="kv meta"><thead><tr><th>run.json</th>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>")


# ------------------------------------------------------------------------------------------------------------ page

CSS = """
body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;max-width:1180px;margin:0 auto;padding:12px 24px;
color:#222;line-height:1.4;font-size:14px}
h1{font-size:24px;margin-bottom:4px} h2{font-size:19px;border-bottom:1px solid #bbb;padding-bottom:3px;margin-top:28px}
h3{font-size:15px;margin:10px 0 6px}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
thead th{background:#eef1f5}
td.num{text-align:right;white-space:nowrap} th.num{text-align:right}
.paper{background:#fff3d6}
.scroll{overflow-x:auto}
table.kv th{text-align:left;background:#f5f5f5;white-space:nowrap}
table.kv td{text-align:left;overflow-wrap:anywhere}
figure{margin:10px 0} img{max-width:100%;height:auto;border:1px solid #ddd;box-sizing:border-box}
figcaption{font-size:12.5px;color:#555}
code,pre{font-family:"DejaVu Sans Mono",monospace;font-size:12px}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:0}
.note{color:#555;font-size:12.5px}
.missing{color:#900;background:#fff0f0;border:1px solid #e99;padding:4px 10px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:12px}
.card{border:1px solid #ccc;border-radius:6px;padding:4px 12px 10px;min-width:0}
.card table{width:100%;table-layout:fixed} .card th{width:24%}
table.meta{width:100%;table-layout:fixed} table.meta tr>:first-child{width:12%}
table.meta thead th{white-space:normal;overflow-wrap:anywhere}
nav a{margin-right:14px}
"""


def page(title: str, results: list[TaskResult], figure_path: Path) -> str:
    """The whole page: navigation, one section per task, cost/benefit, model cards, run metadata."""
    nav = "".join(f'<a href="#{r.task}">{html.escape(TITLES[r.task].split(":")[0])}</a>' for r in results)
    nav += '<a href="#cost">Cost/benefit</a><a href="#models">Models</a><a href="#meta">Metadata</a>'
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join([f"<h1>{html.escape(title)}</h1>",
                    f'<p class="note">Generated {generated} from the files in '
                    f"{', '.join(f'<code>{html.escape(str(r.out))}</code>' for r in results)}.</p>",
                    f"<nav>{nav}</nav>", *[task_section(r) for r in results], cost_section(results, figure_path),
                    model_cards(results), metadata_section(results)])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body>{body}</body></html>\n")


def write_task_report(out: str | Path, task: str) -> Path:
    """``out/report.html`` of one task's outputs in ``out`` (and its cost/benefit PNG beside it)."""
    out = Path(out)
    path = out / "report.html"
    write_atomic(path, page(f"carsr-bench: {TITLES[task]}", [load_task(task, out)], out / "cost_benefit.png"))
    return path


def write_index(root: str | Path, outs: dict[str, str | Path]) -> Path:
    """``root/index.html`` of several tasks (task -> its out folder), e.g. the three of ``--task all``."""
    root = Path(root)
    path = root / "index.html"
    results = [load_task(task, out) for task, out in outs.items()]
    write_atomic(path, page("carsr-bench: does restoration help downstream models?", results,
                            root / "cost_benefit.png"))
    return path
