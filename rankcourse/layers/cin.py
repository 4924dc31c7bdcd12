"""Compressed Interaction Network, the explicit vector-wise crossing part of xDeepFM (Lian et al. 2018)."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from ..checks import check_positive_int
from .mlp import make_activation

__all__ = ["CIN"]


class CIN(nn.Module):
    """Compressed Interaction Network (Lian et al. 2018, "xDeepFM", eq. 6-7).

    Feature map ``h`` of layer ``k`` is
    ``X^k_h = sigma( sum_i sum_j W^{k,h}_{ij} (X^{k-1}_i ⊙ X^0_j) [+ b^{k,h}] )``, a weighted sum of
    the element-wise products of the previous layer's maps with the field embeddings: interactions
    happen at the vector level (whole embeddings), and layer ``k`` holds degree ``k+1`` terms.
    Each output map is sum-pooled over the embedding dimension and the pooled maps of all layers
    are concatenated.

    With ``split_half`` (as in the authors' code) every layer but the last sends half of its maps to
    the output and the other half to the next layer, so those layer sizes must be even.

    Args:
        n_fields: ``m``, the number of fields in ``X^0``.
        dim: embedding size ``D``.
        layer_sizes: feature maps per layer ``H_k``.
        split_half: see above.
        activation: ``sigma``; the paper's eq. 6 has none (``"identity"``, the default).
        bias: add a bias per feature map.

    Shapes:
        ``x0``: ``(batch, n_fields, dim)`` -> ``(batch, out_dim)``.

    Attributes:
        weights: ``nn.ParameterList``, layer ``k``'s is ``(H_k, H_{k-1}' * n_fields)`` where ``H_{k-1}'``
            is the number of maps passed on by the previous layer (``n_fields`` for ``k = 0``); column
            ``i * n_fields + j`` multiplies ``X^{k-1}_i ⊙ X^0_j``.
        out_dim: width of the output.
    """

    def __init__(
        self,
        n_fields: int,
        dim: int,
        layer_sizes: Sequence[int] = (128, 128),
        split_half: bool = True,
        activation: str | None = "identity",
        bias: bool = False,
    ) -> None:
        super().__init__()
        layer_sizes = tuple(layer_sizes)
        if not isinstance(n_fields, int) or n_fields < 1:
            raise ValueError(f"CIN needs at least one field, got n_fields={n_fields!r}")
        if not layer_sizes:
            raise ValueError("CIN needs at least one layer (layer_sizes is empty)")
        for k, h in enumerate(layer_sizes):
            check_positive_int(h, f"CIN layer_sizes[{k}]")
            if split_half and k < len(layer_sizes) - 1 and h % 2:
                raise ValueError(
                    f"with split_half=True every CIN layer but the last needs an even size; layer {k} has {h}"
                )
        self.n_fields, self.dim, self.layer_sizes, self.split_half = n_fields, dim, layer_sizes, split_half
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList() if bias else None
        self.activation = make_activation(activation)
        prev, out_dim = n_fields, 0
        for k, h in enumerate(layer_sizes):
            fan_in = prev * n_fields
            w = nn.Parameter(torch.empty(h, fan_in))
            nn.init.uniform_(w, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
            self.weights.append(w)
            if self.biases is not None:
                self.biases.append(nn.Parameter(torch.zeros(h, 1)))
            last = k == len(layer_sizes) - 1
            if split_half and not last:
                prev, out_dim = h // 2, out_dim + h // 2
            else:
                prev, out_dim = h, out_dim + h
        self.out_dim = out_dim

    def forward(self, x0: Tensor) -> Tensor:
        if x0.dim() != 3 or x0.shape[1:] != (self.n_fields, self.dim):
            raise ValueError(f"CIN expects (batch, {self.n_fields}, {self.dim}), got {tuple(x0.shape)}")
        batch = x0.shape[0]
        pooled: list[Tensor] = []
        x = x0
        for k, w in enumerate(self.weights):
            # All pairwise products X^{k-1}_i ⊙ X^0_j: (B, H_{k-1}' * m, D), then compress with W.
            z = (x.unsqueeze(2) * x0.unsqueeze(1)).reshape(batch, -1, self.dim)
            h = torch.matmul(w, z)                                      # (B, H_k, D)
            if self.biases is not None:
                h = h + self.biases[k]
            h = self.activation(h)
            if self.split_half and k < len(self.weights) - 1:
                x, out = h.chunk(2, dim=1)  # first half goes on, second half to the output
            else:
                x, out = h, h
            pooled.append(out.sum(dim=2))
        return torch.cat(pooled, dim=1)
