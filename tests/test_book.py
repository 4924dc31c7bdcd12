"""Checks on the book: notebook hygiene, table of contents, offline assets, solution hiding.

The tests on built HTML need `bash scripts/build_book.sh` (student edition, `_build/html`) and
`bash scripts/build_book.sh --instructor` (`_build/instructor/html`) to have run first, as
`scripts/run_tests.sh` does; without a build they are skipped and say so.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PAGES = sorted((ROOT / "book").glob("*.md"))
STUDENT = ROOT / "_build" / "html"
INSTRUCTOR = ROOT / "_build" / "instructor" / "html"
# The course's home and release, from the one setting (scripts/set_home.py).
_SET_HOME = importlib.util.spec_from_file_location("set_home", ROOT / "scripts" / "set_home.py")
set_home = sys.modules.setdefault("set_home", importlib.util.module_from_spec(_SET_HOME))
_SET_HOME.loader.exec_module(set_home)
COURSE = set_home.read_course(ROOT)
REPO_URL = COURSE.repo_url

# Hosts that serve libraries (MathJax, require.js, widget managers, thebe, fonts) to pages.
CDN_HOSTS = (
    "cdn.jsdelivr.net",
    "unpkg.com",
    "cdnjs.cloudflare.com",
    "cdn.statically.io",
    "gitcdn.xyz",
    "rawcdn.githack.com",
    "ajax.googleapis.com",
    "fonts.googleapis.com",
    "fonts.gstatic.com",
    "code.jquery.com",
    "stackpath.bootstrapcdn.com",
    "cdn.plot.ly",
)
CDN_RE = re.compile("|".join(re.escape(h) for h in CDN_HOSTS))
# In JavaScript, a CDN URL that would load MathJax, RequireJS, a widget manager or thebe.
# (MathJax's bundle also names jsdelivr for Internet Explorer-only speech data it never
# loads in a current browser; test_chapter_page_typesets_maths_in_a_browser checks the
# requests a page really makes.)
CDN_LIBRARY_RE = re.compile(
    r"(?:%s)/[^\s\"'`]*(?:mathjax|require|jupyter-widgets|html-manager|thebe)" % CDN_RE.pattern,
    re.IGNORECASE,
)


def _load_notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf8"))


def _cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _toc_files(toc: dict) -> list[str]:
    """Every document named in a sphinx-external-toc file (root included), without suffix."""
    found = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return [re.sub(r"\.(md|ipynb)$", "", f) for f in found]


def _html_files(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)


def _need_build(site: Path, edition: str) -> None:
    if not (site / "index.html").is_file():
        flag = " --instructor" if edition == "instructor" else ""
        pytest.skip(f"no built {edition} edition in {site.relative_to(ROOT)}: run `bash scripts/build_book.sh{flag}` first")


class _ResourceCollector(HTMLParser):
    """Collects URLs a page *loads* (scripts, styles, images, frames), not links it shows."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "audio", "video", "source", "embed") and attrs.get("src"):
            self.loads.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            rel = (attrs.get("rel") or "").lower()
            if any(r in rel for r in ("stylesheet", "preload", "modulepreload", "icon", "prefetch")):
                self.loads.append(attrs["href"])
        if tag == "script" and not attrs.get("src"):
            self._in_script = True

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.inline_scripts.append(data)


def _collect(page: Path) -> _ResourceCollector:
    collector = _ResourceCollector()
    collector.feed(page.read_text(encoding="utf8"))
    return collector


# --------------------------------------------------------------------------- sources


def test_there_are_the_ten_chapter_notebooks_and_the_appendix():
    names = [p.name for p in NOTEBOOKS]
    for chapter in ("01_framework_and_losses", "02_wide_and_deep", "03_deepfm", "04_dcn", "05_mmoe",
                    "06_tuning", "07_imbalance_and_task_weights", "08_real_logs", "09_behaviour_sequences", "10_serving", "A_scaling_out"):
        assert f"{chapter}.ipynb" in names, f"notebooks/{chapter}.ipynb is missing"


# Code lines <= 80 characters and the other page rules: tests/test_page_check.py (scripts/page_check.py).


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = _load_notebook(path)
    dirty = [
        i for i, cell in enumerate(nb["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{path.name}: code cells {dirty} have outputs or execution counts; clear them "
        "(e.g. `jupyter nbconvert --clear-output --inplace`) before committing"
    )
    assert "widgets" not in nb.get("metadata", {}), f"{path.name}: stored widget state in the notebook metadata"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_first_code_cell_installs_the_package_only_in_colab(path):
    code = [_cell_source(c) for c in _load_notebook(path)["cells"] if c["cell_type"] == "code"]
    assert code, f"{path.name} has no code cell"
    first = code[0]
    assert '"google.colab" in sys.modules' in first and "%pip install" in first, (
        f"{path.name}: the first code cell must install the package only in Colab, e.g.\n"
        + set_home.install_cell(COURSE)
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_gated_exercises_and_solutions_are_balanced(path):
    markdown = "\n".join(_cell_source(c) for c in _load_notebook(path)["cells"] if c["cell_type"] == "markdown")
    for kind in ("exercise", "solution"):
        starts = len(re.findall(r"\{%s-start\}" % kind, markdown))
        ends = len(re.findall(r"\{%s-end\}" % kind, markdown))
        assert starts == ends, f"{path.name}: {starts} {{{kind}-start}} but {ends} {{{kind}-end}}"


def test_toc_lists_every_notebook_and_every_page():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf8"))
    listed = set(_toc_files(toc))
    expected = {f"notebooks/{p.stem}" for p in NOTEBOOKS} | {f"book/{p.stem}" for p in PAGES}
    assert not expected - listed, f"not in _toc.yml: {sorted(expected - listed)}"
    missing = [f for f in listed if not any((ROOT / f"{f}{ext}").is_file() for ext in (".md", ".ipynb"))]
    assert not missing, f"_toc.yml names files that do not exist: {missing}"
    assert toc["root"] == "book/intro"


def test_config_serves_maths_and_widgets_locally_and_fetches_nothing():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
    sphinx = config["sphinx"]["config"]
    extensions = sphinx["extensions"]
    assert "sphinx-mathjax-offline" in extensions
    assert "sphinx.ext.intersphinx" not in extensions and "sphinx_thebe" not in extensions
    assert "mathjax_path" not in sphinx or "://" not in sphinx["mathjax_path"]
    assert sphinx["nb_ipywidgets_js"], "nb_ipywidgets_js must list the local widget scripts"
    for path in sphinx["nb_ipywidgets_js"]:
        assert "://" not in path and not path.startswith("//"), f"widget script {path} is not local"
        assert (ROOT / "book" / "_vendor" / path).is_file(), f"book/_vendor/{path} is missing"
    assert sphinx["hide_solutions"] is True, "the default (student) build must hide solutions"
    assert sphinx["nb_execution_raise_on_error"] is True
    assert config["execute"]["execute_notebooks"] == "force"
    assert not config["launch_buttons"].get("binderhub_url") and not config["launch_buttons"].get("thebe")
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    # Launch buttons open the notebooks at the release the install cell installs.
    assert config["repository"]["url"] == REPO_URL and config["repository"]["branch"] == COURSE.tag


# --------------------------------------------------------------------------- built HTML


def test_built_pages_load_nothing_from_other_hosts():
    _need_build(STUDENT, "student")
    problems = []
    for page in _html_files(STUDENT):
        collector = _collect(page)
        for url in collector.loads:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") or url.startswith("//"):
                problems.append(f"{page.relative_to(STUDENT)} loads {url}")
        for body in collector.inline_scripts:
            if CDN_RE.search(body):
                problems.append(f"{page.relative_to(STUDENT)}: inline script mentions {CDN_RE.search(body).group(0)}")
        text = page.read_text(encoding="utf8")
        if CDN_RE.search(text):
            problems.append(f"{page.relative_to(STUDENT)} mentions CDN host {CDN_RE.search(text).group(0)}")
    assert not problems, "\n".join(problems)


def test_built_scripts_and_styles_load_no_library_from_a_cdn():
    _need_build(STUDENT, "student")
    problems = []
    for path in sorted(STUDENT.rglob("*")):
        if path.suffix not in (".js", ".css", ".mjs") or not path.is_file():
            continue
        match = CDN_LIBRARY_RE.search(path.read_text(encoding="utf8", errors="replace"))
        if match:
            problems.append(f"{path.relative_to(STUDENT)}: {match.group(0)}")
    assert not problems, "\n".join(problems)


def test_maths_is_typeset_by_the_local_mathjax():
    _need_build(STUDENT, "student")
    assert (STUDENT / "_static" / "mathjax" / "tex-chtml.js").is_file()
    pages_with_maths = 0
    for page in _html_files(STUDENT):
        text = page.read_text(encoding="utf8")
        if 'class="math' not in text:
            continue
        pages_with_maths += 1
        srcs = [u for u in _collect(page).loads if "mathjax" in u.lower()]
        assert srcs, f"{page.relative_to(STUDENT)} has maths but loads no MathJax"
        for src in srcs:
            target = (page.parent / urlsplit(src).path).resolve()
            assert target.is_file() and STUDENT.resolve() in target.parents, (
                f"{page.relative_to(STUDENT)} loads MathJax from {src}, not a file of the site"
            )
    assert pages_with_maths >= 2, "expected maths on the notation page and the chapters"


def test_pages_with_widgets_use_the_vendored_widget_manager():
    _need_build(STUDENT, "student")
    for page in _html_files(STUDENT):
        text = page.read_text(encoding="utf8")
        if "application/vnd.jupyter.widget-state+json" not in text:
            continue
        loads = [urlsplit(u).path for u in _collect(page).loads]
        for name in ("require.js", "embed-amd.js"):
            hits = [u for u in loads if u.endswith(f"_static/widgets/{name}")]
            assert hits, f"{page.relative_to(STUDENT)} shows widgets without the local {name}"
            assert (page.parent / hits[0]).resolve().is_file()


def test_chapter_pages_have_a_colab_launch_link():
    _need_build(STUDENT, "student")
    for nb in NOTEBOOKS:
        page = STUDENT / "notebooks" / f"{nb.stem}.html"
        assert page.is_file(), f"{page.relative_to(ROOT)} was not built"
        # The student edition opens the solution-free copy (tests/test_student_notebooks.py).
        link = f"https://colab.research.google.com/github/{COURSE.home}/blob/{COURSE.tag}/notebooks/student/{nb.name}"
        assert link in page.read_text(encoding="utf8"), f"{page.name} has no Colab link {link}"


def _count_solutions(html: str) -> int:
    return len(re.findall(r'<div class="solution\b[^"]*admonition', html))


def _solution_starts(nb: Path) -> int:
    markdown = "\n".join(_cell_source(c) for c in _load_notebook(nb)["cells"] if c["cell_type"] == "markdown")
    return len(re.findall(r"\{solution(?:-start)?\}", markdown))


def test_student_edition_contains_no_solution():
    _need_build(STUDENT, "student")
    for page in _html_files(STUDENT):
        text = page.read_text(encoding="utf8")
        where = page.relative_to(STUDENT)
        assert _count_solutions(text) == 0, f"{where} shows a solution"
        assert "tag_solution" not in text, f"{where} shows a code cell tagged 'solution'"
        assert "solution-content" not in text, f"{where} contains solution content"


def test_instructor_edition_shows_every_solution():
    _need_build(INSTRUCTOR, "instructor")
    for nb in NOTEBOOKS:
        expected = _solution_starts(nb)
        page = INSTRUCTOR / "notebooks" / f"{nb.stem}.html"
        assert page.is_file(), f"{page.relative_to(ROOT)} was not built"
        text = page.read_text(encoding="utf8")
        assert _count_solutions(text) == expected, (
            f"{page.name}: {_count_solutions(text)} solutions shown, the notebook has {expected}"
        )
        n_tagged = sum("solution" in c.get("metadata", {}).get("tags", []) for c in _load_notebook(nb)["cells"])
        assert text.count("tag_solution") == n_tagged, f"{page.name}: solution code cells missing"


# --------------------------------------------------------------------------- in a browser


def _screenshot_module():
    spec = importlib.util.spec_from_file_location("screenshot_check", ROOT / "scripts" / "screenshot_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("screenshot_check", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return sys.modules["screenshot_check"]


@pytest.mark.parametrize("page", ["notebooks/01_framework_and_losses.html", "book/notation.html"])
def test_chapter_page_typesets_maths_in_a_browser(page):
    _need_build(STUDENT, "student")
    shot = _screenshot_module()
    chromium = shot.find_chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    result = shot.check_page(chromium, STUDENT, page)
    assert not result.problems(min_math=1), "\n".join(result.problems(min_math=1))


# --------------------------------------------------------------------------- figures on the built pages
def _figure_cells_outside_solutions(nb: Path) -> int:
    """Code cells that call ``plt.show()`` outside the gated solutions (hidden in the student edition)."""
    count, in_solution = 0, False
    for cell in _load_notebook(nb)["cells"]:
        source = _cell_source(cell)
        if cell["cell_type"] == "markdown":
            if "solution-start" in source:
                in_solution = True
            if "solution-end" in source:
                in_solution = False
        elif not in_solution and "plt.show()" in source:
            count += 1
    return count


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_page_carries_a_figure_for_every_cell_that_draws(nb):
    """A build under a non-drawing Matplotlib backend (Agg) executes the chapters without a single
    figure; the tested book must be the book users get."""
    _need_build(STUDENT, "student")
    page = STUDENT / "notebooks" / f"{nb.stem}.html"
    assert page.is_file(), f"{page} was not built"
    figures = [src for src in _collect(page).loads if "_images/" in src]
    drawing = _figure_cells_outside_solutions(nb)
    assert len(figures) >= drawing, (
        f"{page.name}: {len(figures)} figure(s) for {drawing} cell(s) that call plt.show() "
        "(was the book built with MPLBACKEND=Agg?)"
    )


# --------------------------------------------------------------------------- numbered figures, alt text
FIGURE_KEY = "rankcourse"  # cell metadata read by book/_ext/rankcourse_figures.py
CHAPTERS = [nb for nb in NOTEBOOKS if re.match(r"(\d\d|A)_", nb.name)]
# A file name, a path or a hash where a sentence should be (myst-nb's default alt is the file's URI).
FILE_NAME_RE = re.compile(r"(^|/)[\w.-]+\.(png|jpe?g|svg|gif)$|^[0-9a-f]{16,}", re.IGNORECASE)


def _cells_outside_solutions(nb: Path):
    in_solution = False
    for cell in _load_notebook(nb)["cells"]:
        source = _cell_source(cell)
        if cell["cell_type"] == "markdown":
            in_solution = (in_solution or "solution-start" in source) and "solution-end" not in source
        elif not in_solution and "solution" not in cell.get("metadata", {}).get("tags", []):
            yield cell


def _draws(source: str) -> bool:
    """A cell that shows a Matplotlib figure: plt.show(), or a figure function of rankcourse.plots."""
    return "plt.show()" in source or re.search(r"^\s*plot_(history|reliability|gradient_check)\(", source, re.M)


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_every_drawing_cell_is_a_named_captioned_figure_with_alt_text(nb):
    problems = []
    for cell in _cells_outside_solutions(nb):
        if cell["cell_type"] != "code" or not _draws(_cell_source(cell)):
            continue
        meta = cell.get("metadata", {})
        figure = meta.get(FIGURE_KEY, {}).get("figure", {})
        alt = meta.get("mystnb", {}).get("image", {}).get("alt", "")
        where = f"{nb.name} cell {cell.get('id')}"
        if not (figure.get("name", "").startswith("fig-") and figure.get("caption")):
            problems.append(f"{where}: needs metadata {FIGURE_KEY}.figure with a name 'fig-...' and a caption")
        if len(alt.split()) < 8 or FILE_NAME_RE.search(alt.strip()):
            problems.append(f"{where}: needs mystnb.image.alt, a sentence or two on the axes and the finding")
    assert not problems, "\n".join(problems)


def test_figure_names_are_unique_and_every_figure_is_cited_from_its_chapter():
    seen: dict[str, str] = {}
    problems = []
    for nb in CHAPTERS:
        cells = _load_notebook(nb)["cells"]
        prose = "\n".join(_cell_source(c) for c in cells if c["cell_type"] == "markdown")
        for cell in cells:
            name = cell.get("metadata", {}).get(FIGURE_KEY, {}).get("figure", {}).get("name")
            if not name:
                continue
            if name in seen:
                problems.append(f"{name}: in {seen[name]} and {nb.name}")
            seen[name] = nb.name
            if not re.search(r"\{numref\}`(?:[^`<]*<)?%s>?`" % re.escape(name), prose):
                problems.append(f"{nb.name}: no {{numref}}`{name}` in the chapter's text")
    assert seen, "no figure metadata found at all"
    assert not problems, "\n".join(problems)


class _FigureCollector(HTMLParser):
    """Images of a page's article, each with its alt text and the caption of its <figure>, if any."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict] = []
        self.figure_ids: list[str] = []
        self.links: list[str] = []
        self._article = 0
        self._figures: list[dict] = []
        self._link_classes: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "article":
            self._article += 1
        if not self._article:
            return
        if tag == "figure":
            self._figures.append({"id": attrs.get("id"), "caption": False, "images": []})
            if attrs.get("id"):
                self.figure_ids.append(attrs["id"])
        elif tag == "figcaption" and self._figures:
            self._figures[-1]["caption"] = True
        elif tag == "img":
            styled = re.search(r"(?:^|;)\s*width:\s*([\d.]+)px", attrs.get("style") or "")
            image = {"src": attrs.get("src", ""), "alt": attrs.get("alt"), "figure": None,
                     "width": styled.group(1) if styled else attrs.get("width")}
            if self._figures:
                self._figures[-1]["images"].append(image)
            self.images.append(image)
        elif tag == "a" and attrs.get("href", "").startswith("#") and "headerlink" not in (attrs.get("class") or ""):
            self.links.append(attrs["href"][1:])

    def handle_endtag(self, tag):
        if tag == "article" and self._article:
            self._article -= 1
        elif tag == "figure" and self._figures:
            figure = self._figures.pop()
            for image in figure["images"]:
                image["figure"] = figure


def _figures_of(page: Path) -> _FigureCollector:
    collector = _FigureCollector()
    collector.feed(page.read_text(encoding="utf8"))
    return collector


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_every_image_of_a_chapter_page_is_a_captioned_figure_with_real_alt_text(nb):
    """Student edition: its chapter pages show no solution, so every image is one of the chapter's figures."""
    _need_build(STUDENT, "student")
    page = STUDENT / "notebooks" / f"{nb.stem}.html"
    found = _figures_of(page)
    problems = []
    for image in found.images:
        alt = (image["alt"] or "").strip()
        if not alt or FILE_NAME_RE.search(alt) or alt == image["src"]:
            problems.append(f"{image['src']}: alt text {image['alt']!r} is not a description")
        if image["figure"] is None or not image["figure"]["caption"]:
            problems.append(f"{image['src']}: not inside a <figure> with a <figcaption>")
    uncited = [f for f in found.figure_ids if f.startswith("fig-") and f not in found.links]
    problems += [f"figure {f} is not referenced from the page's text" for f in uncited]
    print(f"{page.name}: {len(found.images)} image(s), {len(found.figure_ids)} numbered figure(s)")
    assert not problems, f"{page.name}:\n" + "\n".join(problems)


def test_chapter_pages_pass_axe_in_both_themes():
    """axe-core (vendored in scripts/_vendor/axe-core) over every chapter page, light and dark theme.

    Fails on every violating element of the course's own content; the theme's and ipywidgets'
    violations are listed, rule by rule and element by element with the reason, in
    scripts/screenshot_check.py (KNOWN_VIOLATIONS) and printed here. Screenshots of the first
    chapter in each theme, 1280 pixels wide, are kept in _build/screenshots/.
    """
    shot, chromium, pages = _browser_or_skip()
    own, known = [], []
    for page in pages:
        for theme in shot.THEMES:
            screenshot = None
            if page == pages[0]:
                name = page.replace("/", "__").removesuffix(".html")
                screenshot = ROOT / "_build" / "screenshots" / f"{name}.{theme}.png"
            nodes = shot.axe_check(chromium, STUDENT, page, theme=theme, shot=screenshot)
            own += [f"{page} [{theme}] {n.describe()}" for n in nodes if n.known is None]
            known += [f"{page} [{theme}] {n.rule}: {n.target} -- {n.known.reason}" for n in nodes if n.known]
    print(f"axe: {len(own)} violating element(s) of the course's own, {len(known)} known theme/widget ones:")
    print("\n".join(known))
    assert not own, "\n".join(own)


# --------------------------------------------------------------------------- what runs off the column

_TINY_PAGE = """<!DOCTYPE html><html><head><style>
body {{ margin: 0; font: 16px sans-serif; }}
article.bd-article {{ width: 400px; padding: 0 20px; }}
pre {{ overflow: auto; font: 14px monospace; margin: 0; }}
figure {{ margin: 0; }} img {{ max-width: 100%; height: auto; }}
</style></head><body><article class="bd-article"><section id="a-section">
<div class="cell docutils container"><div class="cell_input docutils container">
<div class="highlight"><pre>print("short")</pre></div></div></div>
<div class="cell docutils container"><div class="cell_input docutils container">
<div class="highlight"><pre>x = 1{long}</pre></div></div>
<div class="cell_output docutils container"><div class="output stream"><pre>fits</pre></div></div></div>
<table style="width: 300px"><tr><td>a table that fits</td></tr></table>
</section></article></body></html>"""


def _chromium_or_skip(shot):
    chromium = shot.find_chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    return chromium


def test_overflow_check_catches_a_pre_wider_than_the_column_and_names_its_cell(tmp_path):
    """A hand-made page: one code line of 200 characters in a 400-pixel column, the rest fits."""
    shot = _screenshot_module()
    chromium = _chromium_or_skip(shot)
    long_tail = "  # " + "y" * 195
    (tmp_path / "page.html").write_text(_TINY_PAGE.format(long=long_tail), encoding="utf8")
    notebook = {"cells": [
        {"cell_type": "code", "id": "short-cell", "source": ['print("short")']},
        {"cell_type": "code", "id": "long-cell", "source": ["x = 1" + long_tail]},
    ]}
    (tmp_path / "page.ipynb").write_text(json.dumps(notebook), encoding="utf8")
    report = shot.overflow_check(chromium, tmp_path, "page.html", width=1280, notebook=tmp_path / "page.ipynb")
    assert report.column_px == 400
    assert [(o.kind, o.cell_id) for o in report.overflows] == [("code", "long-cell")], report.overflows
    # 200 characters of 14-pixel monospace (about 8.4 px each) in a 400-pixel box: about 1,300 px too wide
    assert 1000 < report.overflows[0].overflow < 1600
    assert "long-cell" in report.overflows[0].describe()
    assert 40 <= report.code_chars <= 50  # 400 px / ~8.4 px a character


def test_overflow_check_passes_a_page_where_everything_fits(tmp_path):
    shot = _screenshot_module()
    chromium = _chromium_or_skip(shot)
    (tmp_path / "page.html").write_text(_TINY_PAGE.format(long=""), encoding="utf8")
    report = shot.overflow_check(chromium, tmp_path, "page.html", width=1280)
    assert report.overflows == []


_WIDTH_REPORTS: dict[tuple[str, int], object] = {}


def _width_report(shot, chromium: str, page: str, width: int):
    """scripts/screenshot_check.py's measure of `page` at `width` px, made once per test session."""
    if (page, width) not in _WIDTH_REPORTS:
        name = page.replace("/", "__").removesuffix(".html")
        _WIDTH_REPORTS[page, width] = shot.overflow_check(
            chromium, STUDENT, page, width=width, notebook=shot.notebook_of(page, ROOT),
            shot=ROOT / "_build" / "screenshots" / f"{name}.{width}.png")
    return _WIDTH_REPORTS[page, width]


def _browser_or_skip():
    _need_build(STUDENT, "student")
    shot = _screenshot_module()
    chromium = shot.find_chromium() or shot.install_chromium()  # apt-get, when root (as in CI)
    if chromium is None:
        pytest.skip("Chromium is not installed and cannot be here (apt-get install -y chromium as root)")
    pages = shot.chapter_pages(STUDENT)
    assert len(pages) == len(CHAPTERS), f"chapter pages found: {pages}"
    return shot, chromium, pages


def _png_width(path: Path) -> int:
    """Width in pixels from a PNG file's IHDR chunk."""
    data = path.read_bytes()[:24]
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    return int.from_bytes(data[16:20], "big")


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_every_figure_of_a_chapter_page_is_at_most_the_column_wide(nb):
    """Issue 20: a figure's text (12 pt at 100 dpi, 16.7 CSS px) reads at body size (16 px) only if the
    book does not shrink it: its CSS width (the width that course_png gives, half the 2x PNG's pixels,
    which myst-nb writes as `style="width: Npx"`) is at most rankcourse.plots.BOOK_COLUMN_PX. Model
    drawings (rankcourse.diagrams) count too."""
    _need_build(STUDENT, "student")
    from rankcourse.plots import BOOK_COLUMN_PX

    page = STUDENT / "notebooks" / f"{nb.stem}.html"
    problems = []
    for image in _figures_of(page).images:
        name = (image["figure"] or {}).get("id") or image["src"]
        width = image["width"]
        if width is None:
            local = (page.parent / image["src"]).resolve()
            if local.suffix.lower() == ".png" and local.is_file():
                problems.append(f"{name}: no width attribute: a {_png_width(local)}-pixel PNG shown at 1x "
                                "(draw it through rankcourse.plots.course_png)")
            continue
        if float(width) > BOOK_COLUMN_PX:
            problems.append(f"{name}: {width} CSS px wide, more than the column's {BOOK_COLUMN_PX:.0f}: the book "
                            f"shrinks it and its 12 pt text reads at {16.67 * BOOK_COLUMN_PX / float(width):.1f} px")
    assert not problems, f"{page.name}:\n" + "\n".join(problems)


def test_figures_are_shown_at_their_own_width_at_1280_and_1440_pixels():
    """In the browser, every image of a chapter page is shown at the width its page asks for: not
    shrunk (its text would read below body size) and not enlarged (it would blur)."""
    shot, chromium, pages = _browser_or_skip()
    problems, n = [], 0
    for page in pages:
        for width in shot.WIDTHS:
            for image in _width_report(shot, chromium, page, width).images:
                n += 1
                if abs(image.shown_px - image.css_px) > 1:
                    problems.append(image.describe())
    assert n, "no image found on any chapter page"
    assert not problems, f"{len(problems)} image(s) not shown at their own width:\n" + "\n".join(problems)


def test_book_column_px_is_the_article_column_at_1280_pixels():
    """rankcourse.plots.BOOK_COLUMN_PX, by which figures are sized, is the width a numbered figure of a
    cell gets on a chapter page in a 1280-pixel window (its container's width, measured), to the pixel.
    (Chapter 1's figures are all drawn by cells; a widget's fallback image is not a numbered figure.)"""
    shot, chromium, pages = _browser_or_skip()
    from rankcourse.plots import BOOK_COLUMN_PX

    report = _width_report(shot, chromium, pages[0], 1280)
    rooms = sorted({round(i.room_px) for i in report.images if i.figure.startswith("fig-")})
    assert rooms, f"{pages[0]}: no numbered figure to measure the column by"
    assert max(abs(room - BOOK_COLUMN_PX) for room in rooms) <= 1, (
        f"{pages[0]} at 1280 px: figures get {rooms} px (article column {report.column_px} px); "
        f"BOOK_COLUMN_PX is {BOOK_COLUMN_PX}")


def _tiny_png(path: Path, width: int, height: int) -> None:
    """A grey PNG of `width` x `height` pixels, written with the standard library."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_overflow_check_measures_each_image_against_its_own_width(tmp_path):
    """A hand-made page with a 400-pixel column: a 300-px figure fits, a 500-px one is shrunk."""
    shot = _screenshot_module()
    chromium = _chromium_or_skip(shot)
    _tiny_png(tmp_path / "plot.png", 1000, 20)  # a 2x PNG, shown at 300 or 500 CSS px
    page = _TINY_PAGE.format(long="").replace(
        "</section>", '<figure id="fig-fits"><img src="plot.png" width="300" alt="a"></figure>'
                      '<figure id="fig-wide"><img src="plot.png" width="500" alt="b"></figure></section>')
    (tmp_path / "page.html").write_text(page, encoding="utf8")
    report = shot.overflow_check(chromium, tmp_path, "page.html", width=1280)
    shown = {i.figure: (i.css_px, round(i.shown_px), round(i.room_px)) for i in report.images}
    assert shown == {"fig-fits": (300.0, 300, 400), "fig-wide": (500.0, 400, 400)}


def test_chapter_pages_fit_the_column_at_1280_and_1440_pixels():
    """No code, output, table or display maths of a chapter page is wider than the article column.

    Measured in headless Chromium (scripts/screenshot_check.py --overflow) at window widths of 1280
    and 1440 px, hidden cells opened. Screenshots of every page at both widths are kept in
    _build/screenshots/<page>.<width>.png.
    """
    shot, chromium, pages = _browser_or_skip()
    problems = []
    for page in pages:
        for width in shot.WIDTHS:
            report = _width_report(shot, chromium, page, width)
            print(f"{page} @{width}px: column {report.column_px} px, {report.code_chars} characters of code "
                  f"a line, {len(report.overflows)} overflow(s)")
            problems += [o.describe() for o in report.overflows]
    assert not problems, f"{len(problems)} element(s) wider than the column:\n" + "\n".join(problems)
