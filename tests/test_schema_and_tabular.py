"""FeatureSchema and TabularData: offsets, splits and the errors that name what is wrong."""

import numpy as np
import pytest
import torch

from rankcourse.data import TabularData
from rankcourse.schema import FeatureSchema, SparseField


@pytest.fixture
def schema() -> FeatureSchema:
    return FeatureSchema(dense=("age", "price"), sparse=(SparseField("city", 3), SparseField("taste", 5)))


def make(schema, n=10, seed=0, **kw):
    g = torch.Generator().manual_seed(seed)
    dense = torch.randn(n, schema.n_dense, generator=g)
    sparse = torch.stack([torch.randint(0, v, (n,), generator=g) for v in schema.vocab_sizes], 1)
    labels = torch.randint(0, 2, (n,), generator=g).float()
    return TabularData(schema, kw.pop("dense", dense), kw.pop("sparse", sparse), kw.pop("labels", labels), **kw)


def test_offsets_are_cumulative_vocab_sizes(schema):
    assert schema.offsets == (0, 3)
    assert schema.total_vocab == 8
    assert schema.offsets_tensor().tolist() == [0, 3]


def test_duplicate_field_names_are_rejected():
    with pytest.raises(ValueError, match="city"):
        FeatureSchema(dense=("city",), sparse=(SparseField("city", 3),))


def test_nonpositive_vocab_size_names_the_field():
    with pytest.raises(ValueError, match="taste"):
        SparseField("taste", 0)


def test_out_of_vocabulary_id_names_field_and_value(schema):
    data = make(schema)
    sparse = data.sparse.clone()
    sparse[4, 1] = 5
    with pytest.raises(ValueError, match=r"'taste' has id 5 at row 4, outside \[0, 5\)"):
        make(schema, sparse=sparse)


def test_negative_id_is_rejected(schema):
    sparse = make(schema).sparse.clone()
    sparse[0, 0] = -1
    with pytest.raises(ValueError, match="'city' has id -1"):
        make(schema, sparse=sparse)


def test_nan_dense_value_names_the_field(schema):
    dense = make(schema).dense.clone()
    dense[2, 1] = float("nan")
    with pytest.raises(ValueError, match="'price' has a non-finite value nan at row 2"):
        make(schema, dense=dense)


def test_wrong_dense_width_reports_expected_shape(schema):
    with pytest.raises(ValueError, match=r"dense must have shape \(batch, 2\)"):
        make(schema, dense=torch.zeros(10, 3))


def test_mismatched_lengths_are_rejected(schema):
    with pytest.raises(ValueError, match="labels must have shape"):
        make(schema, labels=torch.zeros(9))


def test_binary_labels_outside_zero_one_are_rejected(schema):
    labels = torch.zeros(10)
    labels[3] = 2.0
    with pytest.raises(ValueError, match="'click': binary labels must be 0 or 1, got 2.0 at row 3"):
        make(schema, labels=labels)


def test_wrong_number_of_task_names_is_rejected(schema):
    with pytest.raises(ValueError, match="2 task column"):
        make(schema, labels=torch.zeros(10, 2))


def test_empty_data_is_rejected(schema):
    with pytest.raises(ValueError, match="empty"):
        make(schema, n=0)


def test_split_is_seeded_disjoint_and_complete(schema):
    data = make(schema, n=100)
    a = data.split((0.8, 0.1, 0.1), seed=3)
    b = data.split((0.8, 0.1, 0.1), seed=3)
    assert [len(p) for p in a] == [80, 10, 10]
    for x, y in zip(a, b):
        assert torch.equal(x.dense, y.dense)
    rows = torch.cat([p.dense for p in a])
    # every row lands in exactly one part
    assert torch.equal(rows[rows[:, 0].argsort()], data.dense[data.dense[:, 0].argsort()])


def test_from_columns_names_missing_and_unknown_columns(schema):
    cols = {"age": [1.0], "price": [2.0], "city": [0], "taste": [1], "click": [1]}
    assert len(TabularData.from_columns(cols, schema)) == 1
    with pytest.raises(KeyError, match="taste"):
        TabularData.from_columns({k: v for k, v in cols.items() if k != "taste"}, schema)
    with pytest.raises(KeyError, match="colour"):
        TabularData.from_columns({**cols, "colour": [3]}, schema)


def test_task_view_selects_one_label_column(schema):
    data = make(schema, labels=torch.tensor(np.eye(2)[np.arange(10) % 2], dtype=torch.float32),
                task_names=("click", "buy"), task_types=("binary", "binary"))
    buy = data.task("buy")
    assert buy.n_tasks == 1 and buy.task_names == ("buy",)
    assert torch.equal(buy.labels[:, 0], data.labels[:, 1])
    with pytest.raises(KeyError, match="cart"):
        data.task("cart")
