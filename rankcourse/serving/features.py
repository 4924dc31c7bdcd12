"""From raw request values to the ``(dense, sparse)`` tensors a model reads, with training statistics.

A served model sees raw values: strings, numbers, ``None`` for a missing value, and lists of item
ids for a behaviour history. :class:`FeatureEncoder` turns them into the ids and standardised numbers
that training used: the vocabularies and dense statistics come from the training split of a
:mod:`rankcourse.datasets` data set (or any raw training rows), and the ids come from
:meth:`rankcourse.datasets._common.Vocabulary.encode`, so a value unseen in training gets the OOV id
exactly as it did in training. Every bad value raises :class:`RequestError` naming the field and the
row ("user" or "candidate 3").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..datasets._common import MISSING_ID, OOV_ID, DataSplits, RawTable, Standardizer, Vocabulary
from ..schema import FeatureSchema, SequenceField, SparseField

__all__ = ["RequestError", "DenseStatistic", "FeatureEncoder"]

_TRANSFORMS = ("identity", "log1p")


class RequestError(ValueError):
    """A request does not fit the model: names the field, the row (``user`` or ``candidate i``)
    and the value. The scorer answers it; it never crashes on one."""

    def __init__(self, where: str, field_name: str | None, problem: str) -> None:
        self.where, self.field_name, self.problem = where, field_name, problem
        what = f", field {field_name!r}" if field_name is not None else ""
        super().__init__(f"{where}{what}: {problem}")


@dataclass(frozen=True)
class DenseStatistic:
    """How one dense field was prepared in training: ``(transform(x) - mean) / std``, missing -> 0.

    ``transform`` is ``"identity"`` or ``"log1p"`` (Census money amounts are ``log(1 + x)`` first).
    """

    mean: float
    std: float
    transform: str = "identity"

    def __post_init__(self) -> None:
        if self.transform not in _TRANSFORMS:
            raise ValueError(f"transform must be one of {_TRANSFORMS}, got {self.transform!r}")
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise ValueError(f"mean must be finite and std positive, got mean={self.mean}, std={self.std}")

    def apply(self, values: np.ndarray) -> np.ndarray:
        """``(n,)`` float64 with NaN for missing -> ``(n,)`` float32 standardised, missing -> 0."""
        if self.transform == "log1p":
            values = np.log1p(np.maximum(values, 0.0))
        return Standardizer(self.mean, self.std).transform(values)


@dataclass
class FeatureEncoder:
    """The vocabularies and dense statistics of a training split, and the encoding of raw rows.

    Args:
        dense: field -> :class:`DenseStatistic`, in column order.
        categorical: field -> the kept training values (id ``i + 2`` is ``values[i]``; id 0 is OOV,
            id 1 missing), in column order.
        sequences: history field -> ``(target field, max_len)``. A history is a list of raw values
            of the target's vocabulary, oldest first; the most recent ``max_len`` are kept.

    The :attr:`schema` has the categorical fields in the given order, then the history columns.
    """

    dense: dict[str, DenseStatistic] = field(default_factory=dict)
    categorical: dict[str, list[str]] = field(default_factory=dict)
    sequences: dict[str, tuple[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._vocabs = {name: Vocabulary([str(v) for v in values]) for name, values in self.categorical.items()}
        for name, (target, max_len) in self.sequences.items():
            if target not in self.categorical:
                raise ValueError(f"history field {name!r}: target {target!r} is not a categorical field")
            if not isinstance(max_len, int) or max_len < 1:
                raise ValueError(f"history field {name!r}: max_len must be a positive int, got {max_len!r}")
        self.schema = FeatureSchema(
            dense=tuple(self.dense),
            sparse=tuple(SparseField(n, v.size) for n, v in self._vocabs.items()),
            sequences=tuple(SequenceField(n, self._vocabs[t].size, m, t) for n, (t, m) in self.sequences.items()),
        )

    # ----------------------------------------------------------------- building
    @classmethod
    def fit(cls, train: RawTable, min_count: int = 1, log1p_fields: Sequence[str] = ()) -> "FeatureEncoder":
        """Build from raw training rows with the loaders' own ``Vocabulary.build`` and ``Standardizer.fit``.

        ``log1p_fields`` are dense fields whose raw values the loader passed through ``log(1 + x)``
        before standardising (``train`` holds them already transformed, as a loader's ``RawTable`` does).
        """
        dense = {}
        for name, column in train.dense.items():
            s = Standardizer.fit(np.asarray(column, dtype=float))
            dense[name] = DenseStatistic(s.mean, s.std, "log1p" if name in log1p_fields else "identity")
        categorical = {name: Vocabulary.build(column, min_count).values for name, column in train.categorical.items()}
        return cls(dense, categorical)

    @classmethod
    def from_splits(cls, splits: DataSplits, train: RawTable, log1p_fields: Sequence[str] = ()) -> "FeatureEncoder":
        """The encoder of a loaded data set: its vocabularies, and dense statistics refitted on ``train``,
        the raw rows of its training split; checked to reproduce ``splits.train`` exactly."""
        encoder = cls.fit(train, 1, log1p_fields)
        encoder = cls(encoder.dense, {k: list(v) for k, v in splits.vocabularies.items()})
        if encoder.schema != splits.schema:
            raise ValueError(f"the encoder's schema {encoder.schema} differs from the data set's {splits.schema}")
        dense = np.stack([train.dense[k] for k in encoder.dense], 1) if encoder.dense else np.zeros((len(train), 0))
        rebuilt = np.stack([s.apply(_undo(s, dense[:, i])) for i, s in enumerate(encoder.dense.values())],
                           1) if encoder.dense else dense
        if rebuilt.shape != tuple(splits.train.dense.shape) or not np.allclose(rebuilt, splits.train.dense.numpy(),
                                                                               atol=1e-5):
            raise ValueError("train is not the raw training split of splits: its dense statistics differ")
        return encoder

    # ----------------------------------------------------------------- encoding
    def encode(self, rows: Sequence[Mapping[str, Any]], labels: Sequence[str],
               fields: Sequence[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw rows -> ``dense (n, n_dense)`` float32 and ``sparse (n, n_fields)`` int64.

        Each row maps every field of ``fields`` (default: all, see :meth:`field_names`) to its raw
        value; ``labels[i]`` names row ``i`` in errors. With ``fields`` the columns are those of the
        chosen fields only, in schema order (a request's user part or its candidates' part).
        """
        keep = set(self.field_names() if fields is None else fields)
        n = len(rows)
        dense_names = [k for k in self.dense if k in keep]
        dense = np.zeros((n, len(dense_names)), np.float32)
        for j, name in enumerate(dense_names):
            raw = np.array([_number(r[name], name, w) for r, w in zip(rows, labels)], float)
            dense[:, j] = self.dense[name].apply(raw)
        columns = [self._vocabs[name].encode(_categorical_column(rows, name, labels))
                   for name in self.categorical if name in keep]
        for name, (target, max_len) in self.sequences.items():
            if name in keep:
                columns.extend(self._history_columns(rows, name, target, max_len, labels))
        sparse = np.stack(columns, 1).astype(np.int64) if columns else np.zeros((n, 0), np.int64)
        return torch.from_numpy(dense), torch.from_numpy(sparse)

    def columns_of(self, fields: Sequence[str]) -> tuple[list[int], list[int]]:
        """Schema indices ``(dense columns, sparse columns)`` that :meth:`encode` fills for ``fields``."""
        keep = set(fields)
        owner = {c: name for name in self.sequences for c in self.schema.sequence(name).column_names}
        dense = [i for i, n in enumerate(self.schema.dense) if n in keep]
        sparse = [i for i, f in enumerate(self.schema.sparse) if owner.get(f.name, f.name) in keep]
        return dense, sparse

    def _history_columns(self, rows: Sequence[Mapping[str, Any]], name: str, target: str, max_len: int,
                         labels: Sequence[str]) -> list[np.ndarray]:
        vocab = self._vocabs[target]
        pad = vocab.size
        out = np.full((len(rows), max_len), pad, np.int64)
        for i, (row, where) in enumerate(zip(rows, labels)):
            history = row[name]
            if history is None:
                continue
            if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
                raise RequestError(where, name, f"a history must be a list of values, got {type(history).__name__}")
            recent = list(history)[-max_len:]
            values = np.array([_category(v, name, where) for v in recent], dtype=object)
            if len(values):
                out[i, : len(values)] = vocab.encode(values)
        return list(out.T)

    def field_names(self) -> list[str]:
        """Every raw field a full row carries: dense, categorical, then history fields."""
        return [*self.dense, *self.categorical, *self.sequences]

    def summary(self) -> dict[str, Any]:
        """Sizes, for printing."""
        return {"dense": len(self.dense), "categorical": len(self.categorical), "histories": len(self.sequences),
                "ids": self.schema.total_vocab, "oov_id": OOV_ID, "missing_id": MISSING_ID}

    # ----------------------------------------------------------------- storage
    def to_dict(self) -> dict[str, Any]:
        return {"dense": {k: [s.mean, s.std, s.transform] for k, s in self.dense.items()},
                "categorical": {k: list(v) for k, v in self.categorical.items()},
                "sequences": {k: [t, m] for k, (t, m) in self.sequences.items()}}

    @classmethod
    def from_dict(cls, blob: Mapping[str, Any]) -> "FeatureEncoder":
        return cls({k: DenseStatistic(float(m), float(s), str(t)) for k, (m, s, t) in blob["dense"].items()},
                   {k: [str(v) for v in vals] for k, vals in blob["categorical"].items()},
                   {k: (str(t), int(m)) for k, (t, m) in blob["sequences"].items()})


def _undo(stat: DenseStatistic, column: np.ndarray) -> np.ndarray:
    """Raw values whose ``apply`` reproduces ``column`` (the loader's already-transformed values)."""
    return np.expm1(column) if stat.transform == "log1p" else column


def _number(value: Any, name: str, where: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise RequestError(where, name, f"expected a number or None, got {type(value).__name__} {value!r:.40}")
    value = float(value)
    if math.isinf(value):
        raise RequestError(where, name, f"expected a finite number, got {value}")
    return value


def _category(value: Any, name: str, where: str) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, np.integer)):
        raise RequestError(where, name, f"expected a string, an int or None, got {type(value).__name__} {value!r:.40}")
    return str(value)


def _categorical_column(rows: Sequence[Mapping[str, Any]], name: str, labels: Sequence[str]) -> np.ndarray:
    return np.array([_category(r[name], name, w) for r, w in zip(rows, labels)] or [], dtype=object)


def census_encoder(splits: DataSplits, source: str | None = None) -> FeatureEncoder:
    """The :class:`FeatureEncoder` of splits made by :func:`rankcourse.datasets.load_census`.

    The loader keeps the vocabularies but not the dense means and standard deviations, so the raw
    training rows are read again (same file, same seeded split) and the statistics refitted; the
    result is checked to reproduce ``splits.train``.
    """
    from ..datasets._common import split_index
    from ..datasets.census import _MONEY, census_test_file, census_train_file, read_census

    params = splits.params
    if params.get("full"):
        train = read_census(census_train_file())
    else:
        rows = read_census(source if source is not None else census_test_file())
        train = rows.take(split_index(len(rows), params["fractions"], params["seed"])[0])
    return FeatureEncoder.from_splits(splits, train, _MONEY)
