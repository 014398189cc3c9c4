"""Binary classification metrics from margins (log-odds) and 0/1 labels, vectorized.

Conventions (all functions):

* `margins` are log-odds; probabilities are `sigmoid(margins)` (numerically safe).
* `y` holds 0/1 labels; a row is positive when `y > 0`.
* `weights` is None (every row weighs 1) or an array of finite, non-negative sample
  weights, one per row. Every weighted metric is the unweighted one with each row
  counted `weight` times (integer weights equal repeating rows).
* Ranking metrics (ROC AUC, average precision) sort by the margins, not by the
  probabilities: the sigmoid is monotone, so the two agree except where float64
  probabilities saturate (|margin| > ~37 rounds p to exactly 1.0 and creates ties the
  margins do not have).
* Undefined values are NaN: AUC needs both classes (positive and negative weight),
  average precision needs positive weight, normalized entropy needs a base rate strictly
  between 0 and 1. Precision, recall and F1 define 0/0 as 0 (scikit-learn's
  `zero_division=0`).
"""

from __future__ import annotations

import math

import numpy as np

from . import kernels as K
from .errors import DataError

NAN = float("nan")


# --------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------

def _as_f64(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64).reshape(-1))


def _weights(weights, n: int) -> np.ndarray | None:
    """None stays None; otherwise a float64 vector of n finite non-negative weights."""
    if weights is None:
        return None
    w = _as_f64(weights)
    if w.shape[0] != n:
        raise ValueError(f"weights has {w.shape[0]} entries for {n} rows")
    if n and not (np.isfinite(w).all() and (w >= 0).all()):
        raise DataError("sample weights must be finite and non-negative")
    return w


def _prepare(margins, y, weights):
    m = _as_f64(margins)
    yy = _as_f64(y)
    if m.shape[0] != yy.shape[0]:
        raise ValueError(f"{m.shape[0]} margins for {yy.shape[0]} labels")
    return m, yy, _weights(weights, m.shape[0])


def _div(a: float, b: float, zero: float = NAN) -> float:
    """a / b as a Python float, `zero` when b == 0."""
    return float(a / b) if b != 0 else zero


def probabilities(margins) -> np.ndarray:
    """sigmoid(margins) without overflow (the same sigmoid the trainer uses)."""
    m = _as_f64(margins)
    p = np.empty_like(m)
    K.sigmoid_array(m, p)
    return p


# --------------------------------------------------------------------------------------
# loss
# --------------------------------------------------------------------------------------

def logloss(margins: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
    """(Weighted) mean log loss, computed from margins so it never takes log(0)."""
    m, yy, w = _prepare(margins, y, weights)
    if w is None:
        w = np.ones_like(yy)
    total = w.sum()
    return float(K.logloss_sum(m, yy, w) / total) if total > 0 else NAN


def _base_rate(y: np.ndarray, w: np.ndarray | None) -> tuple[float, float]:
    """(weighted positive rate, total weight)."""
    pos = y > 0
    if w is None:
        return _div(float(pos.sum()), float(len(y))), float(len(y))
    total = float(w.sum())
    return _div(float(w[pos].sum()), total), total


def _entropy(p: float) -> float:
    """-(p log p + (1-p) log(1-p)) in nats, 0 log 0 = 0; NaN for NaN."""
    if math.isnan(p):
        return NAN
    return -sum(q * math.log(q) for q in (p, 1.0 - p) if q > 0)


def best_constant_logloss(y: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Log loss of the best constant predictor, the (weighted) base rate p: the entropy
    -(p log p + (1-p) log(1-p)). 0 when only one class is present; NaN when empty."""
    yy = _as_f64(y)
    p, _ = _base_rate(yy, _weights(weights, len(yy)))
    return _entropy(p)


def normalized_entropy(margins: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
    """logloss / best_constant_logloss (He et al. 2014). Below 1 beats the base rate.
    NaN when only one class is present (the denominator is 0)."""
    m, yy, w = _prepare(margins, y, weights)
    return _div(logloss(m, yy, w), best_constant_logloss(yy, w))


# --------------------------------------------------------------------------------------
# ranking metrics
# --------------------------------------------------------------------------------------

def _clf_curve(scores: np.ndarray, y: np.ndarray, w: np.ndarray | None):
    """Cumulative (weighted) true and false positives at each distinct score, highest
    score first, as scikit-learn's `_binary_clf_curve`: tps[i], fps[i] count the rows
    with score >= thresholds[i]. Tied scores form one step, so the (unstable, faster)
    sort's order within a tie group does not matter."""
    order = np.argsort(scores)[::-1]
    s = scores[order]
    pos = (y[order] > 0).astype(np.float64)
    if w is None:
        tp_w, fp_w = pos, 1.0 - pos
    else:
        ws = w[order]
        tp_w, fp_w = pos * ws, (1.0 - pos) * ws
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last row of each tie group
    return np.cumsum(tp_w)[last], np.cumsum(fp_w)[last], s[last]


def _auc_from_curve(tps: np.ndarray, fps: np.ndarray) -> float:
    n_pos, n_neg = tps[-1], fps[-1]
    if n_pos <= 0 or n_neg <= 0:
        return NAN
    dfp = np.diff(fps, prepend=0.0)
    tp_mid = tps + np.r_[0.0, tps[:-1]]  # 2 x the trapezoid's mean height
    return float((dfp * tp_mid).sum() / (2.0 * n_pos * n_neg))


def _ap_from_curve(tps: np.ndarray, fps: np.ndarray) -> float:
    n_pos = tps[-1]
    if n_pos <= 0:
        return NAN
    pred = tps + fps
    precision = np.divide(tps, pred, out=np.zeros_like(tps), where=pred != 0)
    return float((np.diff(tps, prepend=0.0) * precision).sum() / n_pos)


def roc_auc(scores: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Exact (weighted) ROC AUC: the probability that a random positive scores above a
    random negative, tied scores counting one half (trapezoids between tie groups).
    NaN without both classes."""
    s, yy, w = _prepare(scores, y, weights)
    if len(s) == 0:
        return NAN
    tps, fps, _ = _clf_curve(s, yy, w)
    return _auc_from_curve(tps, fps)


def average_precision(scores: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
    """PR AUC as scikit-learn's `average_precision_score`: sum_k (R_k - R_{k-1}) P_k over
    the distinct score thresholds, highest first (step-wise, no interpolation; a tie
    group is one step). NaN without positive weight (scikit-learn returns 0 there)."""
    s, yy, w = _prepare(scores, y, weights)
    if len(s) == 0:
        return NAN
    tps, fps, _ = _clf_curve(s, yy, w)
    return _ap_from_curve(tps, fps)


pr_auc = average_precision


def roc_curve(scores, y, weights=None):
    """(fpr, tpr, thresholds), starting at (0, 0) with threshold +inf, one point per
    distinct score. Raises ValueError without both classes."""
    s, yy, w = _prepare(scores, y, weights)
    tps, fps, thr = _clf_curve(s, yy, w)
    if len(s) == 0 or tps[-1] <= 0 or fps[-1] <= 0:
        raise ValueError("ROC curve needs both classes")
    return (np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]], np.r_[np.inf, thr])


def precision_recall_curve(scores, y, weights=None):
    """(precision, recall, thresholds) at each distinct score, highest first, preceded
    by the point (precision 1, recall 0) as scikit-learn draws it. Raises ValueError
    without positives."""
    s, yy, w = _prepare(scores, y, weights)
    tps, fps, thr = _clf_curve(s, yy, w)
    if len(s) == 0 or tps[-1] <= 0:
        raise ValueError("precision-recall curve needs positives")
    pred = tps + fps
    precision = np.divide(tps, pred, out=np.zeros_like(tps), where=pred != 0)
    return np.r_[1.0, precision], np.r_[0.0, tps / tps[-1]], np.r_[np.inf, thr]


# --------------------------------------------------------------------------------------
# metrics at a threshold
# --------------------------------------------------------------------------------------

def threshold_metrics(margins, y, threshold: float = 0.5, weights=None) -> dict:
    """accuracy, precision, recall, f1 for the decision sigmoid(margin) >= threshold.
    Weighted counts with `weights`; 0/0 is 0 for precision, recall and F1 (scikit-learn's
    zero_division=0); accuracy is NaN only without any weight."""
    m, yy, w = _prepare(margins, y, weights)
    return _threshold_metrics(probabilities(m), yy, threshold, w)


def _threshold_metrics(p, yy, threshold, w) -> dict:
    pred = p >= threshold
    pos = yy > 0
    ww = np.ones_like(p) if w is None else w
    tp = float(ww[pred & pos].sum())
    fp = float(ww[pred & ~pos].sum())
    fn = float(ww[~pred & pos].sum())
    total = float(ww.sum())
    correct = total - fp - fn if w is None else float(ww[pred == pos].sum())
    return {
        "accuracy": _div(correct, total),
        "precision": _div(tp, tp + fp, 0.0),
        "recall": _div(tp, tp + fn, 0.0),
        "f1": _div(2.0 * tp, 2.0 * tp + fp + fn, 0.0),
    }


def accuracy(margins, y, threshold=0.5, weights=None) -> float:
    return threshold_metrics(margins, y, threshold, weights)["accuracy"]


def precision(margins, y, threshold=0.5, weights=None) -> float:
    return threshold_metrics(margins, y, threshold, weights)["precision"]


def recall(margins, y, threshold=0.5, weights=None) -> float:
    return threshold_metrics(margins, y, threshold, weights)["recall"]


def f1(margins, y, threshold=0.5, weights=None) -> float:
    return threshold_metrics(margins, y, threshold, weights)["f1"]


# --------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------

def bin_edges(bins: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, bins + 1)


def bin_index(p: np.ndarray, bins: int) -> np.ndarray:
    """Bin of each probability among `bins` equal-width bins of [0, 1], with
    scikit-learn's `calibration_curve(strategy="uniform")` edge convention: bins are
    closed on the right, (lower, upper], the first one also holds 0. A probability
    equal to an interior edge falls in the lower bin."""
    return np.searchsorted(bin_edges(bins)[1:-1], p, side="left")


def reliability(margins, y, bins: int = 10, weights=None) -> tuple[float, list[dict]]:
    """(ECE, reliability table) over `bins` equal-width probability bins.

    Table rows (bins with zero total weight, including empty bins, are omitted):
    lower, upper, count (rows), weight (summed weights; = count unweighted),
    mean_prediction and fraction_positive (both weighted means within the bin).
    ECE = sum over bins |mean_prediction - fraction_positive| * weight / total weight;
    NaN without any weight.
    """
    m, yy, w = _prepare(margins, y, weights)
    return _reliability(probabilities(m), yy, bins, w)


def _reliability(p, yy, bins, w) -> tuple[float, list[dict]]:
    bins = int(bins)
    if bins < 1:
        raise ValueError("bins must be at least 1")
    ids = bin_index(p, bins)
    pos = (yy > 0).astype(np.float64)
    ww = np.ones_like(p) if w is None else w
    count = np.bincount(ids, minlength=bins)
    wsum = np.bincount(ids, weights=ww, minlength=bins)
    psum = np.bincount(ids, weights=ww * p, minlength=bins)
    ysum = np.bincount(ids, weights=ww * pos, minlength=bins)
    total = float(wsum.sum())
    keep = np.flatnonzero(wsum > 0)
    mean_pred = psum[keep] / wsum[keep]
    frac_pos = ysum[keep] / wsum[keep]
    ece = _div(float((np.abs(mean_pred - frac_pos) * wsum[keep]).sum()), total)
    edges = bin_edges(bins)
    table = [
        {"lower": float(edges[k]), "upper": float(edges[k + 1]), "count": int(count[k]),
         "weight": float(wsum[k]), "mean_prediction": float(mp), "fraction_positive": float(fp)}
        for k, mp, fp in zip(keep.tolist(), mean_pred.tolist(), frac_pos.tolist())
    ]
    return ece, table


def ece(margins, y, bins: int = 10, weights=None) -> float:
    """Expected calibration error over `bins` equal-width bins (see `reliability`)."""
    return reliability(margins, y, bins, weights)[0]


# --------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------

def summary(margins: np.ndarray, y: np.ndarray, threshold: float = 0.5,
            weights: np.ndarray | None = None, bins: int = 10) -> dict:
    """Every metric for `ftrl eval` as one JSON-serializable dict (floats may be NaN)."""
    m, yy, w = _prepare(margins, y, weights)
    n = len(m)
    base, total = _base_rate(yy, w)
    out: dict = {"n": int(n)}
    if w is not None:
        out["weight_sum"] = total
    if n == 0 or total <= 0:
        out.update({k: NAN for k in (
            "logloss", "auc", "pr_auc", "accuracy", "precision", "recall", "f1",
            "positive_rate", "mean_prediction", "normalized_entropy",
            "best_constant_logloss", "ece")})
        out.update({"reliability": [], "threshold": float(threshold), "bins": int(bins)})
        return out
    p = probabilities(m)
    ll = logloss(m, yy, w)
    h = _entropy(base)
    ece_value, table = _reliability(p, yy, bins, w)
    tps, fps, _ = _clf_curve(m, yy, w)  # one sort for both ranking metrics
    out.update({
        "logloss": ll,
        "auc": _auc_from_curve(tps, fps),
        "pr_auc": _ap_from_curve(tps, fps),
        **_threshold_metrics(p, yy, threshold, w),
        "positive_rate": base,
        "mean_prediction": float(p.mean() if w is None else (w * p).sum() / total),
        "normalized_entropy": _div(ll, h),
        "best_constant_logloss": h,
        "ece": ece_value,
        "reliability": table,
        "threshold": float(threshold),
        "bins": int(bins),
    })
    return out
