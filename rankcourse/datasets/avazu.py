"""Avazu click logs (the Kaggle "Click-Through Rate Prediction" competition, 2014).

A CSV file with a header: ``id``, ``click``, ``hour`` (``YYMMDDHH``) and 21 anonymised categorical
fields. ``id`` is dropped, ``hour`` becomes two categorical fields, ``hour_of_day`` and ``weekday``.
Kaggle's rules do not allow redistribution, so nothing is shipped and there is no download.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ._common import DataFileError, DataSplits, RawTable, cached_splits, open_text, require_file, split_and_encode

__all__ = ["load_avazu", "read_avazu", "AVAZU_CATEGORICAL"]

_RAW_CATEGORICAL = (
    "C1", "banner_pos", "site_id", "site_domain", "site_category", "app_id", "app_domain", "app_category",
    "device_id", "device_ip", "device_model", "device_type", "device_conn_type",
    "C14", "C15", "C16", "C17", "C18", "C19", "C20", "C21",
)
AVAZU_CATEGORICAL = ("hour_of_day", "weekday") + _RAW_CATEGORICAL
HOW_TO_GET = ("Avazu may not be redistributed: download train.gz from the Kaggle competition "
              "'Click-Through Rate Prediction' (avazu-ctr-prediction) yourself, then pass its path.")


def _hour_fields(value: str, path: Path, number: int) -> tuple[str, str]:
    try:
        when = dt.datetime.strptime(value, "%y%m%d%H")
    except ValueError:
        raise DataFileError(path, number, "hour", f"expected YYMMDDHH, got {value!r}") from None
    return str(when.hour), str(when.weekday())  # weekday: 0 = Monday


def read_avazu(path: str | os.PathLike, n_rows: int | None = None) -> RawTable:
    """Parse the first ``n_rows`` records (all if ``None``) of an Avazu CSV file into raw columns."""
    path = Path(path)
    with open_text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise DataFileError(path, None, None, "the file is empty (no header)")
        missing = [c for c in ("click", "hour", *_RAW_CATEGORICAL) if c not in header]
        if missing:
            raise DataFileError(path, 1, missing[0], f"the header lacks column(s) {missing}")
        col = {name: header.index(name) for name in header}
        labels, cats = [], []
        for values in reader:
            if n_rows is not None and len(labels) >= n_rows:
                break
            number = reader.line_num
            if not values:
                continue
            if len(values) != len(header):
                raise DataFileError(path, number, None, f"expected {len(header)} fields, got {len(values)}")
            if values[col["click"]] not in ("0", "1"):
                raise DataFileError(path, number, "click", f"expected 0 or 1, got {values[col['click']]!r}")
            labels.append(float(values[col["click"]]))
            cats.append(_hour_fields(values[col["hour"]], path, number)
                        + tuple(values[col[c]] or None for c in _RAW_CATEGORICAL))
    if not labels:
        raise DataFileError(path, None, None, "the file has a header but no records")
    table = np.asarray(cats, dtype=object)
    return RawTable({name: table[:, j] for j, name in enumerate(AVAZU_CATEGORICAL)}, {},
                    {"click": np.asarray(labels, np.float32)}, str(path))


def load_avazu(
    path: str | os.PathLike,
    n_rows: int | None = 100_000,
    *,
    seed: int = 0,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    min_count: int = 10,
    cache_dir: str | os.PathLike | None = None,
) -> DataSplits:
    """Avazu as seeded train/valid/test splits of one task, ``click``: 23 categorical fields, no dense.

    Args:
        path: the competition's ``train`` CSV (``.gz`` allowed).
        n_rows: read the first ``n_rows`` records (``None``: all), streaming.
        seed, fractions, min_count, cache_dir: as :func:`~rankcourse.datasets.load_criteo`.
    """
    path = require_file(path, HOW_TO_GET)
    params = {"n_rows": n_rows, "seed": seed, "fractions": list(fractions), "min_count": min_count}

    def build() -> DataSplits:
        return split_and_encode(read_avazu(path, n_rows), fractions, seed, min_count, params)

    return cached_splits("avazu", [path], params, cache_dir, build)
