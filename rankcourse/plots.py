"""Figures for the notebooks: training curves, reliability diagrams, gradient checks.

Every function draws on new or given Matplotlib axes and returns them (or their Figure); none calls
``plt.show()``, so notebooks and tests decide what to do with the figure. Seaborn is used only as a
local style (``sns.axes_style``), never changing global settings.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .metrics import expected_calibration_error, reliability_curve

__all__ = ["plot_history", "plot_reliability", "plot_gradient_check"]

_STYLE = "whitegrid"


def _histories(history: pd.DataFrame | Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    if isinstance(history, pd.DataFrame):
        return {"": history}
    if isinstance(history, Mapping) and all(isinstance(h, pd.DataFrame) for h in history.values()):
        if not history:
            raise ValueError("no histories to plot: the mapping is empty")
        return dict(history)
    raise TypeError(f"history must be a DataFrame from fit() or a dict name -> DataFrame, got {type(history).__name__}")


def _panels(columns: Sequence[str]) -> dict[str, list[str]]:
    """Group history columns by metric: loss (train + valid log loss), AUC, MSE."""
    panels: dict[str, list[str]] = {}
    for c in columns:
        if c == "train_loss" or c.startswith("train_loss_") or c.startswith("valid_logloss_"):
            panels.setdefault("loss", []).append(c)
        elif c.startswith("valid_auc_"):
            panels.setdefault("AUC", []).append(c)
        elif c.startswith("valid_mse_"):
            panels.setdefault("MSE", []).append(c)
    return panels


def plot_history(
    history: pd.DataFrame | Mapping[str, pd.DataFrame],
    x: str = "epoch",
    metrics: Sequence[str] | None = None,
    axes: Sequence[Axes] | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Training curves from :func:`rankcourse.training.fit`: one panel per kind of metric.

    Args:
        history: one history, or a dict ``name -> history`` to compare models (same colour per model,
            line style per column).
        x: ``"epoch"`` or ``"step"``.
        metrics: the columns to draw; default every loss, AUC and MSE column present.
        axes: existing axes, one per panel; default a new figure.
        figsize: size of a new figure.

    Returns:
        The Figure. Panels: ``loss`` (train loss and validation log loss), ``AUC``, ``MSE``.
    """
    runs = _histories(history)
    columns: list[str] = []
    for h in runs.values():
        if x not in h.columns:
            raise KeyError(f"x={x!r} is not a history column; columns are {list(h.columns)}")
        columns += [c for c in h.columns if c not in columns]
    if metrics is not None:
        missing = [m for m in metrics if m not in columns]
        if missing:
            raise KeyError(f"metric column(s) {missing} not in the history; columns are {columns}")
        columns = list(metrics)
    panels = _panels(columns)
    if metrics is not None:
        grouped = {c for cols in panels.values() for c in cols}
        for c in columns:
            if c not in grouped:
                panels.setdefault(c, []).append(c)
    if not panels:
        raise ValueError(f"nothing to plot: no loss/AUC/MSE columns among {columns}")
    with sns.axes_style(_STYLE):
        if axes is None:
            fig, new_axes = plt.subplots(1, len(panels), figsize=figsize or (4.2 * len(panels), 3.2), squeeze=False)
            axes = list(new_axes[0])
        else:
            axes = list(np.ravel(axes))
            if len(axes) < len(panels):
                raise ValueError(f"{len(panels)} panels {list(panels)} need {len(panels)} axes, got {len(axes)}")
            fig = axes[0].figure
        palette = sns.color_palette(n_colors=max(len(runs), 1))
        styles = ["-", "--", ":", "-."]
        for ax, (title, cols) in zip(axes, panels.items()):
            for r, (name, h) in enumerate(runs.items()):
                for j, c in enumerate(cols):
                    if c not in h.columns or h[c].isna().all():
                        continue
                    label = c if not name else f"{name}: {c}" if len(cols) > 1 else name
                    color = palette[r] if len(runs) > 1 else None
                    ax.plot(h[x], h[c], styles[j % len(styles)] if len(runs) > 1 else "-",
                            color=color, marker="o", markersize=3, label=label)
            ax.set_xlabel(x)
            ax.set_title(title)
            ax.legend(fontsize="small")
        fig.tight_layout()
    return fig


def plot_reliability(
    curves: Mapping[str, tuple[Any, Any]] | tuple[Any, Any],
    n_bins: int = 10,
    strategy: str = "quantile",
    ax: Axes | None = None,
    log_scale: bool = False,
) -> Axes:
    """Reliability diagram: observed click rate against mean prediction per bin, one line per model.

    Args:
        curves: ``{name: (y, p)}`` with 0/1 labels and predicted probabilities (a single
            ``(y, p)`` pair is drawn as ``"model"``). Legend entries show each model's ECE.
        n_bins, strategy: binning (see :func:`rankcourse.metrics.reliability_curve`).
        ax: existing axes; default a new figure.
        log_scale: log axes, useful for click rates of a few percent.

    Returns:
        The Axes. The dashed diagonal is perfect calibration.
    """
    if isinstance(curves, tuple) and len(curves) == 2:
        curves = {"model": curves}
    if not isinstance(curves, Mapping) or not curves:
        raise TypeError("curves must be a non-empty dict name -> (y, p) or one (y, p) pair")
    with sns.axes_style(_STYLE):
        if ax is None:
            _, ax = plt.subplots(figsize=(4.5, 4.2))
        lo, hi = 1.0, 0.0
        for name, pair in curves.items():
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise TypeError(f"curve {name!r} must be a (y, p) pair")
            y, p = pair
            curve = reliability_curve(y, p, n_bins=n_bins, strategy=strategy)
            ece = expected_calibration_error(y, p, n_bins=n_bins, strategy=strategy)
            ax.plot(curve["mean_pred"], curve["observed_rate"], marker="o", label=f"{name} (ECE {ece:.4f})")
            lo = min(lo, curve["mean_pred"].min(), curve["observed_rate"].min())
            hi = max(hi, curve["mean_pred"].max(), curve["observed_rate"].max())
        if log_scale:
            lo = max(lo, 1e-4)
            ax.set_xscale("log")
            ax.set_yscale("log")
        else:
            lo, hi = 0.0, max(hi, 1e-3)
        ax.plot([lo, hi], [lo, hi], "--", color="grey", linewidth=1, label="perfect calibration")
        ax.set_xlabel("mean predicted probability")
        ax.set_ylabel("observed positive rate")
        ax.set_title(f"reliability ({strategy} bins)")
        ax.legend(fontsize="small")
    return ax


def _flat(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    arr = np.asarray(x, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    return arr


def plot_gradient_check(
    analytic: Any,
    numeric: Any,
    axes: Sequence[Axes] | None = None,
    title: str = "gradient check",
    floor: float = 1e-16,
) -> Figure:
    """Analytic against numerical gradients: a scatter on the diagonal and the absolute errors.

    Left: analytic vs numeric values (points on the dashed diagonal agree). Right: the absolute
    error of each entry on a log scale, against ``|numeric|``; with central differences in float64
    errors near 1e-8 or below mean the analytic gradient is right, errors near the gradient's own
    size mean it is wrong.

    Args:
        analytic, numeric: gradients of the same shape (tensors or arrays).
        axes: two existing axes; default a new figure.
        title: figure title.
        floor: errors are drawn at least at this value so exact zeros stay visible on the log axis.
    """
    a, n = _flat(analytic, "analytic"), _flat(numeric, "numeric")
    if a.shape != n.shape:
        raise ValueError(f"analytic has {a.size} entries but numeric has {n.size}")
    err = np.maximum(np.abs(a - n), floor)
    with sns.axes_style(_STYLE):
        if axes is None:
            fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(8.4, 3.6))
        else:
            ax0, ax1 = list(np.ravel(axes))[:2]
            fig = ax0.figure
        ax0.scatter(n, a, s=12, alpha=0.7)
        lo, hi = float(min(a.min(), n.min())), float(max(a.max(), n.max()))
        ax0.plot([lo, hi], [lo, hi], "--", color="grey", linewidth=1)
        ax0.set_xlabel("numerical gradient")
        ax0.set_ylabel("analytic gradient")
        ax1.scatter(np.maximum(np.abs(n), floor), err, s=12, alpha=0.7)
        ax1.set_xscale("log")
        ax1.set_yscale("log")
        ax1.set_xlabel("|numerical gradient|")
        ax1.set_ylabel("|analytic − numerical|")
        ax1.set_title(f"max abs error {np.abs(a - n).max():.2e}")
        fig.suptitle(title)
        fig.tight_layout()
    return fig
