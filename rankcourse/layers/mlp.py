"""The multi-layer perceptron used as the "deep" part of every model."""

from __future__ import annotations

from typing import Callable, Sequence

from torch import Tensor, nn
from ..checks import check_positive_int

__all__ = ["MLP", "make_activation"]

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "prelu": nn.PReLU,
    "identity": nn.Identity,
    "linear": nn.Identity,
}


def make_activation(activation: str | Callable[[], nn.Module] | None) -> nn.Module:
    """A fresh activation module from a name (``"relu"``, ``"gelu"``, ``"tanh"``, ``"identity"``, ...),
    a module class/factory, or ``None`` (identity)."""
    if activation is None:
        return nn.Identity()
    if isinstance(activation, str):
        try:
            return _ACTIVATIONS[activation.lower()]()
        except KeyError:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(_ACTIVATIONS)}") from None
    if callable(activation):
        module = activation()
        if not isinstance(module, nn.Module):
            raise TypeError(f"activation factory must return an nn.Module, got {type(module).__name__}")
        return module
    raise TypeError(f"activation must be a name or a module factory, got {type(activation).__name__}")


class _Block(nn.Module):
    """Linear -> [BatchNorm | LayerNorm] -> activation -> dropout, with an optional skip connection."""

    def __init__(
        self, in_dim: int, out_dim: int, dropout: float, batch_norm: bool, layer_norm: bool,
        activation: str | Callable[[], nn.Module] | None, residual: bool,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(in_dim, out_dim)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(out_dim))
        if layer_norm:
            layers.append(nn.LayerNorm(out_dim))
        layers.append(make_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)
        self.residual = residual
        # When the width changes, the skip path needs a projection (as in ResNet).
        self.skip = (nn.Linear(in_dim, out_dim, bias=False) if in_dim != out_dim else nn.Identity()) if residual else None

    def forward(self, x: Tensor) -> Tensor:
        y = self.body(x)
        return y + self.skip(x) if self.skip is not None else y


class MLP(nn.Module):
    """A stack of fully connected layers.

    Each hidden layer is ``Linear -> [BatchNorm1d] -> [LayerNorm] -> activation -> [Dropout]``; with
    ``residual=True`` each hidden layer adds its input (projected by a bias-free linear map when the
    width changes). ``out_dim`` appends a final plain ``Linear`` (no activation), e.g. ``out_dim=1``
    for a logit.

    BatchNorm is off by default: with it a training batch of one row fails, and CTR models do
    not need it (torch-rechub's MLP always has it).

    Args:
        in_dim: input width.
        hidden: widths of the hidden layers; may be empty.
        dropout: dropout probability after each hidden activation, in ``[0, 1)``.
        batch_norm, layer_norm: add the normalisation after each hidden linear layer.
        activation: a name (see :func:`make_activation`) or module factory.
        residual: skip connections around the hidden layers.
        out_dim: width of an optional final linear layer.

    Shapes:
        ``(..., in_dim) -> (..., out_dim)``; ``out_dim`` (attribute) is the output width:
        ``out_dim`` if given, else the last hidden width, else ``in_dim``.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        dropout: float = 0.0,
        batch_norm: bool = False,
        activation: str | Callable[[], nn.Module] | None = "relu",
        residual: bool = False,
        layer_norm: bool = False,
        out_dim: int | None = None,
    ) -> None:
        super().__init__()
        hidden = tuple(hidden)
        in_dim = check_positive_int(in_dim, "MLP in_dim")
        hidden = tuple(check_positive_int(h, f"MLP hidden[{i}]") for i, h in enumerate(hidden))
        out_dim = check_positive_int(out_dim, "MLP out_dim", allow_none=True)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_dim = in_dim
        self.hidden = hidden
        blocks: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            blocks.append(_Block(width, h, dropout, batch_norm, layer_norm, activation, residual))
            width = h
        if out_dim is not None:
            blocks.append(nn.Linear(width, out_dim))
            width = out_dim
        self.layers = nn.Sequential(*blocks)
        self.out_dim = width

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
