"""ParallelMLP gives every hidden layer its own activation module, as MLP does."""

from __future__ import annotations

import torch
from torch import nn

from rankcourse.layers import MLP, ParallelMLP


def test_parallel_mlp_prelu_slopes_are_per_layer_like_mlp():
    par = ParallelMLP(3, 5, (4, 6, 2), activation=nn.PReLU)
    slopes = [m for m in par.modules() if isinstance(m, nn.PReLU)]
    assert len(slopes) == 3 == len([m for m in MLP(5, (4, 6, 2), activation=nn.PReLU).modules()
                                    if isinstance(m, nn.PReLU)])
    assert len({id(m.weight) for m in slopes}) == 3


def test_parallel_mlp_prelu_slopes_learn_apart():
    torch.manual_seed(0)
    par = ParallelMLP(2, 4, (8, 8), out_dim=1, activation=nn.PReLU)
    opt = torch.optim.SGD(par.parameters(), lr=0.5)
    x, y = torch.randn(64, 4), torch.randn(64, 2, 1)
    for _ in range(5):
        opt.zero_grad()
        ((par(x) - y) ** 2).mean().backward()
        opt.step()
    first, second = (m.weight.item() for m in par.modules() if isinstance(m, nn.PReLU))
    assert first != second
