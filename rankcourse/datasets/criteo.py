"""Criteo display-advertising logs: the Kaggle challenge's ``train.txt`` and the 1TB logs' day files.

One impression per line, tab-separated, no header: the click label, 13 integer count features
``I1..I13`` and 26 categorical features ``C1..C26`` (hashed to 8 hex digits); any field may be empty
(missing). The licence allows research use but not redistribution, so nothing is shipped and there is
no download: get the files from Criteo's or Kaggle's pages and pass their path.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..checks import check_positive_int
from ._common import (
    DataFileError,
    DataSplits,
    RawTable,
    cached_splits,
    numbered_lines,
    open_text,
    require_file,
    split_and_encode,
)

__all__ = ["load_criteo", "read_criteo", "CRITEO_DENSE", "CRITEO_CATEGORICAL"]

CRITEO_DENSE = tuple(f"I{i}" for i in range(1, 14))
CRITEO_CATEGORICAL = tuple(f"C{i}" for i in range(1, 27))
HOW_TO_GET = ("The Criteo logs may not be redistributed: download the Kaggle Display Advertising Challenge "
              "data (train.txt) or a day file of the Criteo 1TB Click Logs from Criteo's pages yourself, "
              "then pass its path.")
_N_FIELDS = 1 + len(CRITEO_DENSE) + len(CRITEO_CATEGORICAL)


def _select_lines(path: Path, n_rows: int | None, sample_seed: int | None) -> list[tuple[int, str]]:
    """The first ``n_rows`` lines, or (``sample_seed`` given) a uniform seeded sample of ``n_rows``
    lines by reservoir sampling: one pass, memory for ``n_rows`` lines only."""
    kept: list[tuple[int, str]] = []
    with open_text(path) as handle:
        lines = numbered_lines(handle)
        if n_rows is None or sample_seed is None:
            for item in lines:
                if n_rows is not None and len(kept) >= n_rows:
                    break
                kept.append(item)
            return kept
        rng = np.random.default_rng(sample_seed)
        for seen, item in enumerate(lines):
            if seen < n_rows:
                kept.append(item)
            else:
                j = int(rng.integers(0, seen + 1))
                if j < n_rows:
                    kept[j] = item
    return sorted(kept)  # file order, so the sample does not depend on the reservoir's slots


def signed_log1p(x: float) -> float:
    """``sign(x) * log(1 + |x|)``: ``log(1 + x)`` for the counts, and the few negative values
    (``I2`` has some) keep their sign instead of becoming NaN."""
    return math.copysign(math.log1p(abs(x)), x)


def read_criteo(path: str | os.PathLike, n_rows: int | None = None, sample_seed: int | None = None) -> RawTable:
    """Parse Criteo lines into raw columns (counts already through :func:`signed_log1p`)."""
    path = Path(path)
    check_positive_int(n_rows, "n_rows", allow_none=True)
    lines = _select_lines(path, n_rows, sample_seed)
    if not lines:
        raise DataFileError(path, None, None, "the file has no records")
    n = len(lines)
    labels = np.empty(n, np.float32)
    dense = np.full((n, len(CRITEO_DENSE)), np.nan)
    categorical = np.empty((n, len(CRITEO_CATEGORICAL)), dtype=object)
    for r, (number, line) in enumerate(lines):
        values = line.split("\t")
        if len(values) != _N_FIELDS:
            raise DataFileError(path, number, None, f"expected {_N_FIELDS} tab-separated fields, got {len(values)}")
        if values[0] not in ("0", "1"):
            raise DataFileError(path, number, "label", f"expected 0 or 1, got {values[0]!r}")
        labels[r] = float(values[0])
        for j, v in enumerate(values[1:14]):
            if v:
                try:
                    dense[r, j] = signed_log1p(int(v))
                except ValueError:
                    raise DataFileError(path, number, CRITEO_DENSE[j],
                                        f"expected an integer count, got {v!r}") from None
        categorical[r] = [v or None for v in values[14:]]
    return RawTable(
        {name: categorical[:, j] for j, name in enumerate(CRITEO_CATEGORICAL)},
        {name: dense[:, j] for j, name in enumerate(CRITEO_DENSE)},
        {"click": labels},
        str(path),
    )


def load_criteo(
    path: str | os.PathLike,
    n_rows: int | None = 100_000,
    *,
    sample_seed: int | None = None,
    seed: int = 0,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    min_count: int = 10,
    cache_dir: str | os.PathLike | None = None,
) -> DataSplits:
    """Criteo logs as seeded train/valid/test splits of one task, ``click``.

    Args:
        path: ``train.txt`` of the Kaggle challenge or a day file of the 1TB logs (``.gz`` allowed).
        n_rows: rows to read (``None``: all); the file is streamed, never read whole into memory.
        sample_seed: ``None`` reads the first ``n_rows`` lines; an int draws a uniform sample of
            ``n_rows`` lines from the whole file with this seed.
        seed: seeds the train/valid/test split.
        fractions: train/valid/test fractions.
        min_count: categorical values seen fewer times in training share the OOV id 0.
        cache_dir: where the preprocessed arrays are cached (see :func:`cached_splits`).

    Returns:
        :class:`DataSplits` with 13 dense fields ``I1..I13`` (``sign(x) log(1 + |x|)``, then
        standardised; missing -> 0) and 26 categorical fields ``C1..C26`` (missing -> id 1).
    """
    path = require_file(path, HOW_TO_GET)
    params = {"n_rows": n_rows, "sample_seed": sample_seed, "seed": seed, "fractions": list(fractions),
              "min_count": min_count}

    def build() -> DataSplits:
        return split_and_encode(read_criteo(path, n_rows, sample_seed), fractions, seed, min_count, params)

    return cached_splits("criteo", [path], params, cache_dir, build)
