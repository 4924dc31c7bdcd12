"""rankcourse.experiments.mmoe: chapter 5's expert-sweep and gate figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from rankcourse.experiments.mmoe import COLUMN_INCHES, plot_expert_sweep, plot_mean_gates  # noqa: E402
from rankcourse.plots import COURSE_PALETTE  # noqa: E402


def _sweep() -> pd.DataFrame:
    rows = []
    for n in (1, 2, 4, 8):
        for rho in (1.0, 0.5):
            for seed, loss in enumerate((0.1, 0.2, 0.3, 0.4)):
                rows.append({"experts": n, "correlation": rho, "seed": seed,
                             "test MSE": loss / n if rho == 0.5 else loss})
    return pd.DataFrame(rows)


def test_expert_sweep_draws_the_median_of_each_correlation_in_course_colours():
    ax = plot_expert_sweep(_sweep(), {1.0: 0.5, 0.5: 0.6})
    solid = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    assert len(solid) == 2
    by_label = {line.get_label(): line for line in solid}
    # the median of (0.1, 0.2, 0.3, 0.4) / n at rho = 0.5
    np.testing.assert_allclose(by_label["ρ = 0.5"].get_ydata(), 0.25 / np.array([1, 2, 4, 8]))
    np.testing.assert_allclose(by_label["ρ = 1"].get_ydata(), [0.25] * 4)
    colours = {to_hex(line.get_color()) for line in ax.get_lines()}
    assert colours <= {c.lower() for c in COURSE_PALETTE}
    plt.close(ax.figure)


def test_expert_sweep_draws_one_dashed_shared_bottom_level_per_correlation_given():
    ax = plot_expert_sweep(_sweep(), {0.5: 0.6})
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert [line.get_ydata()[0] for line in dashed] == [0.6]
    assert ax.figure.get_figwidth() <= COLUMN_INCHES
    plt.close(ax.figure)


def test_expert_sweep_names_a_missing_column():
    with pytest.raises(ValueError, match="experts"):
        plot_expert_sweep(_sweep().drop(columns="experts"), {})


def test_mean_gates_stacks_one_panel_per_correlation_within_the_column():
    gates = {rho: torch.softmax(torch.randn(2, 8), dim=-1) for rho in (1.0, 0.9, 0.5)}
    fig = plot_mean_gates(gates)
    assert len(fig.axes) == 3
    assert fig.get_figwidth() <= COLUMN_INCHES
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == ["ρ = 1", "ρ = 0.9", "ρ = 0.5"]
    plt.close(fig)


def test_mean_gates_sorts_experts_from_task_one_to_task_two():
    g = torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.1, 0.4]])
    fig = plot_mean_gates({0.5: g})
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == ["e1", "e2", "e0"]  # g[0] - g[1] = (-0.4, 0.5, -0.1)
    cells = [t.get_text() for t in fig.axes[0].texts]
    assert cells[:3] == ["0.60", "0.30", "0.10"]
    plt.close(fig)


def test_mean_gates_rejects_a_wrong_shape_naming_it():
    with pytest.raises(ValueError, match=r"gates\[0.5\].*\(8,\)"):
        plot_mean_gates({0.5: torch.ones(8)})
    with pytest.raises(ValueError, match="empty"):
        plot_mean_gates({})
