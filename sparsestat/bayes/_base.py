"""What the SBL estimators share: input validation, the call into EM, fitted attributes,
prediction with its posterior standard deviation, and R^2 for real and complex targets.

Not an estimator module: :class:`~sparsestat.bayes.SparseBayesianLearning` and
:class:`~sparsestat.bayes.KroneckerSBL` both build on :class:`SBLRegressorBase`; the EM
itself is :func:`sparsestat._solvers.sbl.sbl_em`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import device as array_device
from sklearn import get_config
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from sparsestat._kernels._dispatch import get_namespace, is_device_array, to_host
from sparsestat._kernels.kron import quadratic_diag
from sparsestat._solvers.sbl import EMResult, sbl_em, warn_convergence
from sparsestat.utils import check_complex_array, progress_bar, validate_complex_data
from sparsestat.utils._compat import check_sample_weight, validate_data
from sparsestat.utils._dask import is_dask_array, map_rows

__all__ = [
    "SBLRegressorBase",
    "check_device_arrays",
    "check_factors",
    "is_complex_input",
    "r2_score_any",
    "require_y",
    "working_dtype",
]


def require_y(est: Any, y: Any) -> None:
    """Raise the message scikit-learn expects when ``y`` is missing."""
    if y is None:
        raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None.")


def is_complex_input(*arrays: Any) -> bool:
    """Whether any of the array-likes is complex."""
    for a in arrays:
        if a is None:
            continue
        if is_device_array(a):
            if get_namespace(a).isdtype(a.dtype, "complex floating"):
                return True
            continue
        try:
            if np.iscomplexobj(a):
                return True
        except (TypeError, ValueError):
            continue
    return False


def working_dtype(xp: Any, design: list[Any], y: Any = None) -> Any:
    """The dtype EM runs in: the precision of the design (float32 stays float32, anything else
    is float64), complex when the design or ``y`` is complex."""
    single = all(xp.isdtype(a.dtype, (xp.float32, xp.complex64)) for a in design)
    cplx = any(xp.isdtype(a.dtype, "complex floating") for a in design) or (
        y is not None and xp.isdtype(y.dtype, "complex floating")
    )
    if cplx:
        return xp.complex64 if single else xp.complex128
    return xp.float32 if single else xp.float64


def check_device_arrays(arrays: list[Any], y: Any, names: list[str]) -> tuple[Any, list[Any], Any]:
    """Validate design arrays and ``y`` of one array-API library (CuPy, torch, ...), on device.

    Host arrays among them are moved to that library and device; everything is cast to the
    :func:`working_dtype`. Returns ``(xp, arrays, y)``.
    """
    # the design decides the library and device ("everything follows X"); the rest moves there
    ref = next(a for a in [*arrays, y] if is_device_array(a))
    xp, dev = get_namespace(ref), array_device(ref)

    def _move(a: Any) -> Any:
        if is_device_array(a) and get_namespace(a) is xp:
            return xp.asarray(a, device=dev)
        return xp.asarray(np.asarray(to_host(a) if is_device_array(a) else a), device=dev)

    out = [_move(a) for a in arrays]
    if y is not None:
        y = _move(y)
    for a, name in zip(out, names):
        if a.ndim != 2 or 0 in a.shape:
            raise ValueError(f"{name} must be a non-empty 2-D array; got shape {tuple(a.shape)}")
        if not xp.isdtype(a.dtype, "numeric") or xp.isdtype(a.dtype, "bool"):
            raise TypeError(f"{name} must be numeric; got dtype {a.dtype}")
    dtype = working_dtype(xp, out, y if y is not None and xp.isdtype(y.dtype, "numeric") else None)
    out = [xp.astype(a, dtype) for a in out]
    for a, name in zip(out, names):
        if not bool(xp.all(xp.isfinite(a))):
            raise ValueError(f"Input {name} contains NaN or infinity.")
    if y is not None:
        y = xp.astype(y, dtype)
        if y.ndim not in (1, 2) or int(y.shape[0]) == 0:
            raise ValueError(f"y must be a non-empty 1-D or 2-D array; got shape {tuple(y.shape)}")
        if not bool(xp.all(xp.isfinite(y))):
            raise ValueError("Input y contains NaN or infinity.")
    return xp, out, y


def check_factors(facs: list[Any], y: Any, names: list[str]) -> tuple[list[Any], Any]:
    """Validate factors and ``y`` (host or device), cast to the working dtype."""
    if any(is_device_array(f) for f in facs) or is_device_array(y):
        _, facs, y = check_device_arrays(facs, y, names)
        return facs, y
    facs = [check_complex_array(f, input_name=n, copy=False) for f, n in zip(facs, names)]
    y = check_complex_array(y, input_name="y", ensure_2d=False)
    if y.ndim not in (1, 2):
        raise ValueError(f"y must be 1-D or 2-D; got shape {y.shape}")
    dtype = working_dtype(get_namespace(*facs), facs, y)
    return [np.asarray(f, dtype=dtype) for f in facs], np.asarray(y, dtype=dtype)


def validate_dense(est: Any, X: Any, y: Any = None, *, reset: bool = True) -> Any:
    """Validate a dense design ``X`` (and ``y``): real through scikit-learn, complex by ours,
    arrays of another library on their device. Returns arrays of the working dtype."""
    if is_device_array(X) or is_device_array(y):
        _, (X,), y = check_device_arrays([X], y, ["X"])
        if reset:
            est.n_features_in_ = int(X.shape[1])
        elif int(X.shape[1]) != est.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(est).__name__} is expecting "
                f"{est.n_features_in_} features as input."
            )
        if y is not None and int(y.shape[0]) != int(X.shape[0]):
            raise ValueError(
                "Found input variables with inconsistent numbers of samples: "
                f"X: {X.shape[0]}, y: {y.shape[0]}"
            )
        return X if y is None else (X, y)
    if is_complex_input(X, y):
        out = validate_complex_data(est, X, y, reset=reset)
    elif y is None:
        out = validate_data(est, X, reset=reset, dtype=[np.float64, np.float32])
    else:
        out = validate_data(
            est,
            X,
            y,
            reset=reset,
            dtype=[np.float64, np.float32],
            y_numeric=True,
            multi_output=True,
        )
    if y is None:
        return out
    X, y = out
    dtype = working_dtype(get_namespace(X), [X], y)
    return np.asarray(X, dtype=dtype), np.asarray(y, dtype=dtype)


def r2_score_any(y: Any, y_pred: Any, sample_weight: Any = None) -> float:
    """Coefficient of determination with ``|.|^2``, valid for real and complex targets.

    Several columns are pooled (the variance-weighted R^2 of scikit-learn's ``r2_score``).
    """
    y = np.asarray(to_host(y))
    y_pred = np.asarray(to_host(y_pred)).reshape(y.shape)
    w = np.ones(y.shape[0]) if sample_weight is None else np.asarray(to_host(sample_weight))
    w = w.reshape((-1,) + (1,) * (y.ndim - 1))
    mean = np.sum(w * y, axis=0) / np.sum(w)
    num = np.sum(w * np.abs(y - y_pred) ** 2)
    den = np.sum(w * np.abs(y - mean) ** 2)
    if den == 0:
        return 1.0 if num == 0 else 0.0
    return float(1.0 - num / den)


def _n_targets(est: Any) -> int | None:
    return None if est.coef_.ndim == 1 else int(est.coef_.shape[0])


def _prediction_dtype(est: Any, x_dtype: Any) -> Any:
    return np.result_type(x_dtype, to_host(est.coef_[:0]).dtype)


class SBLRegressorBase(RegressorMixin, BaseEstimator):
    """Fit tail, prediction and score shared by the SBL estimators (not public).

    Subclasses define ``_em_params(n_factors)`` (the solver's settings) and call
    :meth:`_fit_dense` or :meth:`_run_em`.
    """

    def _em_params(self, n_factors: int) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ fitting
    def _run_em(
        self,
        facs: list[Any],
        Y: Any,
        *,
        sample_weight: Any = None,
        return_covariance: bool = False,
        coupling: Any = None,
    ) -> EMResult:
        """Run EM with the estimator's settings (progress bar, convergence warning)."""
        params = self._em_params(len(facs))
        desc = type(self).__name__
        with progress_bar(total=self.max_iter, verbose=self.verbose, desc=desc) as bar:
            res = sbl_em(
                facs,
                Y,
                sample_weight=sample_weight,
                return_covariance=return_covariance,
                coupling=coupling,
                callback=lambda it, ch: (bar.update(1), bar.set_postfix(change=f"{ch:.2e}")),
                **params,
            )
        warn_convergence(desc, res, self.max_iter, self.tol)
        return res

    def _set_fitted(self, res: EMResult, y_1d: bool, sizes: list[int]) -> None:
        """Copy an :class:`EMResult` onto the fitted attributes shared by both estimators."""
        coef = res.coef.T  # (L, N)
        self.coef_ = coef[0, :] if y_1d else coef
        xp = get_namespace(coef)
        shape = tuple(sizes) if y_1d else (int(coef.shape[0]), *sizes)
        self.coef_tensor_ = xp.reshape(self.coef_, shape)
        self.gamma_ = res.gamma
        self.support_ = xp.asarray(
            np.flatnonzero(to_host(res.gamma) > 0), device=array_device(res.gamma)
        )
        self.sigma_diag_ = res.sigma_diag
        self.noise_variance_ = float(res.noise_var)
        self.n_iter_ = int(res.n_iter)
        self.converged_ = bool(res.converged)
        self.rel_change_ = float(res.rel_change)
        if self.compute_score:
            self.scores_ = np.asarray(res.scores)
        if self.keep_path:
            stacked = [p.T[0, :] if y_1d else p.T for p in res.path]
            self.coef_path_ = xp.stack(stacked) if stacked else None

    def _fit_dense(self, X: Any, y: Any, sample_weight: Any, coupling: Any = None) -> EMResult:
        """Classical SBL on a validated dense ``X``: weights, intercept, EM, attributes."""
        xp = get_namespace(X, y)
        w = None
        if sample_weight is not None:
            w = check_sample_weight(to_host(sample_weight), to_host(X[:, :1]), dtype=np.float64)
            if not np.any(w > 0):
                raise ValueError("sample_weight must have at least one positive entry")
        y_1d = y.ndim == 1
        Y = xp.reshape(y, (-1, 1)) if y_1d else y
        if self.fit_intercept:
            if w is None:
                x_off, y_off = xp.mean(X, axis=0), xp.mean(Y, axis=0)
            else:
                wx = xp.asarray(w / w.sum(), dtype=X.dtype, device=array_device(X))
                x_off = xp.sum(wx[:, None] * X, axis=0)
                y_off = xp.sum(wx[:, None] * Y, axis=0)
            X, Y = X - x_off, Y - y_off
        else:
            x_off = xp.zeros(int(X.shape[1]), dtype=X.dtype, device=array_device(X))
            y_off = xp.zeros(int(Y.shape[1]), dtype=Y.dtype, device=array_device(Y))
        res = self._run_em([X], Y, sample_weight=w, return_covariance=True, coupling=coupling)
        self._set_fitted(res, y_1d, [int(X.shape[1])])
        self.sigma_ = res.covariance
        self.X_offset_ = x_off
        intercept = y_off - (
            xp.reshape(self.coef_, (1, -1)) @ x_off if y_1d else self.coef_ @ x_off
        )
        if y_1d:
            value = complex(to_host(intercept)[0])
            self.intercept_ = value if xp.isdtype(Y.dtype, "complex floating") else value.real
        else:
            self.intercept_ = intercept
        return res

    # ------------------------------------------------------------------ prediction
    def _predict_dense(self, X: Any, return_std: bool) -> Any:
        """``X @ coef_.T + intercept_``, and the posterior predictive standard deviation."""
        if is_dask_array(X):
            mean = map_rows(
                self._predict_dense_mean,
                X,
                n_outputs=_n_targets(self),
                dtype=_prediction_dtype(self, X.dtype),
            )
            if not return_std:
                return mean
            std = map_rows(
                self._predict_dense_std,
                X,
                n_outputs=_n_targets(self),
                dtype=np.result_type(X.dtype, np.float32),
            )
            return mean, std
        if not return_std:
            return self._predict_dense_mean(X)
        return self._predict_dense_mean(X), self._predict_dense_std(X)

    def _check_same_namespace(self, X: Any, method: str) -> None:
        """With scikit-learn's ``array_api_dispatch`` on, ``X`` must be of the fit's library
        and device (as scikit-learn's own estimators require); otherwise it is moved there."""
        if X is None or not get_config()["array_api_dispatch"]:
            return
        a, b = self.coef_, X
        same = (is_device_array(a) == is_device_array(b)) and (
            not is_device_array(a)
            or (get_namespace(a) is get_namespace(b) and array_device(a) == array_device(b))
        )
        if not same:
            raise ValueError(
                f"Inputs passed to {type(self).__name__}.{method}() must use the same "
                "namespace and the same device as those passed to fit()."
            )

    def _validated_for_predict(self, X: Any) -> Any:
        check_is_fitted(self)
        self._check_same_namespace(X, "predict")
        X = validate_dense(self, X, reset=False)
        coef = self.coef_
        if is_device_array(coef) and not is_device_array(X):
            X = get_namespace(coef).asarray(X, device=array_device(coef))
        elif not is_device_array(coef):
            X = to_host(X)
        return X

    def _predict_dense_mean(self, X: Any) -> Any:
        X = self._validated_for_predict(X)
        xp = get_namespace(X, self.coef_)
        coef = self.coef_
        dtype = xp.result_type(X.dtype, coef.dtype)
        X, coef = xp.astype(X, dtype), xp.astype(coef, dtype)
        out = X @ (coef if coef.ndim == 1 else coef.T)
        return out + self.intercept_

    def _predict_dense_std(self, X: Any) -> Any:
        if self.sigma_ is None:
            raise ValueError(
                f"return_std needs the posterior covariance of the {self.support_.shape[0]} kept "
                "coefficients, which was not formed because they outnumber the samples (and "
                "1000); raise prune_threshold so that fewer are kept"
            )
        X = self._validated_for_predict(X)
        xp = get_namespace(X, self.coef_)
        dtype = xp.result_type(X.dtype, self.sigma_.dtype)
        xc = xp.astype(X, dtype) - xp.astype(self.X_offset_, dtype)
        idx = xp.asarray(to_host(self.support_), device=array_device(X))
        var = quadratic_diag(xp.take(xc, idx, axis=1), xp.astype(self.sigma_, dtype))
        std = xp.sqrt(var + self.noise_variance_)
        if self.coef_.ndim == 2:
            std = xp.broadcast_to(std[:, None], (int(std.shape[0]), int(self.coef_.shape[0])))
        return std

    # ------------------------------------------------------------------ scoring
    def _score_dense(self, X: Any, y: Any, sample_weight: Any) -> float:
        """scikit-learn's R^2 for real host data, the ``|.|^2`` form otherwise."""
        real_host = not (
            is_complex_input(X, y, self.coef_) or is_device_array(X) or is_device_array(y)
        )
        if real_host:
            return float(RegressorMixin.score(self, X, y, sample_weight=sample_weight))
        return r2_score_any(y, self.predict(X), sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.array_api_support = True
        return tags
