"""The sparse (top-k) training path of sparse autoencoders on torch tensors.

Codes of the fixed-budget top-k family are kept as flat CSR-like triplets sorted by row:
``values`` (nnz,), ``cols`` (nnz,) latent indices and ``offsets`` (B,) start of each row.
Decoding gathers the selected decoder rows (``embedding_bag``), and the encoder backward
touches only the selected encoder rows, so a training step costs one dense (B, F) product
(the pre-activations, needed for the selection) plus O(nnz * d) instead of about six dense
products. On CPU tensors the backward passes run the fused kernels of
:mod:`sparsestat._kernels.sae`; on other devices (and on the CPU inside
``force_backend("generic")``) they run ``embedding_bag`` and ``index_add_``.
"""

from __future__ import annotations

import math

import torch

from sparsestat._kernels._dispatch import get_kernel
from sparsestat.neural.layers.sae_selection import cpu_kernel, flat_topk_indices, row_topk_indices

__all__ = [
    "densify_codes",
    "gather_preactivations",
    "select_sparse",
    "sparse_decode",
    "sparse_step_grads",
    "sparse_train_step",
]


_LAYOUTS: dict = {}


def _row_layout(B: int, kk: int, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``rows`` (each of the B rows repeated kk times) and ``offsets`` of a per-row selection.

    Cached per shape and device (training repeats the same shapes); callers never write to
    them.
    """
    key = (B, kk, str(dev))
    out = _LAYOUTS.get(key)
    if out is None:
        if len(_LAYOUTS) > 64:
            _LAYOUTS.clear()
        rows = torch.arange(B, device=dev).repeat_interleave(kk)
        out = _LAYOUTS[key] = (rows, torch.arange(0, B * kk, kk, device=dev))
    return out


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
            rows, offsets = _row_layout(B, kk, dev)
            return rows, cols, offsets
        if mask is not None:
            rank = rank.masked_fill(~mask.to(dev)[None, :], -math.inf)
            F = int(mask.sum())
        if scope == "row":
            kk = min(int(k), F)
            cols = row_topk_indices(rank, kk).reshape(-1)
            rows, offsets = _row_layout(B, kk, dev)
            return rows, cols, offsets
        flat = flat_topk_indices(rank.reshape(-1), min(int(k) * B, B * F))
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

    Grouping the entries by latent and summing with ``embedding_bag`` avoids the (nnz, d)
    temporary of ``index_add_`` on the products.
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
        fused = cpu_kernel("sae_sparse_encode_backward", grad, rows, cols, xc, weight)
        need = ctx.needs_input_grad
        if fused is not None:
            g_xc, g_w, g_b = fused
        else:
            g_xc = g_w = g_b = None
            if need[0]:
                g_xc = torch.nn.functional.embedding_bag(
                    cols, weight, offsets, mode="sum", per_sample_weights=grad
                )
            if need[1]:
                g_w = _scatter_rows_bag(rows, cols, grad, xc, weight.shape[0])
            if ctx.has_bias and need[2]:
                g_b = grad.new_zeros(weight.shape[0]).index_add_(0, cols, grad)
        return (
            g_xc if need[0] else None,
            g_w if need[1] else None,
            g_b if ctx.has_bias and need[2] else None,
            None,
            None,
            None,
            None,
        )


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
        fused = cpu_kernel("sae_sparse_decode_backward", grad, values, rows, cols, decoder)
        need = ctx.needs_input_grad
        if fused is not None:
            g_vals, g_dec = fused
        else:
            g_vals = g_dec = None
            if need[0]:
                g_vals = (grad.index_select(0, rows) * decoder.index_select(0, cols)).sum(-1)
            if need[4]:
                g_dec = _scatter_rows_bag(rows, cols, values, grad, decoder.shape[0])
        return g_vals if need[0] else None, None, None, None, g_dec if need[4] else None


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
    fused compiled kernel for CPU tensors (``sparsestat._kernels.sae``), the generic
    array-API kernel on the tensors otherwise. Nothing here records an autograd graph.

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
    out = cpu_kernel("sae_step_grads", *args, float(weight), bool(relu))
    if out is None:
        out = get_kernel("sae_step_grads", *args)(*args, float(weight), bool(relu))
    loss, *arrays = out
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


@torch.no_grad()
def sparse_train_step(
    module: torch.nn.Module,
    x: torch.Tensor,
    *,
    weight: float = 1.0,
    grad: torch.Tensor | None = None,
    aux_mask: torch.Tensor | None = None,
    k_aux: int = 1,
    aux_coef: float = 0.0,
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """One training step of the sparse path without autograd: the loss, and every gradient
    written into the parameters' ``.grad``.

    The loss is ``weight * mean_i ||x_i - x_hat_i||^2`` plus ``aux_coef`` times the AuxK
    loss of :func:`~sparsestat.neural.layers.auxk_loss` on the ``aux_mask`` latents, with
    the gradients of :func:`sparse_step_grads` (one fused pass each); equal to the autograd
    step of :meth:`SparseAutoencoderModule.forward_sparse` to float rounding. The batch
    threshold of BatchTopK-like activations is updated as in training mode.

    Parameters
    ----------
    module : SparseAutoencoderModule
        An autoencoder whose activation has a sparse scope (TopK, BatchTopK, AbsTopK, ...).
    x : Tensor of shape (B, d)
        The (scaled) batch.
    weight : float, default=1.0
        Weight of the mean squared reconstruction error (e.g. ``1 / var0``).
    grad : Tensor of shape (B, d), default=None
        Downstream gradients (g-SAE).
    aux_mask : BoolTensor of shape (F,), default=None
        Dead latents of the AuxK loss (None: no AuxK).
    k_aux : int, default=1
        AuxK latents per row.
    aux_coef : float, default=0.0
        Coefficient of the AuxK loss.

    Returns
    -------
    loss : float
        The loss value.
    row_errors : Tensor of shape (B,)
        ``||x_i - x_hat_i||^2``.
    counts : LongTensor of shape (F,)
        Rows of the batch in which each latent fired.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import SparseAutoencoderModule, TopK
    >>> m = SparseAutoencoderModule(4, 8, TopK(2))
    >>> loss, err, counts = sparse_train_step(m, torch.ones(5, 4))
    >>> m.W_enc.grad.shape, err.shape, int(counts.sum()) <= 2 * 5
    (torch.Size([8, 4]), torch.Size([5]), True)
    """
    m = module
    B = x.shape[0]
    xc = x - m.b_dec
    pre = torch.addmm(m.b_enc, xc, m.W_enc.T)
    rows, cols, _ = m.sparse_select(pre, grad=grad)
    relu = not m.signed
    w = float(weight) / B
    loss, resid, g_w, g_be, g_d, g_x = sparse_step_grads(
        xc, xc, pre, rows, cols, m.W_enc, m.W_dec, w, relu
    )
    g_bd = (2.0 * w) * resid.sum(0)
    n_masked = 0 if aux_mask is None or aux_coef <= 0 else int(aux_mask.sum())
    if n_masked > 0:
        kk = min(int(k_aux), n_masked)
        e = -resid  # x - x_hat, held fixed
        denom = float((e - e.mean(0)).square().sum())
        scale = aux_coef * min(n_masked / int(k_aux), 1.0)
        if denom > 0 and math.isfinite(denom):
            # only the nonzero aux codes: zero codes add nothing to the loss or its gradient
            keep = torch.nonzero(aux_mask.to(pre.device)).reshape(-1)
            picked = cpu_kernel("sae_masked_topk", pre, keep, kk, m.signed)
            if picked is None:
                ra, ca, _ = select_sparse(pre, kk, signed=m.signed, mask=aux_mask)
            else:
                ra, ca = picked
            aux = sparse_step_grads(xc, e, pre, ra, ca, m.W_enc, m.W_dec, scale / denom, relu)
            if math.isfinite(aux[0]):
                loss += aux[0]
                g_w += aux[2]
                g_be += aux[3]
                g_d += aux[4]
                g_x += aux[5]
    g_bd -= g_x.sum(0)
    for p, g in ((m.W_enc, g_w), (m.b_enc, g_be), (m.W_dec, g_d), (m.b_dec, g_bd)):
        p.grad = g
    vals = pre.reshape(-1).take(rows * pre.shape[1] + cols)
    if relu:
        vals = vals.clamp_min(0)
    m.act.update_sparse_threshold(vals)
    counts = torch.bincount(cols[vals != 0], minlength=pre.shape[1])
    return loss, resid.square().sum(1), counts
