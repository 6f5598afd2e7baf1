"""Unit tests of the local randomisers: calibration, noise laws, clipping, streams, backends."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from scipy import integrate, stats

from sparsestat.privacy import (
    CoordinateRRMechanism,
    DuchiLinfMechanism,
    GaussianMechanism,
    LaplaceMechanism,
    UserStreams,
    gaussian_sigma,
    opendp_available,
)

# ----------------------------------------------------------------------------- calibration


def _profile_delta_numeric(sigma, sens, eps):
    """delta(eps) = int (p(o) - e^eps q(o))_+ do for N(0, s^2) vs N(sens, s^2), by quadrature."""
    # p > e^eps q  <=>  o < sens/2 - eps sigma^2 / sens
    cut = sens / 2 - eps * sigma**2 / sens

    def f(o):
        return stats.norm.pdf(o, 0, sigma) - math.exp(eps) * stats.norm.pdf(o, sens, sigma)

    val, _ = integrate.quad(f, cut - 40 * sigma, cut, epsabs=1e-14, epsrel=1e-12, limit=200)
    return val


def test_classic_sigma_closed_form_and_range():
    for sens, eps, delta in [(1.0, 1.0, 1e-5), (6.0, 0.5, 1e-6), (2.0, 0.1, 0.01)]:
        expected = sens * math.sqrt(2 * math.log(1.25 / delta)) / eps
        assert gaussian_sigma(sens, eps, delta, "classic") == pytest.approx(expected, rel=1e-14)
    with pytest.raises(ValueError, match="analytic"):
        gaussian_sigma(1.0, 1.5, 1e-5, "classic")  # invalid for eps > 1: refused, not coerced
    assert gaussian_sigma(1.0, np.inf, 1e-5) == 0.0
    for bad in [(0.0, 1.0, 1e-5), (1.0, 0.0, 1e-5), (1.0, 1.0, 0.0), (1.0, 1.0, 1.0)]:
        with pytest.raises(ValueError):
            gaussian_sigma(*bad)
    with pytest.raises(ValueError):
        gaussian_sigma(np.inf, 1.0, 1e-5)


@pytest.mark.parametrize("eps,delta", [(0.5, 1e-5), (1.0, 1e-6), (4.0, 1e-5), (10.0, 1e-3)])
def test_analytic_sigma_meets_the_exact_privacy_profile(eps, delta):
    sens = 2.0
    sigma = gaussian_sigma(sens, eps, delta, calibration="analytic")
    assert _profile_delta_numeric(sigma, sens, eps) <= delta * (1 + 1e-6)
    # and it is (nearly) the smallest such sigma
    assert _profile_delta_numeric(sigma * 0.995, sens, eps) > delta
    if eps <= 1:
        assert sigma <= gaussian_sigma(sens, eps, delta, "classic")


# ----------------------------------------------------------------------------- noise laws


def test_gaussian_noise_law_per_user_ks():
    mech = GaussianMechanism(0.8, 1e-5, l2_bound=1.5, calibration="classic")
    row = np.array([[0.3, -0.4, 0.5]])
    X = np.repeat(row, 5000, axis=0)
    out = mech.randomise(X, random_state=7, simulation=True)
    noise = out - row
    sigma = 2 * 1.5 * math.sqrt(2 * math.log(1.25 / 1e-5)) / 0.8
    assert mech.scale == pytest.approx(sigma, rel=1e-14)
    for j in range(3):
        assert stats.kstest(noise[:, j], "norm", args=(0, sigma)).pvalue > 1e-3
        assert np.var(noise[:, j]) == pytest.approx(sigma**2, rel=0.05)
    r = np.corrcoef(noise.T)
    assert np.max(np.abs(r - np.eye(3))) < 0.05


def test_laplace_noise_law_per_user_ks():
    mech = LaplaceMechanism(0.5, l1_bound=1.0)
    X = np.zeros((5000, 2))
    noise = mech.randomise(X, random_state=3, simulation=True)
    assert mech.scale == pytest.approx(4.0)
    for j in range(2):
        assert stats.kstest(noise[:, j], "laplace", args=(0, 4.0)).pvalue > 1e-3


def test_clipping_before_noise_under_outliers():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    X[::7] *= 1e6
    X_copy = X.copy()
    g = GaussianMechanism(np.inf, 1e-5, l2_bound=2.0)
    out = g.randomise(X)
    assert np.all(np.linalg.norm(out, axis=1) <= 2.0 * (1 + 1e-12))
    small = np.linalg.norm(X, axis=1) <= 2.0
    np.testing.assert_array_equal(out[small], X[small])  # inside the ball: untouched
    lap = LaplaceMechanism(np.inf, l1_bound=3.0).randomise(X)
    assert np.all(np.abs(lap).sum(axis=1) <= 3.0 * (1 + 1e-12))
    np.testing.assert_array_equal(X, X_copy)  # caller's array untouched
    assert GaussianMechanism(1.0, 1e-5, l2_bound=2.0).sensitivity == 4.0
    assert LaplaceMechanism(1.0, l1_bound=3.0).sensitivity == 6.0


def test_mechanisms_reject_bad_input():
    mech = GaussianMechanism(1.0, 1e-5, l2_bound=1.0)
    with pytest.raises(ValueError, match="NaN"):
        mech.randomise(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="2-D"):
        mech.randomise(np.ones(3))
    with pytest.raises(TypeError):
        mech.randomise(np.array([["a", "b"]]))
    with pytest.raises(ValueError):
        GaussianMechanism(1.0, 1e-5, l2_bound=-1.0)
    with pytest.raises(ValueError):
        GaussianMechanism(1.0, 1e-5, l2_bound=1.0, noise_backend="torch")
    with pytest.raises(ValueError, match="random_state"):
        GaussianMechanism(1.0, 1e-5, 1.0, noise_backend="opendp").randomise(
            np.ones((1, 2)), random_state=0
        )


def test_user_streams_do_not_depend_on_batching():
    s = UserStreams(42)
    ids = np.arange(3000)
    full = s.draw(ids, 5, stream=1)
    cuts = [(0, 17), (17, 2500), (2500, 3000)]
    parts = np.vstack([s.draw(ids[a:b], 5, stream=1) for a, b in cuts])
    np.testing.assert_array_equal(full, parts)
    shuffled = np.random.default_rng(0).permutation(ids)
    np.testing.assert_array_equal(s.draw(shuffled, 5, stream=1), full[shuffled])
    other = s.draw(ids, 5, stream=2)
    assert abs(np.corrcoef(full.ravel(), other.ravel())[0, 1]) < 0.02
    with pytest.raises(ValueError):
        s.draw(np.array([-1]), 2, stream=0)


def test_user_streams_of_different_users_are_uncorrelated():
    """Neighbouring users (inside a block and across block boundaries) and the same row of
    different blocks (different SeedSequence keys) get uncorrelated numbers."""
    m = 3
    size = UserStreams.block_size(m)
    z = UserStreams(7).draw(np.arange(6 * size), m, stream=0)
    n_pairs = z.shape[0] - 1
    lag1 = np.corrcoef(z[:-1].ravel(), z[1:].ravel())[0, 1]
    same_row = np.corrcoef(z[:-size].ravel(), z[size:].ravel())[0, 1]
    bound = 5.0 / np.sqrt(n_pairs * m)  # five standard errors under independence
    assert abs(lag1) < bound and abs(same_row) < bound
    # each user's m numbers are uncorrelated with each other too
    assert np.max(np.abs(np.corrcoef(z.T) - np.eye(m))) < 5.0 / np.sqrt(z.shape[0])


# ----------------------------------------------------------------------------- l_inf / RR


@pytest.mark.parametrize("d", [3, 4])
def test_duchi_unbiased_and_constant_magnitude(d):
    bound = 2.0
    g = np.linspace(-1.5, 1.9, d)
    mech = DuchiLinfMechanism(1.0, bound=bound)
    n = 200_000
    z = mech.randomise(np.repeat(g[None, :], n, axis=0), random_state=11, simulation=True)
    B = mech.output_scale(d)
    np.testing.assert_array_equal(np.abs(z), B)
    dd = d if d % 2 else d + 1
    central = math.comb(dd - 1, (dd - 1) // 2)
    expected_B = bound * (math.e + 1) / (math.e - 1) * 2 ** (dd - 1) / central
    assert pytest.approx(expected_B, rel=1e-9) == B  # p is rounded down by 2**-40
    se = z.std(axis=0) / math.sqrt(n)
    assert np.all(np.abs(z.mean(axis=0) - g) < 4 * se)


def test_coordinate_rr_unbiased():
    bound = 1.0
    g = np.array([0.9, -0.5, 0.0, 0.3])
    mech = CoordinateRRMechanism(0.7, bound=bound)
    n = 200_000
    z = mech.randomise(np.repeat(g[None, :], n, axis=0), random_state=5, simulation=True)
    assert np.all((z != 0).sum(axis=1) == 1)
    se = z.std(axis=0) / math.sqrt(n)
    assert np.all(np.abs(z.mean(axis=0) - g) < 4 * se)


# Audits with power (enumerated laws, antipodal pairs, mutants): test_privacy_audit.py

needs_opendp = pytest.mark.skipif(not opendp_available(), reason="optional extra opendp absent")


@needs_opendp
def test_opendp_gaussian_and_laplace_noise_laws():
    g = GaussianMechanism(1.0, 1e-5, l2_bound=0.5, noise_backend="opendp")
    out = g.randomise(np.full((1000, 2), 0.25))
    assert stats.kstest((out - 0.25).ravel(), "norm", args=(0, g.scale)).pvalue > 1e-3
    lap = LaplaceMechanism(1.0, l1_bound=0.5, noise_backend="opendp")
    out = lap.randomise(np.zeros((1000, 2)))
    assert stats.kstest(out.ravel(), "laplace", args=(0, lap.scale)).pvalue > 1e-3
    # clipping happens before OpenDP sees the data
    big = GaussianMechanism(np.inf, 1e-5, l2_bound=0.5, noise_backend="opendp")
    assert np.linalg.norm(big.randomise(np.full((1, 2), 1e6))) <= 0.5 + 1e-12


@needs_opendp
def test_opendp_discrete_mechanisms():
    g = np.array([[0.5, -0.5, 0.1]])
    mech = DuchiLinfMechanism(1.0, bound=1.0, noise_backend="opendp")
    z = mech.randomise(np.repeat(g, 3000, 0))
    np.testing.assert_allclose(np.abs(z), mech.output_scale(3))
    se = z.std(axis=0) / math.sqrt(3000)
    assert np.all(np.abs(z.mean(axis=0) - g[0]) < 4.5 * se)
    rr = CoordinateRRMechanism(1.0, bound=1.0, noise_backend="opendp").randomise(g)
    assert (rr != 0).sum() == 1


@pytest.mark.parametrize("kind", ["normal", "uniform", "laplace"])
def test_user_streams_runs_match_the_block_definition(kind):
    """Contiguous runs (drawn straight into the output) equal the documented blocks."""
    m = 300  # block of 436 users
    size = UserStreams.block_size(m)
    assert size == (1 << 17) // m
    s = UserStreams(9)
    run = s.draw(np.arange(size - 5, 3 * size + 7), m, stream=3, kind=kind)
    gen = {
        b: np.random.Generator(np.random.SFC64(np.random.SeedSequence(9, spawn_key=(3, b))))
        for b in range(4)
    }
    draw = {
        "normal": lambda g: g.standard_normal((size, m)),
        "uniform": lambda g: g.random((size, m)),
        "laplace": lambda g: g.laplace(0.0, 1.0, (size, m)),
    }[kind]
    blocks = np.vstack([draw(gen[b]) for b in range(4)])
    np.testing.assert_array_equal(run, blocks[size - 5 : 3 * size + 7])
    # a later run reusing the cached partial block, and a scattered batch, agree
    np.testing.assert_array_equal(
        s.draw(np.arange(3 * size + 7, 3 * size + 9), m, 3, kind),
        blocks[3 * size + 7 : 3 * size + 9],
    )
    ids = np.array([2 * size + 1, 3, size])
    np.testing.assert_array_equal(UserStreams(9).draw(ids, m, 3, kind), blocks[ids])
    clone = pickle.loads(pickle.dumps(s))
    assert clone.seed == 9 and clone._last == {}


def test_accountant_repr_shows_spent_and_left():
    from sparsestat.privacy import BudgetAccountant

    acc = BudgetAccountant(epsilon=2.0, delta=1e-5)
    acc.spend(0.5, 1e-6, users=range(10))
    acc.spend(0.25, 0.0, users=[3])
    text = repr(acc)
    assert "spent=(0.75, 1e-06)" in text and "left=(1.25, 9e-06)" in text
    assert "charges=2" in text


@pytest.mark.parametrize("epsilon", [700.0, 710.0, 1e6])
def test_discrete_mechanisms_handle_huge_epsilon(epsilon):
    for cls in (DuchiLinfMechanism, CoordinateRRMechanism):
        mech = cls(epsilon, bound=1.0)
        z = mech.randomise(np.zeros((4, 3)), random_state=0, simulation=True)
        assert np.all(np.isfinite(z)) and 0.5 < mech.keep_probability < 1.0
    assert 0 < gaussian_sigma(1.0, epsilon, 1e-5) < 1e-1


def test_keep_probability_never_exceeds_epsilon():
    for eps in [1e-10, 0.1, 0.5, 1.0, 4.0, 20.0, 36.0, 40.0, 800.0]:
        p = DuchiLinfMechanism(eps, bound=1.0).keep_probability
        assert math.log(p) - math.log1p(-p) <= eps


def test_client_reports_refuse_the_numpy_sampler_and_seeds():
    mech = GaussianMechanism(1.0, 1e-5, l2_bound=1.0, noise_backend="numpy")
    with pytest.raises(ValueError, match="simulations only"):
        mech.randomise(np.zeros((2, 2)))
    assert mech.randomise(np.zeros((2, 2)), simulation=True).shape == (2, 2)
    with pytest.raises(ValueError, match="simulation=True"):
        GaussianMechanism(1.0, 1e-5, l2_bound=1.0).randomise(np.zeros((2, 2)), random_state=3)


# ------------------------------------------------------------- the OpenDP privacy-map check
@pytest.mark.skipif(not opendp_available(), reason="optional extra opendp absent")
@pytest.mark.parametrize(
    "make",
    [
        lambda: GaussianMechanism(1.0, 1e-6, l2_bound=1.0, noise_backend="opendp"),
        lambda: LaplaceMechanism(1.0, l1_bound=1.0, noise_backend="opendp"),
    ],
    ids=["gaussian", "laplace"],
)
def test_privacy_map_check_refuses_a_weakened_noise_scale(make):
    from sparsestat.privacy import PrivacyCheckError

    make().opendp_measurement(3)  # the real calibration passes OpenDP's map
    weak = make()
    weak.scale *= 0.9  # 10 % less noise than the claim needs
    with pytest.raises(PrivacyCheckError, match="above the claimed"):
        weak.opendp_measurement(3)


@pytest.mark.skipif(not opendp_available(), reason="optional extra opendp absent")
@pytest.mark.parametrize("cls", [DuchiLinfMechanism, CoordinateRRMechanism])
def test_privacy_map_check_refuses_a_weakened_keep_coin(cls):
    from sparsestat.privacy import PrivacyCheckError

    cls(1.0, bound=1.0, noise_backend="opendp").opendp_measurement()

    class Weak(cls):
        @property
        def keep_probability(self):  # the coin of epsilon = 1.1, claimed as epsilon = 1
            return math.exp(1.1) / (math.exp(1.1) + 1.0)

    with pytest.raises(PrivacyCheckError, match="above the claimed epsilon"):
        Weak(1.0, bound=1.0, noise_backend="opendp").opendp_measurement()
