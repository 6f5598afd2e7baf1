"""Gates of the Gaussian mixture of experts: parametrisation, gauge, objective and gradient.

A gate turns features into logits ``s_i(x) = f(beta_1i^T x [+ gamma_i]) / tau + beta_0i``.
It packs its free parameters into one vector for L-BFGS (gauge fixed: ``beta_0k = 0`` always,
``beta_1k = 0`` for linear gates; ``log tau`` when the temperature is fitted) and evaluates
the gate part of the EM objective with its analytic gradient through the kernel
:func:`sparsestat._kernels.moe.gate_q_and_grad`. A new gate subclasses :class:`_Gate`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import minimize

from sparsestat._kernels.moe import activation_functions, gate_logits, gate_q_and_grad

LOG_TAU_BOUNDS = (math.log(1e-3), math.log(1e3))


class _Gate:
    """Linear or activation gate with optional fitted temperature and inner bias."""

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
        else:
            self.f, self.fprime, _ = activation_functions(activation)
        self.fit_temperature = fit_temperature
        self.inner_bias = inner_bias and not self.linear

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
        parts = [P["gate_coef"][: self.n_slope_rows].ravel(), P["gate_intercept"][: self.k - 1]]
        if self.inner_bias:
            parts.append(P["inner_intercept"])
        if self.fit_temperature:
            parts.append(np.array([math.log(P["temperature"])]))
        return np.concatenate(parts)

    def unpack(self, theta: np.ndarray, P: dict[str, Any]) -> dict[str, Any]:
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
        b: list[tuple[float | None, float | None]] = [(None, None)] * self.n_params
        if self.fit_temperature:
            b[-1] = LOG_TAU_BOUNDS
        return b

    def zero_params(self, temperature: float) -> dict[str, Any]:
        return {
            "gate_coef": np.zeros((self.k, self.d)),
            "gate_intercept": np.zeros(self.k),
            "inner_intercept": np.zeros(self.k) if self.inner_bias else None,
            "temperature": float(temperature),
        }

    # -- evaluation -------------------------------------------------------------------
    def logits(self, X: np.ndarray, P: dict[str, Any]) -> np.ndarray:
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
        """Q(theta) and dQ/dtheta in the packed (gauge-fixed) coordinates."""
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
        scale = 1.0 / max(X.shape[0], 1)
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
