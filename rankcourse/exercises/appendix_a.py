r"""Self-checks for the appendix on scaling out.

* :func:`check_allreduce_seconds` -- the time of a ring all-reduce of a dense gradient, the cost
  that makes data parallelism over a large embedding table hopeless.

A ring all-reduce of :math:`S` bytes over :math:`W` ranks sends and receives
:math:`2 (W - 1) / W \cdot S` bytes per rank (a reduce-scatter then an all-gather, each moving
:math:`(W-1)/W` of the buffer; Patarasuk and Yuan 2009), so at a link speed of :math:`B` bytes per
second it takes at least :math:`2 (W - 1) S / (W B)` seconds, latency aside.
"""

from __future__ import annotations

import math
from typing import Callable

from ._seeding import numpy_rng

__all__ = ["check_allreduce_seconds", "reference_allreduce_seconds"]


def reference_allreduce_seconds(rows: int, dim: int, world: int, gbit_per_s: float,
                                bytes_per_value: int = 4) -> float:
    """Seconds for a ring all-reduce of a dense ``(rows, dim)`` gradient over ``world`` ranks
    whose links move ``gbit_per_s`` gigabits (1e9 bits) per second each way; 0 for one rank."""
    size = rows * dim * bytes_per_value
    return 2 * (world - 1) / world * size / (gbit_per_s * 1e9 / 8)


def _cases(seed: int | None) -> list[tuple[int, int, int, float]]:
    if seed is None:
        return [(100_000_000, 64, 8, 100.0), (1_000, 16, 2, 1.0), (10, 4, 1, 10.0), (5_000_000, 16, 64, 400.0)]
    rng = numpy_rng(1, seed)
    rows = [int(r) for r in rng.integers(10, 10**8, size=3)]
    dims = [int(d) for d in rng.choice([4, 8, 16, 32, 64, 128], size=3)]
    worlds = [int(w) for w in rng.choice([2, 4, 8, 16, 64], size=2)]
    links = [float(x) for x in rng.choice([1.0, 10.0, 25.0, 100.0, 400.0], size=3)]
    # the edge cases stay: two ranks, one rank (nothing to send), many ranks
    return [(rows[0], dims[0], worlds[0], links[0]), (rows[1], dims[1], 2, links[1]), (rows[2], dims[2], 1, links[2]),
            (rows[0], dims[1], worlds[1], links[0])]


def check_allreduce_seconds(fn: Callable[..., float], *, seed: int | None = None) -> None:
    """Check ``fn(rows, dim, world, gbit_per_s) -> seconds`` against the ring all-reduce time;
    ``seed`` (for grading) draws other sizes."""
    cases = _cases(seed)
    for rows, dim, world, link in cases:
        want = reference_allreduce_seconds(rows, dim, world, link)
        got = float(fn(rows, dim, world, link))
        if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12):
            continue
        where = (f"for rows={rows}, dim={dim}, world={world}, {link} Gbit/s you return {got:.6g} s, "
                 f"expected {want:.6g} s")
        ratio = got / want if want else math.inf
        if want == 0:
            raise AssertionError(f"{where}: with one rank there is nothing to exchange")
        hints = {1 / 8: "a link speed in bits is 1/8 as many bytes: bytes/s = Gbit/s * 1e9 / 8",
                 8.0: "you multiplied by 8 where bits become bytes by dividing by 8",
                 4.0: "a float32 is 4 bytes, count them once", 0.25: "each float32 value is 4 bytes",
                 world / (2 * (world - 1)):
                     "a ring all-reduce moves 2 (W - 1) / W times the buffer, not the buffer once",
                 world / (world - 1): "the ring moves the buffer twice (reduce-scatter, then all-gather)",
                 0.5: "the ring moves the buffer twice (reduce-scatter, then all-gather)"}
        for factor, hint in hints.items():
            if math.isclose(ratio, factor, rel_tol=1e-3):
                raise AssertionError(f"{where} (off by a factor {ratio:.4g}): {hint}")
        raise AssertionError(f"{where} (off by a factor {ratio:.4g})")
