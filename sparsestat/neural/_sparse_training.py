"""Sparse multilayer perceptrons trained sparse from scratch (N:M and unstructured)."""

from __future__ import annotations

import copy
import math
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from sparsestat.neural import import_torch
from sparsestat.neural._base import BaseTorchEstimator, TorchClassifierMixin, TorchRegressorMixin
from sparsestat.neural.layers._mlp import get_activation
from sparsestat.neural.layers._sparse import (
    SET,
    AdamS,
    MaskedLinear,
    NMSparseLinear,
    PGFSchedule,
    RigL,
    StaticMask,
    TopKActivation,
    erk_densities,
    sparse_ift_widths,
    uniform_densities,
)
from sparsestat.utils._compat import Interval, StrOptions

torch = import_torch()
nn = torch.nn

__all__ = ["SparseMLPClassifier", "SparseMLPRegressor"]

_NM_METHODS = ("ste", "sr-ste", "pgf", "cast")
_UNSTRUCTURED_METHODS = ("static", "random", "set", "rigl")


class _SparseMLPModule(nn.Module):
    """Parallel branches of ``Linear -> activation`` stacks whose outputs are summed."""

    def __init__(self, branches, activation, activation_topk):
        super().__init__()
        self.branches = nn.ModuleList(nn.ModuleList(layers) for layers in branches)
        n_hidden = len(branches[0]) - 1
        self.acts = nn.ModuleList(
            TopKActivation(activation_topk)
            if activation_topk is not None
            else get_activation(activation)
            for _ in range(n_hidden)
        )

    def linears(self):
        return [layer for branch in self.branches for layer in branch]

    def forward_hidden(self, x):
        out, hidden = 0.0, []
        for branch in self.branches:
            h = x
            for i, layer in enumerate(branch):
                h = layer(h)
                if i < len(branch) - 1:
                    h = self.acts[i](h)
                    hidden.append(h)
            out = out + h
        return out, hidden

    def forward(self, x):
        return self.forward_hidden(x)[0]


_PARAMS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(128,)
        Hidden widths (before any ``iso_flop`` widening).
    activation : {"relu", "tanh", "gelu"}, default="relu"
        Hidden activation.
    method : {"static", "random", "set", "rigl", "ste", "sr-ste", "pgf", "cast", "dense"}, \
default="static"
        How the sparse network is trained. Unstructured: ``"static"`` (= ``"random"``, a fixed
        random mask at the ``density_init`` layer densities), ``"set"`` (magnitude drop, random
        growth, once per ``update_interval``), ``"rigl"`` (magnitude drop, gradient growth,
        cosine-decayed drop fraction until ``update_end``). N:M: ``"ste"``, ``"sr-ste"``
        (straight-through / sparse-refined STE), ``"pgf"`` (progressive gradient flow) and
        ``"cast"`` (continuous training with :class:`AdamS` and a learnable scale).
        ``"dense"`` trains a plain MLP (baseline).
    pattern : {"unstructured", "n:m"} or None, default=None
        Sparsity pattern; None infers it from ``method``. A pattern that contradicts the
        method raises ``ValueError``.
    sparsity : float in [0, 1) or None, default=None
        Fraction of zero weights. None means 0.9 (unstructured) or ``1 - n/m`` (N:M, where
        any other value is an error).
    n : int, default=2
        Weights kept per group of ``m`` (N:M).
    m : int, default=4
        Group length along the input dimension (N:M).
    density_init : {"erk", "uniform"}, default="erk"
        Layer-wise density rule for unstructured masks.
    dense_first_layer : bool, default=False
        Keep the first layer dense (RigL's uniform setting).
    update_interval : int or None, default=None
        Steps between SET / RigL mask updates; None means one epoch.
    drop_fraction : float or None, default=None
        Drop fraction; None means 0.3 (SET: constant; RigL: initial value of the cosine).
    update_end : float, default=0.75
        Fraction of the total steps after which RigL stops updating masks.
    growth : {"random", "gradient", "momentum"} or None, default=None
        Growth score; None means random for SET and gradient for RigL.
    set_drop : {"magnitude", "signed"}, default="magnitude"
        SET drop rule: smallest ``|w|``, or the original per-sign rule.
    srste_lambda : float, default=2e-4
        SR-STE decay of pruned weights.
    pgf_decay : {"exp", "linear", "step"}, default="exp"
        MDGF decay of the pruned-weight factor.
    pgf_decay_coef : float or "auto", default="auto"
        MDGF rate; "auto" reaches 0.01 after 10% of the sparse phase.
    pgf_structure : {"stepwise", "geometric"} or None, default=None
        Use structure-decay gradient flow (SDGF) instead of MDGF.
    pgf_backward : {"ste", "scaled"}, default="ste"
        MDGF gradient to pruned weights: unchanged, or scaled like the forward.
    dense_fraction : float, default=0.0
        PGF: fraction of steps trained dense first.
    finetune_fraction : float, default=0.0
        PGF: fraction of final steps with the hard target mask.
    cast_lambda : float, default=1e-3
        CAST: maximum L1 decay of pruned weights in :class:`AdamS`.
    cast_update_every : int, default=10
        CAST: steps between mask recomputations.
    cast_warmup : float, default=0.3
        CAST: fraction of steps over which the decay ramps up.
    iso_flop : {"wide", "parallel"} or None, default=None
        Sparse Iso-FLOP transformation (unstructured only): widen the hidden layers by
        ``1/sqrt(1-s)`` or use ``round(1/(1-s))`` parallel branches, keeping the number of
        nonzero weights equal to the dense base network's weight count.
    activation_topk : int, float or None, default=None
        Replace the activation by ReLU followed by keeping the top-k units per sample.
    exclude_layers : tuple of int, default=()
        Layer positions (0 = first) kept dense.
    lr : float, default=1e-3
        Learning rate.
    batch_size : int, default=64
        Mini-batch size.
    max_epochs : int, default=50
        Epochs.
    optimizer : {"adam", "adamw", "sgd"} or optimizer class, default="adam"
        Optimizer (``method="cast"`` always uses :class:`AdamS`); tune its other settings
        with ``optimizer__<name>``, e.g. ``optimizer__weight_decay``.
    validation_fraction : float or None, default=None
        Hold-out fraction for early stopping (None: no early stopping).
    n_iter_no_change : int, default=10
        Early-stopping patience in epochs.
    tol : float, default=1e-4
        Minimal improvement of the validation loss.
    warm_start : bool, default=False
        Continue from the previous fit.
    random_state : int, RandomState instance or None, default=None
        Seed of initialisation, batches and growth.
    mask_random_state : int, RandomState instance or None, default=None
        Seed of the initial random masks (defaults to a draw from ``random_state``), so that
        mask and weights can be searched independently (e.g. ``RandomizedSearchCV``).
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to train.
    verbose : int, default=0
        Progress bar over epochs when > 0.
    **kwargs : dict
        Routed ``optimizer__*`` / ``module__*`` parameters.
"""

_ATTRS_DOC = """
    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network (N:M layers finalised: weights exactly N:M).
    masks_ : list of ndarray of bool
        Active weights of every linear layer (all True for dense layers), input to output
        (branch by branch with ``iso_flop="parallel"``).
    layer_densities_ : list of float
        Target density of every layer.
    density_ : list of float
        Achieved fraction of nonzero weights of every layer.
    sparsity_ : float
        Achieved fraction of zero weights over all layers.
    sparse_layers_ : list of int
        Indices (into ``masks_``) of the sparse layers.
    dense_layers_ : list of int
        Indices of the layers kept dense.
    mask_flips_ : list of int
        Mask entries that changed during each epoch (sparse architecture divergence).
    nnz_history_ : list of int
        Nonzero weights after each epoch.
    n_iter_ : int
        Epochs run.
    n_steps_ : int
        Optimizer steps run.
    loss_curve_ : list of float
        Mean training loss per epoch.
    history_ : list of dict
        Per-epoch records (loss, ``mask_flips``, ``nnz``).
    n_features_in_ : int
        Number of input features.
"""

_NOTES_DOC = """
    Notes
    -----
    Step order: forward, backward, mask hook (RigL reads the dense gradient, then gradients
    of inactive weights are zeroed), optimizer step, masks re-applied and drop / grow on
    update steps. Unstructured layers run on the dense weight with inactive entries kept
    exactly 0 (so RigL sees dense gradients); budgets are exact per layer. N:M layers keep
    the dense weight during training and recompute the mask every forward; at the end of
    every ``fit`` / ``partial_fit`` the weights are pruned to exact N:M. A first layer whose
    input size is not a multiple of ``m`` stays dense (with a warning); other layers must
    be divisible. [inferred]: the PGF 'auto' rate, CAST's update (see :class:`AdamS`), the
    Sparse-IFT adaptation to MLPs, ``pattern=None`` inference, and the mask-flip count as
    the measure of SR-STE's sparse architecture divergence. ``partial_fit`` schedules use
    ``max_epochs`` epochs as the horizon; no mask updates happen past it. The optimizer does
    not see RigL's skipped step of the TensorFlow reference: it steps on update steps too.
    Cost per epoch: that of the dense network (masks do not save compute on CPU).

    References
    ----------
    Zhou et al., "Learning N:M Fine-grained Structured Sparse Neural Networks From Scratch",
    ICLR 2021. Bambhaniya et al., "Progressive Gradient Flow for Robust N:M Sparsity Training
    in Transformers", 2024. Huang et al., "CAST", 2025. Liu et al., "The Unreasonable
    Effectiveness of Random Pruning", ICLR 2022. Evci et al., "Rigging the Lottery", ICML
    2020. Mocanu et al., Nature Communications 2018 (SET). Thangarasa et al., "Sparse
    Iso-FLOP Transformations", 2023. Li et al., "The Lazy Neuron Phenomenon", ICLR 2023.
"""


class _SparseMLPBase(BaseTorchEstimator):
    _parameter_constraints: dict = {
        **BaseTorchEstimator._parameter_constraints,
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions({"relu", "tanh", "gelu"})],
        "method": [StrOptions({*_NM_METHODS, *_UNSTRUCTURED_METHODS, "dense"})],
        "pattern": [StrOptions({"unstructured", "n:m"}), None],
        "sparsity": [Interval(Real, 0, 1, closed="left"), None],
        "n": [Interval(Integral, 1, None, closed="left")],
        "m": [Interval(Integral, 2, None, closed="left")],
        "density_init": [StrOptions({"erk", "uniform"})],
        "dense_first_layer": ["boolean"],
        "update_interval": [Interval(Integral, 1, None, closed="left"), None],
        "drop_fraction": [Interval(Real, 0, 1, closed="both"), None],
        "update_end": [Interval(Real, 0, 1, closed="both")],
        "growth": [StrOptions({"random", "gradient", "momentum"}), None],
        "set_drop": [StrOptions({"magnitude", "signed"})],
        "srste_lambda": [Interval(Real, 0, None, closed="left")],
        "pgf_decay": [StrOptions({"exp", "linear", "step"})],
        "pgf_decay_coef": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "pgf_structure": [StrOptions({"stepwise", "geometric"}), None],
        "pgf_backward": [StrOptions({"ste", "scaled"})],
        "dense_fraction": [Interval(Real, 0, 1, closed="both")],
        "finetune_fraction": [Interval(Real, 0, 1, closed="both")],
        "cast_lambda": [Interval(Real, 0, None, closed="left")],
        "cast_update_every": [Interval(Integral, 1, None, closed="left")],
        "cast_warmup": [Interval(Real, 0, 1, closed="both")],
        "iso_flop": [StrOptions({"wide", "parallel"}), None],
        "activation_topk": [Interval(Real, 0, None, closed="neither"), None],
        "exclude_layers": ["array-like"],
        "mask_random_state": ["random_state"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(128,),
        activation="relu",
        method="static",
        pattern=None,
        sparsity=None,
        n=2,
        m=4,
        density_init="erk",
        dense_first_layer=False,
        update_interval=None,
        drop_fraction=None,
        update_end=0.75,
        growth=None,
        set_drop="magnitude",
        srste_lambda=2e-4,
        pgf_decay="exp",
        pgf_decay_coef="auto",
        pgf_structure=None,
        pgf_backward="ste",
        dense_fraction=0.0,
        finetune_fraction=0.0,
        cast_lambda=1e-3,
        cast_update_every=10,
        cast_warmup=0.3,
        iso_flop=None,
        activation_topk=None,
        exclude_layers=(),
        lr=1e-3,
        batch_size=64,
        max_epochs=50,
        optimizer="adam",
        validation_fraction=None,
        n_iter_no_change=10,
        tol=1e-4,
        warm_start=False,
        random_state=None,
        mask_random_state=None,
        device="auto",
        verbose=0,
        **kwargs,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.method = method
        self.pattern = pattern
        self.sparsity = sparsity
        self.n = n
        self.m = m
        self.density_init = density_init
        self.dense_first_layer = dense_first_layer
        self.update_interval = update_interval
        self.drop_fraction = drop_fraction
        self.update_end = update_end
        self.growth = growth
        self.set_drop = set_drop
        self.srste_lambda = srste_lambda
        self.pgf_decay = pgf_decay
        self.pgf_decay_coef = pgf_decay_coef
        self.pgf_structure = pgf_structure
        self.pgf_backward = pgf_backward
        self.dense_fraction = dense_fraction
        self.finetune_fraction = finetune_fraction
        self.cast_lambda = cast_lambda
        self.cast_update_every = cast_update_every
        self.cast_warmup = cast_warmup
        self.iso_flop = iso_flop
        self.activation_topk = activation_topk
        self.exclude_layers = exclude_layers
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.optimizer = optimizer
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.warm_start = warm_start
        self.random_state = random_state
        self.mask_random_state = mask_random_state
        self.device = device
        self.verbose = verbose
        self._store_routed(kwargs)

    # ------------------------------------------------------------------ configuration
    def _resolved(self):
        """Validated (pattern, sparsity, hidden sizes) for the current parameters."""
        nm = self.method in _NM_METHODS
        pattern = self.pattern or ("n:m" if nm else "unstructured")
        if self.method != "dense" and (pattern == "n:m") != nm:
            raise ValueError(
                f"method={self.method!r} needs pattern="
                f"{'n:m' if nm else 'unstructured'!r}; got pattern={self.pattern!r}."
            )
        hidden = tuple(int(h) for h in np.atleast_1d(np.asarray(self.hidden_layer_sizes)))
        if not hidden or min(hidden) < 1:
            raise ValueError(f"hidden_layer_sizes must be positive; got {self.hidden_layer_sizes}.")
        if self.method == "dense":
            return "dense", 0.0, hidden
        if nm:
            if not 1 <= self.n < self.m:
                raise ValueError(f"N:M needs 1 <= n < m; got n={self.n}, m={self.m}.")
            target = 1 - self.n / self.m
            if self.sparsity is not None and not math.isclose(self.sparsity, target):
                raise ValueError(
                    f"With N:M sparsity the sparsity is 1 - n/m = {target}; got "
                    f"sparsity={self.sparsity}. Leave sparsity=None."
                )
            if self.iso_flop is not None:
                raise ValueError("iso_flop is defined for unstructured sparsity only.")
            return "n:m", target, hidden
        sparsity = 0.9 if self.sparsity is None else float(self.sparsity)
        return "unstructured", sparsity, hidden

    # ------------------------------------------------------------------ module
    def _build_module(self, X, y):
        pattern, sparsity, hidden = self._resolved()
        n_in, n_out = X.shape[1], self.n_outputs_
        n_branches = 1
        if self.iso_flop is not None:
            base_sizes = [n_in, *hidden, n_out]
            base_count = sum(a * b for a, b in zip(base_sizes[:-1], base_sizes[1:]))
            hidden, n_branches = sparse_ift_widths(hidden, sparsity, self.iso_flop)
        sizes = [n_in, *hidden, n_out]
        shapes = [(b, a) for a, b in zip(sizes[:-1], sizes[1:])] * n_branches
        n_layers = len(sizes) - 1
        position = [i % n_layers for i in range(len(shapes))]
        excluded = {int(i) % n_layers for i in np.atleast_1d(self.exclude_layers).astype(int)}
        if self.dense_first_layer:
            excluded.add(0)
        dense = [i for i, p in enumerate(position) if p in excluded]
        if pattern == "unstructured":
            total = sum(a * b for a, b in shapes)
            density = base_count / total if self.iso_flop is not None else 1.0 - sparsity
            if self.density_init == "erk":
                densities = erk_densities(shapes, min(1.0, density), dense=dense)
            else:
                densities = uniform_densities(shapes, density, dense=dense)
        elif pattern == "n:m":
            for i, (_, fan_in) in enumerate(shapes):
                if i in dense or fan_in % self.m == 0:
                    continue
                if position[i] != 0:
                    raise ValueError(
                        f"Layer {i} has {fan_in} inputs, not a multiple of m={self.m}: choose "
                        "hidden_layer_sizes divisible by m."
                    )
                warnings.warn(
                    f"The first layer has {fan_in} inputs, not a multiple of m={self.m}; it "
                    "is kept dense.",
                    UserWarning,
                    stacklevel=4,
                )
                dense.append(i)
            densities = [1.0 if i in dense else self.n / self.m for i in range(len(shapes))]
        else:
            densities = [1.0] * len(shapes)
        if self.mask_random_state is None:
            mask_seed = self._draw_seed()
        else:
            mask_rng = check_random_state(self.mask_random_state)
            mask_seed = int(mask_rng.randint(np.iinfo(np.int32).max))
        gen = torch.Generator().manual_seed(mask_seed)
        layers = []
        for (fan_out, fan_in), d in zip(shapes, densities):
            if d >= 1.0:
                layers.append(nn.Linear(fan_in, fan_out))
            elif pattern == "n:m":
                layers.append(
                    NMSparseLinear(
                        fan_in,
                        fan_out,
                        n=self.n,
                        m=self.m,
                        method=self.method,
                        srste_lambda=self.srste_lambda,
                        pgf_backward=self.pgf_backward,
                    )
                )
            else:
                layers.append(MaskedLinear(fan_in, fan_out, density=d, generator=gen))
        branches = [layers[b * n_layers : (b + 1) * n_layers] for b in range(n_branches)]
        self.layer_densities_ = [float(d) for d in densities]
        self.sparse_layers_ = [i for i, d in enumerate(densities) if d < 1.0]
        self.dense_layers_ = [i for i, d in enumerate(densities) if d >= 1.0]
        self.mask_flips_ = []
        self.nnz_history_ = []
        topk = self.activation_topk
        if topk is not None and float(topk) >= 1:
            topk = int(topk)
        return _SparseMLPModule(branches, self.activation, topk)

    def _make_optimizer(self):
        if self.method == "cast":
            return AdamS(
                self.module_.parameters(),
                lr=self.lr,
                decay=self.cast_lambda,
                n=self.n,
                m=self.m,
                update_every=self.cast_update_every,
                **self.get_routed_params("optimizer"),
            )
        return super()._make_optimizer()

    # ------------------------------------------------------------------ hooks
    def _nm_layers(self):
        return [la for la in self.module_.linears() if isinstance(la, NMSparseLinear)]

    def _layer_masks(self):
        masks = []
        for layer in self.module_.linears():
            if isinstance(layer, MaskedLinear):
                masks.append(layer.mask.detach().clone())
            elif isinstance(layer, NMSparseLinear):
                masks.append(layer.current_mask().detach().clone())
            else:
                masks.append(torch.ones_like(layer.weight, dtype=torch.bool))
        return masks

    def on_train_begin(self, n_epochs, steps_per_epoch):
        horizon = self.max_epochs * steps_per_epoch
        start = self.n_steps_
        interval = self.update_interval or steps_per_epoch
        gen = torch.Generator().manual_seed(self._draw_seed())
        drop = 0.3 if self.drop_fraction is None else self.drop_fraction
        if self.method == "set":
            updater = SET(
                zeta=drop,
                update_interval=interval,
                end_step=horizon,
                drop=self.set_drop,
                generator=gen,
            )
            if self.growth not in (None, "random"):
                updater.growth = self.growth
        elif self.method == "rigl":
            updater = RigL(
                alpha=drop,
                update_interval=interval,
                end_step=int(self.update_end * horizon),
                growth=self.growth or "gradient",
                generator=gen,
            )
        else:
            updater = StaticMask()
        self._updater = updater.attach(self.module_, self.optimizer_)
        self._updater.step = start
        for layer in self._nm_layers():
            layer.finalized = False
            if self.method == "pgf":
                layer.pgf = PGFSchedule(
                    horizon,
                    n=self.n,
                    m=self.m,
                    decay=self.pgf_decay,
                    decay_coef=self.pgf_decay_coef,
                    structure=self.pgf_structure,
                    dense_fraction=self.dense_fraction,
                    finetune_fraction=self.finetune_fraction,
                )
        if self.method == "cast":
            for group in self.optimizer_.param_groups:
                group["warmup_steps"] = int(self.cast_warmup * horizon)
        self._epoch_masks = self._layer_masks()

    def on_batch_begin(self, X, y):
        for layer in self._nm_layers():
            layer.set_step(self.n_steps_)

    def on_grad_computed(self, X, y):
        self._updater.on_grad_computed()

    def on_batch_end(self, X, y, loss):
        self._updater.on_batch_end()

    def on_epoch_end(self, epoch):
        masks = self._layer_masks()
        flips = int(sum(int((a ^ b).sum()) for a, b in zip(masks, self._epoch_masks)))
        self._epoch_masks = masks
        nnz = int(sum(int(mk.sum()) for mk in masks))
        self.mask_flips_.append(flips)
        self.nnz_history_.append(nnz)
        return {"mask_flips": flips, "nnz": nnz}

    def on_train_end(self):
        for layer in self._nm_layers():
            layer.finalize_()
        del self._updater, self._epoch_masks
        masks, nnz, total = [], [], 0
        for layer in self.module_.linears():
            w = layer.weight.detach()
            if isinstance(layer, MaskedLinear):
                mask = layer.mask
            else:  # finalised N:M layers are exactly sparse; dense layers all True
                mask = w != 0 if isinstance(layer, NMSparseLinear) else torch.ones_like(w) > 0
            masks.append(mask.cpu().numpy().copy())
            nnz.append(int((w != 0).sum()))
            total += w.numel()
        self.masks_ = masks
        self.density_ = [c / mk.size for c, mk in zip(nnz, masks)]
        self.sparsity_ = 1.0 - sum(nnz) / total

    # ------------------------------------------------------------------ extras
    def activation_density(self, X):
        """Fraction of nonzero hidden activations, per hidden layer (lazy-neuron diagnostic).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        density : ndarray of shape (n_hidden_layers,)
            Mean fraction of nonzero units after each hidden activation (first branch).
        """

        def fn(x):
            _, hidden = self.module_.forward_hidden(x)
            n_hidden = len(self.module_.acts)
            cols = [(h != 0).double().mean(dim=1, keepdim=True) for h in hidden[:n_hidden]]
            return torch.cat(cols, dim=1)

        return self._predict_batches(X, fn).mean(axis=0)

    def get_sparse_state_dict(self):
        """State dict of the network with weights exactly zero off ``masks_``.

        Returns
        -------
        state : dict
            Tensor copies (on the CPU) including the mask buffers.
        """
        check_is_fitted(self)
        return {k: v.detach().cpu().clone() for k, v in self.export_sparse().state_dict().items()}

    def export_sparse(self):
        """A plain torch copy of the network with ``nn.Linear`` layers, zero off the masks.

        Returns
        -------
        model : torch.nn.Module
            CPU module; weights are exactly 0 wherever ``masks_`` is False. N:M layers stay
            exactly N:M (ready for :func:`sparsestat.neural.layers.export_semi_structured`
            once moved to CUDA in half precision).
        """
        check_is_fitted(self)
        module = copy.deepcopy(self.module_).to("cpu")
        flat = 0
        for branch in module.branches:
            for i, layer in enumerate(branch):
                plain = nn.Linear(layer.in_features, layer.out_features)
                with torch.no_grad():
                    mask = torch.as_tensor(self.masks_[flat])
                    plain.weight.copy_(layer.weight * mask)
                    plain.bias.copy_(layer.bias)
                branch[i] = plain
                flat += 1
        return module.eval()


class SparseMLPClassifier(TorchClassifierMixin, ClassifierMixin, _SparseMLPBase):
    __doc__ = f"""Multilayer perceptron classifier trained sparse from scratch.

    One estimator for the sparse-training families: unstructured masks (static random
    masks with ERK or uniform layer densities, SET, RigL, Sparse-IFT widening) and N:M
    fine-grained structure (STE, SR-STE, progressive gradient flow, CAST).
{_PARAMS_DOC}{_ATTRS_DOC}
    classes_ : ndarray of shape (n_classes,)
        Class labels.
{_NOTES_DOC}
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sparsestat.neural import SparseMLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = SparseMLPClassifier(hidden_layer_sizes=(32,), method="rigl", sparsity=0.8,
    ...                           max_epochs=30, lr=1e-2, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.8
    True
    >>> round(clf.sparsity_, 2)
    0.8
    """


class SparseMLPRegressor(TorchRegressorMixin, RegressorMixin, _SparseMLPBase):
    __doc__ = f"""Multilayer perceptron regressor trained sparse from scratch.

    Same sparse-training methods as :class:`SparseMLPClassifier`, with a squared-error loss
    on standardised targets (1-D or 2-D ``y``).
{_PARAMS_DOC}{_ATTRS_DOC}
    n_outputs_ : int
        Number of regression targets.
{_NOTES_DOC}
    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sparsestat.neural import SparseMLPRegressor
    >>> X, y = make_regression(n_samples=200, n_features=8, random_state=0)
    >>> reg = SparseMLPRegressor(hidden_layer_sizes=(32,), method="sr-ste", max_epochs=40,
    ...                          lr=1e-2, random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.8
    True
    """
