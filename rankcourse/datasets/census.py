"""UCI Census-Income (KDD): the real data set of the MMoE paper (Ma et al. 2018, §6.3).

Each record is a person from the 1994/1995 Current Population Surveys: 40 attributes, an instance
weight (field 25, dropped: the UCI description says not to use it for classification), and the
income label. The two tasks are those of the paper's first group: ``income`` (income > 50K) and
``never_married`` (marital status is "Never married"); marital status is therefore not a feature.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ._common import (
    DataFileError,
    DataSplits,
    DatasetNotAvailableError,
    RawTable,
    cached_splits,
    default_cache_dir,
    download_file,
    encode_splits,
    numbered_lines,
    open_text,
    split_index,
)

__all__ = ["load_census", "read_census", "CENSUS_COLUMNS", "CENSUS_DENSE", "CENSUS_TRAIN_URL", "SHIPPED_CENSUS_FILE"]

#: The 42 fields of a record, in file order (names from the UCI description, shortened).
CENSUS_COLUMNS = (
    "age", "class_of_worker", "industry_code", "occupation_code", "education", "wage_per_hour",
    "enrolled_in_edu", "marital_status", "major_industry", "major_occupation", "race", "hispanic_origin",
    "sex", "union_member", "unemployment_reason", "employment_status", "capital_gains", "capital_losses",
    "dividends", "tax_filer_status", "prev_region", "prev_state", "household_status", "household_summary",
    "instance_weight", "migration_msa", "migration_region", "migration_within_region", "same_house_1y_ago",
    "migration_sunbelt", "n_employer_persons", "parents_present", "birth_country_father",
    "birth_country_mother", "birth_country_self", "citizenship", "own_business", "veterans_questionnaire",
    "veterans_benefits", "weeks_worked", "year", "income",
)
#: Continuous fields (standardised); the four money amounts are heavy-tailed and go through log(1 + x) first.
CENSUS_DENSE = ("age", "wage_per_hour", "capital_gains", "capital_losses", "dividends", "n_employer_persons",
                "weeks_worked")
_MONEY = ("wage_per_hour", "capital_gains", "capital_losses", "dividends")
_NOT_FEATURES = ("instance_weight", "marital_status", "income")
CENSUS_CATEGORICAL = tuple(c for c in CENSUS_COLUMNS if c not in CENSUS_DENSE + _NOT_FEATURES)
_INCOME_LABELS = {"- 50000.": 0, "50000+.": 1}

#: The training file (199,523 rows) in the UCI archive; fetched only with ``download=True``.
CENSUS_TRAIN_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/census-income-mld/census-income.data.gz"
CENSUS_TRAIN_ROWS = 199_523
#: The test file (99,762 rows), the default source: shipped inside the package (``shipped/``, package
#: data in pyproject.toml), so a wheel or a ``pip install git+...`` on Colab has it too. If it is
#: missing (a build that left package data out), ``download=True`` fetches it into the cache.
SHIPPED_CENSUS_FILE = Path(__file__).resolve().parent / "shipped" / "census-income.test.gz"
CENSUS_TEST_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/census-income-mld/census-income.test.gz"
CENSUS_TEST_ROWS = 99_762
CENSUS_TEST_SHA256 = "5ac4cacd3ca9f1ecb10de1a0a41e4ac68fdc419e3fec190f5c0c6cc03b2ea659"


def read_census(path: str | os.PathLike) -> RawTable:
    """Parse a census file (``.gz`` or plain) into raw columns; errors name the file, line and field.

    pandas reads the file in one fast pass; if anything in it is off, a line-by-line pass finds the
    first bad line and reports it.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, header=None, sep=",", skipinitialspace=True, dtype=object, na_filter=False,
                            encoding="latin-1", skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        frame = None
    if frame is None or not _looks_valid(frame):
        _find_first_error(path)  # raises DataFileError
        raise DataFileError(path, None, None, "could not parse the file")  # pragma: no cover
    frame.columns = list(CENSUS_COLUMNS)
    columns = {name: frame[name].to_numpy(dtype=object) for name in frame.columns}
    dense = {name: pd.to_numeric(pd.Series(columns[name]).where(lambda c: c != "?", "nan")).to_numpy(float)
             for name in CENSUS_DENSE}
    for name in _MONEY:
        dense[name] = np.log1p(np.maximum(dense[name], 0.0))  # amounts are >= 0; the clip is only a guard
    categorical = {name: np.where(columns[name] == "?", None, columns[name]) for name in CENSUS_CATEGORICAL}
    labels = {
        "income": (columns["income"] == "50000+.").astype(np.float32),
        "never_married": (columns["marital_status"] == "Never married").astype(np.float32),
    }
    return RawTable(categorical, dense, labels, str(path))


def _looks_valid(frame: pd.DataFrame) -> bool:
    if frame.shape[1] != len(CENSUS_COLUMNS) or len(frame) == 0 or (frame == "").to_numpy().any():
        return False
    if not frame.iloc[:, -1].isin(list(_INCOME_LABELS)).all():
        return False
    for name in CENSUS_DENSE:
        col = frame.iloc[:, CENSUS_COLUMNS.index(name)]
        if pd.to_numeric(col.where(col != "?", "nan"), errors="coerce").isna().sum() != (col == "?").sum():
            return False
    return True


def _find_first_error(path: Path) -> None:
    """Check the file line by line and raise a :class:`DataFileError` at the first bad line."""
    n_cols, n_rows = len(CENSUS_COLUMNS), 0
    with open_text(path, encoding="latin-1") as handle:
        for number, line in numbered_lines(handle):
            values = [v.strip() for v in line.split(",")]
            if len(values) != n_cols:
                raise DataFileError(path, number, None, f"expected {n_cols} comma-separated fields, got {len(values)}")
            for name, value in zip(CENSUS_COLUMNS, values):
                if value == "":
                    raise DataFileError(path, number, name, "empty value (missing values are written '?')")
                if name in CENSUS_DENSE and value != "?":
                    try:
                        float(value)
                    except ValueError:
                        raise DataFileError(path, number, name, f"expected a number, got {value!r}") from None
            if values[-1] not in _INCOME_LABELS:
                raise DataFileError(path, number, "income",
                                    f"label must be one of {sorted(_INCOME_LABELS)}, got {values[-1]!r}")
            n_rows += 1
    if n_rows == 0:
        raise DataFileError(path, None, None, "the file has no records")


def _check_counts(path: Path, expected_rows: int) -> None:
    """Reject a downloaded file whose row or field counts are not the expected ones."""
    n = 0
    with gzip.open(path, "rt", encoding="latin-1") as handle:
        for number, line in numbered_lines(handle):
            if line.count(",") != len(CENSUS_COLUMNS) - 1:
                raise DataFileError(path, number, None, f"expected {len(CENSUS_COLUMNS)} fields")
            n += 1
    if n != expected_rows:
        raise DataFileError(path, None, None, f"expected {expected_rows} rows, got {n}")


def _check_train_file(path: Path) -> None:
    _check_counts(path, CENSUS_TRAIN_ROWS)


def _check_test_file(path: Path) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != CENSUS_TEST_SHA256:
        raise DataFileError(path, None, None, f"sha256 {digest} differs from the shipped file's {CENSUS_TEST_SHA256}")
    _check_counts(path, CENSUS_TEST_ROWS)


def census_test_file(cache_dir: str | os.PathLike | None = None, download: bool = False) -> Path:
    """The test file shipped in the package, or (where a build left it out) its copy in the cache,
    downloaded from the UCI archive if asked and absent."""
    if SHIPPED_CENSUS_FILE.is_file():
        return SHIPPED_CENSUS_FILE
    dest = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "census-income" / "census-income.test.gz"
    if dest.is_file():
        return dest
    if not download:
        raise DatasetNotAvailableError(
            f"the Census-Income test file is not shipped with this installation. Call "
            f"load_census(download=True) where the network is available, or download\n    {CENSUS_TEST_URL}\n"
            f"and save it as\n    {dest}"
        )
    return download_file(CENSUS_TEST_URL, dest, check=_check_test_file, what="the Census-Income test file")


def census_train_file(cache_dir: str | os.PathLike | None = None, download: bool = False) -> Path:
    """The path of the UCI training file in the cache folder, downloading it if asked and absent."""
    dest = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "census-income" / "census-income.data.gz"
    if dest.is_file():
        return dest
    if not download:
        raise DatasetNotAvailableError(
            f"the Census-Income training file is not in the cache. Call load_census(download=True) where "
            f"the network is available, or download\n    {CENSUS_TRAIN_URL}\nand save it as\n    {dest}"
        )
    return download_file(CENSUS_TRAIN_URL, dest, check=_check_train_file, what="the Census-Income training file")


def load_census(
    source: str | os.PathLike | None = None,
    *,
    full: bool = False,
    download: bool = False,
    seed: int = 0,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    min_count: int = 5,
    statistics_from: str = "train",
    exclude: Sequence[str] = (),
    cache_dir: str | os.PathLike | None = None,
) -> DataSplits:
    """Census-Income as seeded train/valid/test splits with the tasks ``("income", "never_married")``.

    Args:
        source: a census file to split three ways; default the shipped test file (99,762 rows;
            fetched into the cache with ``download=True`` where the package was installed without it).
        full: use the UCI training file (199,523 rows, from the cache; see ``download``) as the
            training split and divide the test file into validation and test halves by ``seed``.
        download: fetch the files that are needed and not there (the training file with ``full``)
            into ``cache_dir``; nothing is downloaded when they are present.
        seed: seeds the split.
        fractions: train/valid/test fractions of ``source`` (ignored with ``full``).
        min_count: values seen fewer times in the training split share the field's OOV id.
        statistics_from: ``"train"`` (the right way) or ``"all"`` (vocabularies and means/stds from
            every split: the leak, for measuring it).
        exclude: categorical fields to leave out of the inputs; Ma et al. (§6.3) leave out
            ``("education",)`` as well as marital status (never a feature here: it is a label).
        cache_dir: where the downloaded file and the preprocessed arrays are kept (default
            ``$RANKCOURSE_DATA_DIR`` or ``~/.cache/rankcourse``); nothing is written elsewhere.

    Returns:
        :class:`DataSplits`: 7 dense fields (standardised; money amounts as ``log(1 + x)`` first) and 32
        categorical fields (id 0 = rare or unseen in training, id 1 = missing ``?``).
    """
    unknown = [name for name in exclude if name not in CENSUS_CATEGORICAL]
    if unknown:
        raise ValueError(f"exclude: {unknown} are not categorical census fields; "
                         f"choose from {list(CENSUS_CATEGORICAL)}")
    test_file = Path(source) if source is not None else census_test_file(cache_dir, download)
    if not test_file.is_file():
        raise DatasetNotAvailableError(f"census file not found: {test_file}")
    sources = [test_file] + ([census_train_file(cache_dir, download)] if full else [])
    params = {"full": full, "seed": seed, "fractions": list(fractions), "min_count": min_count,
              "statistics_from": statistics_from, "exclude": sorted(exclude)}

    def read(path: Path) -> RawTable:
        rows = read_census(path)
        for name in exclude:
            del rows.categorical[name]
        return rows

    def build() -> DataSplits:
        rows = read(test_file)
        if full:
            perm = np.random.default_rng(seed).permutation(len(rows))
            half = len(rows) // 2
            parts = [read(sources[1]), rows.take(np.sort(perm[:half])), rows.take(np.sort(perm[half:]))]
        else:
            parts = [rows.take(i) for i in split_index(len(rows), fractions, seed)]
        return encode_splits(parts, min_count, statistics_from, params)

    return cached_splits("census", sources, params, cache_dir, build)
