#!/usr/bin/env python3
"""Write the course's home and release into every place that names them.

    python scripts/set_home.py OWNER/NAME   a fork: make github.com/OWNER/NAME the course's home
    python scripts/set_home.py              rewrite every copy from the setting (after a version bump)
    python scripts/set_home.py --check      change nothing; exit 1 naming each copy that differs

The setting is two values. The *home* is ``[tool.rankcourse] home`` in ``pyproject.toml``. The
*release* is ``rankcourse.__version__`` (in ``rankcourse/__init__.py``, read as text); its git tag is
``v<version>``. From them this script writes:

- the first code cell (the Colab install cell) of every notebook in ``notebooks/``, then the
  student copies in ``notebooks/student/`` (regenerated as ``make_student_notebooks.py`` does);
- ``_config.yml``: the repository URL, the ref the launch buttons open (the release tag), and the
  page footer (version and licences);
- ``pyproject.toml``: the project URLs (and the home itself when one is given);
- README.md and the pages in ``book/``: every ``git+https://github.com/...@ref`` install line and
  every link to the course's repository or its GitHub Pages site;
- the same install lines and links inside the translation catalogues of those pages
  (``locale/<language>/LC_MESSAGES/book/*.po``, in each message and its translation), so that an
  edited link does not leave its translated message out of date (fuzzy);
- the translated student copies ``notebooks/student/<language>/`` of the translated chapters
  (regenerated as ``scripts/translations.py notebooks`` does), whose install cell is the chapter's.

``tests/test_publishing.py`` runs the check, so a copy that disagrees fails the tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]

#: Other GitHub repositories that the checked pages may link to (cited projects): any other
#: ``github.com/OWNER/NAME`` there must be the course's home, so a copy a fork missed is caught.
EXTERNAL_REPOS: frozenset[str] = frozenset()
#: The owner written in instructions (``github.com/OWNER/NAME``, ``OWNER.github.io/NAME``).
PLACEHOLDER_OWNER = "OWNER"

_HOME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_VERSION_RE = re.compile(r'^__version__ = "([^"]+)"$', re.MULTILINE)
_GITHUB_REPO_RE = re.compile(r"github\.com/([A-Za-z0-9-]+/[A-Za-z0-9._-]*[A-Za-z0-9_-])")
_PAGES_RE = re.compile(r"https://([A-Za-z0-9-]+)\.github\.io/([A-Za-z0-9._-]*)/?")
_INSTALL_RE = re.compile(r"git\+https://github\.com/[^\s\"'`@]+(?:@[^\s\"'`]*)?")
_COLAB_RE = re.compile(r"colab\.research\.google\.com/github/([^/\s\"']+/[^/\s\"']+)/blob/([^/\s\"']+)/")


@dataclasses.dataclass(frozen=True)
class Course:
    """The setting: the repository ``home`` (OWNER/NAME) and the package ``version``."""

    home: str
    version: str

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    @property
    def repo_url(self) -> str:
        return f"https://github.com/{self.home}"

    @property
    def install_url(self) -> str:
        """What the Colab cell's ``%pip install`` asks for."""
        return f"git+{self.repo_url}@{self.tag}"

    @property
    def pages_url(self) -> str:
        """Where GitHub Pages serves the book (a ``OWNER.github.io`` repository serves at the root)."""
        owner, name = self.home.split("/")
        if name.lower() == f"{owner.lower()}.github.io":
            return f"https://{owner.lower()}.github.io/"
        return f"https://{owner.lower()}.github.io/{name}/"


def check_home(home: str) -> str:
    if not _HOME_RE.match(home):
        raise ValueError(f"home must be a GitHub repository as OWNER/NAME, got {home!r}")
    return home


def read_course(root: Path = ROOT) -> Course:
    """The setting as the repository at ``root`` holds it."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf8"))
    try:
        home = pyproject["tool"]["rankcourse"]["home"]
    except KeyError:
        raise ValueError(f"{root / 'pyproject.toml'}: no [tool.rankcourse] home = \"OWNER/NAME\"") from None
    init = root / "rankcourse" / "__init__.py"
    found = _VERSION_RE.findall(init.read_text(encoding="utf8"))
    if len(found) != 1:
        raise ValueError(f"{init}: expected one line `__version__ = \"X.Y.Z\"`, found {len(found)}")
    return Course(check_home(home), found[0])


# --------------------------------------------------------------------------- what each copy says


def install_cell(course: Course) -> str:
    """The first code cell of every chapter notebook."""
    return (
        "# Colab only: install the course package at the release this book was\n"
        '# built from (elsewhere it is installed already; see "How to use").\n'
        "import sys\n"
        "\n"
        f'COURSE = "{course.home}"  # the course\'s home on GitHub\n'
        f'RELEASE = "{course.tag}"  # one release for a whole term\n'
        'if "google.colab" in sys.modules:\n'
        '    %pip install -q "rankcourse @ git+https://github.com/{COURSE}@{RELEASE}"'
    )


def footer_html(course: Course) -> str:
    """The footer of every page: the version and which licence covers what."""
    blob = f"{course.repo_url}/blob/{course.tag}"
    return (
        f'rankcourse {course.tag} (<a href="{course.repo_url}/releases/tag/{course.tag}">release</a>, '
        f'<a href="{blob}/CHANGELOG.md">changes</a>). '
        f'Code: <a href="{blob}/LICENSE">MIT</a>. '
        f'Text, figures and exercises: <a href="{blob}/LICENSE-CONTENT.md">CC BY 4.0</a>. '
        f'Census-Income data: CC BY 4.0, UCI (<a href="{blob}/data/README.md">data/README.md</a>).'
    )


# --------------------------------------------------------------------------- editing text files


def _set_yaml_scalar(text: str, section: str, key: str, value: str, where: str) -> str:
    """Set ``section: key:`` (a top-level mapping and a key indented under it) to ``value``."""
    lines = text.split("\n")
    try:
        start = lines.index(f"{section}:")
    except ValueError:
        raise ValueError(f"{where}: no top-level `{section}:` line") from None
    quoted = json.dumps(value)  # a JSON string is a valid YAML double-quoted scalar
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line and not line.startswith((" ", "#")):
            break
        match = re.match(rf"^(\s+){re.escape(key)}:(\s|$)", line)
        if match:
            lines[i] = f"{match.group(1)}{key}: {quoted}"
            return "\n".join(lines)
    lines.insert(start + 1, f"  {key}: {quoted}")
    return "\n".join(lines)


def _config_yml(text: str, course: Course) -> str:
    text = _set_yaml_scalar(text, "repository", "url", course.repo_url, "_config.yml")
    # The launch buttons open the notebooks at the release tag, the same code the cell installs.
    text = _set_yaml_scalar(text, "repository", "branch", course.tag, "_config.yml")
    return _set_yaml_scalar(text, "html", "extra_footer", footer_html(course), "_config.yml")


def _pyproject(text: str, course: Course) -> str:
    urls = {
        "Homepage": course.pages_url,
        "Source": course.repo_url,
        "Changelog": f"{course.repo_url}/blob/main/CHANGELOG.md",
    }
    for key, url in urls.items():
        text, n = re.subn(rf'(?m)^{key} = "[^"]*"$', f'{key} = "{url}"', text)
        if n != 1:
            raise ValueError(f"pyproject.toml: expected one `{key} = \"...\"` line under [project.urls], found {n}")
    text, n = re.subn(r'(?m)^home = "[^"]*"$', f'home = "{course.home}"', text)
    if n != 1:
        raise ValueError(f"pyproject.toml: expected one `home = \"...\"` line, found {n}")
    return text


_CELL_BLOCK_RE = re.compile(r"(<!-- install-cell: written by scripts/set_home.py -->\n).*?(\n<!-- /install-cell -->)",
                            re.DOTALL)


def _page(text: str, course: Course, old: Course) -> str:
    """README and book pages: the install cell shown between markers, install lines, links to
    the old home and its Pages site."""
    cell = "```python\n" + install_cell(course) + "\n```"
    text = _CELL_BLOCK_RE.sub(lambda m: m.group(1) + cell + m.group(2), text)
    return _links(text, course, old)


def _links(text: str, course: Course, old: Course) -> str:
    """Install lines of the course at any ref, and links to the old home and its Pages site."""
    text = _INSTALL_RE.sub(lambda m: course.install_url if _is_course(m.group(0), old, course) else m.group(0), text)
    for before, after in ((old.pages_url, course.pages_url), (old.repo_url, course.repo_url)):
        if before != after:
            text = text.replace(before, after)
    return text


# A PO field: `msgid "..."` (or msgstr, msgctxt, msgid_plural, msgstr[N]) and its continuation
# lines `"..."`, each line maybe after `#~ ` (obsolete entries) or `#| ` (a fuzzy entry's previous
# message). The field's string is the concatenation of its lines' strings.
_PO_FIELD_RE = re.compile(r'^((?:#[~|]+ ?)?)((?:msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) )"(.*)"$')
_PO_MORE_RE = re.compile(r'^((?:#[~|]+ ?)?)"(.*)"$')


def _catalogue(text: str, course: Course, old: Course) -> str:
    """A PO catalogue with `_links` applied to the string of every field, message and
    translation alike.

    Only the fields whose string changes are written again (as sphinx-intl writes them with
    ``-w 0``: one line, or, for a string with line breaks, ``""`` then one line per line), so the
    rest of the file stays byte for byte as it was. A field's string is read across its lines,
    so a URL that a PO editor wrapped over two lines is found too.
    """
    polib = _polib()
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        field = _PO_FIELD_RE.match(lines[index])
        if field is None:
            out.append(lines[index])
            index += 1
            continue
        prefix, keyword, parts, end = field.group(1), field.group(2), [field.group(3)], index + 1
        while end < len(lines) and (more := _PO_MORE_RE.match(lines[end])) and more.group(1) == prefix:
            parts.append(more.group(2))
            end += 1
        string = "".join(polib.unescape(part) for part in parts)
        rewritten = _links(string, course, old)
        if rewritten == string:
            out += lines[index:end]
        else:
            pieces = re.findall(r"[^\n]*\n|[^\n]+", rewritten)
            if len(pieces) <= 1:
                out.append(f'{prefix}{keyword}"{polib.escape(rewritten)}"')
            else:
                out += [f'{prefix}{keyword}""'] + [f'{prefix}"{polib.escape(piece)}"' for piece in pieces]
        index = end
    return "\n".join(out)


def _polib():  # noqa: ANN202 - the module
    """polib, needed only where the book has translation catalogues."""
    try:
        import polib
    except ModuleNotFoundError:
        raise ModuleNotFoundError("the book has translations (locale/): reading their catalogues needs polib "
                                  "(pip install polib; requirements.txt pins it)") from None
    return polib


def _is_course(install: str, *courses: Course) -> bool:
    repo = install.removeprefix("git+https://github.com/").split("@")[0]
    return any(repo == c.home for c in courses)


def _notebook(text: str, course: Course, where: str) -> str:
    notebook = json.loads(text)
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    if not code:
        raise ValueError(f"{where}: no code cell to hold the Colab install cell")
    source = install_cell(course)
    code[0]["source"] = source.splitlines(keepends=True)
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- the copies


def pages(root: Path) -> list[Path]:
    """The Markdown files whose install lines and course links follow the setting."""
    return [root / "README.md", *sorted((root / "book").glob("*.md"))]


def catalogues(root: Path) -> list[Path]:
    """The translation catalogues of the pages in `pages`: ``locale/*/LC_MESSAGES/<page>.po``."""
    found = []
    for page in pages(root):
        name = page.relative_to(root).with_suffix(".po")
        found += sorted(p for p in (root / "locale").glob(f"*/LC_MESSAGES/{name.as_posix()}") if p.is_file())
    return found


def chapter_notebooks(root: Path) -> list[Path]:
    return sorted((root / "notebooks").glob("*.ipynb"))


def _student_notebook_text(root: Path) -> Callable[[Path], str]:
    sys.path.insert(0, str(root / "book" / "_ext"))
    try:
        from student_notebooks import student_notebook_text
    finally:
        sys.path.pop(0)
    return lambda source: student_notebook_text(source, root)


def expected_files(root: Path, course: Course, old: Course | None = None) -> dict[Path, str]:
    """The text every generated copy should have under the setting ``course``.

    ``old`` is the setting the files were written for (defaults to ``course``): links to its home
    are re-pointed. Only files that name the home or the release are returned.
    """
    old = old or course
    out: dict[Path, str] = {}
    out[root / "pyproject.toml"] = _pyproject((root / "pyproject.toml").read_text(encoding="utf8"), course)
    out[root / "_config.yml"] = _config_yml((root / "_config.yml").read_text(encoding="utf8"), course)
    for page in pages(root):
        out[page] = _page(page.read_text(encoding="utf8"), course, old)
    for catalogue in catalogues(root):
        out[catalogue] = _catalogue(catalogue.read_text(encoding="utf8"), course, old)
    for source in chapter_notebooks(root):
        out[source] = _notebook(source.read_text(encoding="utf8"), course, source.name)
    return out


def translated_student_copies(root: Path) -> dict[Path, str]:
    """Each translated chapter's translated student copy and the text it should have: for each
    language of ``locale/translations.toml``, ``notebooks/student/<language>/NAME.ipynb`` for the
    chapters it lists as translated, made from the chapter and its catalogue (as
    ``scripts/translations.py notebooks`` makes it). Empty when the book has no translations."""
    settings_file = root / "locale" / "translations.toml"
    if not settings_file.is_file():
        return {}
    languages = [k for k, v in tomllib.loads(settings_file.read_text(encoding="utf8")).items() if isinstance(v, dict)]
    _polib()
    out: dict[Path, str] = {}
    # book_translations imports its sibling student_notebooks when called: keep the folder on the path.
    sys.path.insert(0, str(root / "book" / "_ext"))
    try:
        from book_translations import Settings, translated_student_text, zh_student_path

        for language in languages:
            settings = Settings.read(root, language)
            for source in chapter_notebooks(root):
                if source.relative_to(root).with_suffix("").as_posix() in settings.translated:
                    out[zh_student_path(source, language)] = translated_student_text(source, root, settings)[0]
    finally:
        sys.path.pop(0)
    return out


def _write_student_copies(root: Path) -> list[Path]:
    text_of = _student_notebook_text(root)
    wanted = {source.parent / "student" / source.name: text_of(source) for source in chapter_notebooks(root)}
    # After the English copies: a translated copy is made from the chapter and its catalogue.
    written = [target for target, text in wanted.items() if _write_if_changed(target, text)]
    return written + [target for target, text in translated_student_copies(root).items()
                      if _write_if_changed(target, text)]


def _write_if_changed(target: Path, text: str) -> bool:
    if target.is_file() and target.read_text(encoding="utf8") == text:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf8")
    return True


# --------------------------------------------------------------------------- the check


def stray_references(root: Path, course: Course) -> list[str]:
    """Places that name a GitHub repository, a Colab launch or an install ref other than the setting's."""
    problems = []
    for page in pages(root) + [root / "_config.yml"]:
        text = page.read_text(encoding="utf8")
        name = page.relative_to(root).as_posix()
        for repo in sorted(set(_GITHUB_REPO_RE.findall(text))):
            if repo != course.home and repo not in EXTERNAL_REPOS and not repo.startswith(PLACEHOLDER_OWNER + "/"):
                problems.append(f"{name}: links to github.com/{repo}, not the course's home {course.home} "
                                "(a cited project? add it to EXTERNAL_REPOS in scripts/set_home.py)")
        for owner, first in sorted(set(_PAGES_RE.findall(text))):
            site = f"https://{owner}.github.io/" + (f"{first}/" if first else "")
            at_root = course.pages_url == f"https://{owner.lower()}.github.io/"
            if site != course.pages_url and not at_root and owner != PLACEHOLDER_OWNER:
                problems.append(f"{name}: links to {site}, not the course's site {course.pages_url}")
    notebooks = chapter_notebooks(root) + sorted((root / "notebooks" / "student").glob("*.ipynb")) + sorted(
        (root / "notebooks" / "student").glob("*/*.ipynb"))
    for path in notebooks:
        name = path.relative_to(root).as_posix()
        cells = json.loads(path.read_text(encoding="utf8"))["cells"]
        first_code = next((c for c in cells if c["cell_type"] == "code"), None)
        for index, cell in enumerate(cells):
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            if cell is first_code:
                if source != install_cell(course):
                    problems.append(f"{name} cell {index}: the first code cell is not the install cell "
                                    f"for {course.home} at {course.tag}")
                continue
            for install in _INSTALL_RE.findall(source):
                if install != course.install_url:
                    problems.append(f"{name} cell {index}: installs {install}, not {course.install_url}")
            for repo, ref in _COLAB_RE.findall(source):
                if repo != course.home or ref != course.tag:
                    problems.append(f"{name} cell {index}: a Colab link to {repo} at {ref}")
    return problems


def differences(root: Path = ROOT) -> list[str]:
    """Every copy that differs from what the setting says, as readable lines (empty: all agree)."""
    course = read_course(root)
    problems = []
    for path, text in expected_files(root, course).items():
        if path.read_text(encoding="utf8") != text:
            problems.append(f"{path.relative_to(root).as_posix()} differs from the setting "
                            f"(home {course.home}, release {course.tag})")
    text_of = _student_notebook_text(root)
    for source in chapter_notebooks(root):
        target = source.parent / "student" / source.name
        if not target.is_file() or target.read_text(encoding="utf8") != text_of(source):
            problems.append(f"{target.relative_to(root).as_posix()} is not the student copy of {source.name}")
    for target, text in translated_student_copies(root).items():
        if not target.is_file() or target.read_text(encoding="utf8") != text:
            problems.append(f"{target.relative_to(root).as_posix()} is not the {target.parent.name} student "
                            f"copy of {target.name} (run scripts/set_home.py or scripts/translations.py notebooks)")
    for path in sorted((root / "notebooks" / "student").glob("*.ipynb")):
        if not (root / "notebooks" / path.name).is_file():
            problems.append(f"{path.relative_to(root).as_posix()} has no source notebook")
    return problems + stray_references(root, course)


def set_home(root: Path = ROOT, home: str | None = None) -> list[Path]:
    """Write the setting (with ``home`` as the new home if given) into every copy; the changed files."""
    old = read_course(root)
    course = dataclasses.replace(old, home=check_home(home)) if home else old
    changed = []
    for path, text in expected_files(root, course, old).items():
        if path.read_text(encoding="utf8") != text:
            path.write_text(text, encoding="utf8")
            changed.append(path)
    return changed + _write_student_copies(root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", nargs="?", help="the new home, as GitHub OWNER/NAME (a fork's)")
    parser.add_argument("--check", action="store_true", help="change nothing; report copies that differ")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.check:
        if args.home:
            parser.error("--check takes no home: it checks the copies against the setting")
        problems = differences(args.root)
        for line in problems:
            print(line)
        if not problems:
            course = read_course(args.root)
            print(f"every copy names {course.repo_url} at {course.tag}")
        return 1 if problems else 0
    try:
        changed = set_home(args.root, args.home)
    except ValueError as err:
        parser.error(str(err))
    for path in changed:
        print(f"written: {path.relative_to(args.root).as_posix()}")
    problems = differences(args.root)
    for line in problems:
        print(f"still differs: {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
