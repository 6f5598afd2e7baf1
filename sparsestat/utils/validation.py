"""Input validation shared by every estimator, including complex arrays.

scikit-learn's ``check_array`` rejects complex input; the complex-valued methods (sparse
Bayesian learning, sparse coding) validate through :func:`check_complex_array` instead, which
applies the same rules (finite, non-empty, right number of dimensions, numeric) and keeps
complex dtypes.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

__all__ = [
    "check_complex_array",
    "check_consistent_rows",
    "check_finite_params",
    "validate_complex_data",
]

_FLOAT_KINDS = (np.float64, np.float32, np.complex128, np.complex64)


def check_complex_array(
    X: Any,
    *,
    input_name: str = "X",
    ensure_2d: bool = True,
    allow_nd: bool = False,
    allow_complex: bool = True,
    ensure_min_samples: int = 1,
    ensure_min_features: int = 1,
    copy: bool = False,
) -> np.ndarray:
    """Validate an array that may be complex and return it as a NumPy float/complex array.

    Real input becomes float64 (float32 stays float32); complex input becomes complex128
    (complex64 stays complex64). The caller's array is never modified: with ``copy=True``
    the result never shares memory with ``X``.

    Parameters
    ----------
    X : array-like
        The array to check.
    input_name : str, default="X"
        Name used in error messages.
    ensure_2d : bool, default=True
        Require exactly two dimensions (a 1-D array is rejected with a reshape hint).
    allow_nd : bool, default=False
        Accept more than two dimensions.
    allow_complex : bool, default=True
        Accept complex dtypes; when False a complex ``X`` raises ``ValueError``.
    ensure_min_samples : int, default=1
        Minimum length of the first axis.
    ensure_min_features : int, default=1
        Minimum length of the second axis (2-D input only).
    copy : bool, default=False
        Return a copy even when no conversion was needed.

    Returns
    -------
    X_checked : ndarray
        The validated array.

    Raises
    ------
    ValueError
        On NaN or infinite entries, an empty array, a wrong number of dimensions, or
        complex input where ``allow_complex`` is False.
    TypeError
        On non-numeric input (strings, objects).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.utils import check_complex_array
    >>> check_complex_array(np.array([[1 + 2j, 3]])).dtype
    dtype('complex128')
    >>> check_complex_array([[1, 2]]).dtype
    dtype('float64')
    """
    if hasattr(X, "__cuda_array_interface__") or type(X).__module__.split(".")[0] == "torch":
        raise TypeError(
            f"{input_name} is a device array; this function validates host (NumPy) arrays only"
        )
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and similar
        raise ValueError(f"{input_name} could not be converted to an array: {exc}") from exc
    if arr.dtype.kind in "OUSV" or arr.dtype.kind == "M" or arr.dtype.kind == "m":
        try:
            arr = arr.astype(np.float64) if arr.dtype.kind in "OUSV" else arr
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{input_name} must be numeric (real or complex); got dtype {arr.dtype} ({exc})"
            ) from None
        if arr.dtype.kind in "Mm":
            raise TypeError(f"{input_name} must be numeric; got dtype {arr.dtype}")
    target: Any
    if arr.dtype.kind == "c":
        if not allow_complex:
            raise ValueError(f"Complex data not supported for {input_name}; got dtype {arr.dtype}")
        target = arr.dtype if arr.dtype in (np.complex64, np.complex128) else np.complex128
    elif arr.dtype.kind in "biuf":
        target = np.float32 if arr.dtype == np.float32 else np.float64
    else:
        raise TypeError(f"{input_name} must be numeric; got dtype {arr.dtype}")
    out = np.array(arr, dtype=target, copy=True) if copy else np.asarray(arr, dtype=target)

    if ensure_2d:
        if out.ndim == 1 or out.ndim == 0:
            raise ValueError(
                f"Expected 2D array for {input_name}, got {out.ndim}D array instead. Reshape "
                f"your data either using array.reshape(-1, 1) if your data has a single "
                f"feature or array.reshape(1, -1) if it contains a single sample."
            )
        if out.ndim > 2 and not allow_nd:
            raise ValueError(f"Found array with dim {out.ndim}; expected <= 2 for {input_name}")
    elif out.ndim > 2 and not allow_nd:
        raise ValueError(f"Found array with dim {out.ndim}; expected <= 2 for {input_name}")
    if out.ndim >= 1 and out.shape[0] < ensure_min_samples:
        raise ValueError(
            f"Found array with {out.shape[0]} sample(s) (shape={out.shape}) while a minimum "
            f"of {ensure_min_samples} is required for {input_name}."
        )
    if out.ndim >= 2 and out.shape[1] < ensure_min_features:
        raise ValueError(
            f"Found array with {out.shape[1]} feature(s) (shape={out.shape}) while a minimum "
            f"of {ensure_min_features} is required for {input_name}."
        )
    if not np.all(np.isfinite(out)):
        raise ValueError(f"Input {input_name} contains NaN or infinity.")
    return out


def check_consistent_rows(**arrays: Any) -> None:
    """Raise ``ValueError`` naming the arrays when their first dimensions differ.

    Parameters
    ----------
    **arrays : array-like
        Named arrays (``None`` entries are ignored).

    Raises
    ------
    ValueError
        When the arrays do not all have the same number of rows.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.utils import check_consistent_rows
    >>> check_consistent_rows(X=np.zeros((3, 2)), y=np.zeros(3))
    """
    lengths = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        raise ValueError(f"Found input variables with inconsistent numbers of samples: {desc}")


def check_finite_params(**params: Any) -> None:
    """Raise ``ValueError`` if a real-valued parameter is NaN or infinite.

    Parameters
    ----------
    **params : float
        Named scalar parameters; non-numbers are ignored.

    Raises
    ------
    ValueError
        When one of them is not finite.

    Examples
    --------
    >>> from sparsestat.utils import check_finite_params
    >>> check_finite_params(alpha=1.0, tol=1e-4)
    """
    for name, value in params.items():
        if isinstance(value, numbers.Real) and not np.isfinite(float(value)):
            raise ValueError(f"The {name!r} parameter must be finite; got {value!r}.")


def validate_complex_data(
    estimator: BaseEstimator,
    X: Any,
    y: Any = None,
    *,
    reset: bool = True,
    allow_complex: bool = True,
    multi_output: bool = True,
    y_numeric: bool = True,
) -> Any:
    """``validate_data`` for estimators that accept complex ``X`` and ``y``.

    Sets ``n_features_in_`` when ``reset`` is True and checks it otherwise, like
    scikit-learn's ``validate_data``.

    Parameters
    ----------
    estimator : BaseEstimator
        The estimator being fitted or used.
    X : array-like of shape (n_samples, n_features)
        Input data (real or complex).
    y : array-like of shape (n_samples,) or (n_samples, n_targets), default=None
        Targets (real or complex); skipped when None.
    reset : bool, default=True
        Whether this call sets ``n_features_in_`` (``fit``) or checks it (``predict``).
    allow_complex : bool, default=True
        Accept complex dtypes.
    multi_output : bool, default=True
        Accept 2-D ``y``.
    y_numeric : bool, default=True
        Accepted for symmetry with scikit-learn; ``y`` is always validated as numeric.

    Returns
    -------
    X : ndarray
        Validated ``X``, or ``(X, y)`` when ``y`` is given.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from sparsestat.utils import validate_complex_data
    >>> est = LinearRegression()
    >>> X, y = validate_complex_data(est, np.ones((3, 2)) * 1j, np.arange(3.0))
    >>> est.n_features_in_
    2
    """
    X = check_complex_array(X, input_name="X", allow_complex=allow_complex)
    if reset:
        estimator.n_features_in_ = X.shape[1]
    else:
        n_fit = getattr(estimator, "n_features_in_", None)
        if n_fit is not None and X.shape[1] != n_fit:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(estimator).__name__} "
                f"is expecting {n_fit} features as input."
            )
    if y is None:
        return X
    y = check_complex_array(
        y,
        input_name="y",
        ensure_2d=False,
        allow_complex=allow_complex,
    )
    if y.ndim == 2 and not multi_output:
        if y.shape[1] != 1:
            raise ValueError(f"y must be 1-D; got shape {y.shape}")
        y = y[:, 0]
    if y.ndim not in (1, 2):
        raise ValueError(f"y must be 1-D or 2-D; got shape {y.shape}")
    check_consistent_rows(X=X, y=y)
    return X, y
