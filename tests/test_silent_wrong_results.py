"""Inputs that once gave a silent wrong result: each now gives the right rows or a named error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rankcourse.data.tabular import TabularData
from rankcourse.datasets import _common
from rankcourse.datasets._common import MISSING_ID, OOV_ID, DataSplits, Vocabulary, cached_splits
from rankcourse.inference import forward_batched
from rankcourse.schema import FeatureSchema, SparseField

SCHEMA = FeatureSchema(dense=("x",), sparse=(SparseField("city", 5), SparseField("item", 7)))


def _data(n: int) -> TabularData:
    g = torch.Generator().manual_seed(0)
    sparse = torch.stack([torch.randint(0, 5, (n,), generator=g), torch.randint(0, 7, (n,), generator=g)], 1)
    return TabularData(SCHEMA, torch.arange(n, dtype=torch.float32)[:, None], sparse,
                       torch.randint(0, 2, (n,), generator=g).float())


# ------------------------------------------------------------------ boolean masks
@pytest.mark.parametrize("as_type", [torch.tensor, np.array, list])
def test_subset_with_a_boolean_mask_keeps_exactly_the_true_rows(as_type):
    data = _data(2000)
    mask = np.zeros(2000, dtype=bool)
    mask[[3, 500, 1999]] = True
    part = data.subset(as_type(mask) if as_type is not list else mask.tolist())
    assert len(part) == 3
    assert part.dense[:, 0].tolist() == [3.0, 500.0, 1999.0]


def test_subset_with_a_boolean_mask_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match=r"boolean mask has 10 entries but the data has 20 rows"):
        _data(20).subset(torch.ones(10, dtype=torch.bool))


def test_subset_with_fractional_indices_is_refused():
    with pytest.raises(TypeError, match="row indices must be integers or a boolean mask"):
        _data(20).subset(torch.tensor([0.0, 1.5]))


# ------------------------------------------------------------------ fractional ids
def test_fractional_sparse_id_is_refused_naming_field_row_and_value():
    sparse = np.array([[1, 2], [3, 4], [2, 3.5]])
    with pytest.raises(ValueError, match=r"categorical field 'item' has a non-integer id 3\.5 at row 2"):
        TabularData(SCHEMA, np.zeros((3, 1)), sparse, np.zeros(3))


def test_fractional_sparse_id_in_a_column_is_refused_naming_field_row_and_value():
    columns = {"x": [0.0, 1.0], "city": [1.25, 2], "item": [1, 2], "click": [0, 1]}
    with pytest.raises(ValueError, match=r"categorical field 'city' has a non-integer id 1\.25 at row 0"):
        TabularData.from_columns(columns, SCHEMA)


def test_non_finite_sparse_id_is_refused_naming_field_and_row():
    sparse = torch.tensor([[1.0, 2.0], [float("nan"), 4.0]])
    with pytest.raises(ValueError, match=r"categorical field 'city' has a non-integer id nan at row 1"):
        TabularData(SCHEMA, np.zeros((2, 1)), sparse, np.zeros(2))


def test_whole_valued_float_ids_are_accepted_as_ids():
    data = TabularData(SCHEMA, np.zeros((2, 1)), np.array([[1.0, 2.0], [3.0, 4.0]]), np.zeros(2))
    assert data.sparse.dtype == torch.int64 and data.sparse.tolist() == [[1, 2], [3, 4]]


# ------------------------------------------------------------------ vocabulary keys
@pytest.mark.parametrize("column, unseen", [
    (np.array([7, 7, 3, 9]), np.array([7, 3, 9, 11])),
    (np.array([7.5, 7.5, 3.0, 9.25]), np.array([7.5, 3.0, 9.25, 11.0])),
    (np.array(["7", "7", "3", "9"], dtype=object), np.array(["7", "3", "9", "11"], dtype=object)),
])
def test_vocabulary_encodes_the_values_it_was_built_on_whatever_their_type(column, unseen):
    vocab = Vocabulary.build(column)
    ids = vocab.encode(unseen)
    assert ids[:3].tolist() == [2, 3, 4]  # 7 (twice) first, then 3, then 9
    assert ids[3] == OOV_ID


def test_vocabulary_built_on_ints_encodes_the_same_ints_given_as_python_objects():
    vocab = Vocabulary.build(np.array([1, 1, 2], dtype=np.int64))
    assert vocab.encode(np.array([1, 2], dtype=object)).tolist() == [2, 3]


def test_vocabulary_sends_missing_values_to_the_missing_id_for_every_type():
    for column in (np.array([1.0, np.nan, 1.0]), np.array(["a", None, "a"], dtype=object)):
        vocab = Vocabulary.build(column)
        assert vocab.encode(column).tolist() == [2, MISSING_ID, 2]
        assert vocab.size == 3


def test_vocabulary_keeps_int_and_float_keys_of_one_value_together():
    # 3 and 3.0 are one value: pandas reads an int column with a gap as floats.
    vocab = Vocabulary.build(np.array([3, 3, 4]))
    assert vocab.encode(np.array([3.0, 4.0, np.nan])).tolist() == [2, 3, MISSING_ID]


# ------------------------------------------------------------------ copies between devices
class _RecordsCopies(torch.Tensor):
    """A tensor that writes down every ``.to(...)`` call made on it or its slices."""

    calls: list = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.to:
            cls.calls.append((args[1:], dict(kwargs)))
        return super().__torch_function__(func, types, args, kwargs)


def test_forward_batched_copies_to_the_host_synchronously():
    model = torch.nn.Linear(1, 1)
    _RecordsCopies.calls = []
    dense = torch.zeros(10, 1).as_subclass(_RecordsCopies)
    sparse = torch.zeros(10, 0, dtype=torch.long).as_subclass(_RecordsCopies)

    class Wrap(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, d, s):
            return self.inner(d.as_subclass(torch.Tensor))[:, 0]

    forward_batched(Wrap(), dense, sparse, batch_size=4)
    assert _RecordsCopies.calls, "forward_batched did not move the batches"
    for args, kwargs in _RecordsCopies.calls:
        target = torch.device(args[0]) if args and isinstance(args[0], (str, torch.device)) else None
        if target is not None and target.type != "cuda":
            assert not kwargs.get("non_blocking", False), f"non-blocking copy to {target}"


@pytest.mark.cuda
def test_forward_batched_on_cuda_matches_the_cpu_result():
    model = torch.nn.Linear(1, 1)
    x = torch.randn(1000, 1)
    cpu = forward_batched(model, x, torch.zeros(1000, 0, dtype=torch.long), batch_size=64)
    gpu = forward_batched(model.cuda(), x.cuda(), torch.zeros(1000, 0, dtype=torch.long).cuda(), batch_size=64)
    assert gpu.device.type == "cpu"
    torch.testing.assert_close(cpu, gpu)


# ------------------------------------------------------------------ the preprocessed-data cache
def _splits() -> DataSplits:
    d = _data(30)
    return DataSplits(d.subset(slice(0, 10)), d.subset(slice(10, 20)), d.subset(slice(20, 30)))


def test_cache_key_changes_when_the_preprocessing_format_version_changes(tmp_path, monkeypatch):
    source = tmp_path / "raw.txt"
    source.write_text("rows")
    builds = []
    build = lambda: builds.append(1) or _splits()  # noqa: E731
    cached_splits("toy", [source], {}, tmp_path, build)
    cached_splits("toy", [source], {}, tmp_path, build)
    assert len(builds) == 1
    monkeypatch.setattr(_common, "CACHE_FORMAT_VERSION", _common.CACHE_FORMAT_VERSION + 1)
    cached_splits("toy", [source], {}, tmp_path, build)
    assert len(builds) == 2


def test_cache_key_changes_when_a_loader_says_its_code_changed(tmp_path):
    source = tmp_path / "raw.txt"
    source.write_text("rows")
    builds = []
    build = lambda: builds.append(1) or _splits()  # noqa: E731
    cached_splits("toy", [source], {}, tmp_path, build, code_version=1)
    cached_splits("toy", [source], {}, tmp_path, build, code_version=2)
    assert len(builds) == 2


def test_failed_cache_write_leaves_no_part_file(tmp_path, monkeypatch):
    source = tmp_path / "raw.txt"
    source.write_text("rows")

    def broken_savez(handle, **arrays):
        handle.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(_common.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        cached_splits("toy", [source], {}, tmp_path, _splits)
    assert list((tmp_path / "preprocessed").iterdir()) == []
