"""QuickSelection: unsupervised feature selection with a SET-trained sparse autoencoder."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted

from sparsestat.neural import import_torch
from sparsestat.neural._base import BaseTorchEstimator
from sparsestat.neural.layers._dst import SET
from sparsestat.neural.layers._masked import MaskedLinear
from sparsestat.neural.layers._mlp import get_activation
from sparsestat.utils._compat import Interval, StrOptions
from sparsestat.utils._dask import rowwise

torch = import_torch()
nn = torch.nn

__all__ = ["QuickSelection"]


class _SparseDAE(nn.Module):
    """``d -> h -> d`` sparse denoising autoencoder with Erdős–Rényi masks."""

    def __init__(self, d, h, density_scale, hidden_act, output_act, dropout, gen):
        super().__init__()
        self.encoder = MaskedLinear(
            d, h, density=min(1.0, density_scale * (d + h) / (d * h)), generator=gen
        )
        self.decoder = MaskedLinear(
            h, d, density=min(1.0, density_scale * (d + h) / (d * h)), generator=gen
        )
        with torch.no_grad():
            for layer in (self.encoder, self.decoder):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) / 10.0)
                layer.bias.zero_()
                layer.apply_mask_()
        self.hidden_act = get_activation(hidden_act)
        self.output_act = get_activation("identity" if output_act == "linear" else output_act)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x):
        return self.output_act(self.decoder(self.drop(self.hidden_act(self.encoder(x)))))


class QuickSelection(SelectorMixin, BaseTorchEstimator):
    """Unsupervised feature selection by the strength of input neurons of a sparse autoencoder.

    A denoising autoencoder ``d -> hidden_units -> d`` with Erdős–Rényi sparse connectivity
    is trained with Sparse Evolutionary Training (SET): after every epoch but the last, the
    fraction ``drop_fraction`` of the positive and of the negative connections closest to
    zero is
    removed and as many random connections are added. The importance of input feature ``i``
    is its strength, the sum of ``|W1[j, i]|`` over its active connections into the hidden
    layer; the ``n_features_to_select`` strongest features are kept.

    Parameters
    ----------
    n_features_to_select : int, float or None, default=None
        Number of features kept (a float in (0, 1] is a fraction of the features; None keeps
        half).
    hidden_units : int, default=1000
        Width of the hidden layer.
    density_scale : float, default=13
        Erdős–Rényi scale (the paper's epsilon): layer density
        ``density_scale (n_in + n_out) / (n_in n_out)``,
        clipped at 1.
    drop_fraction : float, default=0.2
        Fraction of connections removed and regrown after each epoch.
    noise_factor : float, default=0.2
        Standard deviation of the Gaussian input noise, drawn once per fit.
    dropout : float, default=0.2
        Dropout on the hidden layer.
    importance : {"strength", "degree"}, default="strength"
        Neuron strength (sum of absolute weights) or degree (number of connections).
    standardize : bool, default=True
        Train on standardized features (``transform`` still returns the original columns).
    hidden_activation : {"sigmoid", "relu", "tanh"}, default="sigmoid"
        Hidden activation.
    output_activation : {"linear", "tanh", "sigmoid"}, default="linear"
        Output activation (the paper uses linear outputs, tanh for Madelon).
    weight_decay : float, default=1e-5
        Decoupled per-step shrinkage ``W <- W - weight_decay * W`` (not scaled by ``lr``).
    lr : float, default=0.01
        Learning rate (``learning_rate`` in the paper's code).
    batch_size : int, default=100
        Mini-batch size.
    max_epochs : int or "auto", default="auto"
        Training epochs; ``"auto"``: at least 100 epochs (the paper's) and 1000 optimiser
        steps, at most 300 epochs.
    optimizer : {"sgd", "adam", "adamw"} or optimizer class, default="sgd"
        Optimizer; SGD uses momentum 0.9 unless ``optimizer__momentum`` is given.
    early_stopping : bool, default=False
        Stop when the reconstruction loss on a held-out ``validation_fraction`` has not
        improved by ``tol`` for ``n_iter_no_change`` epochs.
    validation_fraction : float, default=0.1
        Hold-out fraction for early stopping.
    n_iter_no_change : int, default=10
        Early-stopping patience.
    tol : float, default=1e-4
        Minimal improvement of the validation loss.
    warm_start : bool, default=False
        Continue from the previous fit.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to train.
    random_state : int, RandomState instance or None, default=None
        Seed of masks, weights, noise, batches and growth.
    verbose : int, default=0
        Progress bar over epochs when > 0.
    **kwargs : dict
        Routed ``optimizer__*`` parameters; the former names ``epsilon`` (now
        ``density_scale``: in this library ``epsilon`` is a privacy budget only) and
        ``zeta`` still work for one release, with a ``FutureWarning``.

    Attributes
    ----------
    feature_importances_ : ndarray of shape (n_features,)
        Strength (or degree) of every input neuron.
    ranking_ : ndarray of shape (n_features,)
        Rank of each feature by importance (1 = most important; ties: lower index first).
    support_ : ndarray of bool of shape (n_features,)
        Selected features.
    n_features_to_select_ : int
        Number of selected features.
    autoencoder_ : torch.nn.Module
        The trained sparse autoencoder (same object as ``module_``).
    mean_, scale_ : ndarray of shape (n_features,)
        Standardization used for training.
    nnz_history_ : list of int
        Active connections of both layers after each epoch (constant).
    module_ : torch.nn.Module
        The trained network.
    n_iter_ : int
        Epochs run.
    loss_curve_ : list of float
        Mean reconstruction loss ``0.5 * sum_features (x_hat - x)^2`` per epoch.
    history_ : list of dict
        Per-epoch records.
    n_features_in_ : int
        Number of input features.

    Notes
    -----
    The reconstruction loss is summed over features (averaging divides the gradient by the
    number of features and stalls training at lr 0.01). The paper trains truly sparse
    matrices; here dense tensors with exact masks reproduce the selection, not the speed or
    memory savings. Clipping the density at 1 for tiny inputs is not specified by the
    paper; chosen here because a density above 1 is meaningless. ``transform`` keeps the
    selected columns and, with ``set_output(transform="pandas")``, their names
    (``get_feature_names_out``). ``sample_weight`` weights each row's reconstruction loss
    and the standardisation; rows draw their own input noise, so integer weights equal
    repeated rows in expectation.
    Unsupervised: it finds features that take part in correlated structure; independent
    informative features with no redundant copies are not favoured. Cost per epoch:
    O(n_samples d hidden_units) with dense kernels.

    References
    ----------
    Atashgahi et al., "Quick and Robust Feature Selection: the Strength of Energy-efficient
    Sparse Training for Autoencoders", Machine Learning 111, 2022, arXiv:2012.00560.
    Mocanu et al., Nature Communications 9, 2383 (2018) (SET).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sparsestat.neural import QuickSelection
    >>> X, _ = make_classification(n_samples=200, n_features=20, n_informative=3,
    ...                            n_redundant=5, shuffle=False, random_state=0)
    >>> qs = QuickSelection(n_features_to_select=5, hidden_units=50, max_epochs=5,
    ...                     random_state=0).fit(X)
    >>> qs.transform(X).shape
    (200, 5)
    """

    _routed_prefixes = ("optimizer",)
    _auto_epochs = (100, 1000, 300)
    _renamed_params = {"epsilon": "density_scale", "zeta": "drop_fraction"}

    _parameter_constraints: dict = {
        **BaseTorchEstimator._parameter_constraints,
        "n_features_to_select": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="right"),
            None,
        ],
        "hidden_units": [Interval(Integral, 1, None, closed="left")],
        "density_scale": [Interval(Real, 0, None, closed="neither")],
        "drop_fraction": [Interval(Real, 0, 1, closed="both")],
        "noise_factor": [Interval(Real, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "importance": [StrOptions({"strength", "degree"})],
        "standardize": ["boolean"],
        "hidden_activation": [StrOptions({"sigmoid", "relu", "tanh"})],
        "output_activation": [StrOptions({"linear", "tanh", "sigmoid"})],
        "weight_decay": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        n_features_to_select=None,
        hidden_units=1000,
        density_scale=13,
        drop_fraction=0.2,
        noise_factor=0.2,
        dropout=0.2,
        importance="strength",
        standardize=True,
        hidden_activation="sigmoid",
        output_activation="linear",
        weight_decay=1e-5,
        lr=0.01,
        batch_size=100,
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
        self.n_features_to_select = n_features_to_select
        self.hidden_units = hidden_units
        self.density_scale = density_scale
        self.drop_fraction = drop_fraction
        self.noise_factor = noise_factor
        self.dropout = dropout
        self.importance = importance
        self.standardize = standardize
        self.hidden_activation = hidden_activation
        self.output_activation = output_activation
        self.weight_decay = weight_decay
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

    @property
    def autoencoder_(self):
        """The trained sparse autoencoder (``module_``)."""
        check_is_fitted(self)
        return self.module_

    def _prepare_targets(self, y, fit, sample_weight=None):
        self._fit_weight = sample_weight  # for the standardisation in _build_module
        return None

    def _build_module(self, X, y):
        d = X.shape[1]
        k = self.n_features_to_select
        if k is None:
            k = max(1, d // 2)
        elif isinstance(k, Real) and not isinstance(k, Integral):
            k = max(1, int(round(k * d)))
        if k > d:
            raise ValueError(f"n_features_to_select={k} exceeds the {d} features of X.")
        self.n_features_to_select_ = int(k)
        Xn = X.double().numpy()
        w = self.__dict__.pop("_fit_weight", None)  # weighted moments: of the repeated rows
        self.mean_ = np.average(Xn, axis=0, weights=w) if self.standardize else np.zeros(d)
        var = np.average((Xn - self.mean_) ** 2, axis=0, weights=w)
        scale = np.sqrt(var) if self.standardize else np.ones(d)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        gen = torch.Generator().manual_seed(self._draw_seed())
        self.nnz_history_ = []
        return _SparseDAE(
            d,
            self.hidden_units,
            self._renamed("density_scale"),
            self.hidden_activation,
            self.output_activation,
            self.dropout,
            gen,
        )

    def _train(self, X_cpu, y_t, *, partial, seed, sample_weight=None):
        mean = torch.as_tensor(self.mean_, dtype=torch.float32)
        scale = torch.as_tensor(self.scale_, dtype=torch.float32)
        clean = (X_cpu - mean) / scale
        gen = torch.Generator().manual_seed(seed)
        noisy = clean + self.noise_factor * torch.randn(clean.shape, generator=gen)
        rows = torch.cat([noisy, clean], dim=1)
        super()._train(rows, y_t, partial=partial, seed=seed, sample_weight=sample_weight)

    def _batch_loss(self, X, y, n_train, sample_weight=None):
        d = X.shape[1] // 2
        recon = self.module_(X[:, :d])
        return self._weighted_mean(0.5 * (recon - X[:, d:]).pow(2).sum(dim=1), sample_weight)

    def on_train_begin(self, n_epochs, steps_per_epoch):
        """Attach the SET updater (one update per epoch, none after the last).

        Parameters
        ----------
        n_epochs : int
            Epochs of this call.
        steps_per_epoch : int
            Optimizer steps per epoch.
        """
        horizon = self._resolved_max_epochs() * steps_per_epoch
        self._updater = SET(self._renamed("drop_fraction"), drop="signed", init_std=0.1).attach(
            self.module_,
            self.optimizer_,
            total_steps=horizon,
            steps_per_epoch=steps_per_epoch,
            step=self.n_steps_,
            generator=torch.Generator().manual_seed(self._draw_seed()),
        )

    def on_grad_computed(self, X, y):
        """Zero the gradients of inactive connections.

        Parameters
        ----------
        X : torch.Tensor
            The batch.
        y : None
            Unused.
        """
        self._updater.on_grad_computed()

    def on_batch_end(self, X, y, loss):
        """Decoupled weight decay, masks re-applied, SET update at epoch ends.

        Parameters
        ----------
        X : torch.Tensor
            The batch.
        y : None
            Unused.
        loss : torch.Tensor
            The batch loss.
        """
        if self.weight_decay:
            with torch.no_grad():
                for layer in self._updater.layers:
                    layer.weight.mul_(1.0 - self.weight_decay)
        self._updater.on_batch_end()

    def on_epoch_end(self, epoch):
        """Record the number of active connections.

        Parameters
        ----------
        epoch : int
            Epochs run so far.

        Returns
        -------
        record : dict
            ``{"nnz": ...}`` for ``history_``.
        """
        nnz = int(sum(layer.budget for layer in self._updater.layers))
        self.nnz_history_.append(nnz)
        return {"nnz": nnz}

    def on_train_end(self):
        """Compute ``feature_importances_``, ``ranking_`` and ``support_``."""
        del self._updater
        enc = self.module_.encoder
        if self.importance == "strength":
            imp = (enc.weight.detach().double().abs() * enc.mask).sum(dim=0)
        else:
            imp = enc.mask.sum(dim=0)
        self.feature_importances_ = imp.double().cpu().numpy()
        order = np.argsort(-self.feature_importances_, kind="stable")
        ranking = np.empty(order.size, dtype=np.int64)
        ranking[order] = np.arange(1, order.size + 1)
        self.ranking_ = ranking
        self.support_ = ranking <= self.n_features_to_select_

    @rowwise(n_outputs=lambda est: est.n_features_to_select_, dtype=lambda est, dt: dt)
    def transform(self, X):
        """Keep the selected columns (a dask array gives a lazy dask array).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        X_selected : ndarray of shape (n_samples, ``n_features_to_select_``)
            The columns of ``X`` in ``get_support()``, in their original units.
        """
        return super().transform(X)

    def _get_support_mask(self):
        check_is_fitted(self)
        return self.support_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags
