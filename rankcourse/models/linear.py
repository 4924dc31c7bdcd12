"""Shallow baselines: logistic regression and the factorization machine."""

from __future__ import annotations

from torch import Tensor

from ..layers import FieldEmbedding, FMInteraction, WideLinear
from ..schema import FeatureSchema
from .base import CTRModel

__all__ = ["LogisticRegression", "FactorizationMachine"]


class LogisticRegression(CTRModel):
    """Logistic regression on one-hot ids and dense values: ``z = b + sum_f w[id_f] + dense · w_d``.

    Args:
        schema: the fields.

    Shapes:
        ``dense (B, n_dense)``, ``sparse (B, n_fields)`` -> logits ``(B,)``.

    Attributes:
        linear: the :class:`~rankcourse.layers.WideLinear` (without crosses) holding the weights.
    """

    def __init__(self, schema: FeatureSchema) -> None:
        super().__init__(schema)
        self.linear = WideLinear(schema)

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        self.check_input(dense, sparse)
        return self.linear(dense, sparse)


class FactorizationMachine(CTRModel):
    """Factorization machine (Rendle 2010): logistic regression plus ``sum_{i<j} <v_i, v_j>``.

    The pairwise term runs over the categorical fields' embeddings (dense fields enter linearly only),
    as in the FM component of DeepFM (Guo et al. 2017).

    Args:
        schema: the fields.
        embed_dim: size of the factor vectors ``v``.

    Shapes:
        ``dense (B, n_dense)``, ``sparse (B, n_fields)`` -> logits ``(B,)``.
    """

    def __init__(self, schema: FeatureSchema, embed_dim: int = 16) -> None:
        super().__init__(schema)
        self.linear = WideLinear(schema)
        self.embedding = FieldEmbedding(schema, embed_dim)
        self.fm = FMInteraction()

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        self.check_input(dense, sparse)
        return self.linear(dense, sparse) + self.fm(self.embedding(sparse))
