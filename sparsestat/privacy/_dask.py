"""Distributed aggregation of LDP reports with dask (optional extra ``dask``)."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import clone

from sparsestat._solvers.private_sums import theory_bounds
from sparsestat.privacy._nldp import LDPSparseLinearRegression
from sparsestat.privacy._reports import LDPReports
from sparsestat.privacy.accountant import BudgetAccountant

__all__ = ["fit_ldp_dask"]


def _quiet(func: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a partial aggregation without its estimate's warnings (the driver's merge warns)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return func(*args, **kwargs)


def _fit_block(params: dict, X: Any, y: Any, offset: int) -> Any:
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    model = LDPSparseLinearRegression(**params)
    ids = np.arange(offset, offset + X.shape[0], dtype=np.int64)
    return _quiet(model.partial_fit, X, y, user_ids=ids)


def _add_files(params: dict, items: Sequence[Any], simulation: bool) -> Any:
    model = LDPSparseLinearRegression(**params)
    for item in items:
        reports = item if isinstance(item, LDPReports) else LDPReports.load(item)
        _quiet(model.add_reports, reports, simulation=simulation)
    return model


def _merge(a: Any, b: Any) -> Any:
    return _quiet(a.merge, b)


def _check_rows(X: Any, y: Any, da: Any) -> tuple[Any, Any]:
    """Dask arrays with known, aligned row chunks (clear errors otherwise)."""
    X, y = da.asarray(X), da.asarray(y)
    if X.ndim != 2 or y.ndim != 1:
        raise ValueError(f"X must be 2-D and y 1-D; got shapes {X.shape} and {y.shape}")
    for name, arr in (("X", X), ("y", y)):
        if any(math.isnan(c) for c in arr.chunks[0]):
            raise ValueError(
                f"{name} has unknown chunk sizes (e.g. after boolean indexing or from a "
                f"dataframe); call {name}.compute_chunk_sizes() first, so that every chunk's "
                "first user id is known before any user reports"
            )
    if X.chunks[0] != y.chunks[0]:
        raise ValueError(
            f"X and y are chunked differently along the rows ({X.chunks[0]} vs "
            f"{y.chunks[0]}): rechunk one like the other (y.rechunk((X.chunks[0],)))"
        )
    if len(X.chunks[1]) != 1:
        X = X.rechunk({1: -1})
    return X, y


def _from_dataframe(X: Any, y: Any) -> tuple[Any, Any]:
    """Rows of a dask DataFrame (e.g. partitioned Parquet) as aligned dask arrays."""
    if isinstance(y, str):
        if y not in X.columns:
            raise ValueError(f"y={y!r} is not a column of X (columns: {list(X.columns)})")
        frame = X
        features = [c for c in X.columns if c != y]
    else:
        if getattr(y, "npartitions", None) != X.npartitions or (
            X.known_divisions and tuple(X.divisions) != tuple(y.divisions)
        ):
            raise ValueError(
                "X and y are partitioned differently (partitions "
                f"{X.npartitions} vs {getattr(y, 'npartitions', None)}); pass y as "
                "the name of a column of X, or align the two frames first"
            )
        features = list(X.columns)
        frame = X.assign(__sparsestat_y__=y)  # partition by partition (same partitioning)
        y = "__sparsestat_y__"
    # one array for features and response, so that their row chunks are the same; one pass
    # over the partitions for their lengths: each chunk's first user id is public
    rows = frame[features + [y]].to_dask_array()
    rows.compute_chunk_sizes()
    rows = rows.astype(np.float64)
    return rows[:, :-1], rows[:, -1]


def _tree(parts: list[Any], dask: Any) -> Any:
    while len(parts) > 1:
        nxt = [dask.delayed(_merge)(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            nxt.append(parts[-1])
        parts = nxt
    return parts[0]


def fit_ldp_dask(estimator, X=None, y=None, *, reports=None, simulation=False):
    """Aggregate LDP regression statistics on a dask cluster, one task per chunk or file.

    Two modes:

    * **reports** (deployment): ``reports`` lists privatised report files (or
      :class:`LDPReports`) made by the clients with
      :meth:`~sparsestat.privacy.LDPSparseLinearRegression.privatize`; each task loads its
      files and adds them to a server built from the estimator's public parameters
      (mismatched reports are refused), the partial sums are merged in a tree. The workers
      see privatised reports only.
    * **raw data** (simulation): ``X``, ``y`` hold every user's raw row (dask arrays, or a
      dask DataFrame such as ``dask.dataframe.read_parquet(...)``); each task privatises its
      chunk's users (ids = row positions) with the estimator's simulation samplers. The raw
      rows are shipped to the workers, so this simulates the protocol; the result carries
      no formal guarantee unless ``noise_backend="opendp"``.

    Either way the sums are exact, so the model equals the in-memory
    :meth:`~sparsestat.privacy.LDPSparseLinearRegression.fit` (raw data, same seed) or
    ``add_reports`` of the same reports, bit for bit, whatever the chunking and the number
    of workers.

    Parameters
    ----------
    estimator : LDPSparseLinearRegression
        Unfitted template; its public parameters are used (``simulate_aggregate`` must be
        False). In raw mode its ``accountant`` (a new unlimited one if None) is charged once
        per user, here on the client; it becomes the result's ``accountant_``.
    X : dask.array.Array or dask.dataframe.DataFrame of shape (n_users, n_features), default=None
        Raw mode: one row per user, with known chunk sizes (a DataFrame's partition lengths
        are computed in one pass).
    y : dask.array.Array, dask Series or str, default=None
        Raw mode: responses, chunked like ``X``; with a DataFrame, the name of its response
        column (or a Series partitioned like it).
    reports : sequence of path-like or LDPReports, default=None
        Reports mode: the report files (one task each).
    simulation : bool, default=False
        Reports mode: accept simulated reports (see ``add_reports``).

    Returns
    -------
    model : LDPSparseLinearRegression
        The fitted model (a new object).

    Notes
    -----
    In raw mode with ``bounds_X`` / ``bounds_y`` None, the theory defaults for the *total*
    number of users are fixed before any user reports (with a ``UserWarning``), so that
    every chunk uses the same public parameters. Memory per task: one chunk (or one report
    file) plus O(cv d^2) for its sums; what moves between workers is the O(cv d^2) sums.

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
    params = clone(estimator).get_params(deep=False)
    params["accountant"] = None
    if reports is not None:
        if X is not None or y is not None:
            raise ValueError("give either reports (deployment) or X and y (simulation)")
        items = [reports] if isinstance(reports, str | os.PathLike | LDPReports) else reports
        items = list(items)
        if not items:
            raise ValueError("reports is empty")
        parts = [dask.delayed(_add_files)(params, [item], simulation) for item in items]
        (partial,) = dask.compute(_tree(parts, dask))
        model = LDPSparseLinearRegression(**params)
        model.merge(partial)
        return model
    if X is None or y is None:
        raise ValueError("give X and y (raw rows, a simulation) or reports=")
    if hasattr(X, "to_dask_array"):  # a dask DataFrame, e.g. partitioned Parquet
        X, y = _from_dataframe(X, y)
    X, y = _check_rows(X, y, da)
    n, d = int(X.shape[0]), int(X.shape[1])
    if params["bounds_X"] is None or params["bounds_y"] is None:
        tau1, tau2 = theory_bounds(n, d)
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
    offsets = np.concatenate(([0], np.cumsum(X.chunks[0])[:-1])).astype(np.int64)
    parts = [
        dask.delayed(_fit_block)(params, xb, yb, int(off))
        for xb, yb, off in zip(X.to_delayed().ravel(), y.to_delayed().ravel(), offsets)
    ]
    (partial,) = dask.compute(_tree(parts, dask))
    accountant.spend(*charge, users=range(n))
    model = LDPSparseLinearRegression(**params)
    model.merge(partial)
    model.accountant = estimator.accountant
    model.accountant_ = accountant
    return model
