"""The course figure style: colour-blind-safe palette with line styles, text readable in the book's
column, 2x PNGs through Jupyter's display formatter."""

from __future__ import annotations

import base64
import struct
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from IPython.core.formatters import DisplayFormatter  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from rankcourse import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_rc():
    with matplotlib.rc_context():
        yield
    plt.close("all")


def test_course_style_cycles_okabe_ito_colours_each_with_its_own_line_style():
    plots.use_course_style(shell=None)
    cycle = list(plt.rcParams["axes.prop_cycle"])
    colours = [to_hex(c["color"]).upper() for c in cycle]
    styles = [str(c["linestyle"]) for c in cycle]
    assert colours == [c.upper() for c in plots.COURSE_PALETTE]
    assert len(set(styles)) == len(styles) == len(colours)  # told apart without colour
    fig, ax = plt.subplots()
    lines = [ax.plot([0, 1], [i, i])[0] for i in range(3)]
    assert len({line.get_linestyle() for line in lines}) == 3
    assert to_hex(fig.get_facecolor()) == "#ffffff"  # opaque, also on the dark theme


def _crowded_figure(width_in: float) -> Figure:
    fig, axes = plt.subplots(1, 3, figsize=(width_in, 3.5))
    for ax in axes:
        ax.plot([0, 1, 2], [1, 3, 2], label="curve")
        ax.set(xlabel="epoch", ylabel="AUC", title="panel")
        ax.legend(fontsize=7)
        ax.annotate("note", (1, 3), fontsize=6)
    fig.suptitle("title", fontsize=8)
    return fig


@pytest.mark.parametrize("width_in", [3.0, 5.0, 6.8])
def test_fit_text_to_column_makes_text_of_a_column_wide_figure_body_size(width_in):
    plots.use_course_style(shell=None)
    fig = _crowded_figure(width_in)
    assert plots.text_px_in_column(fig) < plots.BOOK_BODY_PX  # the test starts below the bar
    plots.fit_text_to_column(fig)
    assert plots.text_px_in_column(fig) >= plots.BOOK_BODY_PX - 1e-9


def test_fit_text_to_column_raises_a_wide_figure_to_the_course_size_and_no_further():
    plots.use_course_style(shell=None)
    fig = _crowded_figure(15.0)
    plots.fit_text_to_column(fig)
    sizes = {t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip()}
    assert min(sizes) == plots.COURSE_FONT_PT
    # still below the bar: a 15-inch figure has to be laid out narrower in its notebook
    assert plots.text_px_in_column(fig) < plots.BOOK_BODY_PX


def test_fit_text_to_column_leaves_larger_text_alone():
    fig, ax = plt.subplots(figsize=(5, 3))
    title = ax.set_title("big", fontsize=30)
    plots.fit_text_to_column(fig)
    assert title.get_fontsize() == 30


def test_fit_text_to_column_rejects_a_zero_column():
    fig, _ = plt.subplots(figsize=(5, 3))
    with pytest.raises(ValueError, match="column_px"):
        plots.fit_text_to_column(fig, column_px=0)


def test_use_course_style_shows_figures_as_2x_png_with_display_size():
    shell = SimpleNamespace(display_formatter=DisplayFormatter())
    plots.use_course_style(shell=shell)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([0, 1], [0, 1])
    data, metadata = shell.display_formatter.format(fig)
    assert set(data) == {"image/png", "text/plain"}  # one image per figure, no SVG or PDF beside it
    png = base64.b64decode(data["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width_px, height_px = struct.unpack(">II", png[16:24])
    shown = metadata["image/png"]  # the width the page shows it at, in CSS pixels
    assert width_px // 2 == shown["width"] and height_px > 0
    assert "height" not in shown  # a fixed height would squash a figure shrunk to the column


def test_bundled_fonts_are_registered_when_the_font_cache_hides_them(monkeypatch, caplog):
    """A font cache written by another Matplotlib of the same version can lack the STIX fonts;
    mathtext then logs "findfont: ... STIXGeneral not found" into every figure cell's output."""
    import logging

    import matplotlib
    from matplotlib import font_manager

    from rankcourse.plots import register_bundled_fonts

    manager = font_manager.fontManager
    without_stix = [f for f in manager.ttflist if not f.name.startswith("STIX")]
    monkeypatch.setattr(manager, "ttflist", without_stix)
    manager._findfont_cached.cache_clear()
    register_bundled_fonts()
    assert any(f.name == "STIXGeneral" for f in manager.ttflist)
    with caplog.at_level(logging.WARNING, logger="matplotlib.font_manager"):
        fig = matplotlib.figure.Figure()
        fig.text(0.5, 0.5, r"$\mathbf{x}_0 \odot W$")
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        FigureCanvasAgg(fig).draw()
    assert not [r for r in caplog.records if "not found" in r.getMessage()]
    manager._findfont_cached.cache_clear()
