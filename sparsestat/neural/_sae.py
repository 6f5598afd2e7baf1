"""Sparse autoencoders as a scikit-learn transformer (TopK, BatchTopK, AbsTopK, JumpReLU, ...)."""

from __future__ import annotations

import copy
import math
import time
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from sparsestat._kernels import geomedian as _geomedian  # noqa: F401  (registers the kernel)
from sparsestat._kernels._dispatch import get_kernel
from sparsestat.metrics import fvu, mmcs
from sparsestat.neural._base import BaseTorchEstimator, eager_optimizer, torch
from sparsestat.neural.layers import (
    ACTIVATIONS,
    SAEActivation,
    SparseAutoencoderModule,
    auxk_loss,
    normalize_decoder_,
    project_decoder_grad_,
    sparse_train_step,
)
from sparsestat.neural.layers.sae_activations import (
    FLAT_PARAMETERS,
    activation_from_flat_parameters,
)
from sparsestat.neural.layers.sae_selection import compiled_kernels
from sparsestat.utils._compat import Interval, StrOptions, fit_context, validate_data
from sparsestat.utils._dask import is_dask_array, rowwise

__all__ = ["SparseAutoencoder"]


class _CSRRows:
    """Sparse training data kept as CSR; rows are densified per mini-batch on indexing."""

    def __init__(self, X, device=None):
        self.X = X.astype(np.float32, copy=False)
        self.shape = X.shape
        self.device = torch.device("cpu") if device is None else device

    def to(self, device):
        return _CSRRows(self.X, torch.device(device))

    def __getitem__(self, idx):
        rows = self.X[np.asarray(idx.cpu() if torch.is_tensor(idx) else idx)].toarray()
        return torch.from_numpy(rows).to(self.device)


class SparseAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseTorchEstimator):
    """Sparse autoencoder (dictionary learning by a one-layer encoder) as a transformer.

    Learns a dictionary ``components_`` of ``n_components`` unit atoms and an encoder such
    that ``x ~ z @ components_ + b`` with sparse non-negative (signed for AbsTopK) codes
    ``z = transform(x)``. Nine activations (variants) share one training loop: Adam with
    gradient clipping, unit-norm decoder rows with the parallel gradient removed, encoder
    initialised from the decoder, a geometric-median pre-bias, and a fixed-variance FVU loss.

    Parameters
    ----------
    n_components : int, default=None
        Number of latents F; None means ``8 * n_features_in_``.
    activation : str or activation object, default='topk'
        The variant, an object of :mod:`sparsestat.neural` with its own parameters
        (tunable as ``activation__k`` in a grid search): :class:`~sparsestat.neural.TopK`
        (per-row top-k, Gao et al.), :class:`~sparsestat.neural.BatchTopK` (``k * B`` per
        batch, a threshold at inference), :class:`~sparsestat.neural.AbsTopK` (signed),
        :class:`~sparsestat.neural.JumpReLU` (learnt thresholds),
        :class:`~sparsestat.neural.ReLU` (L1 penalty ``alpha``),
        :class:`~sparsestat.neural.MutualChoice`, :class:`~sparsestat.neural.FeatureChoice`,
        :class:`~sparsestat.neural.TopAFA` (adaptive k by norm matching),
        :class:`~sparsestat.neural.MatchingPursuit` (tied weights) and
        :class:`~sparsestat.neural.GSAE` (a top-k selection steered by downstream
        gradients). A name ('topk', 'batchtopk', 'abstopk', 'jumprelu', 'relu_l1',
        'mutual_choice', 'feature_choice', 'top_afa', 'mp') gives that variant with its
        defaults. The object passed is never modified (``fit`` trains a clone).
    lr : float, default=None
        Learning rate; None means ``2e-4 / sqrt(F / 2**14)`` clipped to [1e-4, 3e-3].
        Linear warm-up over ``min(1000, 5%)`` of the steps, linear decay to 0 over the last
        20% when ``max_epochs > 1``.
    batch_size : int, default=1024
        Minibatch size (clipped to ``n_samples``).
    max_epochs : int or 'auto', default='auto'
        Number of epochs of ``fit``. 'auto' adapts the training length to the data: enough
        epochs for at least 2,000 optimiser steps (so that small data sets are not
        undertrained), at least 1 and at most 1,000 epochs.
    optimizer : {'adam', 'adamw', 'sgd'} or torch.optim.Optimizer subclass, default='adam'
        Optimizer; Adam betas default to the variant's (``(0.9, 0.999)``, ``(0.0, 0.999)``
        for JumpReLU; set them with ``optimizer__betas``).
    aux_coef : float, default=1/32
        Coefficient of the auxiliary loss (AuxK for the top-k family, top-AFA and MP;
        aux_zipf for Mutual and Feature Choice); 0 disables it.
    k_aux : int, default=None
        Auxiliary latents per row; None means ``n_features_in_ // 2`` (at least 1).
    dead_after : int, default=None
        A latent is dead after this many training rows without firing; None means
        ``min(10_000_000, n_samples)`` (one epoch).
    input_scaling : {'expected_norm', 'none'}, default='expected_norm'
        Scale inputs by ``sqrt(d) / mean ||x||`` (estimated on <= 100k rows) for training.
    b_dec_init : {'geometric_median', 'mean', 'zeros'}, default='geometric_median'
        Initial pre-bias.
    sparse_output : bool, default=False
        ``transform`` returns a ``scipy.sparse.csr_matrix``.
    transform_chunk_size : int, default=4096
        Rows encoded at once by ``transform``.
    sparse_path : 'auto' or bool, default='auto'
        Train the fixed-budget top-k family (TopK, AbsTopK, BatchTopK, MutualChoice and a
        g-SAE over them) through the sparse path: only the pre-activations are a dense
        product; decoding gathers the selected decoder rows and the encoder backward touches
        only the selected rows (fused compiled kernels on the CPU, ``embedding_bag``
        elsewhere), the same values and gradients as the dense path to float tolerance.
        'auto' uses it on the CPU and on other devices when ``n_components >= 4096`` and
        ``k <= 64``; Multi-TopK and the other activations always train densely.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows and stop when their loss
        (reconstruction plus the variant's own terms, without AuxK) has not improved by
        ``tol`` for ``n_iter_no_change`` epochs; the best epoch's weights are kept.
    validation_fraction : float in (0, 1), default=0.1
        Fraction of the rows held out for early stopping.
    n_iter_no_change : int, default=5
        Early-stopping patience in epochs.
    tol : float, default=1e-4
        Minimal improvement of the validation loss for early stopping.
    warm_start : bool, default=False
        ``fit`` continues from the previous fit.
    device : {'auto', 'cpu', 'cuda'} or str, default='auto'
        Torch device for training and inference; 'auto' uses CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation and shuffling (forked torch RNG; the global RNG is untouched).
    verbose : int, default=0
        > 0 shows a progress bar over epochs.
    **kwargs : dict
        Routed ``module__*`` / ``optimizer__*`` parameters (e.g. ``optimizer__betas``). The
        former flat variant parameters (``k``, ``multi_topk``, ``l1_coef``, ``jumprelu_*``,
        ``l0_coef``, ``fc_capacity``, ``zipf_exponent``, ``aux_zipf_ratio``, ``afa_coef``,
        ``abstopk_scope``, ``mp_*``, ``threshold_rate``, ``inference_mode``, ``grad_*``,
        ``gradient_fn``) still work for one release with a ``FutureWarning`` and set the
        matching parameter of the activation object.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Decoder dictionary (unit rows unless ``ReLU``), in scaled input units.
    encoder_weight_ : ndarray of shape (n_components, n_features)
        Encoder matrix (equal to ``components_`` for tied matching pursuit).
    encoder_bias_ : ndarray of shape (n_components,)
        Encoder bias (zero for top-AFA and matching pursuit).
    decoder_bias_ : ndarray of shape (n_features,)
        Pre-bias ``b``, in scaled units: ``pre = (s x - b) @ encoder_weight_.T + encoder_bias_``
        and ``inverse_transform(z) = (z @ components_ + b) / s``.
    input_scale_ : float
        The input scale ``s``.
    threshold_ : float or ndarray of shape (n_components,) or None
        Inference threshold(s) (batch variants, Feature Choice, JumpReLU), else None.
    feature_density_ : ndarray of shape (n_components,)
        Firing frequency of each latent in the last training epoch.
    dead_latents_ : ndarray of bool of shape (n_components,)
        Latents that did not fire in the last ``dead_after`` training rows; ``fit`` warns
        when they are more than half of the latents.
    n_dead_latents_ : int
        Number of dead latents (``dead_latents_.sum()``).
    activation_ : SAEActivation
        The trained activation (a clone of ``activation`` with ``k`` resolved and its
        thresholds or statistics).
    history_ : list of dict
        Per epoch: epoch, train_loss, lr, fvu, l0, dead_fraction, seconds, samples_per_s.
    loss_curve_ : list of float
        Mean training loss per epoch.
    n_iter_ : int
        Epochs (or ``partial_fit`` passes) run.
    n_steps_ : int
        Optimiser steps taken.
    optimizer_ : torch.optim.Optimizer
        The optimizer (kept for ``partial_fit``).
    device_ : torch.device
        Device of the last fit.
    converged_ : bool
        True unless early stopping ran out of epochs.
    n_epochs_ : int
        Epochs planned by the last ``fit`` (``max_epochs`` resolved when 'auto').
    best_loss_ : float or None
        Best validation loss with early stopping.
    n_components_ : int
        Number of latents.
    k_ : int or None
        The resolved number of active latents per row (None for ReLU and top-AFA).
    lr_ : float
        The resolved base learning rate.
    module_ : SparseAutoencoderModule
        The fitted torch module (on CPU after unpickling).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features,)
        Feature names, when ``X`` has string column names.

    Notes
    -----
    Not specified by the papers, chosen here: the learning-rate schedule (a linear warm-up
    and decay, as dictionary_learning); inference by learnt thresholds for Mutual and
    Feature Choice (batch independent codes, as SAELens saves BatchTopK); the CPU-scale
    defaults of :class:`~sparsestat.neural.JumpReLU` (see its Notes); the training length
    ``max_epochs='auto'`` (at least 2,000 steps: on 6,000 rows of a planted dictionary with
    d = 32, 64 atoms and 3 active per row, 20 epochs of 6 steps recover the atoms at mean
    max-cosine below 0.85, the 2,000-step rule above 0.9; ``tests/test_user_scenarios.py``).
    ``sample_weight`` weights every per-row term (reconstruction, AuxK and its variance,
    the variants' penalties), the input scale, the data variance, the geometric-median
    pre-bias and the firing statistics, so that with full-batch training and a per-row
    selection integer weights equal repeated rows (to float32 rounding). Batch budgets
    (BatchTopK, Mutual and Feature Choice) count rows, not weights. Weighted fits take the
    autograd path on the CPU.
    The loss is ``||x - x_hat||^2 / var0`` with ``var0`` the data variance fixed at
    initialisation, so it is an FVU estimate; the L1 and AFA terms are divided by ``var0``
    too. A single-epoch ``fit`` keeps the learning rate constant after warm-up, like
    ``partial_fit``, so that one ``partial_fit`` equals ``fit(max_epochs=1)``.
    Training runs in float32; ``transform`` computes in float64 for float64 input (so codes
    do not depend on the chunking) and returns the input's float dtype. Sparse (CSR) input
    stays sparse: training densifies one mini-batch at a time and ``transform`` one chunk at
    a time. Cost per step O(B F d) for the pre-activations; with the sparse path the rest
    costs O(B k d) (the dense path: about five more O(B F d) products). On the CPU with the
    compiled kernels the sparse path skips autograd altogether: one fused kernel
    (``sae_step_grads``) computes the loss and every gradient (AuxK included), equal to the
    autograd step to float rounding (tested to 1e-10 in float64); inside
    ``sparsestat._kernels._dispatch.force_backend("generic")`` the CPU runs the autograd
    path of other devices instead.
    The global gradient clip bounds the gradient of the unnormalised error
    ``mean ||x - x_hat||^2`` at 1 (our loss is divided by ``var0``, so its gradient is
    clipped at ``1 / var0``), which is what the clip at 1.0 of SAELens and
    dictionary_learning does on their unnormalised MSE (clipping the normalised loss at 1.0
    would almost never act).

    References
    ----------
    .. [1] Gao et al., "Scaling and evaluating sparse autoencoders", arXiv:2406.04093, 2024.
    .. [2] Bussmann, Leask, Nanda, "BatchTopK Sparse Autoencoders", arXiv:2412.06410, 2024.
    .. [3] Ayonrinde, "Adaptive Sparse Allocation with Mutual Choice & Feature Choice Sparse
       Autoencoders", arXiv:2411.02124, 2024.
    .. [4] Zhu, Khalili, Zhu, "AbsTopK: Rethinking Sparse Autoencoders For Bidirectional
       Features", arXiv:2510.00404, 2025.
    .. [5] Rajamanoharan et al., "Jumping Ahead: Improving Reconstruction Fidelity with
       JumpReLU Sparse Autoencoders", arXiv:2407.14435, 2024.
    .. [6] Lee et al., "Evaluating and Designing Sparse Autoencoders by Approximating
       Quasi-Orthogonality", arXiv:2503.24277, 2025.
    .. [7] Costa et al., "From Flat to Hierarchical: Extracting Sparse Representations with
       Matching Pursuit", arXiv:2506.03093, 2025.
    .. [8] Olmo et al., "Features that Make a Difference: Leveraging Gradients for Improved
       Dictionary Learning", arXiv:2411.10397, 2024.

    Examples
    --------
    >>> from sparsestat.datasets import make_planted_features
    >>> from sparsestat.neural import SparseAutoencoder, TopK
    >>> X, _, atoms = make_planted_features(2000, 16, 32, random_state=0)
    >>> sae = SparseAutoencoder(64, activation=TopK(k=4), max_epochs=3, random_state=0).fit(X)
    >>> Z = sae.transform(X)
    >>> Z.shape, int((Z != 0).sum(axis=1).max())
    ((2000, 64), 4)
    """

    #: ``max_epochs='auto'``: at least 1 epoch and 2,000 optimiser steps, at most 1,000 epochs
    _auto_epochs = (1, 2000, 1000)
    #: ``optimizer__*`` only: the module takes no routed parameters
    _routed_prefixes = ("optimizer",)

    _parameter_constraints: dict = {
        **BaseTorchEstimator._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "activation": [StrOptions(set(ACTIVATIONS)), SAEActivation],
        "lr": [Interval(Real, 0, None, closed="neither"), None],
        "aux_coef": [Interval(Real, 0, None, closed="left")],
        "k_aux": [Interval(Integral, 1, None, closed="left"), None],
        "dead_after": [Interval(Integral, 1, None, closed="left"), None],
        "input_scaling": [StrOptions({"expected_norm", "none"})],
        "b_dec_init": [StrOptions({"geometric_median", "mean", "zeros"})],
        "sparse_output": ["boolean"],
        "transform_chunk_size": [Interval(Integral, 1, None, closed="left")],
        "sparse_path": [StrOptions({"auto"}), "boolean"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        activation="topk",
        lr=None,
        batch_size=1024,
        max_epochs="auto",
        optimizer="adam",
        aux_coef=1 / 32,
        k_aux=None,
        dead_after=None,
        input_scaling="expected_norm",
        b_dec_init="geometric_median",
        sparse_output=False,
        transform_chunk_size=4096,
        sparse_path="auto",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        tol=1e-4,
        warm_start=False,
        device="auto",
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        self.n_components = n_components
        self.activation = activation
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.optimizer = optimizer
        self.aux_coef = aux_coef
        self.k_aux = k_aux
        self.dead_after = dead_after
        self.input_scaling = input_scaling
        self.b_dec_init = b_dec_init
        self.sparse_output = sparse_output
        self.transform_chunk_size = transform_chunk_size
        self.sparse_path = sparse_path
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.warm_start = warm_start
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self._store_routed(kwargs)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self):
        return self.n_components_

    @property
    def activation_(self):
        """The trained activation object (the one inside ``module_``)."""
        return self.module_.act

    # ------------------------------------------------------------------ variants
    def _is_routed(self, key):
        # the deprecated flat variant parameters are kept with the routed ones
        return key in FLAT_PARAMETERS or super()._is_routed(key)

    def _resolve_activation(self, warn=False, stacklevel=2):
        """A fresh activation object: ``activation`` with the deprecated flat parameters."""
        routed = getattr(self, "_routed_params", {})
        old = {k: v for k, v in routed.items() if k in FLAT_PARAMETERS}
        act = activation_from_flat_parameters(self.activation, old)
        if warn and old:
            warnings.warn(
                f"SparseAutoencoder parameters {sorted(old)} are deprecated and will be "
                f"removed in the next release: set them on the activation object, here "
                f"activation={act!r}.",
                FutureWarning,
                stacklevel=stacklevel,
            )
        return act

    def _warn_dead_latents(self, stacklevel):
        if self.n_dead_latents_ > 0.5 * self.n_components_:
            warnings.warn(
                f"SparseAutoencoder: {self.n_dead_latents_} of {self.n_components_} latents "
                f"did not fire in the last {self._dead_after} training rows (dead_latents_). "
                "Fewer n_components, more training (max_epochs, lr) or a larger aux_coef "
                "usually revive them.",
                UserWarning,
                stacklevel=stacklevel,
            )

    # ------------------------------------------------------------------ fit entry points
    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None, sample_gradients=None):
        """Train the autoencoder (``max_epochs`` epochs, or until early stopping).

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
            Training data. A dask array (for example a zarr store opened with
            ``dask.array.from_zarr``) is streamed: each epoch is one ``partial_fit`` call
            per row block, in order, one block in memory at a time.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights (None: all 1); rows of weight 0 are left out.
        sample_gradients : array-like of shape (n_samples, n_features), default=None
            Downstream gradients at each row, for a :class:`~sparsestat.neural.GSAE`
            activation (ignored by the others).

        Returns
        -------
        self : SparseAutoencoder
            The fitted estimator.
        """
        self._resolve_activation(warn=True, stacklevel=4)  # warns for the old flat names
        if is_dask_array(X):
            if sample_gradients is not None:
                raise ValueError(
                    "sample_gradients cannot be streamed with a dask X; give the GSAE "
                    "activation a gradient_fn, or call partial_fit on each block"
                )
            with warnings.catch_warnings():  # fit has warned about old names already
                warnings.filterwarnings("ignore", "SparseAutoencoder parameters", FutureWarning)
                self._fit_streaming(X, None, sample_weight=sample_weight)
        else:
            G = self._check_gradients(X, sample_gradients)
            self._fit(X, G, partial=False, sample_weight=sample_weight)
        self._warn_dead_latents(stacklevel=4)
        return self

    def partial_fit(self, X, y=None, sample_weight=None, sample_gradients=None):
        """One pass over ``X`` in minibatches; the first call initialises the model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of training data.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights, relative within this chunk.
        sample_gradients : array-like of shape (n_samples, n_features), default=None
            Downstream gradients (g-SAE).

        Returns
        -------
        self : SparseAutoencoder
            The updated estimator.
        """
        if not hasattr(self, "module_"):
            self._validate_params()
            self._resolve_activation(warn=True, stacklevel=3)
        G = self._check_gradients(X, sample_gradients)
        return self._fit(X, G, partial=True, sample_weight=sample_weight)

    def _check_gradients(self, X, sample_gradients):
        if sample_gradients is None:
            return None
        G = check_array(sample_gradients, dtype=np.float32)
        if G.shape != tuple(X.shape):
            raise ValueError(f"sample_gradients must have shape {X.shape}; got {G.shape}")
        return G

    # ------------------------------------------------------------------ base hooks
    def _validate_X_y(self, X, y, reset):
        # the first batch sets the pre-bias and the input scale, which one row cannot define;
        # ``y`` carries the downstream gradients (g-SAE), row-aligned with X
        X = validate_data(
            self,
            X,
            reset=reset,
            accept_sparse="csr",
            dtype=(np.float32, np.float64),
            ensure_min_samples=2 if reset else 1,
        )
        return X, y

    def _training_rows(self, X):
        # sparse input stays CSR and is densified per mini-batch (O(batch * d) memory)
        return _CSRRows(X) if sp.issparse(X) else super()._training_rows(X)

    def _prepare_targets(self, y, fit, sample_weight=None):
        # the weights of this call (rows of weight 0 removed), for the initial statistics
        w = None if sample_weight is None else np.asarray(sample_weight)
        # equal weights (after the rows of weight 0 are removed) are no weights
        self._call_weights = None if w is None or bool(np.all(w == w[0])) else w
        # the base divides the batch weights by their mean: this restores them (row counts)
        self._weight_mean = 1.0 if self._call_weights is None else float(np.mean(w))
        return None if y is None else torch.as_tensor(np.asarray(y, dtype=np.float32))

    def _build_module(self, X, y):
        n, d = X.shape
        self.n_components_ = int(self.n_components or 8 * d)
        act = self._resolve_activation()
        weights = getattr(self, "_call_weights", None)
        rows = torch.randperm(n)[:100_000] if n > 100_000 else torch.arange(n)
        sample = (X[rows] if n > 100_000 or isinstance(X, _CSRRows) else X).double()
        w = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)[rows]
        w = None if w is None else w / w.sum()

        def mean(values):  # (weighted) mean over the sampled rows
            return values.mean(0) if w is None else (w[:, None] * values).sum(0)

        if self.input_scaling == "expected_norm":
            mean_norm = float(mean(sample.norm(dim=1)[:, None])[0])
            self.input_scale_ = math.sqrt(d) / mean_norm if mean_norm > 0 else 1.0
        else:
            self.input_scale_ = 1.0
        scaled = sample * self.input_scale_
        var0 = float(mean((scaled - mean(scaled)).square().sum(1)[:, None])[0])
        self._var0 = var0 if var0 > 0 else 1.0
        module = SparseAutoencoderModule(
            d,
            self.n_components_,
            act,
            batch_size=min(self.batch_size, n),
            **self.get_routed_params("module"),
        )
        self.k_ = act.n_active
        with torch.no_grad():
            if self.b_dec_init == "geometric_median":
                part = scaled[:32_768]
                wpart = None if w is None else w[:32_768]
                median = get_kernel("geometric_median", part)(part, weights=wpart)
                module.b_dec.copy_(median)
            elif self.b_dec_init == "mean":
                module.b_dec.copy_(mean(scaled))
        n_rows = n if weights is None else float(np.sum(weights))  # repeated-row equivalent
        self._dead_after = int(self.dead_after or min(10_000_000, max(1, round(n_rows))))
        self._k_aux = int(self.k_aux or max(1, d // 2))
        self._since_fired = torch.zeros(self.n_components_, dtype=torch.long)
        self._warmup_steps = None
        return module

    def _make_optimizer(self):
        lr = self.lr
        if lr is None:
            lr = min(max(2e-4 / math.sqrt(self.n_components_ / 2**14), 1e-4), 3e-3)
        self.lr_ = float(lr)
        kwargs = {"lr": self.lr_, **self.get_routed_params("optimizer")}
        if self.optimizer in ("adam", "adamw"):
            kwargs.setdefault("betas", tuple(self.module_.act.adam_betas))
            cls = torch.optim.Adam if self.optimizer == "adam" else torch.optim.AdamW
        elif self.optimizer == "sgd":
            kwargs.setdefault("momentum", 0.9)
            cls = torch.optim.SGD
        else:
            return self.optimizer(self.module_.parameters(), **kwargs)
        cls = eager_optimizer(cls)
        if cls is not torch.optim.SGD and "foreach" not in kwargs:
            # the fused Adam kernel (CPU and CUDA): faster steps at SAE sizes
            try:
                return cls(self.module_.parameters(), **{"fused": True, **kwargs})
            except (RuntimeError, TypeError, ValueError):  # older torch / unsupported device
                pass
        return cls(self.module_.parameters(), **kwargs)

    def on_train_begin(self, n_epochs, steps_per_epoch):
        """Fix the warm-up length and the schedule of this fit call.

        Parameters
        ----------
        n_epochs : int
            Epochs of this call.
        steps_per_epoch : int
            Optimiser steps per epoch.
        """
        total = n_epochs * steps_per_epoch
        if self._warmup_steps is None:  # fixed by the first fit / partial_fit call
            self._warmup_steps = min(1000, max(1, int(0.05 * total)))
        self._schedule = (self.n_steps_, total, n_epochs > 1)
        self._epoch_stats = None

    def _lr_factor(self):
        begin, total, decay = self._schedule
        step = self.n_steps_ - begin
        factor = min(1.0, (self.n_steps_ + 1) / self._warmup_steps)
        if decay:
            start = int(0.8 * total)
            if step >= start:
                factor = min(factor, max(0.0, (total - step) / max(total - start, 1)))
        return factor

    def on_batch_begin(self, X, y):
        """Set the scheduled learning rate.

        Parameters
        ----------
        X : Tensor of shape (B, d)
            The batch (raw units).
        y : Tensor of shape (B, d) or None
            Its downstream gradients (g-SAE), if any.
        """
        for group in self.optimizer_.param_groups:
            group["lr"] = self.lr_ * self._lr_factor()
        if self._epoch_stats is None:
            self._epoch_stats = {
                "t0": time.perf_counter(),
                "err": 0.0,
                "rows": 0,
                "counts": torch.zeros(self.n_components_, dtype=torch.float64),
            }

    def _use_sparse_path(self):
        m = self.module_
        if self.sparse_path is False or not m.supports_sparse:
            return False
        if self.sparse_path is True or m.W_dec.device.type == "cpu":
            return True
        return self.n_components_ >= 4096 and (self.k_ or 0) <= 64

    def _use_manual_step(self):
        """Whether a training step can skip autograd (sparse path, CPU, compiled kernels)."""
        m = self.module_
        return (
            m.W_dec.device.type == "cpu"
            and m.W_dec.dtype in (torch.float32, torch.float64)
            and self._use_sparse_path()
            and compiled_kernels()
        )

    def _aux_mask(self):
        """Latents of the auxiliary loss (dead or under-used), or None without one."""
        if self.aux_coef <= 0:
            return None
        return self.module_.act.aux_mask(self._since_fired, self._dead_after)

    def _manual_batch_loss(self, X, y):
        """The sparse-path step without autograd (see ``sparse_train_step``).

        Returns the loss as a tensor without a graph, so that the base skips ``backward``;
        ``on_grad_computed`` (projection and clipping) runs next as for autograd.
        """
        m = self.module_
        xb = X * self.input_scale_
        loss, err, counts = sparse_train_step(
            m,
            xb,
            weight=1.0 / self._var0,
            grad=m.act.batch_gradients(X, y),
            aux_mask=self._aux_mask(),
            k_aux=self._k_aux,
            aux_coef=self.aux_coef,
        )
        self._last_batch = (err, counts.double(), float(xb.shape[0]))
        return torch.tensor(loss, dtype=xb.dtype)

    def _batch_loss(self, X, y, n_train, sample_weight=None):
        m = self.module_
        training = m.training and torch.is_grad_enabled()
        if getattr(self, "_call_weights", None) is None:
            sample_weight = None  # unweighted, or equal weights
        if training and sample_weight is None and self._use_manual_step():
            return self._manual_batch_loss(X, y)
        w = None if sample_weight is None else sample_weight.to(X.dtype)
        xb = X * self.input_scale_
        sparse = training and self._use_sparse_path()
        grad = m.act.batch_gradients(X, y)
        x_hat, z, pre = m.forward_sparse(xb, grad=grad) if sparse else m(xb, grad=grad)
        err = (xb - x_hat).square().sum(1)
        loss = self._weighted_mean(err, w) / self._var0
        mask = self._aux_mask() if training else None  # AuxK trains; it is not monitored
        if mask is not None and bool(mask.any()):
            enc = (xb - m.b_dec, m.W_enc, m.b_enc) if sparse else None
            aux = auxk_loss(
                pre,
                xb - x_hat,
                m.W_dec,
                mask,
                self._k_aux,
                signed=m.signed,
                encoder=enc,
                sample_weight=w,
            )
            loss = loss + self.aux_coef * aux
        _, total, _ = self._schedule
        dense_z = None if sparse else z
        extra = m.act.extra_loss(
            m, xb, dense_z, pre, self._var0, self.n_steps_, total, sample_weight=w
        )
        if extra is not None:
            loss = loss + extra
        if training:
            raw = None if w is None else (w.detach() * self._weight_mean).double()
            if sparse:
                vals, rows, cols, _ = z
                fired = vals.detach() != 0
                wts = None if raw is None else raw[rows[fired]]
                counts = torch.bincount(cols[fired], weights=wts, minlength=self.n_components_)
            else:
                fired = (z.detach() != 0).double()
                counts = fired.sum(0) if raw is None else raw @ fired
            n_rows = float(X.shape[0]) if raw is None else float(raw.sum())
            err = err.detach() if raw is None else err.detach() * raw
            self._last_batch = (err, counts.double().cpu(), n_rows)
        return loss

    def on_grad_computed(self, X, y):
        """Remove the decoder-parallel gradient part and clip the gradient norm.

        The clip bounds the gradient of the *unnormalised* squared error
        ``mean ||x - x_hat||^2`` at norm 1, as in SAELens and dictionary_learning; our loss
        is that error divided by ``var0``, so its gradient is clipped at ``1 / var0``.

        Parameters
        ----------
        X : Tensor of shape (B, d)
            The batch.
        y : Tensor of shape (B, d) or None
            Its downstream gradients, if any.
        """
        if self.module_.unit_norm_decoder:
            project_decoder_grad_(self.module_.W_dec)
        grads = [p.grad for p in self.module_.parameters() if p.grad is not None]
        total = float(torch.stack(torch._foreach_norm(grads)).norm())
        max_norm = 1.0 / self._var0
        if total > max_norm:
            torch._foreach_mul_(grads, max_norm / (total + 1e-6 * max_norm))

    def on_batch_end(self, X, y, loss):
        """Renormalise the decoder, project the variant's parameters, update statistics.

        Parameters
        ----------
        X : Tensor of shape (B, d)
            The batch.
        y : Tensor of shape (B, d) or None
            Its downstream gradients, if any.
        loss : Tensor
            The batch loss.
        """
        m = self.module_
        if m.unit_norm_decoder:
            normalize_decoder_(m.W_dec)
        m.act.after_step()
        err, counts, n_rows = self._last_batch  # weighted by the row weights, if any
        self._last_batch = None
        self._since_fired += int(round(n_rows))
        self._since_fired.masked_fill_(counts > 0, 0)
        m.act.update_statistics(counts, n_rows)
        st = self._epoch_stats
        st["err"] += float(err.double().sum())
        st["rows"] += n_rows
        st["counts"] += counts

    def on_epoch_end(self, epoch):
        """Epoch metrics for ``history_``.

        Parameters
        ----------
        epoch : int
            Epoch number.

        Returns
        -------
        record : dict
            fvu, l0, dead_fraction, seconds, samples_per_s.
        """
        st = self._epoch_stats
        self._epoch_stats = None
        if not math.isfinite(st["err"]):
            raise FloatingPointError("SparseAutoencoder training diverged (non-finite loss)")
        seconds = time.perf_counter() - st["t0"]
        rows = st["rows"] if st["rows"] > 0 else 1.0
        self.feature_density_ = st["counts"].numpy() / rows
        dead = self._since_fired >= self._dead_after
        return {
            "fvu": st["err"] / (rows * self._var0),
            "l0": float(st["counts"].sum()) / rows,
            "dead_fraction": float(dead.double().mean()),
            "seconds": seconds,
            "samples_per_s": rows / seconds if seconds > 0 else float("inf"),
        }

    def on_train_end(self):
        """Export the fitted NumPy attributes from the module."""
        m = self.module_
        with torch.no_grad():
            self.components_ = m.W_dec.detach().cpu().double().numpy().copy()
            self.encoder_weight_ = m.encoder_weight().detach().cpu().double().numpy().copy()
            self.encoder_bias_ = m.b_enc.detach().cpu().double().numpy().copy()
            if not m.act.encoder_bias:
                self.encoder_bias_[:] = 0.0
            self.decoder_bias_ = m.b_dec.detach().cpu().double().numpy().copy()
        self.threshold_ = m.act.inference_threshold()
        self.dead_latents_ = (self._since_fired >= self._dead_after).numpy().copy()
        self.n_dead_latents_ = int(self.dead_latents_.sum())

    # ------------------------------------------------------------------ inference
    def _sync_inference_params(self):
        """Copy the inference-only parameters of ``activation`` to the trained activation."""
        act = self.module_.act
        if not act.inference_params:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            live = self._resolve_activation(warn=False)
        if type(live) is type(act):
            act.set_params(**{n: getattr(live, n) for n in act.inference_params})

    def _encode(self, X, k=None, sample_gradients=None):
        """Validated chunk-wise codes, as a list of NumPy arrays in the dtype of ``X``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, accept_sparse="csr", dtype=(np.float64, np.float32))
        m = self.module_
        self._sync_inference_params()
        G = None
        if sample_gradients is not None:
            G = check_array(sample_gradients, dtype=X.dtype)
            if G.shape != X.shape:
                raise ValueError(f"sample_gradients must have shape {X.shape}; got {G.shape}")
        elif m.act.uses_gradients and not getattr(self, "_warned_grad", False):
            warnings.warn(
                "the g-SAE activation got no sample_gradients in transform; ranking latents "
                "without gradients (beta=0)",
                UserWarning,
                stacklevel=3,
            )
            self._warned_grad = True
        dev = self._device()
        dtype = torch.float64 if X.dtype == np.float64 else torch.float32
        if dtype != torch.float32 or m.W_dec.device != dev:
            # a private copy in the compute dtype: the fitted module is never changed, so
            # that concurrent calls (dask blocks on threads) are safe
            m = copy.deepcopy(m).to(device=dev, dtype=dtype)
        m.eval()
        out = []
        with torch.no_grad():
            for start in range(0, X.shape[0], self.transform_chunk_size):
                part = X[start : start + self.transform_chunk_size]
                part = part.toarray() if sp.issparse(part) else part
                xb = torch.from_numpy(np.array(part, dtype=X.dtype)).to(dev)
                xb = xb * self.input_scale_
                gb = None
                if G is not None:
                    gb = torch.as_tensor(G[start : start + self.transform_chunk_size])
                    gb = gb.to(device=dev, dtype=dtype)
                z, _ = m.encode(xb, k=k, grad=gb)
                out.append(z.cpu().numpy().astype(X.dtype, copy=False))
        return out

    def transform(self, X, *, k=None, sample_gradients=None):
        """Sparse codes of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.
        k : int, default=None
            Override the per-row k (TopK, row AbsTopK) or the number of MP steps.
        sample_gradients : array-like of shape (n_samples, n_features), default=None
            Downstream gradients for a :class:`~sparsestat.neural.GSAE` activation; without
            them it ranks latents as its base selection (warns once).

        Returns
        -------
        Z : ndarray, csr_matrix or dask array of shape (n_samples, n_components)
            Codes (``csr_matrix`` when ``sparse_output=True``), in the float dtype of ``X``
            (computed in float64 for float64 input). For a dask ``X``, a lazy dask array
            computed block by block (dense blocks), equal to the in-memory result.
        """
        check_is_fitted(self)
        if is_dask_array(X) and sample_gradients is not None:
            raise ValueError("sample_gradients cannot be given with a dask X in transform")
        return self._transform(X, k=k, sample_gradients=sample_gradients)

    @rowwise(n_outputs=lambda est: est.n_components_)
    def _transform(self, X, k=None, sample_gradients=None):
        chunks = self._encode(X, k=k, sample_gradients=sample_gradients)
        if self.sparse_output:
            return sp.vstack([sp.csr_matrix(c) for c in chunks], format="csr")
        return np.vstack(chunks)

    def encode_topk(self, X):
        """Values and indices of the ``k`` largest codes of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        values : ndarray of shape (n_samples, k)
            Codes, by decreasing magnitude.
        indices : ndarray of shape (n_samples, k)
            Latent indices.
        """
        check_is_fitted(self)
        if self.k_ is None:
            raise ValueError(
                f"encode_topk needs a variant with a fixed k; {self.activation_!r} has none"
            )
        Z = torch.from_numpy(np.vstack(self._encode(X)))
        vals, idx = Z.abs().topk(min(int(self.k_), Z.shape[1]), dim=1)
        return Z.gather(1, idx).numpy(), idx.numpy()

    @rowwise(n_outputs=lambda est: est.n_features_in_)
    def inverse_transform(self, X):
        """Reconstruction ``(Z @ components_ + decoder_bias_) / input_scale_``.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_components)
            Codes.

        Returns
        -------
        X_hat : ndarray or dask array of shape (n_samples, n_features)
            Reconstruction in input units (lazy, block by block, for a dask ``X``).
        """
        check_is_fitted(self)
        Z = check_array(X, accept_sparse="csr", dtype=[np.float32, np.float64])
        if Z.shape[1] != self.n_components_:
            raise ValueError(f"expected {self.n_components_} code columns; got {Z.shape[1]}")
        D = self.components_.astype(Z.dtype, copy=False)
        out = Z @ D + self.decoder_bias_.astype(Z.dtype)
        return np.asarray(out / self.input_scale_)

    def score(self, X, y=None):
        """``1 - FVU`` of the reconstruction of ``X`` (higher is better).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Fraction of variance explained.
        """
        X_hat = self.inverse_transform(self.transform(X))
        X_ref = X.toarray() if sp.issparse(X) else X
        return 1.0 - fvu(X_ref, X_hat)

    def evaluate(self, X, true_components=None):
        """Reconstruction, sparsity and (optionally) recovery metrics on ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Evaluation data.
        true_components : array-like of shape (n_true, n_features), default=None
            Ground-truth atoms (planted data); adds ``mmcs``.

        Returns
        -------
        metrics : dict
            ``fvu``, ``nmse_uncentered`` (mean of ``||x - x_hat||^2 / ||x||^2``), ``l0_mean``,
            ``l0_std``, ``l0_min``, ``l0_max``, ``dead_fraction`` (latents that never fire on
            ``X``), ``l2_ratio`` (mean ``||x_hat|| / ||x||``), ``cosine`` (mean cosine of
            ``x`` and ``x_hat``) and ``mmcs`` when ``true_components`` is given.
        """
        Z = self.transform(X)
        Z = Z.toarray() if sp.issparse(Z) else np.asarray(Z)
        X_ref = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
        X_hat = self.inverse_transform(Z).astype(np.float64)
        norm = np.linalg.norm(X_ref, axis=1)
        norm_hat = np.linalg.norm(X_hat, axis=1)
        safe = np.where(norm > 0, norm, 1.0)
        l0 = (Z != 0).sum(axis=1)
        out = {
            "fvu": fvu(X_ref, X_hat),
            "nmse_uncentered": float(np.mean(((X_ref - X_hat) ** 2).sum(1) / safe**2)),
            "l0_mean": float(l0.mean()),
            "l0_std": float(l0.std()),
            "l0_min": int(l0.min()),
            "l0_max": int(l0.max()),
            "dead_fraction": float(((Z != 0).sum(axis=0) == 0).mean()),
            "l2_ratio": float(np.mean(norm_hat / safe)),
            "cosine": float(
                np.mean((X_ref * X_hat).sum(1) / (safe * np.where(norm_hat > 0, norm_hat, 1.0)))
            ),
        }
        if true_components is not None:
            out["mmcs"] = mmcs(true_components, self.components_)
        return out
