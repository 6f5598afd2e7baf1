"""Validation helpers, progress bars and estimator discovery."""

from sparsestat.utils._progress import progress_bar
from sparsestat.utils.discovery import all_estimators
from sparsestat.utils.validation import (
    check_complex_array,
    check_consistent_rows,
    check_finite_params,
    validate_complex_data,
)

__all__ = [
    "all_estimators",
    "check_complex_array",
    "check_consistent_rows",
    "check_finite_params",
    "progress_bar",
    "validate_complex_data",
]
