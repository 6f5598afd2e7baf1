"""Masked layers: N:M layers (STE, SR-STE, PGF, CAST), fixed-budget masked layers.

Re-exported by :mod:`sparsestat.neural.layers`.

References
----------
.. [1] Zhou et al., "Learning N:M Fine-grained Structured Sparse Neural Networks From
   Scratch", ICLR 2021 (SR-STE).
.. [2] Bambhaniya et al., "Progressive Gradient Flow for Robust N:M Sparsity Training in
   Transformers", arXiv:2402.04744, 2024 (PGF).
.. [3] Huang et al., "CAST: Continuous and Differentiable Semi-Structured Sparsity-Aware
   Training for Large Language Models", arXiv:2509.25996, 2025.
.. [4] Wang et al., "Dynamic Sparse Learning: A Novel Paradigm for Efficient
   Recommendation", WSDM 2024 (masked embeddings).
"""

from __future__ import annotations

from typing import Any

from sparsestat.neural import import_torch
from sparsestat.neural.layers._masks import (
    PGFSchedule,
    check_nm_pattern,
    is_nm_sparse,
    nm_mask,
    random_mask,
)

torch = import_torch()
nn = torch.nn

__all__ = [
    "MaskedEmbedding",
    "MaskedLinear",
    "NMSparseLinear",
    "apply_nm_mask_",
    "export_semi_structured",
    "srste_weight",
]


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
    ``"scaled"`` is autograd's gradient (not specified by the paper; offered because it is
    the exact gradient of the decayed forward).

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
        check_nm_pattern(n, m)
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


class MaskedWeightMixin:
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


class MaskedLinear(MaskedWeightMixin, nn.Linear):
    """Linear layer with a fixed-budget unstructured mask (buffer ``mask``).

    The forward uses ``W`` itself, not ``W * mask``: inactive entries are kept exactly 0 by
    the sparse-training method (:class:`~sparsestat.neural.StaticMask`, ``SET``, ``RigL``),
    so ``W.grad`` is the dense gradient that RigL needs.

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


class MaskedEmbedding(MaskedWeightMixin, nn.Embedding):
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
