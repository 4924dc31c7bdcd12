"""Feature schema: which dense and categorical fields a dataset has, and input validation.

A batch is two tensors:

* ``dense``  -- ``float32 (batch, n_dense)``, one column per dense field, in schema order;
* ``sparse`` -- ``int64 (batch, n_fields)``, one *local* id per categorical field, in schema order,
  with ``0 <= id < vocab_size`` of that field.

All categorical fields can share one embedding table: field ``f``'s ids are shifted by
``offsets[f]`` (the sum of the vocabulary sizes before it), so one lookup serves every field.

A *sequence field* (:class:`SequenceField`, e.g. a user's last clicked items) is a padded list of
ids. It occupies ``max_len`` ordinary categorical columns of ``sparse`` named ``name[0]`` ..
``name[max_len-1]``, each with ``vocab_size + 1`` ids: ids ``0 .. vocab_size-1`` are items and id
``vocab_size`` is padding, which fills the tail of a short history. Models that know nothing of
sequences see these columns as plain fields; the sequence layers
(:mod:`rankcourse.layers.sequence`) split them off with :meth:`FeatureSchema.sequence_columns`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from .checks import check_positive_int

__all__ = ["SparseField", "SequenceField", "FeatureSchema"]


@dataclass(frozen=True)
class SparseField:
    """A categorical field: its name and how many distinct ids it has."""

    name: str
    vocab_size: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "vocab_size",
                           check_positive_int(self.vocab_size, f"sparse field {self.name!r}: vocab_size"))


@dataclass(frozen=True)
class SequenceField:
    """A padded, variable-length list of ids (a behaviour history) stored in ``max_len`` columns.

    Args:
        name: the field's name; its columns are ``name[0]`` .. ``name[max_len-1]``, oldest first.
        vocab_size: number of real ids; id ``vocab_size`` (:attr:`padding_id`) marks padding.
        max_len: number of columns (the longest history kept).
        target: the categorical field whose ids live in the same vocabulary (the candidate item
            for a history of items), or ``None``. Target-attention layers compare the two.
    """

    name: str
    vocab_size: int
    max_len: int
    target: str | None = None

    def __post_init__(self) -> None:
        for key in ("vocab_size", "max_len"):
            value = check_positive_int(getattr(self, key), f"sequence field {self.name!r}: {key}")
            object.__setattr__(self, key, value)

    @property
    def padding_id(self) -> int:
        """The id that fills positions after the end of a history."""
        return self.vocab_size

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(f"{self.name}[{t}]" for t in range(self.max_len))

    def columns(self) -> tuple[SparseField, ...]:
        """The ``max_len`` categorical columns, each with ``vocab_size + 1`` ids (padding included)."""
        return tuple(SparseField(n, self.vocab_size + 1) for n in self.column_names)


@dataclass(frozen=True)
class FeatureSchema:
    """The dense and categorical fields of a dataset, in column order.

    Args:
        dense: names of the dense (real-valued) fields.
        sparse: the categorical fields.
        sequences: sequence fields; the columns of each are appended to ``sparse`` (unless they
            are there already, with the right vocabulary, as after :meth:`subset`).
    """

    dense: tuple[str, ...] = ()
    sparse: tuple[SparseField, ...] = ()
    sequences: tuple[SequenceField, ...] = ()
    _offsets: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dense", tuple(self.dense))
        object.__setattr__(self, "sparse", tuple(self.sparse))
        object.__setattr__(self, "sequences", tuple(self.sequences))
        self._attach_sequences()
        names = list(self.dense) + [f.name for f in self.sparse]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"field names must be unique; repeated: {dup}")
        offsets, total = [], 0
        for f in self.sparse:
            offsets.append(total)
            total += f.vocab_size
        object.__setattr__(self, "_offsets", tuple(offsets))

    def _attach_sequences(self) -> None:
        """Append each sequence field's columns to ``sparse`` (or check the ones already there)."""
        present = {f.name: f for f in self.sparse}
        extra: list[SparseField] = []
        for seq in self.sequences:
            if not isinstance(seq, SequenceField):
                raise TypeError(f"sequences must hold SequenceField objects, got {type(seq).__name__}")
            if seq.target is not None and seq.target not in present:
                raise ValueError(f"sequence field {seq.name!r}: target {seq.target!r} is not a categorical field")
            if seq.target is not None and present[seq.target].vocab_size != seq.vocab_size:
                raise ValueError(
                    f"sequence field {seq.name!r} has vocab_size {seq.vocab_size} but its target "
                    f"{seq.target!r} has {present[seq.target].vocab_size}: they must share one vocabulary"
                )
            cols = seq.columns()
            found = [c.name in present for c in cols]
            if all(found):
                for c in cols:
                    if present[c.name] != c:
                        raise ValueError(f"column {c.name!r} has vocab_size {present[c.name].vocab_size}, "
                                         f"expected {c.vocab_size} for sequence field {seq.name!r}")
            elif any(found):
                raise ValueError(f"sequence field {seq.name!r}: only some of its columns are in sparse")
            else:
                extra.extend(cols)
        object.__setattr__(self, "sparse", self.sparse + tuple(extra))

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
        names = {f.name for f in sparse}
        kept = tuple(s for s in self.sequences
                     if set(s.column_names) <= names and (s.target is None or s.target in names))
        return FeatureSchema(dense=dense, sparse=sparse, sequences=kept)

    def sequence(self, name: str) -> SequenceField:
        """The sequence field called ``name``."""
        for seq in self.sequences:
            if seq.name == name:
                return seq
        raise KeyError(f"unknown sequence field {name!r}; the schema has {[s.name for s in self.sequences]}")

    def sequence_columns(self, name: str) -> tuple[int, ...]:
        """Columns of ``sparse`` holding sequence field ``name``, position 0 first."""
        return tuple(self.sparse_index(c) for c in self.sequence(name).column_names)

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
        for seq in self.sequences:
            self._check_padding_at_end(seq, sparse)

    def _check_padding_at_end(self, seq: SequenceField, sparse: torch.Tensor) -> None:
        """A history fills positions ``0 .. length-1``; padding may not sit before a real id."""
        ids = sparse[:, list(self.sequence_columns(seq.name))]
        is_pad = ids == seq.padding_id
        # A real id after a padding position: padding somewhere to its left.
        bad = ~is_pad[:, 1:] & (is_pad.cumsum(1)[:, :-1] > 0)
        if bool(bad.any()):
            row, pos = (int(v) for v in bad.nonzero()[0])
            raise ValueError(
                f"sequence field {seq.name!r}: row {row} has id {int(ids[row, pos + 1])} at position {pos + 1} "
                f"after padding (id {seq.padding_id}); histories must fill positions 0..length-1, then pad"
            )
