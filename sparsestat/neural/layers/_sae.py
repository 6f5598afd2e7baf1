"""Plain PyTorch pieces of sparse autoencoders (SAEs): activations, losses, the SAE module.

Everything here works on ``torch.Tensor`` and is re-exported from
:mod:`sparsestat.neural.layers`, so that users can put these pieces into their own models.
The scikit-learn transformer :class:`sparsestat.neural.SparseAutoencoder` is built on them.

Notation (rows are samples): ``pre`` is the (B, F) matrix of encoder pre-activations
``(x - b_dec) @ W_enc.T + b_enc``; ``W_dec`` is the (F, d) decoder whose rows are the
dictionary atoms; the reconstruction is ``z @ W_dec + b_dec``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sparsestat._kernels import sae as _sae_kernels  # noqa: F401  (registers the kernels)
from sparsestat._kernels._dispatch import get_kernel

__all__ = [
    "ACTIVATIONS",
    "GRAD_ACTIVATIONS",
    "AbsTopK",
    "BatchTopK",
    "FeatureChoice",
    "JumpReLU",
    "MutualChoice",
    "SparseAutoencoderModule",
    "TopAFA",
    "TopKReLU",
    "abs_topk",
    "auxk_loss",
    "batch_topk",
    "densify_codes",
    "feature_choice",
    "feature_choice_capacities",
    "gather_preactivations",
    "jumprelu",
    "jumprelu_step",
    "matching_pursuit",
    "normalize_decoder_",
    "project_decoder_grad_",
    "row_topk_indices",
    "select_sparse",
    "sparse_decode",
    "sparse_step_grads",
    "threshold_activation",
    "top_afa",
    "topk_relu",
    "zipf_underused_mask",
]

#: The activations a :class:`SparseAutoencoderModule` (and the estimator) understands.
ACTIVATIONS = (
    "topk",
    "batchtopk",
    "abstopk",
    "jumprelu",
    "relu_l1",
    "mutual_choice",
    "feature_choice",
    "top_afa",
    "mp",
)


#: Activations whose selection a g-SAE gradient score can steer.
GRAD_ACTIVATIONS = ("topk", "batchtopk", "abstopk", "mutual_choice")


# --------------------------------------------------------------------------- selection ops
def _scatter_rows(shape_like: torch.Tensor, idx: torch.Tensor, vals: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(shape_like).scatter(-1, idx, vals)


_NUMBA: dict = {}
#: use the Numba kernels for CPU tensors (tests set it False to run the torch fallback,
#: i.e. the path taken on other devices, on the CPU)
_USE_NUMBA = True


def _cpu_kernel(name: str, *tensors: torch.Tensor):
    """Run the Numba kernel ``name`` on CPU tensors (NumPy views); None on other devices."""
    if not _USE_NUMBA or any(t.device.type != "cpu" for t in tensors):
        return None
    arrays = [t.detach().numpy() for t in tensors]
    fn = _NUMBA.get(name)
    if fn is None:  # resolved once: the registry lookup costs ~0.1 ms per call
        fn = _NUMBA[name] = get_kernel(name, *arrays)
    out = fn(*arrays)
    if isinstance(out, tuple):
        return tuple(torch.from_numpy(o) for o in out)
    return torch.from_numpy(out)


def row_topk_indices(rank: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest entries of each row, in no particular order (no gradient).

    On the CPU a Numba heap selection (``sparsestat._kernels.sae``), several times faster than
    ``torch.topk`` for small ``k``; ``torch.topk`` elsewhere.

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
        cpu = rank.device.type == "cpu" and rank.dtype in (torch.float32, torch.float64)
        if cpu and _USE_NUMBA and rank.dim() == 2 and k > 0:
            arr = rank.contiguous().numpy()
            fn = _NUMBA.get("sae_row_topk")
            if fn is None:  # resolved once: the registry lookup costs ~0.1 ms per call
                fn = _NUMBA["sae_row_topk"] = get_kernel("sae_row_topk", arr)
            return torch.from_numpy(fn(arr, k))
        return rank.topk(k, dim=-1, sorted=False).indices


def topk_relu(pre: torch.Tensor, k: int, scores: torch.Tensor | None = None) -> torch.Tensor:
    """ReLU, then keep the ``k`` largest values of each row (TopK SAE activation).

    Parameters
    ----------
    pre : Tensor of shape (B, F)
        Encoder pre-activations.
    k : int
        Number of latents kept per row (clipped to F).
    scores : Tensor of shape (B, F), default=None
        Ranking scores (g-SAE); the kept values stay ``relu(pre)``. None ranks by ``relu(pre)``.

    Returns
    -------
    z : Tensor of shape (B, F)
        Exactly ``k`` nonzeros in every row that has at least ``k`` positive pre-activations.

    Examples
    --------
    >>> import torch
    >>> topk_relu(torch.tensor([[3.0, -1.0, 2.0, 1.0]]), 2)
    tensor([[3., 0., 2., 0.]])
    """
    a = torch.relu(pre)
    k = min(int(k), pre.shape[-1])
    rank = a if scores is None else scores
    idx = row_topk_indices(rank, k)
    return _scatter_rows(a, idx, a.gather(-1, idx))


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
    n_keep = min(int(k) * pre.shape[0], flat_rank.numel())
    idx = row_topk_indices(flat_rank[None, :], n_keep)[0]
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
    The Zipf allocation is [inferred]: rescaled, floored at 1, rounded by largest remainder.

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
        The capacities ``m_j``.
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


# --------------------------------------------------------------------------- losses, decoder
def auxk_loss(
    pre: torch.Tensor,
    residual: torch.Tensor,
    decoder: torch.Tensor,
    mask: torch.Tensor,
    k_aux: int,
    signed: bool = False,
    encoder: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None,
) -> torch.Tensor:
    """AuxK loss: rebuild the detached residual from the top pre-activations of masked latents.

    Parameters
    ----------
    pre : Tensor of shape (B, F)
        Encoder pre-activations.
    residual : Tensor of shape (B, d)
        ``x - x_hat``; detached here, so no gradient reaches the main path through it.
    decoder : Tensor of shape (F, d)
        Decoder rows; the auxiliary reconstruction uses no decoder bias.
    mask : BoolTensor of shape (F,)
        True for under-used latents.
        Dead (AuxK) or under-used (aux_zipf) latents.
    k_aux : int
        Number of auxiliary latents per row (clipped to ``mask.sum()``).
    signed : bool, default=False
        Rank by ``|pre|`` and keep signed values (AbsTopK); else ReLU.
    encoder : tuple (x_centered, weight, bias), default=None
        Sparse path: ``pre`` is detached and equals ``x_centered @ weight.T + bias``; the
        selected values are differentiated through :func:`gather_preactivations` and decoded
        by :func:`sparse_decode` (same value and gradients, O(B k_aux d) instead of O(B F d)).

    Returns
    -------
    loss : scalar Tensor
        ``||e - e_hat||^2 / ||e - mean(e)||^2`` (batch sums) times ``min(n_masked / k_aux, 1)``;
        0 when no latent is masked, NaN mapped to 0.

    Examples
    --------
    >>> import torch
    >>> pre = torch.ones(4, 3)
    >>> float(auxk_loss(pre, torch.zeros(4, 2), torch.ones(3, 2), torch.zeros(3, dtype=bool), 2))
    0.0
    """
    n_masked = int(mask.sum())
    if n_masked == 0 or k_aux <= 0:
        return pre.new_zeros(())
    kk = min(int(k_aux), n_masked)
    e = residual.detach()
    if encoder is not None:
        rows, cols, offsets = select_sparse(pre, kk, signed=signed, mask=mask)
        vals = gather_preactivations(*encoder, pre, rows, cols, offsets)
        vals = vals if signed else torch.relu(vals)
        e_hat = sparse_decode(vals, rows, cols, offsets, decoder)
    else:
        a = pre if signed else torch.relu(pre)
        rank = a.abs() if signed else a
        rank = rank.masked_fill(~mask.to(pre.device)[None, :], -math.inf)
        idx = row_topk_indices(rank, kk)
        z_aux = _scatter_rows(a, idx, a.gather(-1, idx))
        e_hat = z_aux @ decoder
    denom = (e - e.mean(0)).square().sum()
    loss = (e_hat - e).square().sum() / denom
    loss = loss * min(n_masked / int(k_aux), 1.0)
    return torch.nan_to_num(loss, nan=0.0, posinf=0.0)


def zipf_underused_mask(
    density: torch.Tensor, k: float, ratio: float = 0.1, exponent: float = 1.0
) -> torch.Tensor:
    """Latents firing less than ``ratio`` times their Zipf-expected density (aux_zipf loss).

    Parameters
    ----------
    density : Tensor of shape (F,)
        (EMA) firing densities, the fraction of rows in which each latent fires.
    k : float
        Mean number of active latents per row; the Zipf densities sum to ``k``.
    ratio : float, default=0.1
        Fraction of the expected density below which a latent counts as under-used.
    exponent : float, default=1.0
        Zipf exponent.

    Returns
    -------
    mask : BoolTensor of shape (F,)
        True for under-used latents.

    Notes
    -----
    [inferred] reconstruction of the paper's aux_zipf_loss (its algorithm box was unavailable).

    Examples
    --------
    >>> import torch
    >>> zipf_underused_mask(torch.tensor([0.5, 0.3, 0.0]), k=1.0)
    tensor([False, False,  True])
    """
    F = density.shape[0]
    ranks = torch.empty(F, dtype=torch.float64, device=density.device)
    order = torch.argsort(density.detach().double(), descending=True, stable=True)
    ranks[order] = torch.arange(1, F + 1, dtype=torch.float64, device=density.device)
    expected = ranks ** (-float(exponent))
    expected = expected / expected.sum() * float(k)
    return density.detach().double() < ratio * expected.clamp(max=1.0)


@torch.no_grad()
def project_decoder_grad_(decoder: torch.Tensor) -> None:
    """Remove from ``decoder.grad`` its component parallel to each (unit) decoder row, in place.

    Parameters
    ----------
    decoder : Tensor of shape (F, d)
        A leaf parameter with a ``.grad``.

    Examples
    --------
    >>> import torch
    >>> D = torch.eye(2, requires_grad=True)
    >>> D.grad = torch.ones(2, 2)
    >>> project_decoder_grad_(D)
    >>> D.grad
    tensor([[0., 1.],
            [1., 0.]])
    """
    if decoder.grad is None:
        return
    unit = decoder / decoder.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    decoder.grad -= (decoder.grad * unit).sum(-1, keepdim=True) * unit


@torch.no_grad()
def normalize_decoder_(decoder: torch.Tensor, norm: float = 1.0) -> None:
    """Rescale every row of ``decoder`` to L2 norm ``norm``, in place.

    Parameters
    ----------
    decoder : Tensor of shape (F, d)
        Decoder weight.
    norm : float, default=1.0
        Target row norm.

    Examples
    --------
    >>> import torch
    >>> D = torch.tensor([[3.0, 4.0]])
    >>> normalize_decoder_(D)
    >>> D
    tensor([[0.6000, 0.8000]])
    """
    decoder.mul_(norm / decoder.norm(dim=-1, keepdim=True).clamp_min(1e-12))


# --------------------------------------------------------------------------- sparse path
# Codes of the top-k family are stored as flat CSR-like triplets sorted by row: ``values``
# (nnz,), ``cols`` (nnz,) latent indices and ``offsets`` (B,) start of each row. Decoding
# gathers the selected decoder rows (``embedding_bag``), and the encoder backward touches only
# the selected encoder rows, so a training step costs one dense (B, F) product (the
# pre-activations, needed for the selection) plus O(nnz * d) instead of about six.
def select_sparse(
    pre: torch.Tensor,
    k: int,
    *,
    scope: str = "row",
    signed: bool = False,
    scores: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices of the top-k selection of ``pre`` as flat (rows, cols, offsets), no gradient.

    Parameters
    ----------
    pre : Tensor of shape (B, F)
        Pre-activations (detached).
    k : int
        Latents per row ('row') or mean latents per row ('batch', ``k * B`` in total).
    scope : {'row', 'batch'}, default='row'
        Per-row TopK / AbsTopK, or BatchTopK over the whole block.
    signed : bool, default=False
        Rank by ``|pre|`` (AbsTopK); else by ``relu(pre)``.
    scores : Tensor of shape (B, F), default=None
        Ranking scores (g-SAE); None ranks by the (ReLU'd or absolute) pre-activations.
    mask : BoolTensor of shape (F,), default=None
        Only these latents may be selected (AuxK); ``k`` is clipped to ``mask.sum()``.

    Returns
    -------
    rows : LongTensor of shape (nnz,)
        Row of each selected entry (non-decreasing).
    cols : LongTensor of shape (nnz,)
        Latent of each selected entry.
    offsets : LongTensor of shape (B,)
        Position in ``rows`` / ``cols`` where each row starts.

    Examples
    --------
    >>> import torch
    >>> rows, cols, offsets = select_sparse(torch.tensor([[3.0, -1.0, 2.0]]), 2)
    >>> sorted(cols.tolist()), offsets
    ([0, 2], tensor([0]))
    """
    with torch.no_grad():
        B, F = pre.shape
        rank = scores if scores is not None else (pre.abs() if signed else torch.relu(pre))
        dev = pre.device
        if mask is not None and scope == "row":  # rank only the masked columns
            keep = torch.nonzero(mask.to(dev)).reshape(-1)
            kk = min(int(k), keep.shape[0])
            cols = keep[row_topk_indices(rank[:, keep], kk)].reshape(-1)
            rows = torch.arange(B, device=dev).repeat_interleave(kk)
            return rows, cols, torch.arange(0, B * kk, kk, device=dev)
        if mask is not None:
            rank = rank.masked_fill(~mask.to(dev)[None, :], -math.inf)
            F = int(mask.sum())
        if scope == "row":
            kk = min(int(k), F)
            cols = row_topk_indices(rank, kk).reshape(-1)
            rows = torch.arange(B, device=dev).repeat_interleave(kk)
            offsets = torch.arange(0, B * kk, kk, device=dev)
            return rows, cols, offsets
        n_keep = min(int(k) * B, B * F)
        flat_rank = rank.reshape(-1)
        if _USE_NUMBA and dev.type == "cpu" and flat_rank.dtype in (torch.float32, torch.float64):
            arr = flat_rank.contiguous().numpy()
            fn = _NUMBA.get("sae_flat_topk")
            if fn is None:
                fn = _NUMBA["sae_flat_topk"] = get_kernel("sae_flat_topk", arr)
            flat = torch.from_numpy(fn(arr, n_keep))
        else:
            flat = row_topk_indices(flat_rank[None, :], n_keep)[0].sort().values
        rows = flat // pre.shape[1]
        cols = flat - rows * pre.shape[1]
        counts = torch.bincount(rows, minlength=B)
        offsets = torch.cumsum(counts, 0) - counts
        return rows, cols, offsets


def _by_latent(rows, cols, n_latents):
    """Rows regrouped by latent: (rows sorted by latent, permutation, offsets per latent)."""
    perm = torch.argsort(cols, stable=True)
    counts = torch.bincount(cols, minlength=n_latents)
    return rows.index_select(0, perm), perm, torch.cumsum(counts, 0) - counts


def _scatter_rows_bag(rows, cols, weights, source, n_latents):
    """``sum_i weights_i * source[rows_i]`` into latent ``cols_i``: an (F, d) embedding bag.

    Grouping the entries by latent and summing with ``embedding_bag`` is ~10-25x faster on
    the CPU than ``index_add_`` of the (nnz, d) products.
    """
    rows_by, perm, offsets = _by_latent(rows, cols, n_latents)
    return torch.nn.functional.embedding_bag(
        rows_by, source, offsets, mode="sum", per_sample_weights=weights.index_select(0, perm)
    )


class _GatherPre(torch.autograd.Function):
    """``pre[rows, cols]`` of ``pre = xc @ W.T + b`` with a backward over the selected rows."""

    @staticmethod
    def forward(ctx, xc, weight, bias, pre, rows, cols, offsets):
        ctx.save_for_backward(xc, weight, rows, cols, offsets)
        ctx.has_bias = bias is not None
        return pre.reshape(-1).take(rows * pre.shape[1] + cols)

    @staticmethod
    def backward(ctx, grad):
        xc, weight, rows, cols, offsets = ctx.saved_tensors
        grad = grad.contiguous()
        fused = _cpu_kernel("sae_sparse_encode_backward", grad, rows, cols, xc, weight)
        if fused is not None:
            g_xc, g_w, g_b = fused
            return (
                g_xc if ctx.needs_input_grad[0] else None,
                g_w if ctx.needs_input_grad[1] else None,
                g_b if ctx.has_bias and ctx.needs_input_grad[2] else None,
                None,
                None,
                None,
                None,
            )
        g_xc = g_w = g_b = None
        if ctx.needs_input_grad[0]:
            g_xc = torch.nn.functional.embedding_bag(
                cols, weight, offsets, mode="sum", per_sample_weights=grad
            )
        if ctx.needs_input_grad[1]:
            g_w = _scatter_rows_bag(rows, cols, grad, xc, weight.shape[0])
        if ctx.has_bias and ctx.needs_input_grad[2]:
            g_b = grad.new_zeros(weight.shape[0]).index_add_(0, cols, grad)
        return g_xc, g_w, g_b, None, None, None, None


class _SparseDecode(torch.autograd.Function):
    """``embedding_bag`` decode whose weight gradient is itself an embedding bag."""

    @staticmethod
    def forward(ctx, values, rows, cols, offsets, decoder):
        ctx.save_for_backward(values, rows, cols, decoder)
        return torch.nn.functional.embedding_bag(
            cols, decoder, offsets, mode="sum", per_sample_weights=values
        )

    @staticmethod
    def backward(ctx, grad):
        values, rows, cols, decoder = ctx.saved_tensors
        grad = grad.contiguous()
        fused = _cpu_kernel("sae_sparse_decode_backward", grad, values, rows, cols, decoder)
        if fused is not None:
            g_vals, g_dec = fused
            return g_vals, None, None, None, g_dec
        g_vals = g_dec = None
        if ctx.needs_input_grad[0]:
            g_vals = (grad.index_select(0, rows) * decoder.index_select(0, cols)).sum(-1)
        if ctx.needs_input_grad[4]:
            g_dec = _scatter_rows_bag(rows, cols, values, grad, decoder.shape[0])
        return g_vals, None, None, None, g_dec


def gather_preactivations(
    x_centered: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    pre: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    offsets: torch.Tensor,
) -> torch.Tensor:
    """Selected pre-activations ``pre[rows, cols]``, differentiable at O(nnz * d) cost.

    The forward reads the (detached) dense ``pre = x_centered @ weight.T + bias``; the backward
    is that of the dense expression restricted to the selected entries: ``embedding_bag`` for
    ``x_centered`` and index-adds into the selected rows of ``weight`` and ``bias``.

    Parameters
    ----------
    x_centered : Tensor of shape (B, d)
        Encoder input ``x - b_dec`` (may require grad).
    weight : Tensor of shape (F, d)
        Encoder weight.
    bias : Tensor of shape (F,) or None
        Encoder bias.
    pre : Tensor of shape (B, F)
        ``x_centered @ weight.T + bias``, computed without gradient.
    rows, cols, offsets : LongTensor
        The selection, as returned by :func:`select_sparse`.

    Returns
    -------
    values : Tensor of shape (nnz,)
        The selected pre-activations.

    Examples
    --------
    >>> import torch
    >>> x, W = torch.randn(3, 4), torch.randn(5, 4, requires_grad=True)
    >>> pre = (x @ W.T).detach()
    >>> rows, cols, offsets = select_sparse(pre, 2)
    >>> v = gather_preactivations(x, W, None, pre, rows, cols, offsets)
    >>> bool(torch.allclose(v, pre[rows, cols]))
    True
    """
    return _GatherPre.apply(x_centered, weight, bias, pre, rows, cols, offsets)


def sparse_decode(
    values: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    offsets: torch.Tensor,
    decoder: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reconstruction ``z @ decoder + bias`` from flat sparse codes (``embedding_bag``).

    Parameters
    ----------
    values : Tensor of shape (nnz,)
        Code values.
    rows, cols : LongTensor of shape (nnz,)
        Their rows (non-decreasing) and latents.
    offsets : LongTensor of shape (B,)
        Start of each row in ``values`` / ``cols``.
    decoder : Tensor of shape (F, d)
        Decoder rows.
    bias : Tensor of shape (d,), default=None
        Decoder bias.

    Returns
    -------
    x_hat : Tensor of shape (B, d)
        Reconstruction; costs O(nnz * d) forward and backward instead of O(B * F * d).

    Examples
    --------
    >>> import torch
    >>> D = torch.eye(3)
    >>> rows, cols, offsets = torch.tensor([0, 1]), torch.tensor([0, 2]), torch.tensor([0, 1])
    >>> sparse_decode(torch.tensor([2.0, 5.0]), rows, cols, offsets, D)
    tensor([[2., 0., 0.],
            [0., 0., 5.]])
    """
    out = _SparseDecode.apply(values, rows, cols, offsets, decoder)
    return out if bias is None else out + bias


def sparse_step_grads(
    x_centered: torch.Tensor,
    target: torch.Tensor,
    pre: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    enc_weight: torch.Tensor,
    decoder: torch.Tensor,
    weight: float,
    relu: bool = True,
):
    """Loss and gradients of ``weight * ||z @ decoder - target||^2`` for a sparse selection.

    ``z`` holds ``relu(pre[rows, cols])`` (signed without ``relu``) with
    ``pre = x_centered @ enc_weight.T + b``. A whole TopK SAE step without autograd: one
    fused Numba kernel for CPU tensors (``sparsestat._kernels.sae``), the generic array-API
    kernel otherwise. Nothing here records an autograd graph.

    Parameters
    ----------
    x_centered : Tensor of shape (B, d)
        Encoder input.
    target : Tensor of shape (B, d)
        Target of the sparse reconstruction.
    pre : Tensor of shape (B, F)
        Pre-activations.
    rows, cols : LongTensor of shape (nnz,)
        The selection.
    enc_weight : Tensor of shape (F, d)
        Encoder weight.
    decoder : Tensor of shape (F, d)
        Decoder rows.
    weight : float
        Loss weight.
    relu : bool, default=True
        ReLU on the selected pre-activations.

    Returns
    -------
    loss : float
        The loss value.
    resid : Tensor of shape (B, d)
        ``z @ decoder - target``.
    grad_enc_weight, grad_enc_bias, grad_decoder, grad_x_centered : Tensor
        Gradients with respect to the encoder weight (F, d), encoder bias (F,), decoder
        (F, d) and ``x_centered`` (B, d).

    Examples
    --------
    >>> import torch
    >>> xc, W = torch.tensor([[1.0, 2.0]]), torch.eye(2)
    >>> out = sparse_step_grads(xc, xc, xc @ W.T, torch.tensor([0]), torch.tensor([1]), W, W, 1.0)
    >>> out[0], out[1]
    (1.0, tensor([[-1.,  0.]]))
    """
    args = [t.detach() for t in (x_centered, target, pre, rows, cols, enc_weight, decoder)]
    cpu = _USE_NUMBA and all(t.device.type == "cpu" for t in args)
    if cpu:
        args = [t.numpy() for t in args]
    fn = _NUMBA.get("sae_step_grads") if cpu else None
    if fn is None:
        fn = get_kernel("sae_step_grads", *args)
        if cpu:
            _NUMBA["sae_step_grads"] = fn
    loss, *arrays = fn(*args, float(weight), bool(relu))
    if cpu:
        arrays = [torch.from_numpy(a) for a in arrays]
    return float(loss), *arrays


def densify_codes(
    values: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, shape: tuple[int, int]
) -> torch.Tensor:
    """Dense (B, F) codes from flat sparse codes.

    Parameters
    ----------
    values : Tensor of shape (nnz,)
        Code values.
    rows, cols : LongTensor of shape (nnz,)
        Their positions.
    shape : tuple of int
        ``(B, F)``.

    Returns
    -------
    z : Tensor of shape (B, F)
        Dense codes.

    Examples
    --------
    >>> import torch
    >>> densify_codes(torch.tensor([2.0]), torch.tensor([0]), torch.tensor([1]), (1, 2))
    tensor([[0., 2.]])
    """
    z = values.new_zeros(shape)
    z[rows, cols] = values
    return z


# --------------------------------------------------------------------------- modules
class TopKReLU(nn.Module):
    """ReLU then the ``k`` largest per row (module form of :func:`topk_relu`).

    Parameters
    ----------
    k : int
        Latents kept per row.

    Examples
    --------
    >>> import torch
    >>> TopKReLU(1)(torch.tensor([[1.0, 2.0]]))
    tensor([[0., 2.]])
    """

    def __init__(self, k: int):
        super().__init__()
        self.k = int(k)

    def forward(self, pre: torch.Tensor) -> torch.Tensor:
        """TopK codes of ``pre``.

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Encoder pre-activations.

        Returns
        -------
        z : Tensor of shape (B, F)
            The codes.
        """
        return topk_relu(pre, self.k)


class BatchTopK(nn.Module):
    """BatchTopK: ``k * B`` largest of the block in training, learned threshold in eval mode.

    In training mode the minimum kept positive value updates the buffer ``threshold`` by an
    exponential moving average with rate ``threshold_rate`` (the first batch sets it).

    Parameters
    ----------
    k : int
        Mean latents per row.
    threshold_rate : float, default=0.01
        EMA rate of the inference threshold.
    signed : bool, default=False
        Rank by ``|pre|`` and keep signs (batch AbsTopK).

    Examples
    --------
    >>> import torch
    >>> act = BatchTopK(1)
    >>> act(torch.tensor([[5.0, 4.0], [0.5, 0.1]]))
    tensor([[5., 4.],
            [0., 0.]])
    >>> act.eval()(torch.tensor([[3.0, 5.0]]))
    tensor([[0., 5.]])
    """

    def __init__(self, k: int, threshold_rate: float = 0.01, signed: bool = False):
        super().__init__()
        self.k = int(k)
        self.threshold_rate = float(threshold_rate)
        self.signed = bool(signed)
        #: set False to use the training selection without updating the threshold
        self.track_statistics = True
        self.register_buffer("threshold", torch.tensor(-1.0))

    def forward(self, pre: torch.Tensor, scores: torch.Tensor | None = None) -> torch.Tensor:
        """Batch selection in training mode, the threshold rule in eval mode.

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Encoder pre-activations.
        scores : Tensor of shape (B, F), default=None
            Ranking scores (g-SAE) for the training selection.

        Returns
        -------
        z : Tensor of shape (B, F)
            The codes.
        """
        if not self.training:
            return threshold_activation(pre, self.threshold.clamp_min(0), self.signed)
        z = batch_topk(pre, self.k, scores=scores, signed=self.signed)
        if self.track_statistics:
            self.update_threshold(z)
        return z

    @torch.no_grad()
    def update_threshold(self, z: torch.Tensor) -> None:
        """Move the threshold towards the smallest kept value of ``z`` (EMA).

        Parameters
        ----------
        z : Tensor of shape (B, F)
            Codes of a training batch.
        """
        self.update_threshold_values(z[z != 0])

    @torch.no_grad()
    def update_threshold_values(self, values: torch.Tensor) -> None:
        """Move the threshold towards the smallest nonzero ``|value|`` kept in a batch (EMA).

        Parameters
        ----------
        values : Tensor
            Kept code values of a training batch (zeros are ignored).
        """
        kept = values.abs()
        kept = kept[kept != 0]
        if kept.numel() == 0:
            return
        low = kept.min().to(self.threshold.dtype)
        if float(self.threshold) < 0:
            self.threshold.copy_(low)
        else:
            self.threshold.lerp_(low, self.threshold_rate)


class MutualChoice(BatchTopK):
    """Mutual Choice: any row-latent matches within a total budget ``k * B`` (= BatchTopK op).

    Parameters
    ----------
    k : int
        Mean latents per row.
    threshold_rate : float, default=0.01
        EMA rate of the inference threshold.

    Examples
    --------
    >>> import torch
    >>> MutualChoice(1)(torch.tensor([[5.0, 4.0], [0.5, 0.1]]))
    tensor([[5., 4.],
            [0., 0.]])
    """

    def __init__(self, k: int, threshold_rate: float = 0.01):
        super().__init__(k, threshold_rate=threshold_rate, signed=False)


class AbsTopK(nn.Module):
    """AbsTopK: the ``k`` largest ``|pre|`` per row, signed (scope 'row') or over the batch.

    Parameters
    ----------
    k : int
        Latents per row (mean latents per row for scope 'batch').
    scope : {'row', 'batch'}, default='row'
        'batch' keeps ``k * B`` entries in training and thresholds ``|pre|`` in eval mode.
    threshold_rate : float, default=0.01
        EMA rate of the inference threshold (scope 'batch').

    Examples
    --------
    >>> import torch
    >>> AbsTopK(1)(torch.tensor([[1.0, -2.0]]))
    tensor([[ 0., -2.]])
    """

    def __init__(self, k: int, scope: str = "row", threshold_rate: float = 0.01):
        super().__init__()
        self.k = int(k)
        self.scope = scope
        self.batch = BatchTopK(k, threshold_rate, signed=True) if scope == "batch" else None

    def forward(self, pre: torch.Tensor, scores: torch.Tensor | None = None) -> torch.Tensor:
        """AbsTopK codes of ``pre`` (signed).

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Encoder pre-activations.
        scores : Tensor of shape (B, F), default=None
            Ranking scores (g-SAE); None ranks by ``|pre|``.

        Returns
        -------
        z : Tensor of shape (B, F)
            The codes.
        """
        if self.batch is not None:
            self.batch.train(self.training)
            return self.batch(pre, scores)
        return abs_topk(pre, self.k, scores)


class FeatureChoice(nn.Module):
    """Feature Choice: latent ``j`` keeps its ``m_j`` largest values over the batch.

    Capacities follow :func:`feature_choice_capacities` for the batch at hand (budget
    ``k * B``); in eval mode a per-latent threshold (EMA of the smallest kept value of each
    column) makes the output batch independent.

    Parameters
    ----------
    n_components : int
        Number of latents F.
    k : int
        Mean latents per row; budget ``k * B``.
    capacity : {'uniform', 'zipf'}, default='uniform'
        Capacity law.
    exponent : float, default=1.0
        Zipf exponent.
    threshold_rate : float, default=0.01
        EMA rate of the thresholds and of the firing densities ranking latents for 'zipf'.

    Examples
    --------
    >>> import torch
    >>> fc = FeatureChoice(2, k=1)
    >>> fc(torch.tensor([[1.0, 2.0], [3.0, 1.0]]))
    tensor([[0., 2.],
            [3., 0.]])
    """

    def __init__(
        self,
        n_components: int,
        k: int,
        capacity: str = "uniform",
        exponent: float = 1.0,
        threshold_rate: float = 0.01,
    ):
        super().__init__()
        self.n_components = int(n_components)
        self.k = int(k)
        self.capacity = capacity
        self.exponent = float(exponent)
        self.threshold_rate = float(threshold_rate)
        #: set False to use the training selection without updating the statistics
        self.track_statistics = True
        self.register_buffer("threshold", torch.full((n_components,), -1.0))
        self.register_buffer("density", torch.zeros(n_components))

    def capacities(self, batch_size: int) -> torch.Tensor:
        """Capacities for a batch of ``batch_size`` rows (floor 1 on ragged small batches).

        Parameters
        ----------
        batch_size : int
            Rows in the batch; the budget is ``max(k * batch_size, F)``.

        Returns
        -------
        capacities : LongTensor of shape (F,)
            Per-latent capacities.
        """
        budget = max(self.k * int(batch_size), self.n_components)
        return feature_choice_capacities(
            self.n_components, budget, self.capacity, self.density, self.exponent
        )

    def forward(self, pre: torch.Tensor) -> torch.Tensor:
        """Feature Choice in training mode, per-latent thresholds in eval mode.

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Encoder pre-activations.

        Returns
        -------
        z : Tensor of shape (B, F)
            The codes.
        """
        if not self.training:
            return threshold_activation(pre, self.threshold.clamp_min(0))
        z = feature_choice(pre, self.capacities(pre.shape[0]))
        if self.track_statistics:
            self.update_statistics(z)
        return z

    @torch.no_grad()
    def update_statistics(self, z: torch.Tensor) -> None:
        """Update the firing densities and per-latent thresholds (EMA) from ``z``.

        Parameters
        ----------
        z : Tensor of shape (B, F)
            Codes of a training batch.
        """
        fired = z > 0
        rate = self.threshold_rate
        self.density.lerp_(fired.float().mean(0).to(self.density.dtype), rate)
        low = torch.where(fired, z, torch.full_like(z, math.inf)).min(0).values
        has = torch.isfinite(low)
        low = low.to(self.threshold.dtype)
        fresh = has & (self.threshold < 0)
        upd = has & ~fresh
        self.threshold[fresh] = low[fresh]
        self.threshold[upd] = torch.lerp(self.threshold[upd], low[upd], rate)


class JumpReLU(nn.Module):
    """JumpReLU with a learnable per-latent threshold (raw, kept >= 1e-6).

    Parameters
    ----------
    n_components : int
        Number of latents.
    init_threshold : float, default=0.01
        Initial threshold.
    bandwidth : float, default=0.05
        Width of the straight-through box kernel.

    Examples
    --------
    >>> import torch
    >>> JumpReLU(2, init_threshold=1.0)(torch.tensor([[0.5, 2.0]]))
    tensor([[0., 2.]], grad_fn=<_JumpReLUFnBackward>)
    """

    def __init__(self, n_components: int, init_threshold: float = 0.01, bandwidth: float = 0.05):
        super().__init__()
        self.bandwidth = float(bandwidth)
        self.threshold = nn.Parameter(torch.full((n_components,), float(init_threshold)))

    def forward(self, pre: torch.Tensor) -> torch.Tensor:
        """JumpReLU codes of ``pre``.

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Encoder pre-activations.

        Returns
        -------
        z : Tensor of shape (B, F)
            The codes.
        """
        return jumprelu(pre, self.threshold, self.bandwidth)

    def l0(self, pre: torch.Tensor) -> torch.Tensor:
        """Mean number of active latents per row, differentiable in the threshold.

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Encoder pre-activations.

        Returns
        -------
        l0 : scalar Tensor
            Mean L0 with the straight-through gradient to the thresholds.
        """
        return jumprelu_step(pre, self.threshold, self.bandwidth).sum(-1).mean()

    @torch.no_grad()
    def clamp_(self) -> None:
        """Keep the thresholds >= 1e-6 (call after each optimiser step)."""
        self.threshold.clamp_(min=1e-6)


class TopAFA(nn.Module):
    """Top-AFA: adaptive per-row k by matching the code norm to the input norm.

    Module form of :func:`top_afa`; ``forward(acts, target_norm, decoder_norms=None)``
    returns the codes.

    Parameters
    ----------
    *args, **kwargs
        Passed to :class:`torch.nn.Module`.

    Examples
    --------
    >>> import torch
    >>> TopAFA()(torch.tensor([[3.0, 4.0, 0.1]]), torch.tensor([5.0]))
    tensor([[3., 4., 0.]])
    """

    def forward(
        self,
        acts: torch.Tensor,
        target_norm: torch.Tensor,
        decoder_norms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Top-AFA codes.

        Parameters
        ----------
        acts : Tensor of shape (B, F)
            Non-negative activations.
        target_norm : Tensor of shape (B,)
            Norms the codes should match.
        decoder_norms : Tensor of shape (F,), default=None
            Decoder row norms.

        Returns
        -------
        z : Tensor of shape (B, F)
            The codes.
        """
        return top_afa(acts, target_norm, decoder_norms)[0]


class SparseAutoencoderModule(nn.Module):
    """A sparse autoencoder ``x_hat = act((x - b_dec) W_enc^T + b_enc) W_dec + b_dec``.

    Parameters
    ----------
    n_features : int
        Input dimension d.
    n_components : int
        Number of latents F.
    activation : str, default='topk'
        One of :data:`ACTIVATIONS`.
    k : int, default=4
        Latents per row (mean per row for batch variants; target L0 for JumpReLU; steps for MP).
    abstopk_scope : {'row', 'batch'}, default='row'
        Scope of the AbsTopK selection.
    fc_capacity : {'uniform', 'zipf'}, default='uniform'
        Feature Choice capacity law.
    zipf_exponent : float, default=1.0
        Zipf exponent of the Feature Choice capacities.
    jumprelu_init_threshold : float, default=0.01
        Initial JumpReLU threshold.
    jumprelu_bandwidth : float, default=0.05
        JumpReLU straight-through bandwidth.
    mp_signed : bool, default=False
        Classic (signed) matching pursuit.
    mp_tol : float, default=None
        Relative residual tolerance of matching pursuit at inference.
    threshold_rate : float, default=0.01
        EMA rate of inference thresholds.

    Attributes
    ----------
    W_enc, b_enc, W_dec, b_dec : Parameter
        Encoder (F, d), encoder bias (F,), decoder (F, d), decoder/pre-bias (d,).
    act : Module or None
        The activation module (None for ``relu_l1``, ``top_afa`` handled inline and ``mp``).

    Examples
    --------
    >>> import torch
    >>> sae = SparseAutoencoderModule(8, 16, "topk", k=2)
    >>> x_hat, z, pre = sae(torch.randn(5, 8))
    >>> [int(n) for n in (z != 0).sum(1)]
    [2, 2, 2, 2, 2]
    """

    def __init__(
        self,
        n_features: int,
        n_components: int,
        activation: str = "topk",
        k: int = 4,
        *,
        abstopk_scope: str = "row",
        fc_capacity: str = "uniform",
        zipf_exponent: float = 1.0,
        jumprelu_init_threshold: float = 0.01,
        jumprelu_bandwidth: float = 0.05,
        mp_signed: bool = False,
        mp_tol: float | None = None,
        threshold_rate: float = 0.01,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)}; got {activation!r}")
        d, F = int(n_features), int(n_components)
        self.activation, self.k = activation, int(k)
        self.mp_signed, self.mp_tol = bool(mp_signed), mp_tol
        self.W_enc = nn.Parameter(torch.empty(F, d))
        self.b_enc = nn.Parameter(torch.zeros(F))
        self.W_dec = nn.Parameter(torch.empty(F, d))
        self.b_dec = nn.Parameter(torch.zeros(d))
        act: nn.Module | None = None
        if activation == "topk":
            act = TopKReLU(k)
        elif activation == "batchtopk":
            act = BatchTopK(k, threshold_rate)
        elif activation == "mutual_choice":
            act = MutualChoice(k, threshold_rate)
        elif activation == "abstopk":
            act = AbsTopK(k, abstopk_scope, threshold_rate)
        elif activation == "feature_choice":
            act = FeatureChoice(F, k, fc_capacity, zipf_exponent, threshold_rate)
        elif activation == "jumprelu":
            act = JumpReLU(F, jumprelu_init_threshold, jumprelu_bandwidth)
        elif activation == "top_afa":
            act = TopAFA()
        self.act = act
        self.reset_parameters()

    @property
    def unit_norm_decoder(self) -> bool:
        """Whether decoder rows are kept at unit norm (all activations but ``relu_l1``)."""
        return self.activation != "relu_l1"

    @property
    def signed(self) -> bool:
        """Whether codes may be negative (AbsTopK, signed MP)."""
        return self.activation == "abstopk" or (self.activation == "mp" and self.mp_signed)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Gaussian unit decoder rows (norm 0.1 for relu_l1), encoder = decoder, zero biases.

        Parameters
        ----------
        generator : torch.Generator, default=None
            Random generator (None: the global torch RNG).
        """
        self.W_dec.copy_(torch.randn(self.W_dec.shape, generator=generator))
        normalize_decoder_(self.W_dec, 1.0 if self.unit_norm_decoder else 0.1)
        self.W_enc.copy_(self.W_dec)
        self.b_enc.zero_()
        self.b_dec.zero_()

    def encoder_weight(self) -> torch.Tensor:
        """The encoder matrix (the decoder itself for tied matching pursuit).

        Returns
        -------
        W : Tensor of shape (F, d)
            The encoder weight.
        """
        return self.W_dec if self.activation == "mp" else self.W_enc

    def preactivation(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activations ``(x - b_dec) @ W_enc.T + b_enc`` (no encoder bias for top-AFA and MP).

        Parameters
        ----------
        x : Tensor of shape (B, d)
            Inputs.

        Returns
        -------
        pre : Tensor of shape (B, F)
            Pre-activations.
        """
        pre = (x - self.b_dec) @ self.encoder_weight().T
        if self.activation in ("top_afa", "mp"):
            return pre
        return pre + self.b_enc

    def encode(
        self,
        x: torch.Tensor,
        *,
        k: int | None = None,
        grad: torch.Tensor | None = None,
        grad_beta: float = 0.0,
        grad_normalize: bool = True,
        mp_tol: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes and pre-activations of ``x``.

        In training mode batch variants use the batch selection; in eval mode thresholds.

        Parameters
        ----------
        x : Tensor of shape (B, d)
            Inputs.
        k : int, default=None
            Overrides the per-row k of topk / row AbsTopK and the number of MP steps.
        grad : Tensor of shape (B, d), default=None
            Downstream gradients at ``x`` (g-SAE).
        grad_beta : float, default=0.0
            g-SAE weight: > 0 ranks the top-k family by ``a + beta * a * |grad @ W_dec.T|``
            (the values stay ``a``).
        grad_normalize : bool, default=True
            Divide ``|grad @ W_dec.T|`` by its batch mean.
        mp_tol : float, default=None
            Relative residual tolerance of MP in eval mode (None: the module's).

        Returns
        -------
        z : Tensor of shape (B, F)
            Codes.
        pre : Tensor of shape (B, F)
            Pre-activations.
        """
        kk = self.k if k is None else int(k)
        pre = self.preactivation(x)
        name = self.activation
        scores = None
        if grad is not None and grad_beta > 0 and name in GRAD_ACTIVATIONS:
            scores = self.gradient_scores(pre, grad, grad_beta, grad_normalize)
        if name == "mp":
            z, _ = matching_pursuit(
                x - self.b_dec,
                self.W_dec,
                kk,
                signed=self.mp_signed,
                tol=None if self.training else (mp_tol if mp_tol is not None else self.mp_tol),
            )
        elif name == "relu_l1":
            z = torch.relu(pre)
        elif name == "topk":
            z = topk_relu(pre, kk, scores)
        elif name == "abstopk" and self.act.batch is None:
            z = abs_topk(pre, kk, scores)
        elif name in ("batchtopk", "mutual_choice", "abstopk"):
            z = self.act(pre, scores)
        elif name == "top_afa":
            z = self.act(torch.relu(pre), (x - self.b_dec).norm(dim=-1), self.W_dec.norm(dim=-1))
        else:  # feature_choice, jumprelu
            z = self.act(pre)
        return z, pre

    @torch.no_grad()
    def gradient_scores(
        self, pre: torch.Tensor, grad: torch.Tensor, beta: float, normalize: bool = True
    ) -> torch.Tensor:
        """The g-SAE ranking scores ``a + beta * a * |grad @ W_dec.T|`` (``a = |pre|`` if signed).

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Pre-activations.
        grad : Tensor of shape (B, d)
            Downstream gradients.
        beta : float
            Weight of the gradient term.
        normalize : bool, default=True
            Divide ``|grad @ W_dec.T|`` by its batch mean.

        Returns
        -------
        scores : Tensor of shape (B, F)
            Ranking scores.
        """
        a = pre.abs() if self.signed else torch.relu(pre)
        gd = (grad @ self.W_dec.T).abs()
        if normalize:
            gd = gd / gd.mean().clamp_min(1e-12)
        return a + float(beta) * a * gd

    @property
    def supports_sparse(self) -> bool:
        """Whether :meth:`forward_sparse` applies (fixed-budget top-k family)."""
        return self.activation in ("topk", "abstopk", "batchtopk", "mutual_choice")

    def forward_sparse(
        self,
        x: torch.Tensor,
        *,
        k: int | None = None,
        grad: torch.Tensor | None = None,
        grad_beta: float = 0.0,
        grad_normalize: bool = True,
    ):
        """Training-mode forward of the top-k family through the sparse path.

        Same selection and values as :meth:`forward` in training mode (equal to float
        tolerance, gradients included), but the codes stay sparse: the decoder gathers the
        selected rows (:func:`sparse_decode`) and the encoder backward touches only them
        (:func:`gather_preactivations`). Batch variants update their threshold as in
        :meth:`forward`.

        Parameters
        ----------
        x : Tensor of shape (B, d)
            Inputs.
        k : int, default=None
            Overrides ``k``.
        grad : Tensor of shape (B, d), default=None
            Downstream gradients at ``x`` (g-SAE).
        grad_beta : float, default=0.0
            g-SAE weight.
        grad_normalize : bool, default=True
            Divide ``|grad @ W_dec.T|`` by its batch mean.

        Returns
        -------
        x_hat : Tensor of shape (B, d)
            Reconstruction.
        codes : tuple of Tensor
            ``(values, rows, cols, offsets)``, see :func:`select_sparse`.
        pre : Tensor of shape (B, F)
            Pre-activations (detached).
        """
        xc = x - self.b_dec
        with torch.no_grad():
            pre = torch.addmm(self.b_enc, xc, self.W_enc.T)
        rows, cols, offsets = self.sparse_select(
            pre, k=k, grad=grad, grad_beta=grad_beta, grad_normalize=grad_normalize
        )
        values = gather_preactivations(xc, self.W_enc, self.b_enc, pre, rows, cols, offsets)
        if not self.signed:
            values = torch.relu(values)
        self.update_sparse_threshold(values.detach())
        x_hat = sparse_decode(values, rows, cols, offsets, self.W_dec, self.b_dec)
        return x_hat, (values, rows, cols, offsets), pre

    def _batch_act(self):
        """The activation holding a batch threshold (None for per-row selections)."""
        act = self.act.batch if self.activation == "abstopk" else self.act
        return act if self.activation in ("batchtopk", "mutual_choice", "abstopk") else None

    @torch.no_grad()
    def sparse_select(
        self,
        pre: torch.Tensor,
        *,
        k: int | None = None,
        grad: torch.Tensor | None = None,
        grad_beta: float = 0.0,
        grad_normalize: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training-mode selection of the top-k family as flat ``(rows, cols, offsets)``.

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Pre-activations.
        k : int, default=None
            Overrides ``k``.
        grad : Tensor of shape (B, d), default=None
            Downstream gradients (g-SAE).
        grad_beta : float, default=0.0
            g-SAE weight.
        grad_normalize : bool, default=True
            Divide ``|grad @ W_dec.T|`` by its batch mean.

        Returns
        -------
        rows, cols, offsets : LongTensor
            See :func:`select_sparse`.
        """
        if not self.supports_sparse:
            raise ValueError(f"no sparse path for activation {self.activation!r}")
        kk = self.k if k is None else int(k)
        scores = None
        if grad is not None and grad_beta > 0:
            scores = self.gradient_scores(pre, grad, grad_beta, grad_normalize)
        scope = "row" if self._batch_act() is None else "batch"
        return select_sparse(pre, kk, scope=scope, signed=self.signed, scores=scores)

    @torch.no_grad()
    def update_sparse_threshold(self, values: torch.Tensor) -> None:
        """Update the inference threshold of batch variants from the kept training values.

        Parameters
        ----------
        values : Tensor of shape (nnz,)
            Selected (ReLU'd unless signed) code values of a training batch.
        """
        act = self._batch_act()
        if act is not None and self.training and act.track_statistics:
            act.update_threshold_values(values)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``z @ W_dec + b_dec``.

        Parameters
        ----------
        z : Tensor of shape (B, F)
            Codes.

        Returns
        -------
        x_hat : Tensor of shape (B, d)
            Reconstruction.
        """
        return z @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor, **kwargs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction, codes and pre-activations of ``x``.

        Parameters
        ----------
        x : Tensor of shape (B, d)
            Inputs.
        **kwargs : dict
            Passed to :meth:`encode`.

        Returns
        -------
        x_hat : Tensor of shape (B, d)
            Reconstruction.
        z : Tensor of shape (B, F)
            Codes.
        pre : Tensor of shape (B, F)
            Pre-activations.
        """
        z, pre = self.encode(x, **kwargs)
        return self.decode(z), z, pre
