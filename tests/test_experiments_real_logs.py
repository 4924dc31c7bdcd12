"""Chapter 8's bookkeeping: split tables print counts as integers, one-task views, gate summaries,
and figures that fit the book's column."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from rankcourse.data import make_click_conversion  # noqa: E402
from rankcourse.experiments.real_logs import (  # noqa: E402
    gate_summary,
    plot_gate_means,
    plot_paired_seeds,
    single_task,
    split_overview,
)


@pytest.fixture(scope="module")
def data():
    return make_click_conversion(0.5, n_samples=2_000, seed=0)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_split_overview_keeps_row_counts_integer_beside_float_rates(data):
    table = split_overview((data.train, data.valid, data.test))
    assert list(table.index) == ["train", "valid", "test"]
    assert pd.api.types.is_integer_dtype(table["rows"])
    assert table["rows"].tolist() == [len(data.train), len(data.valid), len(data.test)]
    shown = table.round(4).to_string()
    assert f" {len(data.train)} " in shown and f"{len(data.train)}.0" not in shown
    rate = float(data.train.labels[:, 0].mean())
    assert table.loc["train", "click rate"] == pytest.approx(rate)


def test_split_overview_refuses_names_of_another_length(data):
    with pytest.raises(ValueError, match="2 names"):
        split_overview((data.train, data.valid, data.test), names=("a", "b"))


def test_single_task_view_keeps_one_label_column_in_every_split(data):
    view = single_task(data, "conversion")
    for part, full in ((view.train, data.train), (view.valid, data.valid), (view.test, data.test)):
        assert part.task_names == ("conversion",)
        assert torch.equal(part.labels[:, 0], full.labels[:, 1])
    with pytest.raises(KeyError, match="unknown task"):
        single_task(data, "income")


def test_gate_summary_of_identical_even_gates_is_cosine_one_and_entropy_log_e():
    gates = torch.full((10, 2, 4), 0.25)
    summary = gate_summary(gates)
    assert summary.cosine == pytest.approx(1.0)
    assert torch.allclose(summary.entropy, torch.full((2,), math.log(4)))
    assert torch.allclose(summary.mean, torch.full((2, 4), 0.25))


def test_gate_summary_of_disjoint_one_hot_gates_is_cosine_zero_and_entropy_zero():
    gates = torch.zeros(5, 2, 4)
    gates[:, 0, 0] = 1.0
    gates[:, 1, 3] = 1.0
    summary = gate_summary(gates)
    assert summary.cosine == pytest.approx(0.0)
    assert torch.allclose(summary.entropy, torch.zeros(2), atol=1e-6)


def test_gate_summary_names_the_shape_it_refuses():
    with pytest.raises(ValueError, match=r"\(10, 1, 4\)"):
        gate_summary(torch.ones(10, 1, 4))


def test_figures_fit_the_column_with_one_panel_per_seed():
    auc = pd.DataFrame({"LR": [0.90, 0.91, 0.92], "DeepFM": [0.93, 0.93, 0.94]},
                       index=pd.Index([0, 1, 2], name="seed"))
    fig = plot_paired_seeds(auc)
    assert fig.get_figwidth() <= 6.8
    assert len(fig.axes[0].get_lines()) == 3
    means = {s: torch.softmax(torch.randn(2, 6), -1) for s in range(5)}
    fig = plot_gate_means(means, ["income", "never married"])
    assert fig.get_figwidth() <= 6.8 and len(fig.axes) == 5
    assert [ax.get_ylabel() for ax in fig.axes] == [f"seed {s}" for s in range(5)]
    with pytest.raises(ValueError, match="3 labels"):
        plot_gate_means(means, ["a", "b", "c"])
