"""Simulated data from a Gaussian mixture of linear experts, with the true parameters."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from sparsestat._kernels.moe import activation_functions, gate_logits, moe_sample

__all__ = ["make_moe_regression"]

_GATES = ("softmax", "dense_to_sparse", "activation_dense_to_sparse")

#: The companion paper's protocol (Nguyen, Nguyen, Ho 2023, authors' code): d = 1, k* = 2,
#: X = linspace(0, 1, n).
COMPANION_TRUTH: dict[str, Any] = {
    "gate_coef_": np.array([[25.0], [0.0]]),
    "gate_intercept_": np.array([-8.0, 0.0]),
    "temperature_": 1.0,
    "coef_": np.array([[-20.0], [20.0]]),
    "intercept_": np.array([15.0, -5.0]),
    "variances_": np.array([0.3, 0.4]),
}


def _random_truth(
    n_features: int, n_experts: int, gate: str, temperature: float, x_scale: float, rng: Any
) -> dict[str, Any]:
    k, d = n_experts, n_features
    # gate slopes with |beta_1^T x| of order 1-2 over the design (the curved, unsaturated regime)
    B1 = rng.standard_normal((k, d))
    B1 *= 1.5 / (
        x_scale * np.sqrt(d) * np.maximum(np.linalg.norm(B1, axis=1, keepdims=True), 1e-12)
    )
    if gate != "activation_dense_to_sparse":
        B1[-1] = 0.0
    b0 = 0.5 * rng.standard_normal(k)
    b0[-1] = 0.0
    # well-separated experts: intercepts spread over [-3k/2, 3k/2]
    return {
        "gate_coef_": B1,
        "gate_intercept_": b0,
        "temperature_": 1.0 if gate == "softmax" else float(temperature),
        "coef_": rng.standard_normal((k, d)) * 2.0 / x_scale,
        "intercept_": 3.0 * (np.arange(k) - (k - 1) / 2.0) + 0.3 * rng.standard_normal(k),
        "variances_": rng.uniform(0.05, 0.2, size=k),
    }


def make_moe_regression(
    n_samples=1000,
    *,
    truth=None,
    n_features=1,
    n_experts=2,
    gate="softmax",
    activation="tanh",
    temperature=1.0,
    design="uniform",
    x_range=(-1.0, 1.0),
    return_labels=False,
    random_state=None,
):
    """Draw regression data from a Gaussian mixture of linear experts.

    ``y | x ~ sum_i pi_i(x) N(a_i^T x + b_i, nu_i)`` with gate logits
    ``s_i(x) = f(beta_1i^T x) / tau + beta_0i`` (f = identity for the linear gates,
    tau = 1 for 'softmax'), the model of :class:`sparsestat.mixture.GaussianMoERegressor`.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of samples.
    truth : dict, 'companion' or None, default=None
        True parameters, keyed by the estimator's attribute names (``gate_coef_``,
        ``gate_intercept_``, ``temperature_``, ``coef_``, ``intercept_``, ``variances_``,
        optionally ``gate_inner_intercept_``); ``'companion'`` uses the companion paper's
        truth (d = 1, k = 2, gate (beta_0, beta_1) = (-8, 25), (0, 0); experts (b, a) =
        (15, -20), (-5, 20); variances (0.3, 0.4)) with ``design='linspace'`` on [0, 1];
        None draws a random truth in the unsaturated regime (``|beta_1^T x| <~ 1.5``,
        separated expert intercepts).
    n_features : int, default=1
        Number of features d (ignored when ``truth`` is given).
    n_experts : int, default=2
        Number of experts k (ignored when ``truth`` is given).
    gate : {'softmax', 'dense_to_sparse', 'activation_dense_to_sparse'}, default='softmax'
        Gating function.
    activation : {'tanh', 'sigmoid', 'gelu'} or tuple (f, fprime), default='tanh'
        Activation of the activation gate.
    temperature : float, default=1.0
        Temperature of a random truth (ignored for 'softmax' and when ``truth`` is given).
    design : {'uniform', 'linspace'}, default='uniform'
        Features drawn uniformly on ``x_range`` or, for d = 1, an evenly spaced fixed design.
    x_range : tuple of float, default=(-1.0, 1.0)
        Range of the features.
    return_labels : bool, default=False
        Also return the expert that generated each sample.
    random_state : int, RandomState instance or None, default=None
        Source of randomness.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Features.
    y : ndarray of shape (n_samples,)
        Targets.
    params : dict
        The true parameters (attribute names as above) plus ``'gate'`` and ``'activation'``.
    labels : ndarray of shape (n_samples,)
        Generating experts; only when ``return_labels=True``.

    Notes
    -----
    The companion truth is read from the authors' code of [2]; whether its
    ``(0.3, 0.4)`` are variances or standard deviations is [inferred] (variances here). The
    temperature paper's own simulation settings were not available: the random truth is
    not specified by the paper; it is chosen here away from saturation of the activation, so
    that the activation gate's parameters stay identifiable.
    O(n k d) time.

    References
    ----------
    .. [1] H. Nguyen, P. Akbarian, N. Ho, "Is Temperature Sample Efficient for Softmax Gaussian
       Mixture of Experts?", ICML 2024, arXiv:2401.13875.
    .. [2] H. Nguyen, T. Nguyen, N. Ho, "Demystifying Softmax Gating Function in Gaussian
       Mixture of Experts", NeurIPS 2023, arXiv:2305.03288.

    Examples
    --------
    >>> from sparsestat.datasets import make_moe_regression
    >>> X, y, params = make_moe_regression(500, n_features=2, n_experts=3, random_state=0)
    >>> X.shape, y.shape, params["coef_"].shape
    ((500, 2), (500,), (3, 2))
    """
    if gate not in _GATES:
        raise ValueError(f"gate must be one of {_GATES}, got {gate!r}")
    if design not in ("uniform", "linspace"):
        raise ValueError(f"design must be 'uniform' or 'linspace', got {design!r}")
    rng = check_random_state(random_state)
    lo, hi = map(float, x_range)
    if isinstance(truth, str):
        if truth != "companion":
            raise ValueError(f"truth must be a dict, 'companion' or None, got {truth!r}")
        truth, design, lo, hi = COMPANION_TRUTH, "linspace", 0.0, 1.0
    if truth is None:
        truth = _random_truth(
            n_features, n_experts, gate, temperature, max(abs(lo), abs(hi), 1e-12), rng
        )
    params = {
        k: (np.array(v, dtype=float) if k != "temperature_" else float(v))
        for k, v in truth.items()
        if v is not None
    }
    params.setdefault("temperature_", 1.0)
    k, d = params["coef_"].shape
    if design == "linspace":
        if d != 1:
            raise ValueError("design='linspace' needs n_features=1")
        X = np.linspace(lo, hi, n_samples)[:, None]
    else:
        X = rng.uniform(lo, hi, size=(n_samples, d))
    f = None
    if gate == "activation_dense_to_sparse":
        f = activation_functions(activation)[0]
    S = gate_logits(
        X,
        params["gate_coef_"],
        params["gate_intercept_"],
        params["temperature_"],
        f,
        params.get("gate_inner_intercept_"),
    )
    mean = X @ params["coef_"].T + params["intercept_"]
    y, labels = moe_sample(S, mean, params["variances_"], rng)
    params["gate"], params["activation"] = gate, activation
    return (X, y, params, labels) if return_labels else (X, y, params)
