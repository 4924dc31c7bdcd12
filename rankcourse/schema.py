"""Feature schema: which dense and categorical fields a dataset has, and input validation.

A batch is two tensors:

* ``dense``  -- ``float32 (batch, n_dense)``, one column per dense field, in schema order;
* ``sparse`` -- ``int64 (batch, n_fields)``, one *local* id per categorical field, in schema order,
  with ``0 <= id < vocab_size`` of that field.

All categorical fields can share one embedding table: field ``f``'s ids are shifted by
``offsets[f]`` (the sum of the vocabulary sizes before it), so one lookup serves every field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

__all__ = ["SparseField", "FeatureSchema"]


@dataclass(frozen=True)
class SparseField:
    """A categorical field: its name and how many distinct ids it has."""

    name: str
    vocab_size: int

    def __post_init__(self) -> None:
        if not isinstance(self.vocab_size, int) or self.vocab_size < 1:
            raise ValueError(
                f"sparse field {self.name!r}: vocab_size must be a positive int, got {self.vocab_size!r}"
            )


@dataclass(frozen=True)
class FeatureSchema:
    """The dense and categorical fields of a dataset, in column order.

    Args:
        dense: names of the dense (real-valued) fields.
        sparse: the categorical fields.
    """

    dense: tuple[str, ...] = ()
    sparse: tuple[SparseField, ...] = ()
    _offsets: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dense", tuple(self.dense))
        object.__setattr__(self, "sparse", tuple(self.sparse))
        names = list(self.dense) + [f.name for f in self.sparse]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"field names must be unique; repeated: {dup}")
        offsets, total = [], 0
        for f in self.sparse:
            offsets.append(total)
            total += f.vocab_size
        object.__setattr__(self, "_offsets", tuple(offsets))

    @classmethod
    def from_vocab_sizes(
        cls, n_dense: int, vocab_sizes: Sequence[int], dense_prefix: str = "I", sparse_prefix: str = "C"
    ) -> "FeatureSchema":
        """Criteo-style names: dense ``I1..In``, categorical ``C1..Cm``."""
        return cls(
            dense=tuple(f"{dense_prefix}{i + 1}" for i in range(n_dense)),
            sparse=tuple(SparseField(f"{sparse_prefix}{i + 1}", int(v)) for i, v in enumerate(vocab_sizes)),
        )

    # ------------------------------------------------------------------ sizes
    @property
    def n_dense(self) -> int:
        return len(self.dense)

    @property
    def n_fields(self) -> int:
        """Number of categorical fields."""
        return len(self.sparse)

    @property
    def vocab_sizes(self) -> tuple[int, ...]:
        return tuple(f.vocab_size for f in self.sparse)

    @property
    def total_vocab(self) -> int:
        """Rows of a shared embedding table: the sum of all vocabulary sizes."""
        return sum(self.vocab_sizes)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Row of the shared table where each field's ids start."""
        return self._offsets

    def offsets_tensor(self, device: torch.device | str | None = None) -> torch.Tensor:
        """``int64 (n_fields,)`` offsets, for adding to a ``sparse`` batch."""
        return torch.tensor(self._offsets, dtype=torch.long, device=device)

    # ---------------------------------------------------------------- lookups
    def sparse_index(self, name: str) -> int:
        """Column of categorical field ``name`` in ``sparse``."""
        for i, f in enumerate(self.sparse):
            if f.name == name:
                return i
        raise KeyError(
            f"unknown categorical field {name!r}; the schema has {[f.name for f in self.sparse]}"
        )

    def dense_index(self, name: str) -> int:
        """Column of dense field ``name`` in ``dense``."""
        try:
            return self.dense.index(name)
        except ValueError:
            raise KeyError(f"unknown dense field {name!r}; the schema has {list(self.dense)}") from None

    def subset(self, sparse_names: Sequence[str] | None = None, dense_names: Sequence[str] | None = None) -> "FeatureSchema":
        """A schema with only the named fields (in the order given)."""
        dense = self.dense if dense_names is None else tuple(self.dense[self.dense_index(n)] for n in dense_names)
        sparse = self.sparse if sparse_names is None else tuple(self.sparse[self.sparse_index(n)] for n in sparse_names)
        return FeatureSchema(dense=dense, sparse=sparse)

    # ------------------------------------------------------------- validation
    def validate(self, dense: torch.Tensor, sparse: torch.Tensor, check_values: bool = True) -> None:
        """Raise a ``ValueError`` naming the problem if a batch does not fit this schema.

        Checks dtypes and shapes, equal batch sizes, and (``check_values``) that dense values are
        finite and every id lies in ``[0, vocab_size)`` of its field. Nothing is clipped.
        """
        if not isinstance(dense, torch.Tensor) or not isinstance(sparse, torch.Tensor):
            raise TypeError(
                f"dense and sparse must be torch tensors, got {type(dense).__name__} and {type(sparse).__name__}"
            )
        if dense.dim() != 2 or dense.shape[1] != self.n_dense:
            raise ValueError(
                f"dense must have shape (batch, {self.n_dense}) for fields {list(self.dense)}, got {tuple(dense.shape)}"
            )
        if sparse.dim() != 2 or sparse.shape[1] != self.n_fields:
            raise ValueError(
                f"sparse must have shape (batch, {self.n_fields}) for fields "
                f"{[f.name for f in self.sparse]}, got {tuple(sparse.shape)}"
            )
        if dense.shape[0] != sparse.shape[0]:
            raise ValueError(f"dense has {dense.shape[0]} rows but sparse has {sparse.shape[0]}")
        if not dense.is_floating_point():
            raise TypeError(f"dense must be a floating tensor, got {dense.dtype}")
        if sparse.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"sparse must hold integer ids (int64), got {sparse.dtype}")
        if not check_values or dense.shape[0] == 0:
            return
        if self.n_dense:
            bad = ~torch.isfinite(dense)
            if bool(bad.any()):
                row, col = (int(v) for v in bad.nonzero()[0])
                raise ValueError(
                    f"dense field {self.dense[col]!r} has a non-finite value {dense[row, col].item()} at row {row}"
                )
        if self.n_fields:
            vocab = torch.tensor(self.vocab_sizes, device=sparse.device, dtype=sparse.dtype)
            bad = (sparse < 0) | (sparse >= vocab)
            if bool(bad.any()):
                row, col = (int(v) for v in bad.nonzero()[0])
                f = self.sparse[col]
                raise ValueError(
                    f"categorical field {f.name!r} has id {int(sparse[row, col])} at row {row}, "
                    f"outside [0, {f.vocab_size})"
                )
