"""Helpers of the PyTorch base: devices, optimizers without torch._dynamo, pickling, locks.

Used by :mod:`sparsestat.neural._base`; nothing here is an estimator.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import threading
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np

from sparsestat.neural import import_torch
from sparsestat.utils._compat import check_sample_weight

torch = import_torch()

__all__ = [
    "OPTIMIZERS",
    "TORCH_PAYLOAD",
    "eager_optimizer",
    "holds_torch",
    "keyword_names",
    "module_dtype",
    "module_lock",
    "resolve_device",
    "to_cpu",
    "validated_sample_weight",
]

OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD"}


def _eager_optimizer(cls: Any) -> Any:
    """``cls`` without the wrappers that import ``torch._dynamo`` on first use.

    In torch 2.x, ``Optimizer.add_param_group`` / ``zero_grad`` / ``state_dict`` /
    ``load_state_dict`` are wrapped by ``torch._disable_dynamo`` and ``step`` by
    ``_use_grad_for_differentiable``; the first call of each imports ``torch._dynamo``, which
    costs CPU time in every process (1.2 s of process time with torch 2.13 on this project's
    2-core machine, once its files are in the page cache: ``python -c "import time, torch;
    t = time.process_time(); import torch._dynamo; print(time.process_time() - t)"``). The
    subclass calls the wrapped functions directly (``step`` under ``torch.no_grad()``,
    without the profiler hook) and falls back to ``cls`` when the wrappers are not found.
    """
    names = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")
    base = torch.optim.Optimizer
    raw = {n: getattr(getattr(base, n), "__wrapped__", None) for n in names}
    raw_step = getattr(cls.step, "__wrapped__", None)
    if raw_step is None or any(f is None for f in raw.values()):
        return cls

    def step(self: Any, closure: Any = None) -> Any:
        with torch.no_grad():
            return raw_step(self, closure)

    def _patch_step_function(self: Any) -> None:
        self._zero_grad_profile_name = f"Optimizer.zero_grad#{cls.__name__}.zero_grad"

    ns = {**raw, "step": step, "_patch_step_function": _patch_step_function}
    ns["__doc__"] = cls.__doc__
    return type(cls.__name__, (cls,), ns)


_EAGER_OPTIMIZERS: dict[Any, Any] = {}


def eager_optimizer(cls: Any) -> Any:
    """The cached subclass of the built-in optimizer ``cls`` that never imports torch._dynamo."""
    if cls not in _EAGER_OPTIMIZERS:
        _EAGER_OPTIMIZERS[cls] = _eager_optimizer(cls)
    return _EAGER_OPTIMIZERS[cls]


def resolve_device(device: str, *, for_fit: bool = True) -> Any:
    """Turn ``'auto' | 'cpu' | 'cuda'`` (or ``'cuda:1'``) into a :class:`torch.device`.

    Parameters
    ----------
    device : str
        ``'auto'`` picks CUDA when available, else the CPU.
    for_fit : bool, default=True
        When True, asking for CUDA on a machine without it raises; when False (prediction
        with a model trained elsewhere) the CPU is used with a warning.

    Returns
    -------
    device : torch.device
        The device to compute on.

    Examples
    --------
    >>> from sparsestat.neural._base import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        if for_fit:
            raise ValueError(f"device={device!r} was requested but CUDA is not available")
        warnings.warn("CUDA is not available; computing on the CPU instead", stacklevel=3)
        return torch.device("cpu")
    return dev


_MODULE_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_LOCK = threading.Lock()


def module_lock(module: Any) -> Any:
    """The re-entrant lock of ``module`` (one per module, created on first use)."""
    with _LOCKS_LOCK:
        lock = _MODULE_LOCKS.get(module)
        if lock is None:
            lock = _MODULE_LOCKS[module] = threading.RLock()
    return lock


@contextlib.contextmanager
def module_dtype(module: Any, dtype: Any) -> Iterator[None]:
    """Cast a float32 module's floating tensors to ``dtype`` in place, and back (exactly)."""
    if dtype == torch.float32:
        yield
        return
    module.to(dtype)
    try:
        yield
    finally:
        module.to(torch.float32)


TORCH_PAYLOAD = "_torch_payload"


def validated_sample_weight(sample_weight: Any, X: Any) -> np.ndarray | None:
    """Validated float64 weights (None when absent or all 1), with clear errors."""
    if sample_weight is None:
        return None
    sw = check_sample_weight(sample_weight, X, dtype=np.float64)  # all zero: an error
    return None if bool(np.all(sw == 1)) else sw


def keyword_names(cls: Any) -> set[str] | None:
    """Keyword parameter names of ``cls``'s constructor (None if it takes ``**kwargs``)."""
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in params if p.kind in kinds}


def holds_torch(obj: Any, depth: int = 0) -> bool:
    """Whether ``obj`` is, or (in a dict / list / tuple) contains, a torch object."""
    if isinstance(obj, (torch.Tensor, torch.nn.Module, torch.Generator)):
        return True
    if depth < 4 and isinstance(obj, dict):
        return any(holds_torch(v, depth + 1) for v in obj.values())
    if depth < 4 and isinstance(obj, (list, tuple)):
        return any(holds_torch(v, depth + 1) for v in obj)
    return False


def to_cpu(obj: Any) -> Any:
    """A copy of ``obj`` with its tensors and modules on the CPU (the input is not changed)."""
    if isinstance(obj, torch.nn.Module):
        return copy.deepcopy(obj).to("cpu")
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj
