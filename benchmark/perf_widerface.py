"""Time the vectorised WIDER FACE evaluator against a loop transcription of the official Python port.

Predictions are synthesised from the real validation GT (../shared/data/widerface): jittered GT boxes, some
duplicates and random false positives, seeded. Both evaluators run in the same process on the same data and must
agree; the oracle is `tests/widerface_reference.py`.

    python -m benchmark.perf_widerface [--seed 0] [--oracle-images N]
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

from benchmark.datasets.widerface import WiderFaceGT, read_gt_mat
from benchmark.metrics.widerface import evaluate

REPO = Path(__file__).resolve().parents[1]
SHARED_WIDERFACE = REPO.parent / "shared" / "data" / "widerface"


def synthetic_predictions(gt: WiderFaceGT, seed: int = 0) -> dict[str, np.ndarray]:
    """{image_id: [N, 5] x, y, w, h, score}: about 80 % of the GT boxes found (position and size jittered by ~10 %,
    logit-like scores), 10 % found twice, and 3 + G/2 false positives per image; fractional coordinates."""
    rng = np.random.default_rng(seed)
    preds = {}
    for image_id, boxes in zip(gt.image_ids, gt.boxes):
        b = boxes.astype(np.float64)
        found = b[rng.random(len(b)) < 0.8]
        dup = found[rng.random(len(found)) < 0.1]
        tp = np.vstack([found, dup])
        size = np.maximum(tp[:, 2:], 1.0)
        xy = tp[:, :2] + rng.normal(0, 0.1, tp[:, :2].shape) * size
        wh = size * np.exp(rng.normal(0, 0.1, size.shape))
        tp_scores = rng.normal(2.0, 1.5, len(tp))
        n_fp = rng.poisson(3 + len(b) / 2)
        extent = max(float((b[:, :2] + b[:, 2:]).max()) if len(b) else 0.0, 256.0)
        fp_wh = np.exp(rng.uniform(np.log(4), np.log(200), (n_fp, 2)))
        fp_xy = rng.uniform(0, extent, (n_fp, 2))
        fp_scores = rng.normal(-1.0, 1.5, n_fp)
        p = np.vstack([np.hstack([xy, wh, tp_scores[:, None]]), np.hstack([fp_xy, fp_wh, fp_scores[:, None]])])
        preds[image_id] = np.round(p[rng.permutation(len(p))], 2)
    return preds


def _load_oracle():
    spec = importlib.util.spec_from_file_location("widerface_reference", REPO / "tests" / "widerface_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.perf_widerface", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the vectorised evaluator (best is reported)")
    parser.add_argument("--oracle-images", type=int, default=None,
                        help="score the oracle (and, for the ratio, the evaluator again) on the first N images only")
    args = parser.parse_args(argv)
    if not (SHARED_WIDERFACE / "wider_face_val.mat").is_file():
        print(f"skipped: {SHARED_WIDERFACE} is absent (the timing needs the real WIDER FACE validation GT)")
        return 0
    gt = read_gt_mat(SHARED_WIDERFACE)
    preds = synthetic_predictions(gt, args.seed)
    n_pred = sum(len(p) for p in preds.values())
    print(f"data: {len(gt)} images, {sum(len(b) for b in gt.boxes)} GT boxes, {n_pred} synthetic predictions "
          f"(seed {args.seed})")
    t_fast, res = _best_of(lambda: evaluate(preds, gt), args.repeat)
    t_matlab, res_m = _best_of(lambda: evaluate(preds, gt, matlab=True), args.repeat)
    print(f"vectorised, all {len(gt)} images: {t_fast:.3f} s (port semantics, sorted), {t_matlab:.3f} s (--matlab); "
          f"AP " + " / ".join(f"{res[s].ap:.6f}" for s in res) + " ; matlab " +
          " / ".join(f"{res_m[s].ap:.6f}" for s in res_m))
    ids = gt.image_ids if args.oracle_images is None else gt.image_ids[: args.oracle_images]
    sub = gt.subset(ids)
    oracle = _load_oracle()
    t_oracle, ref = _best_of(lambda: oracle.port_evaluation(preds, sub), 1)
    t_sub, res_sub = _best_of(lambda: evaluate(preds, gt, image_ids=ids), args.repeat)
    diff = max(abs(res_sub[s].ap - ref[s][0]) for s in ref)
    print(f"loop reference (official port + sort), {len(sub)} images: {t_oracle:.2f} s; vectorised on the same "
          f"images: {t_sub:.3f} s; speed-up x{t_oracle / t_sub:.0f}; max |AP difference| {diff:.1e}")
    return 0 if diff <= 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
