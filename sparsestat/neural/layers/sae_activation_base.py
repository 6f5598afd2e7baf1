"""The base class of the sparse-autoencoder activations (the variants of SparseAutoencoder).

An activation is at once a torch module (its forward maps the pre-activations to codes) and
the *variant object* of :class:`sparsestat.neural.SparseAutoencoder`
(``activation=TopK(k=8)``): its constructor arguments are hyper-parameters with
``get_params`` / ``set_params`` (tunable as ``activation__k`` in ``GridSearchCV``), and it
owns its validation, its extra loss terms and its running statistics. The estimator trains
a clone, so the object passed by the user is never modified.
"""

from __future__ import annotations

import inspect
from numbers import Integral, Real
from typing import Any

import torch
from torch import nn

from sparsestat.utils._compat import InvalidParameterError

__all__ = ["SAEActivation"]


def inherit_doc(method: Any) -> Any:
    """Give an override of a :class:`SAEActivation` hook the hook's docstring.

    Parameters
    ----------
    method : function
        The override.

    Returns
    -------
    method : function
        The same function, documented.

    Examples
    --------
    >>> class Plain(SAEActivation):
    ...     @inherit_doc
    ...     def after_step(self):
    ...         pass
    >>> Plain.after_step.__doc__ == SAEActivation.after_step.__doc__
    True
    """
    method.__doc__ = getattr(SAEActivation, method.__name__).__doc__
    return method


class SAEActivation(nn.Module):
    """Base class of the activations of a sparse autoencoder.

    Subclasses store their constructor arguments unchanged (as scikit-learn estimators do)
    and implement :meth:`forward`; the hooks below have defaults that suit a plain
    element-wise activation.

    Attributes
    ----------
    signed : bool
        Codes may be negative (AbsTopK, signed matching pursuit).
    tied : bool
        The encoder is the decoder (matching pursuit).
    encoder_bias : bool
        The pre-activations include the encoder bias.
    unit_norm_decoder : bool
        Decoder rows are kept at unit norm (all but ReLU + L1).
    aux_loss : {'auxk', 'zipf'} or None
        The auxiliary loss on silent latents: AuxK on dead latents, aux_zipf on under-used
        ones, or none.
    inference_params : tuple of str
        Parameters read only at inference: changing them on the estimator's ``activation``
        after ``fit`` takes effect at the next ``transform``.
    rankable : bool
        The selection can rank latents by other scores (the g-SAE of :class:`GSAE`).
    adam_betas : tuple of float
        Default Adam betas of the estimator for this variant.
    uses_gradients : bool
        The codes depend on downstream gradients (:class:`GSAE` with ``beta > 0``).

    Examples
    --------
    >>> from sparsestat.neural.layers import SAEActivation, TopK
    >>> isinstance(TopK(k=4), SAEActivation), TopK(k=4).get_params()
    (True, {'k': 4, 'multi_topk': False})
    """

    signed: bool = False
    tied: bool = False
    encoder_bias: bool = True
    unit_norm_decoder: bool = True
    aux_loss: str | None = None
    inference_params: tuple[str, ...] = ()
    rankable: bool = False
    adam_betas: tuple[float, float] = (0.9, 0.999)
    uses_gradients: bool = False

    def __init__(self) -> None:
        super().__init__()

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyper-parameters of this activation (its constructor arguments).

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of a contained activation as ``name__param``.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        out: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params: Any) -> SAEActivation:
        """Set hyper-parameters (``name__param`` reaches a contained activation).

        Parameters
        ----------
        **params : dict
            New values.

        Returns
        -------
        self : SAEActivation
            This activation.
        """
        valid = self._get_param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            head, sep, tail = key.partition("__")
            if head not in valid:
                raise ValueError(
                    f"Invalid parameter {head!r} for {type(self).__name__}; valid parameters "
                    f"are {valid}"
                )
            if sep:
                nested.setdefault(head, {})[tail] = value
            else:
                setattr(self, head, value)
        for head, sub in nested.items():
            getattr(self, head).set_params(**sub)
        return self

    def __sklearn_clone__(self) -> SAEActivation:
        """An unfitted copy with the same hyper-parameters (used by ``sklearn.clone``).

        Returns
        -------
        clone : SAEActivation
            A new activation.
        """
        params = self.get_params(deep=False)
        for name, value in params.items():
            if hasattr(value, "__sklearn_clone__"):
                params[name] = value.__sklearn_clone__()
        return type(self)(**params)

    def __repr__(self) -> str:
        """``Name(param=value, ...)`` listing the parameters that differ from the defaults."""
        sig = inspect.signature(type(self).__init__).parameters
        parts = []
        for name in self._get_param_names():
            value = getattr(self, name)
            default = sig[name].default
            if value is default or (not isinstance(value, nn.Module) and value == default):
                continue
            parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def _invalid(self, name: str, expected: str) -> None:
        raise InvalidParameterError(
            f"The {name!r} parameter of {type(self).__name__} must be {expected}; "
            f"got {getattr(self, name)!r}."
        )

    def _check_real(self, name: str, low: float, *, closed: bool = True) -> None:
        v = getattr(self, name)
        ok = isinstance(v, Real) and not isinstance(v, bool) and (v >= low if closed else v > low)
        if not ok:
            self._invalid(name, f"a real number {'>=' if closed else '>'} {low}")

    def _check_options(self, name: str, options: tuple[Any, ...]) -> None:
        if getattr(self, name) not in options:
            self._invalid(name, f"one of {list(options)}")

    def _resolve_k(self, n_features: int, n_components: int, name: str = "k") -> int:
        """Validate ``self.k`` (an int >= 1, at most ``n_components``) and resolve None.

        None means ``max(1, min(32, n_features // 4))`` (clipped to ``n_components``).
        """
        k = getattr(self, name)
        if k is None:
            return min(max(1, min(32, n_features // 4)), n_components)
        if not isinstance(k, Integral) or isinstance(k, bool) or k < 1:
            self._invalid(name, "an int >= 1 or None")
        if k > n_components:
            raise ValueError(
                f"{type(self).__name__}: {name}={k} is larger than n_components={n_components} "
                f"(the number of latents); use {name} <= {n_components} or more components."
            )
        return int(k)

    # ------------------------------------------------------------------ estimator hooks
    @property
    def sparse_scope(self) -> str | None:
        """'row' or 'batch' when the sparse training path applies (fixed top-k), else None."""
        return None

    @property
    def n_active(self) -> int | None:
        """The resolved number of active latents per row (None when it is not fixed)."""
        return None

    def build(self, n_features: int, n_components: int, batch_size: int | None = None) -> None:
        """Validate the hyper-parameters for this problem and allocate the state.

        Called once by the estimator on its own clone before training (resolves ``k=None``
        and allocates per-latent thresholds or statistics).

        Parameters
        ----------
        n_features : int
            Input dimension d.
        n_components : int
            Number of latents F.
        batch_size : int, default=None
            Training batch size (for rules that need ``k * batch_size >= F``).
        """

    def codes(
        self,
        pre: torch.Tensor,
        *,
        x_centered: torch.Tensor,
        decoder: torch.Tensor,
        k: int | None = None,
        grad: torch.Tensor | None = None,
        scores: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Codes of one batch: the training selection in train mode, the inference rule else.

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Pre-activations.
        x_centered : Tensor of shape (B, d)
            ``x - b_dec`` (used by norm-matching and pursuit variants).
        decoder : Tensor of shape (F, d)
            Decoder rows.
        k : int, default=None
            Overrides the number of active latents where the variant has one.
        grad : Tensor of shape (B, d), default=None
            Downstream gradients (used by :class:`GSAE`).
        scores : Tensor of shape (B, F), default=None
            Ranking scores (g-SAE); ignored by variants that do not rank latents.

        Returns
        -------
        z : Tensor of shape (B, F)
            Codes.
        """
        return self(pre)

    def extra_loss(
        self,
        sae: nn.Module,
        x: torch.Tensor,
        z: torch.Tensor,
        pre: torch.Tensor,
        var0: float,
        step: int,
        total_steps: int,
        sample_weight: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """The variant's own loss term added to the reconstruction loss (None: none).

        Parameters
        ----------
        sae : SparseAutoencoderModule
            The autoencoder (decoder, biases, ``decode``).
        x : Tensor of shape (B, d)
            The (scaled) batch.
        z : Tensor of shape (B, F)
            Its codes.
        pre : Tensor of shape (B, F)
            Its pre-activations.
        var0 : float
            The fixed data variance that normalises the reconstruction loss.
        step : int
            Optimiser steps taken so far (for warm-ups).
        total_steps : int
            Optimiser steps of this ``fit`` / ``partial_fit`` call.
        sample_weight : Tensor of shape (B,), default=None
            Row weights (mean 1 over the training set) of the per-row terms.

        Returns
        -------
        loss : scalar Tensor or None
            The term.
        """
        return None

    def aux_mask(self, since_fired: torch.Tensor, dead_after: int) -> torch.Tensor | None:
        """Latents trained by the auxiliary loss (dead or under-used), or None.

        Parameters
        ----------
        since_fired : LongTensor of shape (F,)
            Training rows since each latent last fired.
        dead_after : int
            Rows without firing after which a latent is dead.

        Returns
        -------
        mask : BoolTensor of shape (F,) or None
            None when the variant has no auxiliary loss.
        """
        if self.aux_loss == "auxk":
            return since_fired >= dead_after
        return None

    def update_statistics(self, counts: torch.Tensor, n_rows: int) -> None:
        """Update running statistics after a training batch (default: none).

        Parameters
        ----------
        counts : LongTensor of shape (F,)
            Number of rows of the batch in which each latent fired.
        n_rows : int
            Rows in the batch.
        """

    def after_step(self) -> None:
        """Project the variant's own parameters after an optimiser step (default: none)."""

    def inference_threshold(self) -> Any:
        """The inference threshold(s) as NumPy (scalar or (F,)), or None without any.

        Returns
        -------
        threshold : float, ndarray of shape (F,) or None
            Non-negative threshold(s).
        """
        return None

    def batch_gradients(self, x: torch.Tensor, grad: torch.Tensor | None) -> torch.Tensor | None:
        """Downstream gradients of a training batch (only :class:`GSAE` uses them).

        Parameters
        ----------
        x : Tensor of shape (B, d)
            The batch in input units.
        grad : Tensor of shape (B, d) or None
            Gradients given to ``fit`` (``sample_gradients``) for these rows.

        Returns
        -------
        grad : Tensor of shape (B, d) or None
            None: the variant ignores gradients.
        """
        return None

    def sparse_select(
        self,
        pre: torch.Tensor,
        *,
        k: int | None = None,
        grad: torch.Tensor | None = None,
        decoder: torch.Tensor | None = None,
        scores: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training selection as flat ``(rows, cols, offsets)`` (fixed top-k variants only).

        Parameters
        ----------
        pre : Tensor of shape (B, F)
            Pre-activations.
        k : int, default=None
            Overrides ``k``.
        grad : Tensor of shape (B, d), default=None
            Downstream gradients (g-SAE).
        decoder : Tensor of shape (F, d), default=None
            Decoder rows (g-SAE scores).
        scores : Tensor of shape (B, F), default=None
            Ranking scores.

        Returns
        -------
        rows, cols, offsets : LongTensor
            See :func:`~sparsestat.neural.layers.select_sparse`.
        """
        raise ValueError(f"{type(self).__name__} has no sparse training path")

    def update_sparse_threshold(self, values: torch.Tensor) -> None:
        """Update an inference threshold from the kept training values (default: none).

        Parameters
        ----------
        values : Tensor of shape (nnz,)
            Kept code values of a training batch.
        """


def weighted_mean(values: torch.Tensor, sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of per-row ``values``, weighted by ``sample_weight`` (normalised to mean 1).

    Parameters
    ----------
    values : Tensor of shape (B,)
        Per-row terms.
    sample_weight : Tensor of shape (B,), default=None
        Row weights divided by their mean over the training set (None: all 1).

    Returns
    -------
    mean : scalar Tensor
        ``mean(sample_weight * values)``.

    Examples
    --------
    >>> import torch
    >>> weighted_mean(torch.tensor([1.0, 3.0]), torch.tensor([0.5, 1.5]))
    tensor(2.5000)
    """
    if sample_weight is None:
        return values.mean()
    return (values * sample_weight.to(values.dtype)).mean()


class ThresholdMixin:
    """An inference threshold learnt by an exponential moving average of kept values.

    The buffer ``threshold`` (scalar, or (F,) when :meth:`_init_threshold` gets a size) is
    None until the first training batch (or :meth:`_init_threshold`), so that an unused
    activation holds no tensor (scikit-learn compares parameters by their pickles); a
    negative value means unset, and the first training batch sets it.
    """

    threshold_rate: float
    threshold: torch.Tensor | None

    def _init_threshold(self, size: int | None = None) -> None:
        shape = () if size is None else (int(size),)
        self.register_buffer("threshold", torch.full(shape, -1.0))  # type: ignore[attr-defined]

    def _threshold(self, like: torch.Tensor) -> torch.Tensor:
        """The threshold clamped at 0 (0 while unset)."""
        if self.threshold is None:
            return like.new_zeros(())
        return self.threshold.clamp_min(0)

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
        if self.threshold is None:
            self._init_threshold()
            self.threshold = self.threshold.to(values.device)
        assert self.threshold is not None
        low = kept.min().to(self.threshold.dtype)
        if float(self.threshold) < 0:
            self.threshold.copy_(low)
        else:
            self.threshold.lerp_(low, float(self.threshold_rate))

    def inference_threshold(self) -> Any:
        """The threshold as a non-negative float or array (0 while unset).

        Returns
        -------
        threshold : float or ndarray
            The learnt threshold(s).
        """
        if self.threshold is None:
            return 0.0
        t = self.threshold.detach().cpu().double().numpy().copy()
        return float(max(t, 0.0)) if t.ndim == 0 else t.clip(min=0.0)
