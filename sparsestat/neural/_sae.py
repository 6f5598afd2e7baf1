"""Sparse autoencoders as a scikit-learn transformer (TopK, BatchTopK, AbsTopK, JumpReLU, ...)."""

from __future__ import annotations

import math
import time
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from sparsestat._kernels.geomedian import geometric_median
from sparsestat.metrics import fvu
from sparsestat.neural._layers_sae import (
    ACTIVATIONS,
    SparseAutoencoderModule,
    auxk_loss,
    normalize_decoder_,
    project_decoder_grad_,
    topk_relu,
    zipf_underused_mask,
)
from sparsestat.utils import progress_bar
from sparsestat.utils._compat import Interval, StrOptions, fit_context, validate_data

__all__ = ["SparseAutoencoder"]

_AUXK = ("topk", "batchtopk", "abstopk", "top_afa", "mp")
_ZIPF_AUX = ("mutual_choice", "feature_choice")
_THRESHOLD_AUTO = ("batchtopk", "mutual_choice", "feature_choice")


def _resolve_device(device):
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but torch.cuda.is_available() is False")
    return torch.device(device)


class SparseAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Sparse autoencoder (dictionary learning by a one-layer encoder) as a transformer.

    Learns a dictionary ``components_`` of ``n_components`` unit atoms and an encoder such
    that ``x ~ z @ components_ + b`` with sparse non-negative (signed for AbsTopK) codes
    ``z = transform(x)``. Nine activations share one training loop: Adam with gradient
    clipping, unit-norm decoder rows with the parallel gradient removed, encoder initialised
    from the decoder, a geometric-median pre-bias, and a fixed-variance FVU loss.

    Parameters
    ----------
    n_components : int, default=None
        Number of latents F; None means ``8 * n_features_in_``.
    activation : {'topk', 'batchtopk', 'abstopk', 'jumprelu', 'relu_l1', 'mutual_choice', \
'feature_choice', 'top_afa', 'mp'}, default='topk'
        Sparsifying activation: per-row TopK (Gao et al.), BatchTopK (``k * B`` per batch,
        a global threshold at inference), signed AbsTopK, JumpReLU (learned per-latent
        thresholds, straight-through), ReLU + L1 penalty, Mutual Choice (= BatchTopK with the
        aux_zipf loss), Feature Choice (per-latent capacities), top-AFA (adaptive k by norm
        matching) or matching pursuit (tied weights, ``k`` greedy steps).
    k : int, default=None
        Active latents per row (mean per row for batch variants, target L0 for JumpReLU,
        steps for MP); None means ``max(1, min(32, n_features_in_ // 4))``.
    max_iter : int, default=20
        Number of epochs.
    batch_size : int, default=1024
        Minibatch size (clipped to ``n_samples``).
    learning_rate : float, default=None
        Adam learning rate; None means ``2e-4 / sqrt(F / 2**14)`` clipped to [1e-4, 3e-3].
        Linear warm-up over ``min(1000, 5%)`` of the steps, linear decay to 0 over the last
        20% when ``max_iter > 1``.
    adam_betas : tuple of two floats, default=None
        Adam betas; None means ``(0.9, 0.999)``, and ``(0.0, 0.999)`` for JumpReLU.
    aux_coef : float, default=1/32
        Coefficient of the auxiliary loss (AuxK for the top-k family, aux_zipf for Mutual and
        Feature Choice); 0 disables it.
    k_aux : int, default=None
        Auxiliary latents per row; None means ``n_features_in_ // 2`` (at least 1).
    dead_after : int, default=None
        A latent is dead after this many training rows without firing; None means
        ``min(10_000_000, n_samples)`` (one epoch).
    multi_topk : bool, default=False
        For 'topk', add ``FVU(4k) / 8`` to the loss (sparsify's Multi-TopK).
    l1_coef : float, default=5.0
        L1 coefficient of 'relu_l1' (warmed up over the first 5% of steps).
    jumprelu_bandwidth : float, default=0.05
        Width of the JumpReLU straight-through kernel (normalised input units).
    jumprelu_init_threshold : float, default=0.01
        Initial JumpReLU threshold.
    jumprelu_sparsity : {'target', 'step'}, default='target'
        JumpReLU sparsity loss: ``l0_coef * (L0 / k - 1)**2`` or ``l0_coef * L0``.
    l0_coef : float, default=1.0
        Coefficient of the JumpReLU sparsity loss.
    fc_capacity : {'uniform', 'zipf'}, default='uniform'
        Feature Choice capacity law.
    zipf_exponent : float, default=1.0
        Zipf exponent (Feature Choice capacities and aux_zipf).
    aux_zipf_ratio : float, default=0.1
        aux_zipf: latents firing less than this fraction of their Zipf-expected density.
    afa_coef : float, default=0.0
        Coefficient of the top-AFA norm-matching loss ``(||z|| - ||x - b||)**2``.
    abstopk_scope : {'row', 'batch'}, default='row'
        AbsTopK per row, or ``k * B`` per batch with an ``|pre|`` threshold at inference.
    mp_signed : bool, default=False
        Classic signed matching pursuit (argmax ``|c|``, signed coefficients).
    mp_tol : float, default=None
        At inference, stop MP on a row once ``||r|| < mp_tol * ||x - b||``.
    mp_max_iter : int, default=None
        MP steps at inference; None means ``k``.
    grad_beta : float, default=0.0
        g-SAE weight: > 0 ranks latents of topk/batchtopk/abstopk/mutual_choice by
        ``a + grad_beta * a * |g @ components_.T|`` with ``g`` the downstream gradient.
    gradient_fn : callable, default=None
        ``gradient_fn(batch) -> ndarray`` returning the downstream gradients of a batch of raw
        rows (used when ``fit`` gets no ``sample_gradients``).
    grad_normalize : bool, default=True
        Divide ``|g @ components_.T|`` by its batch mean.
    input_scaling : {'expected_norm', 'none'}, default='expected_norm'
        Scale inputs by ``sqrt(d) / mean ||x||`` (estimated on <= 100k rows) for training.
    b_dec_init : {'geometric_median', 'mean', 'zeros'}, default='geometric_median'
        Initial pre-bias.
    threshold_rate : float, default=0.01
        EMA rate of inference thresholds and firing densities.
    inference_mode : {'auto', 'threshold', 'batch'}, default='auto'
        'auto' uses thresholds for batchtopk / mutual_choice / feature_choice / batch AbsTopK
        and the native rule otherwise; 'batch' reproduces the training selection (depends
        on the composition of each ``transform_chunk_size`` chunk).
    sparse_output : bool, default=False
        ``transform`` returns a ``scipy.sparse.csr_matrix``.
    transform_chunk_size : int, default=4096
        Rows encoded at once by ``transform``.
    device : {'cpu', 'cuda', 'auto'}, default='cpu'
        Torch device for training and inference.
    dtype : {'float32', 'float64'}, default='float32'
        Compute dtype.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation and shuffling (own torch Generator; the global RNG is untouched).
    verbose : int, default=0
        > 0 shows a progress bar over epochs.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features_in_)
        Decoder dictionary (unit rows unless 'relu_l1'), in scaled input units.
    encoder_weight_ : ndarray of shape (n_components, n_features_in_)
        Encoder matrix (equal to ``components_`` for tied 'mp').
    encoder_bias_ : ndarray of shape (n_components,)
        Encoder bias.
    decoder_bias_ : ndarray of shape (n_features_in_,)
        Pre-bias ``b``, in scaled units: ``pre = (s x - b) @ encoder_weight_.T + encoder_bias_``
        and ``inverse_transform(z) = (z @ components_ + b) / s``.
    input_scale_ : float
        The input scale ``s``.
    threshold_ : float or ndarray of shape (n_components,) or None
        Inference threshold(s) (batch variants, Feature Choice, JumpReLU), else None.
    feature_density_ : ndarray of shape (n_components,)
        Firing frequency of each latent in the last training epoch.
    dead_latents_ : ndarray of bool of shape (n_components,)
        Latents that did not fire in the last ``dead_after`` training rows.
    history_ : list of dict
        Per epoch: loss, fvu, l0, dead_fraction, seconds, samples_per_s.
    n_iter_ : int
        Epochs (or ``partial_fit`` passes) run.
    n_steps_ : int
        Optimiser steps taken.
    n_components_ : int
        Number of latents.
    k_ : int
        The resolved ``k``.
    module_ : SparseAutoencoderModule
        The fitted torch module (on CPU after unpickling).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when ``X`` has string column names.

    Notes
    -----
    [inferred] parts, as in the spec: the learning-rate schedule; the JumpReLU defaults at
    CPU scale ('target' sparsity, bandwidth 0.05); Feature Choice Zipf capacities and the
    aux_zipf loss (the paper's algorithm box was unavailable); MC / FC inference by
    thresholds; the g-SAE score (from a summary); the top-AFA norm target ``||x - b||``.
    Ragged Feature Choice batches with ``k * B < F`` give every latent capacity 1.
    The loss is ``||x - x_hat||^2 / var0`` with ``var0`` the data variance fixed at
    initialisation, so it is an FVU estimate; the L1, AFA terms are divided by ``var0`` too.
    A single-epoch ``fit`` keeps the learning rate constant after warm-up, like
    ``partial_fit``, so that one ``partial_fit`` equals ``fit(max_iter=1)``.
    ``transform`` returns float32 for the default ``dtype``. Cost per step O(B F d).

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
    >>> from sparsestat.neural import SparseAutoencoder
    >>> X, _, atoms = make_planted_features(2000, 16, 32, random_state=0)
    >>> sae = SparseAutoencoder(n_components=64, k=4, max_iter=3, random_state=0).fit(X)
    >>> Z = sae.transform(X)
    >>> Z.shape, int((Z != 0).sum(axis=1).max())
    ((2000, 64), 4)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "k": [Interval(Integral, 1, None, closed="left"), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "adam_betas": [tuple, None],
        "aux_coef": [Interval(Real, 0, None, closed="left")],
        "k_aux": [Interval(Integral, 1, None, closed="left"), None],
        "dead_after": [Interval(Integral, 1, None, closed="left"), None],
        "multi_topk": ["boolean"],
        "l1_coef": [Interval(Real, 0, None, closed="left")],
        "jumprelu_bandwidth": [Interval(Real, 0, None, closed="neither")],
        "jumprelu_init_threshold": [Interval(Real, 0, None, closed="neither")],
        "jumprelu_sparsity": [StrOptions({"target", "step"})],
        "l0_coef": [Interval(Real, 0, None, closed="left")],
        "fc_capacity": [StrOptions({"uniform", "zipf"})],
        "zipf_exponent": [Interval(Real, 0, None, closed="left")],
        "aux_zipf_ratio": [Interval(Real, 0, None, closed="left")],
        "afa_coef": [Interval(Real, 0, None, closed="left")],
        "abstopk_scope": [StrOptions({"row", "batch"})],
        "mp_signed": ["boolean"],
        "mp_tol": [Interval(Real, 0, 1, closed="left"), None],
        "mp_max_iter": [Interval(Integral, 1, None, closed="left"), None],
        "grad_beta": [Interval(Real, 0, None, closed="left")],
        "gradient_fn": [callable, None],
        "grad_normalize": ["boolean"],
        "input_scaling": [StrOptions({"expected_norm", "none"})],
        "b_dec_init": [StrOptions({"geometric_median", "mean", "zeros"})],
        "threshold_rate": [Interval(Real, 0, 1, closed="right")],
        "inference_mode": [StrOptions({"auto", "threshold", "batch"})],
        "sparse_output": ["boolean"],
        "transform_chunk_size": [Interval(Integral, 1, None, closed="left")],
        "device": [StrOptions({"cpu", "cuda", "auto"})],
        "dtype": [StrOptions({"float32", "float64"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        activation="topk",
        k=None,
        max_iter=20,
        batch_size=1024,
        learning_rate=None,
        adam_betas=None,
        aux_coef=1 / 32,
        k_aux=None,
        dead_after=None,
        multi_topk=False,
        l1_coef=5.0,
        jumprelu_bandwidth=0.05,
        jumprelu_init_threshold=0.01,
        jumprelu_sparsity="target",
        l0_coef=1.0,
        fc_capacity="uniform",
        zipf_exponent=1.0,
        aux_zipf_ratio=0.1,
        afa_coef=0.0,
        abstopk_scope="row",
        mp_signed=False,
        mp_tol=None,
        mp_max_iter=None,
        grad_beta=0.0,
        gradient_fn=None,
        grad_normalize=True,
        input_scaling="expected_norm",
        b_dec_init="geometric_median",
        threshold_rate=0.01,
        inference_mode="auto",
        sparse_output=False,
        transform_chunk_size=4096,
        device="cpu",
        dtype="float32",
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.activation = activation
        self.k = k
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.adam_betas = adam_betas
        self.aux_coef = aux_coef
        self.k_aux = k_aux
        self.dead_after = dead_after
        self.multi_topk = multi_topk
        self.l1_coef = l1_coef
        self.jumprelu_bandwidth = jumprelu_bandwidth
        self.jumprelu_init_threshold = jumprelu_init_threshold
        self.jumprelu_sparsity = jumprelu_sparsity
        self.l0_coef = l0_coef
        self.fc_capacity = fc_capacity
        self.zipf_exponent = zipf_exponent
        self.aux_zipf_ratio = aux_zipf_ratio
        self.afa_coef = afa_coef
        self.abstopk_scope = abstopk_scope
        self.mp_signed = mp_signed
        self.mp_tol = mp_tol
        self.mp_max_iter = mp_max_iter
        self.grad_beta = grad_beta
        self.gradient_fn = gradient_fn
        self.grad_normalize = grad_normalize
        self.input_scaling = input_scaling
        self.b_dec_init = b_dec_init
        self.threshold_rate = threshold_rate
        self.inference_mode = inference_mode
        self.sparse_output = sparse_output
        self.transform_chunk_size = transform_chunk_size
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float32"] if self.dtype == "float32" else []
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ helpers
    @property
    def _n_features_out(self):
        return self.n_components_

    def _torch_dtype(self):
        return torch.float32 if self.dtype == "float32" else torch.float64

    def _to_tensor(self, X, rows=None, scale=True):
        """Rows of X (dense or sparse) as a scaled tensor on the model device (a copy)."""
        part = X if rows is None else X[rows]
        if sp.issparse(part):
            part = part.toarray()
        arr = np.array(part, dtype=np.float32 if self.dtype == "float32" else np.float64)
        if scale:
            arr *= self.input_scale_
        return torch.from_numpy(arr).to(self._device)

    def _check_gradients(self, G, X):
        if G is None:
            return None
        G = np.asarray(G, dtype=np.float64)
        if G.shape != X.shape:
            raise ValueError(f"sample_gradients must have shape {X.shape}; got {G.shape}")
        if not np.all(np.isfinite(G)):
            raise ValueError("sample_gradients contains NaN or infinity")
        return G

    def _batch_gradients(self, X, G, rows):
        if self.grad_beta <= 0:
            return None
        if G is not None:
            return torch.as_tensor(G[rows], dtype=self._torch_dtype(), device=self._device)
        if self.gradient_fn is not None:
            raw = X[rows]
            raw = raw.toarray() if sp.issparse(raw) else np.asarray(raw)
            g = np.asarray(self.gradient_fn(raw), dtype=np.float64)
            if g.shape != raw.shape:
                raise ValueError(f"gradient_fn must return shape {raw.shape}; got {g.shape}")
            return torch.as_tensor(g, dtype=self._torch_dtype(), device=self._device)
        return None

    # ------------------------------------------------------------------ initialisation
    def _initialize(self, X):
        n, d = X.shape
        self._device = _resolve_device(self.device)
        rng = check_random_state(self.random_state)
        self._rng = rng
        generator = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        self.n_components_ = int(self.n_components or 8 * d)
        self.k_ = int(self.k or max(1, min(32, d // 4)))
        if self.activation == "feature_choice" and self.k_ * min(self.batch_size, n) < (
            self.n_components_
        ):
            raise ValueError(
                "feature_choice needs k * batch_size >= n_components; got "
                f"{self.k_} * {min(self.batch_size, n)} < {self.n_components_}"
            )
        sample = X if n <= 100_000 else X[rng.choice(n, 100_000, replace=False)]
        sample = sample.toarray() if sp.issparse(sample) else np.asarray(sample, dtype=np.float64)
        if self.input_scaling == "expected_norm":
            mean_norm = float(np.linalg.norm(sample, axis=1).mean())
            self.input_scale_ = math.sqrt(d) / mean_norm if mean_norm > 0 else 1.0
        else:
            self.input_scale_ = 1.0
        scaled = sample * self.input_scale_
        var0 = float(np.square(scaled - scaled.mean(0)).sum(1).mean())
        self._var0 = var0 if var0 > 0 else 1.0

        module = SparseAutoencoderModule(
            d,
            self.n_components_,
            self.activation,
            self.k_,
            abstopk_scope=self.abstopk_scope,
            fc_capacity=self.fc_capacity,
            zipf_exponent=self.zipf_exponent,
            jumprelu_init_threshold=self.jumprelu_init_threshold,
            jumprelu_bandwidth=self.jumprelu_bandwidth,
            mp_signed=self.mp_signed,
            mp_tol=self.mp_tol,
            threshold_rate=self.threshold_rate,
        )
        module.reset_parameters(generator)
        with torch.no_grad():
            if self.b_dec_init == "geometric_median":
                med = geometric_median(scaled[:32_768])
                module.b_dec.copy_(torch.as_tensor(med))
            elif self.b_dec_init == "mean":
                module.b_dec.copy_(torch.as_tensor(scaled.mean(0)))
        self.module_ = module.to(device=self._device, dtype=self._torch_dtype())

        lr = self.learning_rate
        if lr is None:
            lr = min(max(2e-4 / math.sqrt(self.n_components_ / 2**14), 1e-4), 3e-3)
        self._lr = float(lr)
        betas = self.adam_betas
        if betas is None:
            betas = (0.0, 0.999) if self.activation == "jumprelu" else (0.9, 0.999)
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"adam_betas must be two floats in [0, 1); got {betas}")
        self._optimizer = torch.optim.Adam(self.module_.parameters(), lr=self._lr, betas=betas)
        self._dead_after = int(self.dead_after or min(10_000_000, n))
        self._k_aux = int(self.k_aux or max(1, d // 2))
        self._since_fired = torch.zeros(self.n_components_, dtype=torch.long)
        self._density_ema = torch.zeros(self.n_components_, dtype=torch.float64)
        self._warmup_steps = None
        self.n_steps_ = 0
        self.n_iter_ = 0
        self.history_ = []

    # ------------------------------------------------------------------ training
    def _lr_at(self, step, total, decay):
        warm = self._warmup_steps
        factor = min(1.0, (step + 1) / warm) if warm > 0 else 1.0
        if decay and total:
            start = int(0.8 * total)
            if step >= start:
                factor = min(factor, max(0.0, (total - step) / max(total - start, 1)))
        return self._lr * factor

    def _loss(self, xb, gb, step, total):
        m = self.module_
        x_hat, z, pre = m(xb, grad=gb, grad_beta=self.grad_beta, grad_normalize=self.grad_normalize)
        err = (xb - x_hat).square().sum(1)
        loss = err.mean() / self._var0
        name = self.activation
        if name == "topk" and self.multi_topk:
            x4 = m.decode(topk_relu(pre, 4 * self.k_))
            loss = loss + (xb - x4).square().sum(1).mean() / self._var0 / 8
        if self.aux_coef > 0 and name in _AUXK + _ZIPF_AUX:
            if name in _ZIPF_AUX:
                mask = zipf_underused_mask(
                    self._density_ema, self.k_, self.aux_zipf_ratio, self.zipf_exponent
                )
            else:
                mask = self._since_fired >= self._dead_after
            if bool(mask.any()):
                aux = auxk_loss(pre, xb - x_hat, m.W_dec, mask, self._k_aux, signed=m.signed)
                loss = loss + self.aux_coef * aux
        if name == "jumprelu":
            l0 = m.act.l0(pre)
            if self.jumprelu_sparsity == "target":
                loss = loss + self.l0_coef * (l0 / self.k_ - 1.0).square()
            else:
                loss = loss + self.l0_coef * l0
        elif name == "relu_l1":
            warm = min(1.0, (step + 1) / max(1, int(0.05 * total))) if total else 1.0
            l1 = (z * m.W_dec.norm(dim=1)).sum(1).mean()
            loss = loss + warm * self.l1_coef * l1 / self._var0
        elif name == "top_afa" and self.afa_coef > 0:
            target = (xb - m.b_dec).norm(dim=1)
            loss = loss + self.afa_coef * (z.norm(dim=1) - target).square().mean() / self._var0
        return loss, err.detach(), z.detach()

    def _step(self, xb, gb, total, decay):
        m = self.module_
        for group in self._optimizer.param_groups:
            group["lr"] = self._lr_at(self.n_steps_, total, decay)
        self._optimizer.zero_grad(set_to_none=True)
        loss, err, z = self._loss(xb, gb, self.n_steps_, total)
        loss.backward()
        if m.unit_norm_decoder:
            project_decoder_grad_(m.W_dec)
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        self._optimizer.step()
        if m.unit_norm_decoder:
            normalize_decoder_(m.W_dec)
        if self.activation == "jumprelu":
            m.act.clamp_()
        fired = (z != 0).cpu()
        any_fired = fired.any(0)
        self._since_fired += xb.shape[0]
        self._since_fired[any_fired] = 0
        self._density_ema.lerp_(fired.double().mean(0), self.threshold_rate)
        self.n_steps_ += 1
        return float(loss.detach()), float(err.sum()), int(fired.sum()), fired.sum(0)

    def _run_epochs(self, X, G, n_epochs, total, decay):
        n = X.shape[0]
        B = min(int(self.batch_size), n)
        self.module_.train()
        X_dense = None if sp.issparse(X) else self._to_tensor(X)
        bar = progress_bar(range(n_epochs), verbose=self.verbose, desc="SAE", unit="epoch")
        for _ in bar:
            t0 = time.perf_counter()
            perm = self._rng.permutation(n)
            loss_sum = err_sum = 0.0
            l0_sum = 0
            counts = torch.zeros(self.n_components_, dtype=torch.long)
            n_batches = 0
            for start in range(0, n, B):
                rows = perm[start : start + B]
                if X_dense is not None:
                    xb = X_dense[torch.from_numpy(rows).to(X_dense.device)]
                else:
                    xb = self._to_tensor(X, rows)
                gb = self._batch_gradients(X, G, rows)
                loss, err, l0, cnt = self._step(xb, gb, total, decay)
                loss_sum += loss
                err_sum += err
                l0_sum += l0
                counts += cnt
                n_batches += 1
            seconds = time.perf_counter() - t0
            dead = self._since_fired >= self._dead_after
            self.n_iter_ += 1
            self.history_.append(
                {
                    "loss": loss_sum / n_batches,
                    "fvu": err_sum / (n * self._var0),
                    "l0": l0_sum / n,
                    "dead_fraction": float(dead.double().mean()),
                    "seconds": seconds,
                    "samples_per_s": n / seconds if seconds > 0 else float("inf"),
                }
            )
            if self.verbose:
                bar.set_postfix(fvu=self.history_[-1]["fvu"], l0=self.history_[-1]["l0"])
            if not np.isfinite(loss_sum):
                raise FloatingPointError("SparseAutoencoder training diverged (non-finite loss)")
        self.feature_density_ = counts.double().numpy() / n
        self._export()

    def _export(self):
        m = self.module_
        with torch.no_grad():
            self.components_ = m.W_dec.detach().cpu().numpy().copy()
            self.encoder_weight_ = m.encoder_weight().detach().cpu().numpy().copy()
            self.encoder_bias_ = m.b_enc.detach().cpu().numpy().copy()
            if self.activation in ("top_afa", "mp"):
                self.encoder_bias_[:] = 0.0
            self.decoder_bias_ = m.b_dec.detach().cpu().numpy().copy()
            act = m.act
            thr = None
            if act is not None and hasattr(act, "batch") and act.batch is not None:
                act = act.batch
            if act is not None and hasattr(act, "threshold"):
                t = act.threshold.detach().cpu().numpy().copy()
                thr = float(max(t, 0.0)) if t.ndim == 0 else np.maximum(t, 0.0)
            self.threshold_ = thr
        self.dead_latents_ = (self._since_fired >= self._dead_after).numpy().copy()

    def _validate_fit_input(self, X, reset):
        return validate_data(
            self,
            X,
            reset=reset,
            accept_sparse="csr",
            dtype=[np.float64, np.float32],
            ensure_min_samples=1,
        )

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_gradients=None):
        """Train the autoencoder for ``max_iter`` epochs.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (sparse rows are densified per minibatch).
        y : None
            Ignored.
        sample_gradients : array-like of shape (n_samples, n_features), default=None
            Downstream gradients at each row, for g-SAE (``grad_beta > 0``).

        Returns
        -------
        self : SparseAutoencoder
            The fitted estimator.
        """
        X = self._validate_fit_input(X, reset=True)
        G = self._check_gradients(sample_gradients, X)
        self._initialize(X)
        n_batches = -(-X.shape[0] // min(self.batch_size, X.shape[0]))
        total = n_batches * self.max_iter
        self._warmup_steps = min(1000, max(1, int(0.05 * total)))
        self._run_epochs(X, G, self.max_iter, total, decay=self.max_iter > 1)
        return self

    def partial_fit(self, X, y=None, sample_gradients=None):
        """One pass over ``X`` in minibatches; the first call initialises the model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of training data.
        y : None
            Ignored.
        sample_gradients : array-like of shape (n_samples, n_features), default=None
            Downstream gradients (g-SAE).

        Returns
        -------
        self : SparseAutoencoder
            The updated estimator.
        """
        first = not hasattr(self, "module_")
        if first:
            self._validate_params()
        X = self._validate_fit_input(X, reset=first)
        G = self._check_gradients(sample_gradients, X)
        n_batches = -(-X.shape[0] // min(self.batch_size, X.shape[0]))
        if first:
            self._initialize(X)
            self._warmup_steps = min(1000, max(1, int(0.05 * n_batches)))
        self._run_epochs(X, G, 1, n_batches, decay=False)
        return self

    # ------------------------------------------------------------------ inference
    def _encode_chunks(self, X, k=None, sample_gradients=None):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, accept_sparse="csr", dtype=[np.float64, np.float32])
        G = self._check_gradients(sample_gradients, X)
        m = self.module_
        self._device = getattr(self, "_device", torch.device("cpu"))
        m.to(self._device)
        if self.grad_beta > 0 and G is None and not getattr(self, "_warned_grad", False):
            warnings.warn(
                "grad_beta > 0 but transform got no sample_gradients; using grad_beta=0",
                UserWarning,
                stacklevel=3,
            )
            self._warned_grad = True
        act = m.act.batch if getattr(m.act, "batch", None) is not None else m.act
        if act is not None and hasattr(act, "track_statistics"):
            act.track_statistics = False
        # 'batch' reproduces the training selection; 'auto' / 'threshold' use the eval rule
        # (thresholds for batch variants and Feature Choice, the native rule otherwise)
        m.train(self.inference_mode == "batch")
        if self.activation == "mp" and k is None:
            k = self.mp_max_iter
        try:
            with torch.no_grad():
                for start in range(0, X.shape[0], self.transform_chunk_size):
                    rows = np.arange(start, min(start + self.transform_chunk_size, X.shape[0]))
                    xb = self._to_tensor(X, rows)
                    gb = None if G is None else torch.as_tensor(G[rows], dtype=xb.dtype)
                    z, _ = m.encode(
                        xb,
                        k=k,
                        grad=gb,
                        grad_beta=self.grad_beta,
                        grad_normalize=self.grad_normalize,
                    )
                    yield z.cpu().numpy()
        finally:
            if act is not None and hasattr(act, "track_statistics"):
                act.track_statistics = True
            m.eval()

    def transform(self, X, *, k=None, sample_gradients=None):
        """Sparse codes of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.
        k : int, default=None
            Override the per-row k (topk, row AbsTopK) or the number of MP steps.
        sample_gradients : array-like of shape (n_samples, n_features), default=None
            Downstream gradients (g-SAE); without them ``grad_beta`` is ignored (warns once).

        Returns
        -------
        Z : ndarray or csr_matrix of shape (n_samples, n_components)
            Codes (``csr_matrix`` when ``sparse_output=True``).
        """
        chunks = list(self._encode_chunks(X, k=k, sample_gradients=sample_gradients))
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
        Z = torch.from_numpy(np.vstack(list(self._encode_chunks(X))))
        vals, idx = Z.abs().topk(min(self.k_, Z.shape[1]), dim=1)
        return Z.gather(1, idx).numpy(), idx.numpy()

    def inverse_transform(self, X):
        """Reconstruction ``(Z @ components_ + decoder_bias_) / input_scale_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_components)
            Codes.

        Returns
        -------
        X_hat : ndarray of shape (n_samples, n_features_in_)
            Reconstruction in input units.
        """
        check_is_fitted(self)
        from sklearn.utils import check_array

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

    def __getstate__(self):
        state = self.__dict__.copy()
        if "module_" in state:
            state["module_"] = state["module_"].to("cpu")
            state["_device"] = torch.device("cpu")
        return state
