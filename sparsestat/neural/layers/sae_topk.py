"""The top-k sparse-autoencoder activations: TopK (per row), BatchTopK and AbsTopK.

Each class is a torch module and the variant object of
:class:`sparsestat.neural.SparseAutoencoder` (``activation=TopK(k=8)``); see
:class:`~sparsestat.neural.layers.SAEActivation`. ``k`` is the number of latents kept per
row (the mean per row for the batch variants); None means ``max(1, min(32, d // 4))``.
"""

from __future__ import annotations

import warnings
from numbers import Real
from typing import Any

import torch

from sparsestat.neural.layers.sae_activation_base import (
    SAEActivation,
    ThresholdMixin,
    inherit_doc,
    weighted_mean,
)
from sparsestat.neural.layers.sae_selection import (
    abs_topk,
    batch_topk,
    threshold_activation,
    topk_relu,
)
from sparsestat.neural.layers.sae_sparse_path import select_sparse

__all__ = ["AbsTopK", "BatchTopK", "TopK", "TopKReLU"]

_INFERENCE = ("threshold", "batch")


class TopK(SAEActivation):
    """ReLU, then the ``k`` largest values of each row (TopK SAE, Gao et al.).

    Parameters
    ----------
    k : int or float, default=None
        Latents kept per row; a float in (0, 1] is a fraction of the width (at least 1);
        None lets the estimator choose ``max(1, min(32, d // 4))``. With ``k`` at least the
        width the module is exactly ReLU.
    multi_topk : bool, default=False
        In :class:`~sparsestat.neural.SparseAutoencoder`, add the reconstruction error at
        ``4k`` divided by 8 to the loss (sparsify's Multi-TopK); it trains densely.

    Notes
    -----
    ReLU first, then top-k (as sparsify and dictionary_learning): a row keeps exactly
    ``k`` nonzeros when it has at least ``k`` positive pre-activations. On the CPU ties keep
    the earlier unit. This module also serves as a sparse activation in ordinary networks
    (inputs of any shape; the selection runs along the last dimension).

    References
    ----------
    Gao et al., "Scaling and evaluating sparse autoencoders", arXiv:2406.04093, 2024.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import TopK
    >>> TopK(2)(torch.tensor([[3.0, -1.0, 2.0, 5.0]]))
    tensor([[3., 0., 0., 5.]])
    """

    aux_loss = "auxk"
    rankable = True

    def __init__(self, k: int | float | None = None, multi_topk: bool = False):
        super().__init__()
        self.k = k
        self.multi_topk = multi_topk
        self._k: int | float | None = k

    @property
    def n_active(self) -> Any:
        """The resolved ``k``."""
        return self._k

    @property
    def sparse_scope(self) -> str | None:
        """'row' (the sparse path), or None with ``multi_topk``."""
        return None if self.multi_topk else "row"

    @inherit_doc
    def build(self, n_features: int, n_components: int, batch_size: int | None = None) -> None:
        if isinstance(self.k, float) and 0.0 < self.k <= 1.0:
            self._k = max(1, int(round(self.k * n_components)))
        else:
            self._k = self._resolve_k(n_features, n_components)
        if not isinstance(self.multi_topk, bool):
            self._invalid("multi_topk", "a bool")

    def _kk(self, k: int | None) -> Any:
        kk = self._k if k is None else k
        if kk is None:
            raise ValueError(f"{type(self).__name__}: k is None; set k or call build() first")
        if isinstance(kk, float) and not isinstance(kk, bool):
            if not 0.0 < kk <= 1.0:
                raise ValueError(
                    f"{type(self).__name__}: a fractional k must be in (0, 1]; got {kk}"
                )
        elif int(kk) < 1:
            raise ValueError(f"{type(self).__name__}: k must be >= 1; got {kk}")
        return kk

    def forward(self, pre: torch.Tensor, scores: torch.Tensor | None = None) -> torch.Tensor:
        """TopK codes of ``pre``.

        Parameters
        ----------
        pre : Tensor of shape (..., F)
            Pre-activations.
        scores : Tensor of shape (..., F), default=None
            Ranking scores (g-SAE); None ranks by ``relu(pre)``.

        Returns
        -------
        z : Tensor of the shape of ``pre``
            The codes.
        """
        return topk_relu(pre, self._kk(None), scores)

    @inherit_doc
    def codes(self, pre, *, x_centered, decoder, k=None, grad=None, scores=None):
        return topk_relu(pre, self._kk(k), scores)

    @inherit_doc
    def extra_loss(self, sae, x, z, pre, var0, step, total_steps, sample_weight=None):
        if not self.multi_topk:
            return None
        x4 = sae.decode(topk_relu(pre, 4 * self._kk(None)))
        return weighted_mean((x - x4).square().sum(1), sample_weight) / var0 / 8

    @inherit_doc
    def sparse_select(self, pre, *, k=None, grad=None, decoder=None, scores=None):
        return select_sparse(pre, self._kk(k), scope="row", signed=self.signed, scores=scores)


class TopKReLU(TopK):
    """Deprecated name of :class:`TopK` (kept for one release).

    Parameters
    ----------
    k : int or float
        Latents kept per row.
    multi_topk : bool, default=False
        See :class:`TopK`.

    Examples
    --------
    >>> import warnings, torch
    >>> from sparsestat.neural.layers import TopKReLU
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", FutureWarning)
    ...     TopKReLU(1)(torch.tensor([[1.0, 2.0]]))
    tensor([[0., 2.]])
    """

    def __init__(self, k: int | float | None = None, multi_topk: bool = False):
        warnings.warn(
            "TopKReLU was renamed TopK (sparsestat.neural.layers.TopK); the old name will be "
            "removed in the next release.",
            FutureWarning,
            stacklevel=2,
        )
        super().__init__(k, multi_topk)


class BatchTopK(ThresholdMixin, SAEActivation):
    """BatchTopK: the ``k * B`` largest of the batch in training, a threshold at inference.

    In training mode the smallest kept value updates the inference threshold (buffer
    ``threshold``) by an exponential moving average with rate ``threshold_rate`` (the first
    batch sets it); in eval mode ``z = pre * [pre > threshold]``, so that the codes of a row
    do not depend on the rest of its batch.

    Parameters
    ----------
    k : int, default=None
        Mean latents per row; the batch keeps ``k * B`` (row, latent) pairs.
    threshold_rate : float, default=0.01
        EMA rate of the inference threshold.
    inference_mode : {'threshold', 'batch'}, default='threshold'
        Inference rule: the learnt threshold, or the training selection applied to each
        chunk of ``transform`` (depends on the chunk's composition).

    References
    ----------
    Bussmann, Leask, Nanda, "BatchTopK Sparse Autoencoders", arXiv:2412.06410, 2024.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import BatchTopK
    >>> act = BatchTopK(1)
    >>> act(torch.tensor([[5.0, 4.0], [0.5, 0.1]]))
    tensor([[5., 4.],
            [0., 0.]])
    >>> act.eval()(torch.tensor([[3.0, 5.0]]))
    tensor([[0., 5.]])
    """

    aux_loss = "auxk"
    rankable = True
    inference_params = ("inference_mode",)

    def __init__(
        self, k: int | None = None, threshold_rate: float = 0.01, inference_mode: str = "threshold"
    ):
        super().__init__()
        self.k = k
        self.threshold_rate = threshold_rate
        self.inference_mode = inference_mode
        self._k: int | None = k
        self.register_buffer("threshold", None)

    @property
    def n_active(self) -> int | None:
        """The resolved ``k``."""
        return self._k

    @property
    def sparse_scope(self) -> str | None:
        """'batch': the sparse path selects over the whole batch."""
        return "batch"

    @inherit_doc
    def build(self, n_features: int, n_components: int, batch_size: int | None = None) -> None:
        self._k = self._resolve_k(n_features, n_components)
        rate = self.threshold_rate
        if not (isinstance(rate, Real) and 0 < rate <= 1):
            self._invalid("threshold_rate", "a real number in (0, 1]")
        self._check_options("inference_mode", _INFERENCE)
        self._init_threshold()

    def _kk(self) -> int:
        if self._k is None:
            raise ValueError(f"{type(self).__name__}: k is None; set k or call build() first")
        return int(self._k)

    def _select(self, pre: torch.Tensor, scores: torch.Tensor | None) -> torch.Tensor:
        return batch_topk(pre, self._kk(), scores=scores, signed=self.signed)

    def forward(self, pre: torch.Tensor, scores: torch.Tensor | None = None) -> torch.Tensor:
        """Batch selection in training mode, the inference rule in eval mode.

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
        if self.training:
            z = self._select(pre, scores)
            self.update_threshold_values(z[z != 0])
            return z
        if self.inference_mode == "batch":
            return self._select(pre, scores)
        return threshold_activation(pre, self._threshold(pre), self.signed)

    @inherit_doc
    def codes(self, pre, *, x_centered, decoder, k=None, grad=None, scores=None):
        return self(pre, scores)

    @inherit_doc
    def sparse_select(self, pre, *, k=None, grad=None, decoder=None, scores=None):
        return select_sparse(pre, self._kk(), scope="batch", signed=self.signed, scores=scores)

    @inherit_doc
    def update_sparse_threshold(self, values: torch.Tensor) -> None:
        if self.training:
            self.update_threshold_values(values)


class AbsTopK(BatchTopK):
    """AbsTopK: the ``k`` largest ``|pre|`` per row with their signs (no ReLU).

    Parameters
    ----------
    k : int, default=None
        Latents per row (mean latents per row for scope 'batch').
    scope : {'row', 'batch'}, default='row'
        'batch' keeps ``k * B`` entries of the batch in training and thresholds ``|pre|``
        at inference.
    threshold_rate : float, default=0.01
        EMA rate of the inference threshold (scope 'batch').
    inference_mode : {'threshold', 'batch'}, default='threshold'
        Inference rule of scope 'batch' (see :class:`BatchTopK`).

    References
    ----------
    Zhu, Khalili, Zhu, "AbsTopK: Rethinking Sparse Autoencoders For Bidirectional Features",
    arXiv:2510.00404, 2025.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import AbsTopK
    >>> AbsTopK(1)(torch.tensor([[1.0, -2.0]]))
    tensor([[ 0., -2.]])
    """

    signed = True

    def __init__(
        self,
        k: int | None = None,
        scope: str = "row",
        threshold_rate: float = 0.01,
        inference_mode: str = "threshold",
    ):
        super().__init__(k, threshold_rate, inference_mode)
        self.scope = scope

    @property
    def sparse_scope(self) -> str | None:
        """The scope: 'row' or 'batch'."""
        return self.scope

    @inherit_doc
    def build(self, n_features: int, n_components: int, batch_size: int | None = None) -> None:
        super().build(n_features, n_components, batch_size)
        self._check_options("scope", ("row", "batch"))

    def forward(self, pre: torch.Tensor, scores: torch.Tensor | None = None) -> torch.Tensor:
        """Signed AbsTopK codes of ``pre``.

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
        if self.scope == "batch":
            return super().forward(pre, scores)
        return abs_topk(pre, self._kk(), scores)

    @inherit_doc
    def codes(self, pre, *, x_centered, decoder, k=None, grad=None, scores=None):
        if self.scope == "row":
            return abs_topk(pre, self._kk() if k is None else k, scores)
        return self(pre, scores)

    @inherit_doc
    def sparse_select(self, pre, *, k=None, grad=None, decoder=None, scores=None):
        kk = self._kk() if k is None or self.scope == "batch" else k
        return select_sparse(pre, kk, scope=self.scope, signed=True, scores=scores)

    @inherit_doc
    def update_sparse_threshold(self, values: torch.Tensor) -> None:
        if self.scope == "batch":
            super().update_sparse_threshold(values)

    @inherit_doc
    def inference_threshold(self) -> Any:
        return super().inference_threshold() if self.scope == "batch" else None
