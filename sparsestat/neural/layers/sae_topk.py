"""The top-k family of sparse-autoencoder activations (TopK, BatchTopK, AbsTopK, MC, FC, g-SAE).

Each class is a torch module and the variant object of
:class:`sparsestat.neural.SparseAutoencoder` (``activation=TopK(k=8)``); see
:class:`~sparsestat.neural.layers.SAEActivation`. ``k`` is the number of latents kept per
row (the mean per row for the batch variants); None means ``max(1, min(32, d // 4))``.
"""

from __future__ import annotations

import warnings
from numbers import Real
from typing import Any

import numpy as np
import torch

from sparsestat.neural.layers.sae_activation_base import SAEActivation, ThresholdMixin
from sparsestat.neural.layers.sae_losses import zipf_underused_mask
from sparsestat.neural.layers.sae_selection import (
    abs_topk,
    batch_topk,
    feature_choice,
    feature_choice_capacities,
    threshold_activation,
    topk_relu,
)
from sparsestat.neural.layers.sae_sparse_path import select_sparse

__all__ = [
    "GSAE",
    "AbsTopK",
    "BatchTopK",
    "FeatureChoice",
    "MutualChoice",
    "TopK",
    "TopKReLU",
]

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
        """The resolved ``k``.

        Returns
        -------
        k : int, float or None
            Latents kept per row.
        """
        return self._k

    @property
    def sparse_scope(self) -> str | None:
        """'row' (the sparse path), or None with ``multi_topk``.

        Returns
        -------
        scope : str or None
            Scope of the sparse selection.
        """
        return None if self.multi_topk else "row"

    def build(self, n_features: int, n_components: int, batch_size: int | None = None) -> None:
        """Check ``k`` and resolve None (see :meth:`SAEActivation.build`).

        Parameters
        ----------
        n_features : int
            Input dimension d.
        n_components : int
            Number of latents F.
        batch_size : int, default=None
            Unused.
        """
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

    def codes(self, pre, *, x_centered, decoder, k=None, grad=None, scores=None):
        """TopK codes (``k`` overrides the number kept per row).

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Pre-activations.
        x_centered : Tensor of shape (B, d)
            Unused.
        decoder : Tensor of shape (F, d)
            Unused.
        k : int, default=None
            Overrides ``k``.
        grad : Tensor, default=None
            Unused.
        scores : Tensor of shape (B, F), default=None
            Ranking scores (g-SAE).

        Returns
        -------
        z : Tensor of shape (B, F)
            Codes.
        """
        return topk_relu(pre, self._kk(k), scores)

    def extra_loss(self, sae, x, z, pre, var0, step, total_steps):
        """``FVU(4k) / 8`` with ``multi_topk`` (sparsify's Multi-TopK), else None.

        Parameters
        ----------
        sae : SparseAutoencoderModule
            The autoencoder.
        x : Tensor of shape (B, d)
            The scaled batch.
        z : Tensor of shape (B, F)
            Its codes.
        pre : Tensor of shape (B, F)
            Its pre-activations.
        var0 : float
            Fixed data variance.
        step : int
            Unused.
        total_steps : int
            Unused.

        Returns
        -------
        loss : scalar Tensor or None
            The Multi-TopK term.
        """
        if not self.multi_topk:
            return None
        x4 = sae.decode(topk_relu(pre, 4 * self._kk(None)))
        return (x - x4).square().sum(1).mean() / var0 / 8

    def sparse_select(self, pre, *, k=None, grad=None, decoder=None, scores=None):
        """Per-row selection as flat ``(rows, cols, offsets)``.

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Pre-activations.
        k : int, default=None
            Overrides ``k``.
        grad : Tensor, default=None
            Unused.
        decoder : Tensor, default=None
            Unused.
        scores : Tensor of shape (B, F), default=None
            Ranking scores.

        Returns
        -------
        rows, cols, offsets : LongTensor
            See :func:`~sparsestat.neural.layers.select_sparse`.
        """
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
        """The resolved ``k``.

        Returns
        -------
        k : int or None
            Mean latents per row.
        """
        return self._k

    @property
    def sparse_scope(self) -> str | None:
        """'batch': the sparse path selects over the whole batch.

        Returns
        -------
        scope : str
            Scope of the sparse selection.
        """
        return "batch"

    def build(self, n_features: int, n_components: int, batch_size: int | None = None) -> None:
        """Check the parameters and resolve ``k=None`` (see :meth:`SAEActivation.build`).

        Parameters
        ----------
        n_features : int
            Input dimension d.
        n_components : int
            Number of latents F.
        batch_size : int, default=None
            Unused.
        """
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

    def codes(self, pre, *, x_centered, decoder, k=None, grad=None, scores=None):
        """Codes of a batch (``k`` is ignored: the budget is fixed by the training ``k``).

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Pre-activations.
        x_centered : Tensor of shape (B, d)
            Unused.
        decoder : Tensor of shape (F, d)
            Unused.
        k : int, default=None
            Unused.
        grad : Tensor, default=None
            Unused.
        scores : Tensor of shape (B, F), default=None
            Ranking scores (g-SAE).

        Returns
        -------
        z : Tensor of shape (B, F)
            Codes.
        """
        return self(pre, scores)

    def sparse_select(self, pre, *, k=None, grad=None, decoder=None, scores=None):
        """Batch selection as flat ``(rows, cols, offsets)``.

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Pre-activations.
        k : int, default=None
            Unused.
        grad : Tensor, default=None
            Unused.
        decoder : Tensor, default=None
            Unused.
        scores : Tensor of shape (B, F), default=None
            Ranking scores.

        Returns
        -------
        rows, cols, offsets : LongTensor
            See :func:`~sparsestat.neural.layers.select_sparse`.
        """
        return select_sparse(pre, self._kk(), scope="batch", signed=self.signed, scores=scores)

    def update_sparse_threshold(self, values: torch.Tensor) -> None:
        """Update the threshold from the kept values of a training batch (train mode only).

        Parameters
        ----------
        values : Tensor of shape (nnz,)
            Kept code values.
        """
        if self.training:
            self.update_threshold_values(values)


class MutualChoice(BatchTopK):
    """Mutual Choice: any row-latent matches within a total budget ``k * B``.

    The selection is the BatchTopK operator; the auxiliary loss is aux_zipf: latents firing
    less than ``aux_zipf_ratio`` times the density a Zipf law predicts at their rank are
    trained on the residual, as AuxK trains dead latents.

    Parameters
    ----------
    k : int, default=None
        Mean latents per row.
    threshold_rate : float, default=0.01
        EMA rate of the inference threshold and of the firing densities.
    zipf_exponent : float, default=1.0
        Exponent of the Zipf law of the expected densities.
    aux_zipf_ratio : float, default=0.1
        Fraction of its expected density below which a latent counts as under-used.
    inference_mode : {'threshold', 'batch'}, default='threshold'
        See :class:`BatchTopK`.

    Notes
    -----
    The aux_zipf loss is not specified by the paper (its algorithm box was unavailable);
    chosen here as AuxK with the dead mask replaced by the under-used mask above.

    References
    ----------
    Ayonrinde, "Adaptive Sparse Allocation with Mutual Choice & Feature Choice Sparse
    Autoencoders", arXiv:2411.02124, 2024.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import MutualChoice
    >>> MutualChoice(1)(torch.tensor([[5.0, 4.0], [0.5, 0.1]]))
    tensor([[5., 4.],
            [0., 0.]])
    """

    aux_loss = "zipf"

    def __init__(
        self,
        k: int | None = None,
        threshold_rate: float = 0.01,
        zipf_exponent: float = 1.0,
        aux_zipf_ratio: float = 0.1,
        inference_mode: str = "threshold",
    ):
        super().__init__(k, threshold_rate, inference_mode)
        self.zipf_exponent = zipf_exponent
        self.aux_zipf_ratio = aux_zipf_ratio
        self.register_buffer("density", None)

    def build(self, n_features: int, n_components: int, batch_size: int | None = None) -> None:
        """Check the parameters, resolve ``k`` and allocate the firing densities.

        Parameters
        ----------
        n_features : int
            Input dimension d.
        n_components : int
            Number of latents F.
        batch_size : int, default=None
            Unused.
        """
        super().build(n_features, n_components, batch_size)
        self._check_real("zipf_exponent", 0.0)
        self._check_real("aux_zipf_ratio", 0.0)
        self.density = torch.zeros(n_components, dtype=torch.float64)

    def update_statistics(self, counts: torch.Tensor, n_rows: int) -> None:
        """EMA of the firing densities (fraction of rows in which each latent fires).

        Parameters
        ----------
        counts : LongTensor of shape (F,)
            Rows of the batch in which each latent fired.
        n_rows : int
            Rows in the batch.
        """
        if self.density is not None:
            frac = counts.to(self.density) / max(n_rows, 1)
            self.density.lerp_(frac, float(self.threshold_rate))

    def aux_mask(self, since_fired: torch.Tensor, dead_after: int) -> torch.Tensor | None:
        """Under-used latents (aux_zipf).

        Parameters
        ----------
        since_fired : LongTensor of shape (F,)
            Unused.
        dead_after : int
            Unused.

        Returns
        -------
        mask : BoolTensor of shape (F,)
            Latents firing below ``aux_zipf_ratio`` times their Zipf-expected density.
        """
        return zipf_underused_mask(
            self.density, self._kk(), self.aux_zipf_ratio, self.zipf_exponent
        ).cpu()


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
        """The scope: 'row' or 'batch'.

        Returns
        -------
        scope : str
            Scope of the sparse selection.
        """
        return self.scope

    def build(self, n_features: int, n_components: int, batch_size: int | None = None) -> None:
        """Check the parameters and resolve ``k=None``.

        Parameters
        ----------
        n_features : int
            Input dimension d.
        n_components : int
            Number of latents F.
        batch_size : int, default=None
            Unused.
        """
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

    def codes(self, pre, *, x_centered, decoder, k=None, grad=None, scores=None):
        """Codes of a batch (``k`` overrides the per-row k of scope 'row').

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Pre-activations.
        x_centered : Tensor of shape (B, d)
            Unused.
        decoder : Tensor of shape (F, d)
            Unused.
        k : int, default=None
            Overrides ``k`` (scope 'row').
        grad : Tensor, default=None
            Unused.
        scores : Tensor of shape (B, F), default=None
            Ranking scores (g-SAE).

        Returns
        -------
        z : Tensor of shape (B, F)
            Codes.
        """
        if self.scope == "row":
            return abs_topk(pre, self._kk() if k is None else k, scores)
        return self(pre, scores)

    def sparse_select(self, pre, *, k=None, grad=None, decoder=None, scores=None):
        """Selection as flat ``(rows, cols, offsets)``.

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Pre-activations.
        k : int, default=None
            Overrides ``k`` (scope 'row').
        grad : Tensor, default=None
            Unused.
        decoder : Tensor, default=None
            Unused.
        scores : Tensor of shape (B, F), default=None
            Ranking scores.

        Returns
        -------
        rows, cols, offsets : LongTensor
            See :func:`~sparsestat.neural.layers.select_sparse`.
        """
        kk = self._kk() if k is None or self.scope == "batch" else k
        return select_sparse(pre, kk, scope=self.scope, signed=True, scores=scores)

    def update_sparse_threshold(self, values: torch.Tensor) -> None:
        """Update the threshold (scope 'batch', train mode).

        Parameters
        ----------
        values : Tensor of shape (nnz,)
            Kept code values.
        """
        if self.scope == "batch":
            super().update_sparse_threshold(values)

    def inference_threshold(self) -> Any:
        """The ``|pre|`` threshold of scope 'batch' (None for scope 'row').

        Returns
        -------
        threshold : float or None
            The learnt threshold.
        """
        return super().inference_threshold() if self.scope == "batch" else None


class FeatureChoice(ThresholdMixin, SAEActivation):
    """Feature Choice: latent ``j`` keeps its ``m_j`` largest values over the batch.

    Capacities follow :func:`~sparsestat.neural.layers.feature_choice_capacities` for the
    batch at hand (budget ``k * B``); in eval mode per-latent thresholds (EMA of the
    smallest kept value of each column) make the codes batch independent. Call
    :meth:`build` (the estimator does) before use: the thresholds and firing densities have
    one entry per latent.

    Parameters
    ----------
    k : int, default=None
        Mean latents per row; budget ``k * B``.
    capacity : {'uniform', 'zipf'}, default='uniform'
        Capacity law.
    zipf_exponent : float, default=1.0
        Zipf exponent (capacities and the aux_zipf loss).
    aux_zipf_ratio : float, default=0.1
        Fraction of its Zipf-expected density below which a latent counts as under-used.
    threshold_rate : float, default=0.01
        EMA rate of the thresholds and of the firing densities ranking latents for 'zipf'.
    inference_mode : {'threshold', 'batch'}, default='threshold'
        Inference rule (see :class:`BatchTopK`).

    Notes
    -----
    The Zipf capacities and the aux_zipf loss are not specified by the paper (its algorithm
    box was unavailable); see :func:`~sparsestat.neural.layers.feature_choice_capacities`.
    Ragged batches with ``k * B < F`` give every latent capacity 1.

    References
    ----------
    Ayonrinde, "Adaptive Sparse Allocation with Mutual Choice & Feature Choice Sparse
    Autoencoders", arXiv:2411.02124, 2024.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import FeatureChoice
    >>> fc = FeatureChoice(k=1)
    >>> fc.build(n_features=2, n_components=2)
    >>> fc(torch.tensor([[1.0, 2.0], [3.0, 1.0]]))
    tensor([[0., 2.],
            [3., 0.]])
    """

    aux_loss = "zipf"
    inference_params = ("inference_mode",)

    def __init__(
        self,
        k: int | None = None,
        capacity: str = "uniform",
        zipf_exponent: float = 1.0,
        aux_zipf_ratio: float = 0.1,
        threshold_rate: float = 0.01,
        inference_mode: str = "threshold",
    ):
        super().__init__()
        self.k = k
        self.capacity = capacity
        self.zipf_exponent = zipf_exponent
        self.aux_zipf_ratio = aux_zipf_ratio
        self.threshold_rate = threshold_rate
        self.inference_mode = inference_mode
        self._k: int | None = k
        self._n_components: int | None = None
        self.register_buffer("threshold", None)
        self.register_buffer("density", None)

    @property
    def n_active(self) -> int | None:
        """The resolved ``k``.

        Returns
        -------
        k : int or None
            Mean latents per row.
        """
        return self._k

    def build(self, n_features: int, n_components: int, batch_size: int | None = None) -> None:
        """Check the parameters (``k * batch_size >= n_components``) and allocate the state.

        Parameters
        ----------
        n_features : int
            Input dimension d.
        n_components : int
            Number of latents F.
        batch_size : int, default=None
            Training batch size.
        """
        self._k = self._resolve_k(n_features, n_components)
        self._check_options("capacity", ("uniform", "zipf"))
        self._check_options("inference_mode", _INFERENCE)
        self._check_real("zipf_exponent", 0.0)
        self._check_real("aux_zipf_ratio", 0.0)
        rate = self.threshold_rate
        if not (isinstance(rate, Real) and 0 < rate <= 1):
            self._invalid("threshold_rate", "a real number in (0, 1]")
        if batch_size is not None and self._k * int(batch_size) < n_components:
            raise ValueError(
                "FeatureChoice needs k * batch_size >= n_components; got "
                f"{self._k} * {batch_size} < {n_components}"
            )
        self._n_components = int(n_components)
        self._init_threshold(n_components)
        self.density = torch.zeros(n_components)

    def _state(self) -> int:
        if self._n_components is None or self._k is None:
            raise ValueError("FeatureChoice needs build(n_features, n_components) before use")
        return int(self._k)

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
        k = self._state()
        F = int(self._n_components or 0)
        budget = max(k * int(batch_size), F)
        return feature_choice_capacities(
            F, budget, self.capacity, self.density, float(self.zipf_exponent)
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
        self._state()
        if not self.training and self.inference_mode == "threshold":
            return threshold_activation(pre, self._threshold(pre))
        z = feature_choice(pre, self.capacities(pre.shape[0]))
        if self.training:
            self._update(z)
        return z

    @torch.no_grad()
    def _update(self, z: torch.Tensor) -> None:
        fired = z > 0
        rate = float(self.threshold_rate)
        self.density.lerp_(fired.float().mean(0).to(self.density.dtype), rate)
        low = torch.where(fired, z, torch.full_like(z, float("inf"))).min(0).values
        has = torch.isfinite(low)
        low = low.to(self.threshold.dtype)
        fresh = has & (self.threshold < 0)
        upd = has & ~fresh
        self.threshold[fresh] = low[fresh]
        self.threshold[upd] = torch.lerp(self.threshold[upd], low[upd], rate)

    def aux_mask(self, since_fired: torch.Tensor, dead_after: int) -> torch.Tensor | None:
        """Under-used latents (aux_zipf).

        Parameters
        ----------
        since_fired : LongTensor of shape (F,)
            Unused.
        dead_after : int
            Unused.

        Returns
        -------
        mask : BoolTensor of shape (F,)
            Latents firing below ``aux_zipf_ratio`` times their Zipf-expected density.
        """
        k = self._state()
        return zipf_underused_mask(
            self.density, k, self.aux_zipf_ratio, float(self.zipf_exponent)
        ).cpu()


class GSAE(SAEActivation):
    """g-SAE: a top-k selection that ranks latents by their downstream effect.

    Latents are ranked by ``s = a + beta * a * |g @ D.T|`` with ``a`` the (ReLU'd, or
    absolute for AbsTopK) pre-activations, ``g`` the gradient of a downstream loss with
    respect to the input row and ``D`` the decoder; the kept values stay ``a``. Gradients
    come from ``fit(X, sample_gradients=G)`` / ``transform(X, sample_gradients=G)`` or, in
    training, from ``gradient_fn``.

    Parameters
    ----------
    base : TopK, BatchTopK, AbsTopK or MutualChoice, default=None
        The selection that the score steers; None means ``TopK()``.
    beta : float, default=1.0
        Weight of the gradient term; 0 gives the base selection.
    normalize : bool, default=True
        Divide ``|g @ D.T|`` by its batch mean.
    gradient_fn : callable, default=None
        ``gradient_fn(batch) -> ndarray`` returning the downstream gradients of a batch of
        raw rows (used when ``fit`` gets no ``sample_gradients``).

    Notes
    -----
    The score is taken from a summary of the paper (its exact form is not specified there
    in what was available); chosen here because it reduces to the base selection at
    ``beta = 0`` and favours latents whose decoder direction moves the downstream loss.

    References
    ----------
    Olmo et al., "Features that Make a Difference: Leveraging Gradients for Improved
    Dictionary Learning", arXiv:2411.10397, 2024.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import GSAE, TopK
    >>> act = GSAE(TopK(1), beta=10.0)
    >>> pre, D = torch.tensor([[2.0, 1.0]]), torch.eye(2)
    >>> act.codes(pre, x_centered=None, decoder=D, grad=torch.tensor([[0.0, 1.0]]))
    tensor([[0., 1.]])
    """

    def __init__(
        self,
        base: SAEActivation | None = None,
        beta: float = 1.0,
        normalize: bool = True,
        gradient_fn: Any = None,
    ):
        super().__init__()
        self.base = base
        self.beta = beta
        self.normalize = normalize
        self.gradient_fn = gradient_fn
        self._default_base: SAEActivation | None = None

    def _sel(self) -> SAEActivation:
        if self.base is not None:
            return self.base
        if self._default_base is None:
            self._default_base = TopK()
        return self._default_base

    @property
    def signed(self) -> bool:  # type: ignore[override]
        """Whether the base selection keeps signs.

        Returns
        -------
        signed : bool
            As the base.
        """
        return self._sel().signed

    @property
    def aux_loss(self) -> str | None:  # type: ignore[override]
        """The base's auxiliary loss.

        Returns
        -------
        aux_loss : str or None
            As the base.
        """
        return self._sel().aux_loss

    @property
    def uses_gradients(self) -> bool:  # type: ignore[override]
        """True when ``beta > 0``.

        Returns
        -------
        uses : bool
            Whether the codes depend on gradients.
        """
        return float(self.beta) > 0

    @property
    def sparse_scope(self) -> str | None:
        """The base's scope.

        Returns
        -------
        scope : str or None
            Scope of the sparse selection.
        """
        return self._sel().sparse_scope

    @property
    def n_active(self) -> int | None:
        """The base's resolved ``k``.

        Returns
        -------
        k : int or None
            Latents per row.
        """
        return self._sel().n_active

    def build(self, n_features: int, n_components: int, batch_size: int | None = None) -> None:
        """Check the parameters and build the base selection.

        Parameters
        ----------
        n_features : int
            Input dimension d.
        n_components : int
            Number of latents F.
        batch_size : int, default=None
            Training batch size.
        """
        base = self._sel()
        if not (isinstance(base, SAEActivation) and base.rankable):
            self._invalid("base", "TopK, BatchTopK, AbsTopK or MutualChoice")
        self._check_real("beta", 0.0)
        if not isinstance(self.normalize, (bool, np.bool_)):
            self._invalid("normalize", "a bool")
        if self.gradient_fn is not None and not callable(self.gradient_fn):
            self._invalid("gradient_fn", "a callable or None")
        base.build(n_features, n_components, batch_size)

    @torch.no_grad()
    def scores(self, pre: torch.Tensor, grad: torch.Tensor, decoder: torch.Tensor) -> torch.Tensor:
        """The g-SAE ranking scores ``a + beta * a * |grad @ decoder.T|``.

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Pre-activations.
        grad : Tensor of shape (B, d)
            Downstream gradients.
        decoder : Tensor of shape (F, d)
            Decoder rows.

        Returns
        -------
        scores : Tensor of shape (B, F)
            Ranking scores.
        """
        a = pre.abs() if self.signed else torch.relu(pre)
        gd = (grad @ decoder.T).abs()
        if self.normalize:
            gd = gd / gd.mean().clamp_min(1e-12)
        return a + float(self.beta) * a * gd

    def _scores(self, pre, grad, decoder):
        if grad is None or float(self.beta) <= 0:
            return None
        return self.scores(pre, grad.to(pre.dtype), decoder)

    def forward(self, pre: torch.Tensor, scores: torch.Tensor | None = None) -> torch.Tensor:
        """The base selection of ``pre`` (ranked by ``scores`` when given).

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Pre-activations.
        scores : Tensor of shape (B, F), default=None
            Ranking scores.

        Returns
        -------
        z : Tensor of shape (B, F)
            Codes.
        """
        return self._sel()(pre, scores)

    def codes(self, pre, *, x_centered, decoder, k=None, grad=None, scores=None):
        """Codes of the base selection ranked by the g-SAE scores (base order without ``grad``).

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Pre-activations.
        x_centered : Tensor of shape (B, d)
            Centred inputs.
        decoder : Tensor of shape (F, d)
            Decoder rows.
        k : int, default=None
            Overrides the base's ``k`` where it has a per-row one.
        grad : Tensor of shape (B, d), default=None
            Downstream gradients.
        scores : Tensor of shape (B, F), default=None
            Explicit ranking scores (override ``grad``).

        Returns
        -------
        z : Tensor of shape (B, F)
            Codes.
        """
        if scores is None:
            scores = self._scores(pre, grad, decoder)
        return self._sel().codes(
            pre, x_centered=x_centered, decoder=decoder, k=k, grad=None, scores=scores
        )

    def sparse_select(self, pre, *, k=None, grad=None, decoder=None, scores=None):
        """The base's sparse selection ranked by the g-SAE scores.

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Pre-activations.
        k : int, default=None
            Overrides ``k``.
        grad : Tensor of shape (B, d), default=None
            Downstream gradients.
        decoder : Tensor of shape (F, d), default=None
            Decoder rows.
        scores : Tensor of shape (B, F), default=None
            Explicit ranking scores.

        Returns
        -------
        rows, cols, offsets : LongTensor
            See :func:`~sparsestat.neural.layers.select_sparse`.
        """
        if scores is None and decoder is not None:
            scores = self._scores(pre, grad, decoder)
        return self._sel().sparse_select(pre, k=k, scores=scores)

    def update_sparse_threshold(self, values: torch.Tensor) -> None:
        """The base's threshold update.

        Parameters
        ----------
        values : Tensor of shape (nnz,)
            Kept code values.
        """
        self._sel().update_sparse_threshold(values)

    def extra_loss(self, sae, x, z, pre, var0, step, total_steps):
        """The base's extra loss.

        Parameters
        ----------
        sae : SparseAutoencoderModule
            The autoencoder.
        x : Tensor of shape (B, d)
            The scaled batch.
        z : Tensor of shape (B, F)
            Its codes.
        pre : Tensor of shape (B, F)
            Its pre-activations.
        var0 : float
            Fixed data variance.
        step : int
            Optimiser steps so far.
        total_steps : int
            Steps of this call.

        Returns
        -------
        loss : scalar Tensor or None
            The base's term.
        """
        return self._sel().extra_loss(sae, x, z, pre, var0, step, total_steps)

    def aux_mask(self, since_fired: torch.Tensor, dead_after: int) -> torch.Tensor | None:
        """The base's auxiliary-loss latents.

        Parameters
        ----------
        since_fired : LongTensor of shape (F,)
            Training rows since each latent last fired.
        dead_after : int
            Rows without firing after which a latent is dead.

        Returns
        -------
        mask : BoolTensor of shape (F,) or None
            As the base.
        """
        return self._sel().aux_mask(since_fired, dead_after)

    def update_statistics(self, counts: torch.Tensor, n_rows: int) -> None:
        """The base's statistics update.

        Parameters
        ----------
        counts : LongTensor of shape (F,)
            Rows of the batch in which each latent fired.
        n_rows : int
            Rows in the batch.
        """
        self._sel().update_statistics(counts, n_rows)

    def inference_threshold(self) -> Any:
        """The base's inference threshold.

        Returns
        -------
        threshold : float, ndarray or None
            As the base.
        """
        return self._sel().inference_threshold()

    def batch_gradients(self, x: torch.Tensor, grad: torch.Tensor | None) -> torch.Tensor | None:
        """``grad`` if given, else ``gradient_fn(x)`` (None when ``beta == 0``).

        Parameters
        ----------
        x : Tensor of shape (B, d)
            The batch in input units.
        grad : Tensor of shape (B, d) or None
            Gradients given to ``fit``.

        Returns
        -------
        grad : Tensor of shape (B, d) or None
            The batch's downstream gradients.
        """
        if float(self.beta) <= 0:
            return None
        if grad is not None:
            return grad
        if self.gradient_fn is None:
            return None
        raw = x.detach().cpu().double().numpy()
        g = np.asarray(self.gradient_fn(raw), dtype=np.float64)
        if g.shape != raw.shape:
            raise ValueError(f"gradient_fn must return shape {raw.shape}; got {g.shape}")
        return torch.as_tensor(g, dtype=x.dtype, device=x.device)
