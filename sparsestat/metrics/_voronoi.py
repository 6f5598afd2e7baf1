"""Voronoi loss between a fitted and a true Gaussian mixture of experts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["voronoi_loss"]

_PARTS = ("gate", "temperature", "coef", "intercept", "variance")


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _default_exponents(gate: str) -> dict[str, Callable[[int], float]]:
    rbar: Callable[[int], float] = lambda m: 2.0 * m  # noqa: E731 - r(2) = 4, r(3) = 6
    half: Callable[[int], float] = lambda m: m  # noqa: E731 - r(m) / 2
    if gate == "activation_dense_to_sparse":
        two: Callable[[int], float] = lambda m: 2.0  # noqa: E731
        return {"gate": two, "temperature": two, "coef": half, "intercept": rbar, "variance": half}
    return {"gate": rbar, "temperature": rbar, "coef": half, "intercept": rbar, "variance": half}


def _atoms(obj: Any, gate: str) -> dict[str, np.ndarray]:
    B1 = np.asarray(_get(obj, "gate_coef_"), dtype=float)
    k = B1.shape[0]
    tau = float(_get(obj, "temperature_", 1.0) or 1.0)
    b0 = np.asarray(_get(obj, "gate_intercept_"), dtype=float).reshape(k)
    w = np.exp(b0 - b0.max())
    return {
        "weight": w / w.sum(),
        "gate": B1 / tau if gate == "dense_to_sparse" else B1,
        "gate_raw": B1,
        "temperature": np.full(k, tau),
        "coef": np.asarray(_get(obj, "coef_"), dtype=float).reshape(k, -1),
        "intercept": np.asarray(_get(obj, "intercept_"), dtype=float).reshape(k),
        "variance": np.asarray(_get(obj, "variances_"), dtype=float).reshape(k),
    }


def _diffs(A: dict[str, np.ndarray], T: dict[str, np.ndarray], gate: str) -> dict[str, Any]:
    """Per-part distances |theta_i - theta*_j|, shape (k, k*)."""
    out = {}
    for part in (*_PARTS, "gate_raw"):
        a, t = A[part], T[part]
        if a.ndim == 1:
            out[part] = np.abs(a[:, None] - t[None, :])
        else:
            out[part] = np.linalg.norm(a[:, None, :] - t[None, :, :], axis=2)
    if gate != "activation_dense_to_sparse":
        out["temperature_raw"] = out["temperature"]
        out["temperature"] = np.zeros_like(out["temperature"])
    return out


def _loss_once(A, T, gate, exps, l1_assign):
    D = _diffs(A, T, gate)
    k_true = T["weight"].shape[0]
    # Voronoi cells by the sum of absolute differences of the atoms (as in the companion code)
    dist = sum(
        np.abs(A[p][:, None] - T[p][None, :])
        if A[p].ndim == 1
        else np.abs(A[p][:, None, :] - T[p][None, :, :]).sum(axis=2)
        for p in _PARTS
        if not (p == "temperature" and gate != "activation_dense_to_sparse")
    )
    cell = np.argmin(dist, axis=1)
    loss = 0.0
    parts = dict.fromkeys(("weights", *_PARTS), 0.0)
    for j in range(k_true):
        members = np.flatnonzero(cell == j)
        dw = abs(A["weight"][members].sum() - T["weight"][j])
        loss += dw
        parts["weights"] += dw
        m = members.size
        for i in members:
            for p in _PARTS:
                e = 1.0 if m == 1 else exps[p](m)
                term = A["weight"][i] * D[p][i, j] ** e
                loss += term
                parts[p] += A["weight"][i] * D[p][i, j]
    parts["gate_raw"] = float(
        sum(A["weight"][i] * D["gate_raw"][i, cell[i]] for i in range(len(cell)))
    )
    if "temperature_raw" in D:
        parts["temperature_raw"] = float(D["temperature_raw"][0, 0])
    return float(loss), parts


def voronoi_loss(estimated, truth, *, gate=None, exponents=None, return_parts=False):
    """Voronoi loss D(G, G*) between fitted and true mixture-of-experts parameters.

    Atoms ``theta_i = (beta_1i, tau, a_i, b_i, nu_i)`` with weights ``w_i = exp(beta_0i)``
    (normalised to sum to one). Each fitted atom joins the Voronoi cell ``A_j`` of its
    nearest true atom (sum of absolute differences), and::

        D = sum_j |sum_{i in A_j} w_i - w*_j|
            + sum_{j: |A_j| = 1} sum_{i in A_j} w_i (|dbeta_1| + |dtau| + |da| + |db| + |dnu|)
            + sum_{j: |A_j| > 1} sum_{i in A_j} w_i (|dbeta_1|^e_beta + ... + |dnu|^e_nu)

    Parameters
    ----------
    estimated : GaussianMoERegressor or dict
        Fitted model, or a dict with its attribute names (``gate_coef_``, ``gate_intercept_``,
        ``temperature_``, ``coef_``, ``intercept_``, ``variances_``).
    truth : dict or estimator
        True parameters, same keys (e.g. from :func:`sparsestat.datasets.make_moe_regression`).
    gate : {'softmax', 'dense_to_sparse', 'activation_dense_to_sparse'} or None, default=None
        Gate family; None reads ``estimated.gate``, then ``truth['gate']``, else 'softmax'.
        For the linear gates the temperature term is left out; for 'dense_to_sparse' the
        gate atom is the identifiable ``beta_1 / tau``.
    exponents : dict or None, default=None
        Exponents of the over-fitted cells (``|A_j| > 1``), keyed by 'gate', 'temperature',
        'coef', 'intercept', 'variance'; each a number or a callable of the cell size m.
        Defaults: linear gates ``e_beta = e_b = rbar(m)``, ``e_a = e_nu = rbar(m) / 2``
        with ``rbar(m) = 2m`` (rbar(2) = 4, rbar(3) = 6 as in the companion code);
        activation gate ``e_beta = e_tau = 2``, experts as for softmax.
    return_parts : bool, default=False
        Also return a dict of the weighted, un-exponentiated parts ('weights', 'gate',
        'temperature', 'coef', 'intercept', 'variance') and ``'gate_raw'`` (distance of the
        raw beta_1) and, for linear gates, ``'temperature_raw'`` (``|tau - tau*|``, which need
        not converge for 'dense_to_sparse').

    Returns
    -------
    loss : float
        The Voronoi loss.
    parts : dict
        Only when ``return_parts=True``.

    Notes
    -----
    Gauge [inferred]: both models' gate intercepts are normalised so that the weights sum to
    one, and for linear gates the slopes are compared after subtracting a reference row: the
    truth's last row, and for the fit the row (tried in turn) that gives the smallest loss,
    which makes the loss invariant to a permutation of the fitted experts. rbar(m) for
    m >= 4 and the activation-gate exponents are [inferred]. O(k^2 k* d) time.

    References
    ----------
    .. [1] H. Nguyen, P. Akbarian, N. Ho, "Is Temperature Sample Efficient for Softmax Gaussian
       Mixture of Experts?", ICML 2024, arXiv:2401.13875.
    .. [2] H. Nguyen, T. Nguyen, N. Ho, "Demystifying Softmax Gating Function in Gaussian
       Mixture of Experts", NeurIPS 2023, arXiv:2305.03288.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.metrics import voronoi_loss
    >>> truth = {"gate_coef_": np.array([[1.0], [0.0]]), "gate_intercept_": np.zeros(2),
    ...          "coef_": np.array([[1.0], [-1.0]]), "intercept_": np.zeros(2),
    ...          "variances_": np.ones(2)}
    >>> voronoi_loss(truth, truth)
    0.0
    """
    if gate is None:
        gate = _get(estimated, "gate", None) or _get(truth, "gate", None) or "softmax"
    exps = _default_exponents(gate)
    for key, val in (exponents or {}).items():
        if key not in _PARTS:
            raise ValueError(f"exponents keys must be among {_PARTS}, got {key!r}")
        exps[key] = val if callable(val) else (lambda m, v=float(val): v)
    A = _atoms(estimated, gate)
    T = _atoms(truth, gate)
    if gate == "activation_dense_to_sparse":
        best = _loss_once(A, T, gate, exps, True)
    else:
        T["gate"] = T["gate"] - T["gate"][-1]
        T["gate_raw"] = T["gate_raw"] - T["gate_raw"][-1]
        best = None
        for r in range(A["gate"].shape[0]):
            Ar = dict(A)
            Ar["gate"] = A["gate"] - A["gate"][r]
            Ar["gate_raw"] = A["gate_raw"] - A["gate_raw"][r]
            cand = _loss_once(Ar, T, gate, exps, True)
            if best is None or cand[0] < best[0]:
                best = cand
    loss, parts = best
    return (loss, parts) if return_parts else loss
