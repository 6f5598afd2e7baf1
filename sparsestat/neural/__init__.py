"""PyTorch adapters: sparse neural networks as scikit-learn estimators.

PyTorch is an optional dependency (the ``torch`` extra). ``import sparsestat.neural`` works
without it; the estimators and layers are imported lazily, and using one without PyTorch
raises an :class:`ImportError` that names the extra (``pip install sparsestat[torch]``).

Every estimator here is built on one small base class,
:class:`sparsestat.neural._base.BaseTorchEstimator`; the plain torch pieces (layers, masks,
gates, schedulers) are public in :mod:`sparsestat.neural.layers`.

Examples
--------
>>> import sparsestat.neural as neural
>>> "SSVIClassifier" in dir(neural)
True
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> submodule of sparsestat.neural that defines it (one line per name; helpers
#: adding an estimator add their lines here)
_LAZY: dict[str, str] = {
    "layers": "layers",
    "SSVIClassifier": "ssvi",
    "SSVIRegressor": "ssvi",
    "MeanFieldVIClassifier": "ssvi",
    "COMETMoEClassifier": "comet",
    "COMETMoERegressor": "comet",
    "GroupEnvelopeRegularizer": "envelope",
    "GroupEnvelopeMLPClassifier": "envelope",
    "GroupEnvelopeMLPRegressor": "envelope",
    "SparseAutoencoder": "_sae",
    # the variants of SparseAutoencoder (activation=TopK(k=8)), also in neural.layers
    "TopK": "layers.sae_topk",
    "BatchTopK": "layers.sae_topk",
    "AbsTopK": "layers.sae_topk",
    "MutualChoice": "layers.sae_choice",
    "FeatureChoice": "layers.sae_choice",
    "GSAE": "layers.sae_gsae",
    "JumpReLU": "layers.sae_activations",
    "ReLU": "layers.sae_activations",
    "TopAFA": "layers.sae_activations",
    "MatchingPursuit": "layers.sae_activations",
    "SparseMLPClassifier": "_sparse_training",
    "SparseMLPRegressor": "_sparse_training",
    "QuickSelection": "_quickselection",
    "SparseMatrixFactorization": "_dsl",
}

__all__ = sorted(_LAZY)

TORCH_EXTRA_MESSAGE = (
    "sparsestat.neural needs PyTorch, which is not installed. "
    "Install the extra with: pip install sparsestat[torch]"
)


def import_torch() -> Any:
    """Import and return :mod:`torch`, or raise an ImportError naming the ``torch`` extra.

    Returns
    -------
    torch : module
        The imported :mod:`torch` package.

    Raises
    ------
    ImportError
        If PyTorch is not installed; the message says ``pip install sparsestat[torch]``.

    Examples
    --------
    >>> from sparsestat.neural import import_torch
    >>> import_torch().__name__
    'torch'
    """
    try:
        return importlib.import_module("torch")
    except ImportError as exc:  # ModuleNotFoundError, or a blocked import
        raise ImportError(TORCH_EXTRA_MESSAGE) from exc


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import_torch()
        module = importlib.import_module(f"sparsestat.neural.{_LAZY[name]}")
        return module if name == _LAZY[name] else getattr(module, name)
    raise AttributeError(f"module 'sparsestat.neural' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "import_torch", "TORCH_EXTRA_MESSAGE"])
