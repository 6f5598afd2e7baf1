"""Sparse multilayer perceptrons trained sparse from scratch (N:M and unstructured)."""

from __future__ import annotations

import copy
from numbers import Real

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from sparsestat.neural import import_torch
from sparsestat.neural._base import BaseTorchEstimator, TorchClassifierMixin, TorchRegressorMixin
from sparsestat.neural.layers._dst import (
    SET,
    Dense,
    RigL,
    SparseIFT,
    SparseTrainingMethod,
    StaticMask,
)
from sparsestat.neural.layers._masked import MaskedLinear, NMSparseLinear
from sparsestat.neural.layers._mlp import get_activation
from sparsestat.neural.layers._nm import CAST, PGF, SRSTE, STE
from sparsestat.neural.layers.sae_topk import TopK
from sparsestat.utils._compat import HasMethods, Interval, StrOptions
from sparsestat.utils._deprecation import warn_renamed

torch = import_torch()
nn = torch.nn

__all__ = ["SparseMLPClassifier", "SparseMLPRegressor"]

#: method names -> the method object they stand for (with its defaults)
_METHODS = {
    "dense": Dense,
    "static": StaticMask,
    "random": StaticMask,
    "set": SET,
    "rigl": RigL,
    "ste": STE,
    "sr-ste": SRSTE,
    "pgf": PGF,
    "cast": CAST,
}

#: old flat parameter -> (its parameter on the method object, the methods that had it)
_RENAMED_TO_METHOD = {
    "n": ("n", (STE, SRSTE, PGF, CAST)),
    "m": ("m", (STE, SRSTE, PGF, CAST)),
    "density_init": ("density_init", (StaticMask, SET, RigL)),
    "update_interval": ("update_interval", (SET, RigL)),
    "drop_fraction": ("drop_fraction", (SET, RigL)),
    "update_end": ("update_end", (RigL,)),
    "growth": ("growth", (SET, RigL)),
    "set_drop": ("drop", (SET,)),
    "srste_lambda": ("alpha", (SRSTE,)),
    "pgf_decay": ("decay", (PGF,)),
    "pgf_decay_coef": ("decay_coef", (PGF,)),
    "pgf_structure": ("structure", (PGF,)),
    "pgf_backward": ("backward", (PGF,)),
    "dense_fraction": ("dense_fraction", (PGF,)),
    "finetune_fraction": ("finetune_fraction", (PGF,)),
    "cast_lambda": ("alpha", (CAST,)),
    "cast_update_every": ("update_interval", (CAST,)),
    "cast_warmup": ("warmup", (CAST,)),
}

#: every old flat name -> what replaces it (kept for one release, with a FutureWarning)
_RENAMED = {
    **{old: f"method__{new}" for old, (new, _) in _RENAMED_TO_METHOD.items()},
    "pattern": "method",
    "iso_flop": "method=SparseIFT(transformation=...)",
    "dense_first_layer": "exclude_layers=(0,)",
    "activation_topk": "activation=TopK(k=...)",
}


def _activation(activation, fan_in, width):
    """A hidden activation module: by name, or a copy of the given module; a sparse
    activation with a ``build`` hook (such as ``TopK``) resolves its ``k`` for the width."""
    if isinstance(activation, str):
        return get_activation(activation)
    act = copy.deepcopy(activation)
    if callable(getattr(act, "build", None)):
        act.build(fan_in, width)
    return act


class _SparseMLPModule(nn.Module):
    """Parallel branches of ``Linear -> activation`` stacks whose outputs are summed."""

    def __init__(self, branches, activation):
        super().__init__()
        self.branches = nn.ModuleList(nn.ModuleList(layers) for layers in branches)
        self.acts = nn.ModuleList(
            _activation(activation, layer.in_features, layer.out_features)
            for layer in branches[0][:-1]
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
        Hidden widths (before any Sparse-IFT widening).
    activation : {"relu", "tanh", "gelu"} or torch.nn.Module, default="relu"
        Hidden activation: a name, or a module copied into every hidden layer, e.g. a top-k
        activation that keeps the ``k`` largest ReLU outputs per sample (lazy-neuron
        sparsity).
    method : str or sparse-training method object, default="static"
        How the network is trained sparse: an object whose parameters tune as
        ``method__<name>`` (``set_params(method__drop_fraction=0.5)``), or a name standing
        for the object with its defaults. Unstructured masks: ``StaticMask()`` (``"static"``,
        ``"random"``: fixed random masks at ERK or uniform layer densities), ``SET()``
        (``"set"``: magnitude drop, random growth), ``RigL()`` (``"rigl"``: magnitude drop,
        gradient growth, cosine-decayed drop fraction), ``SparseIFT(...)`` (a wider or
        parallel network at the dense weight count). N:M structure: ``STE()`` (``"ste"``),
        ``SRSTE()`` (``"sr-ste"``), ``PGF()`` (``"pgf"``, progressive gradient flow) and
        ``CAST()`` (``"cast"``). ``Dense()`` (``"dense"``) trains a plain MLP (baseline).
    sparsity : float in [0, 1) or None, default=None
        Fraction of zero weights. None means 0.9 (unstructured) or ``1 - n/m`` (N:M, where
        any other value is an error).
    exclude_layers : tuple of int, default=()
        Layer positions (0 = first) kept dense.
    lr : float, default=1e-3
        Learning rate.
    batch_size : int, default=64
        Mini-batch size.
    max_epochs : int or "auto", default="auto"
        Epochs. ``"auto"``: at least 50 epochs and 2000 optimiser steps, at most 500
        epochs, so that small data sets get enough steps (digits, 1,257 training rows in
        batches of 64: 100 epochs).
    optimizer : {"adam", "adamw", "sgd"} or optimizer class, default="adam"
        Optimizer (``CAST`` always uses :class:`~sparsestat.neural.layers.AdamS`); tune its
        other settings with ``optimizer__<name>``, e.g. ``optimizer__weight_decay``.
    early_stopping : bool, default=False
        Stop when the loss on a held-out ``validation_fraction`` of the training data has
        not improved by ``tol`` for ``n_iter_no_change`` epochs (the best epoch's weights
        are kept).
    validation_fraction : float, default=0.1
        Hold-out fraction for early stopping.
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
        Routed ``optimizer__*`` parameters. The flat method parameters of earlier releases
        (``n``, ``m``, ``density_init``, ``update_interval``, ``drop_fraction``,
        ``update_end``, ``growth``, ``set_drop``, ``srste_lambda``, ``pgf_*``,
        ``dense_fraction``, ``finetune_fraction``, ``cast_*``, ``iso_flop``, ``pattern``,
        ``dense_first_layer``, ``activation_topk``) still work for one release, with a
        ``FutureWarning`` naming their replacement on the method object.
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
    be divisible. Not specified by the papers, chosen here (see each method object): the PGF
    ``"auto"`` rate, CAST's update, the Sparse-IFT adaptation to MLPs, and the mask-flip
    count as the measure of SR-STE's sparse architecture divergence. ``partial_fit``
    schedules use ``max_epochs`` epochs as the horizon; no mask updates happen past it. The
    optimizer also steps on RigL's update steps (the TensorFlow reference skips them).
    Cost per epoch: that of the dense network (masks do not save compute on CPU).

    ``sample_weight`` weights the loss of each row (rows of weight 0 are left out). The
    weighted fit equals the fit on repeated rows to float32 rounding with full batches and
    in expectation with mini-batches; scikit-learn's exact-equivalence check (1e-7) is
    below float32 resolution.

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
    _routed_prefixes = ("optimizer",)
    _renamed_params = _RENAMED

    _parameter_constraints: dict = {
        **BaseTorchEstimator._parameter_constraints,
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions({"relu", "tanh", "gelu"}), HasMethods(["forward"])],
        "method": [StrOptions(set(_METHODS)), SparseTrainingMethod],
        "sparsity": [Interval(Real, 0, 1, closed="left"), None],
        "exclude_layers": ["array-like"],
        "mask_random_state": ["random_state"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(128,),
        activation="relu",
        method="static",
        sparsity=None,
        exclude_layers=(),
        lr=1e-3,
        batch_size=64,
        max_epochs="auto",
        optimizer="adam",
        early_stopping=False,
        validation_fraction=0.1,
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
        self.sparsity = sparsity
        self.exclude_layers = exclude_layers
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.optimizer = optimizer
        self.early_stopping = early_stopping
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
    def _old(self, name):
        """The value of an old flat parameter the caller set (with its FutureWarning)."""
        routed = getattr(self, "_routed_params", {})
        if name not in routed:
            return None
        warn_renamed(name, _RENAMED[name], type(self).__name__, stacklevel=5)
        return routed[name]

    def _method_object(self):
        """The sparse-training method to train with: a fresh copy, old flat names applied."""
        if isinstance(self.method, str):
            method = _METHODS[self.method]()
        else:
            method = clone(self.method)
        for old, (new, owners) in _RENAMED_TO_METHOD.items():
            value = self._old(old)
            if value is not None and isinstance(method, owners):
                method.set_params(**{new: value})
        pattern = self._old("pattern")
        if pattern is not None and method.pattern != "dense" and pattern != method.pattern:
            raise ValueError(
                f"method={self.method!r} trains pattern={method.pattern!r}; got "
                f"pattern={pattern!r}."
            )
        iso_flop = self._old("iso_flop")
        if iso_flop is not None:
            if not isinstance(method, StaticMask):
                raise ValueError("iso_flop is defined for unstructured sparsity only.")
            method = SparseIFT(transformation=iso_flop, mask=method)
        return method

    def _activation_object(self):
        topk = self._old("activation_topk")
        if topk is None:
            return self.activation
        return TopK(int(topk) if float(topk) >= 1 else float(topk))

    def _resolved(self):
        """(method object, sparsity, hidden sizes, excluded layer positions)."""
        method = self._method_object()
        hidden = tuple(int(h) for h in np.atleast_1d(np.asarray(self.hidden_layer_sizes)))
        if not hidden or min(hidden) < 1:
            raise ValueError(f"hidden_layer_sizes must be positive; got {self.hidden_layer_sizes}.")
        sparsity = method._resolve_sparsity(self.sparsity)
        exclude = {int(i) for i in np.atleast_1d(self.exclude_layers).astype(int)}
        if self._old("dense_first_layer"):
            exclude.add(0)
        return method, sparsity, hidden, exclude

    # ------------------------------------------------------------------ module
    def _build_module(self, X, y):
        method, sparsity, hidden, exclude = self._resolved()
        sizes = [X.shape[1], *hidden, self.n_outputs_]
        n_layers = len(sizes) - 1
        bad = sorted(i for i in exclude if not -n_layers <= i < n_layers)
        if bad:
            raise ValueError(
                f"exclude_layers={tuple(self.exclude_layers)} names layers {bad}, but the "
                f"network has {n_layers} layers (0 to {n_layers - 1})."
            )
        exclude = {i % n_layers for i in exclude}
        shapes, n_branches, densities = method._plan(sizes, sparsity, exclude)
        if self.mask_random_state is None:
            mask_seed = self._draw_seed()
        else:
            mask_rng = check_random_state(self.mask_random_state)
            mask_seed = int(mask_rng.randint(np.iinfo(np.int32).max))
        gen = torch.Generator().manual_seed(mask_seed)
        layers = [
            method._make_linear(fan_in, fan_out, d, gen)
            for (fan_out, fan_in), d in zip(shapes, densities)
        ]
        per_branch = len(shapes) // n_branches
        branches = [layers[b * per_branch : (b + 1) * per_branch] for b in range(n_branches)]
        self.method_ = method
        self.layer_densities_ = [float(d) for d in densities]
        self.sparse_layers_ = [i for i, d in enumerate(densities) if d < 1.0]
        self.dense_layers_ = [i for i, d in enumerate(densities) if d >= 1.0]
        self.mask_flips_ = []
        self.nnz_history_ = []
        return _SparseMLPModule(branches, self._activation_object())

    def _optimizer_class(self):
        if self.method == "cast" or isinstance(self.method, CAST):
            return CAST()._optimizer_class()
        return super()._optimizer_class()

    def _make_optimizer(self):
        routed = self.get_routed_params("optimizer")
        opt = self.method_._optimizer(self.module_.parameters(), self.lr, **routed)
        return super()._make_optimizer() if opt is None else opt

    # ------------------------------------------------------------------ hooks
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
        horizon = self._resolved_max_epochs() * steps_per_epoch
        self._updater = clone(self.method_).attach(
            self.module_,
            self.optimizer_,
            total_steps=horizon,
            steps_per_epoch=steps_per_epoch,
            step=self.n_steps_,
            generator=torch.Generator().manual_seed(self._draw_seed()),
        )
        self._epoch_masks = self._layer_masks()

    def on_batch_begin(self, X, y):
        self._updater.on_batch_begin(self.n_steps_)

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
        self._updater.finalize_()
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
