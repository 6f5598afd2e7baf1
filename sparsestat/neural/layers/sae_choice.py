"""Mutual Choice and Feature Choice sparse-autoencoder activations (adaptive allocation).

Each class is a torch module and the variant object of
:class:`sparsestat.neural.SparseAutoencoder`; see
:class:`~sparsestat.neural.layers.SAEActivation`. Both train a budget of ``k * B``
(row, latent) matches per batch and add the aux_zipf loss on under-used latents.
"""

from __future__ import annotations

from numbers import Real

import torch

from sparsestat.neural.layers.sae_activation_base import (
    SAEActivation,
    ThresholdMixin,
    inherit_doc,
)
from sparsestat.neural.layers.sae_losses import zipf_underused_mask
from sparsestat.neural.layers.sae_selection import (
    feature_choice,
    feature_choice_capacities,
    threshold_activation,
)
from sparsestat.neural.layers.sae_topk import BatchTopK

__all__ = ["FeatureChoice", "MutualChoice"]

_INFERENCE = ("threshold", "batch")


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

    @inherit_doc
    def build(self, n_features: int, n_components: int, batch_size: int | None = None) -> None:
        super().build(n_features, n_components, batch_size)
        self._check_real("zipf_exponent", 0.0)
        self._check_real("aux_zipf_ratio", 0.0)
        self.density = torch.zeros(n_components, dtype=torch.float64)

    @inherit_doc
    def update_statistics(self, counts: torch.Tensor, n_rows: int) -> None:
        if self.density is not None:
            frac = counts.to(self.density) / max(n_rows, 1)
            self.density.lerp_(frac, float(self.threshold_rate))

    @inherit_doc
    def aux_mask(self, since_fired: torch.Tensor, dead_after: int) -> torch.Tensor | None:
        return zipf_underused_mask(
            self.density, self._kk(), self.aux_zipf_ratio, self.zipf_exponent
        ).cpu()


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
        """The resolved ``k``."""
        return self._k

    @inherit_doc
    def build(self, n_features: int, n_components: int, batch_size: int | None = None) -> None:
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

    @inherit_doc
    def aux_mask(self, since_fired: torch.Tensor, dead_after: int) -> torch.Tensor | None:
        k = self._state()
        return zipf_underused_mask(
            self.density, k, self.aux_zipf_ratio, float(self.zipf_exponent)
        ).cpu()
