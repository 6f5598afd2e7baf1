"""Plain PyTorch pieces (layers, masks, gates, schedulers) for your own models.

This module only re-exports; the pieces live in files split by concept: masks and
schedules (``_masks``), masked layers (``_masked``), sparse-training methods and dynamic
sparse training (``_dst``, ``_nm``), optimizers (``_optim``), gates (``_comet``),
group-envelope regularisation (``_envelope``), Bayesian layers (``_ssvi``), MLPs (``_mlp``)
and the sparse-autoencoder pieces and activations (``sae_*``; ``TopK`` also serves as a
top-k activation in ordinary networks).

Examples
--------
>>> import torch
>>> from sparsestat.neural.layers import MLP
>>> MLP(3, (4,), 2)(torch.ones(1, 3)).shape
torch.Size([1, 2])
"""

from sparsestat.neural import import_torch

import_torch()

from sparsestat.neural.layers._comet import (  # noqa: E402
    COMETGate,
    DSelectKGate,
    HashGate,
    MixtureOfExperts,
    PermutationLocalSearch,
    SoftmaxGate,
    TopKGate,
    log_sinkhorn,
    smooth_step,
)
from sparsestat.neural.layers._envelope import PrunedMLP, prune_mlp  # noqa: E402
from sparsestat.neural.layers._masked import (  # noqa: E402
    MaskedEmbedding,
    MaskedLinear,
    NMSparseLinear,
    apply_nm_mask_,
    export_semi_structured,
    srste_weight,
)
from sparsestat.neural.layers._masks import (  # noqa: E402
    PGFSchedule,
    cosine_drop_fraction,
    erk_densities,
    is_nm_sparse,
    nm_mask,
    random_mask,
    sdgf_patterns,
    sparse_ift_widths,
    topk_mask,
    uniform_densities,
)
from sparsestat.neural.layers._mlp import MLP, get_activation  # noqa: E402
from sparsestat.neural.layers._optim import AdamS  # noqa: E402
from sparsestat.neural.layers._ssvi import (  # noqa: E402
    SSVI_CRITERIA,
    SparseBayesConv2d,
    SparseBayesLinear,
    SSVIScheduler,
    folded_normal_moments,
    ssvi_removal_score,
)
from sparsestat.neural.layers.sae_activation_base import SAEActivation  # noqa: E402
from sparsestat.neural.layers.sae_activations import *  # noqa: E402, F403
from sparsestat.neural.layers.sae_activations import __all__ as _sae_act_all  # noqa: E402
from sparsestat.neural.layers.sae_choice import FeatureChoice, MutualChoice  # noqa: E402
from sparsestat.neural.layers.sae_gsae import GSAE  # noqa: E402
from sparsestat.neural.layers.sae_losses import *  # noqa: E402, F403
from sparsestat.neural.layers.sae_losses import __all__ as _sae_loss_all  # noqa: E402
from sparsestat.neural.layers.sae_module import SparseAutoencoderModule  # noqa: E402
from sparsestat.neural.layers.sae_selection import *  # noqa: E402, F403
from sparsestat.neural.layers.sae_selection import __all__ as _sae_sel_all  # noqa: E402
from sparsestat.neural.layers.sae_sparse_path import *  # noqa: E402, F403
from sparsestat.neural.layers.sae_sparse_path import __all__ as _sae_path_all  # noqa: E402
from sparsestat.neural.layers.sae_topk import *  # noqa: E402, F403
from sparsestat.neural.layers.sae_topk import __all__ as _sae_topk_all  # noqa: E402

__all__ = [
    "COMETGate",
    "DSelectKGate",
    "HashGate",
    "MixtureOfExperts",
    "PermutationLocalSearch",
    "SoftmaxGate",
    "TopKGate",
    "log_sinkhorn",
    "smooth_step",
    "MLP",
    "PrunedMLP",
    "prune_mlp",
    "SSVI_CRITERIA",
    "SSVIScheduler",
    "SparseBayesConv2d",
    "SparseBayesLinear",
    "folded_normal_moments",
    "get_activation",
    "FeatureChoice",
    "GSAE",
    "MutualChoice",
    "SAEActivation",
    "SparseAutoencoderModule",
    *_sae_act_all,
    *_sae_loss_all,
    *_sae_sel_all,
    *_sae_path_all,
    *_sae_topk_all,
    "ssvi_removal_score",
    # sparse training: masks, masked layers, optimizers
    "AdamS",
    "MaskedEmbedding",
    "MaskedLinear",
    "NMSparseLinear",
    "PGFSchedule",
    "apply_nm_mask_",
    "cosine_drop_fraction",
    "erk_densities",
    "export_semi_structured",
    "is_nm_sparse",
    "nm_mask",
    "random_mask",
    "sdgf_patterns",
    "sparse_ift_widths",
    "srste_weight",
    "topk_mask",
    "uniform_densities",
]


#: names that moved to :mod:`sparsestat.neural` (the variant objects of the estimators):
#: old name -> (defining module, name in sparsestat.neural)
_MOVED = {
    "GroupEnvelopeRegularizer": ("layers._envelope", "GroupEnvelopeRegularizer"),
    "SparseTrainingMethod": ("layers._dst", "SparseTrainingMethod"),
    "Dense": ("layers._dst", "Dense"),
    "StaticMask": ("layers._dst", "StaticMask"),
    "SparsityUpdater": ("layers._dst", "StaticMask"),
    "SET": ("layers._dst", "SET"),
    "RigL": ("layers._dst", "RigL"),
    "SparseIFT": ("layers._dst", "SparseIFT"),
    "STE": ("layers._nm", "STE"),
    "SRSTE": ("layers._nm", "SRSTE"),
    "PGF": ("layers._nm", "PGF"),
    "CAST": ("layers._nm", "CAST"),
}


def __getattr__(name: str) -> object:
    if name in _MOVED:
        import importlib
        import warnings

        module, new = _MOVED[name]
        warnings.warn(
            f"sparsestat.neural.layers.{name} moved to sparsestat.neural.{new}; the old "
            "location will be removed in sparsestat 0.3.",
            FutureWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(f"sparsestat.neural.{module}"), new)
    raise AttributeError(f"module 'sparsestat.neural.layers' has no attribute {name!r}")
