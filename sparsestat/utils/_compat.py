"""The one place that imports scikit-learn private helpers.

Everything else in sparsestat imports these names from here, so that a change in a private
scikit-learn module is mended in one file, tested against the oldest supported release.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    RealNotInt,
    StrOptions,
    validate_params,
)
from sklearn.utils.validation import _check_sample_weight, validate_data

__all__ = [
    "HasMethods",
    "Hidden",
    "Interval",
    "InvalidParameterError",
    "Options",
    "RealNotInt",
    "StrOptions",
    "check_sample_weight",
    "fit_context",
    "validate_data",
    "validate_params",
]

#: ``@fit_context(prefer_skip_nested_validation=True)`` validates ``_parameter_constraints``
#: when ``fit`` starts, as scikit-learn's own estimators do.
fit_context = _fit_context


def check_sample_weight(
    sample_weight: Any, X: Any, *, dtype: Any = None, ensure_non_negative: bool = True
) -> Any:
    """Validate ``sample_weight`` against ``X``: None gives ones, a scalar is broadcast.

    scikit-learn's ``_check_sample_weight``, with negative weights rejected by default (a
    weight is a count of repeated rows in every estimator of this library).
    """
    return _check_sample_weight(
        sample_weight, X, dtype=dtype, ensure_non_negative=ensure_non_negative
    )
