"""The sparse-autoencoder module: encoder, activation (variant), decoder."""

from __future__ import annotations

import torch
from torch import nn

from sparsestat.neural.layers.sae_activation_base import SAEActivation
from sparsestat.neural.layers.sae_activations import make_activation
from sparsestat.neural.layers.sae_losses import normalize_decoder_
from sparsestat.neural.layers.sae_sparse_path import gather_preactivations, sparse_decode

__all__ = ["SparseAutoencoderModule"]


class SparseAutoencoderModule(nn.Module):
    """A sparse autoencoder ``x_hat = act((x - b_dec) W_enc^T + b_enc) W_dec + b_dec``.

    Parameters
    ----------
    n_features : int
        Input dimension d.
    n_components : int
        Number of latents F.
    activation : str or SAEActivation, default='topk'
        The activation (variant): a name of
        :data:`~sparsestat.neural.layers.ACTIVATIONS` (its defaults) or an activation object
        such as ``TopK(k=4)``. The object is used as given (not copied) and built for
        ``n_features`` and ``n_components``.
    batch_size : int, default=None
        Training batch size, checked by variants that need it (Feature Choice).

    Attributes
    ----------
    W_enc, b_enc, W_dec, b_dec : Parameter
        Encoder (F, d), encoder bias (F,), decoder (F, d), decoder/pre-bias (d,).
    act : SAEActivation
        The activation module.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import SparseAutoencoderModule, TopK
    >>> _ = torch.manual_seed(0)
    >>> sae = SparseAutoencoderModule(8, 16, TopK(k=2))
    >>> x_hat, z, pre = sae(torch.randn(5, 8))
    >>> [int(n) for n in (z != 0).sum(1)]
    [2, 2, 2, 2, 2]
    """

    def __init__(
        self,
        n_features: int,
        n_components: int,
        activation: str | SAEActivation = "topk",
        *,
        batch_size: int | None = None,
    ):
        super().__init__()
        d, F = int(n_features), int(n_components)
        act = make_activation(activation) if isinstance(activation, str) else activation
        if not isinstance(act, SAEActivation):
            make_activation(act)  # raises the error listing the valid names
        act.build(d, F, batch_size)
        self.act = act
        self.W_enc = nn.Parameter(torch.empty(F, d))
        self.b_enc = nn.Parameter(torch.zeros(F))
        self.W_dec = nn.Parameter(torch.empty(F, d))
        self.b_dec = nn.Parameter(torch.zeros(d))
        self.reset_parameters()

    @property
    def unit_norm_decoder(self) -> bool:
        """Whether decoder rows are kept at unit norm (all activations but ``ReLU``)."""
        return self.act.unit_norm_decoder

    @property
    def signed(self) -> bool:
        """Whether codes may be negative (AbsTopK, signed MP)."""
        return bool(self.act.signed)

    @property
    def supports_sparse(self) -> bool:
        """Whether :meth:`forward_sparse` applies (fixed-budget top-k family)."""
        return self.act.sparse_scope is not None

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Gaussian unit decoder rows (norm 0.1 for ReLU + L1), encoder = decoder, zero biases.

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
        return self.W_dec if self.act.tied else self.W_enc

    def preactivation(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activations ``(x - b_dec) @ W_enc.T + b_enc`` (no bias for top-AFA and MP).

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
        return pre + self.b_enc if self.act.encoder_bias else pre

    def encode(
        self, x: torch.Tensor, *, k: int | None = None, grad: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes and pre-activations of ``x``.

        In training mode batch variants use the batch selection; in eval mode their
        inference rule.

        Parameters
        ----------
        x : Tensor of shape (B, d)
            Inputs.
        k : int, default=None
            Overrides the per-row k of TopK / row AbsTopK and the number of MP steps.
        grad : Tensor of shape (B, d), default=None
            Downstream gradients at ``x`` (used by :class:`GSAE`).

        Returns
        -------
        z : Tensor of shape (B, F)
            Codes.
        pre : Tensor of shape (B, F)
            Pre-activations.
        """
        pre = self.preactivation(x)
        z = self.act.codes(pre, x_centered=x - self.b_dec, decoder=self.W_dec, k=k, grad=grad)
        return z, pre

    def forward_sparse(
        self, x: torch.Tensor, *, k: int | None = None, grad: torch.Tensor | None = None
    ):
        """Training-mode forward of the top-k family through the sparse path.

        Same selection and values as :meth:`forward` in training mode (equal to float
        tolerance, gradients included), but the codes stay sparse: the decoder gathers the
        selected rows (:func:`~sparsestat.neural.layers.sparse_decode`) and the encoder
        backward touches only them
        (:func:`~sparsestat.neural.layers.gather_preactivations`). Batch variants update
        their threshold as in :meth:`forward`.

        Parameters
        ----------
        x : Tensor of shape (B, d)
            Inputs.
        k : int, default=None
            Overrides ``k``.
        grad : Tensor of shape (B, d), default=None
            Downstream gradients at ``x`` (g-SAE).

        Returns
        -------
        x_hat : Tensor of shape (B, d)
            Reconstruction.
        codes : tuple of Tensor
            ``(values, rows, cols, offsets)``, see
            :func:`~sparsestat.neural.layers.select_sparse`.
        pre : Tensor of shape (B, F)
            Pre-activations (detached).
        """
        xc = x - self.b_dec
        with torch.no_grad():
            pre = torch.addmm(self.b_enc, xc, self.W_enc.T)
        rows, cols, offsets = self.sparse_select(pre, k=k, grad=grad)
        values = gather_preactivations(xc, self.W_enc, self.b_enc, pre, rows, cols, offsets)
        if not self.signed:
            values = torch.relu(values)
        self.act.update_sparse_threshold(values.detach())
        x_hat = sparse_decode(values, rows, cols, offsets, self.W_dec, self.b_dec)
        return x_hat, (values, rows, cols, offsets), pre

    @torch.no_grad()
    def sparse_select(
        self, pre: torch.Tensor, *, k: int | None = None, grad: torch.Tensor | None = None
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

        Returns
        -------
        rows, cols, offsets : LongTensor
            See :func:`~sparsestat.neural.layers.select_sparse`.
        """
        if not self.supports_sparse:
            raise ValueError(f"no sparse path for activation {self.act!r}")
        return self.act.sparse_select(pre, k=k, grad=grad, decoder=self.W_dec)

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
            Passed to :meth:`encode` (``k``, ``grad``).

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
