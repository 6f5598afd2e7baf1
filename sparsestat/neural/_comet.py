"""Cardinality-constrained mixtures of experts with COMET tree gates and local search.

Ibrahim, Chen, Hazimeh, Ponomareva, Zhao, Mazumder, "COMET: Learning Cardinality Constrained
Mixture of Experts with Trees and Local Search", KDD 2023 (arXiv 2306.02824).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from sparsestat.neural._base import BaseTorchEstimator, TorchClassifierMixin, TorchRegressorMixin
from sparsestat.neural.layers._comet import (
    COMETGate,
    DSelectKGate,
    HashGate,
    MixtureOfExperts,
    PermutationLocalSearch,
    SoftmaxGate,
    TopKGate,
)
from sparsestat.utils._compat import Interval, StrOptions
from sparsestat.utils._dask import rowwise

__all__ = ["COMETMoEClassifier", "COMETMoERegressor"]


class _COMETBase(BaseTorchEstimator):
    """Shared mixture-of-experts training: gate penalties, permutation schedule, statistics."""

    _parameter_constraints: dict = {
        **BaseTorchEstimator._parameter_constraints,
        "n_experts": [Interval(numbers.Integral, 2, None, closed="left")],
        "k": [Interval(numbers.Integral, 1, None, closed="left")],
        "gate": [StrOptions({"comet", "topk", "dselect_k", "hash", "softmax"})],
        "hash_feature": [None, Interval(numbers.Integral, 0, None, closed="left")],
        "expert_hidden": ["array-like"],
        "expert_dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "gamma": [Interval(numbers.Real, 0, None, closed="neither")],
        "entropy_coef": [Interval(numbers.Real, 0, None, closed="left")],
        "local_search": ["boolean"],
        "perm_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "perm_entropy_coef": [Interval(numbers.Real, 0, None, closed="left")],
        "tau_range": [tuple],
        "sinkhorn_iters": [tuple],
        "hard_routing": ["boolean"],
    }

    _module_class = MixtureOfExperts
    _auto_epochs = (60, 1000, 300)
    _renamed_params = {"entropy_reg": "entropy_coef", "perm_entropy_reg": "perm_entropy_coef"}

    def _build_module(self, X: Any, y: Any) -> Any:
        if self.k > self.n_experts:
            raise ValueError(f"k={self.k} must be <= n_experts={self.n_experts}")
        d, n = X.shape[1], self.n_experts
        if self.gate == "comet":
            gate = COMETGate(d, n, self.k, self.gamma)
        elif self.gate == "topk":
            gate = TopKGate(d, n, self.k)
        elif self.gate == "dselect_k":
            gate = DSelectKGate(d, n, self.k, self.gamma)
        elif self.gate == "hash":
            if self.hash_feature is not None and self.hash_feature >= d:
                raise ValueError(f"hash_feature={self.hash_feature} must be < n_features={d}")
            gate = HashGate(d, n, self.k, self.hash_feature, seed=int(torch.initial_seed()))
            gate.center.copy_(torch.as_tensor(X).float().mean(0))
        else:
            gate = SoftmaxGate(d, n)
        if self.local_search:
            gate.permutation = PermutationLocalSearch(n)
        gate.hard_eval = bool(self.hard_routing)
        hidden = tuple(int(h) for h in np.atleast_1d(self.expert_hidden))
        return MixtureOfExperts(
            gate, d, n, hidden, self.n_outputs_, dropout=self.expert_dropout,
            **self.get_routed_params("module"),
        )  # fmt: skip

    def _forward(self, X: Any) -> Any:
        self.module_.gate.hard_eval = bool(self.hard_routing)
        return self.module_(X)[0]

    def _perm(self) -> PermutationLocalSearch | None:
        return self.module_.gate.permutation

    def _batch_loss(self, X: Any, y: Any, n_train: float, sample_weight: Any = None) -> Any:
        out, g, penalty = self.module_(X, sample_weight)
        loss = self._task_loss(out, y, sample_weight) + self._entropy_coef * penalty
        perm = self._perm()
        if perm is not None and not perm.frozen:
            loss = loss + self._perm_entropy_coef * perm.penalty()
        if self.module_.training:
            nnz = (g.detach() > 1e-5).sum(1)
            self._stats[0] += float(nnz.sum())
            self._stats[1] += float((nnz <= self.k).sum())
            self._stats[2] += int(nnz.shape[0])
            self._load = self._load + g.detach().sum(0).double().cpu()
        return loss

    def on_train_begin(self, n_epochs: int, steps_per_epoch: int) -> None:
        self._stats = [0.0, 0.0, 0]
        self._load = torch.zeros(self.n_experts, dtype=torch.float64)
        self._perm_steps = self.perm_epochs * steps_per_epoch
        self._entropy_coef = self._renamed("entropy_coef")
        self._perm_entropy_coef = self._renamed("perm_entropy_coef")

    def on_batch_begin(self, X: Any, y: Any) -> None:
        perm = self._perm()
        if perm is None or perm.frozen:
            return
        frac = min(self.n_steps_ / max(self._perm_steps, 1), 1.0)
        (t0, t1), (i0, i1) = self.tau_range, self.sinkhorn_iters
        perm.tau = math.exp(math.log(t0) + frac * (math.log(t1) - math.log(t0)))
        perm.n_iters = int(round(i0 + frac * (i1 - i0)))

    def on_batch_end(self, X: Any, y: Any, loss: Any) -> None:
        perm = self._perm()
        if perm is not None and not perm.frozen and self.n_steps_ >= self._perm_steps:
            perm.harden_()

    def on_epoch_end(self, epoch: int) -> dict[str, Any]:
        total, le_k, count = self._stats
        self._stats = [0.0, 0.0, 0]
        return {"mean_nnz": total / max(count, 1), "frac_le_k": le_k / max(count, 1)}

    def on_train_end(self) -> None:
        load = self._load
        self.expert_load_ = (load / load.sum().clamp_min(1e-300)).numpy()
        perm = self._perm()
        if perm is None:
            self.permutation_ = None
        else:  # the permutation used at inference (hardened, or the rounding of the soft one)
            self.permutation_ = perm._round(perm.matrix()).argmax(1).cpu().numpy()

    @rowwise(n_outputs=lambda est: est.n_experts, dtype=lambda est, _: np.float64)
    def gate_weights(self, X: Any) -> np.ndarray:
        """Gate weights of every sample over the experts.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        g : ndarray of shape (n_samples, n_experts)
            Non-negative weights summing to 1 per row.
        """
        check_is_fitted(self)
        self.module_.gate.hard_eval = bool(self.hard_routing)
        return self._predict_batches(X, lambda xb: self.module_.gate(xb)[0])

    def selected_experts(self, X: Any, tol: float = 1e-5) -> np.ndarray:
        """Which experts each sample uses (gate weight above ``tol``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.
        tol : float, default=1e-5
            Threshold of conditional computation.

        Returns
        -------
        mask : ndarray of bool of shape (n_samples, n_experts)
            Selected experts.
        """
        return self.gate_weights(X) > tol


_PARAMS = """
    n_experts : int, default=8
        Number of experts ``n``.
    k : int, default=2
        Cardinality: trees of the COMET gate, selectors of DSelect-k, experts of Top-k.
    gate : {'comet', 'topk', 'dselect_k', 'hash', 'softmax'}, default='comet'
        The gate (softmax is the dense reference; hash is a fixed, non-learned routing,
        see ``hash_feature``).
    expert_hidden : tuple of int, default=(64,)
        Hidden widths of each MLP expert.
    expert_dropout : float, default=0.0
        Dropout inside the experts.
    gamma : float, default=1.0
        Smooth-step width of the COMET and DSelect-k gates.
    entropy_coef : float, default=0.1
        Weight of the routing-entropy penalty (drives COMET routing to binary).
    local_search : bool, default=False
        Learn a leaf-to-expert permutation (Sinkhorn, then Hungarian-hardened and frozen
        after ``perm_epochs`` epochs): the "+" variants of the paper.
    perm_epochs : int, default=3
        Epochs of the soft permutation phase.
    perm_entropy_coef : float, default=1e-4
        Entropy penalty of the soft permutation.
    tau_range : tuple of float, default=(1e-3, 1e-7)
        Sinkhorn temperature, decayed log-linearly over the permutation phase.
    sinkhorn_iters : tuple of int, default=(20, 150)
        Sinkhorn iterations, raised linearly over the permutation phase.
    hash_feature : int or None, default=None
        Hash gate only: column of ``X`` holding a categorical id (e.g. a user id, rounded to
        an integer) that ``k`` seeded universal hashes map to experts; None hashes the rows
        by ``k`` seeded random-hyperplane partitions through the training mean.
    hard_routing : bool, default=True
        Route hard at prediction (``predict``, ``predict_proba``, ``gate_weights``,
        ``selected_experts``, the validation loss): every smooth-step output of the COMET
        and DSelect-k gates is rounded to its more likely side, so each tree (selector)
        picks one expert and at most ``k`` experts are used per sample, by construction.
        It changes nothing for samples whose soft routing is already binary. Training
        always routes softly. False predicts with the soft gate.
    lr : float, default=1e-3
        Learning rate.
    batch_size : int, default=256
        Mini-batch size.
    max_epochs : int or "auto", default="auto"
        Training epochs; ``"auto"``: at least 60 epochs and 1000 optimiser steps, at most
        300 epochs.
    optimizer : {'adam', 'adamw', 'sgd'} or torch.optim.Optimizer class, default='adam'
        Optimizer; ``optimizer__*`` / ``module__*`` parameters are routed.
    early_stopping : bool, default=False
        Stop when the loss on a held-out ``validation_fraction`` has not improved by
        ``tol`` for ``n_iter_no_change`` epochs (the paper used a patience of 25).
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
        Routed ``optimizer__*`` / ``module__*`` parameters; the former names
        ``entropy_reg`` and ``perm_entropy_reg`` still work for one release, with a
        ``FutureWarning``."""

_ATTRS = """
    module_ : MixtureOfExperts
        The fitted mixture (gate in ``module_.gate``).
    n_features_in_ : int
        Number of input features.
    expert_load_ : ndarray of shape (n_experts,)
        Share of the gate weight each expert received in the last fit call.
    permutation_ : ndarray of int or None
        Expert of every leaf after local search (None without it).
    n_iter_ : int
        Epochs run.
    loss_curve_ : list of float
        Training loss per epoch.
    history_ : list of dict
        Per-epoch ``train_loss``, ``mean_nnz`` (mean number of experts with weight > 1e-5)
        and ``frac_le_k`` (fraction of training samples routed to at most ``k`` experts)."""

_NOTES = """
    COMET gate: ``k`` heap-ordered soft binary trees with one leaf per expert; node ``o`` of
    tree ``i`` sends ``x`` left with probability ``S_gamma(w x + b)`` (cubic smooth-step,
    exactly 0 or 1 outside ``[-gamma/2, gamma/2]``); the gate is a softmax over the ``k n``
    logits ``a_ij(x) + log P_ij(x)`` summed per expert, so once every routing is binary each
    tree reaches one leaf and at most ``k`` experts have nonzero weight. The entropy of the
    leaf distributions, weighted by ``entropy_coef``, pushes routing to binary.
    Experts are evaluated densely in training (one batched product);
    ``module_.forward_sparse`` evaluates only the selected experts (conditional computation).
    At prediction the routing is hard by default (``hard_routing``): each node follows its
    more likely branch, so the at-most-``k`` property holds for every sample by
    construction, also for samples whose soft routing has not become binary in training;
    with ``local_search`` inference always uses a hard permutation (the Hungarian rounding of
    the soft one if training stopped before ``perm_epochs``).
    The Hash gate routes a categorical id (``hash_feature``) through ``k`` seeded universal
    hashes, or, without it, the rows through seeded random-hyperplane codes.
    Not specified by the paper, chosen here: one permutation shared by all trees (the
    simplest form of its local search), the renormalisation of DSelect-k when
    ``n_experts`` is not a power of two (so its weights still sum to 1), the row-entropy
    form of the permutation penalty (it vanishes exactly at a permutation), hard routing
    at prediction (so the at-most-``k`` property holds for every sample), and the hash
    functions and ``1/k`` weights of the Hash gate (the usual universal hashes). Cost per
    step: O(B (k n d + n * expert FLOPs)).

    ``sample_weight`` weights the loss of each row and its routing-entropy penalty (rows
    of weight 0 are left out); a weighted fit equals the fit on repeated rows to float32
    rounding with full batches.

    References
    ----------
    .. [1] S. Ibrahim, W. Chen, H. Hazimeh, N. Ponomareva, Z. Zhao, R. Mazumder, "COMET:
       Learning Cardinality Constrained Mixture of Experts with Trees and Local Search",
       KDD 2023, arXiv:2306.02824.
    .. [2] H. Hazimeh et al., "DSelect-k: Differentiable Selection in the Mixture of Experts
       with Applications to Multi-Task Learning", NeurIPS 2021."""


def _doc(head: str, example: str) -> str:
    return f"""{head}

    Parameters
    ----------{_PARAMS}

    Attributes
    ----------{_ATTRS}

    Notes
    -----{_NOTES}

    Examples
    --------{example}
    """


class COMETMoEClassifier(TorchClassifierMixin, ClassifierMixin, _COMETBase):
    __doc__ = _doc(
        "Mixture-of-experts classifier with a cardinality-constrained (COMET) sparse gate.",
        """
    >>> from sklearn.datasets import load_iris
    >>> from sparsestat.neural import COMETMoEClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = COMETMoEClassifier(n_experts=4, k=1, expert_hidden=(8,), max_epochs=20,
    ...                          lr=0.01, random_state=0).fit(X, y)
    >>> clf.gate_weights(X[:2]).shape
    (2, 4)""",
    )

    def __init__(
        self,
        n_experts=8,
        k=2,
        gate="comet",
        expert_hidden=(64,),
        expert_dropout=0.0,
        gamma=1.0,
        entropy_coef=0.1,
        local_search=False,
        perm_epochs=3,
        perm_entropy_coef=1e-4,
        tau_range=(1e-3, 1e-7),
        sinkhorn_iters=(20, 150),
        hash_feature=None,
        hard_routing=True,
        lr=1e-3,
        batch_size=256,
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
        self.n_experts = n_experts
        self.k = k
        self.gate = gate
        self.expert_hidden = expert_hidden
        self.expert_dropout = expert_dropout
        self.gamma = gamma
        self.entropy_coef = entropy_coef
        self.local_search = local_search
        self.perm_epochs = perm_epochs
        self.perm_entropy_coef = perm_entropy_coef
        self.tau_range = tau_range
        self.sinkhorn_iters = sinkhorn_iters
        self.hash_feature = hash_feature
        self.hard_routing = hard_routing
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


class COMETMoERegressor(TorchRegressorMixin, RegressorMixin, _COMETBase):
    __doc__ = _doc(
        "Mixture-of-experts regressor with a cardinality-constrained (COMET) sparse gate.",
        """
    >>> from sklearn.datasets import load_diabetes
    >>> from sparsestat.neural import COMETMoERegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = COMETMoERegressor(n_experts=4, k=2, gate="topk", max_epochs=5,
    ...                         random_state=0).fit(X, y)
    >>> int(reg.selected_experts(X[:3]).sum(1).max())
    2""",
    )

    __init__ = COMETMoEClassifier.__init__
