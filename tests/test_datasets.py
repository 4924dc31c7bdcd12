"""The real-data loaders, on small files written here in each raw format (no real rows copied)."""

from __future__ import annotations

import gzip
import hashlib
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from rankcourse.datasets import (
    MISSING_ID,
    OOV_ID,
    DataFileError,
    DatasetNotAvailableError,
    load_avazu,
    load_census,
    load_criteo,
    load_movielens,
)
from rankcourse.datasets import _common, avazu, census, criteo
from rankcourse.datasets.census import CENSUS_COLUMNS, CENSUS_DENSE, SHIPPED_CENSUS_FILE

SHIPPED_SHA256 = "5ac4cacd3ca9f1ecb10de1a0a41e4ac68fdc419e3fec190f5c0c6cc03b2ea659"


# --------------------------------------------------------------------------- fixture writers
def census_record(i: int, rng: np.random.Generator, **override: str) -> list[str]:
    values = {}
    for name in CENSUS_COLUMNS:
        if name in CENSUS_DENSE:
            values[name] = str(int(rng.integers(0, 90)))
        else:
            values[name] = f"{name}-{int(rng.integers(0, 3))}"
    values["instance_weight"] = f"{1000 + i}.5"
    values["marital_status"] = "Never married" if i % 3 == 0 else "Married-civilian spouse present"
    values["income"] = "50000+." if i % 4 == 0 else "- 50000."
    values.update(override)
    return [values[name] for name in CENSUS_COLUMNS]


def write_census(path: Path, n: int = 40, seed: int = 0, gz: bool = True, extra: list[str] | None = None) -> Path:
    rng = np.random.default_rng(seed)
    lines = [", ".join(census_record(i, rng)) for i in range(n)] + (extra or [])
    text = "\n".join(lines) + ("\n" if lines else "")
    if gz:
        with gzip.open(path, "wt", encoding="latin-1") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="latin-1")
    return path


def criteo_line(rng: np.random.Generator, label: str | None = None, **override: str) -> str:
    values = [label if label is not None else str(int(rng.integers(0, 2)))]
    values += ["" if rng.random() < 0.2 else str(int(rng.integers(-2, 500))) for _ in range(13)]
    values += ["" if rng.random() < 0.1 else f"{int(rng.integers(0, 6)):08x}" for _ in range(26)]
    for key, v in override.items():
        values[int(key[1:])] = v   # "f3" -> field index 3
    return "\t".join(values)


def write_criteo(path: Path, n: int = 60, seed: int = 0, extra: list[str] | None = None) -> Path:
    rng = np.random.default_rng(seed)
    lines = [criteo_line(rng) for _ in range(n)] + (extra or [])
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    return path


AVAZU_HEADER = ("id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,app_category,"
                "device_id,device_ip,device_model,device_type,device_conn_type,C14,C15,C16,C17,C18,C19,C20,C21")


def avazu_line(i: int, rng: np.random.Generator, click: str | None = None, hour: str | None = None) -> str:
    cats = [f"{int(rng.integers(0, 4)):x}a" for _ in range(21)]
    return ",".join([str(10_000 + i), click if click is not None else str(i % 2),
                     hour if hour is not None else f"141021{i % 24:02d}", *cats])


def write_avazu(path: Path, n: int = 50, seed: int = 0, extra: list[str] | None = None) -> Path:
    rng = np.random.default_rng(seed)
    path.write_text("\n".join([AVAZU_HEADER] + [avazu_line(i, rng) for i in range(n)] + (extra or [])) + "\n")
    return path


def write_movielens(folder: Path, n_users: int = 6, n_movies: int = 5, extra_rating: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    users = [f"{u}::{'F' if u % 2 else 'M'}::{(18, 25, 35)[u % 3]}::{u % 4}::{10000 + u}"
             for u in range(1, n_users + 1)]
    movies = [f"{m}::Caf\u00e9 Story {m} (199{m})::{('Comedy|Drama', 'Drama', 'Action|Thriller')[m % 3]}"
              for m in range(1, n_movies + 1)]
    ratings = [f"{u}::{m}::{(u + m) % 5 + 1}::97830{u}{m}"
               for u in range(1, n_users + 1) for m in range(1, n_movies + 1)]
    if extra_rating is not None:
        ratings.append(extra_rating)
    for name, lines in (("users.dat", users), ("movies.dat", movies), ("ratings.dat", ratings)):
        (folder / name).write_text("\n".join(lines) + "\n", encoding="latin-1")
    return folder


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- shared pieces
def test_vocabulary_sends_rare_and_unseen_values_to_oov_and_missing_to_its_own_id():
    train = np.array(["a", "a", "a", "b", "b", "c", None], dtype=object)
    vocab = _common.Vocabulary.build(train, min_count=2)
    assert vocab.values == ["a", "b"]          # most frequent first; "c" (seen once) is rare
    ids = vocab.encode(np.array(["a", "b", "c", "z", None], dtype=object))
    assert ids.tolist() == [2, 3, OOV_ID, OOV_ID, MISSING_ID]
    assert vocab.size == 4


def test_standardizer_uses_training_statistics_and_maps_missing_to_zero():
    scaler = _common.Standardizer.fit(np.array([1.0, 3.0, np.nan]))
    out = scaler.transform(np.array([1.0, 3.0, 5.0, np.nan]))
    np.testing.assert_allclose(out, [-1.0, 1.0, 3.0, 0.0])


def test_data_file_error_names_file_line_and_field(tmp_path):
    err = DataFileError(tmp_path / "x.txt", 7, "I3", "expected an integer count, got 'a'")
    assert "x.txt" in str(err) and "line 7" in str(err) and "'I3'" in str(err)


# --------------------------------------------------------------------------- census
def test_shipped_census_file_has_its_checksum_and_loads_with_the_papers_tasks(tmp_path):
    assert hashlib.sha256(SHIPPED_CENSUS_FILE.read_bytes()).hexdigest() == SHIPPED_SHA256
    ds = load_census(cache_dir=tmp_path)
    assert sum(len(s) for s in ds.splits) == 99_762
    assert ds.train.task_names == ("income", "never_married")
    names = set(ds.schema.dense) | {f.name for f in ds.schema.sparse}
    assert not names & {"instance_weight", "marital_status", "income"}
    assert len(names) == 39   # 42 columns less weight, marital status and the label
    rates = torch.cat([s.labels for s in ds.splits]).sum(0)
    assert rates.tolist() == [6_186.0, 43_143.0]   # the counts in data/README.md


def test_census_vocabulary_and_statistics_come_from_the_training_split(tmp_path):
    path = write_census(tmp_path / "c.gz", n=60)
    ds = load_census(path, seed=1, min_count=1, cache_dir=tmp_path / "cache")
    torch.testing.assert_close(ds.train.dense.mean(0), torch.zeros(len(CENSUS_DENSE)), atol=1e-5, rtol=0)
    assert not torch.allclose(ds.test.dense.mean(0), torch.zeros(len(CENSUS_DENSE)), atol=1e-3)
    leaky = load_census(path, seed=1, min_count=1, statistics_from="all", cache_dir=tmp_path / "cache")
    assert not torch.equal(leaky.train.dense, ds.train.dense)


def test_census_rare_value_gets_the_oov_id_and_question_mark_the_missing_id(tmp_path):
    rng = np.random.default_rng(0)
    rows = [census_record(i, rng, education="Common") for i in range(30)]
    rows[0][CENSUS_COLUMNS.index("education")] = "Rare-doctorate"   # seen once: below min_count=2
    rows[1][CENSUS_COLUMNS.index("education")] = "?"
    path = tmp_path / "c.txt"
    path.write_text("\n".join(", ".join(r) for r in rows) + "\n", encoding="latin-1")
    ds = load_census(path, seed=0, min_count=2, cache_dir=tmp_path / "cache")
    col = ds.schema.sparse_index("education")
    assert ds.vocabularies["education"] == ["Common"]
    ids = sorted(torch.cat([s.sparse[:, col] for s in ds.splits]).tolist())
    assert ids == [OOV_ID, MISSING_ID] + [2] * 28


def test_census_exclude_leaves_education_out_as_the_paper_did(tmp_path):
    path = write_census(tmp_path / "c.gz", n=60)
    kept = load_census(path, seed=1, cache_dir=tmp_path / "cache")
    paper = load_census(path, seed=1, exclude=("education",), cache_dir=tmp_path / "cache")
    names = [f.name for f in paper.schema.sparse]
    assert "education" not in names and "education" in [f.name for f in kept.schema.sparse]
    assert paper.schema.n_fields == kept.schema.n_fields - 1
    assert torch.equal(paper.test.labels, kept.test.labels)   # same rows, same split
    with pytest.raises(ValueError, match="age"):               # dense, or unknown: named
        load_census(path, exclude=("age",), cache_dir=tmp_path / "cache")


def test_census_split_is_seeded(tmp_path):
    path = write_census(tmp_path / "c.gz", n=50)
    a = load_census(path, seed=3, cache_dir=tmp_path / "a")
    b = load_census(path, seed=3, cache_dir=tmp_path / "b")
    c = load_census(path, seed=4, cache_dir=tmp_path / "c")
    assert torch.equal(a.test.dense, b.test.dense)
    assert not torch.equal(a.test.dense, c.test.dense)


@pytest.mark.parametrize(
    "bad_line, field, line_no",
    [
        ("1, 2, 3", None, 41),
        (", ".join(census_record(0, np.random.default_rng(0), age="forty")), "age", 41),
        (", ".join(census_record(0, np.random.default_rng(0), income="maybe")), "income", 41),
    ],
    ids=["wrong-field-count", "non-numeric-age", "bad-label"],
)
def test_census_malformed_line_is_reported_with_file_line_and_field(tmp_path, bad_line, field, line_no):
    path = write_census(tmp_path / "bad.gz", n=40, extra=[bad_line])
    with pytest.raises(DataFileError) as info:
        load_census(path, cache_dir=tmp_path / "cache")
    assert info.value.line == line_no and info.value.field_name == field
    assert "bad.gz" in str(info.value) and f"line {line_no}" in str(info.value)


def test_census_empty_file_is_an_error_naming_the_file(tmp_path):
    path = write_census(tmp_path / "empty.gz", n=0)
    with pytest.raises(DataFileError, match="empty.gz.*no records"):
        load_census(path, cache_dir=tmp_path / "cache")


def test_second_call_reuses_the_cached_arrays_without_parsing(tmp_path, monkeypatch):
    path = write_census(tmp_path / "c.gz", n=40)
    first = load_census(path, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(census, "read_census", lambda *_: pytest.fail("the file was parsed again"))
    second = load_census(path, cache_dir=tmp_path / "cache")
    for a, b in zip(first.splits, second.splits):
        assert torch.equal(a.dense, b.dense) and torch.equal(a.sparse, b.sparse) and torch.equal(a.labels, b.labels)
    assert second.vocabularies == first.vocabularies


def test_loading_writes_only_inside_the_cache_folder(tmp_path, monkeypatch):
    data_dir, cache_dir, default_dir = tmp_path / "data", tmp_path / "cache", tmp_path / "default"
    data_dir.mkdir()
    monkeypatch.setenv("RANKCOURSE_DATA_DIR", str(default_dir))
    write_census(data_dir / "c.gz")
    write_criteo(data_dir / "criteo.txt")
    before = files_under(tmp_path)
    load_census(data_dir / "c.gz", cache_dir=cache_dir)
    load_criteo(data_dir / "criteo.txt", cache_dir=cache_dir)
    new = files_under(tmp_path) - before
    assert new and all(cache_dir in p.parents for p in new)
    assert not default_dir.exists()


def test_census_full_offline_says_what_to_download_from_where_and_where_to_put_it(tmp_path):
    with pytest.raises(DatasetNotAvailableError) as info:
        load_census(full=True, cache_dir=tmp_path)
    message = str(info.value)
    assert census.CENSUS_TRAIN_URL in message
    assert str(tmp_path / "census-income" / "census-income.data.gz") in message


def test_census_download_without_network_gives_the_same_guidance(tmp_path):
    def offline(url, timeout):
        raise urllib.error.URLError("no network")

    dest = tmp_path / "census-income" / "census-income.data.gz"
    with pytest.raises(DatasetNotAvailableError) as info:
        _common.download_file(census.CENSUS_TRAIN_URL, dest, opener=offline)
    assert census.CENSUS_TRAIN_URL in str(info.value) and str(dest) in str(info.value)
    assert list(dest.parent.iterdir()) == []   # no partial file left behind


def test_download_is_atomic_a_rejected_file_never_appears(tmp_path):
    source = write_census(tmp_path / "remote.gz", n=10)
    dest = tmp_path / "cache" / "census-income.data.gz"

    def reject(path: Path) -> None:
        assert path != dest and path.is_file()   # checked before the rename
        raise DataFileError(path, None, None, "expected 199523 rows, got 10")

    with pytest.raises(DataFileError, match="199523"):
        _common.download_file(source.as_uri(), dest, check=reject)
    assert list(dest.parent.iterdir()) == []
    _common.download_file(source.as_uri(), dest, check=lambda p: None)
    assert dest.read_bytes() == source.read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]


def test_census_train_file_check_rejects_a_file_with_the_wrong_row_count(tmp_path):
    path = write_census(tmp_path / "short.gz", n=12)
    with pytest.raises(DataFileError, match="199523 rows, got 12"):
        census._check_train_file(path)


# --------------------------------------------------------------------------- criteo
def test_criteo_reads_counts_through_signed_log_and_missing_as_its_own_id(tmp_path):
    rng = np.random.default_rng(1)
    lines = [criteo_line(rng, label="1", f1="-2", f2="", f14="") for _ in range(3)]
    lines += [criteo_line(rng) for _ in range(37)]
    path = tmp_path / "day_0"
    path.write_text("\n".join(lines) + "\n")
    raw = criteo.read_criteo(path)
    assert raw.dense["I1"][0] == pytest.approx(-np.log(3.0))
    assert np.isnan(raw.dense["I2"][0]) and raw.categorical["C1"][0] is None
    ds = load_criteo(path, None, seed=0, min_count=1, cache_dir=tmp_path / "cache")
    assert ds.schema.n_dense == 13 and ds.schema.n_fields == 26
    ids = torch.cat([s.sparse[:, 0] for s in ds.splits])
    assert (ids == MISSING_ID).sum() >= 3


def test_criteo_streams_the_first_rows_or_a_seeded_sample(tmp_path):
    path = write_criteo(tmp_path / "train.txt", n=200)
    first = criteo.read_criteo(path, n_rows=20)
    np.testing.assert_array_equal(first.labels["click"], criteo.read_criteo(path).labels["click"][:20])
    a = criteo.read_criteo(path, n_rows=20, sample_seed=5)
    b = criteo.read_criteo(path, n_rows=20, sample_seed=5)
    c = criteo.read_criteo(path, n_rows=20, sample_seed=6)
    assert len(a) == 20
    assert list(a.categorical["C3"]) == list(b.categorical["C3"])
    assert list(a.dense["I5"]) != list(c.dense["I5"]) or list(a.categorical["C7"]) != list(c.categorical["C7"])


def test_criteo_sample_reads_lines_one_at_a_time(tmp_path, monkeypatch):
    path = write_criteo(tmp_path / "train.txt", n=100)
    real_open = _common.open_text

    def guarded_open(p, encoding="utf-8"):
        handle = real_open(p, encoding)
        handle.read = lambda *a: pytest.fail("the whole file was read at once")
        handle.readlines = lambda *a: pytest.fail("the whole file was read at once")
        return handle

    monkeypatch.setattr(criteo, "open_text", guarded_open)
    assert len(criteo.read_criteo(path, n_rows=10, sample_seed=0)) == 10


@pytest.mark.parametrize(
    "bad_line, field",
    [
        ("1\t2\t3", None),
        (criteo_line(np.random.default_rng(0), f3="3.5"), "I3"),
        (criteo_line(np.random.default_rng(0), label="yes"), "label"),
    ],
    ids=["wrong-field-count", "non-integer-count", "bad-label"],
)
def test_criteo_malformed_line_is_reported_with_file_line_and_field(tmp_path, bad_line, field):
    path = write_criteo(tmp_path / "bad.txt", n=30, extra=[bad_line])
    with pytest.raises(DataFileError) as info:
        criteo.read_criteo(path)
    assert info.value.line == 31 and info.value.field_name == field
    assert "bad.txt, line 31" in str(info.value)


def test_criteo_empty_file_and_missing_file_are_clear_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataFileError, match="empty.txt.*no records"):
        load_criteo(tmp_path / "empty.txt", cache_dir=tmp_path / "cache")
    with pytest.raises(DatasetNotAvailableError, match="Kaggle"):
        load_criteo(tmp_path / "nope.txt", cache_dir=tmp_path / "cache")


# --------------------------------------------------------------------------- avazu
def test_avazu_splits_hour_into_hour_of_day_and_weekday(tmp_path):
    path = write_avazu(tmp_path / "train.csv", n=48)
    ds = load_avazu(path, None, min_count=1, cache_dir=tmp_path / "cache")
    assert ds.schema.n_dense == 0 and ds.schema.n_fields == 23
    raw = avazu.read_avazu(path)
    assert list(raw.categorical["hour_of_day"][:3]) == ["0", "1", "2"]   # rows i have hour i % 24
    assert set(raw.categorical["weekday"]) == {"1"}   # 2014-10-21 was a Tuesday (Monday = 0)
    assert ds.vocabularies["weekday"] == ["1"]


@pytest.mark.parametrize(
    "bad_line, field",
    [("1,0,14102100", None), (avazu_line(0, np.random.default_rng(0), click="2"), "click"),
     (avazu_line(0, np.random.default_rng(0), hour="14-10-21"), "hour")],
    ids=["wrong-field-count", "bad-label", "bad-hour"],
)
def test_avazu_malformed_line_is_reported_with_file_line_and_field(tmp_path, bad_line, field):
    path = write_avazu(tmp_path / "bad.csv", n=20, extra=[bad_line])
    with pytest.raises(DataFileError) as info:
        load_avazu(path, cache_dir=tmp_path / "cache")
    assert info.value.line == 22 and info.value.field_name == field and "bad.csv" in str(info.value)


def test_avazu_empty_file_and_missing_header_columns_are_errors(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataFileError, match="empty"):
        load_avazu(tmp_path / "empty.csv", cache_dir=tmp_path / "cache")
    (tmp_path / "nohour.csv").write_text("id,click\n1,0\n")
    with pytest.raises(DataFileError, match="header lacks"):
        load_avazu(tmp_path / "nohour.csv", cache_dir=tmp_path / "cache")


# --------------------------------------------------------------------------- movielens
def test_movielens_joins_users_and_movies_and_clicks_on_four_stars(tmp_path):
    folder = write_movielens(tmp_path / "ml")
    ds = load_movielens(folder, min_count=1, cache_dir=tmp_path / "cache")
    assert [f.name for f in ds.schema.sparse] == ["user", "movie", "genre", "gender", "age", "occupation", "zip"]
    n = sum(len(s) for s in ds.splits)
    assert n == 30
    stars = np.array([(u + m) % 5 + 1 for u in range(1, 7) for m in range(1, 6)])
    assert sum(float(s.labels.sum()) for s in ds.splits) == float((stars >= 4).sum())
    assert set(ds.vocabularies["genre"]) <= {"Comedy", "Drama", "Action"}   # the first listed genre


@pytest.mark.parametrize(
    "bad_rating, field",
    [("1::2::3", None), ("1::2::five::978300000", "Rating"), ("1::2::9::978300000", "Rating"),
     ("99::2::4::978300000", "UserID")],
    ids=["wrong-field-count", "non-integer-rating", "rating-out-of-range", "unknown-user"],
)
def test_movielens_malformed_rating_is_reported_with_file_line_and_field(tmp_path, bad_rating, field):
    folder = write_movielens(tmp_path / "ml", extra_rating=bad_rating)
    with pytest.raises(DataFileError) as info:
        load_movielens(folder, cache_dir=tmp_path / "cache")
    assert info.value.line == 31 and info.value.field_name == field and "ratings.dat" in str(info.value)


def test_movielens_is_never_shipped_and_offline_says_where_to_get_it(tmp_path):
    with pytest.raises(DatasetNotAvailableError) as info:
        load_movielens(cache_dir=tmp_path)
    assert "files.grouplens.org" in str(info.value) and str(tmp_path / "ml-1m") in str(info.value)
    repo_data = Path(__file__).resolve().parents[1] / "data"
    assert not any("ratings.dat" in p.name or "ml-1m" in p.name for p in repo_data.rglob("*"))


def test_installed_without_the_repository_the_test_file_is_fetched_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(census, "SHIPPED_CENSUS_FILE", tmp_path / "absent" / "census-income.test.gz")
    with pytest.raises(DatasetNotAvailableError) as info:
        load_census(cache_dir=tmp_path / "cache")
    assert census.CENSUS_TEST_URL in str(info.value)
    fetched = []

    def fake_download(url, dest, check, what, **_):
        fetched.append(url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_census(dest, n=40)
        return dest

    monkeypatch.setattr(census, "download_file", fake_download)
    ds = load_census(download=True, cache_dir=tmp_path / "cache")
    assert fetched == [census.CENSUS_TEST_URL] and sum(len(s) for s in ds.splits) == 40
    load_census(download=True, cache_dir=tmp_path / "cache")
    assert len(fetched) == 1   # the second call finds the file in the cache


def test_downloaded_test_file_with_another_checksum_is_rejected(tmp_path):
    path = write_census(tmp_path / "other.gz", n=5)
    with pytest.raises(DataFileError, match="sha256"):
        census._check_test_file(path)
