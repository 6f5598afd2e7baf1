"""Plain PyTorch pieces (layers, masks, gates, schedulers) for your own models.

This module only re-exports: each family keeps its layers in its own files
(``layers/_<family>.py``, or ``layers/sae_*.py`` for the sparse autoencoders) and adds its
import lines here.

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
from sparsestat.neural.layers._envelope import (  # noqa: E402
    GroupEnvelopeRegularizer,
    PrunedMLP,
    prune_mlp,
)
from sparsestat.neural.layers._mlp import MLP, get_activation  # noqa: E402
from sparsestat.neural.layers._sparse import *  # noqa: E402, F403
from sparsestat.neural.layers._sparse import __all__ as _sparse_all  # noqa: E402
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
    "GroupEnvelopeRegularizer",
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
    *_sparse_all,
]
