"""Plain multilayer perceptron pieces shared by the torch estimators (public via ``layers``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MLP", "get_activation"]

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


def get_activation(name: str) -> nn.Module:
    """Return a fresh activation module by name.

    Parameters
    ----------
    name : {'relu', 'tanh', 'gelu', 'sigmoid', 'identity'}
        The activation.

    Returns
    -------
    module : torch.nn.Module
        The activation layer.

    Examples
    --------
    >>> from sparsestat.neural.layers import get_activation
    >>> get_activation("relu")
    ReLU()
    """
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"activation must be one of {sorted(_ACTIVATIONS)}; got {name!r}"
        ) from None


class MLP(nn.Module):
    """A plain fully connected network ``Linear -> activation (-> dropout)`` repeated.

    Parameters
    ----------
    n_in : int
        Number of input features.
    hidden_layer_sizes : sequence of int
        Widths of the hidden layers (may be empty: a linear model).
    n_out : int
        Number of outputs (logits or regression targets).
    activation : str, default='relu'
        Hidden activation (see :func:`get_activation`).
    dropout : float, default=0.0
        Dropout probability after each hidden activation.

    Attributes
    ----------
    linears : torch.nn.ModuleList
        The linear layers, input to output.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import MLP
    >>> MLP(4, (8,), 3)(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        n_in: int,
        hidden_layer_sizes: Sequence[int],
        n_out: int,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        sizes = [int(n_in), *[int(h) for h in hidden_layer_sizes], int(n_out)]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.act = get_activation(activation)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the network.

        Parameters
        ----------
        x : torch.Tensor of shape (n, n_in)
            Input batch.

        Returns
        -------
        out : torch.Tensor of shape (n, n_out)
            Outputs.
        """
        for i, lin in enumerate(self.linears):
            x = lin(x)
            if i < len(self.linears) - 1:
                x = self.drop(self.act(x))
        return x
