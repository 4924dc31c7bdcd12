"""Chapter 8's bookkeeping on Census-Income: split tables, one-task views, gate summaries, figures.

The chapter's notebook keeps on the page what teaches (loading, training, the paired comparisons,
the assertions); the table layout, the summaries of the gates and the drawing live here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from torch import Tensor

from ..data import TabularData

__all__ = [
    "GateSummary", "SingleTaskSplits", "gate_summary", "plot_gate_means", "plot_paired_seeds",
    "single_task", "split_overview",
]

# The course's figures are at most this wide (inches) so that they read at body size in the book.
FIGURE_WIDTH_IN = 6.8


def split_overview(splits: Sequence[TabularData], names: Sequence[str] = ("train", "valid", "test")
                   ) -> pd.DataFrame:
    """One row per split: its number of rows (an integer column) and each task's positive rate.

    Raises:
        ValueError: if ``splits`` and ``names`` differ in length.
    """
    if len(splits) != len(names):
        raise ValueError(f"got {len(splits)} splits but {len(names)} names: {list(names)}")
    rows = [{"split": name, "rows": len(part),
             **{f"{task} rate": float(rate)
                for task, rate in zip(part.task_names, part.positive_rate)}}
            for name, part in zip(names, splits)]
    return pd.DataFrame(rows).set_index("split")


@dataclass(frozen=True)
class SingleTaskSplits:
    """The train / valid / test splits of a data set, each reduced to one task."""

    train: TabularData
    valid: TabularData
    test: TabularData


def single_task(data: object, task: str) -> SingleTaskSplits:
    """A view of ``data``'s three splits (attributes ``train``, ``valid``, ``test``) with one task."""
    return SingleTaskSplits(*(getattr(data, part).task(task) for part in ("train", "valid", "test")))


@dataclass(frozen=True)
class GateSummary:
    """What a multi-task model's gates chose, averaged over rows.

    Attributes:
        mean: (tasks, experts) mean gate weight of each task on each expert.
        entropy: (tasks,) mean entropy of each task's gate (``log E`` at most, for even weights).
        cosine: cosine similarity of the first two tasks' mean mixtures (1: the same mixture).
    """

    mean: Tensor
    entropy: Tensor
    cosine: float


def gate_summary(gates: Tensor) -> GateSummary:
    """Summarise gate weights of shape (rows, tasks, experts), each row of a task summing to 1.

    Raises:
        ValueError: if ``gates`` is not 3-dimensional with at least two tasks.
    """
    if gates.dim() != 3 or gates.shape[1] < 2:
        raise ValueError(f"gates must have shape (rows, tasks >= 2, experts), got {tuple(gates.shape)}")
    mean = gates.mean(0)
    entropy = -(gates * gates.clamp_min(1e-12).log()).sum(-1).mean(0)
    cosine = float(torch.nn.functional.cosine_similarity(mean[0], mean[1], dim=0))
    return GateSummary(mean=mean, entropy=entropy, cosine=cosine)


def plot_paired_seeds(auc_by_seed: pd.DataFrame, ylabel: str = "test AUC (income)") -> Figure:
    """One line per seed (a row of ``auc_by_seed``) across the models (its columns).

    Returns the Figure, 6.8 inches wide; the caller shows it (no ``plt.show()`` here).
    """
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH_IN, 3.4))
    models = [str(c) for c in auc_by_seed.columns]
    for seed, aucs in auc_by_seed.iterrows():
        ax.plot(models, aucs.to_numpy(), marker="o", alpha=0.8, label=f"seed {seed}")
    ax.set(ylabel=ylabel, title="Each line is one seed: the comparison is paired")
    ax.legend(ncol=min(len(auc_by_seed), 3), fontsize="small")
    fig.tight_layout()
    return fig


def plot_gate_means(mean_gates: Mapping[int, Tensor], task_labels: Sequence[str]) -> Figure:
    """A heatmap of each seed's mean gate weights (tasks x experts), one row of panels per seed.

    The panels are stacked, so the figure stays within the book's column for any number of seeds.
    Returns the Figure; the caller shows it.

    Raises:
        ValueError: if there is no seed, or a seed's number of tasks differs from the labels'.
    """
    if not mean_gates:
        raise ValueError("mean_gates is empty: no seed to draw")
    n = len(mean_gates)
    fig, axes = plt.subplots(n, 1, figsize=(FIGURE_WIDTH_IN, 0.4 + 1.5 * n), sharex=True,
                             squeeze=False)
    axes = axes[:, 0]
    for ax, (seed, means) in zip(axes, mean_gates.items()):
        values = means.detach().cpu().numpy()
        if values.shape[0] != len(task_labels):
            raise ValueError(f"seed {seed}: {values.shape[0]} tasks but {len(task_labels)} labels")
        sns.heatmap(values, ax=ax, vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".2f",
                    cbar=False, yticklabels=list(task_labels),
                    xticklabels=list(range(values.shape[1])))
        ax.tick_params(axis="y", rotation=0)
        ax.set_ylabel(f"seed {seed}")
    axes[0].set_title("Mean gate weight of each task on each expert")
    axes[-1].set_xlabel("expert")
    fig.tight_layout()
    return fig
