"""Validation helpers, dispatch registry, discovery, progress bars and metrics."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from sparsestat._kernels import _dispatch as D
from sparsestat.metrics import nmse, nmse_db, prediction_error, support_recovery
from sparsestat.utils import (
    all_estimators,
    check_complex_array,
    check_consistent_rows,
    check_finite_params,
    progress_bar,
    validate_complex_data,
)


# --------------------------------------------------------------------------- validation
def test_complex_array_dtypes_and_copy():
    z = np.array([[1 + 1j, 2]], dtype=np.complex64)
    assert check_complex_array(z).dtype == np.complex64
    assert check_complex_array(z.astype(np.complex128)).dtype == np.complex128
    assert check_complex_array([[1, 2]]).dtype == np.float64
    assert check_complex_array(np.ones((1, 2), np.float32)).dtype == np.float32
    out = check_complex_array(z, copy=True)
    out[0, 0] = 0
    assert z[0, 0] == 1 + 1j


@pytest.mark.parametrize(
    ("X", "kwargs", "exc", "match"),
    [
        (np.array([[np.nan, 1j]]), {}, ValueError, "NaN or infinity"),
        (np.array([[np.inf, 1.0]]), {}, ValueError, "NaN or infinity"),
        (np.ones(3), {}, ValueError, "Expected 2D"),
        (np.ones((2, 2, 2)), {}, ValueError, "dim 3"),
        (np.ones((0, 2)), {}, ValueError, "0 sample"),
        (np.ones((2, 0)), {}, ValueError, "0 feature"),
        (np.array([["a", "b"]]), {}, TypeError, "numeric"),
        (np.ones((2, 2)) * 1j, {"allow_complex": False}, ValueError, "Complex data"),
    ],
)
def test_complex_array_errors(X, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        check_complex_array(X, **kwargs)


def test_validate_complex_data_checks_features_and_rows():
    est = LinearRegression()
    X, y = validate_complex_data(est, np.ones((4, 3)) * (1 + 1j), np.ones(4) * 1j)
    assert est.n_features_in_ == 3 and X.dtype == np.complex128 and y.dtype == np.complex128
    with pytest.raises(ValueError, match="expecting 3 features"):
        validate_complex_data(est, np.ones((4, 2)), reset=False)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        validate_complex_data(est, np.ones((4, 3)), np.ones(3))
    with pytest.raises(ValueError, match="y must be 1-D"):
        validate_complex_data(est, np.ones((4, 3)), np.ones((4, 2)), multi_output=False)


def test_consistent_rows_and_finite_params():
    with pytest.raises(ValueError, match="X: 3, y: 2"):
        check_consistent_rows(X=np.ones((3, 1)), y=np.ones(2))
    with pytest.raises(ValueError, match="'alpha'"):
        check_finite_params(alpha=float("nan"))


# --------------------------------------------------------------------------- dispatch
def test_dispatch_picks_backend_by_library():
    torch = pytest.importorskip("torch")
    D.register("_test_kernel", "generic")(lambda x: "generic")
    D.register("_test_kernel", "numba")(lambda x: "numba")
    assert D.get_kernel("_test_kernel", np.ones(2))(None) == "numba"
    assert D.get_kernel("_test_kernel", torch.ones(2))(None) == "generic"
    with D.force_backend("generic"):
        assert D.get_kernel("_test_kernel", np.ones(2))(None) == "generic"
    assert D.backend_name(D.get_namespace(torch.ones(1))) == "torch"
    assert D.backend_name(D.get_namespace(np.ones(1))) == "numpy"
    assert isinstance(D.to_numpy(torch.ones(2)), np.ndarray)


def test_dispatch_errors():
    with pytest.raises(KeyError, match="no kernel named"):
        D.get_kernel("does-not-exist", np.ones(1))
    with pytest.raises(ValueError, match="backend must be"):
        D.register("x", "fortran")
    D.register("_only_generic", "generic")(lambda: None)
    with D.force_backend("numba"), pytest.raises(KeyError, match="no 'numba' version"):
        D.get_kernel("_only_generic", np.ones(1))


# --------------------------------------------------------------------------- discovery etc.
def test_all_estimators_filters():
    names = [n for n, _ in all_estimators("regressor")]
    assert "IHTRegressor" in names
    assert all(n != "L1" for n, _ in all_estimators())  # penalties are not estimators
    with pytest.raises(ValueError, match="type_filter"):
        all_estimators("bogus")


def test_progress_bar_disabled_and_enabled(capsys):
    assert list(progress_bar(range(3), verbose=0)) == [0, 1, 2]
    assert list(progress_bar(range(3), verbose=1, desc="x")) == [0, 1, 2]


def test_import_is_light_and_fast():
    code = (
        "import sys, time; t = time.perf_counter(); import sparsestat; "
        "dt = time.perf_counter() - t; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'numba' not in sys.modules, 'numba imported'; print(dt)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) < 1.0


# --------------------------------------------------------------------------- metrics
def test_nmse_and_db():
    x = np.array([1.0, -2.0, 0.0])
    xh = np.array([1.1, -2.0, 0.1])
    assert nmse(x, xh) == pytest.approx(0.02 / 5)
    assert nmse_db(x, xh) == pytest.approx(10 * np.log10(0.02 / 5))
    assert nmse([0.0], [0.0]) == 0.0 and nmse([0.0], [1.0]) == np.inf
    cols = nmse(np.eye(2), np.eye(2) * 0.5, axis=0)
    np.testing.assert_allclose(cols, [0.25, 0.25])
    assert nmse([1j, 0], [0, 0]) == 1.0
    with pytest.raises(ValueError, match="same shape"):
        nmse([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        nmse([np.nan], [1.0])


def test_support_recovery_against_sets():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = rng.standard_normal(20) * (rng.random(20) < 0.3)
        b = rng.standard_normal(20) * (rng.random(20) < 0.3)
        S, Sh = set(np.flatnonzero(a)), set(np.flatnonzero(b))
        s = support_recovery(a, b)
        if Sh:
            assert s["precision"] == pytest.approx(len(S & Sh) / len(Sh))
        if S:
            assert s["recall"] == pytest.approx(len(S & Sh) / len(S))
        if S | Sh:
            assert s["jaccard"] == pytest.approx(len(S & Sh) / len(S | Sh))
    assert support_recovery([0, 0], [0, 0])["f1"] == 1.0
    assert support_recovery([1, 0], [0.5, 1e-4], tol=1e-3)["precision"] == 1.0


def test_prediction_error():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 4))
    a, b = rng.standard_normal(4), rng.standard_normal(4)
    assert prediction_error(X, a, b) == pytest.approx(np.mean((X @ (a - b)) ** 2))
    with pytest.raises(ValueError, match="shape"):
        prediction_error(X[:, :3], a, b)
