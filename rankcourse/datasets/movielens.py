"""MovieLens-1M (GroupLens): one million ratings of 3,900 movies by 6,040 users.

Three files with ``::`` between fields, latin-1 encoded: ``ratings.dat``
(``UserID::MovieID::Rating::Timestamp``), ``users.dat`` (``UserID::Gender::Age::Occupation::Zip-code``)
and ``movies.dat`` (``MovieID::Title::Genres``, genres ``|``-separated). A rating of 4 or 5 counts as a
click. The licence forbids redistribution, so nothing is shipped; ``download=True`` lets the user
fetch the archive from GroupLens into the cache folder (where the network allows, e.g. Colab).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ._common import (
    DataFileError,
    DataSplits,
    DatasetNotAvailableError,
    RawTable,
    cached_splits,
    default_cache_dir,
    download_file,
    numbered_lines,
    open_text,
    split_and_encode,
)

__all__ = ["load_movielens", "read_movielens", "MOVIELENS_URL", "MOVIELENS_CATEGORICAL"]

MOVIELENS_URL = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
MOVIELENS_CATEGORICAL = ("user", "movie", "genre", "gender", "age", "occupation", "zip")
_FILES = {"ratings.dat": ("UserID", "MovieID", "Rating", "Timestamp"),
          "users.dat": ("UserID", "Gender", "Age", "Occupation", "Zip-code"),
          "movies.dat": ("MovieID", "Title", "Genres")}


def _read_dat(path: Path) -> list[tuple[int, list[str]]]:
    fields = _FILES[path.name]
    rows = []
    with open_text(path, encoding="latin-1") as handle:
        for number, line in numbered_lines(handle):
            values = line.split("::")
            if len(values) != len(fields):
                raise DataFileError(path, number, None,
                                    f"expected {len(fields)} '::'-separated fields {fields}, got {len(values)}")
            rows.append((number, values))
    if not rows:
        raise DataFileError(path, None, None, "the file has no records")
    return rows


def read_movielens(folder: str | os.PathLike) -> RawTable:
    """Join the three files of ``folder`` into one raw row per rating; the label is ``rating >= 4``.

    A movie with several genres gets its first listed genre (one id per field in this course).
    """
    folder = Path(folder)
    users = {v[0]: v[1:] for _, v in _read_dat(folder / "users.dat")}
    movies = {v[0]: v[2].split("|")[0] for _, v in _read_dat(folder / "movies.dat")}
    path = folder / "ratings.dat"
    columns: dict[str, list] = {name: [] for name in MOVIELENS_CATEGORICAL}
    clicks = []
    for number, (user, movie, rating, _) in _read_dat(path):
        try:
            stars = int(rating)
        except ValueError:
            raise DataFileError(path, number, "Rating", f"expected an integer 1-5, got {rating!r}") from None
        if not 1 <= stars <= 5:
            raise DataFileError(path, number, "Rating", f"expected an integer 1-5, got {stars}")
        if user not in users:
            raise DataFileError(path, number, "UserID", f"user {user!r} is not in users.dat")
        if movie not in movies:
            raise DataFileError(path, number, "MovieID", f"movie {movie!r} is not in movies.dat")
        gender, age, occupation, zip_code = users[user]
        for name, value in zip(MOVIELENS_CATEGORICAL, (user, movie, movies[movie], gender, age, occupation, zip_code)):
            columns[name].append(value)
        clicks.append(float(stars >= 4))
    return RawTable({k: np.asarray(v, dtype=object) for k, v in columns.items()}, {},
                    {"click": np.asarray(clicks, np.float32)}, str(folder))


def movielens_folder(folder: str | os.PathLike | None, cache_dir: str | os.PathLike | None, download: bool) -> Path:
    """The folder holding the three ``.dat`` files: ``folder``, or ``<cache>/ml-1m`` (downloaded if asked)."""
    if folder is not None:
        return Path(folder)
    target = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "ml-1m"
    if all((target / name).is_file() for name in _FILES):
        return target
    if not download:
        raise DatasetNotAvailableError(
            f"MovieLens-1M is not in the cache. Its licence forbids redistribution, so the course does "
            f"not ship it: call load_movielens(download=True) where the network is available, or download\n"
            f"    {MOVIELENS_URL}\nand unzip ratings.dat, users.dat and movies.dat into\n    {target}"
        )
    archive = download_file(MOVIELENS_URL, target.parent / "ml-1m.zip", check=_check_archive, what="MovieLens-1M")
    with zipfile.ZipFile(archive) as zf:
        for name in _FILES:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            tmp = target / (name + ".part")
            tmp.write_bytes(zf.read(f"ml-1m/{name}"))
            os.replace(tmp, target / name)
    return target


def _check_archive(path: Path) -> None:
    with zipfile.ZipFile(path) as zf:
        missing = [n for n in _FILES if f"ml-1m/{n}" not in zf.namelist()]
    if missing:
        raise DataFileError(path, None, None, f"the archive lacks {missing}")


def load_movielens(
    folder: str | os.PathLike | None = None,
    *,
    download: bool = False,
    seed: int = 0,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    min_count: int = 1,
    cache_dir: str | os.PathLike | None = None,
) -> DataSplits:
    """MovieLens-1M as seeded train/valid/test splits of one task, ``click`` (rating >= 4).

    Args:
        folder: where ``ratings.dat``, ``users.dat`` and ``movies.dat`` are; default ``<cache>/ml-1m``.
        download: fetch the archive from GroupLens into the cache if the files are not there.
        seed, fractions, min_count, cache_dir: as :func:`~rankcourse.datasets.load_criteo`.

    Returns:
        :class:`DataSplits` with 7 categorical fields (user, movie, genre, gender, age, occupation, zip).
    """
    folder = movielens_folder(folder, cache_dir, download)
    sources = [folder / name for name in _FILES]
    for s in sources:
        if not s.is_file():
            raise DatasetNotAvailableError(f"{s}: no such file (MovieLens-1M needs {list(_FILES)} in {folder})")
    params = {"seed": seed, "fractions": list(fractions), "min_count": min_count}

    def build() -> DataSplits:
        return split_and_encode(read_movielens(folder), fractions, seed, min_count, params)

    return cached_splits("movielens", sources, params, cache_dir, build)
