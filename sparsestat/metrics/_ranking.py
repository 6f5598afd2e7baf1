"""Top-k ranking metrics for recommenders: recall@k and NDCG@k."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["ndcg_at_k", "recall_at_k"]


def _prepare(y_true: Any, y_score: Any, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense boolean relevance, top-k item indices per row, and the rows that count."""
    rel = y_true.toarray() if sp.issparse(y_true) else np.asarray(y_true)
    score = y_score.toarray() if sp.issparse(y_score) else np.asarray(y_score, dtype=float)
    if rel.ndim == 1:
        rel, score = rel[None, :], score[None, :]
    if rel.shape != score.shape or rel.ndim != 2:
        raise ValueError(
            f"y_true and y_score must be 2-D with the same shape; got {rel.shape} and "
            f"{score.shape}."
        )
    if np.isnan(score).any():
        raise ValueError("y_score contains NaN.")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}.")
    rel = rel > 0
    k = min(int(k), rel.shape[1])
    # stable sort on the negated score: among equal scores the lower item index ranks first
    top = np.argsort(-score, axis=1, kind="stable")[:, :k]
    rows = rel.sum(axis=1) > 0
    return rel, top, rows


def recall_at_k(y_true: Any, y_score: Any, k: int = 10) -> float:
    """Mean recall@k over the users (rows) with at least one relevant item.

    Recall@k of a user is the number of relevant items among the ``k`` highest scores,
    divided by the user's number of relevant items.

    Parameters
    ----------
    y_true : array-like or sparse matrix of shape (n_users, n_items)
        Relevance; nonzero entries are relevant (held-out interactions).
    y_score : array-like of shape (n_users, n_items)
        Predicted scores. Set items that must not be recommended (e.g. seen in training)
        to ``-inf``.
    k : int, default=10
        Length of the recommendation list.

    Returns
    -------
    recall : float
        Average over users with at least one relevant item (NaN if there is none).

    Notes
    -----
    Ties are broken in favour of the lower item index. The denominator is the number of
    relevant items (as in LightGCN and DSL), so a user with more than ``k`` relevant items
    cannot reach 1. Cost: one sort per user, O(n_users n_items log n_items).

    References
    ----------
    Wang et al., "Dynamic Sparse Learning: A Novel Paradigm for Efficient Recommendation",
    WSDM 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.metrics import recall_at_k
    >>> y_true = np.array([[1, 0, 1, 0], [0, 1, 0, 0]])
    >>> y_score = np.array([[0.9, 0.8, 0.1, 0.0], [0.2, 0.9, 0.3, 0.1]])
    >>> recall_at_k(y_true, y_score, k=2)
    0.75
    """
    rel, top, rows = _prepare(y_true, y_score, k)
    if not rows.any():
        return float("nan")
    hits = np.take_along_axis(rel, top, axis=1).sum(axis=1)
    return float(np.mean(hits[rows] / rel[rows].sum(axis=1)))


def ndcg_at_k(y_true: Any, y_score: Any, k: int = 10) -> float:
    """Mean normalised discounted cumulative gain at k, binary relevance.

    ``DCG@k = sum_{r < k} rel(top_r) / log2(r + 2)``, divided by the DCG of an ideal list
    (all relevant items first), averaged over users with at least one relevant item.

    Parameters
    ----------
    y_true : array-like or sparse matrix of shape (n_users, n_items)
        Relevance; nonzero entries are relevant.
    y_score : array-like of shape (n_users, n_items)
        Predicted scores (``-inf`` for excluded items).
    k : int, default=10
        Cut-off.

    Returns
    -------
    ndcg : float
        In [0, 1] (NaN if no user has a relevant item).

    Notes
    -----
    Equals :func:`sklearn.metrics.ndcg_score` with binary relevance and tie-free scores,
    except that users without relevant items are skipped rather than scored 0.

    References
    ----------
    Järvelin and Kekäläinen, "Cumulated gain-based evaluation of IR techniques", ACM TOIS
    20(4), 2002.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.metrics import ndcg_at_k
    >>> round(ndcg_at_k(np.array([[0, 1, 0]]), np.array([[0.9, 0.5, 0.1]]), k=2), 4)
    0.6309
    """
    rel, top, rows = _prepare(y_true, y_score, k)
    if not rows.any():
        return float("nan")
    discount = 1.0 / np.log2(np.arange(top.shape[1]) + 2.0)
    dcg = (np.take_along_axis(rel, top, axis=1) * discount).sum(axis=1)
    n_rel = np.minimum(rel.sum(axis=1), top.shape[1])
    idcg = np.cumsum(discount)[np.maximum(n_rel - 1, 0)]
    return float(np.mean(dcg[rows] / idcg[rows]))
