"""One click between the English and the Chinese edition (a local Sphinx extension).

The Chinese edition is built into a folder inside the English one (``_build/html/zh_CN/``,
``_build/instructor/html/zh_CN/``; see ``scripts/build_book.sh``). Every page gets, at the top
of its text, a link to the same page in the other language, and a ``<link rel="alternate"
hreflang>`` in its head. The links are relative (``zh_CN/notebooks/04_dcn.html`` from the
English page, ``../../notebooks/04_dcn.html`` from the Chinese one), so a fork's site and a
site opened from disk work alike.

Config value ``rankcourse_other_language``: ``{"lang": "zh-CN", "label": "中文",
"prefix": "zh_CN/", "title": "..."}``. ``prefix`` is the other edition's root seen from this
edition's root. Empty (the default): no link.

In the Chinese student edition, the chapter downloads and the Colab button give the Chinese
student notebooks: the downloadable ``_sources/notebooks/NAME.ipynb`` is the solution-free copy
translated from the catalogues at build time (cells whose messages are not all translated stay
English), and Colab opens ``notebooks/student/zh_CN/NAME.ipynb`` when that committed copy
exists (``python scripts/translations.py notebooks`` writes it for the translated chapters),
else the English student copy.

It also makes the exercise titles messages (``{exercise} Why no softmax?``, ``{exercise-start}
The masked activation unit``): sphinx-exercise keeps them out of the catalogues and out of
Sphinx's translation (see :func:`translatable_exercise_directive`).
"""

from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import Any

from docutils import nodes
from myst_nb.core.variables import VariableOutput
from myst_nb.ext.glue import directives as glue_directives
from myst_nb.ext.glue import roles as glue_roles
from myst_nb.ext.glue.crossref import read_glue_cache
from myst_nb.ext.glue.utils import RetrievalError
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.locale import init as init_locale
from sphinx.transforms import SphinxTransform
from sphinx.util.docutils import SphinxDirective
from sphinx.util.i18n import docname_to_domain
from sphinx_exercise.directive import ExerciseDirective, ExerciseStartDirective
from sphinx_exercise.nodes import exercise_subtitle, exercise_title

_EXT_DIR = Path(__file__).resolve().parent
if str(_EXT_DIR) not in sys.path:
    sys.path.insert(0, str(_EXT_DIR))

from book_translations import Settings, translated_student_text, zh_student_path  # noqa: E402
from student_notebooks import student_path  # noqa: E402

LINK_CLASS = "rankcourse-language-link"


def other_language_href(pagename: str, prefix: str) -> str:
    """The relative URL of `pagename` in the other edition, from `pagename` in this one."""
    return "../" * pagename.count("/") + prefix + pagename + ".html"


def _add_language_link(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any],
                       doctree: Any) -> None:
    other = app.config.rankcourse_other_language
    if not other or app.builder.format != "html" or "body" not in context:
        return
    href = html.escape(other_language_href(pagename, other["prefix"]), quote=True)
    lang = html.escape(other["lang"], quote=True)
    title = html.escape(other.get("title", ""), quote=True)
    context["body"] = (
        f'<p class="{LINK_CLASS}"><a href="{href}" hreflang="{lang}" lang="{lang}" '
        f'title="{title}">{html.escape(other["label"])}</a></p>\n' + context["body"]
    )
    context["metatags"] = context.get("metatags", "") + (
        f'\n<link rel="alternate" hreflang="{lang}" href="{href}" />'
    )


class KeepDisplayMaths(SphinxTransform):
    """Display maths is the same in every language: not a message to extract or to translate.

    (Sphinx treats a maths block like a paragraph, so its LaTeX would become a message.)
    Runs before Sphinx's own translation transform (priority 20).
    """

    default_priority = 10

    def apply(self, **kwargs: Any) -> None:
        for block in self.document.findall(nodes.math_block):
            block["translatable"] = False


class TranslateTocCaptions(SphinxTransform):
    """Translate the captions of the toctrees that sphinx-external-toc inserts (from _toc.yml).

    They are extracted with the root page's messages ("Getting started", "Chapters", ...), but
    inserted (priority 100) after Sphinx has translated the page (priority 20), so the sidebar
    would keep them in English. Runs before Sphinx records the toctrees (priority 880).
    """

    default_priority = 150

    def apply(self, **kwargs: Any) -> None:
        if not _translating(self.app):
            return
        domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
        dirs = [Path(self.env.srcdir, d) for d in self.config.locale_dirs]
        catalog, found = init_locale(dirs, self.config.language, domain)
        if not found:
            return
        for toctree in self.document.findall(addnodes.toctree):
            if toctree.get("caption"):
                toctree["caption"] = catalog.gettext(toctree["caption"])


def translatable_exercise_directive(directive: type[SphinxDirective]) -> type[SphinxDirective]:
    """sphinx-exercise's `directive` (``exercise``, ``exercise-start``) whose title is a message.

    The title is the directive's argument (``{exercise} Why no softmax?``). sphinx-exercise
    parses it into an ``exercise_subtitle`` node with no source and no raw text, which Sphinx's
    gettext builder skips and its translation transform leaves alone (and its post-transform
    later drops the subtitle, moving the parsed text into a new title). So the parsed text is
    wrapped in one inline node marked ``translatable`` that carries the title's source, line and
    raw text (the argument as written), the placeholder Sphinx itself uses for messages inside
    other nodes: the gettext builder extracts it into the page's catalogue, Sphinx translates it
    (priority 20) and then unwraps it (``RemoveTranslatableInline``, priority 999).
    """

    class TranslatableTitle(directive):  # type: ignore[valid-type,misc]
        def run(self) -> list[nodes.Node]:
            result = super().run()
            if not self.arguments:
                return result
            for node in result:
                title = node.children[0] if node.children else None
                if not isinstance(title, exercise_title):
                    continue
                for subtitle in title.findall(exercise_subtitle):
                    text = nodes.inline(self.arguments[0], "", *subtitle.children, translatable=True)
                    self.set_source_info(text)
                    del subtitle[:]
                    subtitle += text
            return result

    TranslatableTitle.__name__ = TranslatableTitle.__qualname__ = f"Translatable{directive.__name__}"
    return TranslatableTitle


class TranslateExerciseTitlesInRegistry(SphinxTransform):
    """Give sphinx-exercise's registry the translated exercise titles.

    The registry keeps a copy of each exercise node made when the directive ran, before Sphinx
    translated the page (priority 20); solution titles ("Solution to Exercise 3 (...)") and link
    texts are taken from that copy. Runs after the translation.
    """

    default_priority = 25

    def apply(self, **kwargs: Any) -> None:
        registry = getattr(self.env, "sphinx_exercise_registry", {})
        for subtitle in self.document.findall(exercise_subtitle):
            if not any(isinstance(c, nodes.Element) and c.get("translated") for c in subtitle.children):
                continue
            exercise = subtitle.parent.parent if subtitle.parent is not None else None
            entry = registry.get(exercise.get("label", "")) if exercise is not None else None
            if entry is None:
                continue
            for kept in entry["node"].findall(exercise_subtitle):
                del kept[:]
                kept.extend(_without_placeholders(subtitle.children))


def _glue_from_the_page(retrieve: Any) -> Any:
    """``retrieve_glue_data`` that also serves a translated message from its page's glued values.

    Sphinx parses each translated message of a page in a document of its own (its source ends
    with ``<translated>``), as plain MyST: that document has no notebook and no glue data, so every
    ``{glue:text}`` role of a translated paragraph failed with "No key ... found in glue data for
    this document". myst-nb writes each page's glued values to ``<docname>.glue.json`` in its
    output folder while it reads the page; a translation, read after its page, takes them there.
    """
    if getattr(retrieve, "rankcourse_wrapped", False):
        return retrieve

    def retrieve_glue_data(document: nodes.document, key: str) -> Any:
        try:
            return retrieve(document, key)
        except RetrievalError:
            env = getattr(document.settings, "env", None)
            if env is None or not str(document.get("source", "")).endswith("<translated>"):
                raise
            data = read_glue_cache(env.mystnb_config.output_folder, env.docname)
            if key not in data:
                raise
            return VariableOutput(data=data[key]["data"], metadata=data[key].get("metadata", {}),
                                  nb_renderer=None, vtype="glue")  # type: ignore[arg-type]

    retrieve_glue_data.rankcourse_wrapped = True  # type: ignore[attr-defined]
    return retrieve_glue_data


def _without_placeholders(children: list[nodes.Node]) -> list[nodes.Node]:
    """Copies of `children`, each translatable placeholder inline replaced by its content (as
    Sphinx unwraps it later in the page)."""
    copies: list[nodes.Node] = []
    for child in children:
        placeholder = isinstance(child, nodes.inline) and "translatable" in child
        copies.extend(leaf.deepcopy() for leaf in (child.children if placeholder else [child]))
    return copies


def _translating(app: Sphinx) -> bool:
    return bool(app.config.language) and app.config.language not in ("en", "en_US", "en_GB")


def _point_colab_at_translated_copy(app: Sphinx, pagename: str, templatename: str,
                                    context: dict[str, Any], doctree: Any) -> None:
    """Chinese student edition: Colab opens notebooks/student/zh_CN/NAME.ipynb when it exists."""
    source = Path(app.env.doc2path(pagename))
    if not (_translating(app) and app.config.hide_solutions and source.suffix == ".ipynb"):
        return
    translated = zh_student_path(source, app.config.language)
    if not translated.is_file():
        return
    english = "/" + student_path(Path(pagename + ".ipynb")).as_posix()
    target = "/" + zh_student_path(Path(pagename + ".ipynb"), app.config.language).as_posix()
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []):
            url = button.get("url", "")
            if button.get("text") == "Colab" and url.endswith(english):
                button["url"] = url[: -len(english)] + target


def _write_translated_sources(app: Sphinx, exc: Exception | None) -> None:
    """Chinese student edition: each notebook's download is its translated student copy."""
    if exc is not None or app.builder.format != "html" or not app.config.hide_solutions:
        return
    if not _translating(app):
        return
    root = Path(app.srcdir)
    settings = Settings.read(root, app.config.language)
    for docname in sorted(app.env.found_docs):
        source = Path(app.env.doc2path(docname))
        target = Path(app.outdir) / "_sources" / f"{docname}.ipynb"
        if source.suffix == ".ipynb" and target.is_file():
            text, _ = translated_student_text(source, root, settings)
            target.write_text(text, encoding="utf8")


def _translate_search_bar(app: Sphinx, config: Any) -> None:
    # Jupyter Book writes the theme's search text itself ("Search this book..."): replace it.
    if config.rankcourse_search_bar_text:
        config.html_theme_options = {**(config.html_theme_options or {}),
                                     "search_bar_text": config.rankcourse_search_bar_text}


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("rankcourse_other_language", {}, "html", types=[dict])
    app.add_config_value("rankcourse_search_bar_text", "", "html", types=[str])
    app.connect("config-inited", _translate_search_bar)
    # Exercise titles are messages (after sphinx-exercise has registered its directives).
    app.setup_extension("sphinx_exercise")
    for name, directive in (("exercise", ExerciseDirective), ("exercise-start", ExerciseStartDirective)):
        app.add_directive(name, translatable_exercise_directive(directive), override=True)
    app.add_transform(TranslateExerciseTitlesInRegistry)
    app.add_transform(TranslateTocCaptions)
    app.add_transform(KeepDisplayMaths)
    for module in (glue_roles, glue_directives):
        module.retrieve_glue_data = _glue_from_the_page(module.retrieve_glue_data)
    app.connect("html-page-context", _add_language_link)
    # After rankcourse_book_ext points Colab at the English student copy (priority 600) and
    # writes the English student downloads (build-finished, 900).
    app.connect("html-page-context", _point_colab_at_translated_copy, priority=650)
    app.connect("build-finished", _write_translated_sources, priority=950)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
