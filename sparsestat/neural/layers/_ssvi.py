"""Sparse subspace variational inference layers and mask scheduler (public via ``layers``).

Li, Miao, Qiu, Zhang, "Training Bayesian Neural Networks with Sparse Subspace Variational
Inference", ICLR 2024.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sparsestat.utils._deprecation import warn_renamed

__all__ = [
    "SSVI_CRITERIA",
    "SSVIScheduler",
    "SparseBayesConv2d",
    "SparseBayesLinear",
    "folded_normal_moments",
    "ssvi_removal_score",
]

SSVI_CRITERIA = ("magnitude", "snr", "e_abs", "snr_abs", "e_exp_abs", "snr_exp_abs")
#: Defaults shared by the layers and the SSVI estimators (MLP values, not from the paper,
#: calibrated on digits; the paper's ResNet prior N(0, 0.005^2) penalises the few large active
#: weights of a sparse MLP too strongly).
DEFAULT_PRIOR_STD = 1.0
DEFAULT_SIGMA_INIT = 1e-3
_SQRT2 = math.sqrt(2.0)


def _inv_softplus(x: float) -> float:
    return x + math.log(-math.expm1(-x))


def folded_normal_moments(m: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of ``|theta|`` for ``theta ~ N(m, s^2)`` (the folded normal).

    Parameters
    ----------
    m : torch.Tensor
        Means.
    s : torch.Tensor
        Standard deviations (> 0).

    Returns
    -------
    mean, var : torch.Tensor
        ``E|theta| = m erf(m / (s sqrt 2)) + s sqrt(2/pi) exp(-m^2 / (2 s^2))`` and
        ``Var|theta| = m^2 + s^2 - (E|theta|)^2`` (clipped at 0).

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import folded_normal_moments
    >>> mean, var = folded_normal_moments(torch.tensor([0.0]), torch.tensor([1.0]))
    >>> round(float(mean), 6)  # sqrt(2/pi)
    0.797885
    """
    mean = m * torch.erf(m / (s * _SQRT2)) + s * math.sqrt(2.0 / math.pi) * torch.exp(
        -(m**2) / (2 * s**2)
    )
    var = torch.clamp(m**2 + s**2 - mean**2, min=0.0)
    return mean, var


def _log_mgf_abs(m: torch.Tensor, s: torch.Tensor, lam: float) -> torch.Tensor:
    """log E exp(lam |theta|), theta ~ N(m, s^2), evaluated in log space."""
    normal = torch.distributions.Normal(torch.zeros_like(m), torch.ones_like(m))
    base = 0.5 * lam**2 * s**2
    a = base + lam * m + torch.log(normal.cdf(m / s + lam * s).clamp_min(1e-300))
    b = base - lam * m + torch.log(normal.cdf(-m / s + lam * s).clamp_min(1e-300))
    return torch.logaddexp(a, b)


def ssvi_removal_score(
    m: torch.Tensor, s: torch.Tensor, criterion: str = "snr_abs", lam: float = 1.0
) -> torch.Tensor:
    """Removal score of SSVI: active weights with the lowest scores are dropped.

    Parameters
    ----------
    m : torch.Tensor
        Variational means.
    s : torch.Tensor
        Variational standard deviations.
    criterion : {'magnitude', 'snr', 'e_abs', 'snr_abs', 'e_exp_abs', 'snr_exp_abs'}
        ``|m|``, ``|m|/s``, ``E|theta|``, ``E|theta|/sd|theta|`` (default),
        ``E exp(lam|theta|)`` and its signal-to-noise ratio.
    lam : float, default=1.0
        The ``lambda`` of the exponential criteria.

    Returns
    -------
    score : torch.Tensor
        Same shape as ``m``; NaN scores are replaced by 0.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import ssvi_removal_score
    >>> ssvi_removal_score(torch.tensor([2.0, -2.0]), torch.tensor([1.0, 1.0]), "snr")
    tensor([2., 2.])
    """
    if criterion == "magnitude":
        score = m.abs()
    elif criterion == "snr":
        score = m.abs() / s
    elif criterion in ("e_abs", "snr_abs"):
        mean, var = folded_normal_moments(m, s)
        score = mean if criterion == "e_abs" else mean / torch.sqrt(var)
    elif criterion == "e_exp_abs":
        score = torch.exp(_log_mgf_abs(m, s, lam))
    elif criterion == "snr_exp_abs":
        l1 = _log_mgf_abs(m, s, lam)
        l2 = _log_mgf_abs(m, s, 2 * lam)
        # Var = E e^{2 lam|t|} - (E e^{lam|t|})^2 ; score = exp(l1) / sqrt(Var)
        log_var = l2 + torch.log(-torch.expm1(torch.clamp(2 * l1 - l2, max=-1e-12)))
        score = torch.exp(l1 - 0.5 * log_var)
    else:
        raise ValueError(f"criterion must be one of {SSVI_CRITERIA}; got {criterion!r}")
    return torch.nan_to_num(score, nan=0.0)


class _SparseBayesMixin(nn.Module):
    """Masked mean-field Gaussian weights; subclasses define ``_op(x, weight, bias)``."""

    mask: torch.Tensor

    def _init_bayes(
        self,
        shape: Sequence[int],
        fan_in: int,
        n_out: int,
        density: float,
        prior_std: float,
        sigma_init: float,
    ) -> None:
        self.mu = nn.Parameter(torch.empty(*shape))
        nn.init.kaiming_uniform_(self.mu, a=math.sqrt(5))
        self.rho = nn.Parameter(torch.full(tuple(shape), _inv_softplus(sigma_init)))
        bound = 1.0 / math.sqrt(fan_in)
        self.bias = nn.Parameter(torch.empty(n_out).uniform_(-bound, bound))
        self.prior_std = float(prior_std)
        numel = self.mu.numel()
        self.n_active = max(1, numel - math.floor((1.0 - density) * numel))
        mask = torch.ones(numel, dtype=torch.bool)
        if self.n_active < numel:
            mask[:] = False
            mask[torch.randperm(numel)[: self.n_active]] = True
        self.register_buffer("mask", mask.view(tuple(shape)))
        self.sampling: str | None = None  # None: 'lrt' in train mode, 'mean' in eval mode
        self.noise_generator: torch.Generator | None = None
        self.capture_grad = False
        self.mean_weight: torch.Tensor | None = None
        self.apply_mask_()

    @property
    def sigma(self) -> torch.Tensor:
        """Standard deviations ``softplus(rho)`` (masked: exactly 0 off the mask)."""
        return F.softplus(self.rho) * self.mask

    @torch.no_grad()
    def apply_mask_(self) -> None:
        """Set ``mu`` and ``rho`` to exactly 0 off the mask."""
        self.mu.mul_(self.mask)
        self.rho.mul_(self.mask)

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, prior_std^2)) summed over the active weights only."""
        # elementwise with ``where`` (no gather / scatter in the backward pass); inactive
        # entries are replaced by 0 before any operation, so they never reach the sum
        mask = self.mask
        zero = torch.zeros((), dtype=self.rho.dtype, device=self.rho.device)
        sigma = F.softplus(torch.where(mask, self.rho, zero))
        mu = torch.where(mask, self.mu, zero)
        p = self.prior_std
        term = (sigma**2 + mu**2) / (2 * p**2) - torch.log(sigma) + (math.log(p) - 0.5)
        return torch.where(mask, term, zero).sum()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Local-reparameterisation pass (``sampling='lrt'``), mean pass or a weight draw."""
        w_mean = self.mu * self.mask
        if self.capture_grad and w_mean.requires_grad:
            w_mean.retain_grad()
            self.mean_weight = w_mean
        mode = self.sampling or ("lrt" if self.training else "mean")
        if mode == "mean":
            return self._op(x, w_mean, self.bias)
        sigma = F.softplus(self.rho) * self.mask
        if mode == "weights":
            eps = torch.randn(
                sigma.shape, generator=self.noise_generator, device=x.device, dtype=x.dtype
            )
            return self._op(x, w_mean + sigma * eps, self.bias)
        mean = self._op(x, w_mean, self.bias)
        var = self._op(x * x, sigma * sigma, None)
        return mean + torch.sqrt(var + 1e-8) * torch.randn_like(mean)

    def _op(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError


class SparseBayesLinear(_SparseBayesMixin):
    """Mean-field Gaussian linear layer whose weights live on a fixed-size sparse mask.

    Parameters
    ----------
    in_features : int
        Input width.
    out_features : int
        Output width.
    density : float, default=1.0
        Fraction of active weights; the layer keeps exactly
        ``numel - floor((1 - density) numel)`` active weights (a random mask at start).
    prior_std : float, default=1.0
        Standard deviation of the Gaussian prior N(0, prior_std^2) (the default of the SSVI
        estimators).
    sigma_init : float, default=1e-3
        Initial posterior standard deviation (``rho = softplus^-1(sigma_init)``).

    Attributes
    ----------
    mu, rho : torch.nn.Parameter
        Means and pre-softplus scales, exactly 0 off the mask.
    bias : torch.nn.Parameter
        Deterministic bias.
    mask : torch.Tensor of bool
        The active set (a buffer, saved in ``state_dict``).
    n_active : int
        The fixed number of active weights.
    sampling : {None, 'lrt', 'mean', 'weights'}
        Forward mode: None (default) uses local reparameterisation in train mode and the
        mean weights in eval mode; ``'weights'`` makes one full weight draw from
        ``noise_generator``.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import SparseBayesLinear
    >>> layer = SparseBayesLinear(10, 4, density=0.25)
    >>> int(layer.mask.sum()), layer(torch.ones(3, 10)).shape
    (10, torch.Size([3, 4]))
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        density: float = 1.0,
        prior_std: float = DEFAULT_PRIOR_STD,
        sigma_init: float = DEFAULT_SIGMA_INIT,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._init_bayes(
            (out_features, in_features), in_features, out_features, density, prior_std, sigma_init
        )

    def _op(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return F.linear(x, w, b)


class SparseBayesConv2d(_SparseBayesMixin):
    """Mean-field Gaussian 2-D convolution on a fixed-size sparse mask (same rules as
    :class:`SparseBayesLinear`; LRT with ``conv(x^2, sigma^2)`` for the variance).

    Parameters
    ----------
    in_channels : int
        Input channels.
    out_channels : int
        Output channels.
    kernel_size : int, default=3
        Square kernel size (``padding=kernel_size // 2``).
    density : float, default=1.0
        Fraction of active weights.
    prior_std : float, default=1.0
        Prior standard deviation (the default of the SSVI estimators).
    sigma_init : float, default=1e-3
        Initial posterior standard deviation.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import SparseBayesConv2d
    >>> SparseBayesConv2d(1, 4, density=0.5)(torch.ones(2, 1, 8, 8)).shape
    torch.Size([2, 4, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        density: float = 1.0,
        prior_std: float = DEFAULT_PRIOR_STD,
        sigma_init: float = DEFAULT_SIGMA_INIT,
    ) -> None:
        super().__init__()
        self.padding = kernel_size // 2
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        fan_in = in_channels * kernel_size * kernel_size
        self._init_bayes(shape, fan_in, out_channels, density, prior_std, sigma_init)

    def _op(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return F.conv2d(x, w, b, padding=self.padding)


class SSVIScheduler:
    """The SSVI remove-and-add mask update (RigL-style schedule), for sparse Bayes layers.

    Every ``update_interval`` steps while ``t < T_end = update_end * total_steps``, each
    layer drops ``n_drop = floor(n_act f(t))`` active weights with the lowest removal score
    (:func:`ssvi_removal_score`), ``f(t) = drop_fraction / 2 (1 + cos(pi t / T_end))``, and
    grows
    the same number with the largest gradient magnitude of the loss w.r.t. the effective mean
    weight, among positions not kept. Newly activated weights start at ``mu = 0`` and ``rho`` =
    the mean ``rho`` of the weights active before and after; optimizer state (momentum, Adam
    moments) is zeroed on every changed entry. The active count never changes.

    Parameters
    ----------
    layers : sequence of SparseBayesLinear or SparseBayesConv2d
        The layers whose masks are updated.
    optimizer : torch.optim.Optimizer
        Its per-parameter state is reset on changed entries.
    total_steps : int
        Planned number of training steps.
    update_interval : int, default=100
        Steps between mask updates (``Delta T``).
    drop_fraction : float, default=0.3
        Initial drop fraction.
    update_end : float, default=0.75
        No update after this fraction of the training steps.
    criterion : str, default='snr_abs'
        Removal criterion.
    **kwargs : dict
        The former names ``drop_alpha`` and ``t_end_fraction`` (one release, with a
        ``FutureWarning``).

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import SSVIScheduler, SparseBayesLinear
    >>> layer = SparseBayesLinear(6, 5, density=0.4)
    >>> opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    >>> sched = SSVIScheduler([layer], opt, total_steps=1000)
    >>> sched.is_update_step(100), sched.is_update_step(101), sched.is_update_step(800)
    (True, False, False)
    """

    def __init__(
        self,
        layers: Sequence[_SparseBayesMixin],
        optimizer: Any,
        total_steps: int,
        update_interval: int = 100,
        drop_fraction: float = 0.3,
        update_end: float = 0.75,
        criterion: str = "snr_abs",
        **kwargs: Any,
    ) -> None:
        for old, new in (("drop_alpha", "drop_fraction"), ("t_end_fraction", "update_end")):
            if old in kwargs:
                warn_renamed(old, new, "SSVIScheduler", stacklevel=3)
                if new == "drop_fraction":
                    drop_fraction = kwargs.pop(old)
                else:
                    update_end = kwargs.pop(old)
        if kwargs:
            raise TypeError(f"SSVIScheduler got unexpected arguments {sorted(kwargs)}")
        self.layers = list(layers)
        self.optimizer = optimizer
        self.update_interval = int(update_interval)
        self.drop_fraction = float(drop_fraction)
        self.t_end = update_end * total_steps
        self.criterion = criterion

    def is_update_step(self, t: int) -> bool:
        """Whether step ``t`` updates the masks.

        Parameters
        ----------
        t : int
            Step, 1-based, counted from the start of training.

        Returns
        -------
        update : bool
            ``0 < t < T_end`` and ``t`` is a multiple of ``update_interval``.
        """
        return 0 < t < self.t_end and t % self.update_interval == 0

    def drop_fraction_at(self, t: int) -> float:
        """Cosine drop fraction.

        Parameters
        ----------
        t : int
            Step.

        Returns
        -------
        f : float
            ``drop_fraction / 2 (1 + cos(pi t / T_end))``.
        """
        return self.drop_fraction / 2.0 * (1.0 + math.cos(math.pi * t / self.t_end))

    def set_capture(self, on: bool) -> None:
        """Ask the layers to keep (or stop keeping) the gradient of their mean weight.

        Parameters
        ----------
        on : bool
            Keep the dense gradient of ``mu * mask`` on the next backward pass.
        """
        for layer in self.layers:
            layer.capture_grad = on
            if not on:
                layer.mean_weight = None

    @torch.no_grad()
    def update(self, t: int) -> list[int]:
        """Update every layer's mask at step ``t``.

        Parameters
        ----------
        t : int
            Current step (sets the drop fraction).

        Returns
        -------
        n_new : list of int
            Newly activated weights per layer.
        """
        frac = self.drop_fraction_at(t)
        changed = []
        for layer in self.layers:
            grad = None if layer.mean_weight is None else layer.mean_weight.grad
            if grad is None:
                grad = torch.zeros_like(layer.mu)
            changed.append(self.update_layer(layer, grad, frac))
        self.set_capture(False)
        return changed

    @torch.no_grad()
    def update_layer(self, layer: _SparseBayesMixin, grad: torch.Tensor, frac: float) -> int:
        """Drop and grow on one layer.

        Parameters
        ----------
        layer : SparseBayesLinear or SparseBayesConv2d
            The layer (modified in place, with the optimizer state).
        grad : torch.Tensor
            Dense gradient of the loss w.r.t. the effective mean weight.
        frac : float
            Drop fraction ``f(t)``.

        Returns
        -------
        n_new : int
            Number of newly activated weights.
        """
        old = layer.mask.reshape(-1).clone()
        n_act = int(old.sum())
        n_drop = math.floor(n_act * frac)
        if n_drop == 0 or n_act == old.numel():
            return 0
        n_keep = n_act - n_drop
        sigma = F.softplus(layer.rho).reshape(-1)
        score = ssvi_removal_score(layer.mu.reshape(-1), sigma, self.criterion)
        score = torch.where(old, score, torch.full_like(score, -math.inf))
        keep_idx = torch.topk(score, n_keep, sorted=False).indices
        keep = torch.zeros_like(old)
        keep[keep_idx] = True
        g = grad.reshape(-1).abs().to(score.dtype)
        g = torch.where(keep, torch.full_like(g, -math.inf), g)
        grow_idx = torch.topk(g, n_drop, sorted=False).indices
        new = keep.clone()
        new[grow_idx] = True
        born = new & ~old
        rho = layer.rho.view(-1)
        mu = layer.mu.view(-1)
        both = old & new
        if born.any():
            mu[born] = 0.0
            rho[born] = rho[both].mean() if both.any() else rho[old].mean()
        layer.mask.copy_(new.view_as(layer.mask))
        layer.apply_mask_()
        changed = (old ^ new).view_as(layer.mask)
        for p in (layer.mu, layer.rho):
            for value in self.optimizer.state.get(p, {}).values():
                if torch.is_tensor(value) and value.shape == p.shape:
                    value[changed] = 0.0
        return int(born.sum())
