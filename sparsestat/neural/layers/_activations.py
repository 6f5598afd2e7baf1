"""Activations: the top-k activation of lazy-neuron sparsity.

Re-exported by :mod:`sparsestat.neural.layers`.
"""

from __future__ import annotations

from sparsestat.neural import import_torch
from sparsestat.neural.layers._masks import stable_rank_desc

torch = import_torch()
nn = torch.nn

__all__ = ["TopKActivation"]


# --------------------------------------------------------------------------- activations
class TopKActivation(nn.Module):
    """ReLU followed by keeping only the ``k`` largest activations of every row.

    Parameters
    ----------
    k : int or float
        Number kept per row; a float in (0, 1) is a fraction of the width (at least 1).

    Notes
    -----
    With ``k`` at least the width this is exactly ReLU. Ties keep the earlier unit.

    References
    ----------
    Li et al., "The Lazy Neuron Phenomenon: On Emergence of Activation Sparsity in
    Transformers", ICLR 2023.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import TopKActivation
    >>> TopKActivation(2)(torch.tensor([[3.0, -1.0, 2.0, 5.0]]))
    tensor([[3., 0., 0., 5.]])
    """

    def __init__(self, k: int | float) -> None:
        super().__init__()
        if isinstance(k, float) and not 0.0 < k <= 1.0:
            raise ValueError(f"A fractional k must be in (0, 1]; got {k}.")
        if isinstance(k, int) and k < 1:
            raise ValueError(f"k must be >= 1; got {k}.")
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Keep the ``k`` largest ReLU activations of every row.

        Parameters
        ----------
        x : torch.Tensor of shape (..., width)
            Pre-activations.

        Returns
        -------
        out : torch.Tensor
            Same shape; at most ``k`` nonzeros per row.
        """
        width = x.shape[-1]
        k = self.k if isinstance(self.k, int) else max(1, int(round(self.k * width)))
        x = torch.relu(x)
        if k >= width:
            return x
        keep = stable_rank_desc(x.detach()) < k
        return x * keep

    def extra_repr(self) -> str:
        """Layer summary for ``repr``.

        Returns
        -------
        text : str
            The value of ``k``.
        """
        return f"k={self.k}"
