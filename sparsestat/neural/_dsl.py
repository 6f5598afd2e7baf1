"""Dynamic sparse learning (DSL) for implicit-feedback matrix factorization."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from sparsestat.metrics import recall_at_k
from sparsestat.neural import import_torch
from sparsestat.neural._base import BaseTorchEstimator
from sparsestat.neural.layers._dst import RigL, StaticMask
from sparsestat.neural.layers._masked import MaskedEmbedding
from sparsestat.neural.layers._masks import random_mask
from sparsestat.utils._compat import Interval, StrOptions, fit_context, validate_data
from sparsestat.utils._dask import rowwise

torch = import_torch()

__all__ = ["SparseMatrixFactorization"]


class _MF(torch.nn.Module):
    def __init__(self, n_users, n_items, k, density, scope, generator):
        super().__init__()
        self.user = MaskedEmbedding(n_users, k, density, generator=generator)
        self.item = MaskedEmbedding(n_items, k, density, generator=generator)
        if scope == "global" and density < 1.0:  # one budget drawn over both tables
            sizes = (self.user.weight.numel(), self.item.weight.numel())
            flat = random_mask((sum(sizes),), density, generator)
            with torch.no_grad():
                for emb, part in zip((self.user, self.item), flat.split(sizes)):
                    emb.mask.copy_(part.reshape(emb.mask.shape))
                    emb.weight.copy_(torch.randn(emb.weight.shape, generator=generator) * 0.1)
                    emb.apply_mask_()


class SparseMatrixFactorization(BaseTorchEstimator):
    """Matrix factorization for implicit feedback trained sparse from scratch (DSL).

    User and item factor tables are kept at a fixed number of nonzero entries during the
    whole training: every ``update_interval`` steps a cosine-decaying fraction of the active
    entries with the smallest magnitude is pruned and the same number of inactive entries
    with the largest gradient magnitude is grown (grown at 0). The loss is BPR (Bayesian
    personalised ranking) with one uniformly sampled negative item per observed interaction.

    Parameters
    ----------
    n_components : int, default=32
        Latent dimension.
    sparsity : float in [0, 1), default=0.5
        Fraction of zero entries in the factor tables (0 trains a dense MF).
    alpha : float, default=1e-4
        L2 penalty ``alpha * (|p_u|^2 + |q_i|^2 + |q_j|^2)`` on the batch.
    update_interval : int, default=100
        Optimiser steps between prune / grow updates.
    drop_fraction : float, default=0.5
        Initial fraction of the active entries pruned (and regrown) at an update.
    drop_fraction_min : float, default=0.005
        Final drop fraction of the cosine schedule.
    schedule : {"cosine", "constant"}, default="cosine"
        Drop-fraction schedule over all training steps.
    growth : {"gradient", "momentum", "random"}, default="gradient"
        Growth score of inactive entries.
    scope : {"table", "global"}, default="table"
        Keep a budget per table, or one budget ranked across both tables.
    lr : float, default=1e-2
        Learning rate.
    batch_size : int, default=1024
        Interactions per mini-batch.
    max_epochs : int or "auto", default="auto"
        Epochs over the observed interactions; ``"auto"``: at least 50 epochs and 1000
        optimiser steps, at most 200 epochs.
    optimizer : {"adam", "adamw", "sgd"} or optimizer class, default="adam"
        Optimizer; its other settings route as ``optimizer__<name>``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the interactions and stop when their BPR loss
        stops improving.
    validation_fraction : float, default=0.1
        Hold-out fraction for early stopping.
    n_iter_no_change : int, default=10
        Early-stopping patience in epochs.
    tol : float, default=1e-4
        Minimal improvement of the validation loss.
    warm_start : bool, default=False
        Continue from the previous fit.
    random_state : int, RandomState instance or None, default=None
        Seed of initial masks, factors, shuffling and negative sampling.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to train; fitted factors are NumPy arrays.
    verbose : int, default=0
        Show a progress bar over epochs when > 0.
    **kwargs : dict
        Routed ``optimizer__*`` parameters. The names of earlier releases (``density`` =
        1 - ``sparsity``, ``reg``, ``learning_rate``, ``max_iter``, ``prune_rate``,
        ``prune_rate_min``) still work for one release, with a ``FutureWarning``; ``loss``
        (always BPR) is ignored with a ``FutureWarning``.

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users, n_components)
        User factors P (exactly zero off ``user_mask_``).
    item_factors_ : ndarray of shape (n_items, n_components)
        Item factors Q.
    user_mask_, item_mask_ : ndarray of bool
        Active entries of P and Q.
    budget_ : int
        Number of active entries in P and Q together (constant during training).
    nnz_history_ : list of int
        Active entries after initialisation and after every prune / grow update.
    interactions_ : scipy.sparse.csr_matrix
        The training interactions (used by ``recommend(exclude_seen=True)``).
    module_ : torch.nn.Module
        The trained factor tables.
    n_iter_ : int
        Epochs run.
    loss_curve_ : list of float
        Mean BPR loss per epoch.
    history_ : list of dict
        Per-epoch records.
    n_features_in_ : int
        Number of items.

    Notes
    -----
    The input is any users x items matrix; entries > 0 are observed interactions. The rows
    of ``X`` are users: :meth:`recommend` and :meth:`predict_pairs` score the training
    users (by row index) with their learned factors, while :meth:`decision_function`
    (scores of every item) and :meth:`predict` (the best new item) score any users given by
    their interaction rows, one row at a time (fold-in: the user's factor is the ridge
    solution ``p = (Q^T Q + alpha I)^{-1} Q^T x`` against the learned item factors), so
    they work on new users, in a ``Pipeline`` and on dask arrays. The fold-in is not
    specified by the paper; chosen here because it is the standard closed-form way to score
    users unseen in training with fixed item factors.

    The paper demonstrates DSL on MF, NeuMF, MultVAE and LightGCN; the per-table budget
    (``scope="table"``) of this MF instance is not specified by the paper (its growth
    scope is unclear); chosen here because it keeps both tables at the same density. Cost
    per epoch: O(nnz(X) n_components), plus a sort of each table at every update.

    References
    ----------
    Wang et al., "Dynamic Sparse Learning: A Novel Paradigm for Efficient Recommendation",
    WSDM 2024, arXiv:2402.02855.
    Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI 2009.

    Examples
    --------
    >>> from sparsestat.datasets import make_implicit_feedback
    >>> from sparsestat.neural import SparseMatrixFactorization
    >>> X = make_implicit_feedback(60, 40, rank=3, density=0.1, random_state=0)
    >>> mf = SparseMatrixFactorization(n_components=8, sparsity=0.5, max_epochs=3,
    ...                                batch_size=64, update_interval=5, random_state=0)
    >>> mf = mf.fit(X)
    >>> mf.recommend([0, 1], k=3).shape
    (2, 3)
    >>> mf.predict_pairs([0, 1], [5, 7]).shape
    (2,)
    >>> int(mf.user_mask_.sum() + mf.item_mask_.sum()) == mf.budget_
    True
    """

    _routed_prefixes = ("optimizer",)
    _auto_epochs = (50, 1000, 200)
    _renamed_params = {
        "density": ("sparsity", lambda density: 1.0 - density),
        "reg": "alpha",
        "learning_rate": "lr",
        "max_iter": "max_epochs",
        "prune_rate": "drop_fraction",
        "prune_rate_min": "drop_fraction_min",
        "loss": "loss (always BPR)",
    }

    _parameter_constraints: dict = {
        **BaseTorchEstimator._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "sparsity": [Interval(Real, 0, 1, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "update_interval": [Interval(Integral, 1, None, closed="left")],
        "drop_fraction": [Interval(Real, 0, 1, closed="both")],
        "drop_fraction_min": [Interval(Real, 0, 1, closed="both")],
        "schedule": [StrOptions({"cosine", "constant"})],
        "growth": [StrOptions({"gradient", "momentum", "random"})],
        "scope": [StrOptions({"table", "global"})],
    }

    def __init__(
        self,
        n_components=32,
        sparsity=0.5,
        alpha=1e-4,
        update_interval=100,
        drop_fraction=0.5,
        drop_fraction_min=0.005,
        schedule="cosine",
        growth="gradient",
        scope="table",
        lr=1e-2,
        batch_size=1024,
        max_epochs="auto",
        optimizer="adam",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        warm_start=False,
        random_state=None,
        device="auto",
        verbose=0,
        **kwargs,
    ):
        self.n_components = n_components
        self.sparsity = sparsity
        self.alpha = alpha
        self.update_interval = update_interval
        self.drop_fraction = drop_fraction
        self.drop_fraction_min = drop_fraction_min
        self.schedule = schedule
        self.growth = growth
        self.scope = scope
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
        self.device = device
        self.verbose = verbose
        self._store_routed(kwargs)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # ------------------------------------------------------------------ fitting
    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the sparse factorization on observed interactions.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_items)
            Interactions; entries > 0 are observed.
        y : None
            Ignored.

        Returns
        -------
        self : SparseMatrixFactorization
            The fitted estimator.
        """
        return self._fit(X, None, partial=False)

    def partial_fit(self, X, y=None):
        """One epoch over the interactions ``X`` (the first call initialises the tables).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_items)
            Interactions of the same users and items as the first call.
        y : None
            Ignored.

        Returns
        -------
        self : SparseMatrixFactorization
            The updated estimator.
        """
        if not hasattr(self, "module_"):
            self._validate_params()
        return self._fit(X, None, partial=True)

    def _validate_X_y(self, X, y, reset):
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=reset)
        return X, None

    def _training_rows(self, X):
        """The observed (user, item) pairs: the rows the base class trains on."""
        if "loss" in getattr(self, "_routed_params", {}):
            warnings.warn(
                "SparseMatrixFactorization: the parameter 'loss' had no effect (the loss is "
                "always BPR) and will be removed in sparsestat 0.3; do not pass it.",
                FutureWarning,
                stacklevel=5,
            )
        X = sp.csr_matrix(X > 0, dtype=np.float64)
        X.eliminate_zeros()
        users, items = X.nonzero()
        if users.size == 0:
            raise ValueError("X has no positive entry (no observed interaction).")
        if hasattr(self, "interactions_") and X.shape != self.interactions_.shape:
            raise ValueError(
                f"X has shape {X.shape}; the model was fitted on {self.interactions_.shape} "
                "(same users and items needed to continue training)."
            )
        self.interactions_ = X
        return torch.as_tensor(np.stack([users, items], axis=1), dtype=torch.long)

    def _build_module(self, X, y):
        n_users, n_items = self.interactions_.shape
        gen = torch.Generator().manual_seed(self._draw_seed())
        density = 1.0 - self._renamed("sparsity")
        self._alpha = self._renamed("alpha")
        self.nnz_history_ = []
        return _MF(n_users, n_items, self.n_components, density, self.scope, gen)

    def _make_optimizer(self):
        lr = self._renamed("lr")
        kwargs = {"lr": lr, **self.get_routed_params("optimizer")}
        if self.optimizer == "sgd":
            kwargs.setdefault("momentum", 0.9)
        return self._optimizer_class()(self.module_.parameters(), **kwargs)

    def _resolved_max_epochs(self):
        epochs = self._renamed("max_epochs")
        if epochs != "auto":
            return int(epochs)
        return super()._resolved_max_epochs()

    def _batch_loss(self, X, y, n_train, sample_weight=None):
        u, i = X[:, 0], X[:, 1]
        j = torch.randint(self.interactions_.shape[1], (X.shape[0],), device=X.device)
        m = self.module_
        pu, qi, qj = m.user(u), m.item(i), m.item(j)
        diff = (pu * (qi - qj)).sum(1)
        penalty = (pu.pow(2) + qi.pow(2) + qj.pow(2)).sum(1)
        per_pair = -torch.nn.functional.logsigmoid(diff) + self._alpha * penalty
        return self._weighted_mean(per_pair, sample_weight)

    def on_train_begin(self, n_epochs, steps_per_epoch):
        """Attach the prune / grow updater (RigL-style, cosine drop fraction).

        Parameters
        ----------
        n_epochs : int
            Epochs of this call.
        steps_per_epoch : int
            Optimiser steps per epoch.
        """
        if self._renamed("sparsity") > 0:
            method = RigL(
                drop_fraction=self._renamed("drop_fraction"),
                update_interval=self.update_interval,
                update_end=1.0,
                growth=self.growth,
                schedule=self.schedule,
                drop_fraction_min=self._renamed("drop_fraction_min"),
                scope="global" if self.scope == "global" else "layer",
            )
        else:
            method = StaticMask()
        self._updater = method.attach(
            self.module_,
            self.optimizer_,
            total_steps=self._resolved_max_epochs() * steps_per_epoch,
            step=self.n_steps_,
            generator=torch.Generator().manual_seed(self._draw_seed()),
        )
        self.budget_ = sum(self._updater.budgets)
        if not self.nnz_history_:
            self.nnz_history_.append(self.budget_)

    def on_grad_computed(self, X, y):
        """Read growth scores, then mask the gradients.

        Parameters
        ----------
        X : torch.Tensor
            The batch of (user, item) pairs.
        y : None
            Unused.
        """
        self._updater.on_grad_computed()

    def on_batch_end(self, X, y, loss):
        """Re-apply the masks; prune and grow on update steps.

        Parameters
        ----------
        X : torch.Tensor
            The batch of (user, item) pairs.
        y : None
            Unused.
        loss : torch.Tensor
            The batch loss.
        """
        if self._updater.on_batch_end():
            m = self.module_
            self.nnz_history_.append(int(m.user.budget + m.item.budget))

    def on_train_end(self):
        """Export the factor tables and masks as NumPy arrays."""
        del self._updater
        m = self.module_
        self.user_factors_ = m.user.weight.detach().cpu().double().numpy().copy()
        self.item_factors_ = m.item.weight.detach().cpu().double().numpy().copy()
        self.user_mask_ = m.user.mask.cpu().numpy().copy()
        self.item_mask_ = m.item.mask.cpu().numpy().copy()

    # ------------------------------------------------------------------ inference
    def _check_ids(self, ids, n, name):
        ids = np.asarray(ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"{name} must be a 1-D array of integer ids.")
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            raise ValueError(f"{name} must lie in [0, {n}).")
        return ids

    def _fold_in(self, X):
        """Validated interaction rows (0/1) and their fold-in scores."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
        X = sp.csr_matrix(X > 0, dtype=np.float64)
        Q = self.item_factors_
        gram = Q.T @ Q + max(float(self._alpha), 1e-10) * np.eye(Q.shape[1])
        P = np.linalg.solve(gram, (X @ Q).T).T
        return X, P @ Q.T

    @rowwise(n_outputs=lambda est: est.n_features_in_, dtype=lambda est, _: np.float64)
    def decision_function(self, X):
        """Scores of every item for the users given by their interaction rows (fold-in).

        Each row is scored on its own: its user factor is the ridge solution against the
        learned item factors, so new users can be scored and a dask array gives a lazy
        result block by block.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_items)
            Interactions of the users to score (entries > 0 are observed).

        Returns
        -------
        scores : ndarray of shape (n_rows, n_items)
            Preference scores (higher ranks first).
        """
        return self._fold_in(X)[1]

    @rowwise(dtype=lambda est, _: np.int64)
    def predict(self, X):
        """The best new item of each user given by an interaction row (fold-in scores).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_items)
            Interactions of the users (entries > 0 are observed).

        Returns
        -------
        items : ndarray of int of shape (n_rows,)
            For each row, the item of highest :meth:`decision_function` score among those
            it has not interacted with (ties: the lower id; a row that has seen every item
            gets item 0).
        """
        X, scores = self._fold_in(X)
        rows, cols = X.nonzero()
        scores[rows, cols] = -np.inf
        return np.argmax(scores, axis=1).astype(np.int64)

    def predict_pairs(self, user_ids, item_ids):
        """Scores ``<p_u, q_i>`` of (training user, item) pairs.

        Parameters
        ----------
        user_ids : array-like of int of shape (n_pairs,)
            Rows of the training matrix.
        item_ids : array-like of int of shape (n_pairs,)
            Items.

        Returns
        -------
        scores : ndarray of shape (n_pairs,)
            Predicted preference scores (higher ranks first).
        """
        check_is_fitted(self)
        u = self._check_ids(user_ids, self.user_factors_.shape[0], "user_ids")
        i = self._check_ids(item_ids, self.item_factors_.shape[0], "item_ids")
        if u.shape != i.shape:
            raise ValueError("user_ids and item_ids must have the same length.")
        return np.einsum("ij,ij->i", self.user_factors_[u], self.item_factors_[i])

    def _scores(self, users, exclude_seen):
        scores = self.user_factors_[users] @ self.item_factors_.T
        if exclude_seen:
            seen = self.interactions_[users]
            rows, cols = seen.nonzero()
            scores[rows, cols] = -np.inf
        return scores

    def recommend(self, user_ids, k=10, exclude_seen=True):
        """The ``k`` highest-scoring items of each training user.

        Parameters
        ----------
        user_ids : array-like of int
            Users (rows of the training matrix).
        k : int, default=10
            List length.
        exclude_seen : bool, default=True
            Never recommend an item the user interacted with in training.

        Returns
        -------
        items : ndarray of shape (n_users, k)
            Item ids, best first (ties: lower id first).
        """
        check_is_fitted(self)
        u = self._check_ids(user_ids, self.user_factors_.shape[0], "user_ids")
        if not isinstance(k, Integral) or not 1 <= k <= self.item_factors_.shape[0]:
            raise ValueError(f"k must be an integer in [1, n_items]; got {k!r}.")
        scores = self._scores(u, exclude_seen)
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]

    def score(self, X, y=None, k=10):
        """Mean recall@k of held-out interactions of the training users, seen items excluded.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_items)
            Held-out interactions (entries > 0), same users and items as in ``fit``.
        y : None
            Ignored.
        k : int, default=10
            Cut-off.

        Returns
        -------
        recall : float
            Mean recall@k over users with held-out interactions.
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", reset=False)
        if X.shape[0] != self.user_factors_.shape[0]:
            raise ValueError("X must have one row per user seen in fit.")
        users = np.arange(X.shape[0])
        return recall_at_k(sp.csr_matrix(X > 0), self._scores(users, True), k)
