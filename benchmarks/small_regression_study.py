"""The torch regressors on a small regression problem: defaults against ``early_stopping=True``.

scikit-learn's diabetes data (442 rows, 10 features), ``StandardScaler`` in front, 3-fold
shuffled cross-validation (``KFold(3, shuffle=True, random_state=0)``), R^2 of each torch
regressor with its defaults and with ``early_stopping=True``, next to scikit-learn's
``MLPRegressor`` (its defaults, on a standardised target) the same two ways. Usage::

    OMP_NUM_THREADS=1 python benchmarks/small_regression_study.py
"""

from __future__ import annotations

import warnings

from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes
from sklearn.model_selection import KFold, cross_val_score
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sparsestat.neural import (
    COMETMoERegressor,
    GroupEnvelopeMLPRegressor,
    SparseMLPRegressor,
    SSVIRegressor,
)


def _score(est, X, y, cv):
    return cross_val_score(make_pipeline(StandardScaler(), est), X, y, cv=cv).mean()


def main() -> None:
    X, y = load_diabetes(return_X_y=True)
    cv = KFold(3, shuffle=True, random_state=0)
    print("| regressor | R^2, defaults | R^2, early_stopping=True |")
    print("|---|---|---|")
    for cls in (SparseMLPRegressor, COMETMoERegressor, GroupEnvelopeMLPRegressor, SSVIRegressor):
        est = cls(random_state=0, device="cpu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plain = _score(est, X, y, cv)
            early = _score(est.set_params(early_stopping=True), X, y, cv)
        print(f"| {cls.__name__} | {plain:.3f} | {early:.3f} |")

    def mlp(**kw):  # scikit-learn's MLPRegressor, defaults, on a standardised target
        return TransformedTargetRegressor(
            regressor=MLPRegressor(random_state=0, **kw), transformer=StandardScaler()
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain, early = _score(mlp(), X, y, cv), _score(mlp(early_stopping=True), X, y, cv)
    print(f"| scikit-learn MLPRegressor (standardised target) | {plain:.3f} | {early:.3f} |")


if __name__ == "__main__":
    main()
