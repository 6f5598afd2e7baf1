"""Oracles for LqRegression, LqRegressionCV, lq_path and the working-set CD solver."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, LassoCV, lasso_path
from sklearn.model_selection import GridSearchCV, KFold

from sparsestat._kernels._dispatch import force_backend
from sparsestat._kernels.cd import coordinate_alpha_max, penalty_spec
from sparsestat._solvers.cd import alpha_max, cd_solve, make_problem
from sparsestat.linear_model import LqRegression, LqRegressionCV, lq_path
from sparsestat.penalties import CEL0, L1, L1_2, GroupL1, Lq, make_penalty

PENALTIES = ["l1", "l0", "l1/2", "lq", "cel0"]


def _data(n=80, d=40, k=4, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = np.zeros(d)
    w[rng.choice(d, k, replace=False)] = rng.choice([-2.0, 2.0], k)
    y = X @ w + 0.5 + noise * rng.standard_normal(n)
    return X, y, w


def _objective(X, y, w, name, alpha, q=0.5):
    """``1/(2n) ||y - X w||^2 + P(w)`` written from the definitions (CEL0 with sqrt(L))."""
    n = X.shape[0]
    if name == "cel0":
        pen = CEL0(alpha, atom_norms=np.sqrt(np.sum(X**2, axis=0) / n))
    else:
        pen = make_penalty(name, alpha=alpha, q=q)
    return 0.5 * np.sum((y - X @ w) ** 2) / n + pen.value(w)


def test_l1_equals_sklearn_lasso():
    X, y, _ = _data()
    for fit_intercept in (True, False):
        ours = LqRegression("l1", alpha=0.05, fit_intercept=fit_intercept, tol=1e-12).fit(X, y)
        ref = Lasso(alpha=0.05, fit_intercept=fit_intercept, tol=1e-14, max_iter=100000).fit(X, y)
        np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-7)
        np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-7)
        assert ours.certificate_kind_ == "duality_gap" and ours.converged_


def test_l1_with_sample_weight_equals_sklearn_lasso():
    X, y, _ = _data(seed=7)
    sw = np.random.default_rng(3).uniform(0.1, 3.0, X.shape[0])
    ours = LqRegression("l1", alpha=0.05, tol=1e-12).fit(X, y, sample_weight=sw)
    ref = Lasso(alpha=0.05, tol=1e-14, max_iter=100000).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-7)
    assert ours.intercept_ == pytest.approx(ref.intercept_, abs=1e-7)


@pytest.mark.parametrize("name", PENALTIES)
def test_coordinatewise_fixed_point(name):
    """At convergence every coordinate is its own prox step (checked with penalty objects)."""
    X, y, _ = _data(seed=1)
    alpha = 0.05
    reg = LqRegression(name, alpha=alpha, q=0.7, fit_intercept=False, tol=1e-12).fit(X, y)
    n = X.shape[0]
    L = np.sum(X**2, axis=0) / n
    g = -X.T @ (y - X @ reg.coef_) / n
    pen = make_penalty(name, alpha=alpha, q=0.7)
    if name == "cel0":
        # gamma a^2 = 1: the CEL0 coordinate prox is the hard threshold at sqrt(2 alpha / L)
        z = reg.coef_ - g / L
        again = np.where(np.abs(z) > np.sqrt(2 * alpha / L), z, 0.0)
    else:
        again = pen.prox(reg.coef_ - g / L, 1.0 / L)
    np.testing.assert_allclose(again, reg.coef_, atol=1e-8)
    assert reg.certificate_ <= 1e-12


@pytest.mark.parametrize("name", PENALTIES)
def test_objective_never_increases_with_more_iterations(name):
    X, y, _ = _data(seed=9)
    values = []
    for max_iter in (1, 2, 4, 50):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            w = LqRegression(name, alpha=0.03, fit_intercept=False, max_iter=max_iter).fit(X, y)
        values.append(_objective(X, y, w.coef_, name, 0.03))
    assert all(b <= a + 1e-12 for a, b in zip(values, values[1:])), values


def test_recovers_planted_support():
    X, y, w = _data(n=100, d=60, noise=0.05, seed=2)
    for name in ["l0", "l1/2", "cel0"]:
        reg = LqRegression(name, alpha=0.02).fit(X, y)
        assert set(np.flatnonzero(reg.coef_)) == set(np.flatnonzero(w)), name
        np.testing.assert_allclose(reg.coef_, w, atol=0.05)


@pytest.mark.parametrize("wide", [False, True])
def test_numba_matches_generic_cd(wide):
    """Both the Gram (narrow) and the residual (wide working set) epochs, dense and sparse."""
    X, y, _ = _data(n=16 if wide else 40, d=25, seed=3)
    for Xin in (X, sp.csc_matrix(np.where(np.abs(X) > 0.5, X, 0.0))):
        problem = make_problem(Xin, y, fit_intercept=True)
        for name in PENALTIES:
            a = cd_solve(problem, name, 0.01, q=0.6, tol=1e-10, p0=25 if wide else 10)
            with force_backend("generic"):
                b = cd_solve(problem, name, 0.01, q=0.6, tol=1e-10, p0=25 if wide else 10)
            np.testing.assert_allclose(a["coef"], b["coef"], atol=1e-10)
            # the same iterations up to rounding (which can flip an Anderson acceptance test
            # at the last digit, so epoch counts may differ slightly): both converge
            assert a["converged"] and b["converged"]


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("wide", [False, True])
def test_sparse_input_equals_dense_fit(fmt, fit_intercept, wide):
    """CSR / CSC input (centred implicitly, never densified) gives the dense solution."""
    X, y, _ = _data(n=30 if wide else 80, d=50, seed=4)
    X[np.abs(X) < 0.7] = 0.0
    sw = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0])
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    for name in PENALTIES:
        kw = {"alpha": 0.02, "fit_intercept": fit_intercept, "tol": 1e-12, "max_iter": 500}
        dense = LqRegression(name, **kw).fit(X, y, sample_weight=sw)
        sparse = LqRegression(name, **kw).fit(Xs, y, sample_weight=sw)
        np.testing.assert_allclose(sparse.coef_, dense.coef_, atol=1e-8)
        assert sparse.intercept_ == pytest.approx(dense.intercept_, abs=1e-8)
        np.testing.assert_allclose(sparse.predict(Xs), dense.predict(X), atol=1e-8)


@pytest.mark.parametrize("name", PENALTIES)
def test_integer_weights_equal_repeated_rows(name):
    X, y, _ = _data(n=50, d=20, seed=5)
    sw = np.random.default_rng(1).integers(0, 4, 50)
    rep = np.repeat(np.arange(50), sw)
    a = LqRegression(name, alpha=0.05, tol=1e-12).fit(X, y, sample_weight=sw)
    b = LqRegression(name, alpha=0.05, tol=1e-12).fit(X[rep], y[rep])
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-8)
    assert a.intercept_ == pytest.approx(b.intercept_, abs=1e-8)


def test_warm_start_and_penalty_objects():
    X, y, _ = _data(seed=5)
    reg = LqRegression(L1_2(alpha=0.05), warm_start=True).fit(X, y)
    first = reg.n_epochs_
    reg.fit(X, y)
    assert reg.n_epochs_ <= max(first // 2, 1)
    by_object = LqRegression(L1_2(alpha=0.05)).fit(X, y).coef_
    np.testing.assert_array_equal(by_object, LqRegression("l1/2", alpha=0.05).fit(X, y).coef_)
    np.testing.assert_array_equal(by_object, LqRegression("l1_2", alpha=0.05).fit(X, y).coef_)
    with pytest.raises(ValueError, match="coordinate descent supports"):
        LqRegression(GroupL1(groups=np.zeros(40, int))).fit(X, y)


def test_penalties_hand_their_kernel_code_down():
    assert penalty_spec(L1(0.3)) == ("l1", 0.3, 1.0, None)
    assert penalty_spec(Lq(0.2, q=0.3)) == ("lq", 0.2, 0.3, None)
    assert penalty_spec(L1_2(0.1)) == penalty_spec("l1_2", alpha=0.1) == ("l1/2", 0.1, 0.5, None)
    name, alpha, _, norms = penalty_spec(CEL0(0.4, atom_norms=[1.0, 2.0]))
    assert (name, alpha) == ("cel0", 0.4) and norms.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="penalty must be one of"):
        penalty_spec("l2")


def test_grid_search_over_flat_alpha_with_a_string_penalty():
    X, y, _ = _data(n=90, d=15, noise=0.5, seed=8)
    for name in ("l1_2", "l1/2", "cel0"):
        search = GridSearchCV(LqRegression(name), {"alpha": [1e-3, 0.05, 5.0]}, cv=3).fit(X, y)
        assert search.best_params_["alpha"] == 0.05
        assert np.count_nonzero(search.best_estimator_.coef_) == 4


def test_convergence_warning_names_the_certificate():
    X, y, _ = _data(seed=5)
    with pytest.warns(ConvergenceWarning, match="duality_gap"):
        reg = LqRegression("l1", alpha=1e-4, max_iter=1, tol=1e-15).fit(X, y)
    assert not reg.converged_
    with pytest.warns(ConvergenceWarning, match="fixpoint_distance"):
        LqRegression("l0", alpha=1e-4, max_iter=1, tol=1e-15).fit(X, y)


def test_lq_path_warns_when_a_solve_is_unconverged():
    X, y, _ = _data(seed=6)
    with pytest.warns(ConvergenceWarning, match=r"lq_path: \d+ of 5 solves"):
        lq_path(X, y, penalty="l1/2", alphas=5, max_iter=1, tol=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lq_path(X, y, penalty="l1/2", alphas=5)


def test_verbose_shows_a_progress_bar(capsys):
    X, y, _ = _data(seed=6)
    LqRegression("l0", alpha=0.01, verbose=1).fit(X, y)
    assert "CD (l0)" in capsys.readouterr().err
    LqRegression("l0", alpha=0.01, verbose=0).fit(X, y)
    assert capsys.readouterr().err == ""


def test_path_l1_matches_lasso_path():
    X, y, _ = _data(seed=6)
    Xc, yc = X - X.mean(0), y - y.mean()
    alphas, coefs, certs = lq_path(Xc, yc, penalty="l1", alphas=8, tol=1e-12)
    ref_alphas, ref_coefs, _ = lasso_path(Xc, yc, alphas=alphas, tol=1e-14, max_iter=100000)
    np.testing.assert_allclose(coefs, ref_coefs, atol=1e-6)
    assert np.all(certs <= 1e-12)


@pytest.mark.parametrize("name", PENALTIES)
@pytest.mark.parametrize("seed", range(20))
def test_alpha_max_is_a_fixed_point_and_tight(name, seed):
    """Zero at alpha_max on every seed, nonzero 2 % below it (no tie left to rounding)."""
    X, y, _ = _data(seed=seed)
    Xc, yc = X - X.mean(0), y - y.mean()
    alphas, coefs, _ = lq_path(Xc, yc, penalty=name, alphas=3, eps=0.99)
    assert np.all(coefs[:, 0] == 0)
    _, c, _ = lq_path(Xc, yc, penalty=name, alphas=[alphas[0] * 0.98])
    assert np.any(c != 0)


@pytest.mark.parametrize("name", PENALTIES)
def test_alpha_max_formula_matches_the_threshold_definitions(name):
    """The closed forms against the thresholds of each prox, written independently."""
    rng = np.random.default_rng(0)
    c, L = rng.standard_normal(6), rng.uniform(0.5, 2.0, 6)
    a = np.sqrt(L)
    q = 0.3 if name == "lq" else 0.5
    got = coordinate_alpha_max(c, L, {"l1": 0, "l0": 1, "l1/2": 2, "lq": 3, "cel0": 4}[name], q, a)
    z = np.abs(c) / L
    if name == "l1":
        want = np.abs(c)  # soft threshold alpha / L = z
    elif name in ("l0", "cel0"):
        want = 0.5 * L * z**2  # hard threshold sqrt(2 alpha / L) = z
    elif name == "l1/2":
        want = L * (2 * z / 3) ** 1.5  # (3/2) (alpha / L)^(2/3) = z
    else:  # tau_q = (2 - q) / (2 (1 - q)) (2 t (1 - q))^(1 / (2 - q)) = z, t = alpha / L
        want = L * (z * 2 * (1 - q) / (2 - q)) ** (2 - q) / (2 * (1 - q))
    np.testing.assert_allclose(got, want, rtol=1e-13)
    problem = make_problem(rng.standard_normal((10, 6)), rng.standard_normal(10))
    amax = alpha_max(problem, name, q=q)
    assert amax == pytest.approx(
        np.max(
            coordinate_alpha_max(
                problem.design.corr(problem.y),
                problem.sq_norms,
                {"l1": 0, "l0": 1, "l1/2": 2, "lq": 3, "cel0": 4}[name],
                q,
                np.sqrt(problem.sq_norms),
            )
        )
        * (1 + 1e-10),
        rel=1e-15,
    )


def test_cv_l1_equals_lasso_cv_on_the_same_folds_and_grid():
    X, y, _ = _data(n=90, d=30, noise=0.5, seed=10)
    folds = KFold(4, shuffle=True, random_state=0)
    sw = np.random.default_rng(2).uniform(0.5, 2.0, 90)
    for weights in (None, sw):
        ours = LqRegressionCV("l1", alphas=25, cv=folds, tol=1e-10, max_iter=500)
        ours.fit(X, y, sample_weight=weights)
        ref = LassoCV(alphas=ours.alphas_, cv=folds, tol=1e-12, max_iter=100000)
        ref.fit(X, y, sample_weight=weights)
        np.testing.assert_allclose(ours.mse_path_, ref.mse_path_, rtol=1e-7)
        assert ours.alpha_ == ref.alpha_
        np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-7)
        assert ours.intercept_ == pytest.approx(ref.intercept_, abs=1e-7)


@pytest.mark.parametrize("name", ["l0", "l1/2", "cel0"])
def test_cv_nonconvex_scores_are_the_warm_started_path_errors(name):
    X, y, w = _data(n=90, d=30, noise=0.3, seed=11)
    folds = KFold(3)
    model = LqRegressionCV(name, alphas=12, cv=folds).fit(X, y)
    assert set(np.flatnonzero(model.coef_)) == set(np.flatnonzero(w))
    for j, (train, test) in enumerate(folds.split(X)):
        Xt, yt = X[train], y[train]
        xm, ym = Xt.mean(0), yt.mean()
        _, coefs, _ = lq_path(Xt - xm, yt - ym, penalty=name, alphas=model.alphas_)
        pred = X[test] @ coefs + (ym - xm @ coefs)
        mse = np.mean((pred - y[test][:, None]) ** 2, axis=0)
        np.testing.assert_allclose(model.mse_path_[:, j], mse, rtol=1e-9)


def test_dask_predict_is_lazy_and_equal():
    da = pytest.importorskip("dask.array")
    X, y, _ = _data(seed=12)
    for model in (LqRegression("l0", alpha=0.02).fit(X, y), LqRegressionCV(alphas=5).fit(X, y)):
        pred = model.predict(da.from_array(X, chunks=(30, 40)))
        assert isinstance(pred, da.Array) and pred.shape == (80,)
        np.testing.assert_allclose(pred.compute(), model.predict(X), rtol=0, atol=1e-12)


def test_float32_in_float32_out():
    X, y, _ = _data(seed=13)
    reg = LqRegression("l1/2", alpha=0.05).fit(X.astype(np.float32), y.astype(np.float32))
    assert reg.coef_.dtype == np.float32
    assert reg.predict(X.astype(np.float32)).dtype == np.float32


def test_lq_path_n_alphas_is_deprecated_but_works():
    X, y, _ = _data(seed=14)
    with pytest.warns(FutureWarning, match="n_alphas is deprecated"):
        alphas, coefs, _ = lq_path(X, y, penalty="l0", n_alphas=4)
    new_alphas, new_coefs, _ = lq_path(X, y, penalty="l0", alphas=4)
    np.testing.assert_array_equal(alphas, new_alphas)
    np.testing.assert_array_equal(coefs, new_coefs)
