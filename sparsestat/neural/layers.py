"""Plain PyTorch pieces (layers, masks, activations) usable in your own models."""

from sparsestat.neural._layers_sae import *  # noqa: F403
from sparsestat.neural._layers_sae import __all__ as _sae_all

__all__ = [*_sae_all]
