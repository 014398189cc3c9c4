"""Metrics against scikit-learn as the oracle."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from ftrl_cli import metrics


@pytest.mark.parametrize("seed", range(5))
def test_auc_and_logloss_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = 2000
    y = (rng.random(n) < 0.3).astype(float)
    m = rng.normal(size=n) + y
    m[::7] = np.round(m[::7], 1)  # ties
    p = 1 / (1 + np.exp(-m))
    assert metrics.roc_auc(m, y) == pytest.approx(roc_auc_score(y, m), abs=1e-12)
    assert metrics.logloss(m, y) == pytest.approx(log_loss(y, p), rel=1e-10)
    s = metrics.summary(m, y)
    assert s["accuracy"] == pytest.approx(accuracy_score(y, p >= 0.5))
    assert s["n"] == n and s["positive_rate"] == pytest.approx(y.mean())


def test_all_ties_give_half():
    y = np.array([0, 1, 0, 1.0])
    assert metrics.roc_auc(np.zeros(4), y) == 0.5


def test_one_class_auc_is_nan():
    assert np.isnan(metrics.roc_auc(np.arange(3.0), np.ones(3)))


def test_extreme_margins_do_not_overflow():
    m = np.array([800.0, -800.0])
    y = np.array([0.0, 1.0])
    assert metrics.logloss(m, y) == pytest.approx(800.0)
