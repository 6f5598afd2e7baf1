"""Client reports, report files and a server built from public parameters only."""

from __future__ import annotations

import json
import pathlib
import pickle
import warnings

import numpy as np
import pytest

from sparsestat.privacy import (
    BudgetAccountant,
    LDPReports,
    fit_ldp_dask,
    opendp_available,
)
from sparsestat.privacy import LDPSparseLinearRegression as _LDPSparseLinearRegression


def LDPSparseLinearRegression(*args, fit_intercept=False, **kwargs):
    """The paper's estimator, without intercept (these tests check its formulas)."""
    return _LDPSparseLinearRegression(*args, fit_intercept=fit_intercept, **kwargs)


pytestmark = pytest.mark.skipif(not opendp_available(), reason="client reports need opendp")

PUBLIC = {"epsilon": 1.0, "delta": 1e-6, "bounds_X": 1.0, "bounds_y": 1.5}


def _rows(n, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, d))
    return X, X @ np.arange(1.0, d + 1) / d


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "the predicted error bound", UserWarning)
        return func(*args, **kwargs)


def test_a_server_needs_only_public_parameters():
    X, y = _rows(20)
    acc = BudgetAccountant(epsilon=1.0, delta=1e-6)
    reports = LDPSparseLinearRegression(**PUBLIC, accountant=acc).privatize(X, y)
    assert acc.spent(19) == (1.0, 1e-6)  # the client's budget is charged on the client
    server_acc = BudgetAccountant()
    server = LDPSparseLinearRegression(**PUBLIC, accountant=server_acc)
    _quiet(server.add_reports, reports)
    assert server.n_users_seen_ == 20 and server.n_features_in_ == 3
    assert server.formal_guarantee_
    assert server_acc.max_spent == (0.0, 0.0)  # the server privatised nothing
    np.testing.assert_allclose(server.sum_xy_, reports.v.sum(axis=0), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize(
    "field, server_params",
    [
        ("epsilon", {"epsilon": 8.0}),
        ("delta", {"delta": 1e-7}),
        ("bounds_X", {"bounds_X": 2.0}),
        ("bounds_y", {"bounds_y": 1.0}),
        ("calibration", {"calibration": "classic"}),
        ("fit_intercept", {"fit_intercept": True}),
    ],
)
def test_reports_made_under_other_parameters_are_refused(field, server_params):
    X, y = _rows(5)
    reports = LDPSparseLinearRegression(**PUBLIC).privatize(X, y)
    server = LDPSparseLinearRegression(**{**PUBLIC, **server_params})
    with pytest.raises(ValueError, match=rf"other public parameters.*{field}: reports"):
        server.add_reports(reports)
    assert not hasattr(server, "n_users_seen_") or server.n_users_seen_ == 0


def test_tampered_metadata_is_refused():
    X, y = _rows(5)
    reports = LDPSparseLinearRegression(**PUBLIC).privatize(X, y)
    for key, value in [
        ("library_version", "0.0.1"),
        ("mechanism", "laplace"),
        ("sigma", [1.0, 1.0]),
        ("units", {"xx": 1.0, "xy": 1.0}),
        ("estimator", "LDPIHTRegressor"),
    ]:
        bad = LDPReports(reports.values, reports.user_ids, {**reports.metadata, key: value})
        with pytest.raises(ValueError, match=key):
            LDPSparseLinearRegression(**PUBLIC).add_reports(bad)
    wide = LDPSparseLinearRegression(**PUBLIC).privatize(*_rows(5, d=4))
    server = _quiet(LDPSparseLinearRegression(**PUBLIC).add_reports, reports)
    with pytest.raises(ValueError, match="n_features"):
        server.add_reports(wide)
    public = LDPSparseLinearRegression(**PUBLIC, public_X=_rows(30, seed=2)[0])
    with pytest.raises(ValueError, match="channels"):
        public.add_reports(reports)


def test_simulated_reports_are_refused_unless_declared():
    X, y = _rows(5)
    sim = LDPSparseLinearRegression(**PUBLIC, random_state=0).privatize(X, y, simulation=True)
    assert sim.metadata["simulation"] and sim.metadata["sampler"] == "numpy"
    with pytest.raises(ValueError, match="simulation=True"):
        LDPSparseLinearRegression(**PUBLIC).add_reports(sim)
    server = _quiet(LDPSparseLinearRegression(**PUBLIC).add_reports, sim, simulation=True)
    assert not server.formal_guarantee_
    with pytest.raises(TypeError, match="LDPReports"):
        LDPSparseLinearRegression(**PUBLIC).add_reports(sim.M)


def test_clients_and_servers_need_the_bounds():
    X, y = _rows(5)
    with pytest.raises(ValueError, match="privatize needs bounds_X and bounds_y"):
        LDPSparseLinearRegression(epsilon=1.0).privatize(X, y)
    reports = LDPSparseLinearRegression(**PUBLIC).privatize(X, y)
    with pytest.raises(ValueError, match="a server needs bounds_X and bounds_y"):
        LDPSparseLinearRegression(epsilon=1.0, delta=1e-6).add_reports(reports)


def test_report_files_round_trip_and_bad_files(tmp_path):
    X, y = _rows(7)
    reports = LDPSparseLinearRegression(**PUBLIC).privatize(X, y, user_ids=np.arange(10, 17))
    path = tmp_path / "r.npz"
    reports.save(path)
    again = LDPReports.load(path)
    np.testing.assert_array_equal(again.values["xx"], reports.values["xx"])
    np.testing.assert_array_equal(again.v, reports.v)
    np.testing.assert_array_equal(again.user_ids, np.arange(10, 17))
    assert again.metadata == json.loads(json.dumps(reports.metadata))
    with pytest.raises(ValueError, match="NaN"):
        LDPReports({"xy": np.full((1, 3), np.nan)}, [0], reports.metadata)
    np.savez(tmp_path / "bad.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a reports file"):
        LDPReports.load(tmp_path / "bad.npz")
    reports.metadata["format"] = "something-else"
    reports.save(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="unknown reports format"):
        LDPReports.load(tmp_path / "other.npz")


def test_a_user_reports_once_per_server():
    X, y = _rows(4)
    a = LDPSparseLinearRegression(**PUBLIC).privatize(X[:2], y[:2])  # ids 0, 1
    b = LDPSparseLinearRegression(**PUBLIC).privatize(X[2:], y[2:])  # ids 0, 1 again
    server = _quiet(LDPSparseLinearRegression(**PUBLIC).add_reports, a)
    with pytest.raises(ValueError, match="already reported.*own user id"):
        server.add_reports(b)
    assert server.n_users_seen_ == 2


RECIPE = pathlib.Path(__file__).resolve().parents[1] / "examples/privacy/plot_deployment_recipe.py"


def _recipe():
    """The recipe's code exactly as the threat-model page shows it (between its markers)."""
    code = RECIPE.read_text().split("# [recipe-start]")[1].split("# [recipe-end]")[0]
    namespace = {
        "pathlib": pathlib,
        "LDPReports": LDPReports,
        "LDPSparseLinearRegression": _LDPSparseLinearRegression,
    }
    exec(compile(code, str(RECIPE), "exec"), namespace)
    return namespace


def test_deployment_recipe_end_to_end(tmp_path):
    """The recipe of the threat-model page: device privatize -> file -> server -> estimate."""
    recipe = _recipe()
    device, server = recipe["device"], recipe["server"]

    X, y = _rows(120, seed=5)
    paths = [device(X[i : i + 1], y[i : i + 1], 1000 + i, tmp_path) for i in range(120)]
    assert all(p.exists() for p in paths)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "the predicted error bound", UserWarning)
        model = server(paths)
        dist = fit_ldp_dask(_LDPSparseLinearRegression(**recipe["PUBLIC"]), reports=paths)
        shuffled = server(paths[::-1])
    assert model.n_users_seen_ == 120 and model.formal_guarantee_
    for other in (dist, shuffled):  # the sums are exact: any order, any worker
        np.testing.assert_array_equal(other.sum_xx_, model.sum_xx_)
        np.testing.assert_array_equal(other.coef_, model.coef_)
    loaded = [LDPReports.load(p) for p in paths]
    np.testing.assert_allclose(
        model.sum_xy_, np.sum([r.v[0] for r in loaded], axis=0), rtol=1e-12, atol=1e-9
    )
    assert sorted(int(r.user_ids[0]) for r in loaded) == list(range(1000, 1120))
    assert pickle.loads(pickle.dumps(model)).n_users_seen_ == 120
