"""Sparse subspace variational inference (SSVI) for Bayesian neural networks.

Li, Miao, Qiu, Zhang, "Training Bayesian Neural Networks with Sparse Subspace Variational
Inference", ICLR 2024 (arXiv 2402.11025).
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from sparsestat.neural._base import BaseTorchEstimator, TorchClassifierMixin, TorchRegressorMixin
from sparsestat.neural.layers._mlp import get_activation
from sparsestat.neural.layers._ssvi import (
    DEFAULT_PRIOR_STD,
    DEFAULT_SIGMA_INIT,
    SSVI_CRITERIA,
    SparseBayesConv2d,
    SparseBayesLinear,
    SSVIScheduler,
)
from sparsestat.utils._compat import Interval, StrOptions
from sparsestat.utils._dask import is_dask_array, rowwise

__all__ = ["MeanFieldVIClassifier", "SSVIClassifier", "SSVIRegressor"]


class _SSVINet(nn.Module):
    """MLP (or small CNN + MLP head) of sparse mean-field Gaussian layers."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        hidden: tuple[int, ...],
        activation: str,
        density: float,
        exclude: frozenset[int],
        prior_std: float,
        sigma_init: float,
        image_shape: tuple[int, ...] | None = None,
        conv_channels: tuple[int, ...] = (),
        n_noise_params: int = 0,
    ) -> None:
        super().__init__()
        self.image_shape = image_shape
        kw = {"prior_std": prior_std, "sigma_init": sigma_init}
        convs: list[nn.Module] = []
        if image_shape is not None:
            c, h, w = image_shape
            for i, c_out in enumerate(conv_channels):
                dens = 1.0 if i in exclude else density
                convs.append(SparseBayesConv2d(c, c_out, 3, density=dens, **kw))
                c, h, w = c_out, h // 2, w // 2
            n_in = c * h * w
        self.convs = nn.ModuleList(convs)
        sizes = [n_in, *hidden, n_out]
        linears = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            dens = 1.0 if (i + len(convs)) in exclude else density
            linears.append(SparseBayesLinear(a, b, density=dens, **kw))
        self.linears = nn.ModuleList(linears)
        self.act = get_activation(activation)
        self.pool = nn.MaxPool2d(2)
        # log of the observation noise std (regression), in standardised units
        self.log_noise = nn.Parameter(torch.full((n_noise_params,), math.log(0.5)))

    @property
    def bayes_layers(self) -> list[nn.Module]:
        return [*self.convs, *self.linears]

    def kl(self) -> torch.Tensor:
        return sum(layer.kl() for layer in self.bayes_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.image_shape is not None:
            x = x.reshape(x.shape[0], *self.image_shape)
            for conv in self.convs:
                x = self.pool(self.act(conv(x)))
            x = x.flatten(1)
        for i, lin in enumerate(self.linears):
            x = lin(x)
            if i < len(self.linears) - 1:
                x = self.act(x)
        return x


class _SSVIBase(BaseTorchEstimator):
    """Shared SSVI machinery (module, loss, schedules, mask updates, MC prediction)."""

    _parameter_constraints: dict = {
        **BaseTorchEstimator._parameter_constraints,
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions({"relu", "tanh", "gelu", "sigmoid"})],
        "sparsity": [Interval(numbers.Real, 0, 1, closed="left")],
        "exclude_layers": ["array-like"],
        "criterion": [StrOptions(set(SSVI_CRITERIA))],
        "update_interval": [Interval(numbers.Integral, 1, None, closed="left")],
        "drop_fraction": [Interval(numbers.Real, 0, 1, closed="both")],
        "update_end": [Interval(numbers.Real, 0, 1, closed="both")],
        "kl_coef": [Interval(numbers.Real, 0, None, closed="left")],
        "kl_warmup_fraction": [Interval(numbers.Real, 0, 1, closed="both")],
        "prior_std": [Interval(numbers.Real, 0, None, closed="neither")],
        "sigma_init": [Interval(numbers.Real, 0, None, closed="neither")],
        "lr_sigma": [None, Interval(numbers.Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions({"cosine", "constant"})],
        "n_mc_samples": [Interval(numbers.Integral, 1, None, closed="left")],
        "image_shape": [None, tuple],
        "conv_channels": [tuple],
    }

    _update_masks = True
    _module_class = _SSVINet
    _auto_epochs = (50, 1000, 300)
    _renamed_params = {
        "kl_weight": "kl_coef",
        "drop_alpha": "drop_fraction",
        "t_end_fraction": "update_end",
        "dense_first_layer": ("exclude_layers", lambda dense: (0,) if dense else ()),
    }

    def _target_sparsity(self) -> float:
        return float(self.sparsity)

    def _n_noise_params(self) -> int:
        return 0

    # ---------------------------------------------------------------- module
    def _build_module(self, X: Any, y: Any) -> Any:
        hidden = tuple(int(h) for h in np.atleast_1d(self.hidden_layer_sizes))
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be positive; got {hidden}")
        image_shape = None
        if self.image_shape is not None:
            image_shape = tuple(int(s) for s in self.image_shape)
            if len(image_shape) == 2:
                image_shape = (1, *image_shape)
            if len(image_shape) != 3 or int(np.prod(image_shape)) != X.shape[1]:
                raise ValueError(
                    f"image_shape={self.image_shape} does not match n_features={X.shape[1]}"
                )
        density = 1.0 - self._target_sparsity()
        n_layers = len(tuple(self.conv_channels) if image_shape else ()) + len(hidden) + 1
        exclude = {int(i) for i in np.atleast_1d(self._renamed("exclude_layers")).astype(int)}
        bad = sorted(i for i in exclude if not -n_layers <= i < n_layers)
        if bad:
            raise ValueError(
                f"exclude_layers names layers {bad}, but the network has {n_layers} Bayesian "
                f"layers (0 to {n_layers - 1})."
            )
        return _SSVINet(
            X.shape[1],
            self.n_outputs_,
            hidden,
            self.activation,
            density,
            frozenset(i % n_layers for i in exclude),
            self.prior_std,
            self.sigma_init,
            image_shape,
            tuple(self.conv_channels),
            self._n_noise_params(),
            **self.get_routed_params("module"),
        )

    def _optimizer_param_groups(self) -> Any:
        layers = self.module_.bayes_layers
        rhos = [layer.rho for layer in layers]
        ids = {id(p) for p in rhos}
        rest = [p for p in self.module_.parameters() if id(p) not in ids]
        lr_sigma = self.lr if self.lr_sigma is None else self.lr_sigma
        return [{"params": rest}, {"params": rhos, "lr": lr_sigma, "weight_decay": 0.0}]

    # ---------------------------------------------------------------- schedules
    def _t(self) -> int:
        """1-based index of the current step within this fit call."""
        return self.n_steps_ - self._fit_start_step_ + 1

    def on_train_begin(self, n_epochs: int, steps_per_epoch: int) -> None:
        self._base_lrs = [g.get("initial_lr", g["lr"]) for g in self.optimizer_.param_groups]
        for g, lr in zip(self.optimizer_.param_groups, self._base_lrs):
            g["initial_lr"] = lr
        self._scheduler = SSVIScheduler(
            self.module_.bayes_layers,
            self.optimizer_,
            self.total_steps_,
            self.update_interval,
            self._renamed("drop_fraction"),
            self._renamed("update_end"),
            self.criterion,
        )
        self._kl_coef = self._renamed("kl_coef")
        continuing = self._partial_call or self.warm_start
        if not hasattr(self, "mask_history_") or not continuing or self.n_steps_ == 0:
            self.mask_history_ = [self._mask_record(self.n_steps_, 0)]

    def _kl_factor(self) -> float:
        if self._partial_call or self.kl_warmup_fraction == 0:
            return self._kl_coef
        warm = self.kl_warmup_fraction * self.total_steps_
        return self._kl_coef * min(self._t() / warm, 1.0)

    def _schedules_on(self) -> bool:
        return not self._partial_call and self._update_masks and self._target_sparsity() > 0

    def on_batch_begin(self, X: Any, y: Any) -> None:
        t = self._t()
        if self.lr_schedule == "cosine" and not self._partial_call:
            factor = 0.5 * (1.0 + math.cos(math.pi * (t - 1) / self.total_steps_))
            for g, lr in zip(self.optimizer_.param_groups, self._base_lrs):
                g["lr"] = lr * factor
        if self._schedules_on():
            self._scheduler.set_capture(self._scheduler.is_update_step(t))

    def _batch_loss(self, X: Any, y: Any, n_train: float, sample_weight: Any = None) -> Any:
        out = self.module_(X)
        kl = self.module_.kl() if self._kl_coef > 0 else out.new_zeros(())
        return self._task_loss(out, y, sample_weight) + self._kl_factor() * kl / n_train

    def on_batch_end(self, X: Any, y: Any, loss: Any) -> None:
        for layer in self.module_.bayes_layers:
            layer.apply_mask_()
        self._samples_seen_ = getattr(self, "_samples_seen_", 0) + int(X.shape[0])
        t = self.n_steps_ - self._fit_start_step_  # this step (already counted)
        if self._schedules_on() and self._scheduler.is_update_step(t):
            born = self._scheduler.update(t)
            self.mask_history_.append(self._mask_record(self.n_steps_, sum(born)))

    def _mask_record(self, step: int, n_changed: int) -> dict[str, Any]:
        counts = [int(layer.mask.sum()) for layer in self.module_.bayes_layers]
        return {"step": step, "n_active": sum(counts), "n_changed": n_changed}

    def on_epoch_end(self, epoch: int) -> dict[str, Any]:
        with torch.no_grad():
            kl = float(self.module_.kl())
        return {"kl": kl, "kl_factor": self._kl_factor()}

    def on_train_end(self) -> None:
        layers = self.module_.bayes_layers
        self.masks_ = [layer.mask.detach().cpu().numpy().copy() for layer in layers]
        self.n_active_params_ = [int(m.sum()) for m in self.masks_]
        self.n_active_ = int(sum(self.n_active_params_))
        numel = sum(m.size for m in self.masks_)
        self.density_ = 1.0 - self._target_sparsity()
        self.density_achieved_ = self.n_active_ / numel
        # forward mean + variance paths and backward (x3), 2 FLOPs per multiply-add
        seen = getattr(self, "_samples_seen_", 0)
        self.train_flops_estimate_ = float(2 * 2 * 3 * self.n_active_ * seen)
        self._scheduler = None

    # ---------------------------------------------------------------- Monte Carlo
    def _mc_forward(self, X: Any, n_samples: int, seed: int) -> Any:
        """Outputs of ``n_samples`` full weight draws, shape (n, S, n_outputs)."""
        layers = self.module_.bayes_layers
        outs = []
        try:
            for s in range(n_samples):
                for j, layer in enumerate(layers):
                    gen = torch.Generator(device=X.device)
                    gen.manual_seed(seed + 7919 * s + j)
                    layer.sampling, layer.noise_generator = "weights", gen
                outs.append(self.module_(X))
        finally:
            for layer in layers:
                layer.sampling, layer.noise_generator = None, None
        return torch.stack(outs, dim=1)

    def _mc(self, X: Any, n_samples: int | None, mc_seed: int | None, fn: Any) -> np.ndarray:
        check_is_fitted(self)
        S = self.n_mc_samples if n_samples is None else int(n_samples)
        if S < 1:
            raise ValueError(f"n_samples must be >= 1; got {n_samples}")
        seed = self._predict_seed() if mc_seed is None else int(mc_seed)
        return self._predict_batches(X, lambda xb: fn(self._mc_forward(xb, S, seed)))


_COMMON_PARAMS_DOC = """
    hidden_layer_sizes : tuple of int, default=(256, 256)
        Widths of the hidden layers (the head, after the convolutions for the CNN option).
    activation : {'relu', 'tanh', 'gelu', 'sigmoid'}, default='relu'
        Hidden activation.
    sparsity : float in [0, 1), default=0.9
        Fraction of weights off the mask in every sparsified layer; each keeps exactly
        ``numel - floor(sparsity * numel)`` active variational parameters (mean and
        standard deviation share the mask). ``density_ = 1 - sparsity``.
    exclude_layers : tuple of int, default=()
        Positions of Bayesian layers kept fully active (0 = the first; convolutions come
        first with the CNN option). ``(0,)`` is the paper's ResNet choice for its first
        convolution.
    criterion : {'magnitude', 'snr', 'e_abs', 'snr_abs', 'e_exp_abs', 'snr_exp_abs'}, \
default='snr_abs'
        Removal criterion (``snr_abs``: signal-to-noise ratio of ``|theta|``).
    update_interval : int, default=100
        Steps between mask updates (``Delta T``).
    drop_fraction : float, default=0.3
        Initial drop fraction of the cosine schedule.
    update_end : float, default=0.75
        Fraction of the training steps after which the mask is frozen.
    kl_coef : float, default=0.01
        Weight of ``KL / n_train`` in the loss: 1 is the ELBO per sample, the default 0.01
        is the paper's tempered ELBO (on digits the full ELBO underfits with this prior).
    kl_warmup_fraction : float, default=0.5
        The KL weight rises linearly over this fraction of the training steps.
    prior_std : float, default=1.0
        Standard deviation of the Gaussian prior ``N(0, prior_std^2)`` (1: the standard
        normal prior, also bayesian-torch's default).
    sigma_init : float, default=1e-3
        Initial posterior standard deviation.
    lr_sigma : float or None, default=0.03
        Learning rate of the ``rho`` (scale) parameters; None uses ``lr``. They get no
        weight decay.
    lr_schedule : {'cosine', 'constant'}, default='cosine'
        Learning-rate schedule over each ``fit`` call.
    n_mc_samples : int, default=32
        Monte-Carlo weight draws for prediction.
    image_shape : tuple or None, default=None
        ``(H, W)`` or ``(C, H, W)``: reshape rows to images and use the small CNN option
        (sparse Bayesian 3x3 convolutions, ReLU, 2x2 max-pooling, then the MLP head).
    conv_channels : tuple of int, default=(8, 16)
        Output channels of the convolutions (CNN option only).
    lr : float, default=1e-2
        Learning rate.
    batch_size : int, default=64
        Mini-batch size.
    max_epochs : int or "auto", default="auto"
        Training epochs; ``"auto"``: at least 50 epochs and 1000 optimiser steps, at most
        300 epochs (digits, 1,257 training rows in batches of 64: 50 epochs).
    optimizer : {'adam', 'adamw', 'sgd'} or torch.optim.Optimizer class, default='adam'
        Optimizer; further options route as ``optimizer__<name>`` (e.g.
        ``optimizer__weight_decay``), module options as ``module__<name>``.
    early_stopping : bool, default=False
        Stop when the loss on a held-out ``validation_fraction`` has not improved by
        ``tol`` for ``n_iter_no_change`` epochs (the schedules keep the planned length).
    validation_fraction : float, default=0.1
        Hold-out fraction for early stopping.
    n_iter_no_change : int, default=10
        Early stopping patience (epochs).
    tol : float, default=1e-4
        Minimal validation-loss improvement.
    warm_start : bool, default=False
        Continue from the previous fit.
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where to train.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, the random start mask, batches, the LRT noise and the
        Monte-Carlo draws (prediction is deterministic for an int seed).
    verbose : int, default=0
        Progress bar over epochs when > 0.
    **kwargs : dict
        Routed ``module__*`` / ``optimizer__*`` parameters. The former names
        ``kl_weight``, ``drop_alpha``, ``t_end_fraction`` and ``dense_first_layer`` still
        work for one release, with a ``FutureWarning``."""

_NOTES = """
    The variational posterior is ``q(theta) = prod_i [gamma_i N(mu_i, sigma_i^2) +
    (1 - gamma_i) delta_0]`` with a binary mask ``gamma`` of fixed size per layer; the
    forward pass in training uses the local reparameterisation trick; the loss is
    ``NLL + kl_coef * warmup(t) * KL / n_train`` with the KL over active weights only.
    Every ``update_interval`` steps until ``update_end`` of training, each layer drops
    ``floor(n_active * f(t))`` weights by the removal criterion and grows as many by the
    gradient magnitude of the effective mean weight (RigL-style), with
    ``f(t) = drop_fraction / 2 (1 + cos(pi t / T_end))``; new weights start at
    ``mu = 0`` and the mean surviving ``rho``; optimizer state is zeroed on changed
    entries. The active count is exact after every update and ``mu``, ``rho`` are exactly
    0 off the mask.

    Not specified by the paper, chosen here: the optimizer step is also taken on update
    steps (one step rule for every method); the MLP defaults (``prior_std=1``,
    ``sigma_init``, ``lr_sigma``, Adam), chosen on digits because the paper's values are for
    ResNet-18 with BatchNorm. A smaller prior scale makes the tempered KL a strong penalty
    on the few active weights of a sparse layer, which then predicts under-confidently. A
    validation-split search over ``kl_coef``, ``sigma_init``, ``update_interval``, epochs
    and ``n_mc_samples`` (``python benchmarks/ssvi_calibration_study.py``) found no setting
    better calibrated than a deterministic MLP on held-out digits, so these defaults stand.
    Train to convergence: under-trained networks are under-confident too. ``partial_fit``
    trains the current subspace (no mask update, constant learning rate, full KL weight).
    Prediction averages over ``n_mc_samples`` full weight draws, one per pass, fixed by
    ``random_state`` (so results do not depend on how rows are batched).

    ``sample_weight`` weights the likelihood term of each row (rows of weight 0 are left
    out) and the KL term is divided by the sum of the weights, so integer weights act as
    repeated rows; a repeated row draws its own noise, so the two fits agree in
    expectation, not draw for draw.

    Cost per step: two masked dense products per layer (mean and variance paths); the
    FLOP saving of the paper needs sparse kernels, ``train_flops_estimate_`` counts the
    active weights only."""

_ATTRIBUTES = """
    module_ : torch.nn.Module
        The fitted network.
    n_features_in_ : int
        Number of input features.
    masks_ : list of ndarray of bool
        Final mask of every Bayesian layer.
    n_active_params_ : list of int
        Active weights per layer (constant during training).
    n_active_ : int
        Total active weights.
    density_ : float
        ``1 - sparsity``.
    density_achieved_ : float
        ``n_active_`` over the number of weights (differs from ``density_`` by the
        per-layer rounding, and by dense layers).
    mask_history_ : list of dict
        ``step``, ``n_active``, ``n_changed`` at the start and after every mask update.
    train_flops_estimate_ : float
        Rough training FLOPs on active weights (mean + variance paths, forward + backward).
    n_iter_ : int
        Epochs run.
    n_steps_ : int
        Optimizer steps run.
    loss_curve_ : list of float
        Training loss per epoch.
    history_ : list of dict
        Per-epoch records (``train_loss``, ``lr``, ``kl``, ``kl_factor``, ...)."""


_SPARSE_ONLY = (
    "sparsity",
    "exclude_layers",
    "criterion",
    "update_interval",
    "drop_fraction",
    "update_end",
)


def _without(doc: str, names: tuple[str, ...]) -> str:
    """Drop the numpydoc entries of ``names`` from a parameter list."""
    entries = re.split(r"\n(?=    \S)", doc)
    keep = [e for e in entries if e.strip().split(" :")[0] not in names]
    return "\n".join(keep)


def _fill(doc: str, params: str = _COMMON_PARAMS_DOC) -> str:
    return (
        doc.replace("{params}", params)
        .replace("{notes}", _NOTES)
        .replace("{attributes}", _ATTRIBUTES)
    )


class SSVIClassifier(TorchClassifierMixin, ClassifierMixin, _SSVIBase):
    __doc__ = _fill(
        """Bayesian MLP classifier trained by sparse subspace variational inference.

    Mean-field Gaussian weights live on a coordinate-aligned sparse subspace of fixed size
    during the whole training; the subspace is updated by remove-and-add steps.

    Parameters
    ----------{params}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.{attributes}

    See Also
    --------
    MeanFieldVIClassifier : The same model with every weight active (dense VI).

    Notes
    -----{notes}

    References
    ----------
    .. [1] J. Li, Z. Miao, Q. Qiu, R. Zhang, "Training Bayesian Neural Networks with Sparse
       Subspace Variational Inference", ICLR 2024, arXiv:2402.11025.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sparsestat.neural import SSVIClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = SSVIClassifier(hidden_layer_sizes=(16,), sparsity=0.5, max_epochs=30,
    ...                      random_state=0).fit(X, y)
    >>> clf.density_, clf.predict_proba(X[:2]).shape
    (0.5, (2, 3))
    """
    )

    def __init__(
        self,
        hidden_layer_sizes=(256, 256),
        activation="relu",
        sparsity=0.9,
        exclude_layers=(),
        criterion="snr_abs",
        update_interval=100,
        drop_fraction=0.3,
        update_end=0.75,
        kl_coef=0.01,
        kl_warmup_fraction=0.5,
        prior_std=DEFAULT_PRIOR_STD,
        sigma_init=DEFAULT_SIGMA_INIT,
        lr_sigma=0.03,
        lr_schedule="cosine",
        n_mc_samples=32,
        image_shape=None,
        conv_channels=(8, 16),
        lr=1e-2,
        batch_size=64,
        max_epochs="auto",
        optimizer="adam",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        warm_start=False,
        device="auto",
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.sparsity = sparsity
        self.exclude_layers = exclude_layers
        self.criterion = criterion
        self.update_interval = update_interval
        self.drop_fraction = drop_fraction
        self.update_end = update_end
        self.kl_coef = kl_coef
        self.kl_warmup_fraction = kl_warmup_fraction
        self.prior_std = prior_std
        self.sigma_init = sigma_init
        self.lr_sigma = lr_sigma
        self.lr_schedule = lr_schedule
        self.n_mc_samples = n_mc_samples
        self.image_shape = image_shape
        self.conv_channels = conv_channels
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.optimizer = optimizer
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.warm_start = warm_start
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self._store_routed(kwargs)

    @rowwise(n_outputs=lambda est: len(est.classes_), dtype=lambda est, _: np.float64)
    def predict_proba(self, X: Any, n_samples: int | None = None, mc_seed: int | None = None):
        """Class probabilities averaged over Monte-Carlo weight draws (the same draws for
        every row, so a dask array gives the NumPy result block by block).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.
        n_samples : int or None, default=None
            Number of weight draws; None uses ``n_mc_samples``.
        mc_seed : int or None, default=None
            Seed of the draws; None uses one fixed by ``random_state``.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Mean softmax over the draws; rows sum to 1.
        """
        proba = self._mc(X, n_samples, mc_seed, lambda out: torch.softmax(out, -1).mean(1))
        return proba / proba.sum(axis=1, keepdims=True)

    def predict_uncertainty(self, X: Any, n_samples: int | None = None, mc_seed=None):
        """Predictive uncertainty and its decomposition.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.
        n_samples : int or None, default=None
            Number of weight draws; None uses ``n_mc_samples``.
        mc_seed : int or None, default=None
            Seed of the draws; None uses one fixed by ``random_state``.

        Returns
        -------
        uncertainty : dict of ndarray
            ``entropy`` (of the mean prediction, total uncertainty), ``expected_entropy``
            (mean entropy of the draws, aleatoric), ``mutual_info`` = their difference
            (epistemic, >= 0), each of shape (n_samples,), and ``std_proba`` of shape
            (n_samples, n_classes), the standard deviation of the probabilities over draws.
        """
        n_classes = len(self.classes_) if hasattr(self, "classes_") else 0
        probs = self._mc(
            X, n_samples, mc_seed, lambda out: torch.softmax(out, -1).flatten(1)
        ).reshape(-1, self.n_mc_samples if n_samples is None else int(n_samples), n_classes)
        mean = probs.mean(axis=1)
        entropy = -np.sum(mean * np.log(np.clip(mean, 1e-300, None)), axis=1)
        per_draw = -np.sum(probs * np.log(np.clip(probs, 1e-300, None)), axis=2)
        expected = per_draw.mean(axis=1)
        return {
            "entropy": entropy,
            "expected_entropy": expected,
            "mutual_info": np.maximum(entropy - expected, 0.0),
            "std_proba": probs.std(axis=1),
        }


class MeanFieldVIClassifier(SSVIClassifier):
    __doc__ = _fill(
        """Dense mean-field variational inference classifier (SSVI with every weight active).

    The same model, loss, schedules and random-number use as :class:`SSVIClassifier` at
    ``sparsity=0``, without mask updates: the dense-VI reference of the SSVI paper.

    Parameters
    ----------{params}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.{attributes}

    Notes
    -----
    Here ``sparsity`` is a fixed 0 (it is not a parameter); ``criterion``,
    ``update_interval``, ``drop_fraction``, ``update_end`` and ``exclude_layers`` do not
    apply and are not parameters either.
{notes}

    References
    ----------
    .. [1] C. Blundell, J. Cornebise, K. Kavukcuoglu, D. Wierstra, "Weight Uncertainty in
       Neural Networks", ICML 2015.
    .. [2] J. Li, Z. Miao, Q. Qiu, R. Zhang, "Training Bayesian Neural Networks with Sparse
       Subspace Variational Inference", ICLR 2024.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sparsestat.neural import MeanFieldVIClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MeanFieldVIClassifier(hidden_layer_sizes=(16,), max_epochs=30,
    ...                             random_state=0).fit(X, y)
    >>> clf.density_
    1.0
    """,
        _without(_COMMON_PARAMS_DOC, _SPARSE_ONLY),
    )
    _update_masks = False
    _parameter_constraints: dict = {
        k: v
        for k, v in _SSVIBase._parameter_constraints.items()
        if k
        not in {
            "sparsity",
            "criterion",
            "update_interval",
            "drop_fraction",
            "update_end",
            "exclude_layers",
        }
    }
    sparsity = 0.0
    criterion = "snr_abs"
    update_interval = 1
    drop_fraction = 0.0
    update_end = 0.0
    exclude_layers = ()

    def __init__(
        self,
        hidden_layer_sizes=(256, 256),
        activation="relu",
        kl_coef=0.01,
        kl_warmup_fraction=0.5,
        prior_std=DEFAULT_PRIOR_STD,
        sigma_init=DEFAULT_SIGMA_INIT,
        lr_sigma=0.03,
        lr_schedule="cosine",
        n_mc_samples=32,
        image_shape=None,
        conv_channels=(8, 16),
        lr=1e-2,
        batch_size=64,
        max_epochs="auto",
        optimizer="adam",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        warm_start=False,
        device="auto",
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.kl_coef = kl_coef
        self.kl_warmup_fraction = kl_warmup_fraction
        self.prior_std = prior_std
        self.sigma_init = sigma_init
        self.lr_sigma = lr_sigma
        self.lr_schedule = lr_schedule
        self.n_mc_samples = n_mc_samples
        self.image_shape = image_shape
        self.conv_channels = conv_channels
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.optimizer = optimizer
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.warm_start = warm_start
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self._store_routed(kwargs)

    def _target_sparsity(self) -> float:
        return 0.0


class SSVIRegressor(TorchRegressorMixin, RegressorMixin, _SSVIBase):
    __doc__ = _fill(
        """Bayesian MLP regressor trained by sparse subspace variational inference.

    As :class:`SSVIClassifier`, with a Gaussian likelihood whose homoscedastic noise level
    (one per output) is learned; targets are standardised internally.

    Parameters
    ----------{params}

    Attributes
    ----------
    noise_std_ : ndarray of shape (n_outputs,)
        Learned observation noise standard deviation, in the units of ``y``.{attributes}

    Notes
    -----{notes}

    References
    ----------
    .. [1] J. Li, Z. Miao, Q. Qiu, R. Zhang, "Training Bayesian Neural Networks with Sparse
       Subspace Variational Inference", ICLR 2024, arXiv:2402.11025.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sparsestat.neural import SSVIRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = SSVIRegressor(hidden_layer_sizes=(16,), sparsity=0.5, max_epochs=20,
    ...                     random_state=0).fit(X, y)
    >>> mean, std = reg.predict(X[:3], return_std=True)
    >>> mean.shape, bool((std > 0).all())
    ((3,), True)
    """
    )

    __init__ = SSVIClassifier.__init__

    def _n_noise_params(self) -> int:
        return self.n_outputs_

    def _task_loss(self, out: Any, y: Any, sample_weight: Any = None) -> Any:
        log_s = self.module_.log_noise
        nll = 0.5 * ((y - out) / log_s.exp()) ** 2 + log_s
        if sample_weight is None:
            return nll.mean() + 0.5 * math.log(2 * math.pi)
        return self._weighted_mean(nll.mean(dim=1), sample_weight) + 0.5 * math.log(2 * math.pi)

    def on_train_end(self) -> None:
        """Hook: record the fitted attributes, ``noise_std_`` included."""
        super().on_train_end()
        noise = self.module_.log_noise.detach().cpu().double().exp().numpy()
        self.noise_std_ = noise * self._y_scale_

    def predict(self, X: Any, return_std: bool = False, n_samples: int | None = None):
        """Posterior predictive mean (and standard deviation).

        A dask array ``X`` gives a lazy dask array of means, block by block (with
        ``return_std=True``, a tuple of two lazy arrays).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.
        return_std : bool, default=False
            Also return the predictive standard deviation
            ``sqrt(mean_s(sigma_y^2 + f_s^2) - mean_s(f_s)^2)`` in the units of ``y``.
        n_samples : int or None, default=None
            Number of weight draws; None uses ``n_mc_samples``.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictive mean.
        y_std : ndarray, same shape
            Predictive standard deviation (only with ``return_std=True``).
        """
        check_is_fitted(self)
        if is_dask_array(X):
            return self._predict_lazy(X, return_std, n_samples)
        k = self.n_outputs_
        S = self.n_mc_samples if n_samples is None else int(n_samples)
        draws = self._mc(X, S, None, lambda out: out.flatten(1)).reshape(-1, S, k)
        mean = draws.mean(axis=1) * self._y_scale_ + self._y_mean_
        if not return_std:
            return mean.ravel() if self._y_ndim_ == 1 else mean
        noise = np.exp(2 * self.module_.log_noise.detach().cpu().double().numpy())
        var = np.mean(noise + draws**2, axis=1) - draws.mean(axis=1) ** 2
        std = np.sqrt(np.maximum(var, 0.0)) * self._y_scale_
        if self._y_ndim_ == 1:
            return mean.ravel(), std.ravel()
        return mean, std

    @rowwise(n_outputs=lambda est: None if est._y_ndim_ == 1 else est.n_outputs_)
    def _predict_mean(self, X: Any, n_samples: int | None) -> np.ndarray:
        return self.predict(X, n_samples=n_samples)

    @rowwise(n_outputs=lambda est: None if est._y_ndim_ == 1 else est.n_outputs_)
    def _predict_std(self, X: Any, n_samples: int | None) -> np.ndarray:
        return self.predict(X, return_std=True, n_samples=n_samples)[1]

    def _predict_lazy(self, X: Any, return_std: bool, n_samples: int | None) -> Any:
        mean = self._predict_mean(X, n_samples)
        return (mean, self._predict_std(X, n_samples)) if return_std else mean
