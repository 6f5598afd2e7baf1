"""sparsestat: sparse recovery and sparse learning from recent research, for scikit-learn users.

Every method is a scikit-learn estimator. Subpackages are imported lazily, so that
``import sparsestat`` is fast, never imports PyTorch and compiles no Numba kernel.

Examples
--------
>>> import sparsestat
>>> from sparsestat.linear_model import IHTRegressor
>>> IHTRegressor(n_nonzero_coefs=3)
IHTRegressor(n_nonzero_coefs=3)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0.dev0"

_SUBMODULES = (
    "bayes",
    "datasets",
    "decomposition",
    "linear_model",
    "metrics",
    "mixture",
    "neural",
    "penalties",
    "privacy",
    "utils",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"sparsestat.{name}")
    raise AttributeError(f"module 'sparsestat' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
