"""Chapter 9's bookkeeping on behaviour sequences: the figures and the forward-time measurement.

The chapter's notebook keeps on the page what teaches (the pooling, its gradient, the training and
the paired comparisons); drawing the histograms and attention bars, and timing a forward pass
under fixed conditions, live here.
"""

from __future__ import annotations

import time
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..models import BehaviourRanker
from ..models.sequence import POOLINGS
from ..schema import FeatureSchema, SequenceField, SparseField

__all__ = [
    "forward_time_per_batch", "plot_attention_examples", "plot_histories", "schema_with_history",
]

# The course's figures are at most this wide (inches) so that they read at body size in the book.
FIGURE_WIDTH_IN = 6.8
N_ITEMS, N_CATEGORIES, N_USERS = 1000, 20, 1000


def plot_histories(lengths: np.ndarray, matches: np.ndarray, max_len: int) -> Figure:
    """Two stacked histograms: users by history length; impressions by matching behaviours.

    Returns the Figure, 6.8 inches wide; the caller shows it (no ``plt.show()`` here).
    """
    lengths, matches = np.asarray(lengths), np.asarray(matches)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(FIGURE_WIDTH_IN, 5.6))
    top.hist(lengths, bins=np.arange(max_len + 2) - 0.5, color="C0")
    top.set(title=f"History length (median {np.median(lengths):.0f}, "
                  f"mean {lengths.mean():.1f})",
            xlabel="behaviours in the history", ylabel="users")
    bottom.hist(matches, bins=np.arange(matches.max() + 2) - 0.5, color="C1")
    bottom.set(title="Behaviours sharing the candidate's category",
               xlabel="$n_u(c_i)$", ylabel="test impressions", yscale="log")
    for ax in (top, bottom):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # counts, not fractions
    fig.tight_layout()
    return fig


def plot_attention_examples(weights: np.ndarray, relevance: np.ndarray, real: np.ndarray,
                            rows: Sequence[int]) -> Figure:
    """DIN's weight on each real behaviour of a few impressions, coloured by planted relevance.

    Args:
        weights, relevance, real: (impressions, T) weights, relevance (> 0: same category as the
            candidate) and mask of real (not padded) positions.
        rows: the impressions to draw, at most four (a 2 x 2 grid that fits the book's column).
    """
    if not 1 <= len(rows) <= 4:
        raise ValueError(f"rows must name 1 to 4 impressions, got {len(rows)}")
    fig, axes = plt.subplots(2, 2, figsize=(FIGURE_WIDTH_IN, 5.4), sharey=True)
    for ax, r in zip(axes.flat, rows):
        n = int(real[r].sum())
        colours = np.where(relevance[r, :n] > 0, "C3", "C7")
        ax.bar(np.arange(n), weights[r, :n], color=colours)
        ax.set(title=f"{int(relevance[r].sum())} relevant of {n}",
               xlabel="position t")
    for ax in axes.flat[len(rows):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("DIN weight")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ("C3", "C7")]
    fig.legend(handles=handles, labels=["same category", "other category"],
               loc="upper center", ncol=2)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig


def schema_with_history(max_len: int) -> FeatureSchema:
    """User, item and category fields and item and category histories of ``max_len`` columns."""
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    return FeatureSchema(
        sparse=(SparseField("user", N_USERS), SparseField("item", N_ITEMS),
                SparseField("category", N_CATEGORIES)),
        sequences=(SequenceField("hist_item", N_ITEMS, max_len, target="item"),
                   SequenceField("hist_category", N_CATEGORIES, max_len,
                                 target="category")))


def forward_time_per_batch(pooling: str, max_len: int, batch: int = 256, repeats: int = 5) -> float:
    """Milliseconds of CPU time of one forward pass of a :class:`BehaviourRanker`, on one thread.

    A fresh model with ``pooling`` reads a random batch with histories of ``max_len``; the median of
    ``repeats`` timed passes after one warm-up pass is returned. The thread count is restored after.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
    if batch < 1 or repeats < 1:
        raise ValueError(f"batch ({batch}) and repeats ({repeats}) must be >= 1")
    torch.manual_seed(0)
    model = BehaviourRanker(schema_with_history(max_len), pooling=pooling).eval()
    gen = torch.Generator().manual_seed(0)
    sparse = torch.cat([torch.randint(0, N_CATEGORIES, (batch, 3), generator=gen),
                        torch.randint(0, N_ITEMS, (batch, max_len), generator=gen),
                        torch.randint(0, N_CATEGORIES, (batch, max_len), generator=gen)], 1)
    dense = torch.zeros(batch, 0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad(), model.trusted_inputs():
            model(dense, sparse)  # warm-up: first calls allocate
            times = []
            for _ in range(repeats):
                start = time.process_time()
                model(dense, sparse)
                times.append(time.process_time() - start)
    finally:
        torch.set_num_threads(threads)
    return 1000 * float(np.median(times))
