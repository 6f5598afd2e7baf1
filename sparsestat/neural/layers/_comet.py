"""Sparse mixture-of-experts gates (COMET trees, Top-k, DSelect-k, softmax), permutation
local search and a batched MLP-expert mixture (public via ``layers``).

Ibrahim, Chen, Hazimeh, Ponomareva, Zhao, Mazumder, "COMET: Learning Cardinality Constrained
Mixture of Experts with Trees and Local Search", KDD 2023; Hazimeh et al., "DSelect-k", NeurIPS
2021; Shazeer et al., "Outrageously large neural networks", ICLR 2017.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from sparsestat.neural.layers._mlp import get_activation

__all__ = [
    "COMETGate",
    "DSelectKGate",
    "HashGate",
    "MixtureOfExperts",
    "PermutationLocalSearch",
    "SoftmaxGate",
    "TopKGate",
    "log_sinkhorn",
    "smooth_step",
]


def smooth_step(t: torch.Tensor, gamma: float) -> torch.Tensor:
    """Cubic smooth-step: 0 for ``t <= -gamma/2``, 1 for ``t >= gamma/2``, C^1 in between.

    Parameters
    ----------
    t : torch.Tensor
        Input.
    gamma : float
        Width of the transition, > 0.

    Returns
    -------
    s : torch.Tensor
        ``-2 t^3 / gamma^3 + 3 t / (2 gamma) + 1/2`` clipped to [0, 1] outside the window.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import smooth_step
    >>> smooth_step(torch.tensor([-1.0, 0.0, 1.0]), 1.0)
    tensor([0.0000, 0.5000, 1.0000])
    """
    inner = -2.0 * t**3 / gamma**3 + 1.5 * t / gamma + 0.5
    return torch.where(t <= -gamma / 2, 0.0, torch.where(t >= gamma / 2, 1.0, inner))


def _route(t: torch.Tensor, gamma: float, hard: bool) -> torch.Tensor:
    """Smooth-step routing, or its hard rounding ``1[t >= 0]`` (the more likely branch)."""
    if hard:
        return (t >= 0).to(t.dtype)
    return smooth_step(t, gamma)


def _entropy(p: torch.Tensor, dim: int) -> torch.Tensor:
    # p log p with a finite gradient at p = 0 (xlogy's would be -inf there)
    return -(p * torch.log(p.clamp_min(torch.finfo(p.dtype).tiny))).sum(dim)


def _sample_mean(per_sample: torch.Tensor, sample_weight: torch.Tensor | None) -> torch.Tensor:
    """Mean over the batch, weighted by ``sample_weight`` (normalised to mean 1) if given."""
    if sample_weight is None:
        return per_sample.mean()
    return (per_sample * sample_weight.to(per_sample.dtype)).mean()


def log_sinkhorn(log_alpha: torch.Tensor, n_iters: int) -> torch.Tensor:
    """Log-domain Sinkhorn normalisation: a doubly stochastic matrix ``exp(result)``.

    Parameters
    ----------
    log_alpha : torch.Tensor of shape (n, n)
        Log-scores (already divided by the temperature).
    n_iters : int
        Row/column normalisation rounds.

    Returns
    -------
    log_p : torch.Tensor of shape (n, n)
        Log of the (approximately) doubly stochastic matrix.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import log_sinkhorn
    >>> p = log_sinkhorn(torch.randn(4, 4), 50).exp()
    >>> bool(torch.allclose(p.sum(0), torch.ones(4), atol=1e-4))
    True
    """
    for _ in range(int(n_iters)):
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=1, keepdim=True)
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=0, keepdim=True)
    return log_alpha


class PermutationLocalSearch(nn.Module):
    """Learned leaf-to-expert permutation: Sinkhorn relaxation, then a frozen hard permutation.

    Parameters
    ----------
    n : int
        Number of experts.

    Attributes
    ----------
    log_weights : torch.nn.Parameter of shape (n, n)
        Scores ``L`` (initialised U(-0.05, 0.05)).
    hard : torch.Tensor of shape (n, n)
        The hardened 0/1 permutation (buffer; used once ``frozen``).
    frozen : bool
        Whether the permutation has been hardened.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import PermutationLocalSearch
    >>> perm = PermutationLocalSearch(3)
    >>> perm.harden_()
    >>> perm.matrix().sum(0)
    tensor([1., 1., 1.])
    """

    def __init__(self, n: int) -> None:
        super().__init__()
        self.log_weights = nn.Parameter(torch.empty(n, n).uniform_(-0.05, 0.05))
        self.register_buffer("hard", torch.eye(n))
        self.register_buffer("_frozen", torch.zeros((), dtype=torch.bool))
        self.tau = 1e-3
        self.n_iters = 20

    @property
    def frozen(self) -> bool:
        return bool(self._frozen)

    def matrix(self) -> torch.Tensor:
        """The current permutation matrix.

        Returns
        -------
        P : torch.Tensor of shape (n, n)
            Doubly stochastic (soft phase, training mode) or 0/1 (frozen, or eval mode:
            the Hungarian rounding of the soft matrix); rows: leaves, columns: experts.
        """
        if self.frozen:
            return self.hard
        soft = log_sinkhorn(self.log_weights / self.tau, self.n_iters).exp()
        if not self.training:  # inference always uses a hard permutation
            return self._round(soft)
        return soft

    def _round(self, p: torch.Tensor) -> torch.Tensor:
        """The permutation maximising ``sum_i p[i, pi(i)]`` (Hungarian), as a 0/1 matrix."""
        rows, cols = linear_sum_assignment(-p.detach().double().cpu().numpy())
        hard = torch.zeros_like(p)
        hard[torch.as_tensor(rows), torch.as_tensor(cols)] = 1.0
        return hard

    def penalty(self) -> torch.Tensor:
        """Row entropy of the soft matrix.

        Returns
        -------
        penalty : torch.Tensor
            Scalar, 0 once frozen.
        """
        if self.frozen:
            return self.log_weights.new_zeros(())
        return _entropy(self.matrix(), 1).sum()

    @torch.no_grad()
    def harden_(self) -> None:
        """Round to the permutation maximising ``sum_i P[i, pi(i)]`` (Hungarian) and freeze."""
        soft = log_sinkhorn(self.log_weights / self.tau, self.n_iters).exp()
        self.hard.copy_(self._round(soft).to(self.hard.dtype))
        self._frozen.fill_(True)
        self.log_weights.requires_grad_(False)


class _Gate(nn.Module):
    """Gates return (weights over experts (B, n), penalty scalar)."""

    def __init__(self) -> None:
        super().__init__()
        self.permutation: PermutationLocalSearch | None = None
        # hard routing in eval mode (smooth-step gates only): every routing output rounded
        self.hard_eval = False

    @property
    def _hard(self) -> bool:
        return self.hard_eval and not self.training

    def _leaf_to_expert(self, w: torch.Tensor) -> torch.Tensor:
        """Map per-leaf weights (B, n, ...) to experts via the permutation (if any)."""
        if self.permutation is None:
            return w
        return torch.einsum("bj...,je->be...", w, self.permutation.matrix())


class COMETGate(_Gate):
    """COMET gate: ``k`` soft binary trees with smooth-step routing, one leaf per expert.

    Parameters
    ----------
    n_in : int
        Input features.
    n_experts : int
        Experts ``n`` (any n >= 2; heap-ordered trees with ``n - 1`` internal nodes).
    k : int
        Trees; at most ``k`` experts are selected once all routing is binary.
    gamma : float, default=1.0
        Smooth-step width.

    Attributes
    ----------
    hard_eval : bool
        When True (default False), eval mode routes hard: every smooth-step output is
        rounded to ``1[w x + b >= 0]`` (each node follows its more likely branch), so each
        tree reaches exactly one leaf and at most ``k`` experts get a nonzero weight, by
        construction. Identical to the soft gate wherever its routing is already binary.
        Training mode always routes softly.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import COMETGate
    >>> g, pen = COMETGate(4, 5, 2)(torch.randn(3, 4))
    >>> g.shape, bool(torch.allclose(g.sum(1), torch.ones(3)))
    (torch.Size([3, 5]), True)
    """

    def __init__(self, n_in: int, n_experts: int, k: int, gamma: float = 1.0) -> None:
        super().__init__()
        self.n, self.k, self.gamma = int(n_experts), int(k), float(gamma)
        self.nodes = nn.Linear(n_in, (self.n - 1) * self.k)
        self.leaves = nn.Linear(n_in, self.n * self.k)
        nn.init.uniform_(self.nodes.weight, -gamma / 100, gamma / 100)
        nn.init.uniform_(self.nodes.bias, -gamma / 100, gamma / 100)
        nn.init.uniform_(self.leaves.weight, -0.05, 0.05)
        nn.init.uniform_(self.leaves.bias, -0.05, 0.05)
        # path matrices: for leaf j and internal node o, +1 (go left), -1 (go right), 0
        path = np.zeros((self.n, max(self.n - 1, 1)))
        for j in range(self.n):
            node = self.n - 1 + j
            while node > 0:
                parent = (node - 1) // 2
                path[j, parent] = 1.0 if node == 2 * parent + 1 else -1.0
                node = parent
        self.register_buffer("left", torch.as_tensor(path == 1, dtype=torch.float32))
        self.register_buffer("right", torch.as_tensor(path == -1, dtype=torch.float32))

    def leaf_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Probability of reaching each leaf.

        Parameters
        ----------
        x : torch.Tensor of shape (B, n_in)
            Input batch.

        Returns
        -------
        P : torch.Tensor of shape (B, n, k)
            Leaf-reach probabilities of each tree; they sum to 1 over the leaves.
        """
        B = x.shape[0]
        if self.n == 1:
            return x.new_ones(B, 1, self.k)
        s = _route(self.nodes(x).view(B, self.n - 1, self.k), self.gamma, self._hard)
        # product over the path: exp(sum log) would give NaN gradients at exact 0 / 1, so
        # multiply the factors directly (the depth is small)
        left = self.left.to(x.dtype)
        right = self.right.to(x.dtype)
        factors = (
            left[None, :, :, None] * s[:, None]
            + right[None, :, :, None] * (1 - s[:, None])
            + (1 - left - right)[None, :, :, None]
        )  # (B, n, n-1, k)
        return factors.prod(dim=2)

    def forward(
        self, x: torch.Tensor, sample_weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gate weights (B, n) and the entropy penalty (batch mean over samples).

        Parameters
        ----------
        x : torch.Tensor of shape (B, n_in)
            Input batch.
        sample_weight : torch.Tensor of shape (B,) or None, default=None
            Weights of the rows in the penalty's mean (None: plain mean).

        Returns
        -------
        g : torch.Tensor of shape (B, n_experts)
            Gate weights (non-negative, rows sum to 1).
        penalty : torch.Tensor
            Scalar penalty added to the loss (times the estimator's weight).
        """
        B = x.shape[0]
        P = self.leaf_probabilities(x)
        a = self.leaves(x).view(B, self.n, self.k)
        tiny = torch.finfo(P.dtype).tiny
        logit = torch.where(P > 0, a + torch.log(P.clamp_min(tiny)), float("-inf"))
        w = torch.softmax(logit.reshape(B, -1), dim=1).view(B, self.n, self.k)
        g = self._leaf_to_expert(w).sum(-1)
        g = g / g.sum(1, keepdim=True)
        penalty = _sample_mean(_entropy(P, 1).sum(-1), sample_weight)
        return g, penalty


class TopKGate(_Gate):
    """Top-k softmax gate: the ``k`` largest logits of ``Wx + b``, softmax over them.

    Parameters
    ----------
    n_in : int
        Input features.
    n_experts : int
        Experts.
    k : int
        Experts selected per sample (exactly ``k`` nonzero weights).

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import TopKGate
    >>> g, _ = TopKGate(4, 6, 2)(torch.randn(3, 4))
    >>> (g > 0).sum(1)
    tensor([2, 2, 2])
    """

    def __init__(self, n_in: int, n_experts: int, k: int) -> None:
        super().__init__()
        self.k = int(k)
        self.linear = nn.Linear(n_in, n_experts)

    def forward(
        self, x: torch.Tensor, sample_weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gate weights (B, n) and a zero penalty.

        Parameters
        ----------
        x : torch.Tensor of shape (B, n_in)
            Input batch.
        sample_weight : torch.Tensor of shape (B,) or None, default=None
            Weights of the rows in the penalty's mean (None: plain mean).

        Returns
        -------
        g : torch.Tensor of shape (B, n_experts)
            Gate weights (non-negative, rows sum to 1).
        penalty : torch.Tensor
            Scalar penalty added to the loss (times the estimator's weight).
        """
        logits = self._leaf_to_expert(self.linear(x))
        top = torch.topk(logits, self.k, dim=1)
        masked = torch.full_like(logits, float("-inf")).scatter(1, top.indices, top.values)
        return torch.softmax(masked, dim=1), logits.new_zeros(())


class DSelectKGate(_Gate):
    """DSelect-k gate: ``k`` smooth-step binary selectors mixed by a softmax.

    Parameters
    ----------
    n_in : int
        Input features.
    n_experts : int
        Experts (codes beyond ``n_experts`` of the ``2^m`` binary codes are dropped and the
        weights renormalised).
    k : int
        Selectors.
    gamma : float, default=1.0
        Smooth-step width.

    Attributes
    ----------
    hard_eval : bool
        When True (default False), eval mode makes every selector keep only its most
        likely expert (for ``n = 2^m``: every bit rounded to its more likely side), weighted
        by the selector's probability mass on valid codes, so at most ``k`` experts get a
        nonzero weight.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import DSelectKGate
    >>> g, _ = DSelectKGate(4, 8, 2)(torch.randn(3, 4))
    >>> bool(torch.allclose(g.sum(1), torch.ones(3)))
    True
    """

    def __init__(self, n_in: int, n_experts: int, k: int, gamma: float = 1.0) -> None:
        super().__init__()
        self.n, self.k, self.gamma = int(n_experts), int(k), float(gamma)
        self.m = max(1, math.ceil(math.log2(self.n)))
        self.bits = nn.Linear(n_in, self.k * self.m)
        self.mix = nn.Linear(n_in, self.k)
        nn.init.uniform_(self.bits.weight, -gamma / 100, gamma / 100)
        nn.init.uniform_(self.bits.bias, -gamma / 100, gamma / 100)
        codes = (np.arange(self.n)[:, None] >> np.arange(self.m)[None, :]) & 1
        self.register_buffer("codes", torch.as_tensor(codes, dtype=torch.float32))

    def selector_distributions(self, x: torch.Tensor) -> torch.Tensor:
        """Selector distributions ``r_i(e)`` over the experts.

        Parameters
        ----------
        x : torch.Tensor of shape (B, n_in)
            Input batch.

        Returns
        -------
        r : torch.Tensor of shape (B, k, n)
            Each sums to 1 over the experts when ``n = 2^m``; one-hot under hard routing.
        """
        z = smooth_step(self.bits(x).view(x.shape[0], self.k, 1, self.m), self.gamma)
        codes = self.codes.to(x.dtype)
        r = (codes * z + (1 - codes) * (1 - z)).prod(-1)
        if self._hard:
            # each selector keeps only its most likely expert (for n = 2^m: every bit rounded
            # to its more likely side), with the selector's mass on valid codes, as in the
            # soft gate, whose codes beyond n are dropped before renormalising
            one = torch.zeros_like(r).scatter_(-1, r.argmax(-1, keepdim=True), 1.0)
            return one * r.sum(-1, keepdim=True)
        return r

    def forward(
        self, x: torch.Tensor, sample_weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gate weights (B, n) and the selectors' entropy penalty.

        Parameters
        ----------
        x : torch.Tensor of shape (B, n_in)
            Input batch.
        sample_weight : torch.Tensor of shape (B,) or None, default=None
            Weights of the rows in the penalty's mean (None: plain mean).

        Returns
        -------
        g : torch.Tensor of shape (B, n_experts)
            Gate weights (non-negative, rows sum to 1).
        penalty : torch.Tensor
            Scalar penalty added to the loss (times the estimator's weight).
        """
        r = self.selector_distributions(x)
        alpha = torch.softmax(self.mix(x), dim=1)
        g = self._leaf_to_expert((alpha[:, :, None] * r).sum(1))
        g = g / g.sum(1, keepdim=True).clamp_min(torch.finfo(g.dtype).tiny)
        return g, _sample_mean(_entropy(r, -1).sum(-1), sample_weight)


class HashGate(_Gate):
    """Hash routing: a fixed, non-learned map from each sample to ``k`` experts.

    With ``hash_feature`` set, column ``hash_feature`` of ``x`` is read as a categorical id
    (rounded to an integer) and tree ``i`` sends it to expert
    ``((a_i id + b_i) mod p) mod n`` (a seeded universal hash, ``p = 2^31 - 1``). Otherwise
    tree ``i`` draws ``m = ceil(log2 n)`` seeded random hyperplanes through ``center``; the
    sign bits of ``x - center`` form a code, and the expert is the code modulo ``n``. The
    gate weight is ``1/k`` per tree, summed when two trees pick the same expert.

    Parameters
    ----------
    n_in : int
        Input features.
    n_experts : int
        Experts ``n``.
    k : int, default=1
        Hash functions (experts per sample, at most).
    hash_feature : int or None, default=None
        Column holding a categorical id; None hashes ``x`` by random hyperplanes.
    seed : int, default=0
        Seed of the hash functions.

    Attributes
    ----------
    center : torch.Tensor of shape (n_in,)
        Point the hyperplanes go through (buffer; the estimator sets the training mean).

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import HashGate
    >>> g, _ = HashGate(4, 6, k=2, seed=0)(torch.randn(5, 4))
    >>> bool(((g > 0).sum(1) <= 2).all()), bool(torch.allclose(g.sum(1), torch.ones(5)))
    (True, True)
    """

    _PRIME = 2**31 - 1

    def __init__(
        self,
        n_in: int,
        n_experts: int,
        k: int = 1,
        hash_feature: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.n, self.k = int(n_experts), int(k)
        self.hash_feature = None if hash_feature is None else int(hash_feature)
        if self.hash_feature is not None and not 0 <= self.hash_feature < n_in:
            raise ValueError(f"hash_feature={hash_feature} is not a column index < {n_in}")
        rng = np.random.default_rng(seed)
        self.m = max(1, math.ceil(math.log2(self.n)))
        planes = rng.standard_normal((n_in, self.k * self.m))
        self.register_buffer("planes", torch.as_tensor(planes, dtype=torch.float32))
        self.register_buffer("center", torch.zeros(n_in))
        ab = np.stack([rng.integers(1, self._PRIME, self.k), rng.integers(0, self._PRIME, self.k)])
        self.register_buffer("ab", torch.as_tensor(ab, dtype=torch.int64))
        self.register_buffer("powers", torch.as_tensor(2 ** np.arange(self.m), dtype=torch.int64))

    def experts_of(self, x: torch.Tensor) -> torch.Tensor:
        """Expert picked by every hash function.

        Parameters
        ----------
        x : torch.Tensor of shape (B, n_in)
            Input batch.

        Returns
        -------
        index : torch.Tensor of int64, shape (B, k)
            Expert of each sample for each hash function.
        """
        if self.hash_feature is not None:
            ids = torch.round(x[:, self.hash_feature].double()).to(torch.int64) % self._PRIME
            h = (self.ab[0][None, :] * ids[:, None] + self.ab[1][None, :]) % self._PRIME
            return h % self.n
        z = (x - self.center.to(x.dtype)) @ self.planes.to(x.dtype)
        bits = (z >= 0).to(torch.int64).view(x.shape[0], self.k, self.m)
        return (bits * self.powers).sum(-1) % self.n

    def forward(
        self, x: torch.Tensor, sample_weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gate weights (B, n) and a zero penalty.

        Parameters
        ----------
        x : torch.Tensor of shape (B, n_in)
            Input batch.
        sample_weight : torch.Tensor of shape (B,) or None, default=None
            Weights of the rows in the penalty's mean (None: plain mean).

        Returns
        -------
        g : torch.Tensor of shape (B, n_experts)
            Gate weights (``1/k`` per hash function; rows sum to 1).
        penalty : torch.Tensor
            Zero (nothing is learned).
        """
        idx = self.experts_of(x)
        w = x.new_zeros(x.shape[0], self.n).scatter_add_(
            1, idx, x.new_full(idx.shape, 1.0 / self.k)
        )
        return self._leaf_to_expert(w), w.new_zeros(())


class SoftmaxGate(_Gate):
    """Dense softmax gate (every expert gets a positive weight): the reference.

    Parameters
    ----------
    n_in : int
        Input features.
    n_experts : int
        Experts.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import SoftmaxGate
    >>> SoftmaxGate(4, 3)(torch.randn(2, 4))[0].shape
    torch.Size([2, 3])
    """

    def __init__(self, n_in: int, n_experts: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_experts)

    def forward(
        self, x: torch.Tensor, sample_weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gate weights (B, n) and a zero penalty.

        Parameters
        ----------
        x : torch.Tensor of shape (B, n_in)
            Input batch.
        sample_weight : torch.Tensor of shape (B,) or None, default=None
            Weights of the rows in the penalty's mean (None: plain mean).

        Returns
        -------
        g : torch.Tensor of shape (B, n_experts)
            Gate weights (non-negative, rows sum to 1).
        penalty : torch.Tensor
            Scalar penalty added to the loss (times the estimator's weight).
        """
        logits = self._leaf_to_expert(self.linear(x))
        return torch.softmax(logits, dim=1), logits.new_zeros(())


class MixtureOfExperts(nn.Module):
    """``sum_e g_e(x) f_e(x)`` with MLP experts evaluated in one batched product.

    Parameters
    ----------
    gate : torch.nn.Module
        A gate returning ``(weights (B, n), penalty)``.
    n_in : int
        Input features.
    n_experts : int
        Experts.
    expert_hidden : sequence of int
        Hidden widths of every expert.
    n_out : int
        Outputs.
    activation : str, default='relu'
        Expert activation.
    dropout : float, default=0.0
        Dropout after each expert hidden layer.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import MixtureOfExperts, TopKGate
    >>> moe = MixtureOfExperts(TopKGate(4, 3, 1), 4, 3, (8,), 2)
    >>> out, gates, pen = moe(torch.randn(5, 4))
    >>> out.shape, gates.shape
    (torch.Size([5, 2]), torch.Size([5, 3]))
    """

    def __init__(
        self,
        gate: nn.Module,
        n_in: int,
        n_experts: int,
        expert_hidden: Sequence[int],
        n_out: int,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.gate = gate
        sizes = [int(n_in), *[int(h) for h in expert_hidden], int(n_out)]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:]):
            bound = 1 / math.sqrt(a)
            self.weights.append(nn.Parameter(torch.empty(n_experts, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n_experts, b).uniform_(-bound, bound)))
        self.act = get_activation(activation)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def experts(self, x: torch.Tensor, index: int | None = None) -> torch.Tensor:
        """Expert outputs.

        Parameters
        ----------
        x : torch.Tensor of shape (B, n_in)
            Input batch.
        index : int or None, default=None
            Evaluate only this expert.

        Returns
        -------
        out : torch.Tensor
            All expert outputs (B, n, n_out), or expert ``index`` only (B, n_out).
        """
        if index is None:
            h = x[:, None, :]
            for i, (w, b) in enumerate(zip(self.weights, self.biases)):
                h = torch.einsum("zna,nac->znc", h.expand(-1, w.shape[0], -1), w) + b
                if i < len(self.weights) - 1:
                    h = self.drop(self.act(h))
            return h
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w[index] + b[index]
            if i < len(self.weights) - 1:
                h = self.drop(self.act(h))
        return h

    def forward(
        self, x: torch.Tensor, sample_weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Dense mixture (every expert evaluated).

        Parameters
        ----------
        x : torch.Tensor of shape (B, n_in)
            Input batch.
        sample_weight : torch.Tensor of shape (B,) or None, default=None
            Row weights of the gate's penalty (a weighted mean; None: plain mean).

        Returns
        -------
        out : torch.Tensor of shape (B, n_out)
            ``sum_e g_e f_e(x)``.
        g : torch.Tensor of shape (B, n)
            Gate weights.
        penalty : torch.Tensor
            The gate's penalty.
        """
        g, penalty = self.gate(x, sample_weight)
        out = torch.einsum("bn,bno->bo", g, self.experts(x))
        return out, g, penalty

    def forward_sparse(self, x: torch.Tensor, tol: float = 1e-5) -> tuple[torch.Tensor, Any]:
        """Conditional computation: evaluate expert ``e`` only on rows with ``g_e > tol``.

        Parameters
        ----------
        x : torch.Tensor of shape (B, n_in)
            Input batch.
        tol : float, default=1e-5
            Gate weights at or below ``tol`` skip the expert.

        Returns
        -------
        out : torch.Tensor of shape (B, n_out)
            The mixture output.
        n_evaluated : torch.Tensor of shape (B,)
            Number of experts evaluated per row.
        """
        g, _ = self.gate(x)
        active = g > tol
        out = None
        for e in range(g.shape[1]):
            rows = torch.nonzero(active[:, e]).flatten()
            if rows.numel() == 0:
                continue
            y = self.experts(x[rows], e) * g[rows, e : e + 1]
            if out is None:
                out = x.new_zeros(x.shape[0], y.shape[1])
            out.index_add_(0, rows, y)
        if out is None:
            out = x.new_zeros(x.shape[0], self.biases[-1].shape[1])
        return out, active.sum(1)
