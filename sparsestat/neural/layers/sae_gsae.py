"""g-SAE: a top-k sparse-autoencoder selection steered by downstream gradients.

The class is a torch module and the variant object of
:class:`sparsestat.neural.SparseAutoencoder` (``activation=GSAE(TopK(k=8), beta=1.0)``); see
:class:`~sparsestat.neural.layers.SAEActivation`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sparsestat.neural.layers.sae_activation_base import SAEActivation, inherit_doc
from sparsestat.neural.layers.sae_topk import TopK

__all__ = ["GSAE"]


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
        """Whether the base selection keeps signs."""
        return self._sel().signed

    @property
    def aux_loss(self) -> str | None:  # type: ignore[override]
        """The base's auxiliary loss."""
        return self._sel().aux_loss

    @property
    def uses_gradients(self) -> bool:  # type: ignore[override]
        """True when ``beta > 0``."""
        return float(self.beta) > 0

    @property
    def sparse_scope(self) -> str | None:
        """The base's scope."""
        return self._sel().sparse_scope

    @property
    def n_active(self) -> int | None:
        """The base's resolved ``k``."""
        return self._sel().n_active

    @inherit_doc
    def build(self, n_features: int, n_components: int, batch_size: int | None = None) -> None:
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

    @inherit_doc
    def codes(self, pre, *, x_centered, decoder, k=None, grad=None, scores=None):
        if scores is None:
            scores = self._scores(pre, grad, decoder)
        return self._sel().codes(
            pre, x_centered=x_centered, decoder=decoder, k=k, grad=None, scores=scores
        )

    @inherit_doc
    def sparse_select(self, pre, *, k=None, grad=None, decoder=None, scores=None):
        if scores is None and decoder is not None:
            scores = self._scores(pre, grad, decoder)
        return self._sel().sparse_select(pre, k=k, scores=scores)

    @inherit_doc
    def update_sparse_threshold(self, values: torch.Tensor) -> None:
        self._sel().update_sparse_threshold(values)

    @inherit_doc
    def extra_loss(self, sae, x, z, pre, var0, step, total_steps, sample_weight=None):
        return self._sel().extra_loss(sae, x, z, pre, var0, step, total_steps, sample_weight)

    @inherit_doc
    def aux_mask(self, since_fired: torch.Tensor, dead_after: int) -> torch.Tensor | None:
        return self._sel().aux_mask(since_fired, dead_after)

    @inherit_doc
    def update_statistics(self, counts: torch.Tensor, n_rows: int) -> None:
        self._sel().update_statistics(counts, n_rows)

    @inherit_doc
    def inference_threshold(self) -> Any:
        return self._sel().inference_threshold()

    @inherit_doc
    def batch_gradients(self, x: torch.Tensor, grad: torch.Tensor | None) -> torch.Tensor | None:
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
