"""What a module costs: its parameter count and the wall time of one training step on a batch.

Chapter 4 compares cross layers and interaction networks by size and by time; these two measures
keep the bookkeeping (warm-up, synchronising the GPU, clearing gradients) off the page.
"""

from __future__ import annotations

import time

import torch
from torch import nn

__all__ = ["n_parameters", "ms_per_batch"]


def n_parameters(module: nn.Module) -> int:
    """Number of parameters of ``module`` (every tensor in ``module.parameters()``)."""
    return sum(p.numel() for p in module.parameters())


def ms_per_batch(module: nn.Module, *inputs: torch.Tensor, repeats: int = 5) -> float:
    """Best wall time of ``repeats`` forward and backward passes, in milliseconds.

    One warm-up pass runs first and is not counted. The backward pass is of ``output.sum()``; on a
    GPU the clock is read only after the device has finished. The module's gradients are cleared
    afterwards (set to None), so that timing leaves no trace on it.

    Args:
        module: the module to time; its output must be a tensor.
        inputs: the tensors passed to ``module``, e.g. a batch of shape ``(batch, dim)``.
        repeats: number of timed passes (at least 1).

    Raises:
        ValueError: if ``repeats`` is below 1.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    best = float("inf")
    for i in range(repeats + 1):
        start = time.perf_counter()
        out = module(*inputs)
        out.sum().backward()
        if out.is_cuda:  # GPU work is asynchronous: wait for it before reading the clock
            torch.cuda.synchronize(out.device)
        if i > 0:
            best = min(best, time.perf_counter() - start)
    module.zero_grad(set_to_none=True)
    return 1e3 * best
