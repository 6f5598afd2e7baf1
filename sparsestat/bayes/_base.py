"""Pieces shared by the SBL estimators: dense-input validation, fitted attributes, R^2.

Not an estimator module: :mod:`sparsestat.bayes._sbl` and
:mod:`sparsestat.bayes._kronecker_sbl` both build on it; the EM itself is
:func:`sparsestat._solvers.sbl.sbl_em`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sparsestat._kernels._dispatch import get_namespace, to_numpy
from sparsestat._solvers.sbl import EMResult
from sparsestat.utils import validate_complex_data
from sparsestat.utils._compat import validate_data


def require_y(est: Any, y: Any) -> None:
    """Raise the message scikit-learn expects when ``y`` is missing."""
    if y is None:
        raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None.")


def is_complex_input(*arrays: Any) -> bool:
    """Whether any of the (host) array-likes is complex."""
    for a in arrays:
        if a is None:
            continue
        try:
            if np.iscomplexobj(a):
                return True
        except (TypeError, ValueError):
            continue
    return False


def validate_dense(est: Any, X: Any, y: Any = None, *, reset: bool = True) -> Any:
    """Validate a dense host ``X`` (and ``y``), real through scikit-learn, complex by ours."""
    if is_complex_input(X, y):
        return validate_complex_data(est, X, y, reset=reset)
    if y is None:
        return validate_data(est, X, reset=reset, dtype=np.float64)
    return validate_data(
        est, X, y, reset=reset, dtype=np.float64, y_numeric=True, multi_output=True
    )


def set_fitted(est: Any, res: EMResult, y_1d: bool, sizes: list[int]) -> None:
    """Copy an :class:`EMResult` onto the estimator's fitted attributes."""
    coef = res.coef.T  # (L, N)
    est.coef_ = coef[0] if y_1d else coef
    xp = get_namespace(coef)
    shape = tuple(sizes) if y_1d else (int(coef.shape[0]), *sizes)
    est.coef_tensor_ = xp.reshape(est.coef_, shape)
    est.gamma_ = res.gamma
    est.support_ = np.flatnonzero(to_numpy(res.gamma) > 0)
    est.sigma_diag_ = res.sigma_diag
    est.noise_variance_ = float(res.noise_var)
    est.n_iter_ = int(res.n_iter)
    est.converged_ = bool(res.converged)
    est.rel_change_ = float(res.rel_change)
    if est.compute_score:
        est.scores_ = np.asarray(res.scores)
    if est.keep_path:
        stacked = [p.T[0] if y_1d else p.T for p in res.path]
        est.coef_path_ = xp.stack(stacked) if stacked else None


def r2_score_any(y: Any, y_pred: Any) -> float:
    """Coefficient of determination with ``|.|^2``, valid for real and complex targets."""
    y = np.asarray(to_numpy(y))
    y_pred = np.asarray(to_numpy(y_pred)).reshape(y.shape)
    num = np.sum(np.abs(y - y_pred) ** 2)
    den = np.sum(np.abs(y - y.mean(axis=0)) ** 2)
    if den == 0:
        return 1.0 if num == 0 else 0.0
    return float(1.0 - num / den)
