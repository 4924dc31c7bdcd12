"""The model drawings: they build, carry the symbols and shapes a student maps to the code, keep
their text inside the figure and apart, and the drawing helper refuses bad input by name."""

from __future__ import annotations

import re
from itertools import combinations

import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from rankcourse import diagrams
from rankcourse.diagrams import BOX_KINDS, FONT_PT, Diagram, DiagramLayoutError

# Each drawing, and texts (substrings of its labels) that tie it to the code and the notation page.
DRAWINGS = {
    "embedding_mlp": (diagrams.draw_embedding_mlp, ["(batch, F)", "(batch, F, d)", "(batch, n_dense)", "(batch, D)",
                                                    "(batch,)", r"\sigma(z)", r"\ell(z, y)"]),
    "wide_deep": (diagrams.draw_wide_deep, ["(batch, F)", "(batch, F, d)", "(batch, n_dense)", "(batch, D)",
                                            "(batch, F + n_pairs)", "(batch,)", r"\tilde\phi", "z_{\\mathrm{wide}}",
                                            "z_{\\mathrm{deep}}", "model.wide", "model.deep"]),
    "deepfm": (diagrams.draw_deepfm, ["(batch, F)", "(batch, F, d)", "(batch, D)", "one shared table",
                                      "z_{\\mathrm{FM}}", "z_{\\mathrm{DNN}}", "z_{\\mathrm{1st}}", r"\langle"]),
    "cross_layer": (diagrams.draw_cross_layer, ["(batch, D)", "weight (D, D)", r"\odot", "residual", "CrossNetV2",
                                                r"\mathbf{x}_{l+1}"]),
    "dcn": (diagrams.draw_dcn, ['structure="stacked"', 'structure="parallel"', "(batch, D)", "(batch, h)",
                                "(batch, D + h)", r"\odot (W_l\, \mathbf{x}_l + \mathbf{b}_l)", r"\mathbf{x}_L"]),
    "shared-bottom": (lambda: diagrams.draw_multitask("shared-bottom"),
                      ["(batch, D)", "(batch, H)", "(batch, K)", "shared bottom", "tower $h_1"]),
    "omoe": (lambda: diagrams.draw_multitask("omoe"),
             ["(batch, M, H)", "(batch, M)", "(batch, K)", "gate $g$", "$f_M$", r"g(\mathbf{x})_j"]),
    "mmoe": (lambda: diagrams.draw_multitask("mmoe"),
             ["(batch, M, H)", "(batch, M)", "(batch, K)", "gate $g_1$", "gate $g_K$", "$f_1$", "$f_M$"]),
    "din": (diagrams.draw_din, ["(batch, F, d)", "(batch, T, E)", "(batch, E)", "mask (batch, T)",
                                r"e_t \odot v_A", "local activation unit", "the one change", "weights $a_t$"]),
    "bst": (diagrams.draw_bst, ["(batch, F, d)", "(batch, T, E)", "(batch, T + 1, E)", "(batch, E)",
                                "transformer block", "positions"]),
}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(fig: Figure) -> list[Text]:
    """Every label drawn: the drawings' axes are off, so their texts and legend entries."""
    (ax,) = fig.axes
    assert not ax.axison
    texts = ax.texts + (ax.get_legend().get_texts() if ax.get_legend() else []) + fig.texts
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def _extents(fig: Figure) -> list[tuple[str, object]]:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [(t.get_text(), t.get_window_extent(renderer)) for t in _texts(fig)]


@pytest.mark.parametrize("name", DRAWINGS)
def test_drawing_builds_a_figure_with_the_symbols_and_shapes_of_the_code(name):
    draw, expected = DRAWINGS[name]
    fig = draw()
    assert isinstance(fig, Figure)
    every_text = "\n".join(t.get_text() for t in _texts(fig))
    missing = [s for s in expected if s not in every_text]
    assert not missing, f"{name}: labels missing {missing}"


@pytest.mark.parametrize("name", DRAWINGS)
def test_drawing_text_stays_inside_the_figure(name):
    fig = DRAWINGS[name][0]()
    frame = fig.bbox
    outside = [text for text, e in _extents(fig)
               if e.x0 < frame.x0 - 0.5 or e.y0 < frame.y0 - 0.5 or e.x1 > frame.x1 + 0.5 or e.y1 > frame.y1 + 0.5]
    assert not outside, f"{name}: text leaves the figure: {outside}"


@pytest.mark.parametrize("name", DRAWINGS)
def test_drawing_labels_do_not_overlap(name):
    fig = DRAWINGS[name][0]()
    overlapping = [(a, b) for (a, ea), (b, eb) in combinations(_extents(fig), 2)
                   if min(ea.x1, eb.x1) - max(ea.x0, eb.x0) > 0.5 and min(ea.y1, eb.y1) - max(ea.y0, eb.y0) > 0.5]
    assert not overlapping, f"{name}: overlapping labels {overlapping}"


@pytest.mark.parametrize("name", DRAWINGS)
def test_drawing_reads_at_body_size_in_the_book_column_and_has_no_cjk_text(name):
    fig = DRAWINGS[name][0]()
    # At most 7 inches wide, so the book's 720-pixel column shows it at full size, and
    # 12-point text is then body-sized; matplotlib has no CJK font by default, so English only.
    assert fig.get_figwidth() <= 7.0
    assert min(t.get_fontsize() for t in _texts(fig)) >= FONT_PT >= 12
    cjk = [t.get_text() for t in _texts(fig) if re.search(r"[\u3000-\u9fff\uff00-\uffef]", t.get_text())]
    assert not cjk


@pytest.mark.parametrize("name", DRAWINGS)
def test_drawing_as_the_book_shows_it_fits_the_column_and_its_text_reads_at_body_size(name):
    """What the page gets (course_png: a 2x PNG with the figure's margin, and its CSS width) is no wider
    than the book's column (BOOK_COLUMN_PX, measured in the browser), so it is shown at full size
    and its smallest label reads at least at the body text's 16 px."""
    from rankcourse.plots import BOOK_BODY_PX, BOOK_COLUMN_PX, course_png

    fig = DRAWINGS[name][0]()
    _png, shown = course_png(fig)
    assert shown["width"] <= BOOK_COLUMN_PX, f"{name}: {shown['width']} CSS px wide, column {BOOK_COLUMN_PX}"
    smallest_px = min(t.get_fontsize() for t in _texts(fig)) * fig.dpi / 72.0
    assert smallest_px * min(1.0, BOOK_COLUMN_PX / shown["width"]) >= BOOK_BODY_PX


@pytest.mark.parametrize("name", ["wide_deep", "din"])
def test_layout_check_ignores_the_tick_labels_of_the_hidden_axes(name):
    # A display hook that enlarges small text (the course style) asks for the tick labels, which
    # fills them in although the axes are off and they are never drawn.
    fig = DRAWINGS[name][0]()
    fig.axes[0].xaxis.get_ticklabels()
    fig.axes[0].yaxis.get_ticklabels()
    assert diagrams.layout_problems(fig) == []


def test_box_kinds_differ_in_greyscale_and_use_okabe_ito_colours():
    okabe_ito = {"#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"}
    kinds = {k: v for k, v in BOX_KINDS.items() if k != "op"}  # "op" is a circle: its shape tells it apart
    for (a, sa), (b, sb) in combinations(kinds.items(), 2):
        # without colour, two kinds differ in hatching, edge style or a clearly thicker edge
        assert (sa.hatch, sa.linestyle) != (sb.hatch, sb.linestyle) or abs(sa.linewidth - sb.linewidth) >= 1, (a, b)
    assert {s.colour for k, s in kinds.items() if k != "merge"} <= okabe_ito


def test_layout_check_catches_text_too_wide_for_its_box():
    d = Diagram(4.0, 2.0)
    d.box("a", (0.1, 0.5), (0.6, 0.6), "a label far too long for this box", shape="(batch, D)")
    with pytest.raises(DiagramLayoutError, match="leaves its box 'a'") as caught:
        d.finish()
    assert isinstance(caught.value.figure, Figure)


def test_layout_check_catches_overlapping_labels_and_text_off_the_figure():
    d = Diagram(4.0, 2.0)
    d.box("a", (0.1, 0.5), (1.5, 0.6), "input", kind="input")
    d.note((2.0, 1.5), "a note")
    d.note((2.1, 1.5), "another note")
    d.note((3.9, 0.2), "runs off the edge")
    with pytest.raises(DiagramLayoutError) as caught:
        d.finish()
    message = str(caught.value)
    assert "'a note' and 'another note' overlap" in message
    assert "'runs off the edge' leaves the figure" in message


def test_layout_check_passes_a_clean_diagram():
    d = Diagram(4.0, 2.0)
    d.box("x", (0.2, 0.3), (1.6, 0.62), "input $x$", shape="(batch, D)", kind="input")
    d.box("z", (2.3, 1.2), (1.5, 0.62), "logit $z$", shape="(batch,)", kind="output")
    d.arrow("x", "z", start="right", end="left")
    assert isinstance(d.finish(), Figure)


@pytest.mark.parametrize(
    "build, error, message",
    [
        (lambda d: d.box("a", (0.1, 0.1), (1, 0.5), "A", kind="cloud"), ValueError, "kind must be one of"),
        (lambda d: (d.box("a", (0.1, 0.1), (1, 0.5), "A"), d.box("a", (2, 0.1), (1, 0.5), "B")),
         ValueError, "box name 'a' is used twice"),
        (lambda d: d.box("a", (3.5, 0.1), (1, 0.5), "A"), ValueError, "leaves the 4.0 x 2.0 inch canvas"),
        (lambda d: d.box("a", (0.1, 0.1), (0, 0.5), "A"), ValueError, "width and height must be > 0"),
        (lambda d: d.box("a", (0.1, 0.1), (1, 0.5), "  "), ValueError, "label must be a non-empty string"),
        (lambda d: (d.box("a", (0.1, 0.1), (1, 0.5), "A"), d.arrow("a", "b")), KeyError, "arrow target 'b'"),
        (lambda d: (d.box("a", (0.1, 0.1), (1, 0.5), "A"), d.box("b", (2, 1), (1, 0.5), "B"),
                    d.arrow("a", "b", style="wavy")), ValueError, "style must be one of"),
        (lambda d: (d.box("a", (0.1, 0.1), (1, 0.5), "A"), d.box("b", (2, 1), (1, 0.5), "B"),
                    d.arrow("a", "b", start="middle")), ValueError, "side of box 'a' must be one of"),
        (lambda d: (d.box("a", (0.1, 0.1), (1, 0.5), "A"), d.group(["a", "c"], "g")), KeyError,
         r"unknown boxes \['c'\]"),
        (lambda d: d.legend(), ValueError, "no boxes yet"),
        (lambda d: (d.box("a", (0.1, 0.1), (1, 0.5), "A"), d.legend(ncol=0)), ValueError,
         "ncol must be >= 1, got 0"),
    ],
)
def test_helper_refuses_bad_input_by_name(build, error, message):
    """Each bad call names what is wrong: the box, the kind, the side, the value."""
    with pytest.raises(error, match=message):
        build(Diagram(4.0, 2.0))


def test_canvas_wider_than_the_book_column_is_refused():
    with pytest.raises(ValueError, match=r"width must be in \(0, 7.0\] inches, got 9"):
        Diagram(9, 3)


def test_unknown_multitask_design_is_refused():
    with pytest.raises(ValueError, match="design must be one of .* got 'ple'"):
        diagrams.draw_multitask("ple")


@pytest.mark.parametrize("name", ["embedding_mlp", "wide_deep"])
def test_chapter_1_and_2_drawings_are_shown_at_full_size_in_the_book_column(name):
    # The book shrinks an image wider than its column, and the 12-point text with it; the 2x PNG
    # that the course style makes (tight box, 0.1-inch margins) must be at most the column wide.
    pytest.importorskip("IPython")
    from rankcourse.plots import BOOK_COLUMN_PX, course_png

    _, size = course_png(DRAWINGS[name][0]())
    assert size["width"] <= BOOK_COLUMN_PX


def test_legend_in_rows_of_ncol_entries_fits_a_narrow_canvas():
    d = Diagram(4.6, 1.8)
    kinds = ["input", "embedding", "interaction", "merge", "network", "output"]
    for i, kind in enumerate(kinds):
        d.box(kind, (0.1 + (i % 3) * 1.5, 0.8 + (i // 3) * 0.5), (1.4, 0.4), kind, kind=kind)
    with pytest.raises(DiagramLayoutError, match="leaves the figure"):
        d.legend()  # six entries in one row are wider than 4.6 inches
        d.finish()
    d.legend(ncol=3)
    assert isinstance(d.finish(), Figure)
