"""One positive-integer rule everywhere: ints and NumPy ints pass; bool, floats and values < 1 fail."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from rankcourse.checks import check_int, check_positive_int
from rankcourse.inference import forward_batched
from rankcourse.layers import MLP, CrossNetV2, FieldEmbedding
from rankcourse.layers.cin import CIN
from rankcourse.layers.experts import ExpertGate, ParallelMLP
from rankcourse.layers.wide import CrossProductHashing
from rankcourse.metrics import reliability_curve
from rankcourse.models.base import CTRModel
from rankcourse.schema import FeatureSchema, SequenceField, SparseField
from rankcourse.task_weighting import UncertaintyWeighting

class _DenseOnly(torch.nn.Linear):
    def __init__(self) -> None:
        super().__init__(1, 1)

    def forward(self, dense, sparse):
        return super().forward(dense)[:, 0]


SCHEMA = FeatureSchema(dense=("x",), sparse=(SparseField("a", 3), SparseField("b", 4)))

#: name in the message -> a call that passes ``value`` where a positive int is due
SITES = {
    "vocab_size": lambda v: SparseField("a", v),
    "max_len": lambda v: SequenceField("h", 5, v),
    "MLP in_dim": lambda v: MLP(v, (4,)),
    "ParallelMLP n": lambda v: ParallelMLP(v, 3, (4,)),
    "ExpertGate n_experts": lambda v: ExpertGate(3, v),
    "n_layers": lambda v: CrossNetV2(3, v),
    "CIN layer_sizes[0]": lambda v: CIN(2, 3, (v,)),
    "n_buckets": lambda v: CrossProductHashing(SCHEMA, [("a", "b")], v),
    "embedding dim": lambda v: FieldEmbedding(SCHEMA, v),
    "n_tasks": lambda v: CTRModel(SCHEMA, v),
    "UncertaintyWeighting n_tasks": lambda v: UncertaintyWeighting(v),
    "batch_size": lambda v: forward_batched(_DenseOnly(), torch.zeros(2, 1),
                                            torch.zeros(2, 0, dtype=torch.long), v),
    "n_bins": lambda v: reliability_curve([0, 1], [0.2, 0.8], n_bins=v),
}


@pytest.mark.parametrize("bad", [True, False, 0, -1, 2.0, "3"])
@pytest.mark.parametrize("site", sorted(SITES))
def test_every_positive_int_argument_refuses_bools_floats_and_values_below_one(site, bad):
    with pytest.raises(ValueError, match=rf"{re.escape(site)}\S* must be a positive int"):
        SITES[site](bad)


@pytest.mark.parametrize("site", sorted(SITES))
def test_every_positive_int_argument_takes_a_numpy_int(site):
    SITES[site](np.int64(2))


def test_check_int_returns_a_python_int_and_names_the_lower_bound():
    assert type(check_positive_int(np.int32(3), "k")) is int
    assert check_positive_int(None, "k", allow_none=True) is None
    with pytest.raises(ValueError, match=r"seed must be an int >= 0, got True"):
        check_int(True, "seed", low=0)
