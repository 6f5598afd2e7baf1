"""N:M sparse-training methods: STE, SR-STE, progressive gradient flow (PGF) and CAST.

Each is a small object with ``get_params`` / ``set_params`` (``method=SRSTE(n=2, m=4)``,
tuned as ``method__alpha``). The network keeps dense weights; :class:`NMSparseLinear` layers
recompute the N:M mask at every forward and are pruned to exact N:M by :meth:`finalize_`.
Re-exported by :mod:`sparsestat.neural.layers` and :mod:`sparsestat.neural`.

References
----------
.. [1] Zhou et al., "Learning N:M Fine-grained Structured Sparse Neural Networks From
   Scratch", ICLR 2021 (STE, SR-STE).
.. [2] Bambhaniya et al., "Progressive Gradient Flow for Robust N:M Sparsity Training in
   Transformers", arXiv:2402.04744, 2024 (PGF).
.. [3] Huang et al., "CAST: Continuous and Differentiable Semi-Structured Sparsity-Aware
   Training for Large Language Models", arXiv:2509.25996, 2025.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

from sparsestat.neural import import_torch
from sparsestat.neural.layers._dst import SparseTrainingMethod
from sparsestat.neural.layers._masked import NMSparseLinear
from sparsestat.neural.layers._masks import PGFSchedule, check_nm_pattern
from sparsestat.neural.layers._optim import AdamS

torch = import_torch()
nn = torch.nn

__all__ = ["CAST", "PGF", "SRSTE", "STE"]


class _NMMethod(SparseTrainingMethod):
    """Shared planning and hooks of the N:M methods (``n`` of every ``m`` weights kept)."""

    pattern = "n:m"
    _layer_method = "ste"

    def _resolve_sparsity(self, sparsity: float | None) -> float:
        check_nm_pattern(self.n, self.m)
        target = 1 - self.n / self.m
        if sparsity is not None and not math.isclose(sparsity, target):
            raise ValueError(
                f"With N:M sparsity the sparsity is 1 - n/m = {target}; got "
                f"sparsity={sparsity}. Leave sparsity=None."
            )
        return target

    def _plan(
        self, sizes: Sequence[int], sparsity: float, exclude: set[int]
    ) -> tuple[list[tuple[int, int]], int, list[float]]:
        shapes = [(b, a) for a, b in zip(sizes[:-1], sizes[1:])]
        densities = []
        for i, (_, fan_in) in enumerate(shapes):
            dense = i in exclude
            if not dense and fan_in % self.m:
                if i != 0:
                    raise ValueError(
                        f"Layer {i} has {fan_in} inputs, not a multiple of m={self.m}: choose "
                        "hidden_layer_sizes divisible by m."
                    )
                warnings.warn(
                    f"The first layer has {fan_in} inputs, not a multiple of m={self.m}; it "
                    "is kept dense.",
                    UserWarning,
                    stacklevel=5,
                )
                dense = True
            densities.append(1.0 if dense else self.n / self.m)
        return shapes, 1, densities

    def _layer_kwargs(self) -> dict[str, Any]:
        return {}

    def _make_linear(self, fan_in: int, fan_out: int, density: float, generator: Any) -> Any:
        if density >= 1.0:
            return nn.Linear(fan_in, fan_out)
        return NMSparseLinear(
            fan_in, fan_out, n=self.n, m=self.m, method=self._layer_method, **self._layer_kwargs()
        )

    def _attach(
        self, model: Any, optimizer: Any, total_steps: int | None, steps_per_epoch: int | None
    ) -> SparseTrainingMethod:
        super()._attach(model, optimizer, total_steps, steps_per_epoch)
        self.layers = [mod for mod in model.modules() if isinstance(mod, NMSparseLinear)]
        for layer in self.layers:
            layer.finalized = False
        return self

    def on_batch_begin(self, step: int) -> None:
        """Tell the layers the global step (it drives the PGF schedule).

        Parameters
        ----------
        step : int
            Global step.
        """
        for layer in self.layers:
            layer.set_step(step)

    def finalize_(self) -> None:
        """Prune every N:M layer to exact N:M (the weights become exactly sparse)."""
        for layer in self.layers:
            layer.finalize_()


class STE(_NMMethod):
    """N:M training with the straight-through estimator.

    The mask keeps the ``n`` largest ``|w|`` of every ``m`` consecutive input weights,
    recomputed from the dense weight at every forward; the gradient reaches pruned weights
    unchanged.

    Parameters
    ----------
    n : int, default=2
        Weights kept per group.
    m : int, default=4
        Group length along the input dimension (the first layer stays dense, with a
        warning, when the number of features is not a multiple of ``m``).

    References
    ----------
    Zhou et al., "Learning N:M Fine-grained Structured Sparse Neural Networks From
    Scratch", ICLR 2021.

    Examples
    --------
    >>> from sparsestat.neural import STE
    >>> STE(n=1, m=4)
    STE(n=1)
    """

    def __init__(self, n: int = 2, m: int = 4) -> None:
        self.n = n
        self.m = m


class SRSTE(_NMMethod):
    """N:M training with the sparse-refined straight-through estimator (SR-STE).

    As :class:`STE`, and the gradient of every pruned weight gets ``alpha * w``: a decay
    that pushes pruned weights towards zero and stabilises the masks.

    Parameters
    ----------
    n : int, default=2
        Weights kept per group.
    m : int, default=4
        Group length along the input dimension.
    alpha : float, default=2e-4
        Decay of the pruned weights (the authors' default); 0 is :class:`STE`.

    References
    ----------
    Zhou et al., "Learning N:M Fine-grained Structured Sparse Neural Networks From
    Scratch", ICLR 2021.

    Examples
    --------
    >>> from sparsestat.neural import SRSTE
    >>> SRSTE(alpha=1e-3).get_params()
    {'alpha': 0.001, 'm': 4, 'n': 2}
    """

    _layer_method = "sr-ste"

    def __init__(self, n: int = 2, m: int = 4, alpha: float = 2e-4) -> None:
        self.n = n
        self.m = m
        self.alpha = alpha

    def _layer_kwargs(self) -> dict[str, Any]:
        return {"srste_lambda": float(self.alpha)}


class PGF(_NMMethod):
    """N:M training with progressive gradient flow (MDGF or SDGF).

    MDGF (``structure=None``) multiplies the pruned weights by a factor decaying from 1 to
    0 in the forward pass; SDGF (``structure="stepwise"`` or ``"geometric"``) uses hard masks
    whose pattern tightens frame by frame to ``n:m``.

    Parameters
    ----------
    n : int, default=2
        Weights kept per group.
    m : int, default=4
        Group length along the input dimension.
    decay : {"exp", "linear", "step"}, default="exp"
        MDGF decay of the pruned-weight factor (``"step"`` is plain STE).
    decay_coef : float or "auto", default="auto"
        MDGF rate per step; ``"auto"`` reaches 0.01 after 10 % of the sparse phase (not
        specified by the paper; chosen here because it matches the rate of the authors'
        ViT recipe at its length).
    structure : {"stepwise", "geometric"} or None, default=None
        Structure-decay gradient flow instead of MDGF.
    backward : {"ste", "scaled"}, default="ste"
        Gradient reaching pruned weights under MDGF: unchanged (the authors' code) or
        scaled like the forward (autograd's gradient).
    dense_fraction : float, default=0.0
        Fraction of the steps trained dense first.
    finetune_fraction : float, default=0.0
        Fraction of the last steps trained with the hard target mask.

    References
    ----------
    Bambhaniya et al., "Progressive Gradient Flow for Robust N:M Sparsity Training in
    Transformers", arXiv:2402.04744, 2024.

    Examples
    --------
    >>> from sparsestat.neural import PGF
    >>> PGF(n=1, m=16, structure="stepwise").structure
    'stepwise'
    """

    _layer_method = "pgf"

    def __init__(
        self,
        n: int = 2,
        m: int = 4,
        decay: str = "exp",
        decay_coef: float | str = "auto",
        structure: str | None = None,
        backward: str = "ste",
        dense_fraction: float = 0.0,
        finetune_fraction: float = 0.0,
    ) -> None:
        self.n = n
        self.m = m
        self.decay = decay
        self.decay_coef = decay_coef
        self.structure = structure
        self.backward = backward
        self.dense_fraction = dense_fraction
        self.finetune_fraction = finetune_fraction

    def _layer_kwargs(self) -> dict[str, Any]:
        return {"pgf_backward": self.backward}

    def _attach(
        self, model: Any, optimizer: Any, total_steps: int | None, steps_per_epoch: int | None
    ) -> SparseTrainingMethod:
        if total_steps is None:
            raise ValueError("PGF needs total_steps (the horizon of its schedule).")
        super()._attach(model, optimizer, total_steps, steps_per_epoch)
        for layer in self.layers:
            layer.pgf = PGFSchedule(
                total_steps,
                n=self.n,
                m=self.m,
                decay=self.decay,
                decay_coef=self.decay_coef,
                structure=self.structure,
                dense_fraction=self.dense_fraction,
                finetune_fraction=self.finetune_fraction,
            )
        return self


class CAST(_NMMethod):
    """N:M training with CAST: AdamS (adaptive L1 decay of pruned weights) and a learnable
    per-layer scale.

    The forward uses the dense weight times a learnable scalar; :class:`AdamS` decays the
    weights outside the current N:M mask (recomputed every ``update_interval`` steps) with
    an L1 term that ramps up over ``warmup`` of the training; the weights are pruned to
    exact N:M at the end.

    Parameters
    ----------
    n : int, default=2
        Weights kept per group.
    m : int, default=4
        Group length along the input dimension.
    alpha : float, default=1e-3
        Largest L1 decay of the pruned weights (``decay`` of :class:`AdamS`).
    update_interval : int, default=10
        Optimiser steps between mask recomputations.
    warmup : float, default=0.3
        Fraction of the training steps over which the decay rises linearly from 0.

    Notes
    -----
    The paper's method section was not available: the update (decay folded into Adam's
    moments, per-layer scalar scale, no self-distillation) is not specified by the paper's
    abstract; chosen here because it reduces to Adam at ``alpha=0`` and follows the
    predecessor AST's code.

    References
    ----------
    Huang et al., "CAST: Continuous and Differentiable Semi-Structured Sparsity-Aware
    Training for Large Language Models", arXiv:2509.25996, 2025.

    Examples
    --------
    >>> from sparsestat.neural import CAST
    >>> CAST(alpha=1e-2).alpha
    0.01
    """

    _layer_method = "cast"

    def __init__(
        self,
        n: int = 2,
        m: int = 4,
        alpha: float = 1e-3,
        update_interval: int = 10,
        warmup: float = 0.3,
    ) -> None:
        self.n = n
        self.m = m
        self.alpha = alpha
        self.update_interval = update_interval
        self.warmup = warmup

    def _optimizer_class(self) -> Any:
        return AdamS

    def _optimizer(self, params: Any, lr: float, **kwargs: Any) -> Any:
        return AdamS(
            params,
            lr=lr,
            decay=self.alpha,
            n=self.n,
            m=self.m,
            update_every=self.update_interval,
            **kwargs,
        )

    def _attach(
        self, model: Any, optimizer: Any, total_steps: int | None, steps_per_epoch: int | None
    ) -> SparseTrainingMethod:
        super()._attach(model, optimizer, total_steps, steps_per_epoch)
        if total_steps is not None:
            for group in optimizer.param_groups:
                group["warmup_steps"] = int(self.warmup * total_steps)
        return self
