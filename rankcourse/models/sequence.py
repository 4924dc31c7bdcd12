"""Ranking models that read a behaviour history: embedding -> pooling of the history -> MLP.

This is the course's embedding -> MLP framework with one change: the history field's embeddings
are pooled into one vector, and the pooling may look at the candidate. ``pooling="sum"`` or
``"mean"`` is the base model of Zhou et al. (2018); ``"din"`` is DIN; ``"din_softmax"`` its
normalised variant; ``"bst"`` BST's transformer block (Chen et al. 2019); ``"dien"`` the interest
evolution of Zhou et al. (2019).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..layers import MLP, FMInteraction
from ..layers.attention import InterestEvolution, TargetAttentionPooling, TransformerPooling
from ..layers.sequence import MeanPooling, SequenceEmbedding, SumPooling
from ..schema import FeatureSchema
from .base import CTRModel

__all__ = ["BehaviourRanker", "DIN", "BST", "POOLINGS", "make_pooling"]

POOLINGS = ("sum", "mean", "din", "din_softmax", "bst", "dien")


def make_pooling(name: str, dim: int, max_len: int, attention_hidden: int = 36,
                 activation: str = "prelu") -> nn.Module:
    """The pooling module called ``name`` (one of :data:`POOLINGS`) for behaviours of width ``dim``."""
    if name == "sum":
        return SumPooling()
    if name == "mean":
        return MeanPooling()
    if name in ("din", "din_softmax"):
        return TargetAttentionPooling(dim, attention_hidden, activation,
                                      normalise="softmax" if name == "din_softmax" else "none")
    if name == "bst":
        return TransformerPooling(dim, max_len)
    if name == "dien":
        return InterestEvolution(dim)
    raise ValueError(f"unknown pooling {name!r}; choose one of {POOLINGS}")


class BehaviourRanker(CTRModel):
    """``z = MLP(concat(fields, candidate, pool(behaviours | candidate), dense)) [+ FM]``.

    Args:
        schema: fields with sequence fields (see :class:`~rankcourse.layers.SequenceEmbedding`).
        pooling: one of :data:`POOLINGS`.
        embed_dim: ``D`` per field; a behaviour and the candidate have width ``S * D``.
        hidden: hidden widths of the MLP.
        attention_hidden, activation: of DIN's local activation unit (``"prelu"`` or ``"dice"``).
        fm: add DeepFM's second-order term over all field vectors (the pooled vector and the
            candidate split back into their ``S`` fields).
        dropout: in the MLP.
        init_std: initial std of the embeddings. Larger than the 0.01 of the other models: the
            activation unit multiplies two embeddings (``e_t * v``), and with 0.01 that product
            starts near 1e-4, so attention takes many steps to get going.

    Shapes:
        ``dense (B, n_dense)``, ``sparse (B, n_fields)`` -> logits ``(B,)``.
    """

    def __init__(self, schema: FeatureSchema, pooling: str = "din", embed_dim: int = 8,
                 hidden: Sequence[int] = (64, 32), attention_hidden: int = 36, activation: str = "prelu",
                 fm: bool = False, dropout: float = 0.0, init_std: float = 0.05) -> None:
        super().__init__(schema)
        self.pooling_name = pooling
        self.embedding = SequenceEmbedding(schema, embed_dim, init_std=init_std)
        width = self.embedding.behaviour_dim
        self.pooling = make_pooling(pooling, width, self.embedding.max_len, attention_hidden, activation)
        pooled = self.pooling.hidden_dim if isinstance(self.pooling, InterestEvolution) else width
        in_dim = self.embedding.n_other_fields * embed_dim + width + pooled + schema.n_dense
        self.mlp = MLP(in_dim, hidden, dropout=dropout, out_dim=1)
        if fm and pooled != width:
            raise ValueError(f"fm=True needs a pooling whose output has the behaviour width {width}")
        self.fm = FMInteraction() if fm else None

    def user_vector(self, sparse: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(fields (B, F, D), candidate (B, S*D), pooled history (B, S*D))``."""
        fields, behaviours, candidate, mask = self.embedding(sparse)
        return fields, candidate, self.pooling(behaviours, candidate, mask)

    def attention_weights(self, dense: Tensor, sparse: Tensor) -> Tensor:
        """``(B, T)`` weights of DIN's pooling (``pooling`` ``"din"`` or ``"din_softmax"``), no grad."""
        if not isinstance(self.pooling, TargetAttentionPooling):
            raise TypeError(f"pooling {self.pooling_name!r} has no per-behaviour weights; use 'din' or 'din_softmax'")
        self.check_input(dense, sparse)
        with torch.no_grad():
            _, behaviours, candidate, mask = self.embedding(sparse)
            return self.pooling.weights(behaviours, candidate, mask)

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        self.check_input(dense, sparse)
        fields, candidate, pooled = self.user_vector(sparse)
        x = torch.cat([fields.flatten(1), candidate, pooled, dense.to(candidate.dtype)], dim=1)
        logit = self.mlp(x).squeeze(-1)
        if self.fm is not None:
            d = self.embedding.dim
            stacked = torch.cat([fields, candidate.unflatten(1, (-1, d)), pooled.unflatten(1, (-1, d))], dim=1)
            logit = logit + self.fm(stacked)
        return logit


class DIN(BehaviourRanker):
    """Deep Interest Network (Zhou et al. 2018): :class:`BehaviourRanker` with ``pooling="din"``."""

    def __init__(self, schema: FeatureSchema, embed_dim: int = 8, hidden: Sequence[int] = (64, 32),
                 attention_hidden: int = 36, activation: str = "prelu", dropout: float = 0.0) -> None:
        super().__init__(schema, "din", embed_dim, hidden, attention_hidden, activation, dropout=dropout)


class BST(BehaviourRanker):
    """Behavior Sequence Transformer (Chen et al. 2019): :class:`BehaviourRanker` with ``pooling="bst"``."""

    def __init__(self, schema: FeatureSchema, embed_dim: int = 8, hidden: Sequence[int] = (64, 32),
                 dropout: float = 0.0) -> None:
        super().__init__(schema, "bst", embed_dim, hidden, dropout=dropout)
