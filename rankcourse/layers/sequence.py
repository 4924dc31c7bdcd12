"""Behaviour sequences: splitting them off a batch, embedding them, and pooling them without the candidate.

A behaviour history arrives as ``max_len`` columns of ``sparse`` (see
:class:`~rankcourse.schema.SequenceField`). :class:`SequenceEmbedding` turns a batch into

* ``fields (B, F, D)`` -- the ordinary categorical fields (user, context ...);
* ``behaviours (B, T, S*D)`` -- each past behaviour, the embeddings of its ``S`` aligned sequence
  fields (e.g. item id and category) concatenated;
* ``candidate (B, S*D)`` -- the candidate, embedded with the *same* tables (its item id and
  category are the sequences' targets), so a past click on an item and that item as a candidate
  are the same vector;
* ``mask (B, T)`` -- True at real behaviours, False at padding.

Every pooling module here and in :mod:`rankcourse.layers.attention` has the interface
``forward(behaviours (B, T, E), candidate (B, E), mask (B, T)) -> (B, E)``; sum and mean pooling
ignore the candidate.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..schema import FeatureSchema
from .embedding import FieldEmbedding

__all__ = ["SequenceEmbedding", "SumPooling", "MeanPooling", "masked_sum"]


def masked_sum(behaviours: Tensor, weights: Tensor, mask: Tensor) -> Tensor:
    """``sum_t mask_t * weights_t * behaviours_t``: ``(B, T, E), (B, T), (B, T) bool -> (B, E)``.

    The mask multiplies the weights, so a padded position contributes nothing and receives a zero
    gradient whatever its embedding or weight.
    """
    w = weights * mask.to(weights.dtype)
    return torch.einsum("bt,bte->be", w, behaviours)


def _check_pooling_input(behaviours: Tensor, mask: Tensor) -> None:
    if behaviours.dim() != 3:
        raise ValueError(f"behaviours must have shape (batch, max_len, dim), got {tuple(behaviours.shape)}")
    if tuple(mask.shape) != tuple(behaviours.shape[:2]):
        raise ValueError(f"mask must have shape {tuple(behaviours.shape[:2])} (batch, max_len), got {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True = real behaviour), got {mask.dtype}")


class SumPooling(nn.Module):
    """Masked sum of the behaviours: the user vector grows with the number of behaviours.

    Shapes: ``behaviours (B, T, E)``, ``candidate (B, E)`` (unused), ``mask (B, T)`` -> ``(B, E)``.
    """

    def forward(self, behaviours: Tensor, candidate: Tensor | None, mask: Tensor) -> Tensor:
        _check_pooling_input(behaviours, mask)
        return masked_sum(behaviours, torch.ones_like(mask, dtype=behaviours.dtype), mask)


class MeanPooling(nn.Module):
    """Masked mean of the behaviours; an empty history gives the zero vector.

    Shapes: ``behaviours (B, T, E)``, ``candidate (B, E)`` (unused), ``mask (B, T)`` -> ``(B, E)``.
    """

    def forward(self, behaviours: Tensor, candidate: Tensor | None, mask: Tensor) -> Tensor:
        _check_pooling_input(behaviours, mask)
        count = mask.sum(1, keepdim=True).clamp(min=1).to(behaviours.dtype)  # empty rows: 0 / 1
        return masked_sum(behaviours, torch.ones_like(mask, dtype=behaviours.dtype), mask) / count


class SequenceEmbedding(nn.Module):
    """Embed a batch whose schema has sequence fields: ordinary fields, behaviours, candidate, mask.

    Each sequence field gets one table of ``vocab_size + 1`` rows shared with its target field; the
    padding row is fixed at zero (``padding_idx``), so padding adds nothing even to an unmasked sum.
    All sequence fields must have the same ``max_len`` and a target; the first one defines the mask.

    Args:
        schema: fields with at least one :class:`~rankcourse.schema.SequenceField`.
        dim: embedding size ``D`` per field.
        init_std: initial std of every table.

    Shapes:
        ``sparse (B, n_fields)`` -> ``fields (B, F, D)``, ``behaviours (B, T, S*D)``,
        ``candidate (B, S*D)``, ``mask (B, T)`` bool, with ``F`` the fields that are neither a
        sequence column nor a target, ``S`` the number of sequence fields, ``T = max_len``.
    """

    def __init__(self, schema: FeatureSchema, dim: int, init_std: float = 0.01) -> None:
        super().__init__()
        if not schema.sequences:
            raise ValueError("SequenceEmbedding needs a schema with at least one SequenceField")
        lengths = {s.name: s.max_len for s in schema.sequences}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"all sequence fields must have the same max_len, got {lengths}")
        for s in schema.sequences:
            if s.target is None:
                raise ValueError(f"sequence field {s.name!r} has no target field to compare with")
        self.schema, self.dim = schema, dim
        self.max_len = schema.sequences[0].max_len
        self.padding_id = schema.sequences[0].padding_id
        self.tables = nn.ModuleList(nn.Embedding(s.vocab_size + 1, dim, padding_idx=s.padding_id)
                                    for s in schema.sequences)
        for t in self.tables:
            nn.init.normal_(t.weight, std=init_std)
            with torch.no_grad():
                t.weight[t.padding_idx].zero_()
        used = {schema.sparse_index(s.target) for s in schema.sequences}
        for s in schema.sequences:
            used.update(schema.sequence_columns(s.name))
        other = [f.name for i, f in enumerate(schema.sparse) if i not in used]
        self.other_schema = schema.subset(sparse_names=other, dense_names=())
        self.fields = FieldEmbedding(self.other_schema, dim, init_std=init_std) if other else None
        self.register_buffer("other_columns", torch.tensor([schema.sparse_index(n) for n in other],
                                                           dtype=torch.long), persistent=False)
        self.register_buffer("target_columns", torch.tensor([schema.sparse_index(s.target) for s in schema.sequences],
                                                            dtype=torch.long), persistent=False)
        self.register_buffer("sequence_columns", torch.tensor([schema.sequence_columns(s.name) for s in schema.sequences],
                                                              dtype=torch.long), persistent=False)

    @property
    def n_other_fields(self) -> int:
        return self.other_schema.n_fields

    @property
    def behaviour_dim(self) -> int:
        """``S * D``: width of one behaviour and of the candidate."""
        return len(self.tables) * self.dim

    def forward(self, sparse: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if sparse.dim() != 2 or sparse.shape[1] != self.schema.n_fields:
            raise ValueError(f"sparse must have shape (batch, {self.schema.n_fields}), got {tuple(sparse.shape)}")
        batch = sparse.shape[0]
        fields = (self.fields(sparse[:, self.other_columns]) if self.fields is not None
                  else sparse.new_zeros((batch, 0, self.dim), dtype=self.tables[0].weight.dtype))
        behaviours = torch.cat([t(sparse[:, cols]) for t, cols in zip(self.tables, self.sequence_columns)], -1)
        candidate = torch.cat([t(sparse[:, col]) for t, col in zip(self.tables, self.target_columns)], -1)
        mask = sparse[:, self.sequence_columns[0]] != self.padding_id
        return fields, behaviours, candidate, mask
