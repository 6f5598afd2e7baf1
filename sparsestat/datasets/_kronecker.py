"""Generators for Kronecker-structured sparse recovery and IRS-MIMO channel estimation."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from sklearn.utils import Bunch, check_random_state

from sparsestat._kernels.kron import kron_matvec, outer_ravel
from sparsestat.utils._compat import Interval, StrOptions, validate_params

__all__ = ["irs_channels_from_coef", "make_irs_mimo_channel", "make_kronecker_sparse_signal"]


def _noise(rng, shape, var, complex_):
    if complex_:
        return np.sqrt(var / 2) * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
    return np.sqrt(var) * rng.standard_normal(shape)


@validate_params(
    {
        "factor_shapes": ["array-like"],
        "n_nonzero": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "values": [StrOptions({"kron", "iid"})],
        "snr_db": [Interval(Real, None, None, closed="neither"), None],
        "complex": ["boolean"],
        "n_targets": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "return_info": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def make_kronecker_sparse_signal(
    factor_shapes=((8, 15), (12, 15), (15, 15)),
    n_nonzero=3,
    values="kron",
    snr_db=25.0,
    complex=False,
    n_targets=1,
    random_state=None,
    return_info=False,
):
    """Kronecker-structured sparse recovery problem ``y = kron(A_1, ..., A_I) x + n``.

    Reproduces the synthetic setup of He & Joseph (2024): Gaussian factors ``A_i``
    (``M_i x N_i``, iid ``N(0, 1)``, ``CN(0, 1)`` if complex), a Kronecker support
    ``supp(x_1) kron ... kron supp(x_I)`` with ``n_nonzero`` random entries per factor, and
    white noise at the requested SNR ``(||A x||^2 / M) / sigma^2``.

    Parameters
    ----------
    factor_shapes : sequence of (int, int), default=((8, 15), (12, 15), (15, 15))
        ``(M_i, N_i)`` per factor (the paper: ``N_i = 15``, ``M = (M_1, 12, 15)``).
    n_nonzero : int or sequence of int, default=3
        Nonzeros per factor ``K`` (``K^I`` nonzeros in ``x``).
    values : {"kron", "iid"}, default="kron"
        ``"kron"``: ``x = x_1 kron ... kron x_I`` with ``N(0, 1)`` entries on each factor
        support; ``"iid"``: independent ``N(0, 1)`` values on the Kronecker support.
    snr_db : float or None, default=25.0
        Signal-to-noise ratio in dB; None gives noiseless measurements.
    complex : bool, default=False
        Complex factors, coefficients and noise (circular Gaussian).
    n_targets : int, default=1
        Number of measurement vectors ``L`` (same support, independent values).
    random_state : int, RandomState instance or None, default=None
        Seed.
    return_info : bool, default=False
        Also return a Bunch with ``noise_variance``, ``y_noiseless``, ``support_factors``,
        ``support`` and ``factor_values``.

    Returns
    -------
    factors : list of ndarray
        The factor matrices ``A_i``.
    y : ndarray of shape (M,) or (M, n_targets)
        Measurements (C order over the factors' rows, factor 1 slowest).
    coef : ndarray of shape (N,) or (n_targets, N)
        True coefficients.
    info : Bunch
        Only with ``return_info=True``.

    Notes
    -----
    The noise variance is set from the empirical signal power of the draw, as in the authors'
    code, so the SNR is exact. Complexity ``O(N sum M_i)``.

    References
    ----------
    .. [1] Y. He and G. Joseph, "Bayesian algorithms for Kronecker-structured sparse vector
       recovery with application to IRS-MIMO channel estimation", IEEE Trans. Signal
       Process., 2024.

    Examples
    --------
    >>> from sparsestat.datasets import make_kronecker_sparse_signal
    >>> factors, y, coef = make_kronecker_sparse_signal(random_state=0)
    >>> [f.shape for f in factors], y.shape, int((coef != 0).sum())
    ([(8, 15), (12, 15), (15, 15)], (1440,), 27)
    """
    rng = check_random_state(random_state)
    shapes = [(int(m), int(n)) for m, n in factor_shapes]
    if not shapes or any(m < 1 or n < 1 for m, n in shapes):
        raise ValueError("factor_shapes must be a non-empty list of positive (M_i, N_i)")
    ks = [int(n_nonzero)] * len(shapes) if np.isscalar(n_nonzero) else [int(k) for k in n_nonzero]
    if len(ks) != len(shapes) or any(not (1 <= k <= n) for k, (_, n) in zip(ks, shapes)):
        raise ValueError("n_nonzero must be between 1 and N_i for every factor")

    def draw(shape):
        if complex:
            return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)
        return rng.standard_normal(shape)

    factors = [draw(s) for s in shapes]
    supports = [np.sort(rng.choice(n, size=k, replace=False)) for k, (_, n) in zip(ks, shapes)]
    sizes = [n for _, n in shapes]
    n_total = math.prod(sizes)
    mask = outer_ravel([np.isin(np.arange(n), s).astype(float) for n, s in zip(sizes, supports)])
    coef = np.zeros((n_targets, n_total), dtype=np.complex128 if complex else np.float64)
    factor_values = []
    for col in range(n_targets):
        if values == "kron":
            vecs = []
            for s, n in zip(supports, sizes):
                v = np.zeros(n, dtype=coef.dtype)
                v[s] = draw(len(s))
                vecs.append(v)
            factor_values.append(vecs)
            coef[col] = outer_ravel(vecs)
        else:
            nz = np.flatnonzero(mask)
            coef[col, nz] = draw(nz.size)
    y_clean = kron_matvec(factors, coef.T)
    m_total = y_clean.shape[0]
    if snr_db is None:
        var = 0.0
        y = y_clean.copy()
    else:
        var = float(np.sum(np.abs(y_clean) ** 2) / y_clean.size / 10 ** (snr_db / 10))
        y = y_clean + _noise(rng, y_clean.shape, var, complex)
    if n_targets == 1:
        y, y_clean, coef = y[:, 0], y_clean[:, 0], coef[0]
    if not return_info:
        return factors, y, coef
    info = Bunch(
        noise_variance=var,
        y_noiseless=y_clean,
        support_factors=supports,
        support=np.flatnonzero(mask),
        factor_values=factor_values,
        n_measurements=m_total,
    )
    return factors, y, coef, info


def _ula(omega, dim):
    """ULA atoms ``a(w)[n] = exp(j pi w n) / sqrt(dim)`` as columns, for angles ``omega``."""
    n = np.arange(dim)[:, None]
    return np.exp(1j * np.pi * n * np.asarray(omega)[None, :]) / np.sqrt(dim)


def _irs_model(
    grid,
    pilots,
    irs_phases,
    aod_ms,
    aoa_irs,
    aod_irs,
    aoa_bs,
    gains_ms_irs,
    gains_irs_bs,
    n_ms,
    n_bs,
    n_irs,
):
    """Deterministic part of the IRS-MIMO model: factors, true x, channels (see public doc)."""
    g = len(grid)
    n_paths = len(aoa_irs)
    a_ms, a_bs, a_irs = _ula(grid, n_ms), _ula(grid, n_bs), _ula(grid, n_irs)
    cascade = a_irs[:, :1] * np.conj(a_irs)  # column j: a_irs(w_0) * conj(a_irs(w_j))
    f1 = irs_phases.T @ cascade
    f2 = pilots.T @ np.conj(a_ms)
    f3 = a_bs
    h_irs_ms = np.sqrt(n_ms * n_irs / n_paths) * (
        (a_irs[:, aoa_irs] * gains_ms_irs[None, :]).sum(axis=1)[:, None]
        * np.conj(a_ms[:, aod_ms])[None, :]
    )
    h_bs_irs = np.sqrt(n_bs * n_irs / n_paths) * (
        (a_bs[:, aoa_bs] * gains_irs_bs[None, :]).sum(axis=1)[:, None]
        * np.conj(a_irs[:, aod_irs])[None, :]
    )
    h_true = np.stack(
        [h_bs_irs @ (irs_phases[:, p, None] * h_irs_ms) for p in range(irs_phases.shape[1])]
    )
    x_irs = np.zeros(g, dtype=complex)
    x_irs[(aod_irs - np.asarray(aoa_irs)) % g] = gains_ms_irs
    x_ms = np.zeros(g, dtype=complex)
    x_ms[aod_ms] = 1.0
    x_bs = np.zeros(g, dtype=complex)
    x_bs[aoa_bs] = gains_irs_bs
    scale = np.sqrt(n_ms * n_bs) * n_irs / n_paths
    coef = scale * outer_ravel([x_irs, x_ms, x_bs])
    factors = [f1, f2, f3]
    y_clean = kron_matvec(factors, coef)
    return Bunch(
        factors=factors,
        coef=coef,
        y_noiseless=y_clean,
        H_true=h_true,
        H_bs_irs=h_bs_irs,
        H_irs_ms=h_irs_ms,
        A_ms=a_ms,
        A_bs=a_bs,
        A_irs=a_irs,
        support_factors=[
            np.sort((aod_irs - np.asarray(aoa_irs)) % g),
            np.array([aod_ms]),
            np.sort(np.asarray(aoa_bs)),
        ],
    )


@validate_params(
    {
        "n_ms": [Interval(Integral, 1, None, closed="left")],
        "n_bs": [Interval(Integral, 1, None, closed="left")],
        "n_irs": [Interval(Integral, 1, None, closed="left")],
        "grid_size": [Interval(Integral, 2, None, closed="left")],
        "n_pilots": [Interval(Integral, 1, None, closed="left")],
        "n_irs_configs": [Interval(Integral, 1, None, closed="left")],
        "angle_spread": [Interval(Integral, 1, None, closed="left")],
        "snr_db": [Interval(Real, None, None, closed="neither"), None],
        "random_state": ["random_state"],
        "design_random_state": ["random_state"],
        "return_info": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def make_irs_mimo_channel(
    n_ms=6,
    n_bs=16,
    n_irs=256,
    grid_size=18,
    n_pilots=3,
    n_irs_configs=6,
    angle_spread=3,
    snr_db=20.0,
    random_state=None,
    design_random_state=None,
    return_info=False,
):
    """IRS-assisted MIMO uplink channel estimation as Kronecker-structured sparse recovery.

    The mobile station (MS, ``n_ms`` antennas) sends ``n_pilots`` QPSK pilots through an
    intelligent reflecting surface (IRS, ``n_irs`` elements, ``n_irs_configs`` random
    ``+-1/sqrt(n_irs)`` phase configurations) to the base station (BS, ``n_bs`` antennas).
    The MS-IRS link has one MS departure angle and ``angle_spread`` adjacent IRS arrival
    angles; the IRS-BS link one IRS departure angle and ``angle_spread`` adjacent BS arrival
    angles (uniform linear arrays, angles on the grid ``w_k = -1 + 2k / grid_size``, CN(0, 1)
    gains). With ``Y_p = H_BS diag(theta_p) H_MS X + N_p`` stacked as ``y = [vec Y_1; ...]``
    (configuration slowest, BS antenna fastest), ``y = (F_1 kron F_2 kron F_3) x + n`` with
    ``F_1 = Theta^T Abar`` (cascaded IRS angle differences), ``F_2 = X^T conj(A_MS)`` and
    ``F_3 = A_BS``; ``x`` is block-sparse with ``angle_spread^2`` nonzeros.

    Parameters
    ----------
    n_ms : int, default=6
        MS antennas.
    n_bs : int, default=16
        BS antennas.
    n_irs : int, default=256
        IRS elements.
    grid_size : int, default=18
        Angular grid points per dimension ``G`` (``N = G^3``).
    n_pilots : int, default=3
        Pilot symbols ``T`` per configuration.
    n_irs_configs : int, default=6
        IRS phase configurations ``P``.
    angle_spread : int, default=3
        Number of adjacent grid angles per cluster ``L``.
    snr_db : float or None, default=20.0
        SNR ``(||y_0||^2 / M) / sigma^2`` in dB; None gives noiseless data.
    random_state : int, RandomState instance or None, default=None
        Seed of the channel (angles, gains) and the noise; also of the pilots and IRS phases
        when ``design_random_state`` is None.
    design_random_state : int, RandomState instance or None, default=None
        Seed of the pilots and IRS phase configurations alone. None draws them from
        ``random_state`` (a new design per call). An int fixes the design across calls with
        different ``random_state``: the authors' simulation draws the pilots and IRS phases
        once and keeps them for all trials, so use one ``design_random_state`` with
        ``random_state = trial`` to follow it.
    return_info : bool, default=False
        Also return a Bunch with ``noise_variance``, ``y_noiseless``, ``H_true`` (P, n_bs,
        n_ms), ``H_bs_irs``, ``H_irs_ms``, ``pilots``, ``irs_phases``, ``grid``, ``support``,
        ``support_factors``, the atom matrices ``A_ms``, ``A_bs``, ``A_irs``, the angle
        indices and gains, and ``factors``.

    Returns
    -------
    factors : list of 3 complex ndarrays
        ``F_1 (P, G)``, ``F_2 (T, G)``, ``F_3 (n_bs, G)``.
    y : ndarray of shape (P * T * n_bs,)
        Complex measurements.
    coef : ndarray of shape (G^3,)
        True coefficients (``x_IRS kron x_MS kron x_BS`` scaled).
    info : Bunch
        Only with ``return_info=True``.

    Notes
    -----
    Semantics of the authors' ``PC-KroSBL/main.m``. IRS phases are redrawn (from
    ``random_state``) if the cascaded channel norm is below 1e-5. The clusters do not wrap
    around the grid (start drawn in ``0 .. G - L``), but the IRS support of ``x`` (angle
    differences mod ``G``, a circular grid) may.
    Complexity ``O(P n_irs G + N)``.

    References
    ----------
    .. [1] Y. He and G. Joseph, "Bayesian algorithms for Kronecker-structured sparse vector
       recovery with application to IRS-MIMO channel estimation", IEEE Trans. Signal
       Process., 2024.

    Examples
    --------
    >>> from sparsestat.datasets import make_irs_mimo_channel
    >>> factors, y, coef = make_irs_mimo_channel(random_state=0)
    >>> [f.shape for f in factors], y.shape, int((coef != 0).sum())
    ([(6, 18), (3, 18), (16, 18)], (288,), 9)
    """
    rng = check_random_state(random_state)
    g = grid_size
    if angle_spread > g:
        raise ValueError("angle_spread cannot exceed grid_size")
    grid = -1.0 + 2.0 * np.arange(g) / g

    def cn(size):
        return (rng.standard_normal(size) + 1j * rng.standard_normal(size)) / np.sqrt(2)

    # pilots and phases: from random_state, or from their own stream (fixed across trials)
    design_rng = rng if design_random_state is None else check_random_state(design_random_state)
    qpsk = np.array([1 + 1j, 1 - 1j, -1 + 1j, -1 - 1j]) / np.sqrt(2)
    pilots = qpsk[design_rng.randint(0, 4, size=(n_ms, n_pilots))] / np.sqrt(n_ms)
    aod_ms = int(rng.randint(g))
    aoa_irs = int(rng.randint(g - angle_spread + 1)) + np.arange(angle_spread)
    aod_irs = int(rng.randint(g))
    aoa_bs = int(rng.randint(g - angle_spread + 1)) + np.arange(angle_spread)
    gains_ms_irs, gains_irs_bs = cn(angle_spread), cn(angle_spread)
    phase_rng = design_rng
    while True:
        phases = phase_rng.choice([-1.0, 1.0], size=(n_irs, n_irs_configs)) / np.sqrt(n_irs)
        phase_rng = rng  # a vanishing cascade: redraw the phases from random_state
        model = _irs_model(
            grid, pilots, phases, aod_ms, aoa_irs, aod_irs, aoa_bs,
            gains_ms_irs, gains_irs_bs, n_ms, n_bs, n_irs,
        )  # fmt: skip
        if min(np.linalg.norm(h) for h in model.H_true) >= 1e-5:
            break
    y_clean = model.y_noiseless
    if snr_db is None:
        var, y = 0.0, y_clean.copy()
    else:
        var = float(np.sum(np.abs(y_clean) ** 2) / y_clean.size / 10 ** (snr_db / 10))
        y = y_clean + _noise(rng, y_clean.shape, var, True)
    if not return_info:
        return model.factors, y, model.coef
    info = Bunch(
        noise_variance=var,
        pilots=pilots,
        irs_phases=phases,
        grid=grid,
        support=np.flatnonzero(model.coef),
        aod_ms=aod_ms,
        aoa_irs=aoa_irs,
        aod_irs=aod_irs,
        aoa_bs=aoa_bs,
        gains_ms_irs=gains_ms_irs,
        gains_irs_bs=gains_irs_bs,
        **{k: v for k, v in model.items() if k != "coef"},
    )
    return model.factors, y, model.coef, info


def irs_channels_from_coef(coef, info):
    """Cascaded channels ``H_p`` (one per IRS configuration) from IRS-MIMO coefficients.

    ``vec(H_p) = (theta_p^T Abar kron conj(A_MS) kron A_BS) x`` (column-major ``vec``).

    Parameters
    ----------
    coef : array-like of shape (G^3,)
        Coefficients, e.g. ``KroneckerSBL().fit(factors, y).coef_``.
    info : Bunch
        The ``info`` returned by :func:`make_irs_mimo_channel` with ``return_info=True``.

    Returns
    -------
    H : ndarray of shape (n_irs_configs, n_bs, n_ms)
        Channel estimate per configuration.

    Notes
    -----
    Cost ``O(N (P + n_ms + n_bs))`` by mode products.

    References
    ----------
    .. [1] Y. He and G. Joseph, "Bayesian algorithms for Kronecker-structured sparse vector
       recovery with application to IRS-MIMO channel estimation", IEEE Trans. Signal
       Process., 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.datasets import irs_channels_from_coef, make_irs_mimo_channel
    >>> factors, y, coef, info = make_irs_mimo_channel(random_state=0, return_info=True)
    >>> H = irs_channels_from_coef(coef, info)
    >>> bool(np.allclose(H, info.H_true))
    True
    """
    coef = np.asarray(coef)
    f1 = info.factors[0]
    a_ms, a_bs = info.A_ms, info.A_bs
    vec = kron_matvec([f1, np.conj(a_ms), a_bs], coef.astype(complex))
    h = vec.reshape(f1.shape[0], a_ms.shape[0], a_bs.shape[0])
    return np.transpose(h, (0, 2, 1))
