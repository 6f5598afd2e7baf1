"""PyTorch adapters: sparse neural networks as scikit-learn estimators.

PyTorch is an optional dependency (the ``torch`` extra). ``import sparsestat.neural`` works
without it; the estimators and layers are imported lazily, and using one without PyTorch
raises an :class:`ImportError` that names the extra (``pip install sparsestat[torch]``).

Every estimator here is built on one small base class,
:class:`sparsestat.neural._base.BaseTorchEstimator`. Variants are small public objects with
``get_params`` / ``set_params``: the sparse-training methods of
:class:`SparseMLPClassifier` (``method=RigL(drop_fraction=0.5)``, tuned as
``method__drop_fraction``) and the group-envelope regulariser are exported here; the plain
torch pieces (layers, masks, gates, optimizers) are public in :mod:`sparsestat.neural.layers`.

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
    "SSVIClassifier": "_ssvi",
    "SSVIRegressor": "_ssvi",
    "MeanFieldVIClassifier": "_ssvi",
    "COMETMoEClassifier": "_comet",
    "COMETMoERegressor": "_comet",
    "GroupEnvelopeRegularizer": "layers._envelope",
    "GroupEnvelopeMLPClassifier": "_envelope",
    "GroupEnvelopeMLPRegressor": "_envelope",
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
    # sparse-training methods of SparseMLPClassifier / SparseMLPRegressor
    "SparseTrainingMethod": "layers._dst",
    "Dense": "layers._dst",
    "StaticMask": "layers._dst",
    "SET": "layers._dst",
    "RigL": "layers._dst",
    "SparseIFT": "layers._dst",
    "STE": "layers._nm",
    "SRSTE": "layers._nm",
    "PGF": "layers._nm",
    "CAST": "layers._nm",
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
