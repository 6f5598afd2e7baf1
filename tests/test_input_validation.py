"""Bad input for every estimator: clear errors, unmodified inputs, out-of-range parameters.

Each estimator found by ``all_estimators()`` is fed NaN, inf, empty arrays, wrong numbers of
dimensions, mismatched lengths and strings; every error must be a ``ValueError`` or
``TypeError`` whose message says what was wrong. Valid input must come back unmodified.
Out-of-range parameters are generated from each estimator's ``_parameter_constraints``.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import clone, is_classifier
from sklearn.utils import get_tags

from sparsestat.utils._compat import InvalidParameterError
from tests._instances import DATA_ADAPTERS, instances, sample_data

_INSTANCES = list(instances())
_IDS = [type(e).__name__ for e in _INSTANCES]
#: estimators whose ``fit`` needs ``y`` (the y-specific checks apply to them only)
_SUPERVISED = [e for e in _INSTANCES if get_tags(e).target_tags.required]
_SUPERVISED_IDS = [type(e).__name__ for e in _SUPERVISED]

_MESSAGES = (
    r"NaN|nan|infinity|inf|[Ee]mpty|0 sample|minimum of|[Ee]xpected 2D|dim|reshape|"
    r"inconsistent|numeric|convert|string|dtype|shape|samples|features|could not"
)


def _data(estimator, n=24, d=5, seed=0):
    return sample_data(estimator, n=n, d=d, seed=seed)


def _fit(estimator, X, y):
    return estimator.fit(X, y)


@pytest.mark.parametrize("estimator", _INSTANCES, ids=_IDS)
@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_non_finite_X_raises(estimator, bad):
    X, y = _data(estimator)
    X = np.array(X, dtype=float, copy=True)
    X[3, 1] = float(bad)
    with pytest.raises(ValueError, match=_MESSAGES):
        _fit(clone(estimator), X, y)


@pytest.mark.parametrize(
    "estimator",
    [e for e in _SUPERVISED if not is_classifier(e)],  # class labels may be any hashable
    ids=[n for e, n in zip(_SUPERVISED, _SUPERVISED_IDS) if not is_classifier(e)],
)
def test_non_finite_y_raises(estimator):
    X, y = _data(estimator)
    y = np.array(y, dtype=float, copy=True)
    y[2] = np.nan
    with pytest.raises(ValueError, match=_MESSAGES):
        _fit(clone(estimator), X, y)


@pytest.mark.parametrize("estimator", _INSTANCES, ids=_IDS)
def test_empty_and_wrong_ndim_raise(estimator):
    X, y = _data(estimator)
    with pytest.raises(ValueError, match=_MESSAGES):
        _fit(clone(estimator), np.empty((0, X.shape[1])), None if y is None else y[:0])
    with pytest.raises(ValueError, match=_MESSAGES):
        _fit(clone(estimator), X[:, 0], y)
    with pytest.raises(ValueError, match=_MESSAGES):
        _fit(clone(estimator), X[:, :, None], y)


@pytest.mark.parametrize("estimator", _SUPERVISED, ids=_SUPERVISED_IDS)
def test_mismatched_lengths_raise(estimator):
    X, y = _data(estimator)
    with pytest.raises(ValueError, match=_MESSAGES):
        _fit(clone(estimator), X, y[:-3])


@pytest.mark.parametrize("estimator", _INSTANCES, ids=_IDS)
def test_strings_raise(estimator):
    X, y = _data(estimator)
    Xs = np.asarray(X).astype(object)
    Xs[0, 0] = "a string"
    with pytest.raises((ValueError, TypeError), match=_MESSAGES):
        _fit(clone(estimator), Xs, y)


@pytest.mark.parametrize("estimator", _INSTANCES, ids=_IDS)
def test_inputs_are_not_modified(estimator):
    X, y = _data(estimator)
    X_before, y_before = copy.deepcopy(X), copy.deepcopy(y)
    est = _fit(clone(estimator), X, y)
    np.testing.assert_array_equal(X, X_before)
    if y is not None:
        np.testing.assert_array_equal(y, y_before)
    for method in ("predict", "transform", "predict_proba"):
        if hasattr(est, method):
            getattr(est, method)(X)
            np.testing.assert_array_equal(X, X_before)


@pytest.mark.parametrize("estimator", _INSTANCES, ids=_IDS)
def test_wrong_number_of_features_at_predict(estimator):
    X, y = _data(estimator)
    est = _fit(clone(estimator), X, y)
    method = next(m for m in ("predict", "transform") if hasattr(est, m))
    with pytest.raises(ValueError, match="features"):
        getattr(est, method)(np.hstack([X, X]))


def _bad_values(constraints):
    """Values that violate every constraint in the list (a wrong type and out of range)."""
    from numbers import Integral, Real

    from sparsestat.utils._compat import Interval, StrOptions

    candidates = ["not-a-valid-option", -1e9, 1e18, -1, 0, 0.5, 1.5, object()]
    bad = []
    for value in candidates:
        ok = False
        for c in constraints:
            if c is None:
                ok |= value is None
            elif c == "boolean":
                ok |= isinstance(value, bool)
            elif c == "random_state":
                ok |= isinstance(value, Integral) and 0 <= value < 2**32
            elif isinstance(c, Interval):
                is_num = isinstance(value, Real) and not isinstance(value, bool)
                ok |= is_num and c.is_satisfied_by(value)
            elif isinstance(c, StrOptions):
                ok |= c.is_satisfied_by(value)
            else:
                ok = True  # a constraint we cannot judge: skip this value
        if not ok:
            bad.append(value)
    return bad


@pytest.mark.parametrize("estimator", _INSTANCES, ids=_IDS)
def test_out_of_range_parameters_raise(estimator):
    constraints = getattr(estimator, "_parameter_constraints", None)
    assert constraints, f"{type(estimator).__name__} declares no _parameter_constraints"
    X, y = _data(estimator)
    n_checked = 0
    for name, cons in constraints.items():
        if cons == "no_validation":
            continue
        for value in _bad_values(cons)[:2]:
            est = clone(estimator).set_params(**{name: value})
            with pytest.raises(InvalidParameterError, match=name):
                _fit(est, X, y)
            n_checked += 1
    assert n_checked > 0


@settings(max_examples=15, deadline=None, derandomize=True)  # same examples on every run
@given(
    X=arrays(
        np.float64,
        st.tuples(st.integers(6, 20), st.integers(2, 6)),
        elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
    )
)
def test_fit_predict_on_arbitrary_finite_data(X):
    """Finite data of any scale fits and predicts finite values (or raises a clear error)."""
    for estimator in _INSTANCES:
        if is_classifier(estimator) or type(estimator).__name__ in DATA_ADAPTERS:
            continue
        if not hasattr(estimator, "predict"):
            continue
        y = X[:, 0] + 1.0
        try:
            est = clone(estimator).fit(X, y)
        except ValueError as exc:  # e.g. divergence on badly scaled data, reported clearly:
            # the message must name the parameter to change
            named = [
                p
                for p in estimator.get_params(deep=False)
                if re.search(rf"\b{re.escape(p)}\b", str(exc))
            ]
            assert named, f"{type(estimator).__name__}: {exc!s} names none of its parameters"
            continue
        assert np.all(np.isfinite(est.predict(X)))
