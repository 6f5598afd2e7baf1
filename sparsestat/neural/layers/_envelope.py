"""Group envelope regulariser (WGSEF) for torch parameters and MLP pruning (via ``layers``).

Refael, Arbel, Huleihel, "Learning k-Level Structured Sparse Neural Networks Using Group
Envelope Regularization", arXiv:2212.12921.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from sparsestat._kernels.envelope import wgsef_conjugate, wgsef_prox_factors, wgsef_value
from sparsestat.neural.layers._mlp import MLP
from sparsestat.utils._deprecation import DEPRECATED, renamed

__all__ = ["GroupEnvelopeRegularizer", "PrunedMLP", "prune_mlp"]


def _blocks(params: Any) -> list[list[torch.Tensor]]:
    """Normalise to a list of blocks; a block is a list of tensors sharing dim 0 (groups)."""
    if isinstance(params, torch.Tensor):
        return [[params]]
    params = list(params)
    if params and isinstance(params[0], torch.Tensor):
        return [params]
    return [list(b) for b in params]


class GroupEnvelopeRegularizer(BaseEstimator):
    """Weighted group sparse envelope ``alpha * Phi_w`` over row groups of torch tensors.

    A *block* is a list of tensors that share their first dimension; group ``g`` of the block
    is row ``g`` of every tensor (e.g. ``[W, b]``: neuron ``g`` is row ``g`` of ``W`` and
    ``b[g]``; ``[W.T]``: input feature ``g``). Several blocks (``[[W1, b1], [W2, b2]]``)
    concatenate their groups into one scope. ``Phi_w`` is the closed convex envelope of
    ``1/2 sum_g w_g^2 ||x_g||^2`` restricted to at most ``n_nonzero_groups`` nonzero groups.

    Parameters
    ----------
    n_nonzero_groups : int or float, default=0.25
        Number of groups (int; more than there are keeps them all), or a fraction of the
        number of groups (float in (0, 1], rounded, at least 1).
    alpha : float, default=1e-2
        Regularisation strength.
    weights : None, 'sqrt_size' or array-like, default=None
        Group weights ``w_g``: all ones, the square root of the group sizes, or given.
    k, lam : deprecated
        Former names of ``n_nonzero_groups`` and ``alpha`` (one release, with a
        ``FutureWarning``).

    Notes
    -----
    The prox is exact (see :func:`sparsestat._kernels.envelope.wgsef_prox_factors`):
    group norms go to the float64 kernel and every row is scaled by its factor in place.
    The weighting ``Phi_w(x) = SEF((w_g ||x_g||)_g)`` is not specified by the paper (its
    full text was not available); chosen here because it keeps the value and prox exact.
    Cost: O(#parameters) for the norms plus O(n log n) in the number of groups.

    References
    ----------
    .. [1] Y. Refael, I. Arbel, W. Huleihel, "Learning k-Level Structured Sparse Neural
       Networks Using Group Envelope Regularization", arXiv:2212.12921.
    .. [2] A. Beck, Y. Refael, "Sparse regularization via bidualization", J. Global Optim.,
       2022.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural import GroupEnvelopeRegularizer
    >>> W = torch.tensor([[3.0, 0.0], [0.0, 1.0], [0.1, 0.0]])
    >>> reg = GroupEnvelopeRegularizer(n_nonzero_groups=1, alpha=1.0)
    >>> reg.prox_([W], step=1.0).round(decimals=3)
    tensor([0.5000, 0.0000, 0.0000], dtype=torch.float64)
    >>> W
    tensor([[1.5000, 0.0000],
            [0.0000, 0.0000],
            [0.0000, 0.0000]])
    """

    def __init__(
        self,
        n_nonzero_groups: float = 0.25,
        alpha: float = 1e-2,
        weights: Any = None,
        k: Any = DEPRECATED,
        lam: Any = DEPRECATED,
    ) -> None:
        self.n_nonzero_groups = n_nonzero_groups
        self.alpha = alpha
        self.weights = weights
        self.k = k
        self.lam = lam

    @property
    def _alpha(self) -> float:
        return float(renamed(self, "lam", "alpha"))

    def n_groups_kept(self, n_groups: int) -> int:
        """The integer ``k`` for ``n_groups`` groups.

        Parameters
        ----------
        n_groups : int
            Number of groups in the scope.

        Returns
        -------
        k : int
            ``min(n_nonzero_groups, n_groups)`` for an int,
            ``max(1, round(n_nonzero_groups * n_groups))`` for a fraction.
        """
        k = renamed(self, "k", "n_nonzero_groups")
        msg = f"n_nonzero_groups must be >= 1 or a fraction in (0, 1]; got {k}"
        if isinstance(k, numbers.Integral) and not isinstance(k, bool):
            if k < 1:
                raise ValueError(msg)
            return min(int(k), n_groups)
        if not 0 < float(k) <= 1:
            raise ValueError(msg)
        return max(1, int(math.floor(float(k) * n_groups + 0.5)))

    def group_norms(self, params: Any) -> torch.Tensor:
        """Euclidean norm of every group (rows of each block, concatenated).

        Parameters
        ----------
        params : tensor, list of tensors (one block) or list of blocks
            The grouped parameters.

        Returns
        -------
        norms : torch.Tensor of shape (n_groups,)
            In float64 on the CPU.
        """
        out = []
        with torch.no_grad():
            for block in _blocks(params):
                sq = sum(t.detach().reshape(t.shape[0], -1).double().pow(2).sum(1) for t in block)
                out.append(torch.sqrt(sq).cpu())
        return torch.cat(out)

    def group_weights(self, params: Any) -> np.ndarray:
        """The weights ``w_g`` of the groups of ``params``.

        Parameters
        ----------
        params : tensor, list of tensors or list of blocks
            The grouped parameters.

        Returns
        -------
        w : ndarray of shape (n_groups,)
            Positive weights.
        """
        blocks = _blocks(params)
        sizes = np.concatenate(
            [np.full(b[0].shape[0], sum(t[0].numel() for t in b), dtype=np.float64) for b in blocks]
        )
        if self.weights is None:
            return np.ones_like(sizes)
        if isinstance(self.weights, str):
            if self.weights != "sqrt_size":
                raise ValueError(
                    f"weights must be None, 'sqrt_size' or an array; got {self.weights!r}"
                )
            return np.sqrt(sizes)
        w = np.asarray(self.weights, dtype=np.float64).ravel()
        if w.shape != sizes.shape or np.any(w <= 0):
            raise ValueError(f"weights must be {sizes.size} positive numbers")
        return w

    def value(self, params: Any) -> float:
        """Penalty value ``alpha * Phi_w(params)``.

        Parameters
        ----------
        params : tensor, list of tensors or list of blocks
            The grouped parameters.

        Returns
        -------
        value : float
            The penalty.
        """
        a = self.group_norms(params).numpy()
        return self._alpha * wgsef_value(a, self.group_weights(params), self.n_groups_kept(a.size))

    def conjugate(self, params: Any) -> float:
        """Conjugate ``Phi_w^*(y)`` at the point given by ``params`` (without ``alpha``).

        Parameters
        ----------
        params : tensor, list of tensors or list of blocks
            The dual point ``y``, grouped like the parameters.

        Returns
        -------
        value : float
            ``1/2`` times the sum of the ``k`` largest ``(||y_g|| / w_g)^2``.
        """
        b = self.group_norms(params).numpy()
        return wgsef_conjugate(b, self.group_weights(params), self.n_groups_kept(b.size))

    @torch.no_grad()
    def prox_(self, params: Any, step: float = 1.0) -> torch.Tensor:
        """Replace ``params`` in place by ``prox_{step alpha Phi_w}(params)``.

        Parameters
        ----------
        params : tensor, list of tensors or list of blocks
            The grouped parameters (modified in place).
        step : float, default=1.0
            Step size (the optimizer's learning rate).

        Returns
        -------
        factors : torch.Tensor of shape (n_groups,)
            The per-group scale factors applied (0 for removed groups).
        """
        blocks = _blocks(params)
        a = self.group_norms(blocks)
        w = torch.as_tensor(self.group_weights(blocks))
        k = self.n_groups_kept(a.shape[0])
        factors = torch.as_tensor(wgsef_prox_factors(a.numpy(), w.numpy(), k, step * self._alpha))
        self._scale_(blocks, factors)
        return factors

    @torch.no_grad()
    def project_(self, params: Any) -> torch.Tensor:
        """Keep the ``k`` groups of largest norm and set the others to 0, in place.

        Parameters
        ----------
        params : tensor, list of tensors or list of blocks
            The grouped parameters (modified in place).

        Returns
        -------
        keep : torch.Tensor of bool, shape (n_groups,)
            The kept groups.
        """
        blocks = _blocks(params)
        a = self.group_norms(blocks)
        k = self.n_groups_kept(a.shape[0])
        keep = torch.zeros(a.shape[0], dtype=torch.bool)
        keep[torch.topk(a, k).indices] = True
        self._scale_(blocks, keep.double())
        return keep

    @staticmethod
    def apply_group_mask_(params: Any, keep: torch.Tensor) -> None:
        """Zero the groups where ``keep`` is False (in place).

        Parameters
        ----------
        params : tensor, list of tensors or list of blocks
            The grouped parameters.
        keep : torch.Tensor of bool, shape (n_groups,)
            Groups to keep.
        """
        GroupEnvelopeRegularizer._scale_(_blocks(params), keep.double())

    @staticmethod
    @torch.no_grad()
    def _scale_(blocks: list[list[torch.Tensor]], factors: torch.Tensor) -> None:
        start = 0
        for block in blocks:
            n = block[0].shape[0]
            f = factors[start : start + n]
            start += n
            for t in block:
                t.mul_(f.to(device=t.device, dtype=t.dtype).view(-1, *([1] * (t.ndim - 1))))


class PrunedMLP(MLP):
    """An :class:`~sparsestat.neural.layers.MLP` that first selects input columns.

    Parameters
    ----------
    input_index : sequence of int
        Columns of the input kept (in order).
    hidden_layer_sizes : sequence of int
        Hidden widths.
    n_out : int
        Outputs.
    activation : str, default='relu'
        Hidden activation.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import PrunedMLP
    >>> PrunedMLP([0, 2], (3,), 1)(torch.ones(4, 5)).shape
    torch.Size([4, 1])
    """

    def __init__(
        self,
        input_index: Sequence[int],
        hidden_layer_sizes: Sequence[int],
        n_out: int,
        activation: str = "relu",
    ) -> None:
        super().__init__(len(input_index), hidden_layer_sizes, n_out, activation)
        self.register_buffer("input_index", torch.as_tensor(list(input_index), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Select the kept columns, then apply the MLP.

        Parameters
        ----------
        x : torch.Tensor of shape (n, n_features)
            Input batch with all original columns.

        Returns
        -------
        out : torch.Tensor of shape (n, n_out)
            Outputs.
        """
        return super().forward(x.index_select(1, self.input_index))


@torch.no_grad()
def prune_mlp(mlp: MLP, activation: str = "relu") -> PrunedMLP:
    """A smaller dense network computing the same function as ``mlp`` (eval mode).

    Removes hidden neurons whose incoming row and bias are zero (their constant output
    ``act(0)`` is folded into the next layer's bias) and input columns whose weights are all
    zero.

    Parameters
    ----------
    mlp : MLP
        A network from :class:`~sparsestat.neural.layers.MLP` (without dropout at inference).
    activation : str, default='relu'
        Its hidden activation.

    Returns
    -------
    pruned : PrunedMLP
        The smaller network (same device and dtype as ``mlp``).

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import MLP, prune_mlp
    >>> net = MLP(3, (4,), 2)
    >>> with torch.no_grad():
    ...     _ = net.linears[0].weight[1:3].zero_(), net.linears[0].bias[1:3].zero_()
    >>> small = prune_mlp(net)
    >>> small.linears[0].weight.shape
    torch.Size([2, 3])
    >>> x = torch.randn(5, 3)
    >>> bool(torch.allclose(small(x), net(x), atol=1e-6))
    True
    """
    lins = list(mlp.linears)
    weights = [lin.weight.detach().clone() for lin in lins]
    biases = [lin.bias.detach().clone() for lin in lins]
    act = type(mlp.act)()
    first = weights[0]
    input_index = torch.nonzero(first.abs().sum(0) > 0).flatten()
    if input_index.numel() == 0:
        input_index = torch.zeros(1, dtype=torch.long, device=first.device)
    weights[0] = first[:, input_index]
    for layer in range(len(lins) - 1):
        alive = (weights[layer].abs().sum(1) > 0) | (biases[layer] != 0)
        if not alive.any():
            alive[0] = True
        dead = ~alive
        if dead.any():
            const = act(torch.zeros(1, device=first.device, dtype=first.dtype))
            biases[layer + 1] += const * weights[layer + 1][:, dead].sum(1)
        weights[layer] = weights[layer][alive]
        biases[layer] = biases[layer][alive]
        weights[layer + 1] = weights[layer + 1][:, alive]
    hidden = [w.shape[0] for w in weights[:-1]]
    out = PrunedMLP(input_index.tolist(), hidden, weights[-1].shape[0], activation)
    out = out.to(device=first.device, dtype=first.dtype)
    for lin, w, b in zip(out.linears, weights, biases):
        lin.weight.copy_(w)
        lin.bias.copy_(b)
    return out
