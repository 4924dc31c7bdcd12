"""Chapter 10's latency figure and ratios, from a small made-up grid."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from rankcourse.experiments.serving import median_ratio, plot_latency


def grid() -> pd.DataFrame:
    rows = []
    for model in ("DeepFM", "DIN"):
        for engine, per_candidate in (("eager", 0.004), ("shared", 0.001)):
            for threads in (1, 2):
                for n in (50, 500):
                    p50 = 0.1 + per_candidate * n
                    rows.append({"model": model, "engine": engine, "threads": threads, "N": n,
                                 "p50": p50, "p99": 2 * p50})
    return pd.DataFrame(rows)


def test_the_latency_figure_stacks_one_panel_a_model_in_the_books_column():
    fig = plot_latency(grid(), budget_ms=10.0)
    try:
        assert fig.get_figwidth() <= 6.8 and len(fig.axes) == 2
        assert [ax.get_title() for ax in fig.axes] == ["DeepFM", "DIN"]
        assert len(fig.axes[0].get_lines()) == 4 + 1          # 2 engines x 2 thread counts + budget
        curves = fig.axes[0].get_lines()[:4]
        assert {line.get_linestyle() for line in curves} == {"-", "--"}   # one and two threads
    finally:
        plt.close(fig)


def test_median_ratio_is_eager_over_the_engine_at_the_given_n():
    assert median_ratio(grid(), "DeepFM", "shared") == pytest.approx((0.1 + 2.0) / (0.1 + 0.5))
    with pytest.raises(KeyError, match="onnxruntime"):
        median_ratio(grid(), "DeepFM", "onnxruntime")
