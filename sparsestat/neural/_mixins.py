"""Classifier and regressor mixins of the PyTorch estimators (targets, losses, prediction).

Used with :class:`sparsestat.neural._base.BaseTorchEstimator`, before scikit-learn's
``ClassifierMixin`` / ``RegressorMixin`` in the bases of an estimator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from sparsestat.neural import import_torch
from sparsestat.utils._dask import is_dask_array, rowwise

torch = import_torch()

__all__ = ["TorchClassifierMixin", "TorchRegressorMixin"]


class TorchClassifierMixin:
    """Target handling and prediction for classifiers (use before ``ClassifierMixin``).

    Encodes labels with :class:`~sklearn.preprocessing.LabelEncoder` (``classes_``), defines
    ``_task_loss`` as cross-entropy on the module's logits (``self.n_outputs_`` =
    ``len(classes_)`` outputs),
    and predicts with ``predict_proba`` = softmax of :meth:`_forward` (override
    :meth:`_predict_proba_tensor` for Monte-Carlo averaging).

    Examples
    --------
    >>> from sparsestat.neural._base import TorchClassifierMixin
    >>> hasattr(TorchClassifierMixin, "predict_proba")
    True
    """

    def _prepare_targets(self, y: Any, fit: bool, sample_weight: Any = None) -> Any:
        check_classification_targets(y)
        if fit and not hasattr(self, "_partial_classes"):
            self._label_encoder_ = LabelEncoder().fit(y)
            self.classes_ = self._label_encoder_.classes_
        elif fit:
            self._label_encoder_ = LabelEncoder().fit(self._partial_classes)
            self.classes_ = self._label_encoder_.classes_
            del self._partial_classes
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(f"y contains labels {unknown.tolist()} not in classes_")
        self.n_outputs_ = len(self.classes_)
        return torch.as_tensor(np.searchsorted(self.classes_, y), dtype=torch.long)

    def partial_fit(self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None) -> Any:
        """Run one epoch over ``(X, y)``; the first call needs ``classes``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data.
        y : array-like of shape (n_samples,)
            Its labels.
        classes : array-like of shape (n_classes,), default=None
            All labels that will ever appear; required on the first call.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows in the loss, relative within this chunk.

        Returns
        -------
        self : estimator
            The updated estimator.
        """
        if not hasattr(self, "module_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            self._partial_classes = np.unique(classes)
        return super().partial_fit(X, y, sample_weight=sample_weight)

    def _streaming_fit_params(self, y: Any) -> dict[str, Any]:
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but it is None")
        labels = np.unique(y.compute() if is_dask_array(y) else np.asarray(y))
        return {"classes": labels}

    def _task_loss(self, out: Any, y: Any, sample_weight: Any = None) -> Any:
        if sample_weight is None:
            return torch.nn.functional.cross_entropy(out, y)
        per_sample = torch.nn.functional.cross_entropy(out, y, reduction="none")
        return (per_sample * sample_weight.to(per_sample.dtype)).mean()

    def _predict_proba_tensor(self, X: Any) -> Any:
        return torch.softmax(self._forward(X), dim=1)

    @rowwise(n_outputs=lambda est: len(est.classes_), dtype=lambda est, _: np.float64)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``.
        """
        proba = self._predict_batches(X, self._predict_proba_tensor)
        return proba / proba.sum(axis=1, keepdims=True)

    @rowwise(dtype=lambda est, _: est.classes_.dtype)
    def predict(self, X: Any) -> np.ndarray:
        """Most probable class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels (values of ``classes_``).
        """
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


def _regression_width(est: Any) -> int | None:
    """Width of a regressor's prediction: None (1-D) for a 1-D training target."""
    return None if est._y_ndim_ == 1 else int(est.n_outputs_)


class TorchRegressorMixin:
    """Target handling and prediction for regressors (use before ``RegressorMixin``).

    Targets (1-D or 2-D) are standardised internally (``_y_mean_``, ``_y_scale_``; set the
    class attribute ``_standardize_y = False`` to turn it off); the module outputs
    ``self.n_outputs_`` columns; the loss is the mean squared error in standardised units and
    ``predict`` maps back to the units of ``y``.

    Examples
    --------
    >>> from sparsestat.neural._base import TorchRegressorMixin
    >>> TorchRegressorMixin._standardize_y
    True
    """

    _standardize_y = True

    def _prepare_targets(self, y: Any, fit: bool, sample_weight: Any = None) -> Any:
        y = np.asarray(y, dtype=np.float64)
        y2 = y.reshape(-1, 1) if y.ndim == 1 else y
        if fit:
            self._y_ndim_ = y.ndim
            self.n_outputs_ = y2.shape[1]
            if self._standardize_y:  # weighted moments: those of the repeated rows
                self._y_mean_ = np.average(y2, axis=0, weights=sample_weight)
                var = np.average((y2 - self._y_mean_) ** 2, axis=0, weights=sample_weight)
                scale = np.sqrt(var)
                self._y_scale_ = np.where(scale > 0, scale, 1.0)
            else:
                self._y_mean_ = np.zeros(y2.shape[1])
                self._y_scale_ = np.ones(y2.shape[1])
        elif y2.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y2.shape[1]} outputs, but {self.n_outputs_} were fitted")
        return torch.as_tensor((y2 - self._y_mean_) / self._y_scale_, dtype=torch.float32)

    def _task_loss(self, out: Any, y: Any, sample_weight: Any = None) -> Any:
        if sample_weight is None:
            return torch.nn.functional.mse_loss(out, y)
        per_sample = (out - y).square().mean(dim=1)
        return (per_sample * sample_weight.to(per_sample.dtype)).mean()

    def _predict_standardized(self, X: Any) -> np.ndarray:
        return self._predict_batches(X)

    @rowwise(n_outputs=_regression_width, dtype=lambda est, _: np.float64)
    def predict(self, X: Any) -> np.ndarray:
        """Predict targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions in the units of the training targets.
        """
        check_is_fitted(self)
        out = self._predict_standardized(X) * self._y_scale_ + self._y_mean_
        return out.ravel() if self._y_ndim_ == 1 else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        return tags
