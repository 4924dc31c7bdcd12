"""rankcourse.experiments.cost: parameter counts and the time of one training step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rankcourse.experiments.cost import ms_per_batch, n_parameters


def test_parameter_count_is_weights_plus_biases():
    assert n_parameters(nn.Linear(3, 2)) == 3 * 2 + 2
    assert n_parameters(nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 1, bias=False))) == 25 + 5


def test_a_module_without_parameters_has_none():
    assert n_parameters(nn.ReLU()) == 0


class _Counting(nn.Module):
    """A linear layer that counts its forward passes."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.linear(x)


def test_timing_runs_one_warm_up_pass_and_the_repeats():
    module = _Counting()
    ms = ms_per_batch(module, torch.randn(8, 4), repeats=3)
    assert module.calls == 4
    assert 0.0 < ms < 60_000.0


def test_timing_leaves_no_gradients_on_the_module():
    module = nn.Linear(4, 3)
    ms_per_batch(module, torch.randn(8, 4), repeats=1)
    assert all(p.grad is None for p in module.parameters())


def test_timing_passes_several_inputs():
    class Add(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(2))

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return self.w * (a + b)

    assert ms_per_batch(Add(), torch.ones(5, 2), torch.ones(5, 2), repeats=2) > 0


def test_timing_rejects_fewer_than_one_repeat():
    with pytest.raises(ValueError, match="repeats must be at least 1, got 0"):
        ms_per_batch(nn.Linear(2, 1), torch.randn(3, 2), repeats=0)
