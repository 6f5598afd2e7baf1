"""Sparse-training methods and dynamic sparse training: static masks, SET, RigL, Sparse-IFT.

A *sparse-training method* is a small object with ``get_params`` / ``set_params`` (so that
``SparseMLPClassifier(method=RigL(drop_fraction=0.5))`` can be tuned as
``method__drop_fraction``) that also drives training: it plans the layers of a sparse MLP,
builds them, and, attached to a model and its optimizer, runs the mask hooks of every step::

    loss.backward() -> on_grad_computed() -> optimizer.step() -> on_batch_end()

Unstructured methods keep exactly ``round(density * numel)`` active weights per layer (the
mask is the source of truth, never ``W != 0``). The N:M methods are in ``_nm.py``.
Re-exported by :mod:`sparsestat.neural.layers` and :mod:`sparsestat.neural`.

References
----------
.. [1] Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
   connectivity inspired by network science", Nature Communications 2018 (SET).
.. [2] Evci et al., "Rigging the Lottery: Making All Tickets Winners", ICML 2020 (RigL).
.. [3] Liu et al., "The Unreasonable Effectiveness of Random Pruning", ICLR 2022 (ERK).
.. [4] Thangarasa et al., "Sparse Iso-FLOP Transformations for Maximizing Training
   Efficiency", 2023 (Sparse-IFT).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

from sklearn.base import BaseEstimator, clone

from sparsestat.neural import import_torch
from sparsestat.neural.layers._masked import MaskedLinear, MaskedWeightMixin
from sparsestat.neural.layers._masks import (
    cosine_drop_fraction,
    erk_densities,
    sparse_ift_widths,
    stable_rank_desc,
    uniform_densities,
)
from sparsestat.utils._deprecation import warn_renamed

torch = import_torch()
nn = torch.nn

__all__ = [
    "SET",
    "Dense",
    "RigL",
    "SparseIFT",
    "SparseTrainingMethod",
    "StaticMask",
]


class SparseTrainingMethod(BaseEstimator):
    """Base of the sparse-training methods (plan, layers and per-step hooks).

    Subclasses are configuration objects: ``__init__`` stores parameters only, so they can
    be cloned and tuned. :meth:`attach` binds a (cloned) method to a model and optimizer;
    the hooks then run at every step. Estimators use the private planning hooks
    ``_resolve_sparsity``, ``_plan``, ``_make_linear`` and ``_optimizer``.

    Examples
    --------
    >>> from sparsestat.neural.layers import Dense
    >>> Dense().pattern
    'dense'
    """

    #: ``"dense"``, ``"unstructured"`` or ``"n:m"``
    pattern = "unstructured"

    # ------------------------------------------------------------- planning (estimators)
    def _resolve_sparsity(self, sparsity: float | None) -> float:
        """The fraction of zero weights to train at (None: the method's default)."""
        return 0.9 if sparsity is None else float(sparsity)

    def _layer_densities(
        self, shapes: Sequence[tuple[int, int]], density: float, dense: Sequence[int]
    ) -> list[float]:
        return [1.0] * len(shapes)

    def _plan(
        self, sizes: Sequence[int], sparsity: float, exclude: set[int]
    ) -> tuple[list[tuple[int, int]], int, list[float]]:
        """Shapes ``(out, in)`` of every linear layer (branch by branch), the number of
        parallel branches and each layer's density, for the layer widths ``sizes``."""
        shapes = [(b, a) for a, b in zip(sizes[:-1], sizes[1:])]
        dense = [i for i in range(len(shapes)) if i in exclude]
        return shapes, 1, self._layer_densities(shapes, 1.0 - sparsity, dense)

    def _make_linear(self, fan_in: int, fan_out: int, density: float, generator: Any) -> Any:
        if density >= 1.0:
            return nn.Linear(fan_in, fan_out)
        return MaskedLinear(fan_in, fan_out, density=density, generator=generator)

    def _optimizer(self, params: Any, lr: float, **kwargs: Any) -> Any:
        """The optimizer this method needs (None: the estimator's own)."""
        return None

    def _optimizer_class(self) -> Any:
        return None

    # ------------------------------------------------------------------- training hooks
    def attach(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        total_steps: int | None = None,
        steps_per_epoch: int | None = None,
        step: int = 0,
        generator: torch.Generator | None = None,
    ) -> SparseTrainingMethod:
        """Bind to a model and its optimizer for training (returns the object to call).

        Parameters
        ----------
        model : torch.nn.Module
            The model being trained (its masked or N:M layers are found in it).
        optimizer : torch.optim.Optimizer
            Its optimizer (the state of regrown weights is reset).
        total_steps : int, optional
            Length of training in optimiser steps: schedules end there, and no mask update
            happens at or after it.
        steps_per_epoch : int, optional
            Steps per epoch (what ``update_interval=None`` means).
        step : int, default=0
            Global step the training starts at (continued training).
        generator : torch.Generator, optional
            Randomness of growth and of grown weights.

        Returns
        -------
        runtime : SparseTrainingMethod
            The object whose hooks to call (this one; a copy of the mask method for
            :class:`SparseIFT`).
        """
        old = getattr(self, "_old", {})
        self.model_, self.optimizer_, self.step = model, optimizer, int(step)
        self.generator = old.get("generator") if generator is None else generator
        return self._attach(model, optimizer, total_steps, steps_per_epoch)

    def _attach(
        self, model: Any, optimizer: Any, total_steps: int | None, steps_per_epoch: int | None
    ) -> SparseTrainingMethod:
        """Method-specific binding (after :meth:`attach` stored the common state)."""
        return self

    def on_batch_begin(self, step: int) -> None:
        """Hook: before the forward pass (N:M schedules follow the global step).

        Parameters
        ----------
        step : int
            Global step about to be taken.
        """

    def on_grad_computed(self) -> None:
        """Hook: after ``backward()``, before ``optimizer.step()``."""

    def on_batch_end(self) -> bool:
        """Hook: after ``optimizer.step()``; advances the step counter.

        Returns
        -------
        updated : bool
            Whether the masks changed at this step.
        """
        self.step += 1
        return False

    def finalize_(self) -> None:
        """Hook: at the end of training (N:M layers become exactly N:M)."""


class Dense(SparseTrainingMethod):
    """Dense training: every weight active (the baseline of the sparse methods).

    Examples
    --------
    >>> from sparsestat.neural import SparseMLPClassifier, Dense
    >>> SparseMLPClassifier(method=Dense()).method
    Dense()
    """

    pattern = "dense"

    def _resolve_sparsity(self, sparsity: float | None) -> float:
        if sparsity not in (None, 0, 0.0):
            raise ValueError(f"method=Dense() trains every weight; got sparsity={sparsity}.")
        return 0.0


class StaticMask(SparseTrainingMethod):
    """Static random masks: the mask hooks of sparse training with fixed masks.

    The initial masks are random with exactly ``round(density * numel)`` active weights per
    layer, layer densities from ``density_init``. Attached to a model (:meth:`attach`), it
    zeroes the gradients of inactive weights before each step and re-applies ``W *= mask``
    after it.

    Parameters
    ----------
    density_init : {"erk", "uniform"}, default="erk"
        Layer densities of the initial masks: Erdős–Rényi-kernel (denser small layers) or
        the same density in every sparse layer.

    Attributes
    ----------
    layers : list of MaskedLinear or MaskedEmbedding
        Masked modules under management (after :meth:`attach`).
    budgets : list of int
        Active connections per layer (fixed).
    step : int
        Optimizer steps taken since :meth:`attach` (plus its ``step``).

    References
    ----------
    Liu et al., "The Unreasonable Effectiveness of Random Pruning", ICLR 2022.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import MaskedLinear, StaticMask
    >>> model = torch.nn.Sequential(MaskedLinear(4, 4, density=0.5))
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> upd = StaticMask().attach(model, opt)
    >>> upd.budgets
    [8]
    """

    def __init__(self, density_init: str = "erk") -> None:
        self.density_init = density_init

    def _layer_densities(
        self, shapes: Sequence[tuple[int, int]], density: float, dense: Sequence[int]
    ) -> list[float]:
        if self.density_init == "erk":
            return erk_densities(shapes, min(1.0, density), dense=dense)
        if self.density_init == "uniform":
            return uniform_densities(shapes, density, dense=dense)
        raise ValueError(f"density_init must be 'erk' or 'uniform'; got {self.density_init!r}.")

    def _attach(
        self, model: Any, optimizer: Any, total_steps: int | None, steps_per_epoch: int | None
    ) -> StaticMask:
        self.layers = [mod for mod in model.modules() if isinstance(mod, MaskedWeightMixin)]
        self.optimizer = optimizer
        self.budgets = [layer.budget for layer in self.layers]
        for layer in self.layers:
            layer.apply_mask_()
        return self

    def on_grad_computed(self) -> None:
        """Mask the gradients of inactive weights (after backward, before the step)."""
        for layer in self.layers:
            if layer.weight.grad is not None:
                layer.weight.grad.mul_(layer.mask)

    def on_batch_end(self) -> bool:
        """Re-apply the masks after the optimizer step; advance the step counter.

        Returns
        -------
        updated : bool
            Whether the masks changed (always False for static masks).
        """
        for layer in self.layers:
            layer.apply_mask_()
        return super().on_batch_end()


#: the former name of :class:`StaticMask` (the base of the dynamic methods)
SparsityUpdater = StaticMask

#: old constructor names of the updaters, kept for one release
_OLD_UPDATER_NAMES = ("end_step", "generator")


class _DynamicSparsity(StaticMask):
    """Drop / grow at a fixed budget every ``update_interval`` steps (SET, RigL, DSL).

    Subclasses define the parameters; the drop-fraction ``schedule``, the growth ``init``
    and the ``end`` of the updates are read through the small properties below.
    """

    schedule = "constant"
    drop_fraction_min = 0.0
    drop = "magnitude"
    growth = "random"
    momentum = 0.9
    scope = "layer"
    init_std = 0.0

    def _deprecated(self, kwargs: dict[str, Any], renames: dict[str, str]) -> None:
        """Accept the old constructor names for one release (with a FutureWarning)."""
        self._old = {}
        for old, value in kwargs.items():
            if old in renames:
                warn_renamed(old, renames[old], type(self).__name__, stacklevel=4)
                setattr(self, renames[old], value)
            elif old in _OLD_UPDATER_NAMES:
                warnings.warn(
                    f"{type(self).__name__}: the parameter {old!r} moved to attach() (pass "
                    "generator= and total_steps= there); the old parameter will be removed in "
                    "sparsestat 0.3.",
                    FutureWarning,
                    stacklevel=4,
                )
                self._old[old] = value
                if old == "end_step":
                    self.end_step = value
            else:
                raise TypeError(f"{type(self).__name__} got an unexpected argument {old!r}")

    def _end_step(self, total_steps: int | None) -> float:
        return math.inf if total_steps is None else total_steps

    def _attach(
        self, model: Any, optimizer: Any, total_steps: int | None, steps_per_epoch: int | None
    ) -> _DynamicSparsity:
        old = getattr(self, "_old", {})
        super()._attach(model, optimizer, total_steps, steps_per_epoch)
        for name, allowed in (
            ("drop", ("magnitude", "signed")),
            ("growth", ("random", "gradient", "momentum")),
            ("schedule", ("constant", "cosine")),
            ("scope", ("layer", "global")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}.")
        if not 0.0 <= self.drop_fraction <= 1.0:
            raise ValueError(f"drop_fraction must be in [0, 1]; got {self.drop_fraction}.")
        interval = self.update_interval
        if interval is None:
            if steps_per_epoch is None:
                raise ValueError(
                    "update_interval=None means one epoch: pass steps_per_epoch to attach, or "
                    "set update_interval to a number of steps."
                )
            interval = steps_per_epoch
        self._interval = int(interval)
        self.end_step = old.get("end_step", self._end_step(total_steps))
        self._scores: list[torch.Tensor | None] = [None] * len(self.layers)
        self.n_updates = 0
        return self

    def drop_fraction_at(self, t: int) -> float:
        """Drop fraction at step ``t`` (0 at or past the end of the updates).

        Parameters
        ----------
        t : int
            Step.

        Returns
        -------
        drop_fraction : float
            Drop fraction used at that step.
        """
        end = getattr(self, "end_step", math.inf)
        if t >= end:
            return 0.0
        if self.schedule == "cosine" and math.isfinite(end):
            return cosine_drop_fraction(t, self.drop_fraction, int(end), self.drop_fraction_min)
        return self.drop_fraction

    def _is_update_step(self, t: int) -> bool:
        return t > 0 and t % self._interval == 0 and t < self.end_step

    def on_grad_computed(self) -> None:
        """Read the growth scores (dense gradients), then mask the gradients."""
        t_next = self.step + 1
        for i, layer in enumerate(self.layers):
            grad = layer.weight.grad
            if grad is None:
                continue
            if self.growth == "momentum":
                prev = self._scores[i]
                g = grad.detach().clone()
                self._scores[i] = (
                    g if prev is None else self.momentum * prev + (1 - self.momentum) * g
                )
            elif self.growth == "gradient" and self._is_update_step(t_next):
                self._scores[i] = grad.detach().abs().clone()
        super().on_grad_computed()

    def on_batch_end(self) -> bool:
        """Re-apply the masks; on update steps drop and grow.

        Returns
        -------
        updated : bool
            Whether the masks were updated at this step.
        """
        super().on_batch_end()
        if not self._is_update_step(self.step):
            return False
        zeta = self.drop_fraction_at(self.step)
        n = len(self.layers)
        groups = [list(range(n))] if self.scope == "global" else [[i] for i in range(n)]
        for idx in groups:
            self._update_group(idx, zeta)
        self.n_updates += 1
        return True

    def _drop_scores(self, w: torch.Tensor, mask: torch.Tensor, zeta: float) -> torch.Tensor:
        """Boolean 'dropped' over the flat weights."""
        dropped = torch.zeros_like(mask)
        if self.drop == "signed":
            for sel, key in ((mask & (w > 0), w), (mask & (w <= 0), -w)):
                k = int(math.floor(zeta * int(sel.sum())))
                if k:
                    score = torch.where(sel, key, torch.full_like(key, math.inf))
                    dropped |= stable_rank_desc(-score) < k
            return dropped
        k = int(math.floor(zeta * int(mask.sum())))
        if k:
            score = torch.where(mask, w.abs(), torch.full_like(w, math.inf))
            dropped = stable_rank_desc(-score) < k
        return dropped

    def _growth_score(self, i: int, layer: nn.Module) -> torch.Tensor:
        score = self._scores[i]
        if self.growth == "random" or score is None:
            return torch.rand(layer.weight.numel(), generator=self.generator).to(layer.mask.device)
        return score.abs().reshape(-1)

    @torch.no_grad()
    def _update_group(self, idx: list[int], zeta: float) -> None:
        """Drop and grow over the concatenated weights of the layers ``idx``."""
        layers = [self.layers[i] for i in idx]
        w = torch.cat([layer.weight.detach().reshape(-1) for layer in layers])
        old = torch.cat([layer.mask.reshape(-1) for layer in layers])
        dropped = self._drop_scores(w, old, zeta)
        k = int(dropped.sum())
        if k == 0:
            return
        kept = old & ~dropped
        score = torch.cat([self._growth_score(i, layer) for i, layer in zip(idx, layers)])
        score = torch.where(kept, torch.full_like(score, -math.inf), score)
        new = kept | ((stable_rank_desc(score) < k) & ~kept)
        fresh = new & ~old  # newly active positions
        offset = 0
        for i, layer in zip(idx, layers):
            size = layer.weight.numel()
            self._apply_update(layer, new[offset : offset + size], fresh[offset : offset + size])
            offset += size
            if self.growth == "gradient":
                self._scores[i] = None

    def _apply_update(self, layer: nn.Module, new: torch.Tensor, fresh: torch.Tensor) -> None:
        w = layer.weight.data.view(-1)
        w.mul_(new)
        if self.init_std > 0 and bool(fresh.any()):
            noise = torch.randn(int(fresh.sum()), generator=self.generator) * self.init_std
            w[fresh] = noise.to(w.dtype).to(w.device)
        else:
            w[fresh] = 0.0
        layer.mask.view(-1).copy_(new)
        state = self.optimizer.state.get(layer.weight, {})
        for buf in state.values():
            if isinstance(buf, torch.Tensor) and buf.shape == layer.weight.shape:
                buf.view(-1)[fresh] = 0.0


class SET(_DynamicSparsity):
    """Sparse Evolutionary Training: drop the weights nearest 0, regrow at random.

    Parameters
    ----------
    drop_fraction : float, default=0.3
        Fraction of each layer's active weights dropped and regrown per update (constant).
    update_interval : int or None, default=None
        Optimiser steps between updates; None means once per epoch (as the paper). No
        update happens at or after the last step of training.
    drop : {"magnitude", "signed"}, default="magnitude"
        ``"signed"`` drops ``drop_fraction`` of the positive and of the negative weights
        closest to 0 (the original SET rule); ``"magnitude"`` the smallest ``|w|``.
    growth : {"random", "gradient", "momentum"}, default="random"
        Growth score of inactive positions: random (SET), the dense gradient or its moving
        average (for comparisons of growth rules).
    init_std : float, default=0.1
        Grown weights start as ``N(0, init_std**2)``; 0 starts them at zero.
    density_init : {"erk", "uniform"}, default="erk"
        Layer densities of the initial masks (estimators).
    **kwargs : dict
        Old names, kept for one release with a ``FutureWarning``: ``zeta`` (now
        ``drop_fraction``), ``end_step`` and ``generator`` (now arguments of
        :meth:`attach`).

    Notes
    -----
    The number of active weights per layer is exactly constant. Grown positions that were
    active before the update keep their value; newly grown ones get fresh values and zeroed
    optimizer state.

    References
    ----------
    Mocanu et al., Nature Communications 9, 2383 (2018).

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import SET, MaskedLinear
    >>> g = torch.Generator().manual_seed(0)
    >>> model = torch.nn.Sequential(MaskedLinear(8, 8, density=0.25, generator=g))
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> upd = SET(drop_fraction=0.5, update_interval=1).attach(model, opt, generator=g)
    >>> model(torch.randn(4, 8)).sum().backward(); upd.on_grad_computed(); opt.step()
    >>> upd.on_batch_end(), int(model[0].mask.sum())
    (True, 16)
    """

    def __init__(
        self,
        drop_fraction: float = 0.3,
        update_interval: int | None = None,
        drop: str = "magnitude",
        growth: str = "random",
        init_std: float = 0.1,
        density_init: str = "erk",
        **kwargs: Any,
    ) -> None:
        self.drop_fraction = drop_fraction
        self.update_interval = update_interval
        self.drop = drop
        self.growth = growth
        self.init_std = init_std
        self.density_init = density_init
        self._deprecated(kwargs, {"zeta": "drop_fraction"})


class RigL(_DynamicSparsity):
    """Rigged Lottery: drop the smallest ``|W|``, grow where the dense gradient is largest.

    Parameters
    ----------
    drop_fraction : float, default=0.3
        Initial drop fraction, cosine-annealed to ``drop_fraction_min`` at the end of the
        updates.
    update_interval : int or None, default=None
        Optimiser steps between updates (Delta T; the paper uses 100); None means once per
        epoch.
    update_end : float, default=0.75
        Fraction of the training steps after which the masks are frozen (T_end).
    growth : {"gradient", "momentum", "random"}, default="gradient"
        Growth score: batch ``|dL/dW|`` at the update step, ``|EMA of dense gradients|``
        (SNFS-style) or random.
    momentum : float, default=0.9
        EMA factor for ``growth="momentum"``.
    schedule : {"cosine", "constant"}, default="cosine"
        Drop-fraction schedule.
    drop_fraction_min : float, default=0.0
        Floor of the cosine schedule (dynamic sparse learning uses 0.005).
    scope : {"layer", "global"}, default="layer"
        ``"layer"`` keeps every layer's budget; ``"global"`` ranks drop and growth across
        all layers at once (only the total budget is kept).
    density_init : {"erk", "uniform"}, default="erk"
        Layer densities of the initial masks (estimators).
    **kwargs : dict
        Old names, kept for one release with a ``FutureWarning``: ``alpha`` (now
        ``drop_fraction``), ``end_step`` and ``generator`` (now arguments of
        :meth:`attach`).

    Notes
    -----
    Grown weights start at 0 with zeroed optimizer state. The forward must use ``W`` (as
    :class:`MaskedLinear` does) so that the gradient at inactive positions is dense; the
    gradient is read before it is masked. Unlike the TensorFlow reference, the ordinary
    optimizer step is also taken on update steps (not specified by the paper's algorithm;
    chosen here because it keeps one step rule for every method).

    References
    ----------
    Evci et al., "Rigging the Lottery: Making All Tickets Winners", ICML 2020.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import RigL
    >>> model = torch.nn.Linear(2, 2)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> upd = RigL(update_interval=100).attach(model, opt, total_steps=400)
    >>> round(upd.drop_fraction_at(150), 4)
    0.15
    """

    def __init__(
        self,
        drop_fraction: float = 0.3,
        update_interval: int | None = None,
        update_end: float = 0.75,
        growth: str = "gradient",
        momentum: float = 0.9,
        schedule: str = "cosine",
        drop_fraction_min: float = 0.0,
        scope: str = "layer",
        density_init: str = "erk",
        **kwargs: Any,
    ) -> None:
        self.drop_fraction = drop_fraction
        self.update_interval = update_interval
        self.update_end = update_end
        self.growth = growth
        self.momentum = momentum
        self.schedule = schedule
        self.drop_fraction_min = drop_fraction_min
        self.scope = scope
        self.density_init = density_init
        self._deprecated(kwargs, {"alpha": "drop_fraction"})

    def _end_step(self, total_steps: int | None) -> float:
        return math.inf if total_steps is None else int(self.update_end * total_steps)


class SparseIFT(SparseTrainingMethod):
    """Sparse Iso-FLOP transformation: a wider (or parallel) sparse network at the dense
    network's weight count.

    Parameters
    ----------
    transformation : {"wide", "parallel"}, default="wide"
        ``"wide"`` multiplies every hidden width by ``1 / sqrt(1 - sparsity)``;
        ``"parallel"`` sums ``round(1 / (1 - sparsity))`` sparse branches.
    mask : StaticMask, SET or RigL, default=None
        How the sparse network is trained (None: ``StaticMask()``, static random masks).

    Notes
    -----
    The number of nonzero weights equals the dense base network's weight count, spread over
    the layers by the mask's ``density_init``. The paper transforms convolutional networks
    and transformers; the MLP adaptation (which widths, rounding to the nearest integer) is
    not specified by the paper; chosen here because it keeps the weight count of the base.

    References
    ----------
    Thangarasa et al., "Sparse Iso-FLOP Transformations for Maximizing Training
    Efficiency", 2023.

    Examples
    --------
    >>> from sparsestat.neural import SparseIFT, RigL
    >>> SparseIFT("parallel", mask=RigL()).get_params()["mask__drop_fraction"]
    0.3
    """

    def __init__(self, transformation: str = "wide", mask: Any = None) -> None:
        self.transformation = transformation
        self.mask = mask

    def _mask(self) -> StaticMask:
        mask = StaticMask() if self.mask is None else self.mask
        if not isinstance(mask, StaticMask):
            raise ValueError(
                f"SparseIFT's mask must be StaticMask(), SET() or RigL(); got {mask!r}."
            )
        return mask

    def _plan(
        self, sizes: Sequence[int], sparsity: float, exclude: set[int]
    ) -> tuple[list[tuple[int, int]], int, list[float]]:
        base = [(b, a) for a, b in zip(sizes[:-1], sizes[1:])]
        base_count = sum(a * b for a, b in base)
        hidden, n_branches = sparse_ift_widths(sizes[1:-1], sparsity, self.transformation)
        wide = [sizes[0], *hidden, sizes[-1]]
        shapes = [(b, a) for a, b in zip(wide[:-1], wide[1:])] * n_branches
        n_layers = len(wide) - 1
        dense = [i for i in range(len(shapes)) if i % n_layers in exclude]
        density = min(1.0, base_count / sum(a * b for a, b in shapes))
        return shapes, n_branches, self._mask()._layer_densities(shapes, density, dense)

    def _attach(
        self, model: Any, optimizer: Any, total_steps: int | None, steps_per_epoch: int | None
    ) -> SparseTrainingMethod:
        return clone(self._mask()).attach(
            model,
            optimizer,
            total_steps=total_steps,
            steps_per_epoch=steps_per_epoch,
            step=self.step,
            generator=self.generator,
        )
