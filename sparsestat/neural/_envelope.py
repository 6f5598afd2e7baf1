"""k-level structured sparse MLPs trained with the weighted group sparse envelope (WGSEF).

Refael, Arbel, Huleihel, "Learning k-Level Structured Sparse Neural Networks Using Group
Envelope Regularization", arXiv:2212.12921.
"""

from __future__ import annotations

import copy
import numbers
from typing import Any

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from sparsestat.neural._base import BaseTorchEstimator, TorchClassifierMixin, TorchRegressorMixin
from sparsestat.neural.layers._envelope import GroupEnvelopeRegularizer, prune_mlp
from sparsestat.neural.layers._mlp import MLP
from sparsestat.utils._compat import Interval, RealNotInt, StrOptions

__all__ = [
    "GroupEnvelopeMLPClassifier",
    "GroupEnvelopeMLPRegressor",
]


class _GroupEnvelopeMLPBase(BaseTorchEstimator):
    """Shared WGSEF training: proximal steps after each optimizer step, projection, prune."""

    _routed_prefixes = ("optimizer",)
    _auto_epochs = (100, 2000, 500)
    _renamed_params = {"k": "n_nonzero_groups", "lam": "alpha"}

    _parameter_constraints: dict = {
        **BaseTorchEstimator._parameter_constraints,
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions({"relu", "tanh", "gelu", "sigmoid"})],
        "group_type": [StrOptions({"neuron", "input", "both"})],
        "n_nonzero_groups": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="right"),
        ],
        "scope": [StrOptions({"layer", "global"})],
        "weights": [None, StrOptions({"sqrt_size", "flops"})],
        "alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "final_projection": ["boolean"],
        "finetune_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "hspg": ["boolean"],
        "hspg_start": [Interval(numbers.Real, 0, 1, closed="both")],
        "hspg_eps": [Interval(numbers.Real, 0, 1, closed="left")],
    }

    def _build_module(self, X: Any, y: Any) -> Any:
        hidden = tuple(int(h) for h in np.atleast_1d(self.hidden_layer_sizes))
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be positive; got {hidden}")
        self._phase = "prox"
        self._keep = None
        k = self._renamed("n_nonzero_groups")
        if isinstance(k, numbers.Integral):
            sizes = {"input": X.shape[1]} if self.group_type in ("input", "both") else {}
            if self.group_type in ("neuron", "both"):
                if self.scope == "global":
                    sizes["hidden layers"] = sum(hidden)
                else:
                    sizes.update({f"hidden layer {i}": h for i, h in enumerate(hidden)})
            over = {name: n for name, n in sizes.items() if k > n}
            if over:
                name, n = next(iter(over.items()))
                raise ValueError(
                    f"n_nonzero_groups={k} exceeds the {n} groups of the {name} scope "
                    f"(group_type={self.group_type!r}, scope={self.scope!r}); use at most "
                    f"{min(over.values())} or a fraction of the groups in (0, 1]."
                )
        return MLP(X.shape[1], hidden, self.n_outputs_, self.activation)

    def _regularizer(self, blocks: Any = None) -> GroupEnvelopeRegularizer:
        weights = self.weights
        if weights == "flops":
            weights = None if blocks is None else np.sqrt(self._group_flops(blocks))
        k, alpha = self._renamed("n_nonzero_groups"), self._renamed("alpha")
        return GroupEnvelopeRegularizer(n_nonzero_groups=k, alpha=alpha, weights=weights)

    def _group_flops(self, blocks: list[list[torch.Tensor]]) -> np.ndarray:
        """FLOPs per sample (2 per multiply-add) that removing each group saves.

        A hidden neuron saves its incoming row (and bias) and its outgoing column of the next
        layer; an input feature saves its column of the first layer.
        """
        lins = list(self.module_.linears)
        out = []
        for block in blocks:
            w = block[0]
            if len(block) == 1:  # input features: columns of the first weight matrix
                out.append(np.full(w.shape[0], 2.0 * lins[0].out_features))
                continue
            i = next(j for j, lin in enumerate(lins) if lin.weight is w)
            per = lins[i].in_features + 1 + lins[i + 1].out_features
            out.append(np.full(w.shape[0], 2.0 * per))
        return np.concatenate(out)

    def _hspg_on(self) -> bool:
        """Whether this step is in the half-space (HSPG) phase."""
        if not self.hspg or self._phase != "prox" or self._partial_call:
            return False
        done = (self.n_steps_ - self._fit_start_step_) / self.steps_per_epoch_
        return done >= self.hspg_start * self._resolved_max_epochs()

    def on_batch_begin(self, X: Any, y: Any) -> None:
        # the half-space test compares each group after the step with itself before it
        self._before = None
        if self._hspg_on() and not getattr(self, "pruned_", False):
            self._before = [
                [t.detach().clone() for b in blocks for t in b] for _, blocks in self._scopes()
            ]

    @torch.no_grad()
    def _half_space_(self, blocks: list[list[torch.Tensor]], before: list[torch.Tensor]) -> None:
        """HSPG projection of one scope: zero groups that left the half-space of their old value.

        Zero groups stay zero; a nonzero group ``g`` with ``<x~_g, x_g> < eps ||x_g||^2``
        (``x_g`` before, ``x~_g`` after the step) is set to zero, but never below ``k``
        nonzero groups (those with the smallest ratio go first).
        """
        reg = self._regularizer(blocks)
        dot, sq = [], []
        i = 0
        for b in blocks:
            new_b = [t.reshape(t.shape[0], -1).double() for t in b]
            old_b = [t.reshape(t.shape[0], -1).double() for t in before[i : i + len(b)]]
            i += len(b)
            dot.append(sum((u * v).sum(1) for u, v in zip(new_b, old_b)).cpu())
            sq.append(sum(v.pow(2).sum(1) for v in old_b).cpu())
        dot_t, sq_t = torch.cat(dot), torch.cat(sq)
        alive = sq_t > 0
        ratio = torch.where(alive, dot_t / sq_t.clamp_min(1e-300), torch.zeros_like(sq_t))
        drop = alive & (ratio < self.hspg_eps)
        k = reg.n_groups_kept(int(dot_t.shape[0]))
        n_alive = int(alive.sum())
        spare = max(n_alive - k, 0)
        if int(drop.sum()) > spare:
            order = torch.argsort(torch.where(drop, ratio, torch.full_like(ratio, np.inf)))
            drop = torch.zeros_like(drop)
            drop[order[:spare]] = True
        GroupEnvelopeRegularizer.apply_group_mask_(blocks, alive & ~drop)

    def _scopes(self) -> list[tuple[str, list[list[torch.Tensor]]]]:
        """(name, blocks) of every scope on which the envelope acts."""
        lins = list(self.module_.linears)
        scopes: list[tuple[str, list[list[torch.Tensor]]]] = []
        if self.group_type in ("input", "both"):
            scopes.append(("input", [[lins[0].weight.T]]))
        if self.group_type in ("neuron", "both") and len(lins) > 1:
            blocks = [[lin.weight, lin.bias] for lin in lins[:-1]]
            if self.scope == "global":
                scopes.append(("hidden", blocks))
            else:
                scopes.extend((f"hidden_{i}", [b]) for i, b in enumerate(blocks))
        return scopes

    def _n_epochs(self) -> int:
        extra = self.finetune_epochs if self.final_projection else 0
        return self._resolved_max_epochs() + int(extra)

    def on_batch_end(self, X: Any, y: Any, loss: Any) -> None:
        if getattr(self, "pruned_", False):
            return
        if self._phase == "prox":
            step = float(self.optimizer_.param_groups[0]["lr"])
            before = getattr(self, "_before", None)
            for s, (_, blocks) in enumerate(self._scopes()):
                self._regularizer(blocks).prox_(blocks, step)
                if before is not None:
                    self._half_space_(blocks, before[s])
            self._before = None
        else:
            for (_, blocks), keep in zip(self._scopes(), self._keep):
                GroupEnvelopeRegularizer.apply_group_mask_(blocks, keep)

    def on_epoch_end(self, epoch: int) -> dict[str, Any]:
        if getattr(self, "pruned_", False):
            return {}
        done = epoch - self._fit_start_epoch_
        if (
            self.final_projection
            and self._phase == "prox"
            and not self._partial_call
            and done == self._resolved_max_epochs()
        ):
            self._keep = [self._regularizer(b).project_(b) for _, b in self._scopes()]
            self._phase = "finetune"
        reg = self._regularizer()
        counts = {name: int((reg.group_norms(b) > 0).sum()) for name, b in self._scopes()}
        phase = "hspg" if self._phase == "prox" and self._hspg_on() else self._phase
        return {"n_nonzero_groups": counts, "phase": phase}

    def on_train_end(self) -> None:
        if getattr(self, "pruned_", False):
            return
        reg = self._regularizer()
        self.selected_groups_ = {
            name: (reg.group_norms(b) > 0).numpy() for name, b in self._scopes()
        }
        self.n_nonzero_groups_ = {k: int(v.sum()) for k, v in self.selected_groups_.items()}
        total = sum(v.size for v in self.selected_groups_.values())
        self.group_sparsity_ = 1.0 - sum(self.n_nonzero_groups_.values()) / max(total, 1)
        n_full = sum(p.numel() for p in self.module_.parameters())
        n_small = sum(p.numel() for p in prune_mlp(self.module_, self.activation).parameters())
        self.compression_ratio_ = n_full / n_small

    def prune(self) -> Any:
        """Return a copy whose network drops the zeroed groups (a smaller dense MLP).

        Returns
        -------
        pruned : estimator
            A fitted estimator of the same class, with the same predictions (up to float
            rounding) and hidden widths equal to the numbers of kept neurons; further
            training (``partial_fit``) keeps its smaller architecture, without the envelope.
        """
        check_is_fitted(self)
        small = copy.deepcopy(self)  # through __getstate__: module on the CPU, no optimizer
        small.module_ = prune_mlp(self.module_, self.activation)
        small.optimizer_ = None
        small._optimizer_state = None
        small.pruned_ = True
        small.hidden_widths_ = [lin.out_features for lin in small.module_.linears[:-1]]
        return small


_PARAMS = """
    hidden_layer_sizes : tuple of int, default=(128, 64)
        Hidden widths.
    activation : {'relu', 'tanh', 'gelu', 'sigmoid'}, default='relu'
        Hidden activation.
    group_type : {'neuron', 'input', 'both'}, default='neuron'
        Groups: hidden neurons (row of the incoming weights and the bias), input features
        (columns of the first weight matrix) or both (two scopes, applied one after the
        other).
    n_nonzero_groups : int or float, default=0.25
        Nonzero groups per scope: an int (at most the scope's number of groups, else
        ``fit`` raises), or a fraction of the scope's groups.
    scope : {'layer', 'global'}, default='layer'
        Neuron groups counted per hidden layer or over all hidden layers.
    weights : None, 'sqrt_size' or 'flops', default=None
        Group weights ``w_g`` of the envelope: ones, square roots of the group sizes, or
        square roots of the FLOPs per sample that removing the group saves (a hidden neuron:
        ``2 (fan_in + 1 + fan_out of the next layer)``; an input feature: ``2 width_1``), so
        costlier groups are penalised more.
    alpha : float, default=1e-2
        Envelope strength; the prox after each step uses ``lr * alpha``.
    final_projection : bool, default=True
        After ``max_epochs``, keep the ``n_nonzero_groups`` largest groups per scope, freeze
        that mask and fine-tune for ``finetune_epochs`` epochs without the envelope.
    finetune_epochs : int, default=10
        Fine-tuning epochs after the projection.
    hspg : bool, default=False
        Half-space phase (HSPG) from epoch ``hspg_start * max_epochs`` to ``max_epochs``:
        after each step and prox, zero groups stay zero and a nonzero group ``g`` whose new
        value ``x~_g`` leaves the half-space of its old value ``x_g``
        (``<x~_g, x_g> < hspg_eps ||x_g||^2``) is set to zero, never below
        ``n_nonzero_groups`` nonzero groups per scope.
    hspg_start : float in [0, 1], default=0.5
        Fraction of ``max_epochs`` after which the half-space phase starts.
    hspg_eps : float in [0, 1), default=0.0
        Half-space threshold ``eps`` (larger removes more groups).
    lr : float, default=0.05
        Learning rate (and prox step).
    batch_size : int, default=64
        Mini-batch size.
    max_epochs : int or "auto", default="auto"
        Epochs of proximal training; ``"auto"``: at least 100 epochs and 2000 optimiser
        steps, at most 500 epochs.
    optimizer : {'sgd', 'adam', 'adamw'} or torch.optim.Optimizer class, default='sgd'
        Optimizer (SGD uses momentum 0.9 unless ``optimizer__momentum`` says otherwise);
        its other settings route as ``optimizer__<name>``.
    early_stopping : bool, default=False
        Stop the proximal phase when the loss on a held-out ``validation_fraction`` has not
        improved by ``tol`` for ``n_iter_no_change`` epochs.
    validation_fraction : float, default=0.1
        Hold-out fraction for early stopping.
    n_iter_no_change : int, default=10
        Early stopping patience.
    tol : float, default=1e-4
        Minimal validation-loss improvement.
    warm_start : bool, default=False
        Continue from the previous fit.
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where to train.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation and batch order.
    verbose : int, default=0
        Progress bar when > 0.
    **kwargs : dict
        Routed ``optimizer__*`` parameters; the former names ``k`` and ``lam`` still work
        for one release, with a ``FutureWarning``."""

_ATTRS = """
    module_ : MLP
        The trained network (zeroed groups included; see :meth:`prune`).
    n_features_in_ : int
        Number of input features.
    selected_groups_ : dict of ndarray of bool
        Nonzero groups per scope (``'input'``, ``'hidden_0'``, ... or ``'hidden'``).
    n_nonzero_groups_ : dict of int
        Their counts.
    group_sparsity_ : float
        Fraction of groups that are zero.
    compression_ratio_ : float
        Parameters of the full network over those of the pruned one.
    n_iter_ : int
        Epochs run (proximal + fine-tuning).
    loss_curve_ : list of float
        Training loss per epoch.
    history_ : list of dict
        Per-epoch records, with ``n_nonzero_groups`` and ``phase``."""

_NOTES = """
    Proximal stochastic gradient: after every optimizer step, each scope's parameters are
    replaced by the exact prox of ``lr * alpha * Phi_w``
    (:class:`GroupEnvelopeRegularizer`), which keeps at least ``n_nonzero_groups`` nonzero
    groups and removes groups below a data-dependent threshold. Exactly
    ``n_nonzero_groups`` per scope is reached by the final projection. The optional
    half-space phase (``hspg``, Chen et al. 2021) zeroes groups whose step left the
    half-space ``<x~_g, x_g> >= eps ||x_g||^2`` and keeps zero groups at zero.

    Not specified by the paper (whose full text was not available), chosen here: the step
    the half-space test compares is the prox-SGD step with the envelope, with a floor of
    ``n_nonzero_groups`` nonzero groups (so the phase never undercuts the target); the
    group weights (``weights='flops'`` included), because they make costlier groups pay
    more; and, with ``group_type='both'``, the two overlapping scopes are handled by
    applying their proxes in turn, which keeps each prox exact. With a non-SGD optimizer
    the prox step ``lr * alpha`` is a heuristic. Cost per step: O(#parameters) plus
    O(n log n) per scope of n groups.

    ``sample_weight`` weights the loss of each row (rows of weight 0 are left out); a
    weighted fit equals the fit on repeated rows to float32 rounding with full batches."""


def _doc(head: str, example: str) -> str:
    return f"""{head}

    Parameters
    ----------{_PARAMS}

    Attributes
    ----------{_ATTRS}

    Notes
    -----{_NOTES}

    References
    ----------
    .. [1] Y. Refael, I. Arbel, W. Huleihel, "Learning k-Level Structured Sparse Neural
       Networks Using Group Envelope Regularization", arXiv:2212.12921.
    .. [2] T. Chen, G. Wang, T. Ding, B. Ji, S. Yi, Z. Zhu, "Half-Space Proximal Stochastic
       Gradient Method for Group-Sparsity Regularized Problem", ICLR 2021 workshop /
       arXiv:2009.12078.

    Examples
    --------{example}
    """


class GroupEnvelopeMLPClassifier(TorchClassifierMixin, ClassifierMixin, _GroupEnvelopeMLPBase):
    __doc__ = _doc(
        "MLP classifier with k-level structured (group) sparsity from the group envelope.",
        """
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sparsestat.neural import GroupEnvelopeMLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> clf = GroupEnvelopeMLPClassifier(hidden_layer_sizes=(16,), n_nonzero_groups=4,
    ...                                  max_epochs=30, finetune_epochs=5,
    ...                                  random_state=0).fit(X, y)
    >>> clf.n_nonzero_groups_
    {'hidden_0': 4}
    >>> clf.prune().module_.linears[0].out_features
    4""",
    )

    def __init__(
        self,
        hidden_layer_sizes=(128, 64),
        activation="relu",
        group_type="neuron",
        n_nonzero_groups=0.25,
        scope="layer",
        weights=None,
        alpha=1e-2,
        final_projection=True,
        finetune_epochs=10,
        hspg=False,
        hspg_start=0.5,
        hspg_eps=0.0,
        lr=0.05,
        batch_size=64,
        max_epochs="auto",
        optimizer="sgd",
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
        self.group_type = group_type
        self.n_nonzero_groups = n_nonzero_groups
        self.scope = scope
        self.weights = weights
        self.alpha = alpha
        self.final_projection = final_projection
        self.finetune_epochs = finetune_epochs
        self.hspg = hspg
        self.hspg_start = hspg_start
        self.hspg_eps = hspg_eps
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


class GroupEnvelopeMLPRegressor(TorchRegressorMixin, RegressorMixin, _GroupEnvelopeMLPBase):
    __doc__ = _doc(
        "MLP regressor with k-level structured (group) sparsity from the group envelope.",
        """
    >>> from sklearn.datasets import make_regression
    >>> from sparsestat.neural import GroupEnvelopeMLPRegressor
    >>> X, y = make_regression(n_samples=200, n_features=10, n_informative=3,
    ...                        random_state=0)
    >>> reg = GroupEnvelopeMLPRegressor(hidden_layer_sizes=(16,), group_type="input",
    ...                                 n_nonzero_groups=3, max_epochs=30,
    ...                                 finetune_epochs=5, random_state=0).fit(X, y)
    >>> reg.n_nonzero_groups_
    {'input': 3}""",
    )

    __init__ = GroupEnvelopeMLPClassifier.__init__
