"""Binary classification metrics from margins (log-odds) and 0/1 labels, vectorized."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from . import kernels as K


def logloss(margins: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mean log loss, computed from margins so it never takes log(0)."""
    w = np.ones_like(y) if weights is None else weights
    total = w.sum()
    return K.logloss_sum(margins, y, w) / total if total > 0 else float("nan")


def roc_auc(scores: np.ndarray, y: np.ndarray) -> float:
    """Exact ROC AUC (Mann-Whitney U; tied scores count one half). NaN with one class."""
    pos = y > 0
    n_pos = int(pos.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)  # average ranks for ties
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def summary(margins: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> dict:
    """The headline metrics for `ftrl eval`."""
    n = len(y)
    if n == 0:
        return {"n": 0, "logloss": float("nan"), "auc": float("nan"), "accuracy": float("nan"),
                "positive_rate": float("nan")}
    p = np.empty(n)
    K.sigmoid_array(margins, p)
    return {
        "n": int(n),
        "logloss": float(logloss(margins, y)),
        "auc": roc_auc(margins, y),
        "accuracy": float(((p >= threshold) == (y > 0)).mean()),
        "positive_rate": float((y > 0).mean()),
        "mean_prediction": float(p.mean()),
    }
