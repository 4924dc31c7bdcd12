"""Sphinx helpers for the rankcourse book (loaded through `sphinx.local_extensions`).

Why this exists: with `hide_solutions: true`, sphinx-exercise 1.2.1 drops the node of a gated
``{solution-start}`` but keeps everything up to ``{solution-end}`` (the solution's code cells)
and leaves behind its end marker, which the HTML writer cannot render ("unknown node type:
solution_end_node"), so the student build crashes or would show the solution code.

This extension replaces ``solution-start`` by a subclass that, when solutions are hidden,
returns a marker node; a transform then removes the marker, every sibling up to the matching
``solution-end`` and the end marker itself. With `hide_solutions: false` nothing changes.

In the student edition it also gives students notebooks without solutions: the Colab launch
button opens the committed solution-free copy ``notebooks/student/NAME.ipynb`` instead of
``notebooks/NAME.ipynb``, and the downloadable source ``_sources/notebooks/NAME.ipynb`` is
replaced by the same copy, made afresh from the source (see ``student_notebooks.py``). The
instructor edition keeps the full notebooks in both places.

It also deletes ``_static/mathjax/latest.js`` from the built site after sphinx-mathjax-offline
has copied MathJax there: that component's only job is to load the newest MathJax from a CDN,
and no page of this book uses it (pages load the local ``tex-chtml.js``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)

_EXT_DIR = Path(__file__).resolve().parent
if str(_EXT_DIR) not in sys.path:  # the sibling module, also when loaded by file path in tests
    sys.path.insert(0, str(_EXT_DIR))

from student_notebooks import student_notebook_text, student_path  # noqa: E402


class hidden_solution_start(nodes.Element):
    """Placeholder for a gated solution whose content must be dropped."""


def _visit_skip(self: Any, node: nodes.Node) -> None:  # pragma: no cover - never left in a tree
    raise nodes.SkipNode


class RemoveHiddenGatedSolutions(SphinxTransform):
    """Delete each hidden gated solution: its marker, its content and its end marker.

    Runs after sphinx-exercise checks the start/end structure (priority 1) and before it
    merges gated blocks (priority 10).
    """

    default_priority = 5

    def apply(self, **kwargs: Any) -> None:
        from sphinx_exercise.nodes import solution_end_node

        for marker in list(self.document.findall(hidden_solution_start)):
            parent = marker.parent
            start = parent.index(marker)
            end = None
            for idx in range(start + 1, len(parent.children)):
                if isinstance(parent.children[idx], solution_end_node):
                    end = idx
                    break
            if end is None:
                logger.warning(
                    "hidden solution %r has no {solution-end} at the same level "
                    "(a heading between start and end is not allowed)",
                    marker.get("target", ""),
                    location=marker,
                    type="rankcourse",
                    subtype="gated-solution",
                )
                parent.remove(marker)
                continue
            for child in list(parent.children[start : end + 1]):
                parent.remove(child)


def _prune_mathjax_cdn_loader(app: Sphinx, exc: Exception | None) -> None:
    """Remove MathJax's CDN-only `latest.js` component from the output."""
    if exc is None and app.builder.format == "html":
        latest = Path(app.outdir) / "_static" / "mathjax" / "latest.js"
        latest.unlink(missing_ok=True)


def _notebook_source(app: Sphinx, pagename: str) -> Path | None:
    source = Path(app.env.doc2path(pagename))
    return source if source.suffix == ".ipynb" else None


def _point_colab_at_student_copy(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Student edition: the Colab button opens notebooks/student/NAME.ipynb in the repository."""
    source = _notebook_source(app, pagename)
    if not app.config.hide_solutions or source is None:
        return
    full = f"/{pagename}.ipynb"
    student = "/" + student_path(Path(pagename + ".ipynb")).as_posix()
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []):
            url = button.get("url", "")
            if button.get("text") == "Colab" and url.endswith(full):
                button["url"] = url[: -len(full)] + student


def _write_student_sources(app: Sphinx, exc: Exception | None) -> None:
    """Student edition: each notebook's downloadable source is its solution-free copy."""
    if exc is not None or app.builder.format != "html" or not app.config.hide_solutions:
        return
    root = Path(app.srcdir)
    for docname in sorted(app.env.found_docs):
        source = _notebook_source(app, docname)
        target = Path(app.outdir) / "_sources" / f"{docname}.ipynb"
        if source is not None and target.is_file():
            target.write_text(student_notebook_text(source, root), encoding="utf8")


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx_exercise")
    # sphinx-mathjax-offline copies MathJax at build-finished (default priority 500):
    # prune after it.
    app.setup_extension("sphinx-mathjax-offline")
    app.connect("build-finished", _prune_mathjax_cdn_loader, priority=900)
    # After sphinx-book-theme builds its header buttons (priority 501) and after Sphinx has
    # copied the sources (during writing): swap in the student copies.
    app.connect("html-page-context", _point_colab_at_student_copy, priority=600)
    app.connect("build-finished", _write_student_sources, priority=900)
    from sphinx_exercise.directive import SolutionStartDirective

    class HidingSolutionStartDirective(SolutionStartDirective):
        """`solution-start` that leaves a removable marker when solutions are hidden."""

        def run(self) -> list[nodes.Node]:
            result = super().run()
            if self.env.app.config.hide_solutions:
                marker = hidden_solution_start()
                marker["target"] = self.arguments[0]
                self.set_source_info(marker)
                return [marker]
            return result

    app.add_node(
        hidden_solution_start,
        html=(_visit_skip, None),
        latex=(_visit_skip, None),
        text=(_visit_skip, None),
    )
    app.add_directive("solution-start", HidingSolutionStartDirective, override=True)
    app.add_transform(RemoveHiddenGatedSolutions)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
