"""Generalised EM for the Gaussian mixture of linear experts, with (sample-)weighted data.

The numerics live in :mod:`sparsestat._kernels.moe`; this module sequences them:
E-step -> exact expert M-step (weighted least squares, floored variances) -> gate M-step that
never lowers the gate objective (L-BFGS-B with a safeguard). The weighted mean
log-likelihood is then non-decreasing along a run.

Sample weights multiply every sum over the data (responsibilities, moments, the gate
objective, the mean log-likelihood); rows of weight zero are dropped before the fit, and the
default k-means start is computed on the rows in a canonical (sorted) order with weighted
k-means++ seeding, so an integer weight gives exactly the fit of the repeated row.

A gate turns features into logits ``s_i(x) = f(beta_1i^T x [+ gamma_i]) / tau + beta_0i``.
:class:`Gate` packs its free parameters into one vector for L-BFGS (gauge fixed:
``beta_0k = 0`` always, ``beta_1k = 0`` for linear gates; ``log tau`` when the temperature is
fitted) and evaluates the gate part of the EM objective with its analytic gradient through
:func:`sparsestat._kernels.moe.gate_q_and_grad`. A new gate subclasses :class:`Gate`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from scipy.optimize import minimize
from sklearn.cluster import KMeans, kmeans_plusplus
from threadpoolctl import threadpool_limits

from sparsestat._kernels.moe import (
    activation_functions,
    gate_logits,
    gate_q_and_grad,
    moe_estep,
    moe_expert_moments,
    moe_solve_experts,
    moe_weighted_sse,
)
from sparsestat.utils import progress_bar

__all__ = [
    "LOG_TAU_BOUNDS",
    "Gate",
    "e_step",
    "em_run",
    "expert_m_step",
    "fit_em",
    "initial_responsibilities",
    "rescale_params",
    "weighted_moments",
]

LOG_TAU_BOUNDS = (math.log(1e-3), math.log(1e3))


# --------------------------------------------------------------------------- gates
class Gate:
    """Linear or activation gate with optional fitted temperature and inner bias.

    Parameters
    ----------
    n_experts : int
        Number of experts k.
    n_features : int
        Number of features d.
    activation : None, str or tuple (f, fprime), default=None
        Activation of the activation gate; None for a linear gate.
    fit_temperature : bool, default=False
        Whether ``log tau`` is a free parameter.
    inner_bias : bool, default=False
        Bias inside the activation (activation gate only).
    """

    def __init__(
        self,
        n_experts: int,
        n_features: int,
        *,
        activation: Any = None,
        fit_temperature: bool = False,
        inner_bias: bool = False,
    ) -> None:
        self.k = n_experts
        self.d = n_features
        self.linear = activation is None
        self.activation = activation
        if self.linear:
            self.f = self.fprime = None
            self.homogeneous = True
        else:
            self.f, self.fprime, self.homogeneous = activation_functions(activation)
        self.fit_temperature = fit_temperature
        self.inner_bias = inner_bias and not self.linear

    @property
    def identifiable(self) -> bool:
        """False when ``(beta_1, tau)`` enter the logits only through ``beta_1 / tau``.

        That is the case when the temperature is fitted and the activation is positively
        homogeneous (the linear dense-to-sparse gate, identity or ReLU activations).
        """
        return not (self.fit_temperature and self.homogeneous)

    # -- parameter vector -------------------------------------------------------------
    @property
    def n_slope_rows(self) -> int:
        return self.k - 1 if self.linear else self.k

    @property
    def n_params(self) -> int:
        """Free gate parameters after gauge fixing."""
        return (
            self.n_slope_rows * self.d
            + (self.k - 1)
            + (self.k if self.inner_bias else 0)
            + int(self.fit_temperature)
        )

    def pack(self, P: dict[str, Any]) -> np.ndarray:
        """The free gate parameters of ``P`` as one vector."""
        parts = [P["gate_coef"][: self.n_slope_rows].ravel(), P["gate_intercept"][: self.k - 1]]
        if self.inner_bias:
            parts.append(P["inner_intercept"])
        if self.fit_temperature:
            parts.append(np.array([math.log(P["temperature"])]))
        return np.concatenate(parts)

    def unpack(self, theta: np.ndarray, P: dict[str, Any]) -> dict[str, Any]:
        """``P`` with its gate parameters replaced by the vector ``theta``."""
        P = dict(P)
        r, d, k = self.n_slope_rows, self.d, self.k
        B1 = np.zeros((k, d))
        B1[:r] = theta[: r * d].reshape(r, d)
        pos = r * d
        b0 = np.zeros(k)
        b0[: k - 1] = theta[pos : pos + k - 1]
        pos += k - 1
        P["gate_coef"], P["gate_intercept"] = B1, b0
        if self.inner_bias:
            P["inner_intercept"] = theta[pos : pos + k].copy()
            pos += k
        if self.fit_temperature:
            P["temperature"] = math.exp(theta[pos])
        return P

    def bounds(self) -> list[tuple[float | None, float | None]]:
        """L-BFGS-B bounds of the packed vector (only ``log tau`` is bounded)."""
        b: list[tuple[float | None, float | None]] = [(None, None)] * self.n_params
        if self.fit_temperature:
            b[-1] = LOG_TAU_BOUNDS
        return b

    def zero_params(self, temperature: float) -> dict[str, Any]:
        """A flat gate (all logits equal) at the given temperature."""
        return {
            "gate_coef": np.zeros((self.k, self.d)),
            "gate_intercept": np.zeros(self.k),
            "inner_intercept": np.zeros(self.k) if self.inner_bias else None,
            "temperature": float(temperature),
        }

    # -- evaluation -------------------------------------------------------------------
    def logits(self, X: np.ndarray, P: dict[str, Any]) -> np.ndarray:
        """Gate logits of every row of ``X`` at parameters ``P``."""
        return gate_logits(
            X,
            P["gate_coef"],
            P["gate_intercept"],
            P["temperature"],
            self.f,
            P.get("inner_intercept") if self.inner_bias else None,
        )

    def q_and_grad(
        self, theta: np.ndarray, X: np.ndarray, R: np.ndarray, P: dict[str, Any]
    ) -> tuple[float, np.ndarray]:
        """Q(theta) and dQ/dtheta in the packed (gauge-fixed) coordinates.

        ``R`` holds the (weighted) responsibilities: ``Q = sum_{n,i} R_ni log pi_i(x_n)``.
        """
        Pt = self.unpack(theta, P)
        Q, g = gate_q_and_grad(
            X,
            R,
            Pt["gate_coef"],
            Pt["gate_intercept"],
            Pt["temperature"],
            self.activation,
            Pt.get("inner_intercept") if self.inner_bias else None,
        )
        parts = [g["gate_coef"][: self.n_slope_rows].ravel(), g["gate_intercept"][: self.k - 1]]
        if self.inner_bias:
            parts.append(g["inner_intercept"])
        if self.fit_temperature:
            parts.append(np.array([g["log_temperature"]]))
        return Q, np.concatenate(parts)

    def m_step(
        self, X: np.ndarray, R: np.ndarray, P: dict[str, Any], max_iter: int, ftol: float = 1e-15
    ) -> dict[str, Any]:
        """Increase Q by L-BFGS-B from the current gate; keep the old gate if Q would drop."""
        theta0 = self.pack(P)
        if theta0.size == 0:
            return P
        scale = 1.0 / max(float(np.sum(R)), 1e-300)
        at_start: list[float] = []  # Q at theta0: L-BFGS-B evaluates theta0 first

        def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
            q, g = self.q_and_grad(theta, X, R, P)
            if not at_start and np.array_equal(theta, theta0):
                at_start.append(q)
            return -q * scale, -g * scale

        res = minimize(
            fun,
            theta0,
            jac=True,
            method="L-BFGS-B",
            bounds=self.bounds() if self.fit_temperature else None,
            options={"maxiter": max_iter, "ftol": ftol, "gtol": 1e-10},
        )
        if not (np.all(np.isfinite(res.x)) and np.isfinite(res.fun)):
            return P
        q0 = at_start[0] if at_start else self.q_and_grad(theta0, X, R, P)[0]
        # monotonicity safeguard: the generalised EM step must not lower Q
        return self.unpack(res.x, P) if -res.fun / scale >= q0 else P


# --------------------------------------------------------------------------- EM pieces
def weighted_moments(X: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and standard deviation of the columns of ``X`` (weights ``w``)."""
    mean = np.average(X, axis=0, weights=w)
    var = np.average((X - mean) ** 2, axis=0, weights=w)
    return mean, np.sqrt(var)


def expert_m_step(
    X: np.ndarray,
    y: np.ndarray,
    R: np.ndarray,
    P: dict[str, Any],
    var_floor: float,
    w: np.ndarray,
) -> dict[str, Any]:
    """Exact maximisation over the experts: weighted least squares and floored variances.

    ``variances = max(SSE_i / sum_n w_n R_ni, var_floor)`` is the maximiser of the expert part
    of Q under the constraint ``variances >= var_floor``, so the step keeps EM monotone.
    An expert whose total weight is below ``10 eps sum(w)`` is re-seeded on the pooled fit.
    """
    Rw = R * w[:, None]
    G, h, s = moe_expert_moments(X, y, Rw)
    coef, intercept = moe_solve_experts(G, h)
    sse = moe_weighted_sse(X, y, Rw, coef, intercept)
    dead = s < 10.0 * np.finfo(np.float64).eps * float(np.sum(w))
    with np.errstate(divide="ignore", invalid="ignore"):
        variances = np.maximum(np.where(dead, 0.0, sse / np.where(dead, 1.0, s)), var_floor)
    if np.any(dead):
        Gp, hp, _ = moe_expert_moments(X, y, w[:, None])
        c0, b0 = moe_solve_experts(Gp, hp)
        coef[dead], intercept[dead] = c0[0], b0[0]
        y_mean = np.average(y, weights=w)
        variances[dead] = max(float(np.average((y - y_mean) ** 2, weights=w)), var_floor)
    P = dict(P)
    P["coef"], P["intercept"], P["variances"] = coef, intercept, variances
    return P


def e_step(
    X: np.ndarray, y: np.ndarray, gate: Gate, P: dict[str, Any], w: np.ndarray
) -> tuple[np.ndarray, float]:
    """Responsibilities and weighted mean log-likelihood at parameters ``P``."""
    R, ll = moe_estep(X, y, gate.logits(X, P), P["coef"], P["intercept"], P["variances"])
    return R, float(np.dot(w, ll) / np.sum(w))


def initial_responsibilities(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    k: int,
    init: str,
    rng: np.random.RandomState,
) -> np.ndarray:
    """Starting responsibilities: k-means or random centres on standardised [X, y], or Dirichlet.

    'kmeans' and 'random_from_data' work on the rows sorted by their values, with weighted
    draws, so that they depend on the weighted empirical distribution only (an integer
    weight equals the repeated row); 'random' draws Dirichlet responsibilities per row.
    """
    n = X.shape[0]
    if init == "random":
        return rng.dirichlet(np.ones(k), size=n)
    Z = np.column_stack([X, y])
    order = np.lexsort(Z.T[::-1])  # canonical row order: equal rows next to each other
    mean, sd = weighted_moments(Z, w)
    Zs = ((Z - mean) / np.where(sd > 0, sd, 1.0))[order]
    ws = w[order]
    if init == "kmeans":
        centres, _ = kmeans_plusplus(Zs, k, sample_weight=ws, random_state=rng)
        km = KMeans(n_clusters=k, init=centres, n_init=1, random_state=rng)
        labels_sorted = km.fit(Zs, sample_weight=ws).labels_
    else:  # 'random_from_data': k data points drawn with probability proportional to weight
        picks = rng.choice(n, size=k, replace=True, p=ws / ws.sum())
        centres = Zs[picks]
        labels_sorted = np.argmin(((Zs[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    labels = np.empty(n, dtype=np.intp)
    labels[order] = labels_sorted
    R = np.zeros((n, k))
    R[np.arange(n), labels] = 1.0
    return R


def em_run(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    gate: Gate,
    *,
    start: dict[str, Any] | None,
    init: str,
    temperature: float,
    seed: int,
    max_iter: int,
    tol: float,
    gate_max_iter: int,
    var_floor: float,
    verbose: int = 0,
) -> dict[str, Any]:
    """One generalised-EM run; returns the parameters, history and convergence flags."""
    if start is None:
        rng = np.random.RandomState(seed)
        R = initial_responsibilities(X, y, w, gate.k, init, rng)
        P = expert_m_step(X, y, R, gate.zero_params(temperature), var_floor, w)
        P = gate.m_step(X, R * w[:, None], P, gate_max_iter)
    else:
        P = dict(start)
    R, ll = e_step(X, y, gate, P, w)
    history = [ll]
    # the gate step need not be solved far below the EM tolerance
    gate_ftol = min(max(1e-3 * tol, 1e-15), 1e-9)
    converged = False
    n_iter = 0
    change = 0.0
    bar = progress_bar(total=max_iter, verbose=verbose, desc="EM", unit="iter")
    try:
        for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is read after the loop
            P = expert_m_step(X, y, R, P, var_floor, w)
            P = gate.m_step(X, R * w[:, None], P, gate_max_iter, ftol=gate_ftol)
            R, ll_new = e_step(X, y, gate, P, w)
            history.append(ll_new)
            bar.update(1)
            bar.set_postfix(loglik=f"{ll_new:.6g}")
            change = ll_new - ll
            ll = ll_new
            if change < tol * max(1.0, abs(history[-2])):
                converged = True
                break
    finally:
        bar.close()
    return {
        "params": P,
        "lower_bound": ll,
        "history": np.asarray(history),
        "converged": converged,
        "n_iter": n_iter,
        "last_change": change,
    }


def rescale_params(
    P: dict[str, Any], shift: np.ndarray, scale: np.ndarray, *, to_scaled: bool
) -> dict[str, Any]:
    """Map parameters between original features x and scaled features (x - shift) / scale.

    Linear gates and experts absorb the shift into their intercepts; the activation gate is
    only scaled (``shift`` is zero then), since f(beta_1^T x) has no bias to absorb it.
    """
    P = dict(P)
    tau = P["temperature"]
    if to_scaled:
        P["gate_intercept"] = P["gate_intercept"] + P["gate_coef"] @ shift / tau
        P["intercept"] = P["intercept"] + P["coef"] @ shift
        P["gate_coef"] = P["gate_coef"] * scale
        P["coef"] = P["coef"] * scale
    else:
        P["gate_coef"] = P["gate_coef"] / scale
        P["coef"] = P["coef"] / scale
        P["gate_intercept"] = P["gate_intercept"] - P["gate_coef"] @ shift / tau
        P["intercept"] = P["intercept"] - P["coef"] @ shift
    return P


def fit_em(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    gate: Gate,
    *,
    starts: list[dict[str, Any] | None],
    seeds: np.ndarray,
    init: str,
    temperature: float,
    max_iter: int,
    tol: float,
    gate_max_iter: int,
    reg_covar: float,
    n_jobs: int | None = None,
    verbose: int = 0,
) -> dict[str, Any]:
    """Best of several EM runs, on features scaled by their (weighted) standard deviation.

    Features are centred too for the linear gates. ``starts`` holds parameters in the
    original units (or None for an initialisation from the data); the result's
    ``params`` are in the original units.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Features (float64, rows of positive weight).
    y : ndarray of shape (n_samples,)
        Targets.
    w : ndarray of shape (n_samples,)
        Positive sample weights.
    gate : Gate
        The gate.
    starts : list of dict or None
        One entry per run.
    seeds : ndarray of int
        One seed per run.
    init : {'kmeans', 'random', 'random_from_data'}
        Initialisation of the runs without a start.
    temperature : float
        Starting temperature.
    max_iter, tol, gate_max_iter : int, float, int
        EM settings (see the estimator).
    reg_covar : float
        Variance floor relative to the weighted variance of ``y``.
    n_jobs : int or None, default=None
        joblib workers over the runs.
    verbose : int, default=0
        Progress bar over EM iterations.

    Returns
    -------
    best : dict
        ``params``, ``lower_bound``, ``history``, ``converged``, ``n_iter``, ``last_change``
        of the run with the highest final weighted mean log-likelihood.
    """
    mean, scale = weighted_moments(X, w)
    scale = np.where(scale > 0, scale, 1.0)
    shift = mean if gate.linear else np.zeros(X.shape[1])
    Xs = (X - shift) / scale
    y_mean = np.average(y, weights=w)
    var_y = float(np.average((y - y_mean) ** 2, weights=w))
    var_floor = max(reg_covar * var_y, np.finfo(np.float64).tiny * 1e10)
    if reg_covar > 0 and var_y == 0:
        var_floor = reg_covar
    scaled = [
        None if s is None else rescale_params(s, shift, scale, to_scaled=True) for s in starts
    ]
    # one BLAS thread: the products here are small (d + 1 columns, k experts, L-BFGS-B on a
    # few dozen parameters), and threaded BLAS slowed fits down several times on a shared
    # 2-core machine (benchmarks/bench_moe.py --threads measures it)
    with threadpool_limits(limits=1, user_api="blas"):
        runs = Parallel(n_jobs=n_jobs)(
            delayed(em_run)(
                Xs,
                y,
                w,
                gate,
                start=start,
                init=init,
                temperature=temperature,
                seed=int(seed),
                max_iter=max_iter,
                tol=tol,
                gate_max_iter=gate_max_iter,
                var_floor=var_floor,
                verbose=verbose,
            )
            for start, seed in zip(scaled, seeds)
        )
    best = max(runs, key=lambda r: r["lower_bound"])
    best["params"] = rescale_params(best["params"], shift, scale, to_scaled=False)
    return best
