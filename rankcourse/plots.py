"""Figures for the notebooks: the course style, training curves, reliability diagrams, gradient checks.

Every plotting function draws on new or given Matplotlib axes and returns them (or their Figure);
none calls ``plt.show()``, so notebooks and tests decide what to do with the figure. Seaborn is used
only as a local style (``sns.axes_style``), never changing global settings.

The one exception is :func:`use_course_style`, which a notebook calls once in its set-up cell: it
sets the course's look for every figure after it (a colour-blind-safe palette with a line style per
colour, white background, 12-point text) and, inside Jupyter, shows figures as 2x PNGs with no text
smaller than the course's size, which reads at the book's body size in a figure up to about 7 inches
wide (see :func:`fit_text_to_column`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from cycler import cycler
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text

from .metrics import expected_calibration_error, reliability_curve

__all__ = [
    "COURSE_PALETTE", "COURSE_LINESTYLES", "use_course_style", "register_bundled_fonts", "fit_text_to_column", "text_px_in_column",
    "course_png",
    "plot_history", "plot_reliability", "plot_gradient_check",
]

_STYLE = "whitegrid"

# The Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"), told apart by readers with
# any common colour-vision deficiency. Ordered so that Matplotlib's "C0".."C7" keep their usual
# roles (C0 blue, C1 orange, C2 green, C3 red, C7 grey); its yellow, faint on white, is left out and
# grey takes the last place.
COURSE_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#7F7F7F")
# One line style per colour, so that curves stay apart in greyscale print.
COURSE_LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1.5, 1, 1.5, 1, 1.5)), (0, (8, 2)), (0, (1, 1)),
                     (0, (3, 3)))
# The width a figure gets in the book at a 1280-pixel-wide window, and the body text, in CSS pixels (measured
# in the built book with headless Chromium: sphinx-book-theme 1.3 with book/_static/rankcourse.css, whose
# 1rem article padding makes the column 720 px, the theme's 2rem 688 px; tests/test_book.py checks it).
BOOK_COLUMN_PX = 720.0
BOOK_BODY_PX = 16.0
# The course's text size: 12 pt at 100 dpi is 16.7 CSS pixels, body size when shown at full size.
COURSE_FONT_PT = 12.0


def _course_rc() -> dict[str, Any]:
    return {
        "axes.prop_cycle": cycler(color=list(COURSE_PALETTE)) + cycler(linestyle=list(COURSE_LINESTYLES)),
        "figure.facecolor": "white",  # opaque: figures stay readable in the book's dark theme
        "savefig.facecolor": "white",
        "figure.dpi": 100,
        "font.size": COURSE_FONT_PT,
        "axes.labelsize": COURSE_FONT_PT,
        "axes.titlesize": COURSE_FONT_PT,
        "xtick.labelsize": COURSE_FONT_PT,
        "ytick.labelsize": COURSE_FONT_PT,
        "legend.fontsize": COURSE_FONT_PT,
        "legend.title_fontsize": COURSE_FONT_PT,
        "lines.linewidth": 1.8,
        "lines.markersize": 5,
    }


def text_px_in_column(fig: Figure, column_px: float = BOOK_COLUMN_PX) -> float:
    """Size of the figure's smallest text, in CSS pixels, once the book has shrunk it to its column."""
    fig.canvas.draw()
    shrink = min(1.0, column_px / (fig.get_figwidth() * fig.dpi))
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    for ax in fig.axes:
        sizes += [t.get_fontsize() for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
    return min(sizes, default=float("inf")) * fig.dpi / 72.0 * shrink


def fit_text_to_column(fig: Figure, column_px: float = BOOK_COLUMN_PX, body_px: float = BOOK_BODY_PX,
                       max_pt: float = COURSE_FONT_PT) -> Figure:
    """Enlarge any text of ``fig`` that would read smaller than body text in the book's column.

    A figure wider than the column is shrunk to fit it, and its text with it. Every title, label,
    tick label, legend entry and annotation is raised to the size that reads as ``body_px`` (CSS
    pixels) after that shrink, but to no more than ``max_pt`` points: larger text would no longer
    fit a figure laid out for smaller text (annotations overflow their heatmap cells, panel
    titles run into each other). So a figure up to about 7 inches wide (``column_px`` at the
    figure's dpi, times ``COURSE_FONT_PT`` over the body size) meets the bar; a wider one has its
    text raised to ``max_pt`` and still reads smaller, and must be laid out narrower in its
    notebook (:func:`text_px_in_column` measures it). Larger text is left alone; the layout is not
    redone, since a figure may have placed a legend by hand.

    Returns:
        The same Figure, changed in place.
    """
    width_px = fig.get_figwidth() * fig.dpi
    if width_px <= 0 or column_px <= 0 or body_px <= 0:
        raise ValueError(f"figure width ({width_px} px), column_px ({column_px}) and body_px ({body_px}) must be > 0")
    shrink = min(1.0, column_px / width_px)
    floor_pt = min(body_px / shrink * 72.0 / fig.dpi, max_pt)
    for ax in fig.axes:
        for axis_name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            labels = [t for t in axis.get_ticklabels(which="both") if t.get_text()]
            if labels and min(t.get_fontsize() for t in labels) < floor_pt:
                # tick_params, not the Text objects: ticks are re-made at every draw
                ax.tick_params(axis=axis_name, which="both", labelsize=floor_pt)
    for text in fig.findobj(Text):
        if text.get_visible() and text.get_text().strip() and text.get_fontsize() < floor_pt:
            text.set_fontsize(floor_pt)
    return fig


def course_png(fig: Figure) -> tuple[str, dict[str, int]] | None:
    """``fig`` fitted to the book's column, as a 2x PNG and the display size Jupyter should use.

    Returns:
        ``(png_base64, {"width": w})`` with the width in CSS pixels (half the PNG's pixels, so that
        high-DPI screens get every pixel), or None for an empty figure. No height: the book then
        keeps the aspect ratio when it shrinks a wide figure to its column.
    """
    from IPython.core.pylabtools import retina_figure  # IPython is there whenever Jupyter is

    fit_text_to_column(fig)
    result = retina_figure(fig, base64=True, bbox_inches="tight", facecolor="white")
    if result is None:
        return None
    png, size = result
    return png, {"width": size["width"]}


def register_bundled_fonts() -> None:
    """Make Matplotlib's own fonts (STIX, Computer Modern) findable when its font cache lacks them.

    The cache file is named by Matplotlib's version only, so one written by another installation
    of the same version (a system package that ships no STIX fonts) hides the fonts bundled with
    this one. Every mathtext label then prints "findfont: Font family ['STIXGeneral'] not found"
    into the cell's output. Registering the bundled files again costs a few milliseconds, once.
    """
    if any(font.name == "STIXGeneral" for font in font_manager.fontManager.ttflist):
        return
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for path in font_manager.findSystemFonts(fontpaths=[str(folder)]):
        font_manager.fontManager.addfont(path)  # clears findfont's cache too


def use_course_style(shell: Any = None) -> None:
    """Apply the course's figure style to every figure drawn after this call.

    Seaborn's ``whitegrid`` theme with the Okabe-Ito palette, each colour paired with its own line
    style; 12-point text; an opaque white background. Inside IPython/Jupyter (or with ``shell``
    given: an object with a ``display_formatter``), figures are then shown through
    :func:`course_png`: 2x PNGs with small text raised for the book's column. Call it once, after
    the imports (after any ``sns.set_theme``, which it replaces).
    """
    register_bundled_fonts()
    sns.set_theme(context="notebook", style=_STYLE, palette=list(COURSE_PALETTE), rc=_course_rc())
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return
        shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    if "inline" in str(plt.rcParams["backend"]):
        # Jupyter's inline backend sets the figure formatters when it is first loaded (at the first
        # figure); load it now, so that it cannot replace ours later.
        import matplotlib_inline.backend_inline  # noqa: F401
    formatters = shell.display_formatter.formatters
    for formatter in formatters.values():
        formatter.pop(Figure, None)  # one image per figure: no SVG or 1x PNG beside the 2x one
    formatters["image/png"].for_type(Figure, course_png)


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
