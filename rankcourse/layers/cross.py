"""Cross networks: explicit, bounded-degree feature crossing.

* :class:`CrossNet` -- DCN (Wang et al. 2017, "Deep & Cross Network for Ad Click Predictions", eq. 3):
  ``x_{l+1} = x_0 (w_l^T x_l) + b_l + x_l``.
* :class:`CrossNetV2` -- DCN-V2 full rank (Wang et al. 2021, "DCN V2: Improved Deep & Cross Network",
  eq. 1): ``x_{l+1} = x_0 ⊙ (W_l x_l + b_l) + x_l``. The bias sits *inside* the Hadamard product,
  as in the paper (torch-rechub adds it outside).
* :class:`CrossNetMix` -- DCN-V2's low-rank mixture of experts (same paper, eq. 3-4).

With zero biases, ``L`` layers of :class:`CrossNet` or :class:`CrossNetV2` give a polynomial of degree
``L + 1`` in ``x_0``: each layer multiplies by ``x_0`` once more.

All map ``(batch, dim) -> (batch, dim)``; a batch of one stays ``(1, dim)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..checks import check_positive_int
from .mlp import make_activation

__all__ = ["CrossNet", "CrossNetV2", "CrossNetMix"]


def _check_input(x: Tensor, dim: int, name: str) -> None:
    if x.dim() != 2 or x.shape[1] != dim:
        raise ValueError(f"{name} expects input of shape (batch, {dim}), got {tuple(x.shape)}")


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        check_positive_int(value, name)


class CrossNet(nn.Module):
    """DCN cross network (Wang et al. 2017): ``x_{l+1} = x_0 (w_l^T x_l) + b_l + x_l``.

    Each layer has ``2 * dim`` parameters: the weight vector ``w_l`` and the bias ``b_l``.

    Args:
        dim: width ``d`` of ``x_0``.
        n_layers: number of cross layers ``L``.

    Shapes:
        ``x0``: ``(batch, dim)`` -> ``(batch, dim)``.

    Attributes:
        weight: ``(n_layers, dim)``, row ``l`` is ``w_l``; bias: ``(n_layers, dim)``.
    """

    def __init__(self, dim: int, n_layers: int) -> None:
        super().__init__()
        _check_sizes(dim=dim, n_layers=n_layers)
        self.dim = dim
        self.n_layers = n_layers
        self.weight = nn.Parameter(torch.empty(n_layers, dim))
        self.bias = nn.Parameter(torch.zeros(n_layers, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.dim)  # like nn.Linear(dim, 1)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.zeros_(self.bias)

    def forward(self, x0: Tensor) -> Tensor:
        _check_input(x0, self.dim, "CrossNet")
        x = x0
        for w, b in zip(self.weight, self.bias):
            # (x @ w) is one scalar per row: the cost is O(d) per layer, not O(d^2).
            x = x0 * (x @ w).unsqueeze(1) + b + x
        return x


class CrossNetV2(nn.Module):
    """DCN-V2 full-rank cross network (Wang et al. 2021, eq. 1): ``x_{l+1} = x_0 ⊙ (W_l x_l + b_l) + x_l``.

    Each layer has ``dim^2 + dim`` parameters.

    Args:
        dim: width ``d`` of ``x_0``.
        n_layers: number of cross layers ``L``.

    Shapes:
        ``x0``: ``(batch, dim)`` -> ``(batch, dim)``.

    Attributes:
        layers: ``nn.ModuleList`` of ``nn.Linear(dim, dim)``; layer ``l`` computes ``W_l x + b_l``.
    """

    def __init__(self, dim: int, n_layers: int) -> None:
        super().__init__()
        _check_sizes(dim=dim, n_layers=n_layers)
        self.dim = dim
        self.n_layers = n_layers
        self.layers = nn.ModuleList(nn.Linear(dim, dim) for _ in range(n_layers))
        for layer in self.layers:
            nn.init.zeros_(layer.bias)

    def forward(self, x0: Tensor) -> Tensor:
        _check_input(x0, self.dim, "CrossNetV2")
        x = x0
        for layer in self.layers:
            x = x0 * layer(x) + x  # bias inside the Hadamard product, as in the paper
        return x


class CrossNetMix(nn.Module):
    """DCN-V2 low-rank mixture of cross experts (Wang et al. 2021, eq. 3-4).

    ``x_{l+1} = sum_i G_i(x_l) E_i(x_l) + x_l`` with experts
    ``E_i(x_l) = x_0 ⊙ (U_i^l g(C_i^l g(V_i^{lT} x_l)) + b_l)`` (``U, V: d x r``, ``C: r x r``,
    ``g`` a nonlinearity) and softmax gates ``G(x_l) = softmax(W_g^l x_l + c^l)`` over the experts.
    All experts of a layer are computed at once with batched products.

    Parameters per layer: ``n_experts * (2 * dim * rank + rank^2)`` for ``U, V, C``, ``dim`` for
    ``b_l``, ``n_experts * (dim + 1)`` for the gate.

    Args:
        dim: width ``d`` of ``x_0``.
        n_layers: number of cross layers.
        rank: the low rank ``r``.
        n_experts: experts per layer.
        activation: ``g`` (``"tanh"`` by default; ``"identity"`` makes each expert the low-rank
            version of :class:`CrossNetV2`'s layer).

    Shapes:
        ``x0``: ``(batch, dim)`` -> ``(batch, dim)``; a batch of one stays ``(1, dim)``.

    Attributes:
        U, V: ``(n_layers, n_experts, dim, rank)``; C: ``(n_layers, n_experts, rank, rank)``;
        bias: ``(n_layers, dim)``; gate_weight: ``(n_layers, dim, n_experts)``; gate_bias: ``(n_layers, n_experts)``.
    """

    def __init__(self, dim: int, n_layers: int, rank: int, n_experts: int = 4, activation: str = "tanh") -> None:
        super().__init__()
        _check_sizes(dim=dim, n_layers=n_layers, rank=rank, n_experts=n_experts)
        self.dim, self.n_layers, self.rank, self.n_experts = dim, n_layers, rank, n_experts
        self.U = nn.Parameter(torch.empty(n_layers, n_experts, dim, rank))
        self.V = nn.Parameter(torch.empty(n_layers, n_experts, dim, rank))
        self.C = nn.Parameter(torch.empty(n_layers, n_experts, rank, rank))
        self.bias = nn.Parameter(torch.zeros(n_layers, dim))
        self.gate_weight = nn.Parameter(torch.empty(n_layers, dim, n_experts))
        self.gate_bias = nn.Parameter(torch.zeros(n_layers, n_experts))
        self.activation = make_activation(activation)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Fan-in scaled like nn.Linear: V and the gate read d inputs, C and U read r inputs.
        nn.init.uniform_(self.V, -1 / math.sqrt(self.dim), 1 / math.sqrt(self.dim))
        nn.init.uniform_(self.C, -1 / math.sqrt(self.rank), 1 / math.sqrt(self.rank))
        nn.init.uniform_(self.U, -1 / math.sqrt(self.rank), 1 / math.sqrt(self.rank))
        nn.init.uniform_(self.gate_weight, -1 / math.sqrt(self.dim), 1 / math.sqrt(self.dim))
        nn.init.zeros_(self.bias)
        nn.init.zeros_(self.gate_bias)

    def gates(self, x: Tensor, layer: int) -> Tensor:
        """Softmax gate of ``layer`` on input ``x``: ``(batch, dim) -> (batch, n_experts)``, rows sum to 1."""
        return torch.softmax(x @ self.gate_weight[layer] + self.gate_bias[layer], dim=-1)

    def forward(self, x0: Tensor) -> Tensor:
        _check_input(x0, self.dim, "CrossNetMix")
        g = self.activation
        batch, n_exp, r = x0.shape[0], self.n_experts, self.rank
        x = x0
        for l in range(self.n_layers):
            # The gates sum to one, so the mixture of experts is one expert with mixed factors:
            #   sum_e G_e (x0 ⊙ (U_e h_e + b)) = x0 ⊙ (sum_e U_e (G_e h_e) + b),
            # and sum_e U_e (G_e h_e) is one product of (B, E*r) by (E*r, d). With V likewise stacked,
            # the layer costs two large matrix products, not E small ones and a (B, E, d) tensor.
            v_all = self.V[l].permute(1, 0, 2).reshape(self.dim, n_exp * r)     # (d, E*r)
            u_all = self.U[l].transpose(1, 2).reshape(n_exp * r, self.dim)      # (E*r, d)
            h = g((x @ v_all).view(batch, n_exp, r))                             # (B, E, r)
            h = g(torch.einsum("bet,est->bes", h, self.C[l]))                      # (B, E, r): C_e h_e
            weighted = (self.gates(x, l).unsqueeze(-1) * h).reshape(batch, n_exp * r)
            x = x0 * (weighted @ u_all + self.bias[l]) + x
        return x
