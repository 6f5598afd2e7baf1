"""Attacks on the earlier behaviour, reproduced, and shown to recover nothing now.

Each test first runs the attack against the behaviour the library had before client
reports became private by default (a known or shared seed, user ids restarting at 0, keys of
31 bits, NumPy's samplers on the client), which is still reachable as an explicit
simulation, and checks that the attack works there. Then it runs the same attack against
the default client path, which must recover nothing.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numba.np.random._constants import ki_double, wi_double

from sparsestat._solvers.private_sums import stream_key
from sparsestat.privacy import (
    GaussianMechanism,
    LaplaceMechanism,
    UserStreams,
    opendp_available,
)
from sparsestat.privacy import LDPSparseLinearRegression as _LDPSparseLinearRegression


def LDPSparseLinearRegression(*args, fit_intercept=False, **kwargs):
    """The paper's estimator, without intercept (these tests check its formulas)."""
    return _LDPSparseLinearRegression(*args, fit_intercept=fit_intercept, **kwargs)


needs_opendp = pytest.mark.skipif(not opendp_available(), reason="optional extra opendp absent")

PARAMS = {"epsilon": 1.0, "delta": 1e-6, "bounds_X": 1.0, "bounds_y": 1.0}
X1 = np.array([[0.3, -0.7, 0.5]])
Y1 = np.array([0.8])


def _noise_of(seed, user, d, s1, s2):
    """The keyed noise of a user's (M, v) report, regenerated from the seed."""
    streams = UserStreams(seed)
    z_tri = streams.draw([user], d * (d + 1) // 2, 0)[0] * s1
    z_v = streams.draw([user], d, 1)[0] * s2
    return z_tri, z_v


# ----------------------------------------------------------------------------- known seed
def test_a_known_seed_removes_the_noise_of_a_simulation_but_a_client_refuses_seeds():
    sim = LDPSparseLinearRegression(**PARAMS, random_state=0)
    rep = sim.privatize(X1, Y1, simulation=True)
    s1, s2 = sim.noise_scale_
    z_tri, z_v = _noise_of(0, 0, 3, s1, s2)
    recovered = rep.v[0] - z_v
    np.testing.assert_allclose(recovered, X1[0] * Y1[0], atol=1e-9)  # the attack works there
    with pytest.raises(ValueError, match="simulation=True"):
        LDPSparseLinearRegression(**PARAMS, random_state=0).privatize(X1, Y1)
    client = LDPSparseLinearRegression(**PARAMS).privatize(X1, Y1)  # fresh OS entropy
    for guess in range(200):  # the attacker tries seeds: nothing comes out
        _, z_v = _noise_of(guess, 0, 3, s1, s2)
        assert np.max(np.abs(client.v[0] - z_v - X1[0] * Y1[0])) > 1e-3


def test_two_devices_sharing_a_seed_cancel_their_noise_only_in_a_simulation():
    xa, xb = np.array([[0.9, 0.1, -0.4]]), np.array([[-0.2, 0.6, 0.3]])
    ya, yb = np.array([0.5]), np.array([-0.1])
    clean = np.outer(xa, xa) - np.outer(xb, xb)
    shared = [
        LDPSparseLinearRegression(**PARAMS, random_state=1234).privatize(x, y, simulation=True)
        for x, y in ((xa, ya), (xb, yb))
    ]
    # both devices have user id 0 and the same seed: the server learns M_a - M_b exactly
    np.testing.assert_allclose(shared[0].M[0] - shared[1].M[0], clean, atol=1e-9)
    fresh = [LDPSparseLinearRegression(**PARAMS).privatize(x, y) for x, y in ((xa, ya), (xb, yb))]
    s1 = LDPSparseLinearRegression(**PARAMS).privatize(xa, ya).metadata["sigma"][0]
    resid = (fresh[0].M[0] - fresh[1].M[0] - clean)[np.triu_indices(3)]
    assert np.sqrt(np.mean(resid**2)) > 0.2 * s1  # noise of scale s1 sqrt(2) remains


def test_one_device_in_two_collections_leaks_x_only_in_a_simulation():
    y1, y2 = np.array([0.9]), np.array([-0.4])
    sim = [
        LDPSparseLinearRegression(**PARAMS, random_state=7).privatize(X1, y, simulation=True)
        for y in (y1, y2)
    ]
    np.testing.assert_allclose(sim[0].v[0] - sim[1].v[0], X1[0] * (y1 - y2), atol=1e-9)
    fresh = [LDPSparseLinearRegression(**PARAMS).privatize(X1, y) for y in (y1, y2)]
    s2 = fresh[0].metadata["sigma"][1]
    assert np.max(np.abs(fresh[0].v[0] - fresh[1].v[0] - X1[0] * (y1 - y2))) > 0.05 * s2


def test_a_seeded_mechanism_gives_differences_of_inputs_only_in_a_simulation():
    mech = GaussianMechanism(1.0, 1e-5, l2_bound=2.0)
    x1, x2 = np.array([[0.4, -1.1]]), np.array([[1.2, 0.3]])
    r1 = mech.randomise(x1, random_state=7, simulation=True)
    r2 = mech.randomise(x2, random_state=7, simulation=True)
    np.testing.assert_allclose(r1 - r2, x1 - x2, atol=1e-12)
    with pytest.raises(ValueError, match="simulation=True"):
        mech.randomise(x1, random_state=7)
    d = mech.randomise(x1) - mech.randomise(x2) - (x1 - x2)
    assert np.max(np.abs(d)) > 1e-3 * mech.scale


# ----------------------------------------------------------------------------- key size
def _plausible_keys(report, keys, s1, s2, bound_xx, bound_xy):
    """Keys whose regenerated noise leaves a residual inside the clipping box everywhere."""
    hits = []
    for key in keys:
        z_tri, z_v = _noise_of(key, 0, 3, s1, s2)
        r_tri = report.values["xx"][0] - z_tri
        r_v = report.v[0] - z_v
        if np.all(np.abs(r_tri) <= bound_xx) and np.all(np.abs(r_v) <= bound_xy):
            hits.append(key)
    return hits


def test_brute_force_over_31_bit_keys_finds_the_old_key_and_nothing_now():
    rs_seed = 2024
    old_key = int(np.random.RandomState(rs_seed).randint(2**31 - 1))  # the earlier derivation
    window = range(old_key - 300, old_key + 300)
    old = LDPSparseLinearRegression(**PARAMS, random_state=old_key)
    rep = old.privatize(X1, Y1, simulation=True)
    s1, s2 = old.noise_scale_
    hits = _plausible_keys(rep, window, s1, s2, 1.0, 1.0)
    assert hits == [old_key]  # one report is enough to find the key and recover x * y
    new = LDPSparseLinearRegression(**PARAMS, random_state=np.random.RandomState(rs_seed))
    rep_new = new.privatize(X1, Y1, simulation=True)
    assert _plausible_keys(rep_new, window, s1, s2, 1.0, 1.0) == []
    keys = [stream_key(np.random.RandomState(s)) for s in range(50)]
    assert min(k.bit_length() for k in keys) > 96 and len(set(keys)) == 50  # 128-bit keys
    with pytest.raises(ValueError, match="simulation=True"):  # and a client takes none
        LDPSparseLinearRegression(**PARAMS, random_state=np.random.RandomState(1)).privatize(X1, Y1)


# ----------------------------------------------------------------------------- floating point
def _laplace_consistent(o, x, scale):
    """Whether output ``o`` can come from input ``x`` through NumPy's Laplace sampler.

    NumPy draws U = k 2**-53 and returns -log(2 - 2U) (U >= 1/2) or log(2U); the mechanism
    returns x + scale * L. The candidates k around the inverse are checked bit for bit.
    """
    t = (o - x) / scale
    u0 = 1 - math.exp(-t) / 2 if t >= 0 else math.exp(t) / 2
    k0 = round(u0 * 2.0**53)
    for k in range(k0 - 4, k0 + 5):
        if not 0 < k < 2**53:
            continue
        u = k * 2.0**-53
        lap = -math.log(2.0 - u - u) if u >= 0.5 else math.log(u + u)
        if x + scale * lap == o:
            return True
    return False


_WI = np.asarray(wi_double, dtype=np.float64)
_KI = np.asarray(ki_double, dtype=np.float64)


def _ziggurat_consistent(o, x, scale):
    """Whether ``o = x + scale * z`` is possible for a z of NumPy's Ziggurat.

    Outside the tail, z = +-(rabs * wi[idx]) with an integer rabs < 2**52 (rabs < ki[0] on
    layer 0); tail values (|z| > 3.6) are not modelled and count as possible.
    """
    t = (o - x) / scale
    if abs(t) > 3.6:
        return True
    r0 = np.rint(abs(t) / _WI)
    rabs = (r0[:, None] + np.arange(-2, 3)[None, :]).ravel()
    idx = np.repeat(np.arange(256), 5)
    ok = (rabs >= 0) & (rabs < 2.0**52) & ((idx > 0) | (rabs < _KI[0]))
    z = rabs[ok] * _WI[idx[ok]]
    z = z if t >= 0 else -z
    return bool(np.any(x + scale * z == o))


def _exclusion_rates(mech, consistent, n, simulation):
    """P(E | x) and P(E | x') for E = {o consistent with x = -0.5, not with x' = +0.5}.

    If the sampler is (epsilon, delta)-DP, P(E | x) <= e^eps P(E | x') + delta: an event
    that happens under x and never under x' is a direct violation (Mironov 2012).
    """
    rates = []
    for seed, x in ((3, -0.5), (4, 0.5)):
        rows = np.full((n, 1), x)
        if simulation:
            out = mech.randomise(rows, random_state=seed, simulation=True)[:, 0]
        else:
            out = mech.randomise(rows)[:, 0]
        event = [
            consistent(o, -0.5, mech.scale) and not consistent(o, 0.5, mech.scale) for o in out
        ]
        rates.append(float(np.mean(event)))
    return rates


@pytest.mark.parametrize(
    "mech, consistent, n, leak",
    [
        (LaplaceMechanism(1.0, l1_bound=0.5), _laplace_consistent, 1500, 0.5),
        (GaussianMechanism(1.0, 1e-5, l2_bound=0.5), _ziggurat_consistent, 400, 0.1),
    ],
    ids=["laplace", "gaussian"],
)
def test_floating_point_attack_works_on_numpy_samplers_and_not_on_the_client(
    mech, consistent, n, leak
):
    p_x, p_other = _exclusion_rates(mech, consistent, n, simulation=True)
    assert p_other == 0.0  # the model of NumPy's sampler is exact: E never happens under x'
    assert p_x > leak  # Laplace: about 80 % of outputs exclude x'; Gaussian: 71 of 300
    if not opendp_available():
        pytest.skip("optional extra opendp absent (the client path needs it)")
    p_x, p_other = _exclusion_rates(mech, consistent, n, simulation=False)
    se = math.sqrt((p_x * (1 - p_x) + p_other * (1 - p_other)) / n)
    assert p_x <= math.exp(mech.epsilon) * p_other + 4 * se + 1e-5  # nothing certain left
    assert p_other > 0.0  # E happens under x' too: the "exclusion" is no evidence


@needs_opendp
def test_the_default_client_report_uses_the_exact_sampler():
    rep = LDPSparseLinearRegression(**PARAMS).privatize(X1, Y1)
    assert rep.metadata["sampler"] == "opendp" and rep.metadata["simulation"] is False
    sim = LDPSparseLinearRegression(**PARAMS).privatize(X1, Y1, simulation=True)
    assert sim.metadata["sampler"] == "numpy" and sim.metadata["simulation"] is True
    with pytest.raises(ValueError, match="simulations only"):
        LDPSparseLinearRegression(**PARAMS, noise_backend="numpy").privatize(X1, Y1)
