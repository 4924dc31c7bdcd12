"""Block diagrams of the course's models, labelled with the course's symbols and tensor shapes.

One small helper, :class:`Diagram` (in :mod:`rankcourse.diagrams.canvas`), draws boxes, arrows and labels on a canvas measured in inches,
and checks its own layout (no text outside the figure or its box, no two labels on top of each
other). One function per model family uses it and returns a Matplotlib Figure:

* :func:`draw_embedding_mlp` -- the common framework: embeddings, an MLP, the logit and the loss;
* :func:`draw_wide_deep` -- Wide & Deep: wide cross-product part and deep tower, logits summed;
* :func:`draw_deepfm` -- DeepFM: one embedding table read by the FM part and the DNN;
* :func:`draw_cross_layer` -- one DCN-V2 cross layer, ``x_{l+1} = x_0 * (W_l x_l + b_l) + x_l``;
* :func:`draw_dcn` -- DCN / DCN-V2: the cross network under the MLP (stacked) or beside it (parallel);
* :func:`draw_multitask` -- Shared-Bottom, OMoE and MMoE: bottom or experts, gates, towers;
* :func:`draw_din` and :func:`draw_bst` -- target attention over a behaviour history.

Boxes are coloured by what they are (input, embedding, network, interaction, gate, output) with
the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"), and each kind also has its
own hatching and edge style, so the drawings read in greyscale too. All text is 12 pt (the
course's figure text size) on a canvas at most 7 inches wide, so it stays at body-text size in the
book's column. Labels are in English.
"""


from __future__ import annotations

from matplotlib.figure import Figure

from .canvas import _OKABE_ITO, BOX_KINDS, FONT_PT, Box, Diagram, DiagramLayoutError, layout_problems

__all__ = ["Diagram", "DiagramLayoutError", "Box", "BOX_KINDS", "FONT_PT", "layout_problems",
           "draw_embedding_mlp", "draw_wide_deep", "draw_deepfm", "draw_cross_layer", "draw_dcn",
           "draw_multitask", "draw_din", "draw_bst"]

# Canvas width of a drawing that the book shows at full size: with the 0.1-inch margins of a tight
# PNG, 6.6 inches is 680 CSS pixels, inside the 688-pixel column (plots.BOOK_COLUMN_PX).
_COLUMN_IN = 6.6
_ROW_H = 0.62  # a box with a label and a shape
_TALL_H = 0.85  # a box with two lines of label and a shape
_IDS = r"categorical ids $x_1, \dots, x_F$"
_X0 = r"$\mathbf{x}_0 = [\mathbf{e}_1; \dots; \mathbf{e}_F; \mathbf{u}]$"


def draw_embedding_mlp() -> Figure:
    """The course's common framework (chapter 1): ids -> embeddings, concatenated with the dense
    features into ``x_0``, an MLP to the logit ``z``; the loss is computed from ``z``."""
    d = Diagram(_COLUMN_IN, 5.0)
    d.box("ids", (0.1, 0.55), (3.2, _ROW_H), _IDS, "(batch, F)", "input")
    d.box("emb", (0.1, 1.55), (3.2, _ROW_H), r"embeddings $\mathbf{e}_1, \dots, \mathbf{e}_F$", "(batch, F, d)",
          "embedding")
    d.box("dense", (3.9, 1.55), (2.5, _ROW_H), r"dense features $\mathbf{u}$", "(batch, n_dense)", "input")
    d.box("x0", (1.4, 2.55), (3.8, _ROW_H), _X0, "(batch, D)", "merge")
    d.box("mlp", (1.4, 3.5), (3.8, _ROW_H), r"MLP (later: FM, cross layers, experts)", "(batch, h)", "network")
    d.box("z", (0.8, 4.3), (2.4, _ROW_H), r"logit $z$ (linear head)", "(batch,)", "output")
    d.arrow("ids", "emb")
    d.arrow("emb", "x0", end_at=0.25)
    d.arrow("dense", "x0", end_at=0.85)
    d.arrow("x0", "mlp")
    d.arrow("mlp", "z", start_at=0.3, end_at=0.72)
    d.note((3.35, 4.61), r"$\rightarrow$ $p = \sigma(z)$; loss $\ell(z, y)$, label $y$")
    d.legend()
    return d.finish()


def draw_wide_deep() -> Figure:
    """Wide & Deep (:class:`~rankcourse.models.WideDeep`): a linear model over one-hot ids and their
    hashed cross products (``model.wide``) beside embeddings and an MLP (``model.deep``); the two
    logits are added."""
    d = Diagram(_COLUMN_IN, 6.3)
    d.box("ids", (0.15, 0.85), (6.3, _ROW_H), _IDS, "(batch, F)", "input")
    d.box("emb", (0.15, 1.9), (2.2, _ROW_H), r"embeddings $\mathbf{e}_1, \dots, \mathbf{e}_F$",
          "(batch, F, d)", "embedding")
    d.box("dense", (2.45, 1.9), (1.65, _ROW_H), r"dense $\mathbf{u}$", "(batch, n_dense)", "input")
    d.box("phi", (4.2, 1.9), (2.25, _ROW_H), r"one-hot ids, crosses $\tilde\phi(\mathbf{x})$",
          "(batch, F + n_pairs)", "interaction")
    d.box("x0", (0.15, 2.95), (2.2, _ROW_H), _X0, "(batch, D)", "merge")
    d.box("wide", (4.2, 2.95), (2.25, _ROW_H), r"$z_{\mathrm{wide}} = b + \mathbf{w}^\top \tilde\phi(\mathbf{x})$",
          "(batch,)", "network")
    d.box("mlp", (0.15, 4.0), (2.2, _ROW_H), r"MLP $\rightarrow z_{\mathrm{deep}}$", "(batch,)", "network")
    d.box("plus", (3.1, 4.85), (0.4, 0.4), "+", kind="op")
    d.box("z", (2.0, 5.55), (2.6, _ROW_H), r"$z = z_{\mathrm{wide}} + z_{\mathrm{deep}}$", "(batch,)", "output")
    d.arrow("ids", "emb", start_at=0.17)
    d.arrow("ids", "phi", start_at=0.85)
    d.arrow("dense", "x0", start_at=0.3, end_at=0.85)
    d.arrow("dense", "wide", start_at=0.8, end_at=0.12)
    for src, dst in (("emb", "x0"), ("x0", "mlp"), ("phi", "wide")):
        d.arrow(src, dst)
    d.arrow("mlp", "plus", start="right", end="left")
    d.arrow("wide", "plus", start="top", end="right", start_at=0.92, elbow=True)
    d.arrow("plus", "z")
    d.group(["emb", "x0", "mlp"], "deep part: model.deep")
    d.group(["phi", "wide"], "wide part: model.wide")
    d.legend(ncol=3)  # one row of six kinds is wider than the column
    return d.finish()


def draw_deepfm() -> Figure:
    """DeepFM (:class:`~rankcourse.models.DeepFM`): one embedding table read by the FM part and by
    the DNN, beside a first-order part; the three logits are added."""
    d = Diagram(7.0, 5.9)
    d.box("ids", (0.15, 0.55), (6.7, _ROW_H), _IDS, "(batch, F)", "input")
    d.box("emb", (0.15, 1.6), (3.1, _ROW_H), r"one shared table: $\mathbf{e}_1, \dots, \mathbf{e}_F$",
          "(batch, F, d)", "embedding")
    d.box("dense", (3.4, 1.6), (1.8, _ROW_H), r"dense $\mathbf{u}$", "(batch, n_dense)", "input")
    d.box("first", (5.35, 1.6), (1.5, _ROW_H), r"first order $z_{\mathrm{1st}}$", "(batch,)", "network")
    fm_label = r"$z_{\mathrm{FM}} = \Sigma_{i<j} \langle \mathbf{e}_i, \mathbf{e}_j \rangle$"
    d.box("fm", (0.1, 2.75), (2.35, _ROW_H), fm_label, "(batch,)", "interaction")
    d.box("x0", (2.6, 2.75), (2.45, _ROW_H), _X0, "(batch, D)", "merge")
    d.box("mlp", (2.6, 3.75), (2.45, _ROW_H), r"DNN: MLP $\rightarrow z_{\mathrm{DNN}}$", "(batch,)", "network")
    d.box("plus", (3.6, 4.62), (0.4, 0.4), "+", kind="op")
    d.box("z", (1.95, 5.2), (3.7, _ROW_H), r"$z = z_{\mathrm{1st}} + z_{\mathrm{FM}} + z_{\mathrm{DNN}}$",
          "(batch,)", "output")
    d.arrow("ids", "emb", start_at=0.25)
    d.arrow("ids", "first", start_at=0.91, end_at=0.5)
    d.arrow("dense", "first", start="right", end="left")
    d.arrow("emb", "fm", start_at=0.35, end_at=0.5)
    d.arrow("emb", "x0", start_at=0.85, end_at=0.2)
    d.arrow("dense", "x0", start_at=0.3, end_at=0.8)
    d.arrow("x0", "mlp")
    d.arrow("fm", "plus", start="top", end="left", elbow=True)
    d.arrow("mlp", "plus")
    d.arrow("first", "plus", start="top", end="right", elbow=True)
    d.arrow("plus", "z")
    d.legend()
    return d.finish()


def _dcn_stacked(d: Diagram, left: float, width: float) -> None:
    d.box("s_x0", (left, 0.55), (width, _ROW_H), _X0, "(batch, D)", "merge")
    d.box("s_cross", (left, 1.55), (width, _ROW_H), r"cross network, $L$ layers: $\mathbf{x}_L$", "(batch, D)",
          "interaction")
    d.box("s_mlp", (left, 2.55), (width, _ROW_H), "MLP", "(batch, h)", "network")
    d.box("s_z", (left, 3.55), (width, _ROW_H), r"linear head $\rightarrow z$", "(batch,)", "output")
    for src, dst in (("s_x0", "s_cross"), ("s_cross", "s_mlp"), ("s_mlp", "s_z")):
        d.arrow(src, dst)


def _dcn_parallel(d: Diagram, left: float, width: float) -> None:
    half = (width - 0.15) / 2
    d.box("p_x0", (left, 0.55), (width, _ROW_H), _X0, "(batch, D)", "merge")
    d.box("p_cross", (left, 1.55), (half, _ROW_H), r"cross: $\mathbf{x}_L$", "(batch, D)", "interaction")
    d.box("p_mlp", (left + half + 0.15, 1.55), (half, _ROW_H), "MLP", "(batch, h)", "network")
    d.box("p_cat", (left, 2.55), (width, _ROW_H), "concat", "(batch, D + h)", "merge")
    d.box("p_z", (left, 3.55), (width, _ROW_H), r"linear head $\rightarrow z$", "(batch,)", "output")
    d.arrow("p_x0", "p_cross", start_at=0.25)
    d.arrow("p_x0", "p_mlp", start_at=0.75)
    d.arrow("p_cross", "p_cat", end_at=0.25)
    d.arrow("p_mlp", "p_cat", end_at=0.75)
    d.arrow("p_cat", "p_z")


def draw_cross_layer() -> Figure:
    """One DCN-V2 cross layer (:class:`~rankcourse.layers.CrossNetV2`, one of its ``L`` layers):
    ``x_{l+1} = x_0 * (W_l x_l + b_l) + x_l``; every tensor on the way is ``(batch, D)``."""
    d = Diagram(7.0, 5.0)
    d.box("x0", (0.3, 0.55), (2.3, _ROW_H), r"input $\mathbf{x}_0$", "(batch, D)", "input")
    d.box("xl", (3.35, 0.55), (2.3, _ROW_H), r"input $\mathbf{x}_l$", "(batch, D)", "input")
    d.box("lin", (3.35, 1.6), (2.3, _ROW_H), r"$W_l\, \mathbf{x}_l + \mathbf{b}_l$", "weight (D, D)", "interaction")
    d.box("times", (4.3, 2.65), (0.4, 0.4), r"$\odot$", kind="op")
    d.box("plus", (4.3, 3.35), (0.4, 0.4), "+", kind="op")
    d.box("out", (3.35, 4.1), (2.3, _ROW_H), r"output $\mathbf{x}_{l+1}$", "(batch, D)", "input")
    d.arrow("xl", "lin")
    d.arrow("lin", "times")
    d.arrow("x0", "times", start="top", end="left", elbow=True)
    d.arrow("times", "plus")
    d.arrow("xl", "plus", start="right", end="right", via=[(6.15, 0.86), (6.15, 3.55)])
    d.arrow("plus", "out")
    d.note((6.25, 2.2), "residual", ha="left")
    d.note((4.15, 3.1), r"$\mathbf{x}_0 \odot (W_l\, \mathbf{x}_l + \mathbf{b}_l)$", ha="right")
    d.note((0.3, 4.41), r"cross layer $l$ of $L$" + "\n(CrossNetV2)", ha="left")
    d.legend(x=3.5)
    return d.finish()


def draw_dcn() -> Figure:
    """DCN-V2 (:class:`~rankcourse.models.DCNv2`) in its two structures: the MLP reads the cross
    network's output (``structure="stacked"``) or runs beside it on ``x_0`` (``"parallel"``, the
    structure of the original :class:`~rankcourse.models.DCN`)."""
    d = Diagram(7.0, 5.35)
    _dcn_stacked(d, 0.25, 3.0)
    _dcn_parallel(d, 3.75, 3.0)
    d.note((1.75, 4.55), 'structure="stacked"', ha="center", family="monospace")
    d.note((5.25, 4.55), 'structure="parallel"', ha="center", family="monospace")
    d.note((3.5, 5.05), r"cross layer $l$:  $\mathbf{x}_{l+1} = \mathbf{x}_0 \odot (W_l\, \mathbf{x}_l + \mathbf{b}_l)"
           r" + \mathbf{x}_l$,  $l = 0, \dots, L - 1$", ha="center")
    d.legend()
    return d.finish()


_MULTITASK_DESIGNS = ("shared-bottom", "omoe", "mmoe")


def _experts(d: Diagram) -> None:
    """Experts f_1, f_2, ..., f_M in a group labelled with their stacked output shape."""
    for j, (x, name) in enumerate(((1.75, "$f_1$"), (2.75, "$f_2$"), (4.05, "$f_M$"))):
        d.box(f"f{j}", (x, 1.6), (0.8, 0.5), name, kind="network")
        d.arrow("x", f"f{j}")
    d.note((3.8, 1.85), r"$\cdots$", ha="center")
    d.group(["f0", "f1", "f2"], "(batch, M, H)", label_side="right")


def _towers(d: Diagram, sources: tuple[str, str], y: float) -> None:
    """Towers h_1 and h_K (logits z_1, z_K) above ``sources`` and the stacked output."""
    for k, (x, src) in enumerate(zip((1.45, 3.75), sources)):
        name = ("1", "K")[k]
        d.box(f"h{k}", (x, y), (1.8, _ROW_H), rf"tower $h_{name} \rightarrow z_{name}$", "(batch,)", "network")
        d.arrow(src, f"h{k}")
    d.box("z", (1.45, y + 1.05), (4.1, _ROW_H), r"logits $z_1, \dots, z_K$", "(batch, K)", "output")
    d.arrow("h0", "z")
    d.arrow("h1", "z")


def draw_multitask(design: str = "mmoe") -> Figure:
    """A multi-task model with ``K`` tasks (two drawn): ``"shared-bottom"``
    (:class:`~rankcourse.models.SharedBottom`), ``"omoe"`` (one gate, :class:`~rankcourse.models.OMoE`)
    or ``"mmoe"`` (one gate per task, :class:`~rankcourse.models.MMoE`). ``H`` is the width of the
    bottom's or an expert's output."""
    if design not in _MULTITASK_DESIGNS:
        raise ValueError(f"design must be one of {_MULTITASK_DESIGNS}, got {design!r}")
    d = Diagram(7.0, 5.8 if design != "shared-bottom" else 4.6)
    d.box("x", (1.45, 0.55), (4.1, _ROW_H), r"$\mathbf{x}$ = concat(embeddings, $\mathbf{u}$)", "(batch, D)", "merge")
    if design == "shared-bottom":
        d.box("bottom", (1.45, 1.6), (4.1, _ROW_H), r"shared bottom $f$ (an MLP)", "(batch, H)", "network")
        d.arrow("x", "bottom")
        _towers(d, ("bottom", "bottom"), 2.65)
    elif design == "omoe":
        _experts(d)
        d.box("g", (0.1, 2.95), (1.45, _ROW_H), r"gate $g$", "(batch, M)", "gate")
        d.box("mix", (2.05, 2.95), (2.9, _ROW_H), r"$\Sigma_j\, g(\mathbf{x})_j\, f_j(\mathbf{x})$", "(batch, H)",
              "merge")
        d.arrow("x", "g", start="left", end="bottom", elbow=True, start_at=0.5)
        for j in range(3):
            d.arrow(f"f{j}", "mix", end_at=0.35 + 0.15 * j)
        d.arrow("g", "mix", start="right", end="left")
        _towers(d, ("mix", "mix"), 4.0)
    else:
        _mmoe_gates(d)
        _towers(d, ("mix0", "mix1"), 4.0)
    d.legend()
    return d.finish()


def _mmoe_gates(d: Diagram) -> None:
    """MMoE's middle: experts, one gate per task beside that task's mixture."""
    _experts(d)
    for k, (gx, mx, side) in enumerate(((0.1, 1.45, "left"), (5.55, 3.75, "right"))):
        name = ("1", "K")[k]
        d.box(f"g{k}", (gx, 2.95), (1.35, _ROW_H), rf"gate $g_{name}$", "(batch, M)", "gate")
        d.box(f"mix{k}", (mx + (0.12 if k == 0 else 0.0), 2.95), (1.68, _ROW_H),
              rf"$\Sigma_j\, g_{name}(\mathbf{{x}})_j f_j$", "(batch, H)", "merge")
        d.arrow("x", f"g{k}", start=side, end="bottom", end_at=0.5 if k == 0 else 0.85, elbow=True)
        d.arrow(f"g{k}", f"mix{k}", start="right" if k == 0 else "left", end="left" if k == 0 else "right")
        for j in range(3):
            d.arrow(f"f{j}", f"mix{k}", end_at=0.3 + 0.2 * j)


def _behaviour_inputs(d: Diagram, positions: bool) -> None:
    """Ids, their embeddings (history and candidate from one table) and the final MLP."""
    d.box("ids", (0.1, 0.55), (2.0, _ROW_H), "user, context ids", "(batch, F)", "input")
    d.box("hist", (2.3, 0.55), (2.4, _ROW_H), r"history $h_1, \dots, h_T$", "mask (batch, T)", "input")
    d.box("cand", (4.9, 0.55), (2.0, _ROW_H), "candidate item $A$", kind="input")
    d.box("fields", (0.1, 1.6), (2.0, _TALL_H), "field\nembeddings", "(batch, F, d)", "embedding")
    d.box("e", (2.3, 1.6), (2.4, _TALL_H), r"behaviours $e_1, \dots, e_T$" + ("\n+ positions" if positions else
                                                                              "\n(shared table)"),
          "(batch, T, E)", "embedding")
    d.box("v", (4.9, 1.6), (2.0, _TALL_H), r"candidate $v_A$" + ("\n+ position" if positions else
                                                                 "\n(shared table)"),
          "(batch, E)", "embedding")
    d.box("mlp", (0.1, 5.25), (6.8, _ROW_H), r"MLP on concat(fields, $v_A$, $u$, dense) $\rightarrow z$", "(batch,)",
          "network")
    for src, dst in (("ids", "fields"), ("hist", "e"), ("cand", "v")):
        d.arrow(src, dst)
    d.arrow("fields", "mlp", end_at=0.16)
    d.arrow("v", "mlp", start_at=0.92, end_at=0.98)


def draw_din() -> Figure:
    """DIN (:class:`~rankcourse.models.DIN`): the local activation unit scores each behaviour
    against the candidate; the weighted sum of the behaviours is the user vector ``u`` that the MLP
    reads. The candidate's arrow into the unit is the one change to the embedding -> MLP framework."""
    d = Diagram(7.0, 6.05)
    _behaviour_inputs(d, positions=False)
    d.box("unit", (3.1, 2.95), (3.3, _TALL_H), "local activation unit: MLP on\n"
          r"$[e_t, v_A, e_t - v_A, e_t \odot v_A]$", "(batch, T)", "interaction")
    d.box("sum", (2.3, 4.2), (3.0, _ROW_H), r"$u = \Sigma_t\, m_t\, a(e_t, v_A)\, e_t$", "(batch, E)", "merge")
    d.arrow("e", "unit", start_at=0.8, end_at=0.18)
    d.arrow("v", "unit", start_at=0.4, end_at=0.75, colour=_OKABE_ITO["vermillion"], style="dashed")
    d.note((5.62, 2.7), "the one change", ha="right", colour=_OKABE_ITO["vermillion"])
    d.arrow("e", "sum", start_at=0.15, end_at=0.12)
    d.arrow("unit", "sum", start_at=0.3, end_at=0.75, label=r"weights $a_t$", label_offset=(0.12, 0.0))
    d.arrow("sum", "mlp")
    d.legend()
    return d.finish()


def draw_bst() -> Figure:
    """BST (:class:`~rankcourse.models.BST`): one transformer block over the behaviours and the
    candidate, with learned position embeddings; the candidate token's output is the user vector
    ``u`` that the MLP reads."""
    d = Diagram(7.0, 6.05)
    _behaviour_inputs(d, positions=True)
    d.box("block", (2.3, 2.95), (4.1, _TALL_H), "transformer block: self-attention\n"
          r"+ feed-forward over $[e_1, \dots, e_T, v_A]$", "(batch, T + 1, E)", "interaction")
    d.box("u", (2.3, 4.2), (3.0, _ROW_H), r"candidate token's output $u$", "(batch, E)", "merge")
    d.arrow("e", "block", end_at=0.3)
    d.arrow("v", "block", start_at=0.4, end_at=0.8)
    d.arrow("block", "u", start_at=0.37, end_at=0.5)
    d.arrow("u", "mlp")
    d.legend()
    return d.finish()
