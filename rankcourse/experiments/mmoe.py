"""Figures of chapter 5's MMoE experiments, kept off the page so that its code teaches.

* :func:`plot_expert_sweep` -- test loss against the number of experts, one line per task
  correlation, with the Shared-Bottom level of each correlation as a dashed line.
* :func:`plot_mean_gates` -- each task's mean gate weight over the experts, one heatmap row pair
  per task correlation, stacked so that the figure fits the book's column.

Colours come from the course palette (:data:`rankcourse.plots.COURSE_PALETTE`).
"""

from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from ..plots import COURSE_PALETTE

__all__ = ["plot_expert_sweep", "plot_mean_gates", "COLUMN_INCHES"]

# The widest figure that the book shows at full size (688 CSS px at the course's 100 dpi).
COLUMN_INCHES = 6.8


def _check_columns(frame: pd.DataFrame, needed: tuple[str, ...], name: str) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks the columns {missing}; it has {list(frame.columns)}")


def plot_expert_sweep(sweep: pd.DataFrame, shared_bottom: Mapping[float, float],
                      ax: Axes | None = None, value: str = "test MSE") -> Axes:
    """Median ``value`` against the number of experts, one line per task correlation.

    Args:
        sweep: one row per run, with columns ``experts``, ``correlation`` and ``value``.
        shared_bottom: the Shared-Bottom median of each correlation, drawn dashed in the colour
            of that correlation's line.
        ax: the axes to draw on (new ones of the column's width when ``None``).
        value: the column to plot.

    Returns:
        The axes. The band is the 25th to 75th percentile over the runs; both axes are
        logarithmic.
    """
    _check_columns(sweep, ("experts", "correlation", value), "sweep")
    if ax is None:
        _, ax = plt.subplots(figsize=(COLUMN_INCHES, 3.8), layout="constrained")
    for i, (rho, runs) in enumerate(sweep.groupby("correlation", sort=True)):
        colour = COURSE_PALETTE[i % len(COURSE_PALETTE)]
        by_n = runs.groupby("experts")[value]
        q = pd.DataFrame({"low": by_n.quantile(0.25), "median": by_n.median(),
                          "high": by_n.quantile(0.75)})
        # a marker shape per line, so that the lines differ in greyscale print too
        ax.plot(q.index, q["median"], marker="os^D"[i % 4], ls="-", color=colour,
                label=f"ρ = {rho:g}")
        ax.fill_between(q.index, q["low"], q["high"], color=colour, alpha=0.2, lw=0)
        if rho in shared_bottom:
            ax.axhline(shared_bottom[rho], color=colour, ls="--", lw=1.2)
    experts = sorted(sweep["experts"].unique())
    ax.set(xscale="log", yscale="log", xlabel="number of experts", ylabel=value,
           title="MMoE by number of experts\n(dashed: Shared-Bottom, 113 units)")
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.set_xticks(experts, [str(int(n)) for n in experts])
    # plain numbers at 1, 2 and 5 times a power of ten, rather than powers of ten
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    low, high = ax.get_ylim()
    ax.set_ylim(low, high * 3.5)  # room for the legend above the dashed lines
    ax.legend(title="task correlation", ncol=2, loc="upper center")
    return ax


def plot_mean_gates(gates: Mapping[float, torch.Tensor], title: str = "seed 0") -> Figure:
    """Heatmaps of each task's mean gate weight over the experts, one row of panels per correlation.

    Args:
        gates: for each task correlation, the mean gate weights ``(tasks, experts)``.
        title: added to each panel's title (which run the weights come from).

    Returns:
        The Figure, ``COLUMN_INCHES`` wide. In each panel the experts are sorted from the one
        task 1 prefers most over task 2 to the one task 2 prefers most.
    """
    if not gates:
        raise ValueError("gates is empty: give at least one correlation's mean gate weights")
    for rho, g in gates.items():
        if g.dim() != 2:
            raise ValueError(f"gates[{rho}] must have shape (tasks, experts), got {tuple(g.shape)}")
    top = max(float(g.max()) for g in gates.values())
    fig, axes = plt.subplots(len(gates), 1, figsize=(COLUMN_INCHES, 1.45 * len(gates) + 0.5),
                             squeeze=False)
    for ax, (rho, g) in zip(axes[:, 0], gates.items()):
        g = g.detach().cpu()
        order = torch.argsort(g[0] - g[-1], descending=True)
        shown = g[:, order].numpy()
        ax.imshow(shown, cmap="viridis", vmin=0, vmax=top, aspect="auto")
        for (row, col), v in np.ndenumerate(shown):
            ax.text(col, row, f"{v:.2f}", ha="center", va="center", fontsize=11,
                    color="black" if v > 0.6 * top else "white")
        ax.set_yticks(range(len(g)), [f"task {k + 1}" for k in range(len(g))])
        ax.set_xticks(range(g.shape[1]), [f"e{int(i)}" for i in order])
        ax.set_title(f"ρ = {rho:g}: mean gate weight ({title})")
        ax.grid(False)
    axes[-1, 0].set_xlabel("expert")
    fig.tight_layout()
    return fig
