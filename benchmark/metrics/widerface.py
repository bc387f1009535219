"""WIDER FACE detection AP with the official rules (DESIGN 7.3), vectorised with NumPy.

One function per protocol step, named as in the official MATLAB `eval_tools` (`norm_score.m`; `evaluation.m`:
`image_evaluation`, `image_pr_info`, `dataset_pr_info`; `plot/VOCap.m`) and its Python port
(wondervictor/WiderFace-Evaluation `evaluation.py`): norm_score -> image_eval -> img_pr_info -> dataset_pr_info ->
voc_ap. `evaluate` runs the same steps over every image at once (IoUs computed once for the three settings).

Semantics. Default: the Python port (float IoU with +1 areas and x2 = x + w, each prediction takes the GT of highest
IoU, IoU >= 0.5 with an ignored face drops the prediction, scores normalised from max 0 / min 1) with one change:
each image's predictions are first sorted by descending score (stable), as MATLAB's `read_pred.m` does and the port
forgets to. `sort=False` (CLI `--port-unsorted`): the port exactly, predictions in file order (on an unsorted file
its "up to the last prediction >= thresh" then counts predictions below the threshold too). `matlab=True`: MATLAB's own arithmetic in the eval_tools that produced the Tiny Faces curves
(peiyunh/tiny `eval_tools/boxoverlap.m`, which has no `double()` cast): the GT boxes are int32, so the prediction
coordinates are rounded, the IoU is an int32 quotient rounded to 0 or 1 and `max` takes the FIRST GT that reaches
it; scores are normalised in single precision from `realmin`/`realmax('single')` (`norm_score.m`).

Predictions in memory: `{image_id: array [N, 5] x, y, w, h, score}` with image_id `event/name`, the layout of the
official prediction files (`xyxy_to_xywh` converts a detector's x1, y1, x2, y2, score).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.datasets.widerface import SETTINGS, WiderFaceGT, check_image_id, read_gt_mat
from benchmark.errors import InputError

THRESH_NUM = 1000
IOU_THRESH = 0.5
_INT32_MIN, _INT32_MAX = -(2.0**31), 2.0**31 - 1


@dataclass
class SettingResult:
    """AP of one setting and its PR curve: precision[t], recall[t] at score threshold 1 - (t + 1) / thresh_num
    (precision is NaN where no prediction reaches the threshold, as in the official curves; AP is NaN when the
    evaluated images hold no face of that setting)."""

    ap: float
    precision: np.ndarray
    recall: np.ndarray
    num_faces: int


# --- prediction files ---------------------------------------------------------------------------------------------

def xyxy_to_xywh(dets: np.ndarray, inclusive: bool = False) -> np.ndarray:
    """Detector boxes x1, y1, x2, y2, score -> x, y, w, h, score. `inclusive=True` reads x2, y2 as the last pixel
    inside the box and rounds to whole pixels first, as the official Tiny Faces writers do (`cnn_widerface_test_AB.m`:
    MATLAB round of the corners, then w = x2 - x1 + 1; tiny-faces-pytorch `evaluation.py` rounds x1 and x2 - x1 + 1
    instead, the same numbers except for corners near half a pixel)."""
    dets = np.asarray(dets, dtype=np.float64).reshape(-1, 5)
    box = dets[:, :4]
    if inclusive:
        box = _matlab_round(box)
    wh = box[:, 2:] - box[:, :2] + (1.0 if inclusive else 0.0)
    return np.hstack([box[:, :2], wh, dets[:, 4:]])


def read_prediction_file(path: str | Path) -> np.ndarray:
    """Read one `PRED/<event>/<name>.txt` (line 1 the image name, line 2 N, then N lines `x y w h score`) as [N, 5].
    A malformed or non-finite line raises InputError naming the file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e})") from None
    if len(lines) < 2:
        raise InputError(f"{path}:{len(lines) + 1}: missing the detection count (line 1 image name, line 2 N)")
    try:
        n = int(lines[1])
        if n < 0:
            raise ValueError
    except ValueError:
        raise InputError(f"{path}:2: expected the number of detections, got {lines[1]!r}") from None
    if len(lines) < 2 + n:
        raise InputError(f"{path}:{len(lines) + 1}: declares {n} detections but has {len(lines) - 2} lines")
    extra = [k for k in range(2 + n, len(lines)) if lines[k].strip()]
    if extra:
        raise InputError(f"{path}:{extra[0] + 1}: text after the {n} declared detections")
    rows = []
    for k, line in enumerate(lines[2 : 2 + n], start=3):
        try:
            row = [float(f) for f in line.split()]
            if len(row) != 5 or not all(map(math.isfinite, row)):
                raise ValueError
        except ValueError:
            raise InputError(f"{path}:{k}: expected 'x y w h score' (5 finite numbers), got {line.strip()!r}") from None
        rows.append(row)
    return np.array(rows, dtype=np.float64).reshape(n, 5)


def read_predictions(pred_dir: str | Path, image_ids: Iterable[str]) -> dict[str, np.ndarray]:
    """Read the prediction files of `image_ids` from `pred_dir`; an image without a file is left out of the result
    (the official rule: no detections)."""
    pred_dir = Path(pred_dir)
    preds = {}
    for image_id in image_ids:
        path = pred_dir / f"{check_image_id(image_id, str(pred_dir))}.txt"
        if path.is_file():
            preds[image_id] = read_prediction_file(path)
    return preds


def _number(v: float) -> str:
    return str(int(v)) if v.is_integer() else repr(v)


def write_predictions(preds: Mapping[str, np.ndarray], pred_dir: str | Path) -> None:
    """Write `{image_id: [N, 5] x, y, w, h, score}` as `pred_dir/<event>/<name>.txt` in the official format (numbers
    in shortest round-trip form, so reading back gives the same arrays)."""
    pred_dir = Path(pred_dir)
    for image_id, boxes in preds.items():
        path = pred_dir / f"{check_image_id(image_id, 'write_predictions')}.txt"
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = "".join(" ".join(_number(v) for v in row) + "\n" for row in boxes.tolist())
        path.write_text(f"{image_id.split('/')[1]}.jpg\n{len(boxes)}\n{rows}", encoding="utf-8")


# --- protocol steps -----------------------------------------------------------------------------------------------

def sort_by_score(pred: np.ndarray) -> np.ndarray:
    """One image's predictions by descending raw score, ties in file order (`read_pred.m`: stable `sort`, 'descend')."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 5)
    return pred[np.argsort(-pred[:, 4], kind="stable")]


def norm_score(preds: Mapping[str, np.ndarray], matlab: bool = False) -> dict[str, np.ndarray]:
    """Min-max normalise column 4 over ALL predictions of the dataset; returns new arrays. The bounds start where
    the official code starts them: port max at 0 and min at 1 (a range never narrower than [0, 1]); MATLAB
    `realmin('single')`/`realmax('single')` with single-precision arithmetic (`norm_score.m`)."""
    scores = [np.asarray(p, dtype=np.float64)[:, 4] for p in preds.values() if len(p)]
    out = {k: np.array(v, dtype=np.float64).reshape(-1, 5) for k, v in preds.items()}
    if not scores:
        return out
    lo = min(float(s.min()) for s in scores)
    hi = max(float(s.max()) for s in scores)
    with np.errstate(divide="ignore", invalid="ignore"):
        if matlab:
            f32 = np.finfo(np.float32)
            hi32, lo32 = np.float32(max(float(f32.tiny), hi)), np.float32(min(float(f32.max), lo))
            for p in out.values():
                p[:, 4] = (p[:, 4].astype(np.float32) - lo32) / (hi32 - lo32)
        else:
            hi, lo = max(hi, 0.0), min(lo, 1.0)
            for p in out.values():
                p[:, 4] = (p[:, 4] - lo) / (hi - lo)
    return out


def _matlab_round(x: np.ndarray) -> np.ndarray:
    """MATLAB round: half away from zero (np.round rounds half to even)."""
    a = np.abs(x)
    r = np.floor(a)
    return np.copysign(r + (a - r >= 0.5), x)


def _int32(x: np.ndarray) -> np.ndarray:
    """MATLAB conversion of a (finite) double result to int32: round half away from zero, saturate."""
    return np.clip(_matlab_round(x), _INT32_MIN, _INT32_MAX)


def _corners(xywh: np.ndarray) -> np.ndarray:
    """x, y, w, h -> x1, y1, x2 = x + w, y2 = y + h (float64), as both official implementations do."""
    b = np.array(xywh, dtype=np.float64)[:, :4]
    b[:, 2:] += b[:, :2]
    return b


def _touching_pairs(p: np.ndarray, g: np.ndarray, matlab: bool) -> tuple[np.ndarray, np.ndarray]:
    """Indices (n, k) of the prediction/GT corner pairs whose intersection is non-empty; all others have IoU 0.
    In MATLAB the intersection is int32: max(int32, double) rounds the double, so the prediction corners are
    rounded first."""
    if matlab:
        p = _int32(p)
    iw = np.minimum(p[:, None, 2], g[None, :, 2]) - np.maximum(p[:, None, 0], g[None, :, 0]) + 1
    ih = np.minimum(p[:, None, 3], g[None, :, 3]) - np.maximum(p[:, None, 1], g[None, :, 1]) + 1
    return np.nonzero((iw > 0) & (ih > 0))


def _pair_iou(p: np.ndarray, g: np.ndarray, matlab: bool) -> np.ndarray:
    """IoU of touching corner pairs p[i], g[i] (+1 areas). Default: the port's float64 `bbox_overlaps`
    (box_overlaps.pyx). matlab: `boxoverlap.m` with int32 GT: rounded prediction corners for the intersection, a
    rounded sum for the union and a rounded int32 quotient, so the IoU is 0 or 1 in practice."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if not matlab:
            iw = np.minimum(p[:, 2], g[:, 2]) - np.maximum(p[:, 0], g[:, 0]) + 1
            ih = np.minimum(p[:, 3], g[:, 3]) - np.maximum(p[:, 1], g[:, 1]) + 1
            ua = (p[:, 2] - p[:, 0] + 1) * (p[:, 3] - p[:, 1] + 1) + (g[:, 2] - g[:, 0] + 1) * (
                g[:, 3] - g[:, 1] + 1
            ) - iw * ih
            return iw * ih / ua
        q = _int32(p)
        w = _int32(np.minimum(g[:, 2], q[:, 2]) - np.maximum(g[:, 0], q[:, 0]) + 1)
        h = _int32(np.minimum(g[:, 3], q[:, 3]) - np.maximum(g[:, 1], q[:, 1]) + 1)
        inter = _int32(w * h)
        aarea = _int32((g[:, 2] - g[:, 0] + 1) * (g[:, 3] - g[:, 1] + 1))
        barea = (p[:, 2] - p[:, 0] + 1) * (p[:, 3] - p[:, 1] + 1)
        union = _int32(_int32(aarea + barea) - inter)
        saturated = np.sign(inter) * _INT32_MAX - (inter < 0)  # int32 x/0 in MATLAB; 0/0 is 0
        return np.where(union != 0, _int32(inter / np.where(union != 0, union, 1)), saturated)


def box_overlaps(pred: np.ndarray, gt: np.ndarray, matlab: bool = False) -> np.ndarray:
    """IoU [N, G] of one image's predictions and GT boxes, both x, y, w, h (x2 = x + w, +1 areas); see _pair_iou."""
    p, g = _corners(pred), _corners(gt)
    n, k = _touching_pairs(p, g, matlab)
    overlaps = np.zeros((len(p), len(g)))
    overlaps[n, k] = _pair_iou(p[n], g[k], matlab)
    return overlaps


def _best_gt(overlaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index and IoU of each prediction's best GT (the first one on ties, as max/argmax do)."""
    idx = overlaps.argmax(axis=1)
    return idx, overlaps[np.arange(len(idx)), idx]


def _best_pairs(n: np.ndarray, k: np.ndarray, iou: np.ndarray, num_pred: int) -> tuple[np.ndarray, np.ndarray]:
    """_best_gt over sparse pairs: per prediction the k of highest IoU (smallest k on ties); k 0 and IoU 0 for a
    prediction that touches no GT (it cannot reach a positive IoU threshold, so its k is never used)."""
    order = np.lexsort((k, -iou, n))
    first = order[np.r_[True, n[order][1:] != n[order][:-1]]] if len(order) else order
    idx = np.zeros(num_pred, dtype=np.int64)
    best = np.zeros(num_pred)
    idx[n[first]] = k[first]
    best[n[first]] = iou[first]
    return idx, best


def _match(gt_key: np.ndarray, hit: np.ndarray, counted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per prediction, in processing order: is it a proposal, does it recall a face for the first time.
    A hit (best IoU >= thresh) on an ignored face drops the prediction; the first hit on a counted face recalls it.
    gt_key identifies the best GT (unique across images when many images are passed at once)."""
    is_proposal = ~(hit & ~counted)
    recall_hit = np.flatnonzero(hit & counted)
    _, first = np.unique(gt_key[recall_hit], return_index=True)
    is_new = np.zeros(len(gt_key), dtype=bool)
    is_new[recall_hit[first]] = True
    return is_proposal, is_new


def image_eval(
    pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray, iou_thresh: float = IOU_THRESH, matlab: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """One image, predictions in the given order (`image_evaluation` / port `image_eval`). `ignore[g]` is 1 where GT
    g counts (the official name is inverted). Returns pred_recall (faces recalled after each prediction) and
    proposal_list (1, or -1 where the prediction is dropped)."""
    idx, best = _best_gt(box_overlaps(pred, gt, matlab))
    is_proposal, is_new = _match(idx, best >= iou_thresh, np.asarray(ignore)[idx] != 0)
    return np.cumsum(is_new).astype(np.float64), np.where(is_proposal, 1.0, -1.0)


def _thresholds(thresh_num: int) -> np.ndarray:
    """1 - t / T for t = 1..T, the same doubles as MATLAB's `1-t/thresh_num` and the port's `1 - (t+1)/thresh_num`."""
    return 1 - np.arange(1, thresh_num + 1) / thresh_num


def _pr_counts(reach: np.ndarray, is_proposal: np.ndarray, is_new: np.ndarray, thresh_num: int) -> np.ndarray:
    """[T, 2] proposals and recalled faces over the predictions whose `reach` is >= each threshold."""
    reach = np.where(np.isnan(reach), -np.inf, reach)
    passed = np.searchsorted(_thresholds(thresh_num)[::-1], reach, side="right")
    start = thresh_num - passed
    counts = np.empty((thresh_num, 2))
    counts[:, 0] = np.bincount(start, weights=is_proposal, minlength=thresh_num + 1)[:thresh_num].cumsum()
    counts[:, 1] = np.bincount(start, weights=is_new, minlength=thresh_num + 1)[:thresh_num].cumsum()
    return counts


def _reach(scores: np.ndarray) -> np.ndarray:
    """The best score at or after each prediction of one image: a prediction counts at every threshold it reaches."""
    return np.fmax.accumulate(scores[::-1])[::-1]


def img_pr_info(
    scores: np.ndarray, proposal_list: np.ndarray, pred_recall: np.ndarray, thresh_num: int = THRESH_NUM
) -> np.ndarray:
    """[T, 2] proposals and recalled faces of one image at thresholds 1 - t / T, t = 1..T (`image_pr_info`): both
    counted up to the LAST prediction whose score is >= the threshold, for predictions in any order."""
    reach = _reach(np.asarray(scores, dtype=np.float64))
    is_new = np.diff(np.asarray(pred_recall, dtype=np.float64), prepend=0.0)
    return _pr_counts(reach, np.asarray(proposal_list) == 1, is_new, thresh_num)


def dataset_pr_info(pr_counts: np.ndarray, count_face: int) -> np.ndarray:
    """[T, 2] precision, recall from the summed counts (`dataset_pr_info`), NaN where nothing is proposed."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.stack([pr_counts[:, 1] / pr_counts[:, 0], pr_counts[:, 1] / count_face], axis=1)


def voc_ap(rec: np.ndarray, prec: np.ndarray) -> float:
    """VOC all-points AP: area under the precision envelope (`plot/VOCap.m`, port `voc_ap`). NaN precisions (no
    proposal yet) propagate as in the port; MATLAB's max skips them, which gives the same area because they only
    occur where recall is still 0."""
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


# --- dataset ------------------------------------------------------------------------------------------------------

def evaluate(
    preds: Mapping[str, np.ndarray],
    gt: WiderFaceGT,
    image_ids: Iterable[str] | None = None,
    matlab: bool = False,
    iou_thresh: float = IOU_THRESH,
    thresh_num: int = THRESH_NUM,
    sort: bool = True,
) -> dict[str, SettingResult]:
    """AP and PR curve per setting ('easy', 'medium', 'hard') of `preds` against `gt`; `sort=False` keeps each
    image's predictions in the given order, as the Python port does (not with `matlab`, whose reader sorts).

    `image_ids` restricts the evaluation to those images: their predictions are the ones normalised, and only their
    faces enter the recall denominator. An image without predictions counts its faces; predictions of images outside
    the GT are not used. As in the official code an image with no GT rows contributes nothing else."""
    if not iou_thresh > 0:
        raise ValueError(f"evaluate: iou_thresh must be positive, got {iou_thresh}")
    if image_ids is not None:
        gt = gt.subset(image_ids)
    missing = [s for s in SETTINGS if s not in gt.keep]
    if missing:
        raise ValueError(f"evaluate: the ground truth has no {missing[0]!r} setting (read it from the .mat files)")
    if matlab and not sort:
        raise ValueError("evaluate: MATLAB's read_pred.m always sorts (sort=False is the Python port's behaviour)")
    order = sort_by_score if sort else lambda p: np.asarray(p, dtype=np.float64).reshape(-1, 5)
    preds = norm_score({i: order(preds[i]) for i in gt.image_ids if i in preds}, matlab)
    gt_offsets = np.cumsum([0] + [len(b) for b in gt.boxes])
    scored = [(preds[i], j) for j, i in enumerate(gt.image_ids) if len(preds.get(i, ())) and len(gt.boxes[j])]
    pred_boxes = np.concatenate([p for p, _ in scored] or [np.zeros((0, 5))])
    p = _corners(pred_boxes)
    g = _corners(np.concatenate(gt.boxes)) if gt_offsets[-1] else np.zeros((0, 4))
    n, k, start = [], [], 0
    for boxes, j in scored:  # the only per-image step: which boxes touch
        stop, lo, hi = start + len(boxes), gt_offsets[j], gt_offsets[j + 1]
        pn, pk = _touching_pairs(p[start:stop], g[lo:hi], matlab)
        n.append(pn + start)
        k.append(pk + lo)
        start = stop
    n = np.concatenate(n or [np.zeros(0, np.int64)])
    k = np.concatenate(k or [np.zeros(0, np.int64)])
    gt_key, best = _best_pairs(n, k, _pair_iou(p[n], g[k], matlab), len(p))
    scores, hit = pred_boxes[:, 4], best >= iou_thresh
    if not sort:  # "up to the last prediction >= thresh" of each image
        bounds = np.cumsum([0] + [len(b) for b, _ in scored])
        scores = np.concatenate([_reach(scores[a:b]) for a, b in zip(bounds[:-1], bounds[1:])] or [scores])
    results = {}
    for setting in SETTINGS:
        counted = np.zeros(gt_offsets[-1], dtype=bool)
        counted[np.concatenate([kept + o for kept, o in zip(gt.keep[setting], gt_offsets)] + [[]]).astype(int)] = True
        is_proposal, is_new = _match(gt_key, hit, counted[gt_key])
        # sorted per image (or reach per image), "up to the last prediction >= thresh" is "every prediction whose
        # score >= thresh": the sum of img_pr_info
        counts = _pr_counts(scores, is_proposal, is_new, thresh_num)
        curve = dataset_pr_info(counts, gt.num_faces(setting))
        results[setting] = SettingResult(voc_ap(curve[:, 1], curve[:, 0]), curve[:, 0], curve[:, 1],
                                         gt.num_faces(setting))
    return results


def scope(n_images: int, n_gt_images: int) -> str:
    """How much of the ground truth an evaluation covers, as tables and the CLI say it."""
    if n_images < n_gt_images:
        return f"subset of {n_images} images, not the official protocol"
    return f"all {n_images} images"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.metrics.widerface",
        description="WIDER FACE AP (easy/medium/hard) of a prediction folder, printed as JSON.",
    )
    parser.add_argument("pred_dir", type=Path, help="PRED/<event>/<name>.txt files")
    parser.add_argument("gt_dir", type=Path, help="folder with wider_face_val.mat and wider_{easy,medium,hard}_val.mat")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--matlab", action="store_true", help="MATLAB eval_tools int32 semantics")
    mode.add_argument("--port-unsorted", action="store_true", help="the Python port exactly: each file's predictions "
                      "in file order (default: sorted by score first, as MATLAB does; they differ on unsorted files)")
    parser.add_argument("--present-only", action="store_true", help="score only the images that have a prediction "
                        "file (a subset, as the tinyface task scores a partial copy; default: every GT image, a "
                        "missing file counting as no detections)")
    parser.add_argument("--save-pr", type=Path, help="write the PR curves to this .npz ([T, 2] precision, recall "
                        "per setting, like the official pr_cruve)")
    args = parser.parse_args(argv)
    try:
        if not args.pred_dir.is_dir():
            raise InputError(f"{args.pred_dir}: prediction folder not found")
        gt = read_gt_mat(args.gt_dir)
        preds = read_predictions(args.pred_dir, gt.image_ids)
        if args.present_only and not preds:
            raise InputError(f"{args.pred_dir}: --present-only: none of the {len(gt)} images of {args.gt_dir} has a "
                             "prediction file here")
        ids = list(preds) if args.present_only else None
        results = evaluate(preds, gt, image_ids=ids, matlab=args.matlab, sort=not args.port_unsorted)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.present_only:
        print(f"note: {scope(len(preds), len(gt))} (those with a prediction file, of {len(gt)})", file=sys.stderr)
    elif len(preds) < len(gt):
        print(f"note: {len(gt) - len(preds)} of {len(gt)} images have no prediction file (scored as no detections)",
              file=sys.stderr)
    if args.save_pr:
        np.savez(args.save_pr, **{s: np.stack([r.precision, r.recall], axis=1) for s, r in results.items()})
    print(json.dumps({s: r.ap for s, r in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
