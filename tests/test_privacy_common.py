"""scikit-learn's estimator checks on the *private* instances of the LDP estimators.

The common registry (tests/_instances.py) runs the LDP estimators at ``epsilon = inf``, where
scikit-learn's score check (R^2 > 0.5 on 200 rows) tests the real estimate. Here every check
runs again with the privacy noise on; the score check is the one expected failure: at a
finite epsilon, 200 users are far too few for any local-DP estimate (the error bound falls
like ``1 / (sqrt(n) epsilon)``; the estimators warn with the number of users needed), so
the model is noise by design. The real private score is tested at realistic sizes in
tests/test_user_scenarios.py and tests/test_privacy_nldp.py.
"""

from __future__ import annotations

import warnings

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from sparsestat.privacy import LDPIHTRegressor, LDPSparseLinearRegression

REASON = (
    "privacy noise: at a finite epsilon the 200 users of the check are far too few for a "
    "local-DP estimate (error ~ 1 / (sqrt(n) epsilon)); the real score is tested at epsilon = "
    "inf by the common checks and at realistic sizes in test_user_scenarios.py"
)

PRIVATE = [
    LDPSparseLinearRegression(epsilon=1.0, bounds_X=3.0, bounds_y=10.0, random_state=0),
    LDPIHTRegressor(n_nonzero_coefs=2, epsilon=1.0, bounds_X=3.0, bounds_y=10.0, random_state=0),
    LDPIHTRegressor(
        n_nonzero_coefs=2,
        epsilon=2.0,
        bounds_X=3.0,
        bounds_y=10.0,
        mechanism="coordinate_rr",
        random_state=0,
    ),
]


@parametrize_with_checks(
    PRIVATE, expected_failed_checks=lambda e: {"check_regressors_train": REASON}
)
def test_private_instances_pass_the_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "the predicted error bound", UserWarning)
        warnings.filterwarnings("ignore", "refitting", UserWarning)
        check(estimator)


def test_the_score_check_fails_for_privacy_reasons_only():
    """The expected failure is real: the same check passes without noise."""
    from sklearn.utils.estimator_checks import check_regressors_train

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(AssertionError):
            check_regressors_train("private", PRIVATE[0])
        check_regressors_train(
            "inf", LDPSparseLinearRegression(epsilon=float("inf"), bounds_X=3.0, bounds_y=10.0)
        )
