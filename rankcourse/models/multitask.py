"""Multi-task models: Shared-Bottom, OMoE and MMoE (Ma et al. 2018, "Modeling Task Relationships in
Multi-task Learning with Multi-gate Mixture-of-Experts", KDD).

All three read ``x = concat(flattened field embeddings, dense)`` (just ``dense`` when the schema has no
categorical fields, as in the synthetic regression tasks) and return one logit (or regression output)
per task, shape ``(B, n_tasks)``. Experts and towers are stacked and evaluated with batched products
(:class:`~rankcourse.layers.ParallelMLP`), not a Python loop over experts or tasks.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..layers import MLP, ExpertGate, FieldEmbedding, ParallelMLP
from ..schema import FeatureSchema
from .base import CTRModel, deep_input

__all__ = ["SharedBottom", "OMoE", "MMoE"]


class _MultiTaskModel(CTRModel):
    """Embeds the input once; subclasses map ``x (B, in_dim)`` to ``(B, n_tasks)``."""

    def __init__(self, schema: FeatureSchema, n_tasks: int, embed_dim: int) -> None:
        super().__init__(schema, n_tasks)
        self.in_dim = self.deep_input_dim(schema, embed_dim)
        # A dense-only schema needs no table (an empty parameter only confuses optimisers).
        self.embedding = FieldEmbedding(schema, embed_dim) if schema.n_fields else None

    def model_input(self, dense: Tensor, sparse: Tensor) -> Tensor:
        """Checks the batch and returns ``x = concat(flattened embeddings, dense)``, ``(B, in_dim)``."""
        self.check_input(dense, sparse)
        if self.embedding is None:
            return dense
        return deep_input(self.embedding(sparse), dense)


class SharedBottom(_MultiTaskModel):
    """Shared-Bottom multi-task model (Caruana 1997; the baseline of Ma et al. 2018).

    ``x -> bottom MLP (shared) -> one tower per task -> (B, n_tasks)``. The paper's synthetic
    experiment uses one bottom layer of 113 units (the same parameter count as its MMoE) and towers of 8.

    Args:
        schema: the fields.
        n_tasks: number of tasks.
        bottom: widths of the shared MLP.
        tower: hidden widths of each task tower (each ends in one linear unit).
        embed_dim: embedding size of the categorical fields.
        dropout: dropout in the bottom and the towers.
        batch_norm: batch normalisation after each hidden layer of the bottom and the towers (off
            by default).

    Shapes:
        ``dense (B, n_dense)``, ``sparse (B, n_fields)`` -> ``(B, n_tasks)``.
    """

    def __init__(
        self,
        schema: FeatureSchema,
        n_tasks: int,
        bottom: Sequence[int] = (113,),
        tower: Sequence[int] = (8,),
        embed_dim: int = 8,
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__(schema, n_tasks, embed_dim)
        self.bottom = MLP(self.in_dim, bottom, dropout=dropout, batch_norm=batch_norm)
        self.towers = ParallelMLP(n_tasks, self.bottom.out_dim, tower, out_dim=1, dropout=dropout,
                                  batch_norm=batch_norm)

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        h = self.bottom(self.model_input(dense, sparse))
        return self.towers(h).squeeze(-1)


class _MixtureModel(_MultiTaskModel):
    def __init__(
        self, schema: FeatureSchema, n_tasks: int, n_experts: int, expert: Sequence[int],
        tower: Sequence[int], embed_dim: int, dropout: float, n_gates: int | None, batch_norm: bool = False,
        gate_batch_norm: bool = False,
    ) -> None:
        super().__init__(schema, n_tasks, embed_dim)
        if not tuple(expert):
            raise ValueError("experts need at least one hidden layer (expert is empty)")
        self.n_experts = n_experts
        self.experts = ParallelMLP(n_experts, self.in_dim, expert, dropout=dropout, batch_norm=batch_norm)
        self.gate = ExpertGate(self.in_dim, n_experts, n_gates=n_gates, batch_norm=gate_batch_norm)
        self.towers = ParallelMLP(n_tasks, self.experts.out_dim, tower, out_dim=1, dropout=dropout,
                                  batch_norm=batch_norm)

    def _gates(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def gate_weights(self, dense: Tensor, sparse: Tensor) -> Tensor:
        """Each task's weights on the experts, ``(B, n_tasks, n_experts)``; rows sum to one."""
        return self._gates(self.model_input(dense, sparse))

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        x = self.model_input(dense, sparse)
        experts = self.experts(x)                                  # (B, n_experts, expert_width)
        mixed = torch.bmm(self._gates(x), experts)                  # (B, n_tasks, expert_width)
        return self.towers(mixed).squeeze(-1)                       # (B, n_tasks)


class OMoE(_MixtureModel):
    """One-gate Mixture-of-Experts (Ma et al. 2018, eq. 5): every task's tower reads the same
    mixture ``sum_i g(x)_i f_i(x)`` of the experts.

    Args:
        schema: the fields.
        n_tasks: number of tasks.
        n_experts: number of experts.
        expert: hidden widths of each expert (the paper: one layer of 16 ReLU units).
        tower: hidden widths of each task tower (the paper: 8), ending in one linear unit.
        embed_dim: embedding size of the categorical fields.
        dropout: dropout in experts and towers.
        batch_norm: batch normalisation after each hidden layer of the experts and the towers (off
            by default).
        gate_batch_norm: batch normalisation of the gate logits before the softmax, as in
            torch-rechub (off by default, as in the paper; see :class:`~rankcourse.layers.ExpertGate`).

    Shapes:
        ``dense (B, n_dense)``, ``sparse (B, n_fields)`` -> ``(B, n_tasks)``.
    """

    def __init__(
        self,
        schema: FeatureSchema,
        n_tasks: int,
        n_experts: int = 8,
        expert: Sequence[int] = (16,),
        tower: Sequence[int] = (8,),
        embed_dim: int = 8,
        dropout: float = 0.0,
        batch_norm: bool = False,
        gate_batch_norm: bool = False,
    ) -> None:
        super().__init__(schema, n_tasks, n_experts, expert, tower, embed_dim, dropout, n_gates=None,
                         batch_norm=batch_norm, gate_batch_norm=gate_batch_norm)

    def _gates(self, x: Tensor) -> Tensor:
        # One gate, the same for every task: broadcast without copying.
        return self.gate(x).unsqueeze(1).expand(-1, self.n_tasks, -1)


class MMoE(_MixtureModel):
    """Multi-gate Mixture-of-Experts (Ma et al. 2018, eq. 6-7): task ``k``'s tower reads
    ``sum_i g^k(x)_i f_i(x)`` with its own softmax gate ``g^k(x) = softmax(W_k x)``.

    The gates of all tasks come from one linear layer; no BatchNorm before the softmax unless
    ``gate_batch_norm=True``.

    Args: as :class:`OMoE`.

    Shapes:
        ``dense (B, n_dense)``, ``sparse (B, n_fields)`` -> ``(B, n_tasks)``.
    """

    def __init__(
        self,
        schema: FeatureSchema,
        n_tasks: int,
        n_experts: int = 8,
        expert: Sequence[int] = (16,),
        tower: Sequence[int] = (8,),
        embed_dim: int = 8,
        dropout: float = 0.0,
        batch_norm: bool = False,
        gate_batch_norm: bool = False,
    ) -> None:
        super().__init__(schema, n_tasks, n_experts, expert, tower, embed_dim, dropout, n_gates=n_tasks,
                         batch_norm=batch_norm, gate_batch_norm=gate_batch_norm)

    def _gates(self, x: Tensor) -> Tensor:
        return self.gate(x)
