"""Chapter 10's latency figure and the numbers read from its grid (see :mod:`rankcourse.serving.latency`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["ENGINE_COLOURS", "plot_latency", "median_ratio"]

#: One course colour per engine; one thread is a solid line, two threads a dashed one.
ENGINE_COLOURS = {"eager": "C0", "shared": "C1", "onnxruntime": "C2"}


def plot_latency(grid: pd.DataFrame, budget_ms: float, quantity: str = "p99") -> Figure:
    """p99 (or ``quantity``) latency against N, log-log, one panel a model stacked in rows.

    ``grid`` has the columns ``model, engine, threads, N`` and ``quantity`` (ms), as
    :func:`~rankcourse.serving.latency.latency_grid` returns them with a ``model`` column added.
    A horizontal line marks the budget. The figure is 6.8 inches wide, the book's column.
    """
    models = list(dict.fromkeys(grid["model"]))
    fig, axes = plt.subplots(len(models), 1, figsize=(6.8, 3.0 * len(models) + 0.6), sharex=True,
                             squeeze=False)
    for ax, name in zip(axes[:, 0], models):
        for (engine, threads), g in grid[grid.model == name].groupby(["engine", "threads"]):
            g = g.sort_values("N")
            ax.plot(g.N, g[quantity], marker="o", ls="-" if threads == 1 else "--",
                    color=ENGINE_COLOURS.get(engine, "C7"), label=f"{engine}, {threads} thr.")
        ax.axhline(budget_ms, color="C3", lw=1)
        ax.text(grid.N.min(), budget_ms * 1.15, f"budget {budget_ms:g} ms", color="C3")
        ax.set(xscale="log", yscale="log", ylabel=f"{quantity} (ms)", title=name)
    axes[-1, 0].set_xlabel("candidates N")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.12 * 2 / (len(models) + 1), 1, 1))
    return fig


def median_ratio(grid: pd.DataFrame, model: str, engine: str, n: int = 500, threads: int = 1,
                 baseline: str = "eager") -> float:
    """How many times faster ``engine`` is than ``baseline`` at the median, at N = ``n``."""
    g = grid[(grid.model == model) & (grid.threads == threads) & (grid.N == n)].set_index("engine")
    if engine not in g.index or baseline not in g.index:
        raise KeyError(f"no row for {model}, {engine!r} or {baseline!r}, N = {n}, {threads} thread(s)")
    return float(g.p50[baseline] / g.p50[engine])
