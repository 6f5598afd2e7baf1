"""The torch estimators on a dask cluster of processes: fitted models travel between them.

The fast suite's common tests run ``GridSearchCV`` on an in-process cluster (threads share
objects, nothing is pickled); here the workers are separate processes, so every fitted torch
model that ``cross_validate(return_estimator=True)`` returns went through pickling, from a
worker to the client. Slow: starting the processes takes 15-20 s.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
distributed = pytest.importorskip("distributed")

pytestmark = [pytest.mark.torch, pytest.mark.slow]


def _estimators():
    from sparsestat.neural import (
        COMETMoEClassifier,
        GroupEnvelopeMLPClassifier,
        MeanFieldVIClassifier,
        SparseMLPClassifier,
        SSVIClassifier,
    )

    small = {"max_epochs": 3, "random_state": 0, "device": "cpu"}
    return [
        SparseMLPClassifier(hidden_layer_sizes=(16,), method="rigl", **small),
        SSVIClassifier(hidden_layer_sizes=(16,), n_mc_samples=4, **small),
        MeanFieldVIClassifier(hidden_layer_sizes=(16,), n_mc_samples=4, **small),
        COMETMoEClassifier(n_experts=4, expert_hidden=(8,), **small),
        GroupEnvelopeMLPClassifier(hidden_layer_sizes=(16,), finetune_epochs=1, **small),
    ]


def test_fitted_torch_models_come_back_from_worker_processes():
    from joblib import parallel_backend
    from sklearn.base import clone
    from sklearn.datasets import load_iris
    from sklearn.model_selection import KFold, cross_validate

    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    cv = KFold(2, shuffle=True, random_state=0)
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        for est in _estimators():
            with parallel_backend("dask"):
                out = cross_validate(est, X, y, cv=cv, return_estimator=True)
            for (train, _), remote in zip(cv.split(X), out["estimator"]):
                local = clone(est).fit(X[train], y[train])
                np.testing.assert_array_equal(
                    remote.predict_proba(X), local.predict_proba(X), err_msg=type(est).__name__
                )
