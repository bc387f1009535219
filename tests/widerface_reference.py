"""Test oracle: literal, loop-by-loop transcriptions of the official WIDER FACE evaluation.

`port_*`: the Python port (wondervictor/WiderFace-Evaluation `evaluation.py` and the float64 `box_overlaps.pyx`,
whose inner loop over predictions is written with NumPy here, element for element the same arithmetic).
`matlab_*`: the MATLAB eval_tools (`norm_score.m`, `evaluation.m`, `plot/VOCap.m`, `read_pred.m`'s sort) with
peiyunh/tiny `eval_tools/boxoverlap.m`, scalar by scalar in MATLAB's int32/single rules.
Slow on purpose: it is the reference that benchmark.metrics.widerface is checked and timed against.
"""
from __future__ import annotations

import math

import numpy as np

SETTINGS = ("easy", "medium", "hard")


# --- Python port ------------------------------------------------------------------------------------------------

def port_bbox_overlaps(boxes, query_boxes):
    n_ = boxes.shape[0]
    k_ = query_boxes.shape[0]
    overlaps = np.zeros((n_, k_), dtype=np.float64)
    for k in range(k_):
        box_area = (query_boxes[k, 2] - query_boxes[k, 0] + 1) * (query_boxes[k, 3] - query_boxes[k, 1] + 1)
        iw = np.minimum(boxes[:, 2], query_boxes[k, 2]) - np.maximum(boxes[:, 0], query_boxes[k, 0]) + 1
        ih = np.minimum(boxes[:, 3], query_boxes[k, 3]) - np.maximum(boxes[:, 1], query_boxes[k, 1]) + 1
        ua = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1) + box_area - iw * ih
        valid = (iw > 0) & (ih > 0)
        overlaps[valid, k] = iw[valid] * ih[valid] / ua[valid]
    return overlaps


def port_norm_score(pred):
    max_score = 0
    min_score = 1
    for v in pred.values():
        if len(v) == 0:
            continue
        max_score = max(np.max(v[:, -1]), max_score)
        min_score = min(np.min(v[:, -1]), min_score)
    diff = max_score - min_score
    for v in pred.values():
        if len(v) == 0:
            continue
        v[:, -1] = (v[:, -1] - min_score) / diff


def port_image_eval(pred, gt, ignore, iou_thresh):
    _pred = pred.copy()
    _gt = gt.copy()
    pred_recall = np.zeros(_pred.shape[0])
    recall_list = np.zeros(_gt.shape[0])
    proposal_list = np.ones(_pred.shape[0])
    _pred[:, 2] = _pred[:, 2] + _pred[:, 0]
    _pred[:, 3] = _pred[:, 3] + _pred[:, 1]
    _gt[:, 2] = _gt[:, 2] + _gt[:, 0]
    _gt[:, 3] = _gt[:, 3] + _gt[:, 1]
    overlaps = port_bbox_overlaps(_pred[:, :4], _gt)
    for h in range(_pred.shape[0]):
        gt_overlap = overlaps[h]
        max_overlap, max_idx = gt_overlap.max(), gt_overlap.argmax()
        if max_overlap >= iou_thresh:
            if ignore[max_idx] == 0:
                recall_list[max_idx] = -1
                proposal_list[h] = -1
            elif recall_list[max_idx] == 0:
                recall_list[max_idx] = 1
        r_keep_index = np.where(recall_list == 1)[0]
        pred_recall[h] = len(r_keep_index)
    return pred_recall, proposal_list


def port_img_pr_info(thresh_num, pred_info, proposal_list, pred_recall):
    pr_info = np.zeros((thresh_num, 2)).astype("float")
    for t in range(thresh_num):
        thresh = 1 - (t + 1) / thresh_num
        r_index = np.where(pred_info[:, 4] >= thresh)[0]
        if len(r_index) == 0:
            pr_info[t, 0] = 0
            pr_info[t, 1] = 0
        else:
            r_index = r_index[-1]
            p_index = np.where(proposal_list[: r_index + 1] == 1)[0]
            pr_info[t, 0] = len(p_index)
            pr_info[t, 1] = pred_recall[r_index]
    return pr_info


def port_dataset_pr_info(thresh_num, pr_curve, count_face):
    _pr_curve = np.zeros((thresh_num, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(thresh_num):
            _pr_curve[i, 0] = pr_curve[i, 1] / pr_curve[i, 0]
            _pr_curve[i, 1] = pr_curve[i, 1] / count_face
    return _pr_curve


def port_voc_ap(rec, prec):
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def port_evaluation(preds, gt, sort=True, iou_thresh=0.5, thresh_num=1000):
    """APs and PR curves {setting: (ap, pr_curve)} of `preds` {id: [N,5] xywh score} over every image of `gt`
    (a WiderFaceGT). sort=True sorts each image's predictions by descending score first (stable), as MATLAB does."""
    pred = {}
    for image_id in gt.image_ids:
        if image_id in preds:
            p = np.array(preds[image_id], dtype=np.float64).reshape(-1, 5)
            if sort:
                p = p[sorted(range(len(p)), key=lambda i: -p[i, 4])]
            pred[image_id] = p
    port_norm_score(pred)
    out = {}
    for setting in SETTINGS:
        count_face = 0
        pr_curve = np.zeros((thresh_num, 2)).astype("float")
        for j, image_id in enumerate(gt.image_ids):
            pred_info = pred.get(image_id, np.zeros((0, 5)))
            gt_boxes = gt.boxes[j].astype("float")
            keep_index = gt.keep[setting][j] + 1
            count_face += len(keep_index)
            if len(gt_boxes) == 0 or len(pred_info) == 0:
                continue
            ignore = np.zeros(gt_boxes.shape[0])
            if len(keep_index) != 0:
                ignore[keep_index - 1] = 1
            pred_recall, proposal_list = port_image_eval(pred_info, gt_boxes, ignore, iou_thresh)
            pr_curve += port_img_pr_info(thresh_num, pred_info, proposal_list, pred_recall)
        pr_curve = port_dataset_pr_info(thresh_num, pr_curve, count_face)
        out[setting] = (port_voc_ap(pr_curve[:, 1], pr_curve[:, 0]), pr_curve)
    return out


# --- MATLAB eval_tools --------------------------------------------------------------------------------------------

def m_round(x: float) -> float:
    """MATLAB round: half away from zero."""
    a = abs(x)
    r = math.floor(a)
    return math.copysign(r + 1 if a - r >= 0.5 else r, x)


def m_int32(x: float) -> int:
    """A double converted to int32 by MATLAB (round, saturate, NaN -> 0)."""
    if math.isnan(x):
        return 0
    return int(min(max(m_round(x), -(2**31)), 2**31 - 1))


def m_idivide(a: int, b: int) -> int:
    """int32 ./ int32 in MATLAB: rounded quotient; x/0 saturates, 0/0 is 0."""
    if b == 0:
        return 0 if a == 0 else (2**31 - 1 if a > 0 else -(2**31))
    return m_int32(a / b)


def matlab_boxoverlap(a, b):
    """boxoverlap(a, b) with `a` int32 rows x1 y1 x2 y2 (the GT) and `b` one double row (peiyunh/tiny version)."""
    o = []
    for row in a:
        x1 = m_int32(max(row[0], b[0]))
        y1 = m_int32(max(row[1], b[1]))
        x2 = m_int32(min(row[2], b[2]))
        y2 = m_int32(min(row[3], b[3]))
        w = m_int32(x2 - x1 + 1)
        h = m_int32(y2 - y1 + 1)
        inter = m_int32(w * h)
        aarea = m_int32((row[2] - row[0] + 1) * (row[3] - row[1] + 1))
        barea = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
        union = m_int32(m_int32(aarea + barea) - inter)
        ov = m_idivide(inter, union)
        if w <= 0 or h <= 0:
            ov = 0
        o.append(ov)
    return o


def matlab_norm_score(pred_list):
    max_score = np.float32(np.finfo(np.float32).tiny)
    min_score = np.float32(np.finfo(np.float32).max)
    for p in pred_list.values():
        if len(p) == 0:
            continue
        max_score = np.float32(max(float(max_score), float(np.max(p[:, 4]))))
        min_score = np.float32(min(float(min_score), float(np.min(p[:, 4]))))
    for p in pred_list.values():
        if len(p) == 0:
            continue
        for k in range(len(p)):
            p[k, 4] = float((np.float32(p[k, 4]) - min_score) / (max_score - min_score))


def matlab_image_evaluation(pred_info, gt_bbx, ignore, iou_thresh):
    n = len(pred_info)
    pred_recall = [0] * n
    recall_list = [0] * len(gt_bbx)
    proposal_list = [1] * n
    pred = [[r[0], r[1], r[0] + r[2], r[1] + r[3]] for r in pred_info.tolist()]
    gt = [[int(r[0]), int(r[1]), int(r[0]) + int(r[2]), int(r[1]) + int(r[3])] for r in gt_bbx.tolist()]
    for h in range(n):
        overlap_list = matlab_boxoverlap(gt, pred[h])
        max_overlap = max(overlap_list)
        idx = overlap_list.index(max_overlap)
        if max_overlap >= iou_thresh:
            if ignore[idx] == 0:
                recall_list[idx] = -1
                proposal_list[h] = -1
            elif recall_list[idx] == 0:
                recall_list[idx] = 1
        pred_recall[h] = sum(1 for r in recall_list if r == 1)
    return pred_recall, proposal_list


def matlab_image_pr_info(thresh_num, pred_info, proposal_list, pred_recall):
    img_pr_info = np.zeros((thresh_num, 2))
    for t in range(1, thresh_num + 1):
        thresh = 1 - t / thresh_num
        r_index = np.flatnonzero(pred_info[:, 4] >= thresh)  # find(pred_info(:,5) >= thresh, 1, 'last')
        if len(r_index):
            r = r_index[-1]
            img_pr_info[t - 1, 0] = sum(1 for p in proposal_list[: r + 1] if p == 1)
            img_pr_info[t - 1, 1] = pred_recall[r]
    return img_pr_info


def matlab_vocap(rec, prec):
    mrec = [0.0] + list(rec) + [1.0]
    mpre = [0.0] + list(prec) + [0.0]
    for i in range(len(mpre) - 2, -1, -1):
        a, b = mpre[i], mpre[i + 1]
        mpre[i] = b if math.isnan(a) else (a if math.isnan(b) else max(a, b))  # MATLAB max skips NaN
    return sum((mrec[i] - mrec[i - 1]) * mpre[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1])


def matlab_evaluation(preds, gt, iou_thresh=0.5, thresh_num=1000):
    """{setting: (ap, pr_cruve)} as wider_eval.m computes them (read_pred sorts, norm_score, evaluation, VOCap)."""
    pred_list = {}
    for image_id in gt.image_ids:
        if image_id in preds and len(preds[image_id]):
            p = np.array(preds[image_id], dtype=np.float64).reshape(-1, 5)
            pred_list[image_id] = p[sorted(range(len(p)), key=lambda i: -p[i, 4])]
    matlab_norm_score(pred_list)
    out = {}
    for setting in SETTINGS:
        org_pr_cruve = np.zeros((thresh_num, 2))
        count_face = 0
        for j, image_id in enumerate(gt.image_ids):
            gt_bbx = gt.boxes[j]
            pred_info = pred_list.get(image_id)
            keep_index = gt.keep[setting][j]
            count_face += len(keep_index)
            if len(gt_bbx) == 0 or pred_info is None:
                continue
            ignore = [0] * len(gt_bbx)
            for k in keep_index:
                ignore[k] = 1
            pred_recall, proposal_list = matlab_image_evaluation(pred_info, gt_bbx, ignore, iou_thresh)
            org_pr_cruve += matlab_image_pr_info(thresh_num, pred_info, proposal_list, pred_recall)
        pr_cruve = np.zeros((thresh_num, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            pr_cruve[:, 0] = org_pr_cruve[:, 1] / org_pr_cruve[:, 0]
            pr_cruve[:, 1] = org_pr_cruve[:, 1] / count_face
        out[setting] = (matlab_vocap(pr_cruve[:, 1], pr_cruve[:, 0]), pr_cruve)
    return out
