"""PNG plots of an evaluation and of a training history (matplotlib, an optional extra).

matplotlib is imported inside the functions, never at module import, so the rest of the
package works without it. Figures are drawn on matplotlib's Agg canvas directly (no
pyplot, no global backend switch, safe in threads and headless).
"""

from __future__ import annotations

import math
import os

import numpy as np

from . import metrics
from .errors import ConfigError, DataError

MISSING_MATPLOTLIB = "--plot needs matplotlib: pip install 'ftrl-cli[plot]'"
MAX_POINTS = 2000  # per drawn curve; longer curves are thinned by index


def _figure(width: float, height: float):
    """A new Figure on an Agg canvas; ConfigError when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401  (checked first: cached submodules would hide its absence)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ConfigError(MISSING_MATPLOTLIB) from e
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> str:
    """Write the PNG; a path that cannot be written is a one-line DataError naming it."""
    path = os.fspath(path)
    try:
        fig.savefig(path, format="png")
    except OSError as e:
        where = os.path.dirname(os.path.abspath(path))
        hint = (f"the directory {where} does not exist" if not os.path.isdir(where)
                else e.strerror or str(e))
        raise DataError(f"{path}: cannot write the plot ({hint}); give --plot a writable path") from None
    return path


def _thin(*arrays: np.ndarray):
    """At most MAX_POINTS evenly spaced points of each array, first and last kept."""
    n = len(arrays[0])
    if n <= MAX_POINTS:
        return arrays
    idx = np.unique(np.linspace(0, n - 1, MAX_POINTS).round().astype(np.int64))
    return tuple(a[idx] for a in arrays)


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def _unit_axes(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)


def plot_eval(margins, y, path, weights=None, bins: int = 10) -> str:
    """Write one PNG with three panels: ROC curve, precision-recall curve and a
    reliability diagram (`bins` equal-width bins, with the share of weight per bin).
    Panels that are undefined for the data (one class) say so instead. Returns path."""
    fig = _figure(15, 5.2)
    m, yy, w = metrics._prepare(margins, y, weights)
    s = metrics.summary(m, yy, weights=w, bins=bins)
    ax_roc, ax_pr, ax_rel = fig.subplots(1, 3)
    weighted = "" if w is None else ", weighted"

    # ROC
    _unit_axes(ax_roc, "false positive rate", "true positive rate", "ROC curve")
    ax_roc.plot([0, 1], [0, 1], ls="--", lw=1, color="0.6", label="chance")
    if math.isnan(s["auc"]):
        _note(ax_roc, "undefined: needs both classes")
    else:
        fpr, tpr, _ = metrics.roc_curve(m, yy, w)
        fpr, tpr = _thin(fpr, tpr)
        ax_roc.plot(fpr, tpr, lw=2, color="C0", label=f"AUC = {s['auc']:.4f}")
    ax_roc.legend(loc="lower right")

    # precision-recall
    _unit_axes(ax_pr, "recall", "precision", "Precision-recall curve")
    if math.isnan(s["pr_auc"]):
        _note(ax_pr, "undefined: needs positives")
    else:
        prec, rec, _ = metrics.precision_recall_curve(m, yy, w)
        prec, rec = _thin(prec, rec)
        ax_pr.step(rec, prec, where="post", lw=2, color="C1", label=f"AP = {s['pr_auc']:.4f}")
        ax_pr.axhline(s["positive_rate"], ls="--", lw=1, color="0.6",
                      label=f"base rate = {s['positive_rate']:.4f}")
        ax_pr.legend(loc="upper right")

    # reliability diagram
    _unit_axes(ax_rel, "mean predicted probability", "fraction positive",
               f"Reliability ({bins} bins), ECE = {s['ece']:.4f}")
    ax_rel.plot([0, 1], [0, 1], ls="--", lw=1, color="0.6", label="perfect calibration")
    table = s["reliability"]
    if table:
        total = sum(r["weight"] for r in table)
        lows = [r["lower"] for r in table]
        widths = [r["upper"] - r["lower"] for r in table]
        shares = [r["weight"] / total for r in table]
        ax_rel.bar(lows, shares, width=widths, align="edge", color="0.85", edgecolor="0.7",
                   label="share of weight" if w is not None else "share of rows", zorder=0)
        ax_rel.plot([r["mean_prediction"] for r in table], [r["fraction_positive"] for r in table],
                    marker="o", lw=2, color="C2", label="model")
    else:
        _note(ax_rel, "no data")
    ax_rel.legend(loc="upper left")

    fig.suptitle(f"n = {s['n']:,}{weighted}, log loss = {s['logloss']:.5f}, "
                 f"normalized entropy = {s['normalized_entropy']:.4f}")
    return _save(fig, path)


def _number(v) -> float | None:
    """v as a finite float, else None (missing, None, NaN, not a number)."""
    if isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


TRAIN_KEYS = ("train_logloss", "progressive_logloss")
VALIDATION_KEYS = ("validation_logloss", "val_logloss")


def _first(record: dict, keys) -> float | None:
    for k in keys:
        v = _number(record.get(k))
        if v is not None:
            return v
    return None


def plot_history(history, path) -> str:
    """Write a PNG of training and validation log loss against examples seen.

    `history` is a list of dicts like {"examples": int, "train_logloss": float,
    "validation_logloss": float | None, ...}. Missing, None or NaN values are skipped;
    if any record lacks a numeric "examples", the x axis is the record number instead.
    The x axis is logarithmic when it spans two decades or more. Returns path.
    """
    fig = _figure(8, 5)
    records = [r for r in (history or []) if isinstance(r, dict)]
    xs = [_number(r.get("examples")) for r in records]
    by_examples = bool(records) and all(x is not None for x in xs)
    if not by_examples:
        xs = [float(i + 1) for i in range(len(records))]
    ax = fig.subplots()
    drawn = False
    for keys, label, color, marker in ((TRAIN_KEYS, "training (progressive)", "C0", "."),
                                       (VALIDATION_KEYS, "validation", "C3", "o")):
        pts = [(x, v) for x, v in zip(xs, (_first(r, keys) for r in records)) if v is not None]
        if pts:
            px, py = zip(*pts)
            ax.plot(px, py, marker=marker, lw=2, color=color, label=label)
            drawn = True
    if drawn:
        if by_examples and min(xs) > 0 and max(xs) / min(xs) >= 100:
            ax.set_xscale("log")
        ax.legend()
    else:
        _note(ax, "no loss recorded")
    ax.set_xlabel("examples" if by_examples else "record")
    ax.set_ylabel("log loss")
    ax.set_title("Training history")
    ax.grid(True, alpha=0.3)
    return _save(fig, path)
