"""Oracles for the receptive-field tools fit_gabor and orientation_tuning."""

from __future__ import annotations

import numpy as np
import pytest

from sparsestat.decomposition import LqSparseCoder, fit_gabor, gabor_2d, orientation_tuning


def _gabor(h, w, x0, y0, th, sx, sy, f, ph, A=1.0):
    # written out independently of gabor_2d: rows are y, columns are x
    y, x = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    u = (x - x0) * np.cos(th) + (y - y0) * np.sin(th)
    v = (y - y0) * np.cos(th) - (x - x0) * np.sin(th)
    return A * np.exp(-(u**2) / (2 * sx**2) - v**2 / (2 * sy**2)) * np.cos(2 * np.pi * f * u + ph)


def _angle_mod_pi(a, b):
    d = (a - b) % np.pi
    return min(d, np.pi - d)


CASES = [
    (12, 12, 5.5, 6.0, 0.6, 2.0, 3.0, 0.2, 0.5, 1.0),
    (16, 16, 7.0, 8.5, 2.3, 2.5, 4.0, 0.15, -1.2, 0.7),
    (10, 14, 6.2, 4.1, 1.4, 1.6, 2.2, 0.27, 2.8, -2.0),
]


@pytest.mark.parametrize("case", CASES)
def test_fit_gabor_recovers_planted_parameters(case):
    h, w, x0, y0, th, sx, sy, f, ph, A = case
    img = _gabor(h, w, x0, y0, th, sx, sy, f, ph, A)
    np.testing.assert_allclose(gabor_2d((h, w), x0, y0, th, sx, sy, f, ph, A), img, atol=1e-12)
    res = fit_gabor(img)
    assert res.r2 > 1 - 1e-8
    np.testing.assert_allclose(res.model, img, atol=1e-5)
    np.testing.assert_allclose([res.x0, res.y0], [x0, y0], atol=1e-4)
    np.testing.assert_allclose([res.sigma_x, res.sigma_y, res.frequency], [sx, sy, f], rtol=1e-4)
    np.testing.assert_allclose([res.nx, res.ny], [sx * f, sy * f], rtol=1e-4)
    assert _angle_mod_pi(res.theta, th) < 1e-4 and 0 <= res.theta < np.pi
    assert res.amplitude > 0 and -np.pi < res.phase <= np.pi
    # a flattened square atom works the same
    if h == w:
        assert abs(fit_gabor(img.ravel()).r2 - res.r2) < 1e-8


def test_fit_gabor_noise_and_non_gabor():
    rng = np.random.default_rng(0)
    img = _gabor(12, 12, 5.5, 6.0, 0.6, 2.0, 3.0, 0.2, 0.5)
    noisy = img + 0.05 * rng.standard_normal(img.shape)
    res = fit_gabor(noisy)
    # the planted Gabor explains what it should of the noisy atom
    ss = np.sum((noisy - noisy.mean()) ** 2)
    r2_truth = 1 - np.sum((noisy - img) ** 2) / ss
    assert res.r2 >= r2_truth - 1e-9 and res.r2 < 0.99
    assert abs(res.frequency - 0.2) < 0.02 and _angle_mod_pi(res.theta, 0.6) < 0.1
    assert fit_gabor(rng.standard_normal((8, 8))).r2 < 0.6
    with pytest.raises(ValueError, match="square"):
        fit_gabor(np.ones(10))
    with pytest.raises(ValueError, match="zero"):
        fit_gabor(np.zeros((6, 6)))


def test_orientation_tuning_against_direct_computation():
    side, f = 8, 0.2
    thetas_true = [0.0, np.pi / 4, np.pi / 2, 2.4]
    atoms = [_gabor(side, side, 3.5, 3.5, t, 1.8, 2.6, f, 0.3).ravel() for t in thetas_true]
    yy, xx = np.mgrid[0:side, 0:side]
    r2 = (xx - 3.5) ** 2 + (yy - 3.5) ** 2
    atoms.append((np.exp(-r2 / 2) - 0.5 * np.exp(-r2 / 8)).ravel())  # isotropic centre-surround
    D = np.array(atoms)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    coder = LqSparseCoder(D, penalty="l1", alpha=0.3)
    res = orientation_tuning(coder, n_orient=12, freqs=[f, 0.35], n_phases=8)
    # responses: max over phase of |code|, computed here from gratings built independently
    n_orient = 12
    thetas = np.pi * np.arange(n_orient) / n_orient
    direct = np.zeros((2, n_orient, D.shape[0]))
    for a, ff in enumerate([f, 0.35]):
        for b, th in enumerate(thetas):
            G = np.array(
                [
                    np.cos(2 * np.pi * ff * (xx * np.cos(th) + yy * np.sin(th)) + p).ravel()
                    for p in 2 * np.pi * np.arange(8) / 8
                ]
            )
            G = (G - G.mean(axis=1, keepdims=True)) / G.std(axis=1, keepdims=True)
            direct[a, b] = np.abs(coder.transform(G)).max(axis=0)
    best = direct.max(axis=1).argmax(axis=0)
    want = np.stack([direct[best[j], :, j] for j in range(D.shape[0])], axis=1)
    np.testing.assert_allclose(res.responses, want, atol=1e-10)
    # circular variance from explicit cosine / sine sums
    c = (want * np.cos(2 * thetas)[:, None]).sum(axis=0)
    s = (want * np.sin(2 * thetas)[:, None]).sum(axis=0)
    np.testing.assert_allclose(res.circular_variance, 1 - np.hypot(c, s) / want.sum(axis=0))
    for j, t in enumerate(thetas_true):
        assert _angle_mod_pi(res.preferred_orientation[j], t) < np.pi / n_orient
        assert res.selective[j] and res.preferred_frequency[j] == f
    assert not res.selective[-1] and res.circular_variance[-1] > 0.5
    with pytest.raises(ValueError, match="square"):
        orientation_tuning(LqSparseCoder(np.ones((3, 10))))
