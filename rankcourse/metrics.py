"""Offline metrics for click models: AUC, log loss, calibration, and the Bayes-optimal reference.

On synthetic data the true click probability of every row is known, so every table can show what
a perfect model would score (``bayes_auc``, ``bayes_logloss``): a model is judged by the gap to that
ceiling, not by the raw number. Calibration follows Guo et al. (2017), "On Calibration of Modern
Neural Networks": the expected calibration error (ECE) is the count-weighted mean of
``|observed rate - mean prediction|`` over probability bins.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from .checks import check_positive_int
from .scores import auc, auc_is_defined, check_binary_pair, logloss, to_numpy, undefined_auc_warning
from .data.tabular import TabularData
from .inference import predictions_in_label_units

__all__ = [
    "evaluate",
    "truth_metrics",
    "reliability_curve",
    "expected_calibration_error",
    "auc",
    "auc_is_defined",
    "undefined_auc_warning",
    "logloss",
]

STRATEGIES = ("uniform", "quantile")


def _check_bins(n_bins: int, strategy: str) -> None:
    check_positive_int(n_bins, "n_bins")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")


def _bin_index(p: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    """Bin of each probability: equal-width bins on [0, 1] or equal-count (quantile) bins."""
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        # Repeated quantiles (many equal predictions) collapse into one bin rather than empty ones.
        edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1)))
    # Inner edges only: p == 1.0 falls in the last bin, p == 0.0 in the first.
    return np.searchsorted(edges[1:-1], p, side="right")


def reliability_curve(y: Any, p: Any, n_bins: int = 10, strategy: str = "quantile") -> pd.DataFrame:
    """Observed positive rate against mean prediction, per probability bin.

    Args:
        y: ``(n,)`` 0/1 labels.
        p: ``(n,)`` predicted probabilities.
        n_bins: number of bins (fewer with ``"quantile"`` when many predictions are equal).
        strategy: ``"quantile"`` (equal counts; suits click rates of a few percent, where
            equal-width bins leave almost everything in the first bin) or ``"uniform"`` (equal width).

    Returns:
        A DataFrame, one row per non-empty bin in increasing order, with columns ``mean_pred``,
        ``observed_rate`` and ``count``. A calibrated model has ``observed_rate ≈ mean_pred``.
    """
    y, p = check_binary_pair(y, p)
    _check_bins(n_bins, strategy)
    idx = _bin_index(p, n_bins, strategy)
    count = np.bincount(idx)
    keep = count > 0
    sum_p = np.bincount(idx, weights=p)[keep]
    sum_y = np.bincount(idx, weights=y)[keep]
    count = count[keep]
    return pd.DataFrame({"mean_pred": sum_p / count, "observed_rate": sum_y / count, "count": count})


def expected_calibration_error(y: Any, p: Any, n_bins: int = 10, strategy: str = "uniform") -> float:
    """ECE = sum over bins of ``count/n * |observed rate - mean prediction|`` (Guo et al. 2017).

    Equal-width bins by default, as in the paper; ``strategy="quantile"`` gives equal-count bins.
    """
    curve = reliability_curve(y, p, n_bins=n_bins, strategy=strategy)
    w = curve["count"].to_numpy() / curve["count"].sum()
    return float(np.sum(w * np.abs(curve["observed_rate"].to_numpy() - curve["mean_pred"].to_numpy())))


def _predictions(model_or_probs: Any, data: TabularData, batch_size: int) -> np.ndarray:
    """``(n, n_tasks)`` predictions in label units: probabilities for binary tasks, values for regression."""
    n = len(data)
    if isinstance(model_or_probs, torch.nn.Module):
        return predictions_in_label_units(model_or_probs, data, batch_size).double().numpy()
    pred = to_numpy(model_or_probs, "predictions")
    if pred.ndim == 1:
        pred = pred[:, None]
    if pred.ndim != 2 or pred.shape[0] != n or pred.shape[1] != data.n_tasks:
        raise ValueError(
            f"predictions must have shape ({n},) or ({n}, {data.n_tasks}) for tasks {list(data.task_names)}, "
            f"got {tuple(np.shape(model_or_probs))}"
        )
    for k, (name, kind) in enumerate(zip(data.task_names, data.task_types)):
        col = pred[:, k]
        bad = ~np.isfinite(col) if kind == "regression" else ~np.isfinite(col) | (col < 0) | (col > 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            what = "finite" if kind == "regression" else "probabilities in [0, 1]"
            raise ValueError(f"task {name!r}: predictions must be {what}, got {col[i]} at row {i}")
    return pred


def _task_row(y: np.ndarray, p: np.ndarray, kind: str, truth: np.ndarray | None, n_bins: int,
              what: str = "") -> dict:
    row: dict[str, Any] = {"type": kind, "n": len(y)}
    if kind == "binary":
        row.update(auc=auc(y, p, what), logloss=logloss(y, p), ece=expected_calibration_error(y, p, n_bins),
                   mean_pred=float(p.mean()), observed_rate=float(y.mean()))
        if truth is not None:
            row.update(bayes_auc=auc(y, truth, what), bayes_logloss=logloss(y, truth))
    else:
        row.update(mse=float(np.mean((p - y) ** 2)), mean_pred=float(p.mean()), observed_mean=float(y.mean()))
        if truth is not None:
            # The noise floor: what predicting the noise-free target itself scores.
            row.update(bayes_mse=float(np.mean((truth - y) ** 2)))
    return row


def evaluate(model_or_probs: Any, data: TabularData, *, batch_size: int = 8192, n_bins: int = 10) -> pd.DataFrame:
    """Metrics of a model (or of given predictions) on ``data``, one row per task.

    Args:
        model_or_probs: a model following the course convention (its logits go through a sigmoid
            for binary tasks), or predictions ``(n,)`` / ``(n, n_tasks)``: probabilities for binary
            tasks, predicted values for regression tasks.
        data: the split to score.
        batch_size: rows per forward pass when a model is given.
        n_bins: equal-width bins for the ECE.

    Returns:
        A DataFrame indexed by task name with ``type`` and ``n``; for binary tasks ``auc``,
        ``logloss``, ``ece``, ``mean_pred``, ``observed_rate``; for regression tasks ``mse``,
        ``mean_pred``, ``observed_mean``. When ``data.true_prob`` exists: ``bayes_auc`` and
        ``bayes_logloss`` (the true probabilities scored the same way), or ``bayes_mse`` (the
        noise-free target's MSE, i.e. the noise floor). Columns that no task uses are left out.
    """
    if not isinstance(data, TabularData):
        raise TypeError(f"data must be a TabularData, got {type(data).__name__}")
    pred = _predictions(model_or_probs, data, batch_size)
    labels = data.labels.detach().cpu().double().numpy()
    truth = None if data.true_prob is None else data.true_prob.detach().cpu().double().numpy()
    rows = {}
    for k, (name, kind) in enumerate(zip(data.task_names, data.task_types)):
        t = None if truth is None else truth[:, k]
        rows[name] = _task_row(labels[:, k], pred[:, k], kind, t, n_bins, f"task {name!r}")
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "task"
    return frame


def truth_metrics(data: TabularData, *, n_bins: int = 10) -> pd.DataFrame:
    """The metrics of the true probabilities (noise-free targets for regression) on ``data``.

    The best any model can do on this sample: ``evaluate(data.true_prob, data)``, one row per task
    (the ``bayes_*`` columns of :func:`evaluate` as a table of their own). Not to be confused with
    ``SyntheticDataset.bayes_metrics(split)``, the same figures of one split as a dict.
    """
    if not isinstance(data, TabularData):
        raise TypeError(f"data must be a TabularData, got {type(data).__name__}")
    if data.true_prob is None:
        raise ValueError("data has no true_prob: Bayes metrics exist only for synthetic data with known truth")
    frame = evaluate(data.true_prob, data, n_bins=n_bins)
    return frame.drop(columns=[c for c in frame.columns if c.startswith("bayes_")])
