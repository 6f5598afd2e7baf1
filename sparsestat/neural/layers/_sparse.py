"""Plain PyTorch pieces for sparse training: N:M masks, masked layers, mask updaters.

Everything here works on ordinary ``torch.nn`` models; the estimators of
:mod:`sparsestat.neural` are thin wrappers around these pieces. The public names are
re-exported by :mod:`sparsestat.neural.layers`.

References
----------
.. [1] Zhou et al., "Learning N:M Fine-grained Structured Sparse Neural Networks From
   Scratch", ICLR 2021 (SR-STE).
.. [2] Bambhaniya et al., "Progressive Gradient Flow for Robust N:M Sparsity Training in
   Transformers", arXiv:2402.04744, 2024 (PGF: MDGF, SDGF).
.. [3] Huang et al., "CAST: Continuous and Differentiable Semi-Structured Sparsity-Aware
   Training for Large Language Models", arXiv:2509.25996, 2025 (AdamS).
.. [4] Liu et al., "The Unreasonable Effectiveness of Random Pruning", ICLR 2022 (ERK).
.. [5] Evci et al., "Rigging the Lottery: Making All Tickets Winners", ICML 2020 (RigL);
   Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
   connectivity inspired by network science", Nature Communications 2018 (SET).
.. [6] Thangarasa et al., "Sparse Iso-FLOP Transformations for Maximizing Training
   Efficiency", 2023 (Sparse-IFT).
.. [7] Li et al., "The Lazy Neuron Phenomenon", ICLR 2023 (top-k activations).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from sparsestat.neural import import_torch

torch = import_torch()
nn = torch.nn

__all__ = [
    "SET",
    "AdamS",
    "MaskedEmbedding",
    "MaskedLinear",
    "NMSparseLinear",
    "PGFSchedule",
    "RigL",
    "SparsityUpdater",
    "StaticMask",
    "TopKActivation",
    "apply_nm_mask_",
    "cosine_drop_fraction",
    "erk_densities",
    "export_semi_structured",
    "is_nm_sparse",
    "nm_mask",
    "random_mask",
    "sdgf_patterns",
    "sparse_ift_widths",
    "srste_weight",
    "topk_mask",
    "uniform_densities",
]


# --------------------------------------------------------------------------- masks
def _check_nm(n: int, m: int) -> None:
    if not (isinstance(n, int) and isinstance(m, int) and 1 <= n < m):
        raise ValueError(f"N:M sparsity needs integers 1 <= n < m; got n={n!r}, m={m!r}.")


def _stable_rank_desc(score: torch.Tensor) -> torch.Tensor:
    """Rank (0 = largest) of each entry along the last dim; earlier position wins ties."""
    order = torch.argsort(-score, dim=-1, stable=True)
    rank = torch.empty_like(order)
    ar = torch.arange(score.shape[-1], device=score.device).expand_as(order)
    rank.scatter_(-1, order, ar)
    return rank


def nm_mask(w: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Boolean N:M mask: the ``n`` largest ``|w|`` in every group of ``m`` consecutive weights.

    Groups run along the last dimension (the input dimension of an ``nn.Linear`` weight of
    shape ``(out, in)``).

    Parameters
    ----------
    w : torch.Tensor
        Weight tensor whose last dimension is a multiple of ``m``.
    n : int
        Number of weights kept per group.
    m : int
        Group length, ``n < m``.

    Returns
    -------
    mask : torch.BoolTensor
        Same shape as ``w``, exactly ``n`` True entries per group.

    Notes
    -----
    Ties are broken by position (the earlier weight wins), through a stable sort; a plain
    ``torch.topk`` is not tie-stable. Cost: one sort of length ``m`` per group.

    References
    ----------
    Zhou et al., "Learning N:M Fine-grained Structured Sparse Neural Networks From Scratch",
    ICLR 2021.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import nm_mask
    >>> nm_mask(torch.tensor([[0.1, -3.0, 2.0, 0.5]]), 2, 4)
    tensor([[False,  True,  True, False]])
    """
    _check_nm(n, m)
    if w.ndim == 0 or w.shape[-1] % m != 0:
        raise ValueError(
            f"The last dimension ({w.shape[-1] if w.ndim else 0}) must be a multiple of m={m}."
        )
    groups = w.detach().abs().reshape(*w.shape[:-1], w.shape[-1] // m, m)
    return (_stable_rank_desc(groups) < n).reshape(w.shape)


def is_nm_sparse(w: torch.Tensor, n: int, m: int) -> bool:
    """Whether every group of ``m`` consecutive weights (last dim) has at most ``n`` nonzeros.

    Parameters
    ----------
    w : torch.Tensor
        Weight tensor, last dimension a multiple of ``m``.
    n : int
        Allowed nonzeros per group.
    m : int
        Group length.

    Returns
    -------
    ok : bool
        True when the N:M constraint holds.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import is_nm_sparse
    >>> is_nm_sparse(torch.tensor([[0.0, 1.0, 0.0, 2.0]]), 2, 4)
    True
    """
    _check_nm(n, m)
    if w.shape[-1] % m != 0:
        return False
    nnz = (w.detach() != 0).reshape(*w.shape[:-1], w.shape[-1] // m, m).sum(-1)
    return bool((nnz <= n).all())


def apply_nm_mask_(module_or_tensor: nn.Module | torch.Tensor, n: int, m: int) -> Any:
    """Zero, in place, all but the ``n`` largest ``|w|`` per group of ``m`` (one-shot prune).

    Parameters
    ----------
    module_or_tensor : torch.nn.Module or torch.Tensor
        A tensor, or a module whose ``nn.Linear`` weights (with a last dimension divisible by
        ``m``) are pruned.
    n : int
        Weights kept per group.
    m : int
        Group length.

    Returns
    -------
    module_or_tensor : torch.nn.Module or torch.Tensor
        The same object, pruned.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import apply_nm_mask_
    >>> apply_nm_mask_(torch.tensor([[4.0, 1.0, 3.0, 2.0]]), 2, 4)
    tensor([[4., 0., 3., 0.]])
    """
    with torch.no_grad():
        if isinstance(module_or_tensor, torch.Tensor):
            module_or_tensor.mul_(nm_mask(module_or_tensor, n, m))
            return module_or_tensor
        for mod in module_or_tensor.modules():
            if isinstance(mod, nn.Linear) and mod.weight.shape[-1] % m == 0:
                mod.weight.mul_(nm_mask(mod.weight, n, m))
                if isinstance(mod, MaskedLinear):
                    mod.mask.copy_(mod.weight != 0)
    return module_or_tensor


def topk_mask(w: torch.Tensor, density: float) -> torch.Tensor:
    """Unstructured magnitude mask keeping exactly ``round(density * w.numel())`` entries.

    Parameters
    ----------
    w : torch.Tensor
        Weights.
    density : float
        Fraction kept, in [0, 1].

    Returns
    -------
    mask : torch.BoolTensor
        Exactly ``round(density * w.numel())`` True entries.
        Same shape as ``w``; ties broken by flat position (earlier wins).

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import topk_mask
    >>> topk_mask(torch.tensor([1.0, -5.0, 3.0, 0.5]), 0.5)
    tensor([False,  True,  True, False])
    """
    k = _budget(density, w.numel())
    rank = _stable_rank_desc(w.detach().abs().reshape(-1))
    return (rank < k).reshape(w.shape)


def random_mask(
    shape: Sequence[int], density: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random mask with exactly ``round(density * numel)`` True entries (by permutation).

    Parameters
    ----------
    shape : sequence of int
        Mask shape.
    density : float
        Fraction of True entries, in [0, 1].
    generator : torch.Generator, optional
        Source of randomness; the global RNG is used when None.

    Returns
    -------
    mask : torch.BoolTensor
        Exactly ``round(density * numel)`` True entries.

    Notes
    -----
    Unlike the Bernoulli masks of some reference code, the count is exact.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import random_mask
    >>> int(random_mask((10, 10), 0.25, torch.Generator().manual_seed(0)).sum())
    25
    """
    numel = math.prod(shape)
    k = _budget(density, numel)
    flat = torch.zeros(numel, dtype=torch.bool)
    flat[torch.randperm(numel, generator=generator)[:k]] = True
    return flat.reshape(tuple(shape))


def _budget(density: float, numel: int) -> int:
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must be in [0, 1]; got {density}.")
    return int(round(density * numel))


# --------------------------------------------------------------------------- densities
def erk_densities(
    shapes: Sequence[Sequence[int]],
    density: float,
    power: float = 1.0,
    dense: Iterable[int] = (),
) -> list[float]:
    """Per-layer densities of the Erdős–Rényi-kernel (ERK) allocation.

    Parameters
    ----------
    shapes : sequence of tuple of int
        Weight shapes (``(out, in)`` for linear layers).
    density : float
        Global density D (fraction of all weights kept), in (0, 1].
    power : float, default=1.0
        ``erk_power_scale``: the score ``(sum(shape) / prod(shape)) ** power``.
    dense : iterable of int, default=()
        Indices of layers kept dense (density 1). They count in the budget.

    Returns
    -------
    densities : list of float
        One density per layer; ``sum(d_l n_l) == D * sum(n_l)`` (before rounding).

    Notes
    -----
    Solves ``eps * sum_{l sparse} r_l n_l = D * P - sum_{l dense} n_l``; while the largest
    ``eps * r_l`` exceeds 1 those layers are made dense and eps is solved again (RigL's
    ``sparse_utils.py``). Raises ``ValueError`` when the dense layers alone exceed the budget.

    References
    ----------
    Evci et al., "Rigging the Lottery", ICML 2020; Liu et al., "The Unreasonable
    Effectiveness of Random Pruning", ICLR 2022.

    Examples
    --------
    >>> from sparsestat.neural.layers import erk_densities
    >>> [round(d, 6) for d in erk_densities([(100, 64), (100, 100), (10, 100)], 0.05)]
    [0.047033, 0.036709, 0.201899]
    """
    sizes = [math.prod(s) for s in shapes]
    scores = [(sum(s) / math.prod(s)) ** power for s in shapes]
    dense_set = set(dense)
    total = density * sum(sizes)
    while True:
        sparse_idx = [i for i in range(len(shapes)) if i not in dense_set]
        rhs = total - sum(sizes[i] for i in dense_set)
        if rhs < -1e-9:
            raise ValueError("The dense layers alone exceed the requested density.")
        if not sparse_idx:
            break
        eps = rhs / sum(scores[i] * sizes[i] for i in sparse_idx)
        top = max(scores[i] for i in sparse_idx)
        if eps * top > 1.0:
            dense_set.update(i for i in sparse_idx if scores[i] == top)
            continue
        break
    return [1.0 if i in dense_set else eps * scores[i] for i in range(len(shapes))]


def uniform_densities(
    shapes: Sequence[Sequence[int]], density: float, dense: Iterable[int] = ()
) -> list[float]:
    """Uniform allocation: every sparse layer gets density ``density``; ``dense`` get 1.

    Parameters
    ----------
    shapes : sequence of tuple of int
        Weight shapes.
    density : float
        Density of each sparse layer.
    dense : iterable of int, default=()
        Indices of layers kept dense (RigL's uniform keeps the first layer dense).

    Returns
    -------
    densities : list of float
        Density of each layer.

    Examples
    --------
    >>> from sparsestat.neural.layers import uniform_densities
    >>> uniform_densities([(4, 4), (2, 4)], 0.5, dense=(0,))
    [1.0, 0.5]
    """
    dense_set = set(dense)
    return [1.0 if i in dense_set else float(density) for i in range(len(shapes))]


def sparse_ift_widths(
    hidden_layer_sizes: Sequence[int], sparsity: float, mode: str = "wide"
) -> tuple[tuple[int, ...], int]:
    """Hidden widths and branch count of a Sparse Iso-FLOP transformation.

    Parameters
    ----------
    hidden_layer_sizes : sequence of int
        Widths of the dense base network.
    sparsity : float
        Target sparsity ``s`` in [0, 1).
    mode : {"wide", "parallel"}, default="wide"
        ``"wide"`` multiplies every width by ``1/sqrt(1-s)`` (rounded);
        ``"parallel"`` keeps the widths and uses ``round(1/(1-s))`` parallel branches.

    Returns
    -------
    widths : tuple of int
        Hidden widths of the sparse network (per branch).
    n_branches : int
        Number of parallel branches whose outputs are summed (1 for ``"wide"``).

    Notes
    -----
    The MLP adaptation is ours [inferred]: the weight budget of the sparse network equals the
    dense base's weight count, spread over layers by the chosen density rule.

    References
    ----------
    Thangarasa et al., "Sparse Iso-FLOP Transformations for Maximizing Training Efficiency",
    2023.

    Examples
    --------
    >>> from sparsestat.neural.layers import sparse_ift_widths
    >>> sparse_ift_widths((64,), 0.75)
    ((128,), 1)
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1); got {sparsity}.")
    if mode == "wide":
        f = 1.0 / math.sqrt(1.0 - sparsity)
        return tuple(max(1, int(round(h * f))) for h in hidden_layer_sizes), 1
    if mode == "parallel":
        return tuple(int(h) for h in hidden_layer_sizes), max(1, int(round(1 / (1 - sparsity))))
    raise ValueError(f"mode must be 'wide' or 'parallel'; got {mode!r}.")


# --------------------------------------------------------------------------- STE / SR-STE / PGF
class _MaskedSTE(torch.autograd.Function):
    """Forward ``w * gate``; backward ``g_w = g * scale + lam * (1 - mask) * w``."""

    @staticmethod
    def forward(ctx, w, gate, mask, lam, grad_scale):  # type: ignore[override]
        ctx.save_for_backward(w, mask, grad_scale)
        ctx.lam = lam
        return w * gate

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        w, mask, grad_scale = ctx.saved_tensors
        grad = grad_out * grad_scale
        if ctx.lam:
            grad = grad + ctx.lam * (~mask).to(w.dtype) * w
        return grad, None, None, None, None


def srste_weight(w: torch.Tensor, n: int, m: int, srste_lambda: float = 2e-4) -> torch.Tensor:
    """Sparse forward weight ``W * nm_mask(W)`` with the SR-STE (or STE) backward.

    Parameters
    ----------
    w : torch.Tensor
        Dense weight (requires grad).
    n, m : int
        N:M pattern along the last dimension.
    srste_lambda : float, default=2e-4
        Decay on pruned weights. The gradient reaching ``w`` is
        ``dL/dW~ + srste_lambda * (1 - m) * w``; 0 gives the plain straight-through estimator.

    Returns
    -------
    w_sparse : torch.Tensor
        The masked weight, for use in the forward pass.

    References
    ----------
    Zhou et al., ICLR 2021.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import srste_weight
    >>> w = torch.tensor([[1.0, -2.0, 3.0, 0.5]], requires_grad=True)
    >>> srste_weight(w, 2, 4, 0.0).sum().backward()
    >>> w.grad
    tensor([[1., 1., 1., 1.]])
    """
    mask = nm_mask(w, n, m)
    gate = mask.to(w.dtype)
    return _MaskedSTE.apply(w, gate, mask, float(srste_lambda), torch.ones((), dtype=w.dtype))


def sdgf_patterns(n: int, m: int, structure: str = "stepwise") -> list[tuple[int, int]]:
    """Sequence of N:M patterns of the structure-decay gradient flow (SDGF).

    Parameters
    ----------
    n, m : int
        Target pattern.
    structure : {"stepwise", "geometric"}, default="stepwise"
        ``"stepwise"``: (m-1):m, m/2:m, m/4:m, ... halving while above n, then n:m.
        ``"geometric"``: 8n:8m, 4n:4m, 2n:2m, n:m.

    Returns
    -------
    patterns : list of (int, int)
        One pattern per frame; the last is always exactly ``(n, m)``.

    Notes
    -----
    The final frame is forced to the target, which the reference code's frame count misses
    for targets such as 3:8 [inferred].

    References
    ----------
    Bambhaniya et al., arXiv:2402.04744, 2024.

    Examples
    --------
    >>> from sparsestat.neural.layers import sdgf_patterns
    >>> sdgf_patterns(1, 8)
    [(7, 8), (4, 8), (2, 8), (1, 8)]
    >>> sdgf_patterns(3, 8)
    [(7, 8), (4, 8), (3, 8)]
    """
    _check_nm(n, m)
    if structure == "geometric":
        return [(8 * n, 8 * m), (4 * n, 4 * m), (2 * n, 2 * m), (n, m)]
    if structure != "stepwise":
        raise ValueError(f"structure must be 'stepwise' or 'geometric'; got {structure!r}.")
    out = [(m - 1, m)] if m - 1 > n else []
    k = m // 2
    while k > n:
        if not out or k < out[-1][0]:
            out.append((k, m))
        k //= 2
    out.append((n, m))
    return out


def cosine_drop_fraction(t: int, alpha: float, t_end: int, alpha_min: float = 0.0) -> float:
    """Cosine-annealed drop fraction ``alpha_min + (alpha - alpha_min)(1 + cos(pi t/T))/2``.

    Parameters
    ----------
    t : int
        Current step.
    alpha : float
        Initial drop fraction.
    t_end : int
        Last step of the schedule; 0 is returned for ``t >= t_end``.
    alpha_min : float, default=0.0
        Floor (DSL's ``eta_min``).

    Returns
    -------
    zeta : float
        Drop fraction at step ``t``.

    Examples
    --------
    >>> from sparsestat.neural.layers import cosine_drop_fraction
    >>> round(cosine_drop_fraction(75, 0.3, 300), 4)
    0.2561
    """
    if t >= t_end:
        return 0.0
    return alpha_min + (alpha - alpha_min) * 0.5 * (1.0 + math.cos(math.pi * t / t_end))


class PGFSchedule:
    """Phases and decay of progressive gradient flow (MDGF / SDGF) over ``total_steps``.

    Parameters
    ----------
    total_steps : int
        Number of training steps T.
    n, m : int, default=2, 4
        Target N:M pattern.
    decay : {"exp", "linear", "step"}, default="exp"
        MDGF decay of the pruned-weight factor alpha(t).
    decay_coef : float or "auto", default="auto"
        Rate c. ``"auto"`` reaches alpha = 0.01 after 10% of the sparse phase [inferred].
    structure : {None, "stepwise", "geometric"}, default=None
        SDGF pattern sequence instead of MDGF decay (hard masks).
    dense_fraction : float, default=0.0
        Fraction of steps trained dense first.
    finetune_fraction : float, default=0.0
        Fraction of steps at the end with the hard target mask.

    Notes
    -----
    Steps ``[0, d T)`` are dense (alpha = 1), then a sparse phase of length ``T_s`` and a hard
    fine-tune of ``f T`` steps. ``t`` in :meth:`alpha` is the global step.

    References
    ----------
    Bambhaniya et al., arXiv:2402.04744, 2024.

    Examples
    --------
    >>> from sparsestat.neural.layers import PGFSchedule
    >>> s = PGFSchedule(200, decay="exp", decay_coef=0.01)
    >>> round(s.alpha(50), 6)
    0.606531
    """

    def __init__(
        self,
        total_steps: int,
        n: int = 2,
        m: int = 4,
        decay: str = "exp",
        decay_coef: float | str = "auto",
        structure: str | None = None,
        dense_fraction: float = 0.0,
        finetune_fraction: float = 0.0,
    ) -> None:
        _check_nm(n, m)
        if decay not in ("exp", "linear", "step"):
            raise ValueError(f"decay must be 'exp', 'linear' or 'step'; got {decay!r}.")
        if dense_fraction + finetune_fraction > 1.0:
            raise ValueError("dense_fraction + finetune_fraction must not exceed 1.")
        self.total_steps = int(total_steps)
        self.n, self.m = n, m
        self.decay, self.structure = decay, structure
        self.dense_steps = int(round(dense_fraction * total_steps))
        self.finetune_steps = int(round(finetune_fraction * total_steps))
        self.sparse_steps = max(1, self.total_steps - self.dense_steps - self.finetune_steps)
        if decay_coef == "auto":
            span = 0.1 * self.sparse_steps
            decay_coef = math.log(100.0) / span if decay == "exp" else 0.99 / span
        self.decay_coef = float(decay_coef)
        self.patterns = sdgf_patterns(n, m, structure) if structure is not None else [(n, m)]

    def _sparse_t(self, t: int) -> int:
        return t - self.dense_steps

    def alpha(self, t: int) -> float:
        """Pruned-weight factor at global step ``t`` (1 = dense, 0 = hard mask).

        Parameters
        ----------
        t : int
            Global step.

        Returns
        -------
        alpha : float
            Factor applied to the pruned weights in the forward pass.
        """
        ts = self._sparse_t(t)
        if ts < 0:
            return 1.0
        if self.structure is not None or ts >= self.sparse_steps or self.decay == "step":
            return 0.0
        if self.decay == "exp":
            return math.exp(-self.decay_coef * ts)
        return max(0.0, 1.0 - self.decay_coef * ts)

    def pattern(self, t: int) -> tuple[int, int]:
        """N:M pattern of the hard mask at global step ``t``.

        Parameters
        ----------
        t : int
            Global step.

        Returns
        -------
        pattern : (int, int)
            (n, m) of the current frame.
        """
        ts = self._sparse_t(t)
        if ts >= self.sparse_steps:
            return self.patterns[-1]
        frame = min(len(self.patterns) - 1, max(0, ts) * len(self.patterns) // self.sparse_steps)
        return self.patterns[frame]


# --------------------------------------------------------------------------- layers
class NMSparseLinear(nn.Linear):
    """Linear layer trained with N:M fine-grained sparsity (STE, SR-STE, PGF or CAST).

    The dense weight is kept; at every forward the N:M mask is recomputed from ``|W|``
    (masks are learned implicitly) and the layer computes ``x @ (W * mask).T + b``.

    Parameters
    ----------
    in_features, out_features : int
        Sizes, as for ``nn.Linear``; ``in_features`` must be a multiple of ``m``.
    bias : bool, default=True
        Learn an additive bias (never masked).
    n, m : int, default=2, 4
        Keep at most ``n`` of every ``m`` consecutive input weights.
    method : {"sr-ste", "ste", "pgf", "cast"}, default="sr-ste"
        ``"ste"``/``"sr-ste"``: straight-through gradient, plus the SR-STE decay on pruned
        weights. ``"pgf"``: progressive gradient flow from ``pgf`` (call :meth:`set_step`).
        ``"cast"``: the dense weight is used in the forward, scaled by a learnable scalar
        ``gamma`` (train with :class:`AdamS`); the mask is applied by :meth:`finalize_`.
    srste_lambda : float, default=2e-4
        SR-STE decay (ignored by other methods).
    pgf : PGFSchedule, optional
        Schedule for ``method="pgf"``.
    pgf_backward : {"ste", "scaled"}, default="ste"
        Gradient reaching pruned weights under MDGF: unchanged, or scaled by alpha.
    device, dtype : optional
        Passed to ``nn.Linear``.

    Attributes
    ----------
    finalized : bool
        True after :meth:`finalize_`; the forward then uses the fixed sparse weight.

    Notes
    -----
    The reference SR-STE layer drops the bias in its forward and ignores its decay argument;
    both are done properly here. ``pgf_backward="ste"`` follows the authors' code,
    ``"scaled"`` is autograd's gradient [inferred].

    References
    ----------
    Zhou et al., ICLR 2021; Bambhaniya et al., 2024; Huang et al., 2025.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import NMSparseLinear, is_nm_sparse
    >>> layer = NMSparseLinear(8, 3, n=2, m=4)
    >>> layer(torch.randn(5, 8)).shape
    torch.Size([5, 3])
    >>> is_nm_sparse(layer.finalize_().weight, 2, 4)
    True
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        n: int = 2,
        m: int = 4,
        method: str = "sr-ste",
        srste_lambda: float = 2e-4,
        pgf: PGFSchedule | None = None,
        pgf_backward: str = "ste",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        _check_nm(n, m)
        if in_features % m != 0:
            raise ValueError(f"in_features={in_features} must be a multiple of m={m}.")
        if method not in ("sr-ste", "ste", "pgf", "cast"):
            raise ValueError(f"Unknown N:M method {method!r}.")
        if pgf_backward not in ("ste", "scaled"):
            raise ValueError(f"pgf_backward must be 'ste' or 'scaled'; got {pgf_backward!r}.")
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.n, self.m, self.method = n, m, method
        self.srste_lambda = float(srste_lambda) if method == "sr-ste" else 0.0
        self.pgf = pgf
        self.pgf_backward = pgf_backward
        self.step_ = 0
        self.finalized = False
        if method == "cast":
            self.gamma = nn.Parameter(torch.ones((), device=device, dtype=dtype))

    def set_step(self, t: int) -> None:
        """Set the global training step (drives the PGF schedule).

        Parameters
        ----------
        t : int
            Global step.
        """
        self.step_ = int(t)

    def current_mask(self) -> torch.Tensor:
        """The hard mask used at the current step (target or SDGF frame pattern).

        Returns
        -------
        mask : torch.BoolTensor
            N:M mask of the current weight.
        """
        n, m = self.n, self.m
        if self.method == "pgf" and self.pgf is not None and not self.finalized:
            n, m = self.pgf.pattern(self.step_)
            if self.in_features % m != 0:
                n, m = self.n, self.m
        return nm_mask(self.weight, n, m)

    def sparse_weight(self) -> torch.Tensor:
        """The weight the forward pass uses (differentiable w.r.t. the dense weight).

        Returns
        -------
        weight : torch.Tensor
            ``W * mask`` (or ``gamma * W`` for CAST) for the forward pass.
        """
        w = self.weight
        if self.finalized:
            return w
        if self.method == "cast":
            return self.gamma * w
        mask = self.current_mask()
        one = torch.ones((), dtype=w.dtype, device=w.device)
        if self.method == "pgf" and self.pgf is not None:
            alpha = self.pgf.alpha(self.step_)
            gate = mask.to(w.dtype) + (~mask).to(w.dtype) * alpha
            scale = gate if self.pgf_backward == "scaled" else one
            return _MaskedSTE.apply(w, gate, mask, 0.0, scale)
        return _MaskedSTE.apply(w, mask.to(w.dtype), mask, self.srste_lambda, one)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer with the (masked) sparse weight.

        Parameters
        ----------
        x : torch.Tensor of shape (n, in_features)
            Input batch.

        Returns
        -------
        out : torch.Tensor of shape (n, out_features)
            ``x @ sparse_weight().T + bias``.
        """
        return nn.functional.linear(x, self.sparse_weight(), self.bias)

    @torch.no_grad()
    def finalize_(self) -> NMSparseLinear:
        """Make the weight exactly N:M (``W <- W * nm_mask(W)``, gamma folded in).

        Returns
        -------
        self : NMSparseLinear
            The layer, now exactly N:M.
        """
        if self.method == "cast":
            self.weight.mul_(self.gamma)
            self.gamma.fill_(1.0)
        self.weight.mul_(nm_mask(self.weight, self.n, self.m))
        self.finalized = True
        return self

    def extra_repr(self) -> str:
        """Layer summary for ``repr``.

        Returns
        -------
        text : str
            Sizes, pattern and method.
        """
        return f"{super().extra_repr()}, n={self.n}, m={self.m}, method={self.method!r}"


class _MaskedWeight:
    """Shared behaviour of modules whose ``weight`` carries a boolean ``mask`` buffer."""

    weight: nn.Parameter
    mask: torch.Tensor

    @torch.no_grad()
    def apply_mask_(self) -> None:
        """Zero the inactive weights in place."""
        self.weight.mul_(self.mask)

    @property
    def budget(self) -> int:
        """Number of active weights."""
        return int(self.mask.sum())


class MaskedLinear(_MaskedWeight, nn.Linear):
    """Linear layer with a fixed-budget unstructured mask (buffer ``mask``).

    The forward uses ``W`` itself, not ``W * mask``: inactive entries are kept exactly 0 by
    the :class:`SparsityUpdater`, so ``W.grad`` is the dense gradient that RigL needs.

    Parameters
    ----------
    in_features, out_features : int
        Sizes, as for ``nn.Linear``.
    bias : bool, default=True
        Learn a bias (never masked).
    density : float, default=1.0
        Initial fraction of active weights, exactly ``round(density * numel)``.
    generator : torch.Generator, optional
        Randomness of the initial (random) mask.
    device, dtype : optional
        Passed to ``nn.Linear``.

    Attributes
    ----------
    mask : torch.BoolTensor
        Active connections (also the ``mask`` buffer).
        Active connections (the source of truth, never ``W != 0``).

    References
    ----------
    Liu et al., ICLR 2022; Evci et al., ICML 2020.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import MaskedLinear
    >>> layer = MaskedLinear(10, 5, density=0.2, generator=torch.Generator().manual_seed(0))
    >>> int(layer.mask.sum()), int((layer.weight != 0).sum())
    (10, 10)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        density: float = 1.0,
        generator: torch.Generator | None = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        mask = random_mask((out_features, in_features), density, generator).to(self.weight.device)
        self.register_buffer("mask", mask)
        self.apply_mask_()


class MaskedEmbedding(_MaskedWeight, nn.Embedding):
    """Embedding table with a fixed-budget unstructured mask (buffer ``mask``).

    Used by dynamic sparse learning for recommenders: inactive entries are kept exactly 0,
    so the lookup needs no masking and the gradient at inactive entries of looked-up rows is
    the dense one (gradient growth).

    Parameters
    ----------
    num_embeddings, embedding_dim : int
        Table shape.
    density : float, default=1.0
        Initial fraction of active entries, exactly ``round(density * numel)``.
    init_std : float, default=0.1
        Entries start as ``N(0, init_std**2)``.
    generator : torch.Generator, optional
        Randomness of the initial mask and values.

    Attributes
    ----------
    mask : torch.BoolTensor
        Active entries (also the ``mask`` buffer).
        Active entries.

    References
    ----------
    Wang et al., "Dynamic Sparse Learning: A Novel Paradigm for Efficient Recommendation",
    WSDM 2024.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import MaskedEmbedding
    >>> emb = MaskedEmbedding(6, 4, density=0.5, generator=torch.Generator().manual_seed(0))
    >>> emb.budget, emb(torch.tensor([0, 5])).shape
    (12, torch.Size([2, 4]))
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        density: float = 1.0,
        init_std: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(num_embeddings, embedding_dim)
        with torch.no_grad():
            shape = (num_embeddings, embedding_dim)
            self.weight.copy_(torch.randn(shape, generator=generator) * init_std)
        self.register_buffer("mask", random_mask(shape, density, generator))
        self.apply_mask_()


# --------------------------------------------------------------------------- updaters
class SparsityUpdater:
    """Base of the mask hooks of sparse training (static masks).

    Call :meth:`attach` once with the model and optimizer, then at every step
    ``loss.backward()`` -> :meth:`on_grad_computed` -> ``optimizer.step()`` ->
    :meth:`on_batch_end`. The base keeps the masks fixed: gradients of inactive weights are
    zeroed before the step and ``W *= mask`` is re-applied after it.

    Parameters
    ----------
    generator : torch.Generator, optional
        Randomness for growth and initialisation of grown weights.

    Attributes
    ----------
    layers : list of MaskedLinear or MaskedEmbedding
        Masked modules under management, in ``model.modules()`` order.
    budgets : list of int
        Active connections per layer (fixed).
    step : int
        Optimizer steps taken since :meth:`attach`.

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

    def __init__(self, generator: torch.Generator | None = None) -> None:
        self.generator = generator

    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> SparsityUpdater:
        """Register the model's :class:`MaskedLinear` layers and the optimizer.

        Parameters
        ----------
        model : torch.nn.Module
            Model holding ``MaskedLinear`` layers.
        optimizer : torch.optim.Optimizer
            Its optimizer (state of grown weights is reset).

        Returns
        -------
        self : SparsityUpdater
            The attached updater.
        """
        self.layers = [mod for mod in model.modules() if isinstance(mod, _MaskedWeight)]
        self.optimizer = optimizer
        self.budgets = [layer.budget for layer in self.layers]
        self.step = 0
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
        self.step += 1
        return False


StaticMask = SparsityUpdater


class _DynamicSparsity(SparsityUpdater):
    """Drop / grow at a fixed budget every ``update_interval`` steps (SET, RigL, DSL)."""

    def __init__(
        self,
        drop_fraction: float = 0.3,
        update_interval: int = 100,
        end_step: int | None = None,
        schedule: str = "constant",
        drop_fraction_min: float = 0.0,
        drop: str = "magnitude",
        growth: str = "random",
        init: str = "zero",
        init_std: float = 0.1,
        momentum: float = 0.9,
        scope: str = "layer",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(generator)
        if scope not in ("layer", "global"):
            raise ValueError(f"scope must be 'layer' or 'global'; got {scope!r}.")
        self.scope = scope
        if drop not in ("magnitude", "signed"):
            raise ValueError(f"drop must be 'magnitude' or 'signed'; got {drop!r}.")
        if growth not in ("random", "gradient", "momentum"):
            raise ValueError(f"growth must be 'random', 'gradient' or 'momentum'; got {growth!r}.")
        if schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine'; got {schedule!r}.")
        self.drop_fraction = drop_fraction
        self.update_interval = int(update_interval)
        self.end_step = end_step
        self.schedule = schedule
        self.drop_fraction_min = drop_fraction_min
        self.drop = drop
        self.growth = growth
        self.init = init
        self.init_std = init_std
        self.momentum = momentum

    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> _DynamicSparsity:
        super().attach(model, optimizer)
        self._scores: list[torch.Tensor | None] = [None] * len(self.layers)
        self.n_updates = 0
        return self

    def drop_fraction_at(self, t: int) -> float:
        """Drop fraction zeta_t at step ``t`` (0 past ``end_step``).

        Parameters
        ----------
        t : int
            Step.

        Returns
        -------
        zeta : float
            Drop fraction used at that step.
        """
        end = self.end_step if self.end_step is not None else math.inf
        if t >= end:
            return 0.0
        if self.schedule == "cosine":
            return cosine_drop_fraction(t, self.drop_fraction, int(end), self.drop_fraction_min)
        return self.drop_fraction

    def _is_update_step(self, t: int) -> bool:
        end = self.end_step if self.end_step is not None else math.inf
        return t > 0 and t % self.update_interval == 0 and t < end

    def on_grad_computed(self) -> None:
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
        super().on_batch_end()
        if not self._is_update_step(self.step):
            return False
        zeta = self.drop_fraction_at(self.step)
        groups = (
            [list(range(len(self.layers)))]
            if self.scope == "global"
            else [[i] for i in range(len(self.layers))]
        )
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
                    dropped |= _stable_rank_desc(-score) < k
            return dropped
        k = int(math.floor(zeta * int(mask.sum())))
        if k:
            score = torch.where(mask, w.abs(), torch.full_like(w, math.inf))
            dropped = _stable_rank_desc(-score) < k
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
        new = kept | ((_stable_rank_desc(score) < k) & ~kept)
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
        if self.init == "normal" and bool(fresh.any()):
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
    zeta : float, default=0.3
        Fraction of each layer's budget dropped and regrown per update (constant).
    update_interval : int, default=100
        Steps between updates (the estimators use one epoch).
    end_step : int, optional
        No update at or after this step (the estimators pass the total number of steps, so
        that none happens after the last epoch).
    drop : {"magnitude", "signed"}, default="magnitude"
        ``"signed"`` drops ``zeta`` of the positive and ``zeta`` of the negative weights
        closest to 0 (the original SET rule).
    init_std : float, default=0.1
        Grown weights start as ``N(0, init_std**2)``; 0 starts them at zero.
    generator : torch.Generator, optional
        Randomness of growth.

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
    >>> upd = SET(zeta=0.5, update_interval=1, generator=g).attach(model, opt)
    >>> model(torch.randn(4, 8)).sum().backward(); upd.on_grad_computed(); opt.step()
    >>> upd.on_batch_end(), int(model[0].mask.sum())
    (True, 16)
    """

    def __init__(
        self,
        zeta: float = 0.3,
        update_interval: int = 100,
        end_step: int | None = None,
        drop: str = "magnitude",
        init_std: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(
            drop_fraction=zeta,
            update_interval=update_interval,
            end_step=end_step,
            drop=drop,
            growth="random",
            init="normal" if init_std > 0 else "zero",
            init_std=init_std,
            generator=generator,
        )


class RigL(_DynamicSparsity):
    """Rigged Lottery: drop the smallest ``|W|``, grow where the dense gradient is largest.

    Parameters
    ----------
    alpha : float, default=0.3
        Initial drop fraction, cosine-annealed to 0 at ``end_step``.
    update_interval : int, default=100
        Steps between updates (Delta T).
    end_step : int, optional
        T_end (RigL: 0.75 of the total steps); no update at or after it.
    growth : {"gradient", "momentum", "random"}, default="gradient"
        Growth score: batch ``|dL/dW|`` at the update step, ``|EMA of dense gradients|``
        (SNFS-style) or random.
    momentum : float, default=0.9
        EMA factor for ``growth="momentum"``.
    schedule : {"cosine", "constant"}, default="cosine"
        Drop-fraction schedule.
    drop_fraction_min : float, default=0.0
        Floor of the cosine schedule (DSL uses 0.005).
    scope : {"layer", "global"}, default="layer"
        ``"layer"`` keeps every layer's budget; ``"global"`` ranks drop and growth across
        all layers at once (only the total budget is kept).
    generator : torch.Generator, optional
        Randomness (random growth only).

    Notes
    -----
    Grown weights start at 0 with zeroed optimizer state. The forward must use ``W`` (as
    :class:`MaskedLinear` does) so that the gradient at inactive positions is dense; the
    gradient is read before it is masked. Unlike the TensorFlow reference, the ordinary
    optimizer step is also taken on update steps (simpler; documented deviation).

    References
    ----------
    Evci et al., "Rigging the Lottery: Making All Tickets Winners", ICML 2020.

    Examples
    --------
    >>> from sparsestat.neural.layers import RigL
    >>> round(RigL(alpha=0.3, end_step=300).drop_fraction_at(150), 4)
    0.15
    """

    def __init__(
        self,
        alpha: float = 0.3,
        update_interval: int = 100,
        end_step: int | None = None,
        growth: str = "gradient",
        momentum: float = 0.9,
        schedule: str = "cosine",
        drop_fraction_min: float = 0.0,
        scope: str = "layer",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(
            drop_fraction=alpha,
            scope=scope,
            update_interval=update_interval,
            end_step=end_step,
            schedule=schedule,
            drop_fraction_min=drop_fraction_min,
            drop="magnitude",
            growth=growth,
            init="zero",
            momentum=momentum,
            generator=generator,
        )


# --------------------------------------------------------------------------- AdamS
class AdamS(torch.optim.Optimizer):
    """Adam with an adaptive L1 decay on the currently pruned N:M weights (CAST).

    Every ``update_every`` steps the N:M mask ``m`` of each matrix parameter (last dimension
    divisible by ``m``) is recomputed from ``|W|``. Each step, with
    ``d = lambda_t * sign(W) * (1 - mask)``:

    * ``variant="folded"`` (default): ``g' = g + d`` enters both Adam moments, so
      ``lambda = 0`` is exactly :class:`torch.optim.Adam`;
    * ``variant="ast"``: ``mom`` averages ``g``, ``a = mom + d`` and ``v`` averages ``a**2``;
      the update is ``(a / bc1) / (sqrt(v / bc2) + eps)`` (AST's ``adamw.py`` reading).

    A pruned weight whose sign would flip is set to 0 instead. Other parameters (biases,
    scalars) follow plain Adam.

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float, default=1e-3
        Learning rate.
    betas : (float, float), default=(0.9, 0.999)
        Moment factors.
    eps : float, default=1e-8
        Denominator term.
    decay : float, default=1e-3
        Maximum L1 decay ``lambda_max`` (``cast_lambda``).
    n, m : int, default=2, 4
        Target N:M pattern.
    update_every : int, default=10
        Steps between mask recomputations (T1).
    warmup_steps : int, default=0
        ``lambda_t`` ramps linearly from 0 to ``decay`` over these many steps.
    variant : {"folded", "ast"}, default="folded"
        Where the decay enters the moments (see above).

    Notes
    -----
    The CAST method section was not available; the update is [inferred] from the abstract
    (adaptive L1 decay) and AST's code. The spec's open point 1: with ``variant="ast"`` and
    ``decay=0`` the second moment averages ``mom**2`` rather than ``g**2``, so it is not Adam;
    the default ``"folded"`` variant reduces to Adam. Cost per step: that of Adam plus a sort
    of length ``m`` per group every ``update_every`` steps.

    References
    ----------
    Huang et al., "CAST: Continuous and Differentiable Semi-Structured Sparsity-Aware
    Training for Large Language Models", arXiv:2509.25996, 2025.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import AdamS
    >>> w = torch.nn.Parameter(torch.randn(2, 4))
    >>> opt = AdamS([w], lr=0.01, decay=0.1)
    >>> (w ** 2).sum().backward(); opt.step()
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        decay: float = 1e-3,
        n: int = 2,
        m: int = 4,
        update_every: int = 10,
        warmup_steps: int = 0,
        variant: str = "folded",
    ) -> None:
        _check_nm(n, m)
        if variant not in ("folded", "ast"):
            raise ValueError(f"variant must be 'folded' or 'ast'; got {variant!r}.")
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "decay": decay,
            "n": n,
            "m": m,
            "update_every": update_every,
            "warmup_steps": warmup_steps,
            "variant": variant,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """Take one AdamS step.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss.

        Returns
        -------
        loss : torch.Tensor or None
            The closure's loss, if a closure was given.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                t = state["step"]
                sparse = p.ndim >= 2 and p.shape[-1] % group["m"] == 0
                d = None
                if sparse:
                    if t % group["update_every"] == 0 or "mask" not in state:
                        state["mask"] = nm_mask(p, group["n"], group["m"])
                    warm = group["warmup_steps"]
                    lam = group["decay"] * (min(1.0, (t + 1) / warm) if warm > 0 else 1.0)
                    d = lam * torch.sign(p) * (~state["mask"]).to(p.dtype)
                state["step"] = t = t + 1
                mom, v = state["exp_avg"], state["exp_avg_sq"]
                if d is not None and group["variant"] == "folded":
                    g = g + d
                mom.mul_(beta1).add_(g, alpha=1 - beta1)
                if d is not None and group["variant"] == "ast":
                    a = second = mom + d
                else:
                    a, second = mom, g
                v.mul_(beta2).addcmul_(second, second, value=1 - beta2)
                bc1 = 1 - beta1**t
                bc2 = 1 - beta2**t
                denom = (v / bc2).sqrt_().add_(group["eps"])
                old_sign = torch.sign(p) if sparse else None
                p.addcdiv_(a / bc1, denom, value=-group["lr"])
                if old_sign is not None:
                    flipped = (~state["mask"]) & (torch.sign(p) * old_sign < 0)
                    p.masked_fill_(flipped, 0.0)
        return loss


# --------------------------------------------------------------------------- activations
class TopKActivation(nn.Module):
    """ReLU followed by keeping only the ``k`` largest activations of every row.

    Parameters
    ----------
    k : int or float
        Number kept per row; a float in (0, 1) is a fraction of the width (at least 1).

    Notes
    -----
    With ``k`` at least the width this is exactly ReLU. Ties keep the earlier unit.

    References
    ----------
    Li et al., "The Lazy Neuron Phenomenon: On Emergence of Activation Sparsity in
    Transformers", ICLR 2023.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import TopKActivation
    >>> TopKActivation(2)(torch.tensor([[3.0, -1.0, 2.0, 5.0]]))
    tensor([[3., 0., 0., 5.]])
    """

    def __init__(self, k: int | float) -> None:
        super().__init__()
        if isinstance(k, float) and not 0.0 < k <= 1.0:
            raise ValueError(f"A fractional k must be in (0, 1]; got {k}.")
        if isinstance(k, int) and k < 1:
            raise ValueError(f"k must be >= 1; got {k}.")
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Keep the ``k`` largest ReLU activations of every row.

        Parameters
        ----------
        x : torch.Tensor of shape (..., width)
            Pre-activations.

        Returns
        -------
        out : torch.Tensor
            Same shape; at most ``k`` nonzeros per row.
        """
        width = x.shape[-1]
        k = self.k if isinstance(self.k, int) else max(1, int(round(self.k * width)))
        x = torch.relu(x)
        if k >= width:
            return x
        keep = _stable_rank_desc(x.detach()) < k
        return x * keep

    def extra_repr(self) -> str:
        """Layer summary for ``repr``.

        Returns
        -------
        text : str
            The value of ``k``.
        """
        return f"k={self.k}"


# --------------------------------------------------------------------------- export
def export_semi_structured(module: nn.Module) -> nn.Module:
    """Return a copy of ``module`` whose 2:4-sparse linear weights use semi-structured storage.

    Every ``nn.Linear`` (including :class:`NMSparseLinear` / :class:`MaskedLinear`) whose
    weight is 2:4 sparse is replaced by an ``nn.Linear`` holding
    ``torch.sparse.to_sparse_semi_structured(weight)``, which uses the sparse tensor cores.

    Parameters
    ----------
    module : torch.nn.Module
        A CUDA module in float16 or bfloat16, already 2:4 sparse (call ``finalize_`` first).

    Returns
    -------
    exported : torch.nn.Module
        A new module; the input is not changed.

    Raises
    ------
    RuntimeError
        Without CUDA, or when no weight is 2:4 sparse on a CUDA half-precision device.

    Notes
    -----
    Semi-structured sparse kernels exist only on CUDA GPUs (compute capability >= 8.0) and
    need minimum shapes (multiples of 64 rows and 64 columns for fp16); layers not meeting
    them are left dense. Checked in ``gpu/test_gpu_sparse_training.py``.

    References
    ----------
    Mishra et al., "Accelerating Sparse Deep Neural Networks", arXiv:2104.08378, 2021.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import export_semi_structured
    >>> if not torch.cuda.is_available():
    ...     try:
    ...         export_semi_structured(torch.nn.Linear(64, 64))
    ...     except RuntimeError as exc:
    ...         print("CUDA" in str(exc))
    ... else:
    ...     print(True)
    True
    """
    import copy

    if not torch.cuda.is_available():
        raise RuntimeError("export_semi_structured needs a CUDA device (2:4 sparse kernels).")
    from torch.sparse import to_sparse_semi_structured

    out = copy.deepcopy(module)
    replaced = 0
    for name, mod in list(out.named_modules()):
        if not isinstance(mod, nn.Linear) or not mod.weight.is_cuda:
            continue
        w = mod.weight.detach()
        if isinstance(mod, NMSparseLinear) and not mod.finalized:
            w = w * nm_mask(w, mod.n, mod.m)
        if w.dtype not in (torch.float16, torch.bfloat16) or not is_nm_sparse(w, 2, 4):
            continue
        if w.shape[0] % 64 or w.shape[1] % 64:
            continue
        lin = nn.Linear(mod.in_features, mod.out_features, bias=mod.bias is not None)
        lin = lin.to(device=w.device, dtype=w.dtype)
        lin.weight = nn.Parameter(to_sparse_semi_structured(w.contiguous()), requires_grad=False)
        if mod.bias is not None:
            lin.bias = nn.Parameter(mod.bias.detach().clone(), requires_grad=False)
        if name == "":
            return lin
        parent = out
        *path, last = name.split(".")
        for part in path:
            parent = getattr(parent, part)
        setattr(parent, last, lin)
        replaced += 1
    if replaced == 0:
        raise RuntimeError(
            "No 2:4-sparse float16/bfloat16 CUDA linear layer with 64-multiple shapes found."
        )
    return out
