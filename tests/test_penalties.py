"""Penalty objects: prox consistent with value, subdifferential distance, alpha_max."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from sparsestat.penalties import CEL0, L0, L1, L1_2, GroupL1, Lq, make_penalty

PENALTIES = [
    L1(0.3),
    L0(0.3),
    L1_2(0.3),
    Lq(0.3, q=0.3),
    Lq(0.3, q=1.0),
    CEL0(0.3, atom_norms=np.linspace(0.5, 1.5, 8)),
    GroupL1(0.3, groups=np.arange(8) // 2),
]
IDS = [repr(p) for p in PENALTIES]


@pytest.mark.parametrize("pen", PENALTIES, ids=IDS)
def test_prox_minimises_value_against_random_perturbations(pen):
    rng = np.random.default_rng(0)
    for _ in range(20):
        z = rng.standard_normal(8) * 2
        step = rng.uniform(0.1, 0.9)
        x = pen.prox(z, step)

        def F(v, z=z, step=step):
            return 0.5 * np.sum((v - z) ** 2) + step * pen.value(v)

        base = F(x)
        for _ in range(200):
            v = x + rng.standard_normal(8) * rng.choice([1e-3, 1e-1, 1.0])
            assert base <= F(v) + 1e-12
            assert base <= F(np.zeros(8)) + 1e-12


@pytest.mark.parametrize("pen", PENALTIES, ids=IDS)
def test_prox_fixed_points_have_zero_subdiff_distance(pen):
    """At a prox-gradient fixed point of 1/2 ||w - b||^2 + h, the certificate vanishes."""
    rng = np.random.default_rng(1)
    b = rng.standard_normal(8) * 2
    w = np.zeros(8)
    for _ in range(500):  # prox-gradient with step 0.5 on f(w) = 1/2 ||w - b||^2
        w = pen.prox(w - 0.5 * (w - b), 0.5)
    dist = pen.subdiff_distance(w, w - b)
    if pen.is_convex:
        assert np.max(dist) <= 1e-8
    else:  # critical point: distance vanishes on the support
        assert np.max(np.where(np.abs(w) > 0, dist, 0.0)) <= 1e-6


@pytest.mark.parametrize("pen", PENALTIES, ids=IDS)
def test_alpha_max_is_the_zero_threshold(pen):
    rng = np.random.default_rng(2)
    grad = rng.standard_normal(8)
    step = 0.5
    amax = pen.alpha_max(grad, step=step)
    above = clone(pen).set_params(alpha=amax * (1 + 1e-6))
    below = clone(pen).set_params(alpha=amax * (1 - 1e-3))
    assert np.all(above.prox(-step * grad, step) == 0)
    assert np.any(below.prox(-step * grad, step) != 0)


def test_penalties_are_estimator_like():
    pen = Lq(alpha=0.2, q=0.4)
    assert pen.get_params() == {"alpha": 0.2, "q": 0.4}
    assert clone(pen).set_params(alpha=3.0).alpha == 3.0
    assert L1_2().get_params() == {"alpha": 1.0}


def test_convexity_flags():
    assert L1().is_convex and GroupL1().is_convex and Lq(q=1.0).is_convex
    assert not (L0().is_convex or L1_2().is_convex or Lq(q=0.5).is_convex or CEL0().is_convex)


def test_invalid_parameters_raise_clear_errors():
    with pytest.raises(ValueError, match="alpha"):
        L1(alpha=-1).prox(np.ones(2))
    with pytest.raises(ValueError, match="q must"):
        Lq(q=1.5).prox(np.ones(2))
    with pytest.raises(ValueError, match="step"):
        L1().prox(np.ones(2), step=0.0)
    with pytest.raises(ValueError, match="groups"):
        GroupL1(groups=[0, 1]).prox(np.ones(3))
    with pytest.raises(ValueError, match="penalty must be"):
        make_penalty("l3")


def test_make_penalty():
    assert isinstance(make_penalty("cel0", alpha=0.1), CEL0)
    pen = L0(0.2)
    assert make_penalty(pen) is pen


def test_group_l1_without_groups_is_l1():
    z = np.random.default_rng(3).standard_normal(10)
    assert np.allclose(GroupL1(0.4).prox(z, 0.5), L1(0.4).prox(z, 0.5))
    assert GroupL1(0.4).value(z) == pytest.approx(L1(0.4).value(z))
