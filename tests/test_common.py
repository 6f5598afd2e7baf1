"""scikit-learn's estimator checks, and the library's own conventions, over every estimator.

The only skips are scikit-learn's own: for an estimator that declares ``array_api_support``,
its array-API checks skip each namespace or device this machine lacks (CuPy, CUDA, XPU,
MPS, dpnp), with that reason; ``gpu/`` runs the device comparisons on a CUDA machine.
"""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest
from sklearn.base import clone, is_classifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import has_fit_parameter

from sparsestat.utils import all_estimators
from tests._instances import expected_failed_checks, instances, sample_data

_INSTANCES = list(instances())
#: the first registered instance of each estimator, for the slower convention checks
_ONE_EACH = list({type(e).__name__: e for e in reversed(_INSTANCES)}.values())[::-1]
_ONE_EACH_IDS = [type(e).__name__ for e in _ONE_EACH]

#: methods that act row by row on a fitted estimator
_ROWWISE_METHODS = ("predict", "predict_proba", "decision_function", "transform")

#: estimators whose scikit-learn analogue takes ``sample_weight`` (they must too)
SAMPLE_WEIGHT_REQUIRED = {
    "IHTRegressor",
    "LqRegression",
    "RandomSupportRegressor",
    "SparseBayesianLearning",
    "GaussianMoERegressor",
    "SparseAutoencoder",
    "SSVIClassifier",
    "SSVIRegressor",
    "MeanFieldVIClassifier",
    "COMETMoEClassifier",
    "COMETMoERegressor",
    "GroupEnvelopeMLPClassifier",
    "GroupEnvelopeMLPRegressor",
    "SparseMLPClassifier",
    "SparseMLPRegressor",
}


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


def _outputs(est, X) -> dict[str, np.ndarray]:
    out = {}
    for method in _ROWWISE_METHODS:
        if hasattr(est, method):
            result = getattr(est, method)(X)
            out[method] = result.toarray() if hasattr(result, "toarray") else np.asarray(result)
    return out


@pytest.mark.parametrize("estimator", _ONE_EACH, ids=_ONE_EACH_IDS)
def test_fitted_estimator_pickles_and_predicts_the_same(estimator):
    X, y = sample_data(estimator, n=40)
    est = clone(estimator).fit(X, y)
    again = pickle.loads(pickle.dumps(est))
    assert repr(again) == repr(est)
    before, after = _outputs(est, X), _outputs(again, X)
    assert before, f"{type(est).__name__} has none of {_ROWWISE_METHODS}"
    for method, value in before.items():
        np.testing.assert_array_equal(after[method], value, err_msg=method)


@pytest.mark.parametrize("name", sorted(SAMPLE_WEIGHT_REQUIRED))
def test_sample_weight_is_accepted_where_scikit_learn_has_it(name):
    cls = dict(all_estimators())[name]
    assert has_fit_parameter(cls, "sample_weight"), f"{name}.fit takes no sample_weight"


_TRANSFORMERS = [e for e in _ONE_EACH if hasattr(e, "transform")]


@pytest.mark.parametrize("estimator", _TRANSFORMERS, ids=lambda e: type(e).__name__)
def test_set_output_pandas_in_a_pipeline(estimator):
    pd = pytest.importorskip("pandas")
    X, y = sample_data(estimator, n=40)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])], index=np.arange(40) + 7)
    pipe = Pipeline([("scale", StandardScaler()), ("est", clone(estimator))])
    out = pipe.set_output(transform="pandas").fit(frame, y).transform(frame)
    assert isinstance(out, pd.DataFrame)
    names = list(pipe[-1].get_feature_names_out())
    assert list(out.columns) == names and len(set(names)) == out.shape[1]
    assert (out.index == frame.index).all()


@pytest.mark.parametrize("estimator", _ONE_EACH, ids=_ONE_EACH_IDS)
def test_rowwise_methods_accept_dask_arrays_lazily(estimator):
    da = pytest.importorskip("dask.array")
    X, y = sample_data(estimator, n=40)
    est = clone(estimator).fit(X, y)
    Xd = da.from_array(X, chunks=(13, X.shape[1]))
    expected = _outputs(est, X)
    for method in expected:
        lazy = getattr(est, method)(Xd)
        assert isinstance(lazy, da.Array), f"{method} returned {type(lazy).__name__}"
        assert lazy.shape == expected[method].shape, method
        got = lazy.compute()
        got = got.toarray() if hasattr(got, "toarray") else got
        if expected[method].dtype.kind in "fc":
            np.testing.assert_allclose(got, expected[method], rtol=0, atol=1e-12, err_msg=method)
        else:
            np.testing.assert_array_equal(got, expected[method], err_msg=method)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, processes=False, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _one_value_grid(estimator) -> dict[str, list]:
    params = estimator.get_params(deep=False)
    if "random_state" in params:  # a fixed seed, so that the refit equals a direct fit
        return {"random_state": [0]}
    for name in ("tol", "verbose"):
        if name in params:
            return {name: [params[name]]}
    name = next(iter(inspect.signature(type(estimator).__init__).parameters.keys() - {"self"}))
    return {name: [params[name]]}


@pytest.mark.parametrize("estimator", _ONE_EACH, ids=_ONE_EACH_IDS)
def test_grid_search_on_the_dask_joblib_backend(estimator, dask_client):
    from joblib import parallel_backend

    X, y = sample_data(estimator, n=40)
    scoring = None if hasattr(estimator, "score") else (lambda est, X, y=None: 0.0)
    search = GridSearchCV(
        clone(estimator), _one_value_grid(estimator), cv=2, scoring=scoring, error_score="raise"
    )
    with parallel_backend("dask"):
        search.fit(X, y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    direct = clone(estimator).set_params(**search.best_params_).fit(X, y)
    for method, value in _outputs(direct, X).items():
        np.testing.assert_allclose(
            _outputs(search.best_estimator_, X)[method], value, rtol=1e-10, atol=1e-12
        )
    if is_classifier(estimator):
        assert set(search.predict(X)) <= set(np.unique(y))
