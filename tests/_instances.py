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
from sklearn.base import BaseEstimator, is_classifier
from sklearn.utils import get_tags

from sparsestat.utils import all_estimators

#: name -> list of constructor kwargs (values may be callables taking no argument)
INSTANCE_PARAMS: dict[str, list[dict[str, Any]]] = {
    "IHTRegressor": [{"n_nonzero_coefs": 2}],
    "IHTRegressorCV": [{"max_n_nonzero_coefs": 3, "cv": 3}],
    "RandomSupportRegressor": [{"n_cert": 20, "r_max": 3, "random_state": 0}],
    "SparseAutoencoder": [
        {
            "n_components": 8,
            "activation": lambda: _sae_variant("TopK"),
            "max_epochs": 2,
            "batch_size": 16,
            "random_state": 0,
        },
        {
            "n_components": 8,
            "activation": lambda: _sae_variant("BatchTopK"),
            "max_epochs": 2,
            "batch_size": 16,
            "random_state": 0,
        },
    ],
    "LqSparseCoder": [{"dictionary": lambda: _lq_dictionary(5, 3), "alpha": 0.1}],
    "LqDictionaryLearning": [
        {
            "n_components": 3,
            "alpha": 0.1,
            "max_iter": 5,
            "transform_max_iter": 50,
            "random_state": 0,
        }
    ],
    "MiniBatchLqDictionaryLearning": [
        {
            "n_components": 3,
            "penalty": "l1/2",
            "alpha": 0.1,
            "max_iter": 2,
            "batch_size": 8,
            "transform_max_iter": 50,
            "random_state": 0,
        }
    ],
    # tol=1e-10: the sample-weight checks compare two fits' predictions to rtol 1e-7, which
    # needs the solver's relative certificate well below its default 1e-6
    "LqRegression": [
        {"alpha": 0.01, "tol": 1e-10},
        {"penalty": "cel0", "alpha": 0.01, "tol": 1e-10},
    ],
    "LqRegressionCV": [{"penalty": "l0", "alphas": 10, "cv": 3, "tol": 1e-10}],
    # epsilon = inf: scikit-learn's checks then test the real score (check_regressors_train);
    # the private instances run every check in tests/test_privacy_common.py, where the score
    # check is an expected failure with its reason
    "LDPSparseLinearRegression": [
        {"epsilon": np.inf, "bounds_X": 3.0, "bounds_y": 10.0, "random_state": 0},
        {"epsilon": np.inf, "bounds_X": 3.0, "bounds_y": 10.0, "alpha": "cv", "cv": 2},
    ],
    "LDPIHTRegressor": [
        {
            "n_nonzero_coefs": 2,
            "epsilon": np.inf,
            "step_size": 0.5,
            "bounds_X": 3.0,
            "bounds_y": 10.0,
            "random_state": 0,
        },
    ],
    "GaussianMoERegressor": [
        {"n_experts": 2, "n_init": 1, "max_iter": 15, "gate_max_iter": 5},
        {
            "n_experts": 2,
            "gate": "activation_dense_to_sparse",
            "n_init": 1,
            "max_iter": 10,
            "gate_max_iter": 5,
        },
    ],
    # neural (PyTorch): tiny networks, few epochs, CPU
    **{
        name: [
            {
                "hidden_layer_sizes": (16,),
                "max_epochs": 20,
                "lr": 0.02,
                "n_mc_samples": 4,
                "device": "cpu",
                "random_state": 0,
                **({"sparsity": 0.5, "update_interval": 5} if "SSVI" in name else {}),
            }
        ]
        for name in ("SSVIClassifier", "SSVIRegressor", "MeanFieldVIClassifier")
    },
    **{
        name: [
            {
                "hidden_layer_sizes": (16,),
                "n_nonzero_groups": 0.5,
                "max_epochs": 20,
                "finetune_epochs": 5,
                "lr": 0.05,
                "device": "cpu",
                "random_state": 0,
            }
        ]
        for name in ("GroupEnvelopeMLPClassifier", "GroupEnvelopeMLPRegressor")
    },
    **{
        name: [
            {
                "n_experts": 4,
                "k": 2,
                "expert_hidden": (8,),
                "max_epochs": 20,
                "batch_size": 64,
                "lr": 0.02,
                "device": "cpu",
                "random_state": 0,
            }
        ]
        for name in ("COMETMoEClassifier", "COMETMoERegressor")
    },
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
            "max_epochs": 2,
            "batch_size": 16,
            "update_interval": 2,
            "random_state": 0,
            "device": "cpu",
        }
    ],
}

#: the torch estimators train in float32: a weighted fit equals the fit on repeated rows only
#: to float32 rounding (tests/test_neural_base.py checks it at 1e-4), or only in expectation
#: where rows draw their own noise
_FLOAT32_WEIGHTS = (
    "float32 training: integer weights equal repeated rows to float32 rounding (~1e-6 "
    "relative), not to the check's 1e-7 (each estimator is held to 1e-4 in "
    "test_real_estimators_weighted_fit_equals_repeated_rows); RigL's and SET's discrete mask "
    "updates amplify rounding: reordering the same rows moves RigL ~1 % "
    "(test_rigl_masks_turn_float_rounding_into_different_fits)"
)
_NOISY_WEIGHTS = (
    "Monte-Carlo noise is drawn per row, so a repeated row gets fresh noise: weights equal "
    "repetition in expectation; the weighted loss is tested in tests/test_neural_*.py"
)

#: SparseAutoencoder trains by mini-batches with a per-call schedule: repeated rows make more
#: (and different) mini-batches than weights do
_SAE_WEIGHTS = (
    "mini-batch training: repeated rows give more and different mini-batches than weights; "
    "with full-batch training integer weights equal repeated rows to float32 rounding "
    "(tested at 1e-4 in tests/test_sae_variants.py)"
)

#: name -> {check name: reason}
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "SparseAutoencoder": dict.fromkeys(
        (
            "check_sample_weight_equivalence_on_dense_data",
            "check_sample_weight_equivalence_on_sparse_data",
        ),
        _SAE_WEIGHTS,
    ),
    **{
        name: {"check_sample_weight_equivalence_on_dense_data": _FLOAT32_WEIGHTS}
        for name in (
            "COMETMoEClassifier",
            "COMETMoERegressor",
            "GroupEnvelopeMLPClassifier",
            "GroupEnvelopeMLPRegressor",
            "SparseMLPClassifier",
            "SparseMLPRegressor",
        )
    },
    **{
        name: {"check_sample_weight_equivalence_on_dense_data": _NOISY_WEIGHTS}
        for name in ("SSVIClassifier", "SSVIRegressor", "MeanFieldVIClassifier")
    },
    "KroneckerSBL": {
        "check_complex_data": "complex-valued SBL: complex X and y are accepted on purpose",
    },
    "SparseBayesianLearning": {
        "check_complex_data": "complex-valued SBL: complex X and y are accepted on purpose",
    },
    # LqSparseCoder codes against a fixed dictionary whose atom length must equal the number
    # of features; these checks feed X with another fixed width (or test a property the
    # stateless complex-capable coder does not have). tests/test_lq_coding.py runs every
    # width-bound check with a dictionary of the matching width, as scikit-learn does for
    # SparseCoder.
    "LqSparseCoder": {
        **dict.fromkeys(
            (
                "check_estimators_overwrite_params",
                "check_estimators_fit_returns_self",
                "check_readonly_memmap_input",
                "check_n_features_in_after_fitting",
                "check_positive_only_tag_during_fit",
                "check_estimators_dtypes",
                "check_dtype_object",
                "check_transformers_unfitted_stateless",
                "check_fit2d_1sample",
                "check_fit2d_1feature",
                "check_fit_idempotent",
                "check_fit_check_is_fitted",
                "check_n_features_in",
                "check_array_api_input",
            ),
            "fixed dictionary width; run with a matching width in test_lq_coding.py",
        ),
        **dict.fromkeys(
            (
                "check_array_api_input",
                "check_array_api_mixed_inputs",
                "check_array_api_same_namespace",
            ),
            "fixed dictionary width, and the dictionary is a constructor parameter that the "
            "check expects in X's array library; run in test_lq_coding_io.py with a "
            "dictionary of matching width in the library under test",
        ),
        "check_complex_data": "complex signals and dictionaries are supported (l1, l0)",
        "check_transformer_n_iter": (
            "stateless like SparseCoder: fit only validates, so it sets no n_iter_ "
            "(fit_transform does)"
        ),
    },
    "GaussianMoERegressor": {
        "check_regressors_no_decision_function": (
            "predict_proba returns the gate probabilities pi(x) (a mixture of experts is a "
            "regressor with a latent class)"
        ),
    },
}

#: name -> fn(X, y) -> (X, y) adapting the bad-input suite's data to the estimator
DATA_ADAPTERS: dict[str, Callable[[np.ndarray, np.ndarray], tuple[Any, Any]]] = {
    # unsupervised: fit(X) only
    "QuickSelection": lambda X, y: (X, None),
    "SparseMatrixFactorization": lambda X, y: (X, None),
    # the registered LqSparseCoder has a fixed dictionary of width 3
    "LqSparseCoder": lambda X, y: (X[:, :3], y),
}


def _lq_dictionary(n_components: int, n_features: int) -> np.ndarray:
    """Small fixed dictionary with unit-norm atoms for LqSparseCoder."""
    D = np.random.default_rng(0).standard_normal((n_components, n_features))
    return D / np.linalg.norm(D, axis=1, keepdims=True)


def _sae_variant(name: str, **params: Any) -> Any:
    """A SparseAutoencoder variant object (imported here: it needs torch)."""
    import sparsestat.neural as neural

    return getattr(neural, name)(**params)


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


def sample_data(
    estimator: BaseEstimator, n: int = 24, d: int = 5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray | None]:
    """Small (X, y) that ``estimator`` accepts: y is None for unsupervised estimators,
    binary labels for classifiers, a noisy linear response for regressors."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if not get_tags(estimator).target_tags.required:
        y = None
    elif is_classifier(estimator):
        y = np.arange(n) % 2
    else:
        y = X[:, 0] - 2 * X[:, 1] + 0.1 * rng.standard_normal(n)
    adapt = DATA_ADAPTERS.get(type(estimator).__name__)
    return adapt(X, y) if adapt else (X, y)
