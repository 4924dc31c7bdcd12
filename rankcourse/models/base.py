"""What every ranking model shares: the schema, the number of tasks, input checks.

Probabilities and batched predictions are in :mod:`rankcourse.inference` (``predict_proba``).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor, nn

from ..schema import FeatureSchema
from ..checks import check_positive_int

__all__ = ["CTRModel", "deep_input"]


def deep_input(embeddings: Tensor, dense: Tensor) -> Tensor:
    """The input vector of the deep and cross parts: ``concat(flattened field embeddings, dense)``.

    Shapes:
        ``embeddings (batch, n_fields, dim)``, ``dense (batch, n_dense)`` ->
        ``(batch, n_fields * dim + n_dense)``; field ``f`` occupies columns ``[f*dim, (f+1)*dim)``.
    """
    return torch.cat([embeddings.flatten(1), dense.to(embeddings.dtype)], dim=1)


class CTRModel(nn.Module):
    """Base class: ``forward(dense (B, n_dense), sparse (B, n_fields)) -> logits``.

    Logits have shape ``(B,)`` when ``n_tasks == 1`` (single-task models) and ``(B, n_tasks)`` for the
    multi-task models. Subclasses call :meth:`check_input` first, so a bad id or a NaN is reported with
    the field's name before any embedding lookup.
    """

    def __init__(self, schema: FeatureSchema, n_tasks: int = 1) -> None:
        super().__init__()
        if not isinstance(schema, FeatureSchema):
            raise TypeError(f"schema must be a FeatureSchema, got {type(schema).__name__}")
        n_tasks = check_positive_int(n_tasks, "n_tasks")
        self.schema = schema
        self.n_tasks = n_tasks

    #: When False, :meth:`check_input` checks shapes and dtypes but not every value (ids in range,
    #: finite dense values). :func:`rankcourse.training.fit` turns it off through
    #: :meth:`trusted_inputs` while it trains on a ``TabularData``, whose values were checked once
    #: when it was built: a per-step value check makes a GPU wait for the host at every step.
    check_values: bool = True

    def check_input(self, dense: Tensor, sparse: Tensor) -> None:
        """Raise a clear error (naming the field) if the batch does not fit ``schema``."""
        self.schema.validate(dense, sparse, check_values=self.check_values)

    @contextmanager
    def trusted_inputs(self) -> Iterator["CTRModel"]:
        """Within this block, skip the per-batch value checks (for data already validated)."""
        previous = self.check_values
        self.check_values = False
        try:
            yield self
        finally:
            self.check_values = previous

    @staticmethod
    def deep_input_dim(schema: FeatureSchema, embed_dim: int) -> int:
        """Width of :func:`deep_input`: ``n_fields * embed_dim + n_dense``."""
        width = schema.n_fields * embed_dim + schema.n_dense
        if width == 0:
            raise ValueError("the schema has no dense and no categorical fields: nothing to feed the model")
        return width
