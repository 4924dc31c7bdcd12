"""Wide & Deep (Cheng et al. 2016, "Wide & Deep Learning for Recommender Systems")."""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from ..layers import MLP, FieldEmbedding, WideLinear
from ..schema import FeatureSchema
from .base import CTRModel, deep_input

__all__ = ["WideDeep", "DeepTower"]


class DeepTower(nn.Module):
    """Embeddings + MLP -> one logit: the deep part of Wide & Deep.

    Input: ``concat(flattened field embeddings, dense)`` (see :func:`~rankcourse.models.base.deep_input`).

    Shapes:
        ``dense (B, n_dense)``, ``sparse (B, n_fields)`` -> ``(B,)``.
    """

    def __init__(self, schema: FeatureSchema, embed_dim: int, hidden: Sequence[int], dropout: float = 0.0,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.embedding = FieldEmbedding(schema, embed_dim)
        self.mlp = MLP(CTRModel.deep_input_dim(schema, embed_dim), hidden, dropout=dropout,
                       batch_norm=batch_norm, out_dim=1)

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        return self.mlp(deep_input(self.embedding(sparse), dense)).squeeze(-1)


class WideDeep(CTRModel):
    """Wide & Deep: ``z = wide(x) + deep(x)``, trained jointly (Cheng et al. 2016, eq. 3).

    * ``.wide`` -- a true linear model (:class:`~rankcourse.layers.WideLinear`) over one-hot ids,
      hashed cross-product features of ``cross_pairs``, and the dense values: it can memorise a
      specific co-occurrence such as ``(city=Shanghai, taste=latte)``.
    * ``.deep`` -- :class:`DeepTower`: its own embeddings + an MLP on
      ``concat(flattened embeddings, dense)``.

    The two are separate submodules so each can get its own optimiser (the paper used FTRL with L1
    for the wide part and AdaGrad for the deep part).

    Args:
        schema: the fields.
        embed_dim: embedding size of the deep part.
        hidden: hidden widths of the deep MLP.
        cross_pairs: categorical field pairs crossed in the wide part.
        n_buckets: the most hash buckets per cross pair.
        dropout: dropout in the deep MLP.
        batch_norm: batch normalisation after each hidden layer of the deep MLP (off by default).

    Shapes:
        ``dense (B, n_dense)``, ``sparse (B, n_fields)`` -> logits ``(B,)``.
    """

    def __init__(
        self,
        schema: FeatureSchema,
        embed_dim: int = 16,
        hidden: Sequence[int] = (256, 128),
        cross_pairs: Sequence[tuple[str, str]] = (),
        n_buckets: int = 2**16,
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__(schema)
        self.wide = WideLinear(schema, cross_pairs=cross_pairs, n_buckets=n_buckets)
        self.deep = DeepTower(schema, embed_dim, hidden, dropout, batch_norm)

    def wide_logit(self, dense: Tensor, sparse: Tensor) -> Tensor:
        """The wide part's contribution ``(B,)`` (includes the model's bias)."""
        self.check_input(dense, sparse)
        return self.wide(dense, sparse)

    def deep_logit(self, dense: Tensor, sparse: Tensor) -> Tensor:
        """The deep part's contribution ``(B,)``."""
        self.check_input(dense, sparse)
        return self.deep(dense, sparse)

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        self.check_input(dense, sparse)
        return self.wide(dense, sparse) + self.deep(dense, sparse)
