"""Chapter 9's bookkeeping: figures that fit the book's column, and a forward-time measurement
that runs every pooling and leaves the thread setting as it found it (no timing is asserted)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from rankcourse.experiments.behaviour import (  # noqa: E402
    forward_time_per_batch,
    plot_attention_examples,
    plot_histories,
    schema_with_history,
)
from rankcourse.models.sequence import POOLINGS  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_history_figure_stacks_two_panels_within_the_column():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 21, size=200)
    fig = plot_histories(lengths, rng.integers(0, 6, size=500), max_len=20)
    assert fig.get_figwidth() <= 6.8 and len(fig.axes) == 2
    assert f"median {np.median(lengths):.0f}" in fig.axes[0].get_title()
    assert sum(p.get_height() for p in fig.axes[0].patches) == 200  # every user counted
    for ax in fig.axes:  # counts: whole-number ticks only
        assert all(float(t).is_integer() for t in ax.get_xticks())


def test_attention_figure_colours_relevant_behaviours_apart():
    weights = np.arange(24, dtype=float).reshape(3, 8)
    relevance = np.zeros((3, 8))
    relevance[:, 1] = 1
    real = np.ones((3, 8), dtype=bool)
    real[:, 6:] = False
    fig = plot_attention_examples(weights, relevance, real, rows=[0, 2])
    assert fig.get_figwidth() <= 6.8
    drawn = [ax for ax in fig.axes if ax.get_visible()]
    assert len(drawn) == 2 and len(drawn[0].patches) == 6  # padding is not drawn
    colours = {tuple(p.get_facecolor()) for p in drawn[0].patches}
    assert len(colours) == 2
    assert drawn[0].get_title() == "1 relevant of 6"
    with pytest.raises(ValueError, match="1 to 4"):
        plot_attention_examples(weights, relevance, real, rows=[0, 1, 2, 0, 1])


def test_schema_with_history_has_two_history_fields_of_the_given_length():
    schema = schema_with_history(7)
    assert [s.max_len for s in schema.sequences] == [7, 7]
    assert schema.n_fields == 3 + 2 * 7
    with pytest.raises(ValueError, match="max_len"):
        schema_with_history(0)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_forward_time_runs_every_pooling_and_restores_the_thread_count(pooling):
    before = torch.get_num_threads()
    ms = forward_time_per_batch(pooling, max_len=5, batch=8, repeats=2)
    assert math.isfinite(ms) and ms >= 0
    assert torch.get_num_threads() == before


def test_forward_time_names_an_unknown_pooling():
    with pytest.raises(ValueError, match="'max'"):
        forward_time_per_batch("max", max_len=5)
