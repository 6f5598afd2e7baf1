"""Selection operators of sparse autoencoders on torch tensors (top-k, thresholds, pursuit).

Functions of the encoder pre-activations ``pre = (x - b_dec) @ W_enc.T + b_enc`` of shape
(B, F) (rows are samples) that return sparse codes ``z`` of the same shape. The activation
modules (:mod:`sparsestat.neural.layers.sae_topk`, :mod:`sparsestat.neural.layers.sae_activations`)
and :class:`sparsestat.neural.SparseAutoencoder` are built on them.

On CPU tensors the selections run the compiled kernels of :mod:`sparsestat._kernels.sae`
(reached through :func:`~sparsestat._kernels._dispatch.get_kernel`); on other devices, and on
the CPU inside ``force_backend("generic")``, they run torch operations (``torch.topk``).
"""

from __future__ import annotations

from typing import Any

import torch

from sparsestat._kernels import sae as _sae_kernels  # noqa: F401  (registers the kernels)
from sparsestat._kernels._dispatch import force_backend, get_kernel

__all__ = [
    "abs_topk",
    "batch_topk",
    "feature_choice",
    "feature_choice_capacities",
    "flat_topk_indices",
    "jumprelu",
    "jumprelu_step",
    "matching_pursuit",
    "row_topk_indices",
    "threshold_activation",
    "top_afa",
    "topk_relu",
]

_GENERIC: dict[str, Any] = {}
_NUMPY_DTYPES = (torch.float32, torch.float64, torch.int64, torch.int32, torch.bool)


def _generic_kernel(name: str) -> Any:
    """The generic (array-API) version of kernel ``name`` (looked up once)."""
    fn = _GENERIC.get(name)
    if fn is None:
        with force_backend("generic"):
            fn = _GENERIC[name] = get_kernel(name)
    return fn


def cpu_kernel(name: str, *args: Any) -> Any:
    """Run the specialised (Numba) kernel ``name`` on CPU tensors, or return None.

    Tensor arguments are passed as NumPy views and array results come back as tensors.
    Returns None when a tensor is not on the CPU (or has a dtype NumPy cannot view) or when
    :func:`~sparsestat._kernels._dispatch.get_kernel` picks the generic version (inside
    ``force_backend("generic")``): the caller then runs its torch code, the path taken on
    other devices.

    Parameters
    ----------
    name : str
        Registered kernel name (``sparsestat._kernels.sae``).
    *args : Tensor or scalar
        Kernel arguments; tensors first.

    Returns
    -------
    out : Tensor, tuple or None
        The kernel's result with arrays as tensors, or None.

    Examples
    --------
    >>> import torch
    >>> cpu_kernel("sae_row_topk", torch.tensor([[0.5, 2.0, 1.0]]), 1)
    tensor([[1]])
    """
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    if any(t.device.type != "cpu" or t.dtype not in _NUMPY_DTYPES for t in tensors):
        return None
    arrays = [a.detach().numpy() if isinstance(a, torch.Tensor) else a for a in args]
    fn = get_kernel(name)  # the arrays are NumPy arrays: the namespace lookup is not needed
    if fn is _generic_kernel(name):
        return None
    out = fn(*arrays)
    if isinstance(out, tuple):
        return tuple(torch.from_numpy(o) if hasattr(o, "shape") else o for o in out)
    return torch.from_numpy(out)


def compiled_kernels() -> bool:
    """Whether CPU tensors use the compiled kernels (False inside ``force_backend("generic")``).

    Returns
    -------
    compiled : bool
        True when :func:`~sparsestat._kernels._dispatch.get_kernel` picks the specialised
        (Numba) version for NumPy arrays.

    Examples
    --------
    >>> from sparsestat._kernels._dispatch import force_backend
    >>> with force_backend("generic"):
    ...     compiled_kernels()
    False
    """
    name = "sae_step_grads"
    return get_kernel(name) is not _generic_kernel(name)


def _resolve_k(k: int | float, width: int) -> int:
    """An int ``k``, or a fraction of ``width`` (at least 1), clipped to ``width``."""
    if isinstance(k, float):
        return min(width, max(1, int(round(k * width))))
    return min(int(k), width)


def _scatter_rows(shape_like: torch.Tensor, idx: torch.Tensor, vals: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(shape_like).scatter(-1, idx, vals)


def row_topk_indices(rank: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest entries of each row, in no particular order (no gradient).

    On the CPU a compiled heap selection (``sparsestat._kernels.sae``) that keeps the earlier
    column among equal values; ``torch.topk`` elsewhere (ties as torch breaks them).

    Parameters
    ----------
    rank : Tensor of shape (B, F)
        Scores.
    k : int
        Entries per row (clipped to F).

    Returns
    -------
    indices : LongTensor of shape (B, k)
        Column indices.

    Examples
    --------
    >>> import torch
    >>> sorted(row_topk_indices(torch.tensor([[0.1, 3.0, -1.0, 2.0]]), 2)[0].tolist())
    [1, 3]
    """
    k = min(int(k), rank.shape[-1])
    with torch.no_grad():
        if rank.dim() == 2 and k > 0:
            out = cpu_kernel("sae_row_topk", rank, k)
            if out is not None:
                return out
        return rank.topk(k, dim=-1, sorted=False).indices


def flat_topk_indices(values: torch.Tensor, k: int) -> torch.Tensor:
    """Positions of the ``k`` largest entries of a 1-D tensor, in increasing order (no gradient).

    Parameters
    ----------
    values : Tensor of shape (n,)
        Scores (a flattened (B, F) block for BatchTopK).
    k : int
        Number of entries (clipped to n).

    Returns
    -------
    positions : LongTensor of shape (k,)
        Sorted ascending, so that row-major positions come grouped by row.

    Examples
    --------
    >>> import torch
    >>> flat_topk_indices(torch.tensor([0.5, 3.0, -1.0, 2.0, 2.5]), 3).tolist()
    [1, 3, 4]
    """
    k = min(int(k), values.shape[0])
    with torch.no_grad():
        if k > 0:
            out = cpu_kernel("sae_flat_topk", values.contiguous(), k)
            if out is not None:
                return out
        return values.topk(k, sorted=False).indices.sort().values


def topk_relu(
    pre: torch.Tensor, k: int | float, scores: torch.Tensor | None = None
) -> torch.Tensor:
    """ReLU, then keep the ``k`` largest values of each row (TopK SAE activation).

    Parameters
    ----------
    pre : Tensor of shape (..., F)
        Pre-activations; the selection runs along the last dimension.
    k : int or float
        Number of latents kept per row; a float in (0, 1] is a fraction of F (at least 1).
        With ``k >= F`` this is exactly ReLU.
    scores : Tensor of shape (..., F), default=None
        Ranking scores (g-SAE); the kept values stay ``relu(pre)``. None ranks by ``relu(pre)``.

    Returns
    -------
    z : Tensor of the shape of ``pre``
        Exactly ``k`` nonzeros in every row that has at least ``k`` positive pre-activations;
        on the CPU, ties keep the earlier latent.

    Examples
    --------
    >>> import torch
    >>> topk_relu(torch.tensor([[3.0, -1.0, 2.0, 1.0]]), 2)
    tensor([[3., 0., 2., 0.]])
    """
    a = torch.relu(pre)
    width = pre.shape[-1]
    kk = _resolve_k(k, width)
    if kk >= width:
        return a
    rank = a if scores is None else scores
    a2 = a.reshape(-1, width)
    idx = row_topk_indices(rank.reshape(-1, width), kk)
    return _scatter_rows(a2, idx, a2.gather(-1, idx)).reshape(a.shape)


def batch_topk(
    pre: torch.Tensor, k: int, scores: torch.Tensor | None = None, signed: bool = False
) -> torch.Tensor:
    """Keep the ``k * B`` largest entries of the whole (B, F) block (BatchTopK, Mutual Choice).

    Parameters
    ----------
    pre : Tensor of shape (B, F)
        Encoder pre-activations.
    k : int
        Mean number of latents per row; the block keeps ``k * B`` entries in total.
    scores : Tensor of shape (B, F), default=None
        Ranking scores (g-SAE); None ranks by the values themselves.
    signed : bool, default=False
        If True rank by ``|pre|`` and keep signed values (batch AbsTopK); else ReLU first.

    Returns
    -------
    z : Tensor of shape (B, F)
        Row counts vary; the total count is ``k * B`` when enough entries are positive.

    Examples
    --------
    >>> import torch
    >>> batch_topk(torch.tensor([[5.0, 4.0], [0.5, 0.1]]), 1)
    tensor([[5., 4.],
            [0., 0.]])
    """
    a = pre if signed else torch.relu(pre)
    rank = (a.abs() if signed else a) if scores is None else scores
    flat_rank = rank.reshape(-1)
    idx = flat_topk_indices(flat_rank, int(k) * pre.shape[0])
    flat = a.reshape(-1)
    return torch.zeros_like(flat).scatter(0, idx, flat.gather(0, idx)).reshape(a.shape)


def abs_topk(pre: torch.Tensor, k: int, scores: torch.Tensor | None = None) -> torch.Tensor:
    """Keep the ``k`` largest ``|pre|`` of each row with their signs (AbsTopK, no ReLU).

    Parameters
    ----------
    pre : Tensor of shape (B, F)
        Encoder pre-activations.
    k : int
        Number of latents kept per row.
    scores : Tensor of shape (B, F), default=None
        Ranking scores (g-SAE); None ranks by ``|pre|``.

    Returns
    -------
    z : Tensor of shape (B, F)
        Exactly ``k`` nonzeros per row (for nonzero pre-activations), equal to ``pre`` there.

    Examples
    --------
    >>> import torch
    >>> abs_topk(torch.tensor([[3.0, -4.0, 2.0, 1.0]]), 2)
    tensor([[ 3., -4.,  0.,  0.]])
    """
    k = min(int(k), pre.shape[-1])
    rank = pre.abs() if scores is None else scores
    idx = row_topk_indices(rank, k)
    return _scatter_rows(pre, idx, pre.gather(-1, idx))


def feature_choice_capacities(
    n_components: int,
    budget: int,
    kind: str = "uniform",
    density: torch.Tensor | None = None,
    exponent: float = 1.0,
) -> torch.Tensor:
    """Per-latent capacities ``m_j >= 1`` summing to ``budget`` (Feature Choice SAE).

    Parameters
    ----------
    n_components : int
        Number of latents F.
    budget : int
        Total number of (row, latent) matches per batch, ``k * B``; must be ``>= F``.
    kind : {'uniform', 'zipf'}, default='uniform'
        'uniform': ``floor(budget / F)``, plus one for the first ``budget mod F`` latents.
        'zipf': proportional to ``rank ** -exponent``, ranks by ``density`` (descending).
    density : Tensor of shape (F,), default=None
        Firing densities used to rank latents for 'zipf' (None: index order).
    exponent : float, default=1.0
        Zipf exponent.

    Returns
    -------
    capacities : LongTensor of shape (F,)
        The capacities ``m_j``.

    Notes
    -----
    The Zipf allocation is not specified by the paper (its algorithm box was unavailable);
    chosen here because it is the simplest allocation with the Zipf law's shape: every
    latent gets one match, the rest is shared in proportion to ``rank ** -exponent`` and
    rounded by largest remainder.

    Examples
    --------
    >>> feature_choice_capacities(4, 10)
    tensor([3, 3, 2, 2])
    """
    F = int(n_components)
    if budget < F:
        raise ValueError(f"Feature Choice needs k * batch_size >= n_components; {budget} < {F}")
    if kind == "uniform":
        caps = torch.full((F,), budget // F, dtype=torch.long)
        caps[: budget % F] += 1
        return caps
    order = (
        torch.arange(F)
        if density is None
        else torch.argsort(density.detach().cpu().double(), descending=True, stable=True)
    )
    weights = torch.arange(1, F + 1, dtype=torch.float64) ** (-float(exponent))
    spare = budget - F  # every latent gets one, the rest is shared by the Zipf law
    share = weights / weights.sum() * spare
    extra = share.floor().long()
    remainder = spare - int(extra.sum())
    if remainder > 0:
        extra[torch.argsort(share - extra, descending=True)[:remainder]] += 1
    caps = torch.empty(F, dtype=torch.long)
    caps[order] = 1 + extra
    return caps


def feature_choice(pre: torch.Tensor, capacities: torch.Tensor) -> torch.Tensor:
    """Each latent ``j`` keeps the ``m_j`` largest ReLU'd values of its column (Feature Choice).

    Parameters
    ----------
    pre : Tensor of shape (B, F)
        Encoder pre-activations.
    capacities : LongTensor of shape (F,)
        Per-latent capacities ``m_j`` (clipped to B).

    Returns
    -------
    z : Tensor of shape (B, F)
        Column ``j`` has at most ``m_j`` nonzeros.

    Examples
    --------
    >>> import torch
    >>> feature_choice(torch.tensor([[1.0, 2.0], [3.0, 1.0], [2.0, 0.5]]), torch.tensor([1, 2]))
    tensor([[0., 2.],
            [3., 1.],
            [0., 0.]])
    """
    a = torch.relu(pre)
    caps = capacities.to(pre.device).clamp(max=pre.shape[0])
    m_max = int(caps.max()) if caps.numel() else 0
    vals, idx = a.topk(m_max, dim=0)
    keep = torch.arange(m_max, device=pre.device)[:, None] < caps[None, :]
    return torch.zeros_like(a).scatter(0, idx, vals * keep)


def threshold_activation(pre: torch.Tensor, threshold: torch.Tensor, signed: bool = False):
    """Batch-independent inference rule ``z = pre * [pre > theta]`` (``|pre| > theta`` if signed).

    Parameters
    ----------
    pre : Tensor of shape (B, F)
        Encoder pre-activations.
    threshold : Tensor, scalar or of shape (F,)
        Global or per-latent threshold(s), non-negative.
    signed : bool, default=False
        Compare ``|pre|`` (batch AbsTopK) instead of ``pre``.

    Returns
    -------
    z : Tensor of shape (B, F)
        ``pre`` where it passes the threshold, 0 elsewhere.

    Examples
    --------
    >>> import torch
    >>> threshold_activation(torch.tensor([[0.5, 2.0, -3.0]]), torch.tensor(1.0))
    tensor([[0., 2., 0.]])
    """
    test = pre.abs() if signed else pre
    return torch.where(test > threshold, pre, torch.zeros_like(pre))


class _JumpReLUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, theta, bandwidth):
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return torch.where(pre > theta, pre, torch.zeros_like(pre))

    @staticmethod
    def backward(ctx, grad):
        pre, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        box = ((pre - theta).abs() < eps / 2).to(grad.dtype)
        grad_theta = (-(theta / eps) * box * grad).sum(0)
        return grad * (pre > theta), grad_theta, None


class _StepFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, theta, bandwidth):
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        pre, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        box = ((pre - theta).abs() < eps / 2).to(grad.dtype)
        return torch.zeros_like(pre), (-(1.0 / eps) * box * grad).sum(0), None


def jumprelu(pre: torch.Tensor, theta: torch.Tensor, bandwidth: float = 0.05) -> torch.Tensor:
    """JumpReLU ``z = pre * H(pre - theta)`` with the straight-through threshold gradient.

    Parameters
    ----------
    pre : Tensor of shape (B, F)
        Encoder pre-activations.
    theta : Tensor of shape (F,)
        Per-latent thresholds (learnable).
    bandwidth : float, default=0.05
        Width ``eps`` of the box kernel of the pseudo-derivative
        ``dz/dtheta = -(theta/eps) K((pre - theta)/eps)``.

    Returns
    -------
    z : Tensor of shape (B, F)
        ``pre`` where it exceeds the threshold, 0 elsewhere.

    Examples
    --------
    >>> import torch
    >>> jumprelu(torch.tensor([[0.5, 2.0]]), torch.tensor([1.0, 1.0]))
    tensor([[0., 2.]])
    """
    return _JumpReLUFn.apply(pre, theta, float(bandwidth))


def jumprelu_step(pre: torch.Tensor, theta: torch.Tensor, bandwidth: float = 0.05) -> torch.Tensor:
    """Heaviside ``H(pre - theta)`` whose gradient reaches only ``theta`` (the L0 estimator).

    Parameters
    ----------
    pre : Tensor of shape (B, F)
        Encoder pre-activations.
    theta : Tensor of shape (F,)
        Per-latent thresholds.
    bandwidth : float, default=0.05
        Width of the box kernel: ``dH/dtheta = -(1/eps) K((pre - theta)/eps)``.

    Returns
    -------
    step : Tensor of shape (B, F)
        0/1 indicators; their row sums are the L0 norms.

    Examples
    --------
    >>> import torch
    >>> jumprelu_step(torch.tensor([[0.5, 2.0]]), torch.tensor([1.0, 1.0]))
    tensor([[0., 1.]])
    """
    return _StepFn.apply(pre, theta, float(bandwidth))


def top_afa(
    acts: torch.Tensor, target_norm: torch.Tensor, decoder_norms: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-AFA: per row keep the ``k_i`` top latents whose code norm best matches ``||x_i||``.

    Parameters
    ----------
    acts : Tensor of shape (B, F)
        Non-negative activations ``relu(x_c @ W_enc.T)``.
    target_norm : Tensor of shape (B,)
        ``||x_i - b_dec||``.
    decoder_norms : Tensor of shape (F,), default=None
        Row norms of the decoder (None: all ones).

    Returns
    -------
    z : Tensor of shape (B, F)
        ``acts`` on the ``k_i`` top-ranked latents of each row, zero elsewhere.
    k : LongTensor of shape (B,)
        ``k_i = argmin_t |sqrt(cumsum(sorted (a*||d||)^2))_t - ||x_i||| + 1`` (last t excluded).

    Examples
    --------
    >>> import torch
    >>> z, k = top_afa(torch.tensor([[3.0, 4.0, 0.1]]), torch.tensor([5.0]))
    >>> k
    tensor([2])
    """
    weighted = acts if decoder_norms is None else acts * decoder_norms
    sorted_w, order = weighted.detach().sort(dim=-1, descending=True)
    cum = torch.sqrt(torch.cumsum(sorted_w.square(), dim=-1))
    cum[:, -1] = torch.finfo(cum.dtype).max
    k = (cum - target_norm.detach()[:, None]).abs().argmin(dim=-1) + 1
    rank_mask = torch.arange(acts.shape[-1], device=acts.device)[None, :] < k[:, None]
    mask = torch.zeros_like(rank_mask).scatter(-1, order, rank_mask)
    return acts * mask, k


def matching_pursuit(
    residual: torch.Tensor,
    dictionary: torch.Tensor,
    n_steps: int,
    *,
    signed: bool = False,
    tol: float | None = None,
    return_norms: bool = False,
):
    """Greedy matching pursuit of ``residual`` over the rows of ``dictionary`` (MP-SAE encoder).

    At each step the atom with the largest correlation (``relu`` of it by default, ``|.|`` if
    ``signed``) is chosen without gradient; its coefficient ``alpha`` (the correlation, ReLU'd
    unless ``signed``) is added to the code and ``alpha * d_j`` removed from the residual.
    Gradients flow through the coefficients and the selected atoms only.

    Parameters
    ----------
    residual : Tensor of shape (B, d)
        Centred inputs ``x - b_dec``.
    dictionary : Tensor of shape (F, d)
        Atoms (unit rows for the monotone-residual guarantee).
    n_steps : int
        Maximum number of greedy steps.
    signed : bool, default=False
        Classic MP (signed coefficients, argmax of ``|c|``).
    tol : float, default=None
        Stop a row once ``||r|| < tol * ||r_0||``; rows also stop when no correlation is positive.
    return_norms : bool, default=False
        Also return the (n_steps + 1, B) residual norms.

    Returns
    -------
    z : Tensor of shape (B, F)
        The code.
    residual : Tensor of shape (B, d)
        The final residual.
    norms : Tensor of shape (n_steps + 1, B)
        Only if ``return_norms``.

    Examples
    --------
    >>> import torch
    >>> z, r = matching_pursuit(torch.tensor([[2.0, 1.0]]), torch.eye(2), 2)
    >>> z
    tensor([[2., 1.]])
    """
    B, F = residual.shape[0], dictionary.shape[0]
    z = residual.new_zeros((B, F))
    r = residual
    r0 = residual.detach().norm(dim=-1)
    active = torch.ones(B, dtype=torch.bool, device=residual.device)
    norms = [r0]
    rows = torch.arange(B, device=residual.device)
    for _ in range(int(n_steps)):
        with torch.no_grad():
            c = r @ dictionary.T
            j = (c.abs() if signed else c).argmax(dim=-1)
            cj = c[rows, j]
            if not signed:
                active = active & (cj > 0)
            if tol is not None:
                active = active & (r.norm(dim=-1) >= tol * r0)
        if not bool(active.any()):
            norms.append(r.detach().norm(dim=-1))
            continue
        atoms = dictionary[j]
        alpha = (r * atoms).sum(-1)
        if not signed:
            alpha = torch.relu(alpha)
        alpha = alpha * active
        z = z.index_put((rows, j), alpha, accumulate=True)
        r = r - alpha[:, None] * atoms
        norms.append(r.detach().norm(dim=-1))
    if return_norms:
        return z, r, torch.stack(norms)
    return z, r
