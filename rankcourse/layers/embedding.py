"""One embedding table for all categorical fields.

Every field's local ids are shifted by the field's offset (the sum of the vocabulary sizes before
it, see :class:`~rankcourse.schema.FeatureSchema`), so a single lookup embeds a whole batch: no
per-field tables, no Python loop over fields. This is the layout used by most production CTR
code; the libraries that keep one ``nn.Embedding`` per field pay one kernel launch per field.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..schema import FeatureSchema
from ..checks import check_positive_int

__all__ = ["FieldEmbedding"]


class FieldEmbedding(nn.Module):
    """Embed every categorical field of a batch with one shared table.

    Args:
        schema: the fields; the table has ``schema.total_vocab`` rows.
        dim: embedding size ``D``.
        init_std: rows start as ``N(0, init_std^2)``. A small value (0.01 by default) keeps the
            second-order terms of FM/DCN near zero at the start, so training begins close to a
            linear model instead of from large random interactions.
        sparse_grad: produce sparse gradients (for ``torch.optim.SparseAdam``/``SGD``): only the
            rows seen in the batch are touched.

    Shapes:
        ``sparse``: ``int64 (batch, n_fields)`` local ids -> ``(batch, n_fields, dim)``.

    Attributes:
        weight: ``(total_vocab, dim)``; the rows of field ``f`` start at ``schema.offsets[f]``.
        offsets: buffer ``int64 (n_fields,)``.
    """

    def __init__(self, schema: FeatureSchema, dim: int, init_std: float = 0.01, sparse_grad: bool = False) -> None:
        super().__init__()
        dim = check_positive_int(dim, "embedding dim")
        if init_std < 0:
            raise ValueError(f"init_std must be >= 0, got {init_std}")
        self.schema = schema
        self.dim = dim
        self.sparse_grad = sparse_grad
        self.weight = nn.Parameter(torch.empty(schema.total_vocab, dim))
        self.register_buffer("offsets", schema.offsets_tensor(), persistent=False)
        self.init_std = init_std
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight.numel():  # a schema without categorical fields has an empty table
            nn.init.normal_(self.weight, std=self.init_std)

    @property
    def n_fields(self) -> int:
        return self.schema.n_fields

    def forward(self, sparse: Tensor) -> Tensor:
        if sparse.dim() != 2 or sparse.shape[1] != self.n_fields:
            raise ValueError(
                f"FieldEmbedding expects sparse ids of shape (batch, {self.n_fields}), got {tuple(sparse.shape)}"
            )
        # Ids are not range-checked here (that costs a device sync); models call schema.validate first.
        return F.embedding(sparse + self.offsets, self.weight, sparse=self.sparse_grad)

    def sparse_grad_parameters(self) -> list[nn.Parameter]:
        """The parameters whose gradients are sparse tensors (for ``SparseAdam``): ``weight`` if
        built with ``sparse_grad=True``."""
        return [self.weight] if self.sparse_grad else []

    def extra_repr(self) -> str:
        return f"n_fields={self.n_fields}, total_vocab={self.schema.total_vocab}, dim={self.dim}"
