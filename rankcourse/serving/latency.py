"""Latency as a distribution: time many requests one by one and report percentiles.

A ranking stage answers one request at a time under a budget, so what matters is the tail (p95,
p99), not the mean. :func:`time_requests` times an engine on pre-encoded requests (the model's part
of the work); :func:`latency_grid` does it for every engine, number of candidates and thread count
and returns one row per cell.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

__all__ = ["torch_threads", "time_requests", "percentiles", "latency_grid"]

Inputs = tuple[Tensor, Tensor, Tensor, Tensor]


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def time_requests(engine: Callable[..., Tensor], requests: Sequence[Inputs], warmup: int = 5) -> np.ndarray:
    """Seconds per request, ``(len(requests),)``: each request scored alone, as a server would."""
    with torch.inference_mode():
        for inputs in requests[:warmup]:
            engine(*inputs)
        out = np.empty(len(requests))
        for i, inputs in enumerate(requests):
            start = time.perf_counter()
            engine(*inputs)
            out[i] = time.perf_counter() - start
    return out


def percentiles(seconds: np.ndarray, qs: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """``{"p50": ms, "p95": ms, "p99": ms}`` in milliseconds."""
    return {f"p{q:g}": float(np.percentile(seconds, q) * 1e3) for q in qs}


def latency_grid(engines: Mapping[str, Callable[[int], Callable[..., Tensor]]],
                 make_requests: Callable[[int, int], Sequence[Inputs]], sizes: Sequence[int],
                 threads: Sequence[int], n_requests: int) -> pd.DataFrame:
    """One row per (engine, N, threads): p50/p95/p99 in ms over ``n_requests`` requests.

    Args:
        engines: name -> ``factory(threads)`` returning an engine (onnxruntime fixes its thread
            count when a session is made, torch through :func:`torch_threads`).
        make_requests: ``(N, count)`` -> encoded requests with N candidates each.
    """
    rows = []
    for n in sizes:
        requests = make_requests(n, n_requests)
        for t in threads:
            with torch_threads(t):
                for name, factory in engines.items():
                    seconds = time_requests(factory(t), requests)
                    rows.append({"engine": name, "N": n, "threads": t, **percentiles(seconds),
                                 "mean": float(seconds.mean() * 1e3)})
    return pd.DataFrame(rows)
