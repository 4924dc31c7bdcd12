"""What the real-data loaders share: parse errors, vocabularies, standardisation, splits, the cache
of preprocessed arrays, and the atomic download.

A loader reads its raw file into a :class:`RawTable` (strings for categorical fields, floats with NaN
for missing dense values, 0/1 labels), and :func:`encode_splits` turns that into seeded train/valid/test
:class:`~rankcourse.data.tabular.TabularData` whose vocabularies and statistics come from the
training rows only.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import numbers
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..data.tabular import TabularData
from ..schema import FeatureSchema, SparseField

__all__ = [
    "DataFileError",
    "DatasetNotAvailableError",
    "RawTable",
    "DataSplits",
    "Vocabulary",
    "vocabulary_keys",
    "Standardizer",
    "OOV_ID",
    "MISSING_ID",
    "default_cache_dir",
    "open_text",
    "encode_splits",
    "split_and_encode",
    "cached_splits",
    "download_file",
]

#: Id of values that are rare or unseen in the training rows (every field has it).
OOV_ID = 0
#: Id of a missing value (empty field, or the data set's missing marker such as ``?``).
MISSING_ID = 1

CACHE_ENV_VAR = "RANKCOURSE_DATA_DIR"
#: Version of the preprocessed-array format and of the shared encoding code (vocabulary keys,
#: standardisation, splits). It is part of the cache key: raise it whenever a change here would
#: give other arrays, so that old cache files are not silently reused. A loader whose own parsing
#: changes passes its own ``code_version`` to :func:`cached_splits`.
CACHE_FORMAT_VERSION = 2


# --------------------------------------------------------------------------- errors
class DataFileError(ValueError):
    """A raw data file does not have the expected format; names the file, line and field."""

    def __init__(self, path: str | os.PathLike, line: int | None, field_name: str | None, problem: str) -> None:
        self.path, self.line, self.field_name, self.problem = str(path), line, field_name, problem
        where = f"{self.path}" + (f", line {line}" if line is not None else "")
        what = f", field {field_name!r}" if field_name is not None else ""
        super().__init__(f"{where}{what}: {problem}")


class DatasetNotAvailableError(FileNotFoundError):
    """The data file is neither on disk nor downloadable here; the message says what to fetch."""


# --------------------------------------------------------------------------- files
def default_cache_dir() -> Path:
    """``$RANKCOURSE_DATA_DIR`` if set, else ``~/.cache/rankcourse``."""
    value = os.environ.get(CACHE_ENV_VAR, "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "rankcourse"


def open_text(path: str | os.PathLike, encoding: str = "utf-8") -> io.TextIOBase:
    """Open a text file for reading, decompressing it on the fly when its name ends in ``.gz``."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotAvailableError(f"{path}: no such file")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding, newline="")
    return open(path, encoding=encoding, newline="")


def require_file(path: str | os.PathLike, how_to_get: str) -> Path:
    """``Path(path)`` if it is a file, else a :class:`DatasetNotAvailableError` saying how to get it."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotAvailableError(f"{path}: no such file. {how_to_get}")
    return path


def numbered_lines(handle: io.TextIOBase) -> Iterator[tuple[int, str]]:
    """``(1-based line number, line without its line ending)``, skipping blank lines."""
    for number, line in enumerate(handle, start=1):
        line = line.rstrip("\r\n")
        if line.strip():
            yield number, line


# --------------------------------------------------------------------------- raw rows
@dataclass
class RawTable:
    """Parsed but not yet encoded rows.

    Attributes:
        categorical: field name -> ``(n,)`` array of strings; ``None`` marks a missing value.
        dense: field name -> ``(n,)`` float64 array; NaN marks a missing value.
        labels: task name -> ``(n,)`` array of 0/1.
        source: where the rows came from (for messages).
    """

    categorical: dict[str, np.ndarray]
    dense: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    source: str = ""

    def __len__(self) -> int:
        return len(next(iter(self.labels.values())))

    def take(self, index: np.ndarray) -> "RawTable":
        pick = lambda cols: {k: v[index] for k, v in cols.items()}  # noqa: E731
        return RawTable(pick(self.categorical), pick(self.dense), pick(self.labels), self.source)


# --------------------------------------------------------------------------- vocabularies
class Vocabulary:
    """Ids for one categorical field, built on training values only.

    Id :data:`OOV_ID` (0) is for values seen fewer than ``min_count`` times in the training rows or
    not at all; :data:`MISSING_ID` (1) is for missing values; kept values get ids 2, 3, ... in order
    of decreasing training count (ties by value, so the ids do not depend on row order).

    Build and encode share one key rule, :func:`vocabulary_keys`: a value's key is its text, with
    a whole number written without a decimal point (``7``, ``7.0`` and ``"7"`` are one value), so a
    column of ints, floats or strings encodes exactly the values it was built on.
    """

    def __init__(self, values: Sequence[str]) -> None:
        self.values = list(values)
        self.index = {v: i + 2 for i, v in enumerate(self.values)}

    @classmethod
    def build(cls, column: np.ndarray, min_count: int = 1) -> "Vocabulary":
        counts = vocabulary_keys(column).dropna().value_counts()
        kept = counts[counts >= min_count]
        order = sorted(zip(-kept.to_numpy(), kept.index))
        return cls([str(v) for _, v in order])

    @property
    def size(self) -> int:
        """Number of ids, OOV and missing included."""
        return len(self.values) + 2

    def encode(self, column: np.ndarray) -> np.ndarray:
        """``(n,)`` int64 ids."""
        keys = vocabulary_keys(column)
        ids = keys.map(self.index).fillna(OOV_ID).to_numpy(np.int64, copy=True)
        ids[keys.isna().to_numpy()] = MISSING_ID
        return ids


def _key_of(value: Any) -> Any:
    if pd.isna(value):
        return None
    if isinstance(value, (bool, np.bool_, str)):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        return str(int(value)) if np.isfinite(value) and value.is_integer() else str(value)
    return str(value)


def vocabulary_keys(column: np.ndarray | Sequence[Any]) -> pd.Series:
    """The key of each value of ``column`` (an object ``Series``; ``None`` for a missing value).

    The key is the value's text, and a whole number is written without a decimal point, so that
    ``7``, ``7.0`` and ``"7"`` share a key: pandas reads an int column with a gap as floats.
    """
    values = pd.Series(np.asarray(column) if not isinstance(column, pd.Series) else column.to_numpy())
    if values.dtype.kind in "iub":
        return values.astype(str).astype(object)
    if values.dtype.kind == "f":
        x = values.to_numpy(np.float64)
        whole = np.isfinite(x) & (x == np.floor(x))
        keys = np.where(whole, np.where(whole, x, 0).astype(np.int64).astype(str), x.astype(str))
        out = pd.Series(keys, dtype=object)
        out[np.isnan(x)] = None
        return out
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values.where(values.notna(), None).astype(object)  # the loaders' fast path
    return values.map(_key_of).astype(object)


class Standardizer:
    """``(x - mean) / std`` with the training rows' mean and standard deviation; missing -> 0
    (the training mean), so a missing value carries no signal beyond its field's other inputs."""

    def __init__(self, mean: float, std: float) -> None:
        self.mean, self.std = float(mean), float(std)

    @classmethod
    def fit(cls, column: np.ndarray) -> "Standardizer":
        present = column[~np.isnan(column)]
        if len(present) == 0:
            return cls(0.0, 1.0)
        std = float(present.std())
        return cls(float(present.mean()), std if std > 0 else 1.0)  # a constant column stays at 0

    def transform(self, column: np.ndarray) -> np.ndarray:
        out = (column - self.mean) / self.std
        return np.where(np.isnan(out), 0.0, out).astype(np.float32)


# --------------------------------------------------------------------------- splits
@dataclass
class DataSplits:
    """Seeded train/valid/test splits of a real data set, encoded with training-split statistics.

    Attributes:
        train, valid, test: :class:`~rankcourse.data.tabular.TabularData` (``true_prob`` is ``None``:
            on real data nobody knows the click probability).
        vocabularies: field -> the kept values (id ``i + 2`` is ``vocabularies[field][i]``).
        params: the arguments the splits were made with.
    """

    train: TabularData
    valid: TabularData
    test: TabularData
    vocabularies: dict[str, list[str]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def schema(self) -> FeatureSchema:
        return self.train.schema

    @property
    def splits(self) -> tuple[TabularData, TabularData, TabularData]:
        """``(train, valid, test)``."""
        return self.train, self.valid, self.test

    def oov_rate(self, split: str = "test") -> dict[str, float]:
        """Per field, the fraction of ``split``'s rows whose value got the OOV id."""
        data = getattr(self, split)
        return {f.name: float((data.sparse[:, i] == OOV_ID).float().mean()) for i, f in enumerate(self.schema.sparse)}


def split_index(n: int, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """A seeded random partition of ``range(n)`` into ``len(fractions)`` parts."""
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(
            f"fractions must be three positive numbers (train, valid, test) summing to 1, got {tuple(fractions)}"
        )
    perm = np.random.default_rng(seed).permutation(n)
    bounds = np.round(np.cumsum([0.0, *fractions]) * n).astype(int)
    parts = [np.sort(perm[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    for name, part in zip(("train", "valid", "test"), parts):
        if len(part) == 0:
            raise ValueError(f"the {name} split is empty: {n} rows are too few for fractions {tuple(fractions)}")
    return parts


def encode_splits(
    parts: Sequence[RawTable],
    min_count: int = 1,
    statistics_from: str = "train",
    params: Mapping[str, Any] | None = None,
) -> DataSplits:
    """Encode raw ``(train, valid, test)`` rows: vocabularies and dense statistics from ``train``.

    ``statistics_from="all"`` builds them on all three parts instead: that is the leak a held-out
    split exists to prevent, offered only so that a chapter can measure it.
    """
    if statistics_from not in ("train", "all"):
        raise ValueError(f"statistics_from must be 'train' or 'all', got {statistics_from!r}")
    train = parts[0]
    fit_rows = train if statistics_from == "train" else _concat(parts)
    vocabs = {k: Vocabulary.build(v, min_count) for k, v in fit_rows.categorical.items()}
    scalers = {k: Standardizer.fit(v) for k, v in fit_rows.dense.items()}
    schema = FeatureSchema(
        dense=tuple(train.dense), sparse=tuple(SparseField(k, vocabs[k].size) for k in train.categorical)
    )
    tasks = tuple(train.labels)
    out = []
    for raw in parts:
        n = len(raw)
        dense = np.zeros((n, 0), np.float32)
        if raw.dense:
            dense = np.stack([scalers[k].transform(v) for k, v in raw.dense.items()], 1)
        sparse = np.zeros((n, 0), np.int64)
        if raw.categorical:
            sparse = np.stack([vocabs[k].encode(v) for k, v in raw.categorical.items()], 1)
        labels = np.stack([raw.labels[t] for t in tasks], 1).astype(np.float32)
        out.append(TabularData(schema, dense, sparse, labels, None, tasks, ("binary",) * len(tasks)))
    return DataSplits(*out, vocabularies={k: v.values for k, v in vocabs.items()}, params=dict(params or {}))


def _concat(parts: Sequence[RawTable]) -> RawTable:
    def cat(name: str) -> dict[str, np.ndarray]:
        return {k: np.concatenate([getattr(p, name)[k] for p in parts]) for k in getattr(parts[0], name)}

    return RawTable(cat("categorical"), cat("dense"), cat("labels"), parts[0].source)


def split_and_encode(rows: RawTable, fractions: Sequence[float], seed: int, min_count: int,
                     params: Mapping[str, Any]) -> DataSplits:
    """Seeded train/valid/test split of ``rows``, encoded with training-split vocabularies and statistics."""
    return encode_splits([rows.take(i) for i in split_index(len(rows), fractions, seed)], min_count, "train", params)


# --------------------------------------------------------------------------- cache
def _cache_key(kind: str, sources: Sequence[Path], params: Mapping[str, Any], code_version: int = 0) -> str:
    stamp = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in sources]
    blob = json.dumps({"kind": kind, "sources": stamp, "params": params, "format": CACHE_FORMAT_VERSION,
                       "code": code_version}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _save(path: Path, splits: DataSplits) -> None:
    arrays: dict[str, np.ndarray] = {}
    for name, data in zip(("train", "valid", "test"), splits.splits):
        arrays[f"{name}_dense"], arrays[f"{name}_sparse"] = data.dense.numpy(), data.sparse.numpy()
        arrays[f"{name}_labels"] = data.labels.numpy()
    meta = {"dense": list(splits.schema.dense), "sparse": [[f.name, f.vocab_size] for f in splits.schema.sparse],
            "tasks": list(splits.train.task_names), "vocabularies": splits.vocabularies, "params": splits.params}
    arrays["meta"] = np.frombuffer(json.dumps(meta, default=str).encode(), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)  # a reader never sees a half-written cache file
    finally:
        if os.path.exists(tmp):  # the write failed: no half-written file stays behind
            os.unlink(tmp)


def _load(path: Path) -> DataSplits:
    with np.load(path) as arrays:
        meta = json.loads(arrays["meta"].tobytes().decode())
        sparse = tuple(SparseField(n, int(v)) for n, v in meta["sparse"])
        schema = FeatureSchema(dense=tuple(meta["dense"]), sparse=sparse)
        tasks = tuple(meta["tasks"])
        parts = [TabularData(schema, arrays[f"{s}_dense"], arrays[f"{s}_sparse"], arrays[f"{s}_labels"], None,
                             tasks, ("binary",) * len(tasks)) for s in ("train", "valid", "test")]
    return DataSplits(*parts, vocabularies=meta["vocabularies"], params=meta["params"])


def cached_splits(
    kind: str, sources: Sequence[Path], params: Mapping[str, Any], cache_dir: Path | None,
    build: Callable[[], DataSplits], code_version: int = 0,
) -> DataSplits:
    """Return the splits stored for ``(kind, sources, params)`` in ``cache_dir``, or build and store them.

    The key includes each source's path, size and modification time, so an edited file is re-read,
    and :data:`CACHE_FORMAT_VERSION` and the loader's ``code_version``, so changed preprocessing
    code does not reuse old arrays.
    ``cache_dir=None`` uses :func:`default_cache_dir`; nothing is written anywhere else.
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / "preprocessed" / f"{kind}-{_cache_key(kind, sources, params, code_version)}.npz"
    if path.is_file():
        return _load(path)
    splits = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(path, splits)
    return splits


# --------------------------------------------------------------------------- download
def download_file(
    url: str,
    dest: Path,
    check: Callable[[Path], None] | None = None,
    what: str = "the file",
    opener: Callable[..., Any] = urllib.request.urlopen,
    chunk: int = 1 << 16,
) -> Path:
    """Download ``url`` to ``dest`` atomically: into a temporary file beside ``dest``, then
    ``check(temporary path)`` (raise to reject it), then rename. A failed or interrupted download
    leaves no file at ``dest``. Without the network raises :class:`DatasetNotAvailableError` saying
    what to download, from where and where to put it.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            response = opener(url, timeout=60)
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise DatasetNotAvailableError(
                f"could not download {what} ({err}). Without the network, download it yourself from\n"
                f"    {url}\nand save it as\n    {dest}\n(or pass its path as `source`)."
            ) from None
        with response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
                while block := response.read(chunk):
                    out.write(block)
                    bar.update(len(block))
        if check is not None:
            check(tmp)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest
