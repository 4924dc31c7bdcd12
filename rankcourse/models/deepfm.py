"""DeepFM (Guo et al. 2017, "DeepFM: A Factorization-Machine based Neural Network for CTR Prediction")."""

from __future__ import annotations

from typing import Sequence

from torch import Tensor

from ..layers import MLP, FieldEmbedding, FMInteraction, WideLinear
from ..schema import FeatureSchema
from .base import CTRModel, deep_input

__all__ = ["DeepFM"]


class DeepFM(CTRModel):
    """DeepFM: ``z = first-order + FM(v) + DNN(concat(v, dense))`` (Guo et al. 2017, eq. 1).

    The FM part and the DNN read the *same* field embeddings ``v`` (the paper's point: no feature
    engineering, and the embedding learns from both parts), so an embedding's gradient is the sum of
    the FM part's and the DNN's. ``separate_embeddings=True`` gives the DNN its own table instead
    (an ablation). Unlike torch-rechub's DeepFM example, the DNN sees the categorical embeddings,
    not only the dense features.

    * first order: :class:`~rankcourse.layers.WideLinear` -- one scalar weight per id, plus dense weights and bias;
    * FM: :class:`~rankcourse.layers.FMInteraction` on ``embedding(sparse)``;
    * DNN: :class:`~rankcourse.layers.MLP` on ``concat(flattened embeddings, dense)`` ending in one unit.

    Args:
        schema: the fields.
        embed_dim: embedding size.
        hidden: hidden widths of the DNN.
        separate_embeddings: give the DNN its own embedding table (``dnn_embedding``).
        dropout: dropout in the DNN.
        batch_norm: batch normalisation after each hidden layer of the DNN (off by default).

    Shapes:
        ``dense (B, n_dense)``, ``sparse (B, n_fields)`` -> logits ``(B,)``.
    """

    def __init__(
        self,
        schema: FeatureSchema,
        embed_dim: int = 16,
        hidden: Sequence[int] = (256, 128),
        separate_embeddings: bool = False,
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__(schema)
        self.separate_embeddings = separate_embeddings
        self.linear = WideLinear(schema)
        self.embedding = FieldEmbedding(schema, embed_dim)
        self.dnn_embedding = FieldEmbedding(schema, embed_dim) if separate_embeddings else None
        self.fm = FMInteraction()
        self.dnn = MLP(self.deep_input_dim(schema, embed_dim), hidden, dropout=dropout, batch_norm=batch_norm, out_dim=1)

    def parts(self, dense: Tensor, sparse: Tensor) -> dict[str, Tensor]:
        """The three logit parts ``{"first_order", "fm", "deep"}``, each ``(B,)``; ``forward`` is their sum."""
        self.check_input(dense, sparse)
        v = self.embedding(sparse)  # one lookup shared by FM and DNN
        v_dnn = self.dnn_embedding(sparse) if self.dnn_embedding is not None else v
        return {
            "first_order": self.linear(dense, sparse),
            "fm": self.fm(v),
            "deep": self.dnn(deep_input(v_dnn, dense)).squeeze(-1),
        }

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        p = self.parts(dense, sparse)
        return p["first_order"] + p["fm"] + p["deep"]
