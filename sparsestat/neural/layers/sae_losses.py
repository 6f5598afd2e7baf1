"""Losses and decoder constraints of sparse autoencoders on torch tensors.

The AuxK loss (dead latents rebuild the residual), the under-used mask of the aux_zipf loss
(Mutual and Feature Choice), and the unit-norm decoder constraint (row normalisation and the
removal of the row-parallel gradient component).
"""

from __future__ import annotations

import math

import torch

from sparsestat.neural.layers.sae_selection import row_topk_indices
from sparsestat.neural.layers.sae_sparse_path import (
    gather_preactivations,
    select_sparse,
    sparse_decode,
)

__all__ = ["auxk_loss", "normalize_decoder_", "project_decoder_grad_", "zipf_underused_mask"]


def auxk_loss(
    pre: torch.Tensor,
    residual: torch.Tensor,
    decoder: torch.Tensor,
    mask: torch.Tensor,
    k_aux: int,
    signed: bool = False,
    encoder: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None,
    sample_weight: torch.Tensor | None = None,
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
        Dead (AuxK) or under-used (aux_zipf) latents.
    k_aux : int
        Number of auxiliary latents per row (clipped to ``mask.sum()``).
    signed : bool, default=False
        Rank by ``|pre|`` and keep signed values (AbsTopK); else ReLU.
    encoder : tuple (x_centered, weight, bias), default=None
        Sparse path: ``pre`` is detached and equals ``x_centered @ weight.T + bias``; the
        selected values are differentiated through :func:`gather_preactivations` and decoded
        by :func:`sparse_decode` (same value and gradients, O(B k_aux d) instead of O(B F d)).
    sample_weight : Tensor of shape (B,), default=None
        Row weights of both sums (and of the mean of ``e``).

    Returns
    -------
    loss : scalar Tensor
        ``||e - e_hat||^2 / ||e - mean(e)||^2`` (batch sums, weighted by ``sample_weight``)
        times ``min(n_masked / k_aux, 1)``;
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
        z_aux = torch.zeros_like(a).scatter(-1, idx, a.gather(-1, idx))
        e_hat = z_aux @ decoder
    if sample_weight is None:
        denom = (e - e.mean(0)).square().sum()
        loss = (e_hat - e).square().sum() / denom
    else:
        w = sample_weight.to(e.dtype)[:, None]
        centre = (w * e).sum(0) / w.sum()
        denom = (w * (e - centre).square()).sum()
        loss = (w * (e_hat - e).square()).sum() / denom
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
    Not specified by the paper (its algorithm box was unavailable); chosen here because it
    is AuxK with the dead mask replaced by the paper's notion of under-use: latents firing
    far below the density a Zipf law predicts at their rank.

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
