"""The drawing helper behind :mod:`rankcourse.diagrams`: boxes, arrows and labels in inches.

:class:`Diagram` draws on a canvas measured in inches and checks its own layout
(:func:`layout_problems`: no text outside the figure or its box, no two labels on top of each
other). Boxes are coloured by kind with the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal
Design"), and each kind also has its own hatching and edge style, so drawings read in greyscale.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Patch, Rectangle
from matplotlib.text import Text

from ..plots import register_bundled_fonts

__all__ = ["Diagram", "DiagramLayoutError", "Box", "BOX_KINDS", "FONT_PT", "layout_problems"]

#: Text size of every label, in points (the course's figure text size).
FONT_PT = 12.0
#: Widest canvas, in inches: wider figures are shrunk in the book's column and their text with them.
MAX_WIDTH_IN = 7.0

_OKABE_ITO = {"orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
              "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00",
              "reddish purple": "#CC79A7", "black": "#000000"}


@dataclass(frozen=True)
class _KindStyle:
    colour: str
    hatch: str | None
    linestyle: str | tuple
    linewidth: float
    legend: str


#: What a box is, and how it looks: colour (Okabe-Ito), hatching and edge style (for greyscale).
BOX_KINDS: dict[str, _KindStyle] = {
    "input": _KindStyle(_OKABE_ITO["sky blue"], None, "solid", 1.2, "input"),
    "embedding": _KindStyle(_OKABE_ITO["orange"], "...", "dashed", 1.4, "embedding"),
    "network": _KindStyle(_OKABE_ITO["bluish green"], "///", "solid", 1.8, "MLP / linear"),
    "interaction": _KindStyle(_OKABE_ITO["vermillion"], "xx", "dashdot", 1.6, "interaction"),
    "gate": _KindStyle(_OKABE_ITO["reddish purple"], "\\\\\\", "dotted", 1.8, "gate"),
    "output": _KindStyle(_OKABE_ITO["blue"], None, "solid", 2.4, "logit"),
    "merge": _KindStyle("#595959", "--", "solid", 1.2, "concat / pool"),
    "op": _KindStyle(_OKABE_ITO["black"], None, "solid", 1.2, "operation"),
}
_ARROW_STYLES = {"solid": "solid", "dashed": (0, (5, 3)), "dotted": (0, (1.5, 2))}
_SIDES = ("top", "bottom", "left", "right")
_LINE_IN = 1.25 * FONT_PT / 72.0  # height of one line of text, in inches


class DiagramLayoutError(ValueError):
    """A diagram whose text overflows the figure or a box, or whose labels overlap. Its ``figure``
    attribute holds the faulty Figure, so that it can be looked at."""

    figure: Figure | None = None


def _tint(colour: str, amount: float) -> tuple[float, float, float]:
    """``colour`` mixed with white: ``amount`` 0 is white, 1 the colour itself."""
    return tuple(1.0 - amount * (1.0 - c) for c in to_rgb(colour))  # type: ignore[return-value]


@dataclass(frozen=True)
class Box:
    """A placed box: lower-left corner ``(x, y)``, size ``(w, h)``, in inches."""

    name: str
    x: float
    y: float
    w: float
    h: float
    kind: str
    texts: tuple[Text, ...]
    patch: FancyBboxPatch | Circle

    def anchor(self, side: str, at: float = 0.5) -> tuple[float, float]:
        """The point ``at`` (0..1, left to right or bottom to top) along ``side`` of the box."""
        if side not in _SIDES:
            raise ValueError(f"side of box {self.name!r} must be one of {_SIDES}, got {side!r}")
        if not 0.0 <= at <= 1.0:
            raise ValueError(f"position along the {side} of box {self.name!r} must be in [0, 1], got {at}")
        if self.kind == "op":  # a circle: the side's midpoint only
            cx, cy, r = self.x + self.w / 2, self.y + self.h / 2, self.w / 2
            return {"top": (cx, cy + r), "bottom": (cx, cy - r), "left": (cx - r, cy), "right": (cx + r, cy)}[side]
        if side in ("top", "bottom"):
            return self.x + at * self.w, self.y + (self.h if side == "top" else 0.0)
        return self.x + (self.w if side == "right" else 0.0), self.y + at * self.h


class Diagram:
    """A block diagram on a canvas of ``width`` x ``height`` inches; coordinates are inches from the
    lower-left corner.

    >>> d = Diagram(4, 2)
    >>> d.box("x", (0.5, 0.3), (1.5, 0.6), "input $x$", shape="(batch, D)", kind="input")
    >>> d.box("z", (2.5, 1.2), (1.0, 0.5), "logit $z$", kind="output")
    >>> d.arrow("x", "z", start="right", end="left")
    >>> fig = d.finish()  # checks the layout, raises DiagramLayoutError if text overflows or overlaps

    Args:
        width, height: canvas size in inches (``0 < width <= 7``, ``0 < height <= 10``).
    """

    def __init__(self, width: float, height: float) -> None:
        if not (0 < width <= MAX_WIDTH_IN):
            raise ValueError(f"diagram width must be in (0, {MAX_WIDTH_IN}] inches, got {width}")
        if not (0 < height <= 10):
            raise ValueError(f"diagram height must be in (0, 10] inches, got {height}")
        register_bundled_fonts()  # mathtext labels need STIX, which a stale font cache hides
        self.width, self.height = float(width), float(height)
        self.fig: Figure = plt.figure(figsize=(self.width, self.height))
        self.ax: Axes = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set(xlim=(0, self.width), ylim=(0, self.height))
        self.ax.set_aspect("equal")
        self.ax.axis("off")
        self.boxes: dict[str, Box] = {}
        self._free_texts: list[Text] = []
        self._kinds_used: list[str] = []

    # -- building blocks ---------------------------------------------------------------------

    def _check_rect(self, what: str, x: float, y: float, w: float, h: float) -> None:
        if w <= 0 or h <= 0:
            raise ValueError(f"{what}: width and height must be > 0, got ({w}, {h})")
        if x < 0 or y < 0 or x + w > self.width + 1e-9 or y + h > self.height + 1e-9:
            raise ValueError(f"{what}: rectangle x={x}, y={y}, w={w}, h={h} leaves the "
                             f"{self.width} x {self.height} inch canvas")

    def box(self, name: str, xy: tuple[float, float], size: tuple[float, float], label: str,
            shape: str | None = None, kind: str = "network") -> None:
        """Add a box ``name`` with lower-left corner ``xy`` and ``size`` (inches), a ``label`` (may hold
        mathtext and line breaks) and an optional tensor ``shape`` such as ``"(batch, F, d)"``, drawn
        under the label in a monospaced font. ``kind`` is one of :data:`BOX_KINDS`; kind ``"op"`` is a
        circle of diameter ``size[0]`` for ``+`` or a similar operation."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"box name must be a non-empty string, got {name!r}")
        if name in self.boxes:
            raise ValueError(f"box name {name!r} is used twice")
        if kind not in BOX_KINDS:
            raise ValueError(f"box {name!r}: kind must be one of {tuple(BOX_KINDS)}, got {kind!r}")
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"box {name!r}: label must be a non-empty string, got {label!r}")
        (x, y), (w, h) = xy, size
        if kind == "op":
            h = w
        self._check_rect(f"box {name!r}", x, y, w, h)
        style = BOX_KINDS[kind]
        if kind == "op":
            patch = Circle((x + w / 2, y + h / 2), w / 2, fc="white", ec=style.colour, lw=style.linewidth)
            self.ax.add_patch(patch)
        else:
            patch = self._framed_patch(x, y, w, h, style)
        texts = self._box_texts(x, y, w, h, label, shape, kind)
        self.boxes[name] = Box(name, x, y, w, h, kind, texts, patch)
        if kind not in self._kinds_used:
            self._kinds_used.append(kind)

    def _framed_patch(self, x: float, y: float, w: float, h: float, style: _KindStyle) -> FancyBboxPatch:
        box_style = "round,pad=0,rounding_size=0.07"
        # Two patches: a tinted, hatched fill (hatch drawn in a mid tint) and the frame on top.
        self.ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle=box_style, fc=_tint(style.colour, 0.22),
                                         ec=_tint(style.colour, 0.55), lw=0, hatch=style.hatch, zorder=1))
        frame = FancyBboxPatch((x, y), w, h, boxstyle=box_style, fill=False, ec=_tint(style.colour, 1.0),
                               lw=style.linewidth, ls=style.linestyle, zorder=2)
        self.ax.add_patch(frame)
        return frame

    def _box_texts(self, x: float, y: float, w: float, h: float, label: str, shape: str | None,
                   kind: str) -> tuple[Text, ...]:
        bg = "white" if kind == "op" else _tint(BOX_KINDS[kind].colour, 0.22)
        common = dict(ha="center", fontsize=FONT_PT, zorder=4,
                      bbox=dict(boxstyle="square,pad=0.08", fc=bg, ec="none"))
        cx, cy = x + w / 2, y + h / 2
        if shape is None:
            return (self.ax.text(cx, cy, label, va="center", **common),)
        # The label grows upwards from just above the middle, the shape downwards from just below it,
        # so a tall label (sums, tildes, two lines) cannot run into the shape.
        first = self.ax.text(cx, cy + 0.02, label, va="bottom", **common)
        second = self.ax.text(cx, cy - 0.02, shape, va="top", family="monospace", **common)
        return first, second

    def arrow(self, src: str, dst: str, label: str | None = None, start: str | None = None,
              end: str | None = None, start_at: float = 0.5, end_at: float = 0.5, style: str = "solid",
              label_at: float = 0.5, label_offset: tuple[float, float] = (0.08, 0.0),
              colour: str = "0.2", bend: float = 0.0, elbow: bool = False,
              via: Sequence[tuple[float, float]] = ()) -> None:
        """An arrow from box ``src`` to box ``dst``, from side ``start`` to side ``end`` (default:
        ``top`` to ``bottom`` when ``dst`` lies above, else ``right`` to ``left`` or back), at
        ``start_at``/``end_at`` along those sides. ``label`` (e.g. a shape) is written
        ``label_at`` of the way along, moved by ``label_offset`` inches; its left edge sits there
        (a label that starts with ``(`` is a shape and is set in the monospaced font).
        ``style`` is ``"solid"``, ``"dashed"`` or ``"dotted"``; ``bend`` curves the arrow; ``elbow``
        draws it as two straight legs with one right-angle turn, leaving and entering straight;
        ``via`` lists corner points (inches) that the arrow passes through on the way."""
        for role, name in (("source", src), ("target", dst)):
            if name not in self.boxes:
                raise KeyError(f"arrow {role} {name!r} is not a box of this diagram; boxes are {sorted(self.boxes)}")
        if style not in _ARROW_STYLES:
            raise ValueError(f"arrow {src!r} -> {dst!r}: style must be one of {tuple(_ARROW_STYLES)}, got {style!r}")
        a, b = self.boxes[src], self.boxes[dst]
        if start is None or end is None:
            if b.y >= a.y + a.h:
                auto = ("top", "bottom")
            elif b.y + b.h <= a.y:
                auto = ("bottom", "top")
            else:
                auto = ("right", "left") if b.x >= a.x + a.w else ("left", "right")
            start, end = start or auto[0], end or auto[1]
        p0, p1 = a.anchor(start, start_at), b.anchor(end, end_at)
        if elbow:
            angles = [90 if side in ("top", "bottom") else 0 for side in (start, end)]
            connection = f"angle,angleA={angles[0]},angleB={angles[1]},rad=0"
        else:
            connection = f"arc3,rad={bend}"
        shrink_start = 0 if via else 1
        for corner in via:
            self.ax.plot([p0[0], corner[0]], [p0[1], corner[1]], color=colour, lw=1.4, ls=_ARROW_STYLES[style],
                         zorder=3, solid_capstyle="butt")
            p0 = corner
        self.ax.add_patch(FancyArrowPatch(p0, p1, arrowstyle="-|>", mutation_scale=14, color=colour,
                                          lw=1.4, ls=_ARROW_STYLES[style], shrinkA=shrink_start, shrinkB=1, zorder=3,
                                          connectionstyle=connection))
        if label is not None:
            mx = p0[0] + label_at * (p1[0] - p0[0]) + label_offset[0]
            my = p0[1] + label_at * (p1[1] - p0[1]) + label_offset[1]
            self.note((mx, my), label, family="monospace" if label.startswith("(") else None, ha="left")

    def note(self, xy: tuple[float, float], text: str, ha: str = "left", va: str = "center",
             family: str | None = None, colour: str = "black") -> None:
        """Free text at ``xy`` (inches), e.g. a panel title or a formula."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"note at {xy}: text must be a non-empty string, got {text!r}")
        kwargs = {"family": family} if family else {}
        self._free_texts.append(self.ax.text(*xy, text, ha=ha, va=va, fontsize=FONT_PT, color=colour, zorder=5,
                                             bbox=dict(boxstyle="square,pad=0.08", fc="white", ec="none"),
                                             **kwargs))

    def group(self, names: Sequence[str], label: str, pad: float = 0.12, label_side: str = "top") -> None:
        """A dashed frame around the boxes ``names`` with ``label`` (e.g. the submodule that holds them,
        ``model.deep``, or their stacked shape). ``label_side="top"``: the label sits in the top-left
        corner and the frame grows upwards by one line; ``"right"``: it sits right of the boxes,
        centred, and the frame grows rightwards by its width (use it where arrows leave the top)."""
        missing = [n for n in names if n not in self.boxes]
        if not names or missing:
            raise KeyError(f"group {label!r}: unknown boxes {missing or '(none given)'}; "
                           f"boxes are {sorted(self.boxes)}")
        if label_side not in ("top", "right"):
            raise ValueError(f"group {label!r}: label_side must be 'top' or 'right', got {label_side!r}")
        members = [self.boxes[n] for n in names]
        x0, y0 = min(b.x for b in members) - pad, min(b.y for b in members) - pad
        x1, y1 = max(b.x + b.w for b in members) + pad, max(b.y + b.h for b in members) + pad
        if label_side == "top":
            y1 += _LINE_IN + 0.04
            self.note((x0 + 0.06, y1 - 0.04 - _LINE_IN / 2), label)
        else:
            self.note((x1, (y0 + y1) / 2), label, family="monospace")
            renderer = self.fig.canvas.get_renderer()  # type: ignore[attr-defined]
            x1 += self._free_texts[-1].get_window_extent(renderer).width / self.fig.dpi + 0.08
        self._check_rect(f"group {label!r}", x0, y0, x1 - x0, y1 - y0)
        self.ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="0.45", lw=1.0,
                                    ls=(0, (4, 3)), zorder=0.5))

    def legend(self, y: float = 0.05, x: float | None = None, ncol: int | None = None) -> None:
        """A key of the box kinds used so far, its bottom at ``y`` (inches): in one row, or in rows of
        ``ncol`` entries where one row would be wider than the canvas."""
        kinds = [k for k in self._kinds_used if k != "op"]
        if not kinds:
            raise ValueError("legend: the diagram has no boxes yet")
        handles = [Patch(fc=_tint(BOX_KINDS[k].colour, 0.22), ec=BOX_KINDS[k].colour, hatch=BOX_KINDS[k].hatch,
                         lw=BOX_KINDS[k].linewidth, ls=BOX_KINDS[k].linestyle, label=BOX_KINDS[k].legend)
                   for k in kinds]
        if ncol is not None and ncol < 1:
            raise ValueError(f"legend: ncol must be >= 1, got {ncol}")
        anchor = (0.5 if x is None else x / self.width, y / self.height)
        self.ax.legend(handles=handles, loc="lower center", bbox_to_anchor=anchor, ncol=ncol or len(handles),
                       fontsize=FONT_PT, frameon=False, handlelength=1.2, handletextpad=0.3,
                       columnspacing=0.7, borderaxespad=0.0)

    # -- checking ----------------------------------------------------------------------------

    def finish(self) -> Figure:
        """The Figure, after checking the layout; raises :class:`DiagramLayoutError` naming the texts
        that leave the figure or their box, or that overlap."""
        problems = layout_problems(self.fig, boxes=list(self.boxes.values()), notes=self._free_texts)
        if problems:
            error = DiagramLayoutError("diagram layout: " + "; ".join(problems))
            error.figure = self.fig  # kept open, to look at what went wrong
            raise error
        return self.fig


def _drawn_texts(fig: Figure) -> list[Text]:
    """The texts a draw shows: the figure's and each axes' texts and legends, and the axes' titles,
    labels and tick labels only where the axes are on (``fig.findobj`` would also return the tick
    labels of an axes turned off, which are never drawn)."""
    texts = list(fig.texts)
    for ax in fig.axes:
        texts += ax.texts
        if ax.get_legend() is not None:
            texts += ax.get_legend().get_texts()
        if ax.axison:
            texts += [ax.title, ax.xaxis.label, ax.yaxis.label] + ax.get_xticklabels() + ax.get_yticklabels()
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def layout_problems(fig: Figure, boxes: Sequence[Box] = (), notes: Sequence[Text] = (),
                    tol_px: float = 0.5) -> list[str]:
    """What is wrong with a drawn figure's text: any text outside the figure, any two texts that
    overlap, any box text outside its box and any free text (``notes``) on a box. An empty list
    means none."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = fig.bbox
    texts = _drawn_texts(fig)
    extents = {t: t.get_window_extent(renderer) for t in texts}
    problems = []
    for t, e in extents.items():
        if e.x0 < frame.x0 - tol_px or e.y0 < frame.y0 - tol_px or e.x1 > frame.x1 + tol_px or e.y1 > frame.y1 + tol_px:
            problems.append(f"text {t.get_text()!r} leaves the figure")
    for (t1, e1), (t2, e2) in combinations(extents.items(), 2):
        if (min(e1.x1, e2.x1) - max(e1.x0, e2.x0) > tol_px) and (min(e1.y1, e2.y1) - max(e1.y0, e2.y0) > tol_px):
            problems.append(f"texts {t1.get_text()!r} and {t2.get_text()!r} overlap")
    for box in boxes:
        outline = box.patch.get_window_extent(renderer)
        for t in box.texts:
            e = extents[t]
            if e.x0 < outline.x0 - tol_px or e.x1 > outline.x1 + tol_px or e.y0 < outline.y0 - tol_px \
                    or e.y1 > outline.y1 + tol_px:
                problems.append(f"text {t.get_text()!r} leaves its box {box.name!r}")
        for t in notes:
            if extents[t].overlaps(outline):
                problems.append(f"text {t.get_text()!r} lies on box {box.name!r}")
    return problems


# -- the models ---------------------------------------------------------------------------------
# Every drawing reads from the bottom (ids) to the top (logit), as in the papers. Sizes are inches.
