"""Numbered figures from notebook cells, and ``lang="zh"`` on Chinese text (a local Sphinx extension).

Figures. A code cell whose metadata has::

    "rankcourse": {"figure": {"name": "fig-focal-loss", "caption": "What the reader should see."}}

gets its one image output wrapped in a numbered figure with that name (for ``{numref}``) and
caption (MyST markup). The alt text of the image is myst-nb's own cell option,
``"mystnb": {"image": {"alt": "..."}}``. Why not myst-nb's ``"mystnb": {"figure": ...}``: it
wraps *every* display output of the cell in a figure of the same name, so a cell that shows a
table beside its plot gets a second figure and a duplicate label (a build error). Here only the
image is wrapped, and a cell with figure metadata but no image, or several, is a build warning
that names the cell (the book is built with ``-W``).

Chinese. Pages mix English and Chinese terms (跷跷板现象, the glossary). Each run of Chinese
characters in the text becomes ``<span lang="zh">``, so that a screen reader reads it as Chinese
(docutils writes ``lang`` for a ``language-*`` class). Code, maths and raw HTML are left alone.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.utils import new_document
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)

METADATA_KEY = "rankcourse"
# CJK ideographs, CJK punctuation and full-width forms: a run of these is one Chinese passage.
_CHINESE = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]+")
_NOT_PROSE = (nodes.literal_block, nodes.literal, nodes.math, nodes.math_block, nodes.raw,
              nodes.comment, nodes.FixedTextElement)


def _is_cell(node: nodes.Node) -> bool:
    return isinstance(node, nodes.container) and node.get("nb_element") == "cell_code"


def _image_bundles(cell: nodes.Element) -> list[nodes.container]:
    """The cell's output bundles that carry an image (each bundle is one display output)."""
    return [b for b in cell.findall(nodes.container)
            if b.get("nb_element") == "mime_bundle"
            and any(str(c.get("mime_type", "")).startswith("image/") for c in b.children)]


class NumberCellFigures(SphinxTransform):
    """Wrap the image output of each cell with ``rankcourse.figure`` metadata in a named figure."""

    default_priority = 500

    def apply(self, **kwargs: Any) -> None:
        for cell in list(self.document.findall(_is_cell)):
            options = ((cell.get("cell_metadata") or {}).get(METADATA_KEY) or {}).get("figure")
            if not options:
                continue
            name, caption = options.get("name"), options.get("caption")
            where = f"cell {cell.get('cell_index')} (figure {name!r})"
            if not name or not caption:
                logger.warning(f"{where}: figure metadata needs both 'name' and 'caption'", location=cell)
                continue
            bundles = _image_bundles(cell)
            if len(bundles) != 1:
                logger.warning(f"{where}: has {len(bundles)} image outputs; a figure needs exactly one",
                               location=cell)
                continue
            figure = nodes.figure(classes=["rankcourse-figure"])
            figure.source, figure.line = cell.source, cell.line
            bundles[0].replace_self(figure)
            figure += bundles[0]
            figure += self._caption(str(caption), cell)
            figure["names"].append(nodes.fully_normalize_name(str(name)))
            self.document.note_explicit_target(figure, figure)

    def _caption(self, text: str, cell: nodes.Element) -> nodes.caption:
        """The caption's MyST markup (maths, roles, emphasis) parsed into a caption node."""
        from myst_parser.parsers.sphinx_ import MystParser

        text = self._translated(text)
        scratch = new_document(self.document["source"], self.document.settings)
        MystParser().parse(text, scratch)
        paragraph = scratch.next_node(nodes.paragraph)
        if paragraph is None:
            logger.warning(f"cell {cell.get('cell_index')}: the figure caption must be one paragraph",
                           location=cell)
            return nodes.caption(text, text)
        caption = nodes.caption(text, "", *paragraph.children)
        caption.source, caption.line = cell.source, cell.line
        return caption


    def _translated(self, text: str) -> str:
        """The caption in the book's language, from the page's catalogue (locale/, see
        scripts/translations.py); made here because this runs after Sphinx translated the page."""
        language = self.config.language
        if not language or language.startswith("en"):
            return text
        from sphinx.locale import init as init_locale
        from sphinx.util.i18n import docname_to_domain

        domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
        dirs = [str(Path(self.env.srcdir, d)) for d in self.config.locale_dirs]
        catalog, found = init_locale(dirs, language, domain)
        return catalog.gettext(text) if found else text


class MarkChineseText(SphinxPostTransform):
    """Put each run of Chinese characters of the HTML pages into an inline node of class language-zh."""

    default_priority = 900
    formats = ("html",)

    def run(self, **kwargs: Any) -> None:
        for text in list(self.document.findall(nodes.Text)):
            value = str(text)
            if not _CHINESE.search(value) or self._in_code(text):
                continue
            parent = text.parent
            if isinstance(parent, nodes.inline) and "language-zh" in parent.get("classes", []):
                continue
            pieces: list[nodes.Node] = []
            at = 0
            for match in _CHINESE.finditer(value):
                if match.start() > at:
                    pieces.append(nodes.Text(value[at:match.start()]))
                pieces.append(nodes.inline(match.group(), match.group(), classes=["language-zh"]))
                at = match.end()
            if at < len(value):
                pieces.append(nodes.Text(value[at:]))
            parent.replace(text, pieces)

    @staticmethod
    def _in_code(node: nodes.Node) -> bool:
        parent = node.parent
        while parent is not None:
            if isinstance(parent, _NOT_PROSE) or (isinstance(parent, nodes.Element)
                                                   and parent.get("nb_element") == "mime_bundle"):
                return True
            parent = parent.parent
        return False


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_transform(NumberCellFigures)
    app.add_post_transform(MarkChineseText)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
