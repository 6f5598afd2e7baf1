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
from sparsestat.neural._layers_envelope import GroupEnvelopeRegularizer, prune_mlp
from sparsestat.neural._layers_mlp import MLP
from sparsestat.utils._compat import Interval, RealNotInt, StrOptions

__all__ = [
    "GroupEnvelopeMLPClassifier",
    "GroupEnvelopeMLPRegressor",
    "GroupEnvelopeRegularizer",
]


class _GroupEnvelopeMLPBase(BaseTorchEstimator):
    """Shared WGSEF training: proximal steps after each optimizer step, projection, prune."""

    _parameter_constraints: dict = {
        **BaseTorchEstimator._parameter_constraints,
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions({"relu", "tanh", "gelu", "sigmoid"})],
        "group_type": [StrOptions({"neuron", "input", "both"})],
        "k": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="right"),
        ],
        "scope": [StrOptions({"layer", "global"})],
        "weights": [None, StrOptions({"sqrt_size"})],
        "lam": [Interval(numbers.Real, 0, None, closed="neither")],
        "final_projection": ["boolean"],
        "finetune_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    def _build_module(self, X: Any, y: Any) -> Any:
        hidden = tuple(int(h) for h in np.atleast_1d(self.hidden_layer_sizes))
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be positive; got {hidden}")
        self._phase = "prox"
        self._keep = None
        return MLP(X.shape[1], hidden, self.n_outputs_, self.activation)

    def _regularizer(self) -> GroupEnvelopeRegularizer:
        return GroupEnvelopeRegularizer(k=self.k, lam=self.lam, weights=self.weights)

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
        return int(self.max_epochs) + int(extra)

    def on_batch_end(self, X: Any, y: Any, loss: Any) -> None:
        if getattr(self, "pruned_", False):
            return
        if self._phase == "prox":
            step = float(self.optimizer_.param_groups[0]["lr"])
            reg = self._regularizer()
            for _, blocks in self._scopes():
                reg.prox_(blocks, step)
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
            and done == self.max_epochs
        ):
            reg = self._regularizer()
            self._keep = [reg.project_(blocks) for _, blocks in self._scopes()]
            self._phase = "finetune"
        reg = self._regularizer()
        counts = {name: int((reg.group_norms(b) > 0).sum()) for name, b in self._scopes()}
        return {"n_nonzero_groups": counts, "phase": self._phase}

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
    k : int or float, default=0.25
        Nonzero groups per scope: an int, or a fraction of the scope's groups.
    scope : {'layer', 'global'}, default='layer'
        Neuron groups counted per hidden layer or over all hidden layers.
    weights : None or 'sqrt_size', default=None
        Group weights of the envelope (ones or square roots of the group sizes).
    lam : float, default=1e-2
        Envelope strength; the prox after each step uses ``lr * lam``.
    final_projection : bool, default=True
        After ``max_epochs``, keep the ``k`` largest groups per scope, freeze that mask and
        fine-tune for ``finetune_epochs`` epochs without the envelope.
    finetune_epochs : int, default=10
        Fine-tuning epochs after the projection.
    lr : float, default=0.05
        Learning rate (and prox step).
    batch_size : int, default=64
        Mini-batch size.
    max_epochs : int, default=100
        Epochs of proximal training.
    optimizer : {'sgd', 'adam', 'adamw'} or torch.optim.Optimizer class, default='sgd'
        Optimizer (SGD uses momentum 0.9 unless ``optimizer__momentum`` says otherwise);
        ``optimizer__*`` and ``module__*`` parameters are routed.
    validation_fraction : float or None, default=None
        Hold-out fraction for early stopping (None: off).
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
        Routed ``optimizer__*`` parameters."""

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
    replaced by the exact prox of ``lr * lam * Phi_w`` (:class:`GroupEnvelopeRegularizer`),
    which keeps at least ``k`` nonzero groups and removes groups below a data-dependent
    threshold. Exact ``k`` per scope is reached by the final projection. The half-space
    (HSPG) phase of the paper's variant is not implemented; with ``group_type='both'`` the
    overlapping input and neuron scopes are handled by applying the two proxes in turn
    [inferred]. The weighting convention is [inferred]. With a non-SGD optimizer the prox
    step ``lr * lam`` is a heuristic. Cost per step: O(#parameters) plus O(n log n) per
    scope of n groups."""


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
    >>> clf = GroupEnvelopeMLPClassifier(hidden_layer_sizes=(16,), k=4, max_epochs=30,
    ...                                  finetune_epochs=5, random_state=0).fit(X, y)
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
        k=0.25,
        scope="layer",
        weights=None,
        lam=1e-2,
        final_projection=True,
        finetune_epochs=10,
        lr=0.05,
        batch_size=64,
        max_epochs=100,
        optimizer="sgd",
        validation_fraction=None,
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
        self.k = k
        self.scope = scope
        self.weights = weights
        self.lam = lam
        self.final_projection = final_projection
        self.finetune_epochs = finetune_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.optimizer = optimizer
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
    >>> reg = GroupEnvelopeMLPRegressor(hidden_layer_sizes=(16,), group_type="input", k=3,
    ...                                 max_epochs=30, finetune_epochs=5,
    ...                                 random_state=0).fit(X, y)
    >>> reg.n_nonzero_groups_
    {'input': 3}""",
    )

    __init__ = GroupEnvelopeMLPClassifier.__init__
