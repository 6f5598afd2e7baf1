"""scikit-learn's estimator checks over every public sparsestat estimator."""

from __future__ import annotations

import pickle

import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from sparsestat.utils import all_estimators
from tests._instances import expected_failed_checks, instances

_INSTANCES = list(instances())


def test_every_estimator_has_an_instance():
    names = {type(e).__name__ for e in _INSTANCES}
    assert names == {name for name, _ in all_estimators()}
    assert names, "all_estimators() found nothing"


@parametrize_with_checks(_INSTANCES, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", _INSTANCES, ids=lambda e: type(e).__name__)
def test_docstring_mentions_every_parameter(estimator):
    doc = type(estimator).__doc__ or ""
    missing = [p for p in estimator.get_params(deep=False) if f"{p} :" not in doc]
    assert not missing, f"{type(estimator).__name__} docstring lacks {missing}"


@pytest.mark.parametrize("estimator", _INSTANCES, ids=lambda e: type(e).__name__)
def test_clone_and_pickle_round_trip(estimator):
    est = clone(estimator)
    blob = pickle.dumps(est)
    again = pickle.loads(blob)
    assert repr(again) == repr(est)
