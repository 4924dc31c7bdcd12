"""Latency as a distribution: time many requests one by one and report percentiles.

A ranking stage answers one request at a time under a budget, so what matters is the tail (p95,
p99), not the mean. :func:`time_requests` times an engine on pre-encoded requests (the model's part
of the work); :func:`latency_grid` does it for every engine, number of candidates and thread count
and returns one row per cell. Encoding a request costs more than scoring it, so a grid may time
``count`` requests drawn in turn from a smaller ``pool`` of encoded ones: the model's time does not
depend on which ids a request holds. :func:`time_batches` times several requests scored in one
forward pass (what a GPU wants).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

__all__ = ["torch_threads", "time_requests", "time_batches", "percentiles", "latency_grid"]

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


def time_requests(engine: Callable[..., Tensor], requests: Sequence[Inputs], warmup: int = 5,
                  count: int | None = None) -> np.ndarray:
    """Seconds per request, ``(count,)``: each request scored alone, as a server would.

    ``count`` (default ``len(requests)``) requests are timed, taking ``requests`` in turn.
    """
    count = len(requests) if count is None else count
    if not requests or count < 1:
        raise ValueError(f"need at least one request and count >= 1, got {len(requests)} and {count}")
    with torch.inference_mode():
        for inputs in requests[:warmup]:
            engine(*inputs)
        out = np.empty(count)
        for i in range(count):
            inputs = requests[i % len(requests)]
            start = time.perf_counter()
            engine(*inputs)
            out[i] = time.perf_counter() - start
    return out


def time_batches(batch_logits: Callable[[Sequence[Inputs]], object], requests: Sequence[Inputs],
                 batch_size: int, count: int, warmup: int = 2) -> np.ndarray:
    """Seconds per batch, ``(count,)``: ``batch_size`` requests scored in one call of ``batch_logits``
    (e.g. :meth:`RequestScorer.batch_logits`, which returns its scores on the CPU, so a GPU's work
    has finished when the clock stops). The batches take ``requests`` in turn."""
    if batch_size < 1 or count < 1 or not requests:
        raise ValueError(f"need batch_size >= 1, count >= 1 and requests, got {batch_size}, {count}, "
                         f"{len(requests)}")
    batches = [[requests[(b * batch_size + j) % len(requests)] for j in range(batch_size)]
               for b in range(min(count, len(requests)))]
    for batch in batches[:warmup]:
        batch_logits(batch)
    out = np.empty(count)
    for i in range(count):
        start = time.perf_counter()
        batch_logits(batches[i % len(batches)])
        out[i] = time.perf_counter() - start
    return out


def percentiles(seconds: np.ndarray, qs: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """``{"p50": ms, "p95": ms, "p99": ms}`` in milliseconds."""
    return {f"p{q:g}": float(np.percentile(seconds, q) * 1e3) for q in qs}


def latency_grid(engines: Mapping[str, Callable[[int], Callable[..., Tensor]]],
                 make_requests: Callable[[int, int], Sequence[Inputs]], sizes: Sequence[int],
                 threads: Sequence[int], n_requests: int, pool: int | None = None) -> pd.DataFrame:
    """One row per (engine, N, threads): p50/p95/p99 in ms over ``n_requests`` requests.

    Args:
        engines: name -> ``factory(threads)`` returning an engine (onnxruntime fixes its thread
            count when a session is made, torch through :func:`torch_threads`).
        make_requests: ``(N, count)`` -> encoded requests with N candidates each.
        pool: how many distinct requests to encode (default ``n_requests``); the
            ``n_requests`` timed requests take them in turn.
    """
    rows = []
    for n in sizes:
        requests = make_requests(n, n_requests if pool is None else min(pool, n_requests))
        for t in threads:
            with torch_threads(t):
                for name, factory in engines.items():
                    seconds = time_requests(factory(t), requests, count=n_requests)
                    rows.append({"engine": name, "N": n, "threads": t, **percentiles(seconds),
                                 "mean": float(seconds.mean() * 1e3), "requests": n_requests})
    return pd.DataFrame(rows)
