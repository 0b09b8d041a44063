from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from training.evaluation.metrics import auc_mann_whitney, bootstrap_auc, precision_at_k


def test_auc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(y * 0.8, 1.0), 1)  # rounded: many ties
    assert auc_mann_whitney(y, s) == pytest.approx(roc_auc_score(y, s))


def test_bootstrap_ci_brackets_the_auc_and_narrows_with_n() -> None:
    rng = np.random.default_rng(1)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 2, n)
        return y, rng.normal(y * 1.0, 1.0)

    small = bootstrap_auc(*sample(60), n_boot=400, seed=3)
    large = bootstrap_auc(*sample(2000), n_boot=400, seed=3)
    for r in (small, large):
        assert r.low <= r.auc <= r.high
    assert (large.high - large.low) < (small.high - small.low)
    assert 0.70 < large.auc < 0.82  # true AUC of N(1,1) vs N(0,1) is 0.76


def test_bootstrap_is_deterministic_and_handles_one_class() -> None:
    y = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    s = np.array([0.1, 0.9, 0.3, 0.6, 0.2, 0.4, 0.5, 0.8])
    assert bootstrap_auc(y, s, 200, seed=7) == bootstrap_auc(y, s, 200, seed=7)
    single = bootstrap_auc(np.ones(5, int), np.arange(5.0))
    assert math.isnan(single.auc) and single.n_boot == 0


def test_precision_at_k() -> None:
    y = np.array([1, 0, 1, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3])
    assert precision_at_k(y, s, 2) == 0.5
    assert precision_at_k(y, s, 3) == pytest.approx(2 / 3)
    assert precision_at_k(y, s, 100) == 0.5
