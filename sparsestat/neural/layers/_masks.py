"""N:M and unstructured masks, layer densities (ERK, uniform) and sparsity schedules.

Plain tensor functions on ordinary ``torch`` weights; re-exported by
:mod:`sparsestat.neural.layers`.

References
----------
.. [1] Zhou et al., "Learning N:M Fine-grained Structured Sparse Neural Networks From
   Scratch", ICLR 2021 (SR-STE).
.. [2] Bambhaniya et al., "Progressive Gradient Flow for Robust N:M Sparsity Training in
   Transformers", arXiv:2402.04744, 2024 (PGF: MDGF, SDGF).
.. [3] Liu et al., "The Unreasonable Effectiveness of Random Pruning", ICLR 2022 (ERK).
.. [4] Evci et al., "Rigging the Lottery: Making All Tickets Winners", ICML 2020 (RigL).
.. [5] Thangarasa et al., "Sparse Iso-FLOP Transformations for Maximizing Training
   Efficiency", 2023 (Sparse-IFT).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from sparsestat.neural import import_torch

torch = import_torch()
nn = torch.nn

__all__ = [
    "PGFSchedule",
    "cosine_drop_fraction",
    "erk_densities",
    "is_nm_sparse",
    "nm_mask",
    "random_mask",
    "sdgf_patterns",
    "sparse_ift_widths",
    "topk_mask",
    "uniform_densities",
]


# --------------------------------------------------------------------------- masks
def check_nm_pattern(n: int, m: int) -> None:
    if not (isinstance(n, int) and isinstance(m, int) and 1 <= n < m):
        raise ValueError(f"N:M sparsity needs integers 1 <= n < m; got n={n!r}, m={m!r}.")


def stable_rank_desc(score: torch.Tensor) -> torch.Tensor:
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
    check_nm_pattern(n, m)
    if w.ndim == 0 or w.shape[-1] % m != 0:
        raise ValueError(
            f"The last dimension ({w.shape[-1] if w.ndim else 0}) must be a multiple of m={m}."
        )
    groups = w.detach().abs().reshape(*w.shape[:-1], w.shape[-1] // m, m)
    return (stable_rank_desc(groups) < n).reshape(w.shape)


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
    check_nm_pattern(n, m)
    if w.shape[-1] % m != 0:
        return False
    nnz = (w.detach() != 0).reshape(*w.shape[:-1], w.shape[-1] // m, m).sum(-1)
    return bool((nnz <= n).all())


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
    rank = stable_rank_desc(w.detach().abs().reshape(-1))
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
    The MLP adaptation is not specified by the paper; chosen here: the weight budget of the
    sparse network equals the dense base's weight count, spread over layers by the chosen
    density rule.

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


# --------------------------------------------------------------------------- schedules
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
    for targets such as 3:8 (not specified by the paper; chosen so that training ends at
    the requested pattern).

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
    check_nm_pattern(n, m)
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
        Rate c. ``"auto"`` reaches alpha = 0.01 after 10% of the sparse phase (not
        specified by the paper; chosen to match the rate of the authors' ViT recipe).
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
        check_nm_pattern(n, m)
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
