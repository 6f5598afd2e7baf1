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
    "SparseMLPClassifier": [
        {
            "hidden_layer_sizes": (16,),
            "method": m,
            "sparsity": s,
            "max_epochs": 15,
            "lr": 0.05,
            "random_state": 0,
            "device": "cpu",
        }
        for m, s in (("static", 0.5), ("set", 0.5), ("rigl", 0.5), ("sr-ste", None))
    ],
    "SparseMLPRegressor": [
        {
            "hidden_layer_sizes": (16,),
            "method": "rigl",
            "sparsity": 0.5,
            "max_epochs": 30,
            "lr": 0.05,
            "random_state": 0,
            "device": "cpu",
        }
    ],
    "QuickSelection": [
        {"hidden_units": 16, "max_epochs": 3, "batch_size": 32, "random_state": 0, "device": "cpu"}
    ],
    "SparseMatrixFactorization": [
        {
            "n_components": 4,
            "max_iter": 2,
            "batch_size": 16,
            "update_interval": 2,
            "random_state": 0,
            "device": "cpu",
        }
    ],
}

#: name -> {check name: reason}
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "SparseMatrixFactorization": dict.fromkeys(
        [
            "check_estimators_unfitted",
            "check_n_features_in_after_fitting",
            "check_estimators_dtypes",
            "check_dtype_object",
            "check_estimators_nan_inf",
            "check_estimators_pickle",
            "check_estimators_pickle(readonly_memmap=True)",
            "check_f_contiguous_array_estimator",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_dict_unchanged",
            "check_fit_idempotent",
            "check_fit2d_predict1d",
        ],
        "recommender: predict(user_ids, item_ids) scores id pairs, not rows of X "
        "(spec sparse_training.md 2.5: clone, pickle and params are tested instead)",
    ),
}

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
