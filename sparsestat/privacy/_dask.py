"""Distributed aggregation of LDP reports with dask (optional extra ``dask``)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn.base import clone

from sparsestat.privacy._nldp import LDPSparseLinearRegression, _theory_bounds
from sparsestat.privacy.accountant import BudgetAccountant

__all__ = ["fit_ldp_dask"]


def _fit_block(params: dict, X: np.ndarray, y: np.ndarray, offset: int) -> Any:
    model = LDPSparseLinearRegression(**params)
    ids = np.arange(offset, offset + X.shape[0], dtype=np.int64)
    return model.partial_fit(np.asarray(X), np.asarray(y), user_ids=ids)


def _merge(a: Any, b: Any) -> Any:
    return a.merge(b)


def fit_ldp_dask(estimator, X, y):
    """Fit an :class:`LDPSparseLinearRegression` on dask arrays, one task per row chunk.

    Each chunk of users is privatised and summed on a worker (user ids are the global row
    indices, so each user's noise is the one the in-memory ``fit`` would draw); the small
    O(d^2) server states are then merged in a tree. With an int ``random_state`` the result
    is bit-for-bit the in-memory ``fit(X, y)``, because the sums are exact (fixed point).
    The computation runs on the active dask scheduler (e.g. a ``distributed.Client``).

    Parameters
    ----------
    estimator : LDPSparseLinearRegression
        Unfitted template; its parameters are used (``simulate_aggregate`` must be False).
        Its ``accountant`` (a new unlimited one if None) is charged once per user, here
        on the client; it becomes the result's ``accountant_``.
    X : dask.array.Array of shape (n_users, n_features)
        One row per user, chunked along rows only.
    y : dask.array.Array of shape (n_users,)
        Responses (rechunked to match ``X``).

    Returns
    -------
    model : LDPSparseLinearRegression
        The fitted model (a new object).

    Notes
    -----
    When ``bounds_X`` / ``bounds_y`` are None, the theory defaults for the *total* number of
    users are fixed before any user reports (with a ``UserWarning``), so that every chunk
    uses the same public parameters. Memory per task: one chunk plus O(cv d^2).

    References
    ----------
    .. [1] Rocklin, "Dask: Parallel Computation with Blocked algorithms and Task
       Scheduling", SciPy 2015.

    Examples
    --------
    >>> import numpy as np
    >>> import dask
    >>> import dask.array as da
    >>> from sparsestat.privacy import LDPSparseLinearRegression, fit_ldp_dask
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.uniform(-1, 1, (3000, 3)), rng.uniform(-1, 1, 3000)
    >>> est = LDPSparseLinearRegression(bounds_X=1.0, bounds_y=1.0, random_state=0)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     dist = fit_ldp_dask(est, da.from_array(X, chunks=1000), da.from_array(y, chunks=1000))
    >>> bool(np.array_equal(dist.coef_, est.fit(X, y).coef_))
    True
    """
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "fit_ldp_dask needs the 'dask' extra: pip install 'sparsestat[dask]'"
        ) from exc
    if not isinstance(estimator, LDPSparseLinearRegression):
        raise TypeError("estimator must be an LDPSparseLinearRegression")
    if estimator.simulate_aggregate:
        raise ValueError(
            "fit_ldp_dask aggregates per-user reports; simulate_aggregate must be False"
        )
    X = da.asarray(X)
    y = da.asarray(y)
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X must be 2-D and y 1-D with as many rows; got {X.shape}, {y.shape}")
    if len(X.chunks[1]) != 1:
        X = X.rechunk({1: -1})
    y = y.rechunk((X.chunks[0],))
    n, d = int(X.shape[0]), int(X.shape[1])
    params = clone(estimator).get_params(deep=False)
    params["accountant"] = None
    if params["bounds_X"] is None or params["bounds_y"] is None:
        tau1, tau2 = _theory_bounds(n, d)
        warnings.warn(
            f"bounds not given: using the theory defaults tau1 = {tau1:.4g}, tau2 = {tau2:.4g} "
            f"for n = {n}; set them from domain knowledge",
            UserWarning,
            stacklevel=2,
        )
        params["bounds_X"] = params["bounds_X"] if params["bounds_X"] is not None else tau1
        params["bounds_y"] = params["bounds_y"] if params["bounds_y"] is not None else tau2
    eps = float(estimator.epsilon)
    charge = (eps, 0.0 if math.isinf(eps) else float(estimator.delta))
    accountant = estimator.accountant if estimator.accountant is not None else BudgetAccountant()
    accountant.check(*charge, users=range(n))
    offsets = np.concatenate(([0], np.cumsum(X.chunks[0])[:-1]))
    parts = [
        dask.delayed(_fit_block)(params, xb, yb, int(off))
        for xb, yb, off in zip(X.to_delayed().ravel(), y.to_delayed().ravel(), offsets)
    ]
    while len(parts) > 1:
        nxt = [dask.delayed(_merge)(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            nxt.append(parts[-1])
        parts = nxt
    (model,) = dask.compute(parts[0])
    accountant.spend(*charge, users=range(n))
    model.accountant = estimator.accountant
    model.accountant_ = accountant
    return model
