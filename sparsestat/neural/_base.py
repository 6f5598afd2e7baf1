"""The one base class of every PyTorch estimator in sparsestat.

A subclass adds only its module, its loss and its hooks; the base owns device choice, seeding,
float32 tensors, the mini-batch loop with a progress bar, ``sample_weight``, ``partial_fit`` /
``warm_start``, the training length (``max_epochs="auto"``, early stopping),
``loss_curve_`` / ``history_``, the ``module__*`` / ``optimizer__*`` routing and pickling
through ``state_dict``. See :class:`BaseTorchEstimator` for the hooks.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import math
import numbers
import warnings
from abc import ABCMeta, abstractmethod
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from sparsestat.neural import import_torch
from sparsestat.neural._mixins import TorchClassifierMixin, TorchRegressorMixin
from sparsestat.neural._torch_utils import (
    OPTIMIZERS,
    TORCH_PAYLOAD,
    eager_optimizer,
    holds_torch,
    keyword_names,
    module_dtype,
    module_lock,
    resolve_device,
    to_cpu,
    validated_sample_weight,
)
from sparsestat.utils import progress_bar
from sparsestat.utils._compat import (
    Interval,
    InvalidParameterError,
    StrOptions,
    fit_context,
    validate_data,
)
from sparsestat.utils._dask import is_dask_array, partial_fit_chunks
from sparsestat.utils._deprecation import warn_renamed

torch = import_torch()

__all__ = [
    "BaseTorchEstimator",
    "TorchClassifierMixin",
    "TorchRegressorMixin",
    "eager_optimizer",
    "resolve_device",
]


class BaseTorchEstimator(BaseEstimator, metaclass=ABCMeta):
    """Base class of the PyTorch estimators (not an estimator itself).

    Parameters (shared by every subclass, which repeats them in its own ``__init__``)
    ------------------------------------------------------------------------------------
    lr : float
        Learning rate of the optimizer.
    batch_size : int
        Mini-batch size (clipped to the number of training samples).
    max_epochs : int or "auto"
        Number of passes over the data in ``fit`` (``partial_fit`` makes one). ``"auto"``
        adapts the training length to the data: at least ``min_epochs`` epochs and at least
        ``min_steps`` optimiser steps, at most ``max_epochs`` epochs, with the class's
        ``_auto_epochs = (min_epochs, min_steps, max_epochs)``, so that small data sets
        (few mini-batches per epoch) are not undertrained.
    optimizer : {'adam', 'adamw', 'sgd'} or torch.optim.Optimizer subclass
        The optimizer; ``'sgd'`` uses ``momentum=0.9`` unless ``optimizer__momentum`` is given.
    early_stopping : bool
        Whether to hold out ``validation_fraction`` of the training data and stop when the
        validation loss has not improved by ``tol`` for ``n_iter_no_change`` epochs (the
        weights of the best epoch are restored), as scikit-learn's ``MLPClassifier``.
    validation_fraction : float in (0, 1)
        Fraction of the training data held out for early stopping (used only with
        ``early_stopping=True``).
    n_iter_no_change : int
        Early stopping patience in epochs.
    tol : float
        Minimal decrease of the validation loss that counts as an improvement.
    warm_start : bool
        Whether ``fit`` continues from the previous fit instead of re-initialising.
    device : {'auto', 'cpu', 'cuda'} or str
        Where to train; ``'auto'`` uses CUDA when available.
    random_state : int, RandomState instance or None
        Seeds module initialisation, mini-batch order, dropout and Monte-Carlo sampling
        (through a forked torch RNG, so the caller's global torch RNG state is unchanged).
    verbose : int
        Shows a tqdm progress bar over epochs when > 0.
    **kwargs
        Routed parameters: ``module__<name>`` goes to the module constructor (through
        :meth:`get_routed_params`) and ``optimizer__<name>`` to the optimizer, e.g.
        ``optimizer__weight_decay=1e-4``. They work with ``get_params`` / ``set_params`` /
        ``clone`` and therefore in ``GridSearchCV`` grids.

    Attributes
    ----------
    module_ : torch.nn.Module
        The fitted network (on ``device_``; on the CPU after unpickling until first use).
    optimizer_ : torch.optim.Optimizer
        The optimizer (kept for ``partial_fit`` / ``warm_start``; pickled as a state dict).
    device_ : torch.device
        Device used by the last fit.
    n_features_in_ : int
        Number of input features.
    n_iter_ : int
        Number of epochs run in total.
    n_steps_ : int
        Number of optimizer steps run in total.
    loss_curve_ : list of float
        Mean training loss per epoch.
    history_ : list of dict
        One record per epoch: ``epoch``, ``train_loss``, ``valid_loss`` (with early
        stopping), ``lr`` and whatever :meth:`on_epoch_end` adds.
    best_loss_ : float or None
        Best validation loss (with early stopping), else None.
    converged_ : bool
        With early stopping: whether the patience ran out before the last epoch. Without
        early stopping: True (the epoch budget is the schedule).
    n_epochs_ : int
        Epochs planned by the last ``fit`` call (``max_epochs``, resolved when ``"auto"``).

    Notes
    -----
    **Hooks for subclasses** (all optional except :meth:`_build_module`; the classifier and
    regressor mixins supply :meth:`_prepare_targets`, :meth:`_task_loss` and prediction):

    ``_build_module(X, y) -> torch.nn.Module``
        Build the network from the training tensors (float32 ``X`` on the CPU, ``y`` as
        returned by ``_prepare_targets``). Called once per fresh fit, inside the seeded RNG.
        Use ``self.get_routed_params("module")`` for ``module__*`` keyword arguments.
    ``_prepare_targets(y, fit[, sample_weight=w]) -> tensor or None``
        Validate and encode targets (``fit=True`` on a fresh fit: learn the encoding, e.g.
        ``classes_``; ``fit=False``: reuse it). Unsupervised estimators return None.
        ``sample_weight`` (rows of weight 0 already removed) is passed as a keyword only
        when the fit is weighted (e.g. for weighted target standardisation).
    ``_task_loss(out, y, sample_weight=None) -> scalar tensor``
        Data loss of the network output (the mixins give cross-entropy on logits / MSE),
        reduced with :meth:`_weighted_mean`.
    ``_batch_loss(X, y, n_train[, sample_weight=w]) -> scalar tensor``
        Loss of one mini-batch (``y`` is None when unsupervised); default
        ``_task_loss(_forward(X), y, sample_weight)``; override it to add penalties (call
        ``self._task_loss``, never a mixin's loss, so the class order does not matter);
        ``n_train`` is the size of the training set (``sum(sample_weight)`` when weighted;
        for KL terms scaled by 1/N). ``sample_weight`` (the batch's weights divided by
        their training-set mean) is passed as a keyword only when the fit is weighted, so
        an override that takes no weights keeps working for unweighted fits; reduce
        per-sample terms with :meth:`_weighted_mean`. Called in train mode for training
        and under ``torch.no_grad()`` in eval mode for the validation loss.
    ``_optimizer_param_groups() -> iterable``
        Parameters or parameter groups for the optimizer (default: all module parameters).
    ``_n_epochs() -> int``
        Epochs of one ``fit`` call (default :meth:`_resolved_max_epochs`, which resolves
        ``max_epochs="auto"`` with ``self.steps_per_epoch_``; e.g. add fine-tuning epochs).
    ``_optimizer_class() -> type``
        The optimizer class (default: from ``optimizer``); its constructor's keyword
        names are the accepted ``optimizer__*`` parameters.
    ``_module_class`` (class attribute)
        The class that receives the ``module__*`` parameters; its constructor's keyword
        names are the accepted ones (None: not checked). Estimators that route no
        ``module__*`` parameters drop ``"module"`` from ``_routed_prefixes``.
    ``on_train_begin(n_epochs, steps_per_epoch)``
        Before the first epoch of a ``fit`` / ``partial_fit`` call (schedules needing the
        number of steps: ``self.total_steps_``, ``self.steps_per_epoch_``,
        ``self._fit_start_step_`` and ``self._fit_start_epoch_`` are set just before, and
        ``self._partial_call`` is True inside ``partial_fit``).
    ``on_batch_begin(X, y)``
        Before the forward pass (e.g. set the learning rate of a schedule).
    ``on_grad_computed(X, y)``
        After ``backward()`` and before ``optimizer.step()`` (e.g. read dense gradients,
        mask gradients).
    ``on_batch_end(X, y, loss)``
        After ``optimizer.step()`` (re-apply masks, proximal steps, projections, mask
        updates); ``self.n_steps_`` already counts this step.
    ``on_epoch_end(epoch) -> dict or None``
        After each epoch; a returned dict is merged into that epoch's ``history_`` record.
    ``on_train_end()``
        After the last epoch of a ``fit`` / ``partial_fit`` call.
    ``_forward(X) -> tensor``
        The deterministic forward used for prediction (default ``self.module_(X)``).

    **Sample weights.** ``fit(X, y, sample_weight=w)`` minimises the weighted mean loss
    ``sum_i w_i l_i / sum_i w_i``: each mini-batch loss is ``mean_b(w_i l_i) / mean(w)``
    (an unbiased estimate of it), so integer weights act as repeated rows and rows of
    weight 0 are removed before training. Terms scaled by ``1 / n_train`` (e.g. a KL term)
    use ``n_train = sum(w)``, the size of the equivalent repeated data set. With full-batch
    training (``batch_size`` >= the number of rows) and no sampling noise, integer weights
    give the fit on repeated rows to float32 rounding; with mini-batches they agree in
    expectation. ``partial_fit`` normalises the weights of each call by their mean.

    Prediction runs in float64 by default (``_predict_float64``): the float32 weights are
    cast in place and cast back exactly afterwards, so that predictions do not depend on
    how the rows are batched.

    Helpers: :meth:`get_routed_params`, :meth:`_to_tensor`, :meth:`_torch_rng` (a context
    manager seeding torch for reproducible sampling), :meth:`_predict_batches`,
    :meth:`_weighted_mean`.

    Pickling stores the module moved to the CPU and the optimizer's state dict (tensors on
    the CPU), so a model trained on CUDA unpickles on a CPU-only machine.

    Examples
    --------
    >>> from sparsestat.neural._base import BaseTorchEstimator
    >>> sorted(BaseTorchEstimator._routed_prefixes)
    ['module', 'optimizer']
    """

    #: predict in float64 (the float32 weights cast exactly, and back afterwards): results do
    #: not depend on the prediction batch size; set False for large models
    _predict_float64: bool = True

    #: prefixes whose ``prefix__name`` parameters are routed (subclasses may extend)
    _routed_prefixes: tuple[str, ...] = ("module", "optimizer")

    #: the class built with the ``module__*`` parameters (None: their names are not checked)
    _module_class: Any = None

    #: renamed parameters kept for one release through ``**kwargs``: old name -> new name
    #: (or (new name, conversion of the old value)); read them with :meth:`_renamed`
    _renamed_params: dict[str, Any] = {}

    #: ``max_epochs="auto"``: (fewest epochs, fewest optimiser steps, most epochs)
    _auto_epochs: tuple[int, int, int] = (50, 2000, 500)

    _parameter_constraints: dict = {
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "optimizer": [StrOptions(set(OPTIMIZERS)), type],
        "early_stopping": ["boolean"],
        "validation_fraction": [None, Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # ------------------------------------------------------------------ routed parameters
    def _store_routed(self, kwargs: dict[str, Any]) -> None:
        """Keep ``prefix__name`` keyword arguments (called by subclasses' ``__init__``)."""
        self._routed_params = dict(kwargs)

    def get_routed_params(self, prefix: str) -> dict[str, Any]:
        """Return the routed ``prefix__*`` parameters without their prefix.

        Parameters
        ----------
        prefix : str
            ``'module'`` or ``'optimizer'`` (or a subclass's extra prefix).

        Returns
        -------
        params : dict
            E.g. ``{'weight_decay': 1e-4}`` for ``optimizer__weight_decay=1e-4``.
        """
        head = prefix + "__"
        routed = getattr(self, "_routed_params", {})
        return {k[len(head) :]: v for k, v in routed.items() if k.startswith(head)}

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Get parameters, including the routed ``module__*`` / ``optimizer__*`` ones.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of contained estimators.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        params.update(getattr(self, "_routed_params", {}))
        return params

    def set_params(self, **params: Any) -> BaseTorchEstimator:
        """Set parameters, including routed ``module__*`` / ``optimizer__*`` ones.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : estimator
            This estimator.
        """
        routed = {k: v for k, v in params.items() if self._is_routed(k)}
        rest = {k: v for k, v in params.items() if k not in routed}
        if rest:
            super().set_params(**rest)
        if routed:
            self._routed_params = {**getattr(self, "_routed_params", {}), **routed}
            self._check_routed(list(routed))
        return self

    def _is_routed(self, key: str) -> bool:
        if key in self._renamed_params:
            return True
        head, sep, tail = key.partition("__")
        return bool(sep) and bool(tail) and head in self._routed_prefixes

    def _renamed(self, new: str) -> Any:
        """The value of parameter ``new``, or of its old name given through ``**kwargs``.

        An old name (a key of ``_renamed_params``) that the caller set wins, with a
        ``FutureWarning``; setting both names raises ``ValueError``. The old value is
        validated against the new parameter's constraints.
        """
        routed = getattr(self, "_routed_params", {})
        for old, target in self._renamed_params.items():
            target, convert = target if isinstance(target, tuple) else (target, None)
            if target != new or old not in routed:
                continue
            name = type(self).__name__
            default = inspect.signature(type(self).__init__).parameters[new].default
            current = getattr(self, new)
            if not (current is default or (type(current) is type(default) and current == default)):
                raise ValueError(
                    f"{name}: {old!r} is the deprecated name of {new!r}; set only {new!r} "
                    f"(got {old}={routed[old]!r} and {new}={current!r})."
                )
            warn_renamed(old, new, name, stacklevel=4)
            value = routed[old] if convert is None else convert(routed[old])
            probe = copy.copy(self)
            probe._routed_params = {}
            setattr(probe, new, value)
            try:
                probe._validate_params()
            except InvalidParameterError as exc:
                raise InvalidParameterError(str(exc).replace(f"'{new}'", f"'{old}'")) from None
            return value
        return getattr(self, new)

    def _accepted_routed(self, prefix: str) -> set[str] | None:
        """Names accepted after ``prefix__`` (None: not checked).

        ``optimizer``: the keyword parameters of :meth:`_optimizer_class` (but ``lr``, which
        is the flat ``lr`` parameter); ``module``: those of ``_module_class``.
        """
        if prefix == "optimizer":
            names = keyword_names(self._optimizer_class())
            return None if names is None else names - {"params", "lr"}
        if prefix == "module" and self._module_class is not None:
            return keyword_names(self._module_class)
        return None

    def _check_routed(self, keys: list[str] | None = None) -> None:
        """Raise a ValueError naming any routed parameter the estimator cannot use."""
        routed = getattr(self, "_routed_params", {})
        keys = list(routed) if keys is None else keys
        name = type(self).__name__
        bad = [k for k in keys if not self._is_routed(k)]
        if bad:
            raise ValueError(
                f"Unknown parameters {bad} for {name}; extra keyword parameters must start "
                f"with one of {[p + '__' for p in self._routed_prefixes]}"
            )
        for key in keys:
            prefix, _, tail = key.partition("__")
            accepted = self._accepted_routed(prefix)
            if accepted is not None and tail not in accepted:
                target = self._optimizer_class() if prefix == "optimizer" else self._module_class
                hint = " (use the flat lr parameter)" if tail == "lr" else ""
                raise ValueError(
                    f"Invalid parameter {key!r} for {name}{hint}: {target.__name__} accepts "
                    f"{prefix}__ followed by one of {sorted(accepted)}."
                )

    # ------------------------------------------------------------------ hooks (defaults)
    @abstractmethod
    def _build_module(self, X: Any, y: Any) -> Any:
        """Build the torch module from the training tensors."""

    def _batch_loss(self, X: Any, y: Any, n_train: float, sample_weight: Any = None) -> Any:
        """Loss of one mini-batch (a scalar tensor): by default the task loss of the forward.

        An autograd-free step may write every parameter's ``.grad`` itself and return a loss
        that does not require grad: ``backward`` is then skipped (``on_grad_computed`` still
        runs).
        """
        return self._task_loss(self._forward(X), y, sample_weight)

    def _task_loss(self, out: Any, y: Any, sample_weight: Any = None) -> Any:
        """Data loss of the network output ``out`` (the mixins: cross-entropy / MSE)."""
        raise NotImplementedError(f"{type(self).__name__} defines no _task_loss")

    @staticmethod
    def _weighted_mean(per_sample: Any, sample_weight: Any = None) -> Any:
        """Mean of per-sample terms, weighted by the (normalised) batch weights if given."""
        if sample_weight is None:
            return per_sample.mean()
        return (per_sample * sample_weight.to(per_sample.dtype)).mean()

    def _prepare_targets(self, y: Any, fit: bool, sample_weight: Any = None) -> Any:
        return None

    def _optimizer_param_groups(self) -> Any:
        return self.module_.parameters()

    def _n_epochs(self) -> int:
        return self._resolved_max_epochs()

    def _resolved_max_epochs(self) -> int:
        """``max_epochs``, with ``"auto"`` resolved from ``self.steps_per_epoch_``."""
        if self.max_epochs != "auto":
            return int(self.max_epochs)
        lo, steps, hi = self._auto_epochs
        return int(min(hi, max(lo, math.ceil(steps / max(1, self.steps_per_epoch_)))))

    def _optimizer_class(self) -> Any:
        if isinstance(self.optimizer, str):
            return eager_optimizer(getattr(torch.optim, OPTIMIZERS[self.optimizer]))
        return self.optimizer

    def _forward(self, X: Any) -> Any:
        return self.module_(X)

    def on_train_begin(self, n_epochs: int, steps_per_epoch: int) -> None:
        """Hook: before the first epoch of a fit call."""

    def on_batch_begin(self, X: Any, y: Any) -> None:
        """Hook: before the forward pass of a training batch."""

    def on_grad_computed(self, X: Any, y: Any) -> None:
        """Hook: after ``backward()``, before ``optimizer.step()``."""

    def on_batch_end(self, X: Any, y: Any, loss: Any) -> None:
        """Hook: after ``optimizer.step()`` (masks, proximal steps, projections)."""

    def on_epoch_end(self, epoch: int) -> dict[str, Any] | None:
        """Hook: after each epoch; a returned dict joins the epoch's history record."""
        return None

    def on_train_end(self) -> None:
        """Hook: after the last epoch of a fit call."""

    # ------------------------------------------------------------------ helpers
    def _requires_y(self) -> bool:
        return self.__sklearn_tags__().target_tags.required

    def _validate_X_y(self, X: Any, y: Any, reset: bool) -> tuple[np.ndarray, Any]:
        kwargs = {"accept_sparse": False, "dtype": (np.float32, np.float64), "reset": reset}
        if self._requires_y():
            multi = self.__sklearn_tags__().target_tags.multi_output
            X, y = validate_data(self, X, y, multi_output=multi, y_numeric=False, **kwargs)
            return X, y
        return validate_data(self, X, **kwargs), None

    def _training_rows(self, X: Any) -> Any:
        """Training data as a float32 CPU tensor (or any object with ``.shape``, ``.to(device)``
        and row indexing by a LongTensor, e.g. to densify sparse input per mini-batch)."""
        return torch.as_tensor(np.asarray(X, dtype=np.float32))

    def _to_tensor(self, a: np.ndarray, dtype: Any = None) -> Any:
        """Copy a NumPy array to a (float32 unless ``dtype``) tensor on ``device_``."""
        dtype = torch.float32 if dtype is None else dtype
        return torch.as_tensor(np.ascontiguousarray(a)).to(device=self._device(), dtype=dtype)

    def _device(self) -> Any:
        dev = getattr(self, "device_", None)
        if dev is None or (dev.type == "cuda" and not torch.cuda.is_available()):
            dev = resolve_device(self.device, for_fit=False)
        return dev

    def _draw_seed(self) -> int:
        return int(self._rng_.randint(np.iinfo(np.int32).max))

    @contextlib.contextmanager
    def _torch_rng(self, seed: int) -> Iterator[None]:
        """Seed torch inside a forked RNG, so the caller's global state is untouched."""
        dev = self._device()
        devices = [dev.index or 0] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    def _make_optimizer(self) -> Any:
        kwargs = {"lr": self.lr, **self.get_routed_params("optimizer")}
        if self.optimizer == "sgd":
            kwargs.setdefault("momentum", 0.9)
        return self._optimizer_class()(self._optimizer_param_groups(), **kwargs)

    def _predict_seed(self) -> int:
        """A seed for prediction-time sampling, fixed by ``random_state``."""
        rs = self.random_state
        if isinstance(rs, numbers.Integral):
            return int(rs) + 1
        return int(getattr(self, "_predict_seed_", 0))

    # ------------------------------------------------------------------ training
    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> BaseTorchEstimator:
        """Train the network for ``max_epochs`` epochs (or until early stopping).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Targets (None for unsupervised estimators).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows in the loss (None: all 1); rows of weight 0 are
            left out.

        Returns
        -------
        self : estimator
            The fitted estimator.

        Notes
        -----
        Given a dask array ``X`` (``y`` and ``sample_weight`` dask arrays with the same row
        chunks, or NumPy arrays), ``fit`` streams: it starts afresh (unless ``warm_start``)
        and makes ``max_epochs`` passes (``"auto"``: resolved from the total number of
        mini-batches of a pass) of one ``partial_fit`` call per row block, in order, never
        holding more than one block in memory. Early stopping needs the data in memory.
        """
        if is_dask_array(X):
            return self._fit_streaming(X, y, sample_weight=sample_weight)
        return self._fit(X, y, partial=False, sample_weight=sample_weight)

    def _streaming_fit_params(self, y: Any) -> dict[str, Any]:
        """Extra ``partial_fit`` arguments of a streaming fit (classifiers: ``classes``)."""
        return {}

    def _fit_streaming(self, X: Any, y: Any = None, **fit_params: Any) -> BaseTorchEstimator:
        """``fit`` on a dask array: passes of ``partial_fit`` over its row blocks, in order."""
        if self._early_stopping_on():
            raise ValueError(
                "early_stopping=True needs the training data in memory; a dask array is "
                "streamed block by block. Set early_stopping=False (or compute X first)."
            )
        if not self.warm_start:
            for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
                delattr(self, name)
        if self.max_epochs == "auto":
            self.steps_per_epoch_ = sum(math.ceil(c / self.batch_size) for c in X.chunks[0])
        n_passes = self._resolved_max_epochs()
        extra = {**self._streaming_fit_params(y), **fit_params}
        for _ in range(n_passes):
            partial_fit_chunks(self, X, y, **extra)
        self.n_epochs_ = n_passes
        return self

    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> BaseTorchEstimator:
        """Run one epoch over ``(X, y)``, initialising the network on the first call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Its targets (None for unsupervised estimators).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows in the loss, relative within this chunk.

        Returns
        -------
        self : estimator
            The updated estimator.
        """
        if not hasattr(self, "module_"):
            self._validate_params()
        return self._fit(X, y, partial=True, sample_weight=sample_weight)

    def _fit(self, X: Any, y: Any, *, partial: bool, sample_weight: Any = None) -> Any:
        self._check_routed()
        fresh = not hasattr(self, "module_") or not (partial or self.warm_start)
        X, y = self._validate_X_y(X, y, reset=fresh)
        sw = validated_sample_weight(sample_weight, X)
        if sw is not None and not bool(np.all(sw > 0)):  # weight 0 = row removed
            keep = np.flatnonzero(sw > 0)
            X, sw = X[keep], sw[keep]
            y = None if y is None else y[keep]
        y_t = self._prepare_targets(y, fit=fresh, **({} if sw is None else {"sample_weight": sw}))
        if fresh:
            self._rng_ = check_random_state(self.random_state)
            self.device_ = resolve_device(self.device)
            self._predict_seed_ = self._draw_seed()
        else:
            self.device_ = self._device()
        X_cpu = self._training_rows(X)
        seed = self._draw_seed()
        with self._torch_rng(seed):
            if fresh:
                self.module_ = self._build_module(X_cpu, y_t).to(self.device_)
                self.optimizer_ = self._make_optimizer()
                self.n_iter_ = 0
                self.n_steps_ = 0
                self.loss_curve_ = []
                self.history_ = []
                self.best_loss_ = None
            else:
                self.module_.to(self.device_)
                if getattr(self, "optimizer_", None) is None:
                    self.optimizer_ = self._make_optimizer()
                    state = getattr(self, "_optimizer_state", None)
                    if state is not None:
                        self.optimizer_.load_state_dict(state)
                        self._optimizer_state = None
            w_t = None if sw is None else torch.as_tensor(sw, dtype=torch.float64)
            self._train(X_cpu, y_t, partial=partial, seed=seed, sample_weight=w_t)
        return self

    def _early_stopping_on(self) -> bool:
        flag = getattr(self, "early_stopping", None)
        if flag is None:  # an estimator without the parameter: on when a fraction is given
            return self.validation_fraction is not None
        if flag and self.validation_fraction is None:
            raise ValueError("early_stopping=True needs a validation_fraction in (0, 1).")
        return bool(flag)

    def _split(self, n: int, gen: Any) -> tuple[Any, Any]:
        idx = torch.randperm(n, generator=gen)
        frac = self.validation_fraction
        n_valid = int(math.ceil(frac * n))
        if n_valid < 1 or n - n_valid < 1:
            raise ValueError(
                f"validation_fraction={frac} leaves an empty training or validation set "
                f"for n_samples={n}"
            )
        return idx[n_valid:], idx[:n_valid]

    def _train(
        self, X_cpu: Any, y_t: Any, *, partial: bool, seed: int, sample_weight: Any = None
    ) -> None:
        dev = self.device_
        gen = torch.Generator().manual_seed(seed)
        X_all = X_cpu.to(dev)
        y_all = None if y_t is None else y_t.to(dev)
        early = not partial and self._early_stopping_on()
        train_idx, valid_idx = self._split(X_all.shape[0], gen) if early else (None, None)
        n_train = X_all.shape[0] if train_idx is None else train_idx.shape[0]
        n_rows = n_train
        w_all = w_valid = None
        if sample_weight is not None:
            w_train = sample_weight if train_idx is None else sample_weight[train_idx]
            n_train = float(w_train.sum())  # the size of the equivalent repeated data
            w_all = (sample_weight / w_train.mean()).to(dev)
            if valid_idx is not None:
                w_valid = sample_weight[valid_idx]
                w_valid = (w_valid / w_valid.mean()).to(dev)
        batch_size = min(self.batch_size, n_rows)
        steps_per_epoch = int(math.ceil(n_rows / batch_size))
        self.steps_per_epoch_ = steps_per_epoch
        n_epochs = 1 if partial else self._n_epochs()
        if not partial:
            self.n_epochs_ = n_epochs
        self.total_steps_ = n_epochs * steps_per_epoch
        self._fit_start_step_ = self.n_steps_
        self._fit_start_epoch_ = self.n_iter_
        self._partial_call = partial
        self.on_train_begin(n_epochs, steps_per_epoch)
        best, stale, stopped = math.inf, 0, False
        best_state = None
        bar = progress_bar(range(n_epochs), verbose=self.verbose, desc=type(self).__name__)
        for _ in bar:
            self.module_.train()
            order = torch.randperm(n_rows, generator=gen)
            if train_idx is not None:
                order = train_idx[order]
            order = order.to(dev)
            total, count = 0.0, 0
            for start in range(0, n_rows, batch_size):
                idx = order[start : start + batch_size]
                xb = X_all[idx]
                yb = None if y_all is None else y_all[idx]
                weight = {} if w_all is None else {"sample_weight": w_all[idx]}
                self.on_batch_begin(xb, yb)
                self.optimizer_.zero_grad(set_to_none=True)
                loss = self._batch_loss(xb, yb, n_train, **weight)
                if not bool(torch.isfinite(loss.detach()).all()):
                    self._raise_diverged(f"the loss is {float(loss.detach())}")
                if loss.requires_grad:  # else _batch_loss has written the .grad itself
                    loss.backward()
                self.on_grad_computed(xb, yb)
                self.optimizer_.step()
                self.n_steps_ += 1
                self.on_batch_end(xb, yb, loss)
                total += float(loss.detach()) * idx.shape[0]
                count += idx.shape[0]
            if not all(bool(torch.isfinite(p).all()) for p in self.module_.parameters()):
                self._raise_diverged("a network weight is not finite")
            self.n_iter_ += 1
            record: dict[str, Any] = {
                "epoch": self.n_iter_,
                "train_loss": total / count,
                "lr": float(self.optimizer_.param_groups[0]["lr"]),
            }
            self.loss_curve_.append(record["train_loss"])
            if valid_idx is not None:
                vidx = valid_idx.to(dev)
                yv = None if y_all is None else y_all[vidx]
                vloss = self._eval_loss(X_all[vidx], yv, n_train, w_valid)
                record["valid_loss"] = vloss
                if vloss < best - self.tol:
                    best, stale = vloss, 0
                    best_state = copy.deepcopy(self.module_.state_dict())
                else:
                    stale += 1
            extra = self.on_epoch_end(self.n_iter_)
            if extra:
                record.update(extra)
            self.history_.append(record)
            if self.verbose:
                bar.set_postfix(loss=f"{record['train_loss']:.4g}")
            if valid_idx is not None and stale >= self.n_iter_no_change:
                stopped = True
                break
        if valid_idx is not None:
            if best_state is not None:
                self.module_.load_state_dict(best_state)
            self.best_loss_ = best
            self.converged_ = stopped
            if not stopped:
                warnings.warn(
                    f"{type(self).__name__}: early stopping did not trigger within "
                    f"{n_epochs} epochs (max_epochs={self.max_epochs!r}): the validation loss "
                    f"still improved by more than tol={self.tol} within the last "
                    f"n_iter_no_change={self.n_iter_no_change} epochs (best {best:.4g}, last "
                    f"{self.history_[-1]['valid_loss']:.4g}).",
                    ConvergenceWarning,
                    stacklevel=4,
                )
        else:
            self.converged_ = True
        self.on_train_end()
        self.module_.eval()

    def _raise_diverged(self, what: str) -> None:
        """Stop training with a clear error instead of returning NaN predictions."""
        raise ValueError(
            f"{type(self).__name__} training diverged at epoch {self.n_iter_ + 1}: {what}. "
            f"Lower lr (now {self.lr}), scale the features (e.g. with StandardScaler) or "
            f"reduce the learning-rate schedule."
        )

    def _eval_loss(self, Xv: Any, yv: Any, n_train: float, weight: Any = None) -> float:
        self.module_.eval()
        with torch.no_grad():
            kw = {} if weight is None else {"sample_weight": weight}
            out = float(self._batch_loss(Xv, yv, n_train, **kw))
        self.module_.train()
        return out

    # ------------------------------------------------------------------ prediction
    def _predict_batches(self, X: Any, fn: Any = None, batch_size: int = 4096) -> np.ndarray:
        """Validate ``X`` and apply ``fn`` (default :meth:`_forward`) batch by batch.

        Returns the concatenated float64 NumPy output; runs in eval mode without gradients.
        Thread-safe: calls on one module (e.g. dask blocks computed by threads) take turns,
        since the module's dtype and sampling state change during a call.
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=False, dtype=(np.float32, np.float64), reset=False)
        fn = self._forward if fn is None else fn
        dev = self._device()
        outs = []
        dtype = torch.float64 if self._predict_float64 else torch.float32
        with module_lock(self.module_), torch.no_grad():
            self.module_.to(dev)
            self.module_.eval()
            with module_dtype(self.module_, dtype):
                outs = self._apply_batches(X, fn, batch_size, dev, dtype)
        return np.concatenate(outs, axis=0)

    @staticmethod
    def _apply_batches(X: Any, fn: Any, batch_size: int, dev: Any, dtype: Any) -> list:
        outs = []
        for start in range(0, X.shape[0], batch_size):
            xb = torch.as_tensor(np.asarray(X[start : start + batch_size], np.float32))
            outs.append(fn(xb.to(device=dev, dtype=dtype)).detach().cpu().double().numpy())
        return outs

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        """Pickle state: every torch object goes, moved to the CPU, into one ``torch.save``
        payload (the module, the optimizer's ``state_dict``, any other tensor attribute)."""
        state = dict(super().__getstate__())
        opt = state.pop("optimizer_", None)
        if opt is not None:
            state["_optimizer_state"] = opt.state_dict()
        if "device_" in state:
            state["device_"] = None
        torch_state = {k: v for k, v in state.items() if holds_torch(v)}
        if torch_state:
            for key in torch_state:
                del state[key]
            buffer = io.BytesIO()
            torch.save(to_cpu(torch_state), buffer)
            state[TORCH_PAYLOAD] = buffer.getvalue()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        payload = state.pop(TORCH_PAYLOAD, None)
        if payload is not None:
            # map_location: a payload written on a GPU machine loads on a CPU-only one
            loaded = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)
            state.update(loaded)
        state.setdefault("optimizer_", None)
        super().__setstate__(state)

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.non_deterministic = self.random_state is None
        return tags
