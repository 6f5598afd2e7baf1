"""make_planted_features, fvu, mmcs and the geometric-median kernel."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from sparsestat._kernels.geomedian import geometric_median
from sparsestat.datasets import make_planted_features
from sparsestat.metrics import fvu, mmcs


@pytest.mark.parametrize("kind", ["flat", "signed"])
def test_planted_flat_and_signed(kind):
    X, codes, atoms = make_planted_features(4000, 16, 32, kind=kind, noise=0.0, random_state=0)
    assert X.shape == (4000, 16) and codes.shape == (4000, 32) and atoms.shape == (32, 16)
    np.testing.assert_allclose(np.linalg.norm(atoms, axis=1), 1.0)
    np.testing.assert_allclose(X, codes @ atoms)
    assert (codes != 0).sum(1).mean() == pytest.approx(4.0, rel=0.1)
    mags = np.abs(codes[codes != 0])
    assert mags.min() >= 0.5 and mags.max() <= 1.5
    assert ((codes < 0).any()) == (kind == "signed")


def test_planted_hierarchical():
    X, codes, atoms = make_planted_features(
        4000, 16, 8, kind="hierarchical", noise=0.0, random_state=0
    )
    assert atoms.shape == (8 * 5, 16)
    parents, children = atoms[:8], atoms[8:].reshape(8, 4, 16)
    np.testing.assert_allclose(np.einsum("pcd,pd->pc", children, parents), 0.6, atol=1e-12)
    pc, cc = codes[:, :8], codes[:, 8:].reshape(-1, 8, 4)
    active_child = (cc != 0).sum(2)
    assert active_child.max() <= 1
    assert np.all(active_child[pc == 0] == 0)  # children fire only with their parent
    assert active_child[pc != 0].mean() == pytest.approx(0.5, abs=0.05)
    np.testing.assert_allclose(X, codes @ atoms)


def test_planted_reproducible_and_validated():
    a = make_planted_features(50, 8, 4, random_state=3)[0]
    np.testing.assert_array_equal(a, make_planted_features(50, 8, 4, random_state=3)[0])
    with pytest.raises(ValueError):
        make_planted_features(50, 8, 4, kind="tree")


def test_fvu_and_mmcs_against_direct_formulas():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4))
    X_hat = X + 0.1 * rng.standard_normal((50, 4))
    expected = ((X - X_hat) ** 2).sum() / ((X - X.mean(0)) ** 2).sum()
    assert fvu(X, X_hat) == pytest.approx(expected)
    assert fvu(X, X) == 0.0
    T = np.eye(3, 5)
    L = np.vstack([-2 * T[0], T[1] + T[2], np.zeros(5)])
    # atom 0 recovered (cos 1), atoms 1 and 2 at cos 1/sqrt(2)
    assert mmcs(T, L) == pytest.approx((1 + 2 / np.sqrt(2)) / 3)
    with pytest.raises(ValueError):
        fvu(X, X_hat[:, :3])


def test_geometric_median_matches_optimizer():
    X = np.random.default_rng(1).standard_normal((80, 3)) + [0, 0, 5]
    ref = minimize(lambda m: np.linalg.norm(X - m, axis=1).sum(), X.mean(0), tol=1e-12).x
    np.testing.assert_allclose(geometric_median(X, max_iter=500, tol=1e-12), ref, atol=1e-5)
    torch = pytest.importorskip("torch")
    out = geometric_median(torch.as_tensor(X), max_iter=500, tol=1e-12)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)
