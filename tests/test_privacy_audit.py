"""Privacy audits with power, and mutants that must fail them.

Each audit is independent of the code under test where it can be: the expected noise scale
comes from the test's own calibration (quadrature of the Gaussian privacy profile), the
worst-case neighbours are antipodal inputs at the full sensitivity (or the extreme points
of the clipping box), and the enumerated laws of the discrete mechanisms are built from the
mechanisms' *own* probabilities (``keep_probability``, ``rounding_probability``) through
their output kernels, and then checked against their samplers by chi-square tests. The
mutants (half the noise, clipping after the noise, no epsilon split between the two NLDP
messages, a keep probability at 2 epsilon) each fail at least one audit, in the fast suite.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import optimize, stats

from sparsestat._kernels.ldp import coordinate_rr_core, duchi_core
from sparsestat.privacy import (
    CoordinateRRMechanism,
    DuchiLinfMechanism,
    GaussianMechanism,
    LaplaceMechanism,
    LDPSparseLinearRegression,
    gaussian_sigma,
    opendp_available,
)

needs_opendp = pytest.mark.skipif(not opendp_available(), reason="optional extra opendp absent")


# ----------------------------------------------------------------------------- references
def _profile_delta(mu, eps):
    """Exact delta(eps) of a Gaussian pair at distance mu (in noise units), via scipy.stats."""
    return stats.norm.cdf(mu / 2 - eps / mu) - math.exp(eps) * stats.norm.cdf(-mu / 2 - eps / mu)


def _reference_sigma(sens, eps, delta):
    """Smallest sigma meeting (eps, delta), by the test's own bisection (independent code)."""
    return optimize.brentq(
        lambda s: _profile_delta(sens / s, eps) - delta, sens * 1e-3, sens * 1e4, xtol=1e-14
    )


def _chi2_normal(z, bins=40):
    """p-value of a chi-square test of ``z`` against N(0, 1) on equiprobable bins."""
    edges = stats.norm.ppf(np.linspace(0, 1, bins + 1))
    counts = np.histogram(z, bins=edges)[0]
    return stats.chisquare(counts, np.full(bins, z.size / bins)).pvalue


def _chi2_laplace(z, bins=40):
    edges = stats.laplace.ppf(np.linspace(0, 1, bins + 1))
    counts = np.histogram(z, bins=edges)[0]
    return stats.chisquare(counts, np.full(bins, z.size / bins)).pvalue


# ----------------------------------------------------------------------------- mutants
class HalfNoise(GaussianMechanism):
    """Claims sigma, adds sigma / 2."""

    def _randomise(self, X, source, ids, stream):
        return X + 0.5 * self.scale * source.draw(ids, X.shape[1], stream, "normal")


class ClipAfterNoise(GaussianMechanism):
    """Adds the noise first and clips the noisy row (the clip no longer bounds sensitivity)."""

    def randomise(self, values, random_state=None, user_ids=None, stream=0, *, simulation=False):
        X = np.asarray(values, dtype=float)
        noisy = GaussianMechanism(np.inf, self.delta, 1e300).randomise(X)
        noisy = noisy + self.scale * np.random.default_rng(random_state).standard_normal(X.shape)
        return self._clip(noisy)


class DoubleEpsilonKeep(DuchiLinfMechanism):
    """Keeps the half-space with the probability of 2 epsilon."""

    @property
    def keep_probability(self):
        return math.exp(2 * self.epsilon) / (1 + math.exp(2 * self.epsilon))


class DoubleEpsilonKeepRR(CoordinateRRMechanism):
    @property
    def keep_probability(self):
        return math.exp(2 * self.epsilon) / (1 + math.exp(2 * self.epsilon))


class NoEpsilonSplit(LDPSparseLinearRegression):
    """Gives each of the two messages the whole (epsilon, delta)."""

    def _channel_budgets(self):
        return [(float(self.epsilon), float(self.delta))] * (1 if self.public_X is not None else 2)


# ----------------------------------------------------------------------------- Gaussian audit
def gaussian_audit(mech, n, seed=0, simulation=True):
    """Audit a Gaussian mechanism on the antipodal pair +-3 b u (clipped to +-b u).

    Returns the list of failed checks: the sampler's law (chi-square of the standardised
    outputs against N(0, 1), with sigma from the test's own calibration), and a black-box
    threshold test on the projection (Clopper-Pearson, Bonferroni over 50 thresholds) that
    looks for a test more powerful than (epsilon, delta)-DP allows.
    """
    b = mech.l2_bound
    u = np.array([0.6, 0.8])
    rows = {+1: np.repeat(3 * b * u[None], n, 0), -1: np.repeat(-3 * b * u[None], n, 0)}
    sigma = _reference_sigma(2 * b, mech.epsilon, mech.delta)
    out = {
        s: mech.randomise(r, random_state=seed + (s > 0), simulation=simulation)
        if simulation
        else mech.randomise(r)
        for s, r in rows.items()
    }
    failed = []
    z = np.concatenate([((out[s] - s * b * u) / sigma).ravel() for s in out])
    if _chi2_normal(z) < 1e-4:
        failed.append("law")
    ta, tb = out[+1] @ u, out[-1] @ u
    thresholds = np.quantile(np.concatenate([ta, tb]), np.linspace(0.02, 0.98, 50))
    alpha = 1e-4 / (2 * thresholds.size)
    for c in thresholds:
        for first, second, cc in ((ta, tb, c), (-tb, -ta, -c)):
            k1, k2 = int(np.sum(first > cc)), int(np.sum(second > cc))
            tpr_lo = stats.beta.ppf(alpha, k1, n - k1 + 1) if k1 else 0.0
            fpr_hi = stats.beta.ppf(1 - alpha, k2 + 1, n - k2) if k2 < n else 1.0
            if tpr_lo > math.exp(mech.epsilon) * fpr_hi + mech.delta:
                failed.append("threshold test")
                return failed
    return failed


def test_gaussian_mechanism_passes_the_audit():
    mech = GaussianMechanism(1.0, 1e-5, l2_bound=1.5)
    assert mech.scale == pytest.approx(_reference_sigma(3.0, 1.0, 1e-5), rel=1e-8)
    assert gaussian_audit(mech, 200_000) == []


@pytest.mark.parametrize("mutant", [HalfNoise, ClipAfterNoise])
def test_gaussian_mutants_fail_the_audit(mutant):
    failed = gaussian_audit(mutant(1.0, 1e-5, l2_bound=1.5), 200_000)
    assert "law" in failed
    if mutant is HalfNoise:  # the black-box test alone has the power to see it
        assert "threshold test" in failed


@needs_opendp
def test_opendp_gaussian_sampler_follows_its_exact_law():
    mech = GaussianMechanism(1.0, 1e-5, l2_bound=1.5)  # client reports: OpenDP, fresh entropy
    out = mech.randomise(np.repeat(np.array([[4.5, 0.0]]), 3000, 0))
    z = ((out - [1.5, 0.0]) / _reference_sigma(3.0, 1.0, 1e-5)).ravel()
    assert _chi2_normal(z, bins=20) > 1e-4
    half = HalfNoise(1.0, 1e-5, l2_bound=1.5).randomise(np.zeros((3000, 2)), simulation=True)
    assert _chi2_normal((half / mech.scale).ravel(), bins=20) < 1e-4


@pytest.mark.parametrize("backend", ["numpy", "opendp"])
def test_laplace_sampler_follows_its_exact_law(backend):
    if backend == "opendp" and not opendp_available():
        pytest.skip("optional extra opendp absent")
    mech = LaplaceMechanism(0.7, l1_bound=1.0)
    n = 50_000 if backend == "numpy" else 3000
    x = np.repeat(np.array([[2.0, -1.0]]), n, 0)  # clipped to (2/3, -1/3)
    out = mech.randomise(x, simulation=backend == "numpy")
    z = ((out - [2 / 3, -1 / 3]) / (2.0 / 0.7)).ravel()
    assert _chi2_laplace(z, bins=20) > 1e-4
    assert _chi2_laplace(2 * z, bins=20) < 1e-4  # power: half the noise is seen


# ----------------------------------------------------------------------------- NLDP audit
def nldp_audit(cls, eps=1.0, delta=1e-5, tau1=1.0, tau2=1.5, n=20_000):
    """Composed exact audit of the two NLDP messages on the worst-case neighbours.

    The released statistics of every pair of inputs on the grid {-tau, 0, tau} come from the
    estimator's own clipping (epsilon = inf reports); the noise standard deviations are
    measured from ``n`` simulated reports of x = 0 (lower confidence limits). The reports
    are Gaussian (chi-square), so the pair (M, v) is a Gaussian mechanism with
    ``mu^2 = max ||dM||^2 / s1^2 + ||dv||^2 / s2^2``; its exact delta at epsilon (with 2 %
    slack for the measurement) must not exceed delta.
    """
    d = 2
    # the paper's configuration; an intercept only appends a public constant to every x
    params = {"bounds_X": tau1, "bounds_y": tau2, "fit_intercept": False}
    grid = np.array(list(itertools.product([-tau1, 0.0, tau1], repeat=d)))
    ys = np.array([-tau2, tau2])
    X = np.repeat(grid, 2, axis=0)
    y = np.tile(ys, grid.shape[0])
    clean = cls(np.inf, **params).privatize(X, y)
    tri, xy = clean.values["xx"], clean.values["xy"]
    dt = ((tri[:, None] - tri[None]) ** 2).sum(-1)
    dv = ((xy[:, None] - xy[None]) ** 2).sum(-1)
    model = cls(eps, delta, **params, random_state=0)
    reports = model.privatize(np.zeros((n, d)), np.zeros(n), simulation=True)
    failed = []
    sig = {}
    for name in ("xx", "xy"):
        noise = reports.values[name].ravel()
        m = noise.size
        s_hat = math.sqrt(np.mean(noise**2))
        sig[name] = s_hat * math.sqrt(stats.chi2.ppf(1e-4, m) / m)  # lower limit
        if _chi2_normal(noise / s_hat) < 1e-4:
            failed.append(f"law {name}")
    mu = math.sqrt(float(np.max(dt / sig["xx"] ** 2 + dv / sig["xy"] ** 2)))
    if _profile_delta(mu, eps * 1.02) > delta:
        failed.append("composed profile")
    return failed


def test_nldp_reports_pass_the_composed_audit():
    assert nldp_audit(LDPSparseLinearRegression) == []


def test_nldp_without_the_epsilon_split_fails_the_audit():
    assert nldp_audit(NoEpsilonSplit) == ["composed profile"]


# ----------------------------------------------------------------------------- discrete audits
def duchi_law(mech, g):
    """Exact P(z | g) over z in {-1, 1}^d from the mechanism's own probabilities and kernel."""
    d = g.size
    dd = d if d % 2 else d + 1
    cube = np.array(list(itertools.product([-1.0, 1.0], repeat=dd)))
    p = mech.keep_probability
    q = np.full(dd, 0.5)
    q[:d] = mech.rounding_probability(mech.clip(g[None]))[0]
    index = {tuple(z): i for i, z in enumerate(itertools.product([-1.0, 1.0], repeat=d))}
    law = np.zeros(len(index))
    n_s = cube.shape[0]
    for V in cube:
        pV = np.prod(np.where(V > 0, q, 1 - q))
        if pV == 0:
            continue
        for keep, pk in ((True, p), (False, 1 - p)):
            z = duchi_core(np.repeat(V[None], n_s, 0), np.full(n_s, keep), cube)
            for row in z[:, :d]:
                law[index[tuple(row)]] += pV * pk / n_s
    return law


def rr_law(mech, g):
    """Exact P(output | g) of coordinate RR over outputs (j, +-1), from the mechanism's own
    probabilities and kernel."""
    d = g.size
    p = mech.keep_probability
    q = mech.rounding_probability(mech.clip(g[None]))[0]
    law = np.zeros((d, 2))
    for j in range(d):
        for bit, pb in ((1.0, q[j]), (-1.0, 1 - q[j])):
            for keep, pk in ((True, p), (False, 1 - p)):
                z = coordinate_rr_core(np.array([j]), np.array([bit]), np.array([keep]), d)[0]
                jj = int(np.flatnonzero(z)[0])
                law[jj, int(z[jj] > 0)] += pb * pk / d
    return law.ravel()


def _max_ratio(laws):
    laws = np.asarray(laws)
    return float(np.max(laws.max(axis=0) / laws.min(axis=0)))


def discrete_audit(mech, law_of, d):
    """Worst case over the vertices of the clipping box (and beyond it): max ratio <= e^eps."""
    b = mech.bound
    inputs = [np.array(c) for c in itertools.product([-2 * b, -b, 0.3 * b, b], repeat=d)]
    laws = [law_of(mech, g) for g in inputs]
    assert all(law.sum() == pytest.approx(1.0, abs=1e-12) for law in laws)
    return _max_ratio(laws) <= math.exp(mech.epsilon) * (1 + 1e-12)


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_duchi_enumerated_audit_and_its_mutant(d):
    assert discrete_audit(DuchiLinfMechanism(0.9, bound=1.0), duchi_law, d)
    assert not discrete_audit(DoubleEpsilonKeep(0.9, bound=1.0), duchi_law, d)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_coordinate_rr_enumerated_audit_and_its_mutant(d):
    assert discrete_audit(CoordinateRRMechanism(1.3, bound=2.0), rr_law, d)
    assert not discrete_audit(DoubleEpsilonKeepRR(1.3, bound=2.0), rr_law, d)


def _codes(z, d):
    return ((z > 0).astype(int) * (2 ** np.arange(d)[::-1])).sum(axis=1)


@pytest.mark.parametrize("backend", ["numpy", "opendp"])
def test_duchi_sampler_follows_its_exact_law(backend):
    if backend == "opendp" and not opendp_available():
        pytest.skip("optional extra opendp absent")
    d, g = 3, np.array([0.8, -0.2, 0.5])
    mech = DuchiLinfMechanism(0.9, bound=1.0)
    law = duchi_law(mech, g)
    n = 40_000 if backend == "numpy" else 4000
    z = mech.randomise(np.repeat(g[None], n, 0), simulation=backend == "numpy")
    counts = np.bincount(_codes(z, d), minlength=2**d)
    assert stats.chisquare(counts, law * n).pvalue > 1e-4
    # power: the law of the 2-epsilon mutant is rejected by the same sample
    wrong = duchi_law(DoubleEpsilonKeep(0.9, bound=1.0), g)
    assert stats.chisquare(counts, wrong * n).pvalue < 1e-4


@pytest.mark.parametrize("backend", ["numpy", "opendp"])
def test_coordinate_rr_sampler_follows_its_exact_law(backend):
    if backend == "opendp" and not opendp_available():
        pytest.skip("optional extra opendp absent")
    g = np.array([1.5, -0.5, 0.0])
    mech = CoordinateRRMechanism(1.3, bound=2.0)
    law = rr_law(mech, g)
    n = 40_000 if backend == "numpy" else 4000
    z = mech.randomise(np.repeat(g[None], n, 0), simulation=backend == "numpy")
    j = np.argmax(z != 0, axis=1)
    counts = np.bincount(2 * j + (z[np.arange(n), j] > 0), minlength=6)
    assert stats.chisquare(counts, law * n).pvalue > 1e-4
    wrong = rr_law(DoubleEpsilonKeepRR(1.3, bound=2.0), g)
    assert stats.chisquare(counts, wrong * n).pvalue < 1e-4


# ----------------------------------------------------------------------------- calibration
def test_analytic_sigma_is_never_below_the_target_in_50_digit_arithmetic():
    """On a grid of 140 (epsilon, delta) points the returned sigma meets delta exactly."""
    mpmath = pytest.importorskip("mpmath")  # installed with torch (sympy)
    mpmath.mp.dps = 50
    worst = -1.0
    for eps in np.geomspace(0.01, 50, 14):
        for delta in np.geomspace(1e-12, 1e-2, 10):
            sigma = gaussian_sigma(1.0, float(eps), float(delta))
            mu = mpmath.mpf(1) / mpmath.mpf(sigma)
            e = mpmath.mpf(float(eps))
            exact = mpmath.ncdf(mu / 2 - e / mu) - mpmath.exp(e) * mpmath.ncdf(-mu / 2 - e / mu)
            worst = max(worst, float((exact - mpmath.mpf(float(delta))) / float(delta)))
    assert worst <= 0.0  # never above the claimed delta
    assert worst > -1e-6  # and not needlessly noisy (the margin is a relative 1e-9 in sigma)


@pytest.mark.slow
def test_opendp_gaussian_passes_the_audit_at_full_size():
    pytest.importorskip("opendp")
    mech = GaussianMechanism(1.0, 1e-5, l2_bound=1.5)
    assert gaussian_audit(mech, 30_000, simulation=False) == []
