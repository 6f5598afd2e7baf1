"""The one place that imports scikit-learn private helpers.

Everything else in sparsestat imports these names from here, so that a change in a private
scikit-learn module is mended in one file, tested against the oldest supported release.
"""

from __future__ import annotations

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
from sklearn.utils.validation import validate_data

__all__ = [
    "HasMethods",
    "Hidden",
    "Interval",
    "InvalidParameterError",
    "Options",
    "RealNotInt",
    "StrOptions",
    "fit_context",
    "validate_data",
    "validate_params",
]

#: ``@fit_context(prefer_skip_nested_validation=True)`` validates ``_parameter_constraints``
#: when ``fit`` starts, as scikit-learn's own estimators do.
fit_context = _fit_context
