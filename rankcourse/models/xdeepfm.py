"""xDeepFM (Lian et al. 2018, "xDeepFM: Combining Explicit and Implicit Feature Interactions")."""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from ..layers import CIN, MLP, FieldEmbedding, WideLinear
from ..schema import FeatureSchema
from .base import CTRModel, deep_input

__all__ = ["XDeepFM"]


class XDeepFM(CTRModel):
    """xDeepFM: ``z = linear(x) + w_cin^T CIN(v) + DNN(concat(v, dense))`` (Lian et al. 2018, eq. 8).

    The CIN (explicit, vector-wise interactions of bounded degree) and the DNN (implicit, bit-wise)
    share the field embeddings ``v``; the linear part is one weight per id plus dense weights.

    Args:
        schema: the fields (needs at least one categorical field for the CIN).
        embed_dim: embedding size.
        cin_layers: feature maps per CIN layer.
        hidden: DNN widths (empty: no DNN).
        split_half: CIN option (see :class:`~rankcourse.layers.CIN`).
        dropout: dropout in the DNN.
        batch_norm: batch normalisation after each hidden layer of the DNN (off by default).

    Shapes:
        ``dense (B, n_dense)``, ``sparse (B, n_fields)`` -> logits ``(B,)``.
    """

    def __init__(
        self,
        schema: FeatureSchema,
        embed_dim: int = 16,
        cin_layers: Sequence[int] = (128, 128),
        hidden: Sequence[int] = (256, 128),
        split_half: bool = True,
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__(schema)
        if schema.n_fields == 0:
            raise ValueError("XDeepFM needs at least one categorical field for its CIN")
        self.linear = WideLinear(schema)
        self.embedding = FieldEmbedding(schema, embed_dim)
        self.cin = CIN(schema.n_fields, embed_dim, cin_layers, split_half=split_half)
        self.cin_head = nn.Linear(self.cin.out_dim, 1, bias=False)  # the linear part holds the bias
        hidden = tuple(hidden)
        self.dnn = MLP(self.deep_input_dim(schema, embed_dim), hidden, dropout=dropout, batch_norm=batch_norm,
                       out_dim=1) if hidden else None

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        self.check_input(dense, sparse)
        v = self.embedding(sparse)
        z = self.linear(dense, sparse) + self.cin_head(self.cin(v)).squeeze(-1)
        if self.dnn is not None:
            z = z + self.dnn(deep_input(v, dense)).squeeze(-1)
        return z
