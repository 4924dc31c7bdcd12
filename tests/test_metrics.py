"""Metrics (AUC, log loss, calibration, Bayes reference) and the plotting helpers built on them."""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import log_loss, roc_auc_score  # noqa: E402

from rankcourse import metrics, plots  # noqa: E402
from rankcourse.inference import predict  # noqa: E402
from rankcourse.training import fit  # noqa: E402


@pytest.fixture(autouse=True)
def no_show_and_close(monkeypatch):
    """Plot helpers must never call plt.show(); close figures after each test."""

    def forbidden(*args, **kwargs):
        raise AssertionError("plt.show() called inside a plotting helper")

    monkeypatch.setattr(plt, "show", forbidden)
    yield
    plt.close("all")


def bernoulli_sample(n=20000, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.beta(1.0, 4.0, size=n)
    y = (rng.random(n) < p).astype(float)
    return y, p


# --------------------------------------------------------------------------- calibration
def test_uniform_reliability_curve_matches_sklearn_calibration_curve():
    y, p = bernoulli_sample()
    curve = metrics.reliability_curve(y, p, n_bins=10, strategy="uniform")
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(curve["observed_rate"], prob_true, rtol=1e-10)
    np.testing.assert_allclose(curve["mean_pred"], prob_pred, rtol=1e-10)
    assert curve["count"].sum() == len(y)


def test_quantile_bins_hold_equal_counts_and_edges_land_in_end_bins():
    y, p = bernoulli_sample(1000)
    curve = metrics.reliability_curve(y, p, n_bins=4, strategy="quantile")
    assert list(curve["count"]) == [250, 250, 250, 250]
    assert curve["mean_pred"].is_monotonic_increasing
    edge = metrics.reliability_curve([0, 1, 1], [0.0, 0.55, 1.0], n_bins=2, strategy="uniform")
    assert list(edge["count"]) == [1, 2]


def test_ece_is_near_zero_for_true_probabilities_and_exact_for_constant_predictions():
    y, p = bernoulli_sample(50000)
    assert metrics.expected_calibration_error(y, p) < 0.01
    constant = np.full_like(p, 0.5)
    assert metrics.expected_calibration_error(y, constant) == pytest.approx(abs(0.5 - y.mean()))
    # overconfident predictions are miscalibrated
    sharp = 1 / (1 + np.exp(-3 * np.log(p / (1 - p))))
    assert metrics.expected_calibration_error(y, sharp) > 0.05


def test_ece_by_hand_on_a_small_example():
    y = [0, 0, 1, 1, 1]
    p = [0.1, 0.2, 0.3, 0.8, 0.9]
    # bins [0,.5): mean p .2, rate 1/3 ; [.5,1]: mean p .85, rate 1
    expected = 3 / 5 * abs(1 / 3 - 0.2) + 2 / 5 * abs(1 - 0.85)
    assert metrics.expected_calibration_error(y, p, n_bins=2) == pytest.approx(expected)


@pytest.mark.parametrize(
    "y, p, n_bins, strategy, message",
    [
        ([0, 1, 2], [0.1, 0.2, 0.3], 10, "uniform", "labels y must be 0 or 1, got 2.0 at position 2"),
        ([0, 1], [0.1, 1.2], 10, "uniform", r"probabilities p must be finite and in \[0, 1\], got 1.2 at position 1"),
        ([0, 1], [0.1, np.nan], 10, "uniform", "got nan at position 1"),
        ([0, 1], [0.1], 10, "uniform", "y has 2 values but p has 1"),
        ([], [], 10, "uniform", "empty"),
        ([0, 1], [0.1, 0.2], 0, "uniform", "n_bins must be a positive int, got 0"),
        ([0, 1], [0.1, 0.2], 10, "equal", "strategy must be one of"),
    ],
)
def test_calibration_inputs_are_validated(y, p, n_bins, strategy, message):
    with pytest.raises(ValueError, match=message):
        metrics.reliability_curve(y, p, n_bins=n_bins, strategy=strategy)


def test_auc_of_a_single_class_is_nan_with_a_warning():
    with pytest.warns(UserWarning, match="AUC is undefined"):
        assert np.isnan(metrics.auc([1, 1, 1], [0.2, 0.4, 0.9]))


# --------------------------------------------------------------------------- evaluate
def test_evaluate_probabilities_matches_sklearn_and_reports_bayes(toy):
    data = toy(3000)
    rng = np.random.default_rng(0)
    probs = np.clip(data.true_prob[:, 0].numpy() + rng.normal(0, 0.05, len(data)), 0.01, 0.99)
    table = metrics.evaluate(probs, data)
    row = table.loc["click"]
    y = data.labels[:, 0].numpy()
    assert row["auc"] == pytest.approx(roc_auc_score(y, probs))
    assert row["logloss"] == pytest.approx(log_loss(y, probs))
    assert row["mean_pred"] == pytest.approx(probs.mean())
    assert row["observed_rate"] == pytest.approx(y.mean())
    assert row["bayes_auc"] == pytest.approx(roc_auc_score(y, data.true_prob[:, 0].numpy()))
    assert row["bayes_auc"] > row["auc"]
    assert {"type", "n", "ece", "bayes_logloss"} <= set(table.columns)
    assert "mse" not in table.columns
    bayes = metrics.truth_metrics(data)
    assert bayes.loc["click", "auc"] == pytest.approx(row["bayes_auc"])
    assert "bayes_auc" not in bayes.columns


def test_evaluate_a_model_equals_evaluating_its_predictions(toy, tiny_model):
    data = toy(1500, n_tasks=2)
    model = tiny_model(data.schema, n_tasks=2)
    fit(model, data, lr=0.05, progress=False, device="cpu")
    by_model = metrics.evaluate(model, data, batch_size=100)
    by_probs = metrics.evaluate(predict(model, data), data)
    pd.testing.assert_frame_equal(by_model, by_probs, rtol=1e-6)
    assert list(by_model.index) == ["task0", "task1"]


def test_evaluate_regression_reports_mse_and_noise_floor(toy):
    data = toy(2000, task_types=("regression",))
    truth = data.true_prob[:, 0].numpy()
    labels = data.labels[:, 0].numpy()
    table = metrics.evaluate(truth + 0.1, data)
    row = table.loc["click"]
    assert row["mse"] == pytest.approx(np.mean((truth + 0.1 - labels) ** 2))
    assert row["bayes_mse"] == pytest.approx(0.09, rel=0.1)  # noise std 0.3 in make_toy
    assert "auc" not in table.columns


def test_evaluate_rejects_bad_predictions_naming_the_task(toy, tiny_model):
    data = toy(100, n_tasks=2)
    with pytest.raises(ValueError, match=r"predictions must have shape \(100,\) or \(100, 2\)"):
        metrics.evaluate(np.full(99, 0.5), data)
    bad = np.full((100, 2), 0.5)
    bad[7, 1] = 1.5
    with pytest.raises(ValueError, match=r"task 'task1': predictions must be probabilities in \[0, 1\], got 1.5 at row 7"):
        metrics.evaluate(bad, data)
    with pytest.raises(ValueError, match="task head"):
        metrics.evaluate(tiny_model(data.schema), data)
    with pytest.raises(TypeError, match="TabularData"):
        metrics.evaluate(bad, (data.dense, data.sparse))
    no_truth = dataclasses.replace(toy(100), true_prob=None)
    with pytest.raises(ValueError, match="no true_prob"):
        metrics.truth_metrics(no_truth)
    assert "bayes_auc" not in metrics.evaluate(np.full(100, 0.5), no_truth).columns


# --------------------------------------------------------------------------- plots
def _history(toy, tiny_model, n_tasks=1):
    train, valid = toy(600, n_tasks=n_tasks), toy(200, seed=1, n_tasks=n_tasks)
    return fit(tiny_model(train.schema, n_tasks=n_tasks), train, valid, epochs=3, batch_size=100, progress=False, device="cpu")


def test_plot_history_draws_loss_and_auc_panels(toy, tiny_model):
    history = _history(toy, tiny_model)
    fig = plots.plot_history(history)
    assert isinstance(fig, matplotlib.figure.Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "AUC"]
    assert len(fig.axes[0].lines) == 2  # train loss, valid log loss
    fig2 = plots.plot_history({"a": history, "b": history}, x="step", metrics=["valid_auc_click"])
    assert len(fig2.axes) == 1 and len(fig2.axes[0].lines) == 2
    with pytest.raises(KeyError, match="valid_auc_ctr"):
        plots.plot_history(history, metrics=["valid_auc_ctr"])
    with pytest.raises(KeyError, match="x='time'"):
        plots.plot_history(history, x="time")


def test_plot_reliability_has_a_diagonal_and_ece_labels():
    y, p = bernoulli_sample(2000)
    ax = plots.plot_reliability({"true": (y, p), "constant": (y, np.full_like(p, 0.3))}, n_bins=5)
    assert isinstance(ax, matplotlib.axes.Axes)
    labels = [line.get_label() for line in ax.lines]
    assert "perfect calibration" in labels
    assert any(lbl.startswith("true (ECE") for lbl in labels)
    diagonal = ax.lines[labels.index("perfect calibration")]
    np.testing.assert_allclose(diagonal.get_xdata(), diagonal.get_ydata())
    ax2 = plots.plot_reliability((y, p), log_scale=True)
    assert ax2.get_xscale() == "log"


def test_plot_gradient_check_shows_values_and_log_errors():
    numeric = torch.linspace(-1, 1, 20, dtype=torch.float64)
    analytic = numeric + 1e-9
    fig = plots.plot_gradient_check(analytic, numeric)
    left, right = fig.axes[:2]
    assert right.get_yscale() == "log"
    assert "1.00e-09" in right.get_title()
    with pytest.raises(ValueError, match="entries"):
        plots.plot_gradient_check(analytic[:5], numeric)
