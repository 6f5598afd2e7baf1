"""Array-namespace detection, conversion and the kernel registry.

Device follows the data: NumPy in, NumPy out (through a Numba kernel where one is
registered); CuPy or torch in, the same library out (through a fused CuPy kernel where one
is registered, the generic array-API kernel otherwise).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_cupy_namespace, is_numpy_namespace
from array_api_compat import is_torch_namespace as _is_torch_namespace

__all__ = [
    "BACKENDS",
    "backend_name",
    "force_backend",
    "get_kernel",
    "get_namespace",
    "is_device_array",
    "register",
    "registered",
    "to_host",
    "to_numpy",
]

#: Specialised backends a kernel may register, and the input library each serves.
BACKENDS: dict[str, str] = {"numba": "numpy", "cupy": "cupy"}

_REGISTRY: dict[str, dict[str, Callable[..., Any]]] = {}
_FORCED: contextvars.ContextVar[str | None] = contextvars.ContextVar("_FORCED", default=None)


def get_namespace(*arrays: Any) -> Any:
    """Return the array-API namespace shared by ``arrays`` (NumPy for Python scalars/lists)."""
    arrays = tuple(a for a in arrays if a is not None and not isinstance(a, int | float | complex))
    if not arrays:
        return array_namespace(np.empty(0))
    return array_namespace(*arrays)


def backend_name(xp: Any) -> str:
    """Name of the array library behind namespace ``xp``: 'numpy', 'cupy', 'torch' or 'other'."""
    if is_numpy_namespace(xp):
        return "numpy"
    if is_cupy_namespace(xp):
        return "cupy"
    if _is_torch_namespace(xp):
        return "torch"
    return "other"


def to_numpy(x: Any) -> np.ndarray:
    """Copy-free where possible conversion of any supported array to a NumPy array."""
    if isinstance(x, np.ndarray):
        return x
    mod = type(x).__module__.split(".")[0]
    if mod == "cupy":
        return x.get()
    if mod == "torch":
        return x.detach().cpu().numpy()
    return np.asarray(x)


_Func = Callable[..., Any]


def register(name: str, backend: str = "generic") -> Callable[[_Func], _Func]:
    """Decorator registering ``func`` as the ``backend`` version of kernel ``name``.

    ``backend`` is ``'generic'`` (array API, required for every kernel), ``'numba'`` (used
    for NumPy input) or ``'cupy'`` (used for CuPy input).
    """
    if backend != "generic" and backend not in BACKENDS:
        raise ValueError(f"backend must be 'generic' or one of {sorted(BACKENDS)}, got {backend!r}")

    def decorator(func: _Func) -> _Func:
        _REGISTRY.setdefault(name, {})[backend] = func
        return func

    return decorator


def registered() -> dict[str, tuple[str, ...]]:
    """Kernel names and the backends registered for each (for tests and benchmarks)."""
    return {name: tuple(sorted(impls)) for name, impls in _REGISTRY.items()}


@contextlib.contextmanager
def force_backend(backend: str | None) -> Iterator[None]:
    """Force every :func:`get_kernel` call in this context to ``backend`` (e.g. ``'generic'``).

    Used by the tests to run the generic array-API path on NumPy input.
    """
    token = _FORCED.set(backend)
    try:
        yield
    finally:
        _FORCED.reset(token)


def get_kernel(name: str, *arrays: Any) -> Callable[..., Any]:
    """Pick the implementation of kernel ``name`` for the library of ``arrays``."""
    try:
        impls = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no kernel named {name!r}; registered: {sorted(_REGISTRY)}") from None
    forced = _FORCED.get()
    if forced is not None:
        if forced not in impls:
            raise KeyError(f"kernel {name!r} has no {forced!r} version")
        return impls[forced]
    lib = backend_name(get_namespace(*arrays))
    for backend, serves in BACKENDS.items():
        if serves == lib and backend in impls:
            return impls[backend]
    return impls["generic"]


# ------------------------------------------------------------ sparse Bayesian learning (bayes)
def is_device_array(a: Any) -> bool:
    """Whether ``a`` is an array of another array-API library than NumPy (CuPy, torch, ...).

    Such arrays are kept in their library and on their device by the estimators that accept
    them (device follows the data); NumPy arrays and array-likes are validated on the host.
    """
    if a is None or isinstance(a, np.ndarray):
        return False
    return type(a).__module__.split(".")[0] in {"torch", "cupy"} or hasattr(
        a, "__array_namespace__"
    )


def to_host(x: Any) -> np.ndarray:
    """:func:`to_numpy`, also for devices NumPy cannot read directly (a DLPack copy to the CPU)."""
    try:
        return to_numpy(x)
    except (RuntimeError, TypeError, ValueError, BufferError):
        return np.from_dlpack(x, device="cpu", copy=True)
