"""Deep & Cross networks: DCN (Wang et al. 2017) and DCN-V2 (Wang et al. 2021)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..layers import MLP, CrossNet, CrossNetMix, CrossNetV2, FieldEmbedding
from ..schema import FeatureSchema
from .base import CTRModel, deep_input

__all__ = ["DCN", "DCNv2"]


class DCN(CTRModel):
    """Deep & Cross Network (Wang et al. 2017, "Deep & Cross Network for Ad Click Predictions").

    ``x_0 = concat(flattened field embeddings, dense)``; a cross network
    (:class:`~rankcourse.layers.CrossNet`, ``n_cross`` layers) and an MLP run in parallel on ``x_0``;
    their outputs are concatenated and a linear layer gives the logit (the paper's combination layer).

    Args:
        schema: the fields.
        embed_dim: embedding size.
        n_cross: cross layers (0: no cross network).
        hidden: MLP widths (empty: no deep network).
        dropout: dropout in the MLP.
        batch_norm: batch normalisation after each hidden layer of the MLP (off by default).

    Shapes:
        ``dense (B, n_dense)``, ``sparse (B, n_fields)`` -> logits ``(B,)``.
    """

    def __init__(
        self,
        schema: FeatureSchema,
        embed_dim: int = 16,
        n_cross: int = 3,
        hidden: Sequence[int] = (256, 128),
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__(schema)
        d = self.deep_input_dim(schema, embed_dim)
        if n_cross < 0:
            raise ValueError(f"n_cross must be >= 0, got {n_cross}")
        if n_cross == 0 and not tuple(hidden):
            raise ValueError("DCN needs a cross network (n_cross > 0) or a deep network (hidden), got neither")
        self.embedding = FieldEmbedding(schema, embed_dim)
        self.cross = CrossNet(d, n_cross) if n_cross > 0 else None
        self.deep = MLP(d, hidden, dropout=dropout, batch_norm=batch_norm) if tuple(hidden) else None
        width = (d if self.cross is not None else 0) + (self.deep.out_dim if self.deep is not None else 0)
        self.head = nn.Linear(width, 1)

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        self.check_input(dense, sparse)
        x0 = deep_input(self.embedding(sparse), dense)
        outs = []
        if self.cross is not None:
            outs.append(self.cross(x0))
        if self.deep is not None:
            outs.append(self.deep(x0))
        h = outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)
        return self.head(h).squeeze(-1)


class DCNv2(CTRModel):
    """DCN-V2 (Wang et al. 2021, "DCN V2: Improved Deep & Cross Network and Practical Lessons for
    Web-scale Learning to Rank Systems").

    ``x_0 = concat(flattened field embeddings, dense)`` of width ``d = n_fields * embed_dim + n_dense``.

    * ``structure="stacked"``: ``logit = head(MLP(cross(x_0)))`` (paper fig. 1b); with no hidden
      layers, ``head(cross(x_0))``.
    * ``structure="parallel"``: ``logit = head(concat(cross(x_0), MLP(x_0)))`` (fig. 1a).
    * ``low_rank=None``: full-rank :class:`~rankcourse.layers.CrossNetV2` (the paper's main model;
      torch-rechub defaults to the mixture instead); ``low_rank=r``:
      :class:`~rankcourse.layers.CrossNetMix` with ``n_experts`` experts of rank ``r``.

    Parameter count (``h`` = last hidden width, ``E`` = n_experts, ``r`` = low_rank, ``L`` = n_cross):

    * embeddings: ``total_vocab * embed_dim``;
    * cross, full rank: ``L * (d^2 + d)``; low rank: ``L * (E * (2 d r + r^2) + d + E * (d + 1))``;
    * MLP: ``sum (fan_in + 1) * fan_out`` over its layers (input ``d``);
    * head: ``h + 1`` (stacked; ``d + 1`` without hidden layers) or ``d + h + 1`` (parallel).

    Args:
        schema: the fields.
        embed_dim: embedding size.
        n_cross: cross layers (>= 1).
        hidden: MLP widths (may be empty).
        structure: ``"stacked"`` or ``"parallel"``.
        low_rank: ``None`` (full rank) or the rank of the mixture's experts.
        n_experts: experts per cross layer when ``low_rank`` is set.
        dropout: dropout in the MLP.
        batch_norm: batch normalisation after each hidden layer of the MLP (off by default).

    Shapes:
        ``dense (B, n_dense)``, ``sparse (B, n_fields)`` -> logits ``(B,)``.
    """

    def __init__(
        self,
        schema: FeatureSchema,
        embed_dim: int = 16,
        n_cross: int = 3,
        hidden: Sequence[int] = (256, 128),
        structure: str = "stacked",
        low_rank: int | None = None,
        n_experts: int = 4,
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__(schema)
        if structure not in ("stacked", "parallel"):
            raise ValueError(f"structure must be 'stacked' or 'parallel', got {structure!r}")
        d = self.deep_input_dim(schema, embed_dim)
        self.structure = structure
        self.embedding = FieldEmbedding(schema, embed_dim)
        if low_rank is None:
            self.cross: nn.Module = CrossNetV2(d, n_cross)
        else:
            self.cross = CrossNetMix(d, n_cross, rank=low_rank, n_experts=n_experts)
        hidden = tuple(hidden)
        self.deep = MLP(d, hidden, dropout=dropout, batch_norm=batch_norm) if hidden else None
        h = self.deep.out_dim if self.deep is not None else 0
        self.head = nn.Linear((h or d) if structure == "stacked" else d + h, 1)

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        self.check_input(dense, sparse)
        x0 = deep_input(self.embedding(sparse), dense)
        if self.structure == "stacked":
            h = self.cross(x0)
            if self.deep is not None:
                h = self.deep(h)
        else:
            h = self.cross(x0)
            if self.deep is not None:
                h = torch.cat([h, self.deep(x0)], dim=1)
        return self.head(h).squeeze(-1)
