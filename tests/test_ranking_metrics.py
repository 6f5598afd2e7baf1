"""Ranking metrics against brute force and scikit-learn's ndcg_score."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import ndcg_score

from sparsestat.metrics import ndcg_at_k, recall_at_k


def _data(seed=0, n_users=20, n_items=15):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((n_users, n_items)) < 0.2).astype(int)
    y_true[0] = 0  # a user without relevant items is skipped
    y_score = rng.permutation(n_users * n_items).reshape(n_users, n_items).astype(float)
    return y_true, y_score


@pytest.mark.parametrize("k", [1, 3, 10, 15, 30])
def test_recall_brute_force(k):
    y_true, y_score = _data()
    vals = []
    for t, s in zip(y_true, y_score):
        if t.sum() == 0:
            continue
        top = sorted(range(len(s)), key=lambda j: -s[j])[:k]
        vals.append(sum(t[j] for j in top) / t.sum())
    assert recall_at_k(y_true, y_score, k) == pytest.approx(np.mean(vals))
    assert recall_at_k(sp.csr_matrix(y_true), y_score, k) == pytest.approx(np.mean(vals))


@pytest.mark.parametrize("k", [1, 3, 10, 15])
def test_ndcg_matches_sklearn(k):
    y_true, y_score = _data(1)
    rows = y_true.sum(1) > 0
    expected = ndcg_score(y_true[rows], y_score[rows], k=k)
    assert ndcg_at_k(y_true, y_score, k) == pytest.approx(expected)


def test_perfect_and_worst_rankings():
    y_true, _ = _data(2)
    assert ndcg_at_k(y_true, y_true + 0.0, 15) == pytest.approx(1.0)
    assert recall_at_k(y_true, y_true + 0.0, 15) == pytest.approx(1.0)
    assert recall_at_k(y_true, -y_true + 0.0, 1) == 0.0
    assert np.isnan(recall_at_k(np.zeros((2, 3)), np.ones((2, 3)), 2))


def test_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        recall_at_k(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="positive integer"):
        ndcg_at_k(np.ones((2, 3)), np.ones((2, 3)), k=0)
    with pytest.raises(ValueError, match="NaN"):
        ndcg_at_k(np.ones((2, 3)), np.full((2, 3), np.nan))
