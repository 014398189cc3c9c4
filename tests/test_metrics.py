"""Metrics against scikit-learn as the oracle; NE and ECE against plain-Python loops."""

import json
import math

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from ftrl_cli import metrics
from ftrl_cli.errors import DataError

SUMMARY_KEYS = {"n", "logloss", "auc", "pr_auc", "accuracy", "precision", "recall", "f1",
                "positive_rate", "mean_prediction", "normalized_entropy",
                "best_constant_logloss", "ece", "reliability", "threshold"}


def sigmoid(m):
    return 1 / (1 + np.exp(-m))


def make(seed, n=2000, rate=0.3, weighted=False):
    """Labels, margins with many ties, optional weights (some zero)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(float)
    m = rng.normal(size=n) + y
    m[::7] = np.round(m[::7], 1)  # ties, across classes
    m[::11] = 0.0  # p == 0.5 exactly: on the default threshold
    w = None
    if weighted:
        w = rng.exponential(size=n)
        w[::13] = 0.0
    return m, y, w


def test_sigmoid_matches_numpy_and_does_not_overflow():
    m = np.array([-800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0])
    with np.errstate(over="ignore"):
        assert np.allclose(metrics.probabilities(m), sigmoid(m), rtol=1e-15, atol=0)


# --------------------------------------------------------------------------------------
# against scikit-learn, unweighted and weighted
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_auc_and_logloss_match_sklearn(seed, weighted):
    m, y, w = make(seed, weighted=weighted)
    p = sigmoid(m)
    assert metrics.roc_auc(m, y, w) == pytest.approx(roc_auc_score(y, m, sample_weight=w), abs=1e-12)
    assert metrics.logloss(m, y, w) == pytest.approx(log_loss(y, p, sample_weight=w), rel=1e-10)
    s = metrics.summary(m, y, weights=w)
    assert s["auc"] == pytest.approx(roc_auc_score(y, m, sample_weight=w), abs=1e-12)
    assert s["logloss"] == pytest.approx(log_loss(y, p, sample_weight=w), rel=1e-10)
    assert s["n"] == len(y)
    assert s["positive_rate"] == pytest.approx(np.average(y, weights=w), rel=1e-12)
    assert s["mean_prediction"] == pytest.approx(np.average(p, weights=w), rel=1e-12)
    if weighted:
        assert s["weight_sum"] == pytest.approx(w.sum(), rel=1e-12)
    else:
        assert "weight_sum" not in s


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_average_precision_matches_sklearn(seed, weighted):
    m, y, w = make(seed, weighted=weighted)
    expected = average_precision_score(y, m, sample_weight=w)
    assert metrics.average_precision(m, y, w) == pytest.approx(expected, abs=1e-12)
    assert metrics.summary(m, y, weights=w)["pr_auc"] == pytest.approx(expected, abs=1e-12)


def test_average_precision_groups_ties_by_threshold():
    # one tie group holding a positive and a negative: a single step, precision 1/2 there
    y = np.array([1.0, 0.0, 1.0, 0.0])
    m = np.array([2.0, 1.0, 1.0, 0.0])
    assert metrics.average_precision(m, y) == pytest.approx(0.5 * 1 + 0.5 * (2 / 3))
    assert metrics.average_precision(m, y) == pytest.approx(average_precision_score(y, m))
    # all scores tied: AP is the base rate
    assert metrics.average_precision(np.zeros(4), y) == pytest.approx(0.5)


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.8, 0.0, 1.0])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_threshold_metrics_match_sklearn(seed, weighted, threshold):
    m, y, w = make(seed, weighted=weighted)
    pred = sigmoid(m) >= threshold
    s = metrics.summary(m, y, threshold=threshold, weights=w)
    kw = {"sample_weight": w}
    assert s["threshold"] == threshold
    assert s["accuracy"] == pytest.approx(accuracy_score(y, pred, **kw), abs=1e-12)
    assert s["precision"] == pytest.approx(precision_score(y, pred, zero_division=0, **kw), abs=1e-12)
    assert s["recall"] == pytest.approx(recall_score(y, pred, zero_division=0, **kw), abs=1e-12)
    assert s["f1"] == pytest.approx(f1_score(y, pred, zero_division=0, **kw), abs=1e-12)
    t = metrics.threshold_metrics(m, y, threshold, w)
    assert t == {k: s[k] for k in ("accuracy", "precision", "recall", "f1")}
    assert metrics.f1(m, y, threshold, w) == s["f1"]


def test_threshold_is_inclusive():
    # margin 0 is probability exactly 0.5: positive at threshold 0.5
    t = metrics.threshold_metrics(np.array([0.0, -1.0]), np.array([1.0, 0.0]), 0.5)
    assert t == {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0}


def test_zero_division_is_zero_like_sklearn():
    y = np.array([1.0, 0.0, 1.0])
    m = np.full(3, -5.0)  # nothing predicted positive: precision 0/0
    t = metrics.threshold_metrics(m, y)
    pred = sigmoid(m) >= 0.5
    assert t["precision"] == 0.0 == precision_score(y, pred, zero_division=0)
    assert t["f1"] == 0.0 == f1_score(y, pred, zero_division=0)
    y0 = np.zeros(3)  # no positives: recall 0/0, F1 0/0
    t0 = metrics.threshold_metrics(m, y0)
    assert t0["recall"] == 0.0 == recall_score(y0, pred, zero_division=0)
    assert t0["f1"] == 0.0 == f1_score(y0, pred, zero_division=0)
    assert t0["accuracy"] == 1.0


@pytest.mark.parametrize("bins", [10, 5, 7, 1])
@pytest.mark.parametrize("seed", range(4))
def test_reliability_matches_calibration_curve(seed, bins):
    m, y, _ = make(seed)
    m = m * 2.0  # spread predictions over all bins
    # probabilities exactly on bin edges, to pin the edge convention
    edges = np.linspace(0.0, 1.0, bins + 1)
    edge_p = edges[1:-1]
    m[: len(edge_p)] = np.log(edge_p / (1 - edge_p))
    p = metrics.probabilities(m)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=bins, strategy="uniform")
    _, table = metrics.reliability(m, y, bins)
    assert [r["fraction_positive"] for r in table] == pytest.approx(prob_true, abs=1e-12)
    assert [r["mean_prediction"] for r in table] == pytest.approx(prob_pred, abs=1e-12)
    # same bin for every row as calibration_curve's searchsorted on the interior edges
    assert np.array_equal(metrics.bin_index(p, bins), np.searchsorted(edges[1:-1], p))


def test_reliability_edge_convention():
    # (lower, upper]: 0.5 lands in bin [0.4, 0.5], 0 in the first bin, 1 in the last
    m = np.array([0.0, -800.0, 800.0])
    _, table = metrics.reliability(m, np.array([1.0, 0.0, 1.0]), bins=10)
    assert [(r["lower"], r["upper"], r["count"]) for r in table] == [
        (0.0, 0.1, 1), (0.4, 0.5, 1), (0.9, 1.0, 1)]


@pytest.mark.parametrize("seed", range(3))
def test_integer_weights_equal_repeated_rows(seed):
    m, y, _ = make(seed, n=500)
    rng = np.random.default_rng(100 + seed)
    w = rng.integers(0, 4, size=len(y)).astype(float)
    a = metrics.summary(m, y, weights=w)
    b = metrics.summary(np.repeat(m, w.astype(int)), np.repeat(y, w.astype(int)))
    assert a["weight_sum"] == b["n"]
    for k in SUMMARY_KEYS - {"n", "reliability"}:
        assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-12), k
    for ra, rb in zip(a["reliability"], b["reliability"], strict=True):
        assert ra["weight"] == rb["count"]
        for k in ("lower", "upper", "mean_prediction", "fraction_positive"):
            assert ra[k] == pytest.approx(rb[k], rel=1e-12), k
    # weighted reliability fractions = calibration_curve on the repeated rows
    rep = np.repeat(np.arange(len(y)), w.astype(int))
    prob_true, prob_pred = calibration_curve(y[rep], sigmoid(m[rep]), n_bins=10)
    assert [r["fraction_positive"] for r in a["reliability"]] == pytest.approx(prob_true, abs=1e-12)
    assert [r["mean_prediction"] for r in a["reliability"]] == pytest.approx(prob_pred, abs=1e-12)


# --------------------------------------------------------------------------------------
# NE and ECE against plain-Python loops
# --------------------------------------------------------------------------------------

def py_logloss(m, y, w):
    num = den = 0.0
    for mi, yi, wi in zip(m, y, w):
        p = 1.0 / (1.0 + math.exp(-mi))
        num += wi * -(yi * math.log(p) + (1 - yi) * math.log(1 - p))
        den += wi
    return num / den


def py_ne(m, y, w):
    pos = sum(wi for yi, wi in zip(y, w) if yi > 0)
    rate = pos / sum(w)
    h = -(rate * math.log(rate) + (1 - rate) * math.log(1 - rate))
    return py_logloss(m, y, w) / h, h


def py_ece(m, y, w, bins):
    sums = [[0.0, 0.0, 0.0, 0] for _ in range(bins)]  # weight, w*p, w*y, count
    for mi, yi, wi in zip(m, y, w):
        p = 1.0 / (1.0 + math.exp(-mi))
        k = 0
        while k < bins - 1 and p > (k + 1) / bins:  # (lower, upper], like calibration_curve
            k += 1
        s = sums[k]
        s[0] += wi
        s[1] += wi * p
        s[2] += wi * (1.0 if yi > 0 else 0.0)
        s[3] += 1
    total = sum(s[0] for s in sums)
    ece = 0.0
    table = []
    for k, (ws, ps, ys, c) in enumerate(sums):
        if ws > 0:
            ece += abs(ps / ws - ys / ws) * ws / total
            table.append((k / bins, (k + 1) / bins, c, ws, ps / ws, ys / ws))
    return ece, table


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_normalized_entropy_against_loop(seed, weighted):
    m, y, w = make(seed, n=700, rate=0.2, weighted=weighted)
    wl = [1.0] * len(y) if w is None else list(w)
    ne, h = py_ne(list(m), list(y), wl)
    s = metrics.summary(m, y, weights=w)
    assert s["normalized_entropy"] == pytest.approx(ne, rel=1e-10)
    assert s["best_constant_logloss"] == pytest.approx(h, rel=1e-12)
    assert metrics.normalized_entropy(m, y, w) == pytest.approx(ne, rel=1e-10)
    assert metrics.best_constant_logloss(y, w) == pytest.approx(h, rel=1e-12)
    # predicting the base rate everywhere gives NE 1
    rate = np.average(y, weights=w)
    const = np.full(len(y), math.log(rate / (1 - rate)))
    assert metrics.normalized_entropy(const, y, w) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("bins", [10, 4, 15])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_ece_against_loop(seed, weighted, bins):
    m, y, w = make(seed, n=700, weighted=weighted)
    m = 1.5 * m
    wl = [1.0] * len(y) if w is None else list(w)
    ece, table = py_ece(list(m), list(y), wl, bins)
    s = metrics.summary(m, y, weights=w, bins=bins)
    assert s["ece"] == pytest.approx(ece, rel=1e-10, abs=1e-14)
    assert len(s["reliability"]) == len(table)
    for r, (lo, hi, c, ws, mp, fp) in zip(s["reliability"], table):
        assert r["lower"] == pytest.approx(lo, abs=1e-15) and r["upper"] == pytest.approx(hi, abs=1e-15)
        assert r["count"] == c
        assert r["weight"] == pytest.approx(ws, rel=1e-12)
        assert r["mean_prediction"] == pytest.approx(mp, rel=1e-12)
        assert r["fraction_positive"] == pytest.approx(fp, rel=1e-12, abs=1e-15)


def test_reliability_omits_empty_and_zero_weight_bins():
    m = np.array([-3.0, -3.0, 3.0, 3.0])  # p ~ 0.047 and ~ 0.953
    y = np.array([0.0, 1.0, 1.0, 1.0])
    ece, table = metrics.reliability(m, y, 10)
    assert [(r["lower"], r["count"]) for r in table] == [(0.0, 2), (0.9, 2)]
    p = sigmoid(3.0)
    assert ece == pytest.approx(0.5 * abs((1 - p) - 0.5) + 0.5 * abs(p - 1.0))
    ece_w, table_w = metrics.reliability(m, y, 10, weights=np.array([1.0, 1.0, 0.0, 0.0]))
    assert [r["lower"] for r in table_w] == [0.0]
    assert ece_w == pytest.approx(abs((1 - p) - 0.5))


# --------------------------------------------------------------------------------------
# summary shape, edge cases
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("weighted", [False, True])
def test_summary_keys_and_json(weighted):
    m, y, w = make(0, n=300, weighted=weighted)
    s = metrics.summary(m, y, threshold=0.4, weights=w, bins=8)
    assert SUMMARY_KEYS <= set(s)
    assert ("weight_sum" in s) == weighted
    assert s["bins"] == 8 and s["threshold"] == 0.4
    json.loads(json.dumps(s))  # serializable
    for r in s["reliability"]:
        assert set(r) == {"lower", "upper", "count", "weight", "mean_prediction", "fraction_positive"}
    assert sum(r["count"] for r in s["reliability"]) <= len(y)
    assert sum(r["weight"] for r in s["reliability"]) == pytest.approx(s.get("weight_sum", len(y)))


def test_summary_default_matches_old_call():
    m, y, _ = make(1)
    assert metrics.summary(m, y) == metrics.summary(m, y, 0.5, None, 10)


def test_all_ties_give_half():
    y = np.array([0, 1, 0, 1.0])
    assert metrics.roc_auc(np.zeros(4), y) == 0.5
    assert metrics.roc_auc(np.zeros(4), y, np.array([1.0, 2.0, 3.0, 4.0])) == 0.5


def test_weighted_tie_counts_one_half():
    # one positive (weight 3) tied with one negative (weight 1), another negative below
    y = np.array([1.0, 0.0, 0.0])
    m = np.array([1.0, 1.0, 0.0])
    w = np.array([3.0, 1.0, 2.0])
    # pairs: (pos, neg tied) weight 3*1 counts 1/2; (pos, neg below) weight 3*2 counts 1
    assert metrics.roc_auc(m, y, w) == pytest.approx((0.5 * 3 + 6) / 9)
    assert metrics.roc_auc(m, y, w) == pytest.approx(roc_auc_score(y, m, sample_weight=w))


def test_one_class_is_nan():
    m = np.arange(3.0)
    assert np.isnan(metrics.roc_auc(m, np.ones(3)))
    assert np.isnan(metrics.roc_auc(m, np.zeros(3)))
    s = metrics.summary(m, np.zeros(3))
    assert np.isnan(s["auc"]) and np.isnan(s["pr_auc"]) and np.isnan(s["normalized_entropy"])
    assert s["best_constant_logloss"] == 0.0
    assert s["precision"] == s["recall"] == s["f1"] == 0.0
    s1 = metrics.summary(m, np.ones(3))
    assert np.isnan(s1["auc"]) and np.isnan(s1["normalized_entropy"])
    assert s1["pr_auc"] == 1.0 == average_precision_score(np.ones(3), m)
    # a class present only with zero weight counts as absent
    assert np.isnan(metrics.roc_auc(m, np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 1.0])))


def test_empty_and_zero_weight_summary():
    s = metrics.summary(np.empty(0), np.empty(0))
    assert s["n"] == 0 and s["reliability"] == []
    assert all(np.isnan(s[k]) for k in SUMMARY_KEYS - {"n", "reliability", "threshold"})
    s = metrics.summary(np.zeros(2), np.array([0.0, 1.0]), weights=np.zeros(2))
    assert s["n"] == 2 and s["weight_sum"] == 0.0 and np.isnan(s["logloss"])


def test_bad_weights():
    with pytest.raises(DataError):
        metrics.summary(np.zeros(2), np.array([0.0, 1.0]), weights=np.array([1.0, -1.0]))
    with pytest.raises(DataError):
        metrics.logloss(np.zeros(2), np.array([0.0, 1.0]), np.array([1.0, np.nan]))
    with pytest.raises(ValueError):
        metrics.roc_auc(np.zeros(2), np.array([0.0, 1.0]), np.ones(3))


def test_extreme_margins_do_not_overflow():
    m = np.array([800.0, -800.0])
    y = np.array([0.0, 1.0])
    assert metrics.logloss(m, y) == pytest.approx(800.0)
    with np.errstate(all="raise"):
        s = metrics.summary(m, y)
    assert s["logloss"] == pytest.approx(800.0) and s["auc"] == 0.0


def test_ranking_uses_margins_not_saturated_probabilities():
    # both probabilities round to 1.0 in float64; the margins still order them
    m = np.array([40.0, 50.0])
    y = np.array([0.0, 1.0])
    assert metrics.probabilities(m)[0] == metrics.probabilities(m)[1] == 1.0
    assert metrics.roc_auc(m, y) == 1.0 and metrics.average_precision(m, y) == 1.0


def test_curves():
    m, y, w = make(2, n=400, weighted=True)
    fpr, tpr, thr = metrics.roc_curve(m, y, w)
    assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(metrics.roc_auc(m, y, w), abs=1e-12)
    prec, rec, _ = metrics.precision_recall_curve(m, y, w)
    assert rec[0] == 0.0 and rec[-1] == 1.0 and prec[0] == 1.0
    assert (np.diff(rec) * prec[1:]).sum() == pytest.approx(metrics.average_precision(m, y, w), abs=1e-12)
    with pytest.raises(ValueError):
        metrics.roc_curve(m, np.zeros_like(y))
