"""What the sparse linear models share: input validation and ``predict``."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from array_api_compat import device as array_device
from sklearn import get_config
from sklearn.utils.validation import check_is_fitted

from sparsestat._kernels._dispatch import get_namespace, move_to_namespace
from sparsestat.utils._compat import check_sample_weight, validate_data
from sparsestat.utils._dask import rowwise

__all__ = ["LinearPredictorMixin", "as_float64", "validate_xy"]


def _float_dtypes(X: Any) -> list[Any]:
    """``[float64, float32]`` of the library of ``X`` (NumPy for lists, sparse, pandas)."""
    if get_config()["array_api_dispatch"] and not sp.issparse(X):
        try:
            xp = get_namespace(X)
            return [xp.float64, xp.float32]
        except TypeError:
            pass
    return [np.float64, np.float32]


def _check_same_namespace(est: Any, X: Any, method: str) -> None:
    """Under array-API dispatch, ``X`` must come from the library ``coef_`` was fitted in."""
    if not get_config()["array_api_dispatch"] or sp.issparse(X):
        return
    try:
        same = get_namespace(X) is get_namespace(est.coef_)
    except TypeError:
        same = False
    if not same:
        raise ValueError(
            f"Inputs passed to {type(est).__name__}.{method}() must use the same namespace "
            f"and device as those passed to fit(); coef_ is a "
            f"{type(est.coef_).__module__} array, X a {type(X).__module__} one."
        )


def validate_xy(
    est: Any, X: Any, y: Any, sample_weight: Any, *, accept_sparse: bool = True
) -> tuple[Any, Any, Any]:
    """Validate ``(X, y, sample_weight)``: float64 / float32 kept, any array-API library.

    ``y`` and ``sample_weight`` from another library are moved to the library and device of
    ``X``; weights must be non-negative with at least one positive entry.
    """
    X, y = validate_data(
        est,
        X,
        y,
        accept_sparse=["csr", "csc"] if accept_sparse else False,
        dtype=_float_dtypes(X),
        y_numeric=True,
        multi_output=False,
    )
    if sample_weight is not None:
        if hasattr(sample_weight, "__array_namespace__") and not sp.issparse(X):
            sample_weight = move_to_namespace(sample_weight, get_namespace(X), array_device(X))
        sample_weight = check_sample_weight(sample_weight, X, dtype=X.dtype)
        if not float(get_namespace(sample_weight).sum(sample_weight)) > 0:
            raise ValueError("sample_weight must have at least one positive entry.")
    return X, y, sample_weight


def as_float64(X: Any, y: Any, sample_weight: Any) -> tuple[Any, np.ndarray, Any]:
    """NumPy float64 copies where needed: ``X`` Fortran-ordered or CSC (column access)."""
    if sp.issparse(X):
        X = sp.csc_matrix(X, dtype=np.float64)
    else:
        X = np.asarray(X).astype(np.float64, order="F", copy=False)
    y = np.asarray(y, dtype=np.float64)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
    return X, y, sample_weight


class LinearPredictorMixin:
    """``predict = X @ coef_ + intercept_`` for dense, sparse, array-API and dask input."""

    #: whether ``fit`` accepts CSR / CSC input (the ``input_tags.sparse`` tag)
    _accepts_sparse = True

    @rowwise(dtype=lambda est, _: est.coef_.dtype)
    def predict(self, X):
        """Predict with the linear model, ``X @ coef_ + intercept_``.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
            Samples; a dask array gives a lazy dask array, computed chunk by chunk.

        Returns
        -------
        y_pred : array of shape (n_samples,)
            Predictions, in the dtype (and array library) of ``coef_``.
        """
        check_is_fitted(self)
        _check_same_namespace(self, X, "predict")
        X = validate_data(
            self, X, reset=False, accept_sparse=["csr", "csc"], dtype=_float_dtypes(X)
        )
        coef = self.coef_
        if sp.issparse(X):
            pred = np.asarray(X @ np.asarray(coef, dtype=np.float64)).ravel()
            return pred.astype(coef.dtype, copy=False) + self.intercept_
        xp = get_namespace(X)
        return xp.astype(X, coef.dtype) @ coef + self.intercept_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.input_tags.sparse = self._accepts_sparse
        return tags
