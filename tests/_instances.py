"""Registry of test instances for the common estimator checks and the bad-input suite.

Every estimator found by :func:`sparsestat.utils.all_estimators` is checked. When an
estimator's defaults are too slow for the checks, or it needs a constructor argument, add
its small, fast parameters to ``INSTANCE_PARAMS`` (a list gives several instances). When a
scikit-learn check cannot apply, add it to ``EXPECTED_FAILED_CHECKS`` with the reason; the
same reason belongs in the estimator's docstring Notes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from sparsestat.utils import all_estimators

#: name -> list of constructor kwargs (values may be callables taking no argument)
INSTANCE_PARAMS: dict[str, list[dict[str, Any]]] = {
    "IHTRegressor": [{"n_nonzero_coefs": 2}],
    "RandomSupportRegressor": [{"n_cert": 20, "r_max": 3, "random_state": 0}],
}

#: name -> {check name: reason}
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {}

#: name -> fn(X, y) -> (X, y) adapting the bad-input suite's data to the estimator
DATA_ADAPTERS: dict[str, Callable[[np.ndarray, np.ndarray], tuple[Any, Any]]] = {}


def _materialise(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v() if callable(v) and not isinstance(v, type) else v) for k, v in params.items()}


def instances() -> Iterator[BaseEstimator]:
    """One or more small instances of every public estimator."""
    for name, cls in all_estimators():
        for params in INSTANCE_PARAMS.get(name, [{}]):
            yield cls(**_materialise(params))


def expected_failed_checks(estimator: BaseEstimator) -> dict[str, str]:
    """The checks that cannot apply to ``estimator``, with reasons."""
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})
