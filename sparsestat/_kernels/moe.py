"""Kernels of the Gaussian mixture of experts: E-step, weighted expert statistics, gate objective.

Every kernel has a generic array-API version (NumPy, CuPy, PyTorch) and, for the two
passes over the data that dominate an EM iteration (E-step and weighted moments), a Numba
version used for NumPy input. All arithmetic is in log space (log-softmax, log-sum-exp).

Notation: ``X`` (n, d) features, ``y`` (n,) targets, ``S`` (n, k) gate logits, ``coef``
(k, d) and ``intercept`` (k,) expert means ``mu[n, i] = coef[i] @ X[n] + intercept[i]``,
``variances`` (k,) expert noise variances, ``R`` (n, k) responsibilities (rows sum to one).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit
from scipy.special import expit, ndtr

from sparsestat._kernels._dispatch import get_kernel, get_namespace, register

__all__ = [
    "activation_functions",
    "gate_logits",
    "gate_q_and_grad",
    "moe_estep",
    "moe_expert_moments",
    "moe_sample",
    "moe_solve_experts",
    "moe_weighted_sse",
]

_LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------- E-step
def _logsumexp_rows(A: Any, xp: Any) -> Any:
    m = xp.max(A, axis=1, keepdims=True)
    return m[:, 0] + xp.log(xp.sum(xp.exp(A - m), axis=1))


@register("moe_estep", "generic")
def _estep_generic(
    X: Any, y: Any, S: Any, coef: Any, intercept: Any, variances: Any
) -> tuple[Any, Any]:
    xp = get_namespace(X, y, S)
    mu = X @ coef.T + intercept[None, :]
    log_pi = S - _logsumexp_rows(S, xp)[:, None]
    resid = y[:, None] - mu
    J = log_pi - 0.5 * (_LOG_2PI + xp.log(variances)[None, :] + resid * resid / variances[None, :])
    ll = _logsumexp_rows(J, xp)
    R = xp.exp(J - ll[:, None])
    return R, ll


@njit(cache=True)
def _estep_numba_impl(  # pragma: no cover - compiled
    X: Any, y: Any, S: Any, coef: Any, intercept: Any, variances: Any
) -> Any:
    n, d = X.shape
    k = S.shape[1]
    R = np.empty((n, k))
    ll = np.empty(n)
    logc = np.empty(k)
    inv = np.empty(k)
    for i in range(k):
        logc[i] = -0.5 * (_LOG_2PI + np.log(variances[i]))
        inv[i] = 1.0 / variances[i]
    J = np.empty(k)
    for t in range(n):
        m = -np.inf
        for i in range(k):
            if S[t, i] > m:
                m = S[t, i]
        acc = 0.0
        for i in range(k):
            acc += np.exp(S[t, i] - m)
        lz = m + np.log(acc)
        mj = -np.inf
        for i in range(k):
            mu = intercept[i]
            for j in range(d):
                mu += coef[i, j] * X[t, j]
            r = y[t] - mu
            J[i] = S[t, i] - lz + logc[i] - 0.5 * r * r * inv[i]
            if J[i] > mj:
                mj = J[i]
        acc = 0.0
        for i in range(k):
            acc += np.exp(J[i] - mj)
        lt = mj + np.log(acc)
        ll[t] = lt
        for i in range(k):
            R[t, i] = np.exp(J[i] - lt)
    return R, ll


def _f64(*arrays: Any) -> list[np.ndarray]:
    return [np.ascontiguousarray(a, dtype=np.float64) for a in arrays]


@register("moe_estep", "numba")
def _estep_numba(
    X: Any, y: Any, S: Any, coef: Any, intercept: Any, variances: Any
) -> tuple[np.ndarray, np.ndarray]:
    return _estep_numba_impl(*_f64(X, y, S, coef, intercept, variances))


def moe_estep(X: Any, y: Any, S: Any, coef: Any, intercept: Any, variances: Any) -> tuple[Any, Any]:
    """E-step of the Gaussian mixture of experts.

    Parameters
    ----------
    X : array of shape (n, d)
        Features.
    y : array of shape (n,)
        Targets.
    S : array of shape (n, k)
        Gate logits.
    coef : array of shape (k, d)
        Expert slopes.
    intercept : array of shape (k,)
        Expert intercepts.
    variances : array of shape (k,)
        Expert noise variances (positive).

    Returns
    -------
    R : array of shape (n, k)
        Responsibilities ``exp(J - logsumexp(J))`` with
        ``J[n, i] = log_softmax(S[n])[i] + log N(y[n]; mu[n, i], variances[i])``.
    ll : array of shape (n,)
        Per-sample log-likelihood ``logsumexp_i J[n, i]``.

    Notes
    -----
    O(nkd) time, O(nk) memory. The Numba version (NumPy input) makes one pass over the rows.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.moe import moe_estep
    >>> X = np.zeros((2, 1)); y = np.array([0.0, 1.0]); S = np.zeros((2, 2))
    >>> R, ll = moe_estep(X, y, S, np.zeros((2, 1)), np.array([0.0, 1.0]), np.ones(2))
    >>> R.sum(axis=1)
    array([1., 1.])
    """
    return get_kernel("moe_estep", X, y, S)(X, y, S, coef, intercept, variances)


# --------------------------------------------------------------------------- expert statistics
@register("moe_expert_moments", "generic")
def _moments_generic(X: Any, y: Any, R: Any) -> tuple[Any, Any, Any]:
    xp = get_namespace(X, y, R)
    n = X.shape[0]
    k = R.shape[1]
    Xa = xp.concat([X, xp.ones((n, 1), dtype=X.dtype, device=_device(X))], axis=1)
    grams = []
    rhs = []
    for i in range(k):
        Xw = Xa * R[:, i : i + 1]
        grams.append(Xw.T @ Xa)
        rhs.append(Xw.T @ y)
    return xp.stack(grams), xp.stack(rhs), xp.sum(R, axis=0)


def _device(x: Any) -> Any:
    from array_api_compat import device

    return device(x)


@njit(cache=True)
def _moments_numba_impl(X: Any, y: Any, R: Any) -> Any:  # pragma: no cover - compiled
    n, d = X.shape
    k = R.shape[1]
    p = d + 1
    G = np.zeros((k, p, p))
    h = np.zeros((k, p))
    s = np.zeros(k)
    xa = np.empty(p)
    xa[d] = 1.0
    for t in range(n):
        for j in range(d):
            xa[j] = X[t, j]
        yt = y[t]
        for i in range(k):
            w = R[t, i]
            if w == 0.0:
                continue
            s[i] += w
            for a in range(p):
                wa = w * xa[a]
                h[i, a] += wa * yt
                for b in range(a, p):
                    G[i, a, b] += wa * xa[b]
    for i in range(k):
        for a in range(p):
            for b in range(a + 1, p):
                G[i, b, a] = G[i, a, b]
    return G, h, s


@register("moe_expert_moments", "numba")
def _moments_numba(X: Any, y: Any, R: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _moments_numba_impl(*_f64(X, y, R))


def moe_expert_moments(X: Any, y: Any, R: Any) -> tuple[Any, Any, Any]:
    """Weighted normal-equation statistics of every expert, on ``[X, 1]``.

    Parameters
    ----------
    X : array of shape (n, d)
        Features.
    y : array of shape (n,)
        Targets.
    R : array of shape (n, k)
        Responsibilities (weights).

    Returns
    -------
    G : array of shape (k, d + 1, d + 1)
        ``G[i] = [X, 1]^T diag(R[:, i]) [X, 1]`` (the intercept column last).
    h : array of shape (k, d + 1)
        ``h[i] = [X, 1]^T diag(R[:, i]) y``.
    s : array of shape (k,)
        Total weight ``R.sum(axis=0)``.

    Notes
    -----
    O(nk(d + 1)^2 / 2) time. The Numba version makes one pass over the rows and keeps the
    k small Gram matrices in cache; the generic version makes k weighted GEMMs.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.moe import moe_expert_moments
    >>> G, h, s = moe_expert_moments(np.ones((3, 1)), np.ones(3), np.ones((3, 1)))
    >>> G[0]
    array([[3., 3.],
           [3., 3.]])
    """
    return get_kernel("moe_expert_moments", X, y, R)(X, y, R)


@register("moe_weighted_sse", "generic")
def _sse_generic(X: Any, y: Any, R: Any, coef: Any, intercept: Any) -> Any:
    xp = get_namespace(X, y, R)
    resid = y[:, None] - (X @ coef.T + intercept[None, :])
    return xp.sum(R * resid * resid, axis=0)


@njit(cache=True)
def _sse_numba_impl(  # pragma: no cover - compiled
    X: Any, y: Any, R: Any, coef: Any, intercept: Any
) -> Any:
    n, d = X.shape
    k = R.shape[1]
    out = np.zeros(k)
    for t in range(n):
        for i in range(k):
            mu = intercept[i]
            for j in range(d):
                mu += coef[i, j] * X[t, j]
            r = y[t] - mu
            out[i] += R[t, i] * r * r
    return out


@register("moe_weighted_sse", "numba")
def _sse_numba(X: Any, y: Any, R: Any, coef: Any, intercept: Any) -> np.ndarray:
    return _sse_numba_impl(*_f64(X, y, R, coef, intercept))


def moe_weighted_sse(X: Any, y: Any, R: Any, coef: Any, intercept: Any) -> Any:
    """Weighted residual sum of squares of every expert.

    Parameters
    ----------
    X : array of shape (n, d)
        Features.
    y : array of shape (n,)
        Targets.
    R : array of shape (n, k)
        Responsibilities (weights).
    coef : array of shape (k, d)
        Expert slopes.
    intercept : array of shape (k,)
        Expert intercepts.

    Returns
    -------
    sse : array of shape (k,)
        ``sum_n R[n, i] (y[n] - coef[i] @ X[n] - intercept[i])**2``.

    Notes
    -----
    O(nkd) time. Computed from residuals, not from the moments, to avoid cancellation.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.moe import moe_weighted_sse
    >>> moe_weighted_sse(np.zeros((2, 1)), np.array([1.0, 3.0]), np.ones((2, 1)),
    ...                  np.zeros((1, 1)), np.array([2.0]))
    array([2.])
    """
    return get_kernel("moe_weighted_sse", X, y, R)(X, y, R, coef, intercept)


def moe_solve_experts(G: Any, h: Any, rcond: float = 1e-10) -> tuple[Any, Any]:
    """Minimum-norm solutions of the weighted normal equations ``G[i] theta_i = h[i]``.

    Parameters
    ----------
    G : array of shape (k, p, p)
        Weighted Gram matrices from :func:`moe_expert_moments` (intercept column last).
    h : array of shape (k, p)
        Weighted right-hand sides.
    rcond : float, default=1e-10
        Eigenvalues of ``G[i]`` below ``rcond`` times its largest one count as zero.

    Returns
    -------
    coef : array of shape (k, p - 1)
        Expert slopes.
    intercept : array of shape (k,)
        Expert intercepts.

    Notes
    -----
    ``theta = V diag(1 / lambda) V^T h`` over the eigenpairs of ``G[i]`` above the cutoff:
    the least-squares solution when ``G[i]`` is well conditioned, the minimum-norm one when
    an expert has fewer effective points than parameters (or no weight at all: then
    ``theta = 0``). Unlike a tiny ridge, this keeps the solution insensitive to rounding in
    ``G`` along its (numerical) null space, so sums of the same weights in another order
    give the same experts. O(k p^3) time, generic array API (``linalg.eigh``).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.moe import moe_solve_experts
    >>> coef, b = moe_solve_experts(np.eye(2)[None] * 2.0, np.array([[2.0, 4.0]]))
    >>> coef, b
    (array([[1.]]), array([2.]))
    """
    xp = get_namespace(G, h)
    p = G.shape[-1]
    lam, V = xp.linalg.eigh(G)
    cut = rcond * xp.max(lam, axis=-1, keepdims=True)
    keep = lam > cut
    inv = xp.where(keep, 1.0 / xp.where(keep, lam, xp.ones_like(lam)), xp.zeros_like(lam))
    Vt_h = xp.matrix_transpose(V) @ h[..., None]
    theta = (V @ (inv[..., None] * Vt_h))[..., 0]
    return theta[:, : p - 1], theta[:, p - 1]


# --------------------------------------------------------------------------- gate
def _gelu(z: np.ndarray) -> np.ndarray:
    return z * ndtr(z)


def _gelu_prime(z: np.ndarray) -> np.ndarray:
    return ndtr(z) + z * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _sigmoid_prime(z: np.ndarray) -> np.ndarray:
    s = expit(z)
    return s * (1.0 - s)


def _tanh_prime(z: np.ndarray) -> np.ndarray:
    t = np.tanh(z)
    return 1.0 - t * t


_ACTIVATIONS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any], bool]] = {
    # name: (f, f', positively homogeneous)
    "identity": (lambda z: z, np.ones_like, True),
    "tanh": (np.tanh, _tanh_prime, False),
    "sigmoid": (expit, _sigmoid_prime, False),
    "gelu": (_gelu, _gelu_prime, False),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(np.float64), True),
}


def activation_functions(
    activation: str | tuple[Callable[[Any], Any], Callable[[Any], Any]],
) -> tuple[Callable[[Any], Any], Callable[[Any], Any], bool]:
    """Return ``(f, f', is_homogeneous)`` for an activation name or an ``(f, f')`` pair.

    Parameters
    ----------
    activation : {'identity', 'tanh', 'sigmoid', 'gelu', 'relu'} or tuple (f, fprime)
        The activation; a user pair is assumed not positively homogeneous.

    Returns
    -------
    f : callable
        Elementwise activation.
    fprime : callable
        Its derivative.
    homogeneous : bool
        True for positively homogeneous activations (``f(z) = z f'(z)``), with which the
        activation gate has the same degeneracy as the linear temperature gate.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.moe import activation_functions
    >>> f, fp, hom = activation_functions("tanh")
    >>> float(fp(np.array(0.0))), hom
    (1.0, False)
    """
    if isinstance(activation, str):
        return _ACTIVATIONS[activation]
    f, fprime = activation
    return f, fprime, False


def gate_logits(
    X: np.ndarray,
    gate_coef: np.ndarray,
    gate_intercept: np.ndarray,
    temperature: float,
    f: Callable[[Any], Any] | None = None,
    inner_intercept: np.ndarray | None = None,
) -> np.ndarray:
    """Gate logits ``s[n, i] = f(gate_coef[i] @ X[n] + gamma[i]) / tau + gate_intercept[i]``.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Features.
    gate_coef : ndarray of shape (k, d)
        Gate slopes (beta_1).
    gate_intercept : ndarray of shape (k,)
        Gate intercepts (beta_0, outside the activation and the temperature).
    temperature : float
        Temperature tau > 0.
    f : callable or None, default=None
        Activation; None means the identity (linear gate).
    inner_intercept : ndarray of shape (k,) or None, default=None
        Bias inside the activation (``gate_inner_bias=True``).

    Returns
    -------
    S : ndarray of shape (n, k)
        Logits.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.moe import gate_logits
    >>> gate_logits(np.ones((1, 1)), np.array([[2.0], [0.0]]), np.zeros(2), 2.0)
    array([[1., 0.]])
    """
    Z = X @ gate_coef.T
    if inner_intercept is not None:
        Z = Z + inner_intercept[None, :]
    A = Z if f is None else f(Z)
    return A / temperature + gate_intercept[None, :]


@register("moe_gate_q_grad", "generic")
def _gate_q_grad_generic(
    X: Any,
    R: Any,
    gate_coef: Any,
    gate_intercept: Any,
    temperature: float,
    activation: Any,
    inner_intercept: Any,
) -> tuple[float, dict[str, Any]]:
    f, fprime = (None, None) if activation is None else activation_functions(activation)[:2]
    Z = X @ gate_coef.T
    if inner_intercept is not None:
        Z = Z + inner_intercept[None, :]
    A = (Z if f is None else f(Z)) / temperature
    S = A + gate_intercept[None, :]
    m = np.max(S, axis=1, keepdims=True)
    E = np.exp(S - m)
    se = np.sum(E, axis=1, keepdims=True)
    lse = m + np.log(se)
    r = np.sum(R, axis=1, keepdims=True)
    Q = float(np.sum(R * S) - np.sum(r * lse))
    G = R - r * (E / se)
    Gz = G / temperature if fprime is None else G * fprime(Z) / temperature
    grad = {
        "gate_coef": Gz.T @ X,
        "gate_intercept": np.sum(G, axis=0),
        "inner_intercept": None if inner_intercept is None else np.sum(Gz, axis=0),
        "log_temperature": -float(np.sum(G * A)),
    }
    return Q, grad


_ACT_CODES = {None: 0, "identity": 0, "tanh": 1, "sigmoid": 2, "gelu": 3, "relu": 4}


@njit(cache=True)
def _act_numba(code: int, z: float) -> tuple[float, float]:  # pragma: no cover - compiled
    if code == 1:
        t = math.tanh(z)
        return t, 1.0 - t * t
    if code == 2:
        if z >= 0.0:
            e = math.exp(-z)
            sg = 1.0 / (1.0 + e)
        else:
            e = math.exp(z)
            sg = e / (1.0 + e)
        return sg, sg * (1.0 - sg)
    if code == 3:
        cdf = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
        return z * cdf, cdf + z * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    if code == 4:
        if z > 0.0:
            return z, 1.0
        return 0.0, 0.0
    return z, 1.0


@njit(cache=True)
def _gate_q_grad_numba_impl(  # pragma: no cover - compiled
    X: Any, R: Any, B1: Any, b0: Any, gamma: Any, tau: float, code: int
) -> Any:
    n, d = X.shape
    k = B1.shape[0]
    gB1 = np.zeros((k, d))
    gb0 = np.zeros(k)
    ggam = np.zeros(k)
    glogt = 0.0
    Q = 0.0
    a = np.empty(k)
    fp = np.empty(k)
    sv = np.empty(k)
    ev = np.empty(k)
    inv_tau = 1.0 / tau
    for t in range(n):
        m = -np.inf
        for i in range(k):
            zi = gamma[i]
            for j in range(d):
                zi += B1[i, j] * X[t, j]
            fv, fpv = _act_numba(code, zi)
            a[i] = fv * inv_tau
            fp[i] = fpv
            sv[i] = a[i] + b0[i]
            if sv[i] > m:
                m = sv[i]
        acc = 0.0
        for i in range(k):
            ev[i] = math.exp(sv[i] - m)
            acc += ev[i]
        lse = m + math.log(acc)
        r = 0.0
        for i in range(k):
            r += R[t, i]
        for i in range(k):
            Q += R[t, i] * sv[i]
            g = R[t, i] - r * ev[i] / acc
            gb0[i] += g
            glogt -= g * a[i]
            gz = g * fp[i] * inv_tau
            ggam[i] += gz
            for j in range(d):
                gB1[i, j] += gz * X[t, j]
        Q -= r * lse
    return Q, gB1, gb0, ggam, glogt


@register("moe_gate_q_grad", "numba")
def _gate_q_grad_numba(
    X: Any,
    R: Any,
    gate_coef: Any,
    gate_intercept: Any,
    temperature: float,
    activation: Any,
    inner_intercept: Any,
) -> tuple[float, dict[str, Any]]:
    if not (activation is None or isinstance(activation, str)):
        return _gate_q_grad_generic(
            X, R, gate_coef, gate_intercept, temperature, activation, inner_intercept
        )
    k = gate_coef.shape[0]
    gamma = np.zeros(k) if inner_intercept is None else inner_intercept
    X, R, B1, b0, gamma = _f64(X, R, gate_coef, gate_intercept, gamma)
    Q, gB1, gb0, ggam, glogt = _gate_q_grad_numba_impl(
        X, R, B1, b0, gamma, float(temperature), _ACT_CODES[activation]
    )
    grad = {
        "gate_coef": gB1,
        "gate_intercept": gb0,
        "inner_intercept": None if inner_intercept is None else ggam,
        "log_temperature": float(glogt),
    }
    return float(Q), grad


def gate_q_and_grad(
    X: Any,
    R: Any,
    gate_coef: Any,
    gate_intercept: Any,
    temperature: float,
    activation: Any = None,
    inner_intercept: Any = None,
) -> tuple[float, dict[str, Any]]:
    """Gate part of the EM objective, ``Q = sum_{n,i} R[n, i] log softmax(s(x_n))_i``, and gradient.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Features.
    R : ndarray of shape (n, k)
        Responsibilities.
    gate_coef : ndarray of shape (k, d)
        Gate slopes.
    gate_intercept : ndarray of shape (k,)
        Gate intercepts.
    temperature : float
        Temperature tau > 0.
    activation : None, str or tuple (f, fprime), default=None
        Activation (see :func:`activation_functions`); None means the identity (linear gate).
    inner_intercept : ndarray of shape (k,) or None, default=None
        Bias inside the activation.

    Returns
    -------
    Q : float
        The objective.
    grad : dict
        ``'gate_coef'`` (k, d), ``'gate_intercept'`` (k,), ``'inner_intercept'`` (k,) or None,
        ``'log_temperature'`` (float): partial derivatives of Q. With G = R - r pi
        (r = row sums of R) and z = beta_1^T x (+ gamma): dQ/dbeta_0 = sum_n G,
        dQ/dbeta_1 = sum_n G f'(z) x / tau, dQ/dlog tau = -sum G f(z) / tau.

    Notes
    -----
    O(nkd) time. The Numba version (NumPy input, named activations) makes one fused pass
    over the rows with O(kd) memory; the generic version (NumPy, with any ``(f, fprime)``
    pair) uses two GEMMs and O(nk) memory.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.moe import gate_q_and_grad
    >>> Q, g = gate_q_and_grad(np.ones((2, 1)), np.full((2, 2), 0.5), np.zeros((2, 1)),
    ...                        np.zeros(2), 1.0)
    >>> round(Q, 6), g["gate_intercept"]
    (-1.386294, array([0., 0.]))
    """
    impl = get_kernel("moe_gate_q_grad", X, R)
    return impl(X, R, gate_coef, gate_intercept, temperature, activation, inner_intercept)


# --------------------------------------------------------------------------- sampling
def moe_sample(
    S: np.ndarray,
    mean: np.ndarray,
    variances: np.ndarray,
    rng: np.random.Generator | np.random.RandomState,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``(y, labels)`` from the mixture of experts given logits and expert means.

    Parameters
    ----------
    S : ndarray of shape (n, k)
        Gate logits.
    mean : ndarray of shape (n, k)
        Expert means at every sample.
    variances : ndarray of shape (k,)
        Expert noise variances.
    rng : numpy Generator or RandomState
        Source of randomness.

    Returns
    -------
    y : ndarray of shape (n,)
        Draws ``y ~ N(mean[n, z], variances[z])`` with ``z ~ softmax(S[n])``.
    labels : ndarray of shape (n,)
        The drawn experts ``z``.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.moe import moe_sample
    >>> y, z = moe_sample(np.array([[0.0, -50.0]]), np.array([[1.0, 9.0]]), np.array([1e-12, 1.0]),
    ...                   np.random.RandomState(0))
    >>> z, np.round(y, 3)
    (array([0]), array([1.]))
    """
    P = np.exp(S - np.max(S, axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    u = rng.uniform(size=(S.shape[0], 1))
    labels = np.minimum((np.cumsum(P, axis=1) < u).sum(axis=1), S.shape[1] - 1)
    rows = np.arange(S.shape[0])
    y = mean[rows, labels] + np.sqrt(variances[labels]) * rng.standard_normal(S.shape[0])
    return y, labels
