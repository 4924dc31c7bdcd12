"""MMoE's optional BatchNorm before the gate softmax (torch-rechub's gate; off by default)."""

from __future__ import annotations

import torch
from torch import nn

from rankcourse.data import make_ctr_data
from rankcourse.layers import ExpertGate
from rankcourse.models import MMoE


def test_gate_batch_norm_normalises_each_gate_logit_before_the_softmax():
    torch.manual_seed(0)
    gate = ExpertGate(5, 4, n_gates=3, batch_norm=True).train()
    x = torch.randn(64, 5) * 10 + 3
    g = gate(x)
    torch.testing.assert_close(g.sum(-1), torch.ones(64, 3))
    logits = gate.norm(gate.linear(x))
    torch.testing.assert_close(logits.mean(0), torch.zeros(12), atol=1e-5, rtol=0)
    expected = torch.softmax(logits.view(64, 3, 4), dim=-1)
    torch.testing.assert_close(g, expected)


def test_gate_batch_norm_is_off_by_default_and_reaches_mmoe():
    assert ExpertGate(5, 4).norm is None
    schema = make_ctr_data(300, n_dense=2, vocab_sizes=(5, 7), seed=0).schema
    model = MMoE(schema, 2, n_experts=3, gate_batch_norm=True)
    assert isinstance(model.gate.norm, nn.BatchNorm1d) and model.gate.norm.num_features == 6
    assert MMoE(schema, 2, n_experts=3).gate.norm is None


def test_stacked_replicas_refuse_a_gate_with_batch_norm():
    import pytest

    from rankcourse.scale.replicas import StackedMultiTask
    from rankcourse.schema import FeatureSchema

    schema = FeatureSchema(dense=("a", "b", "c"))
    models = [MMoE(schema, 2, n_experts=2, gate_batch_norm=True) for _ in range(2)]
    with pytest.raises(ValueError, match="gates with batch normalisation cannot be stacked"):
        StackedMultiTask(models)
