"""The students' notebooks: solution-free copies of the chapters that cannot drift from them.

Sources are ``notebooks/*.ipynb`` (with solutions, the instructors' copies); the committed copies
are ``notebooks/student/*.ipynb``, made by ``scripts/make_student_notebooks.py`` with the rules of
``book/_ext/student_notebooks.py``. The tests on built sites need ``bash scripts/build_book.sh``
(and ``--instructor``) to have run; without a build they are skipped.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

from student_notebooks import (  # noqa: E402
    chapter_notebooks,
    solution_cell_indices,
    strip_solutions,
    student_notebook_text,
    student_path,
)

SOURCES = chapter_notebooks(ROOT)
STUDENT_SITE = ROOT / "_build" / "html"
INSTRUCTOR_SITE = ROOT / "_build" / "instructor" / "html"
sys.path.insert(0, str(ROOT / "scripts"))
from set_home import read_course  # noqa: E402  (the course's home and release: one setting)

_COURSE = read_course(ROOT)
COLAB = f"https://colab.research.google.com/github/{_COURSE.home}/blob/{_COURSE.tag}/"
_IDS = itertools.count()
SOLUTION_TEXT = re.compile(r"\{solution(-start|-end)?\}")


def _markdown(source: str) -> dict:
    return {"cell_type": "markdown", "id": f"m{next(_IDS)}", "metadata": {}, "source": source}


def _code(source: str, tags: list[str] | None = None) -> dict:
    metadata = {"tags": tags} if tags else {}
    return {"cell_type": "code", "id": f"c{next(_IDS)}", "metadata": metadata,
            "source": source, "outputs": [], "execution_count": None}


def _notebook(*cells: dict) -> dict:
    return {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _leaks(notebook: dict) -> list[int]:
    return [
        i for i, cell in enumerate(notebook["cells"])
        if SOLUTION_TEXT.search("".join(cell["source"])) or "solution" in cell["metadata"].get("tags", [])
    ]


# --------------------------------------------------------------------------- the rules


def test_gated_solution_is_dropped_from_start_to_end_inclusive():
    nb = _notebook(
        _markdown("```{exercise-start}\n:label: ex\n```\nWrite f."),
        _code("def f():\n    raise NotImplementedError"),
        _markdown("```{exercise-end}\n```"),
        _markdown("```{solution-start} ex\n:class: dropdown\n```\nExplanation."),
        _code("def f():\n    return 1"),
        _markdown("More explanation.\n\n```{solution-end}\n```"),
        _markdown("## After the solution"),
    )
    assert solution_cell_indices(nb) == [3, 4, 5]
    kept = [c["source"] for c in strip_solutions(nb, "notebooks/x.ipynb")["cells"][1:]]
    assert kept == [nb["cells"][i]["source"] for i in (0, 1, 2, 6)]


def test_one_cell_solution_and_solution_tagged_cells_are_dropped():
    nb = _notebook(
        _markdown("```{exercise} Why?\n:label: ex\nExplain.\n```"),
        _markdown("````{solution} ex\n:class: dropdown\nBecause.\n````"),
        _code("print('worked answer')", tags=["solution"]),
        _code("print('kept')", tags=["hide-input"]),
    )
    assert solution_cell_indices(nb) == [1, 2]


def test_solution_opened_and_closed_in_one_cell_drops_that_cell_only():
    nb = _notebook(
        _markdown("````{solution-start} ex\n:class: dropdown\n````\nShort answer.\n\n````{solution-end}\n````"),
        _markdown("````{exercise-start} Next\n:label: ex2\n````\nWrite g."),
        _code("def g():\n    raise NotImplementedError"),
        _markdown("````{exercise-end}\n````"),
    )
    assert solution_cell_indices(nb, "nb.ipynb") == [0]


def test_unclosed_or_unopened_solution_is_an_error_naming_the_cell():
    unclosed = _notebook(_markdown("x"), _markdown("```{solution-start} ex\n```"), _code("1"))
    with pytest.raises(ValueError, match=r"nb.ipynb: the \{solution-start\} in cell 1 has no"):
        solution_cell_indices(unclosed, "nb.ipynb")
    unopened = _notebook(_markdown("```{solution-end}\n```"))
    with pytest.raises(ValueError, match=r"cell 0 closes a \{solution-end\} that was never opened"):
        solution_cell_indices(unopened, "nb.ipynb")


def test_text_after_a_solution_end_is_an_error_not_silently_dropped():
    nb = _notebook(_markdown("```{solution-start} ex\n```"), _markdown("```{solution-end}\n```\nLost text."))
    with pytest.raises(ValueError, match="cell 1 has text after its"):
        solution_cell_indices(nb, "nb.ipynb")


def test_student_copy_starts_with_a_note_naming_its_source():
    nb = _notebook(_markdown("# Title"))
    note = strip_solutions(nb, "notebooks/07_x.ipynb")["cells"][0]
    assert note["cell_type"] == "markdown" and "`notebooks/07_x.ipynb`" in note["source"]
    assert "scripts/make_student_notebooks.py" in note["source"]


# --------------------------------------------------------------------------- the committed copies


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_committed_student_copy_equals_source_minus_solutions(source):
    target = student_path(source)
    assert target.is_file(), f"{target.relative_to(ROOT)} is missing: run python scripts/make_student_notebooks.py"
    assert target.read_text(encoding="utf8") == student_notebook_text(source, ROOT), (
        f"{target.relative_to(ROOT)} differs from {source.relative_to(ROOT)} minus its solutions: "
        "run python scripts/make_student_notebooks.py and commit the result"
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_student_copy_has_no_solution_but_every_exercise(source):
    full = json.loads(source.read_text(encoding="utf8"))
    student = json.loads(student_path(source).read_text(encoding="utf8"))
    assert not _leaks(student), f"{student_path(source).name}: cells {_leaks(student)} hold a solution"
    labels = re.compile(r":label: ([A-Za-z0-9]+-ex-[\w-]+)")
    in_full = {m for c in full["cells"] for m in labels.findall("".join(c["source"]))}
    in_student = {m for c in student["cells"] for m in labels.findall("".join(c["source"]))}
    assert in_full and in_full == in_student, f"exercises lost: {sorted(in_full - in_student)}"
    ids = [c["id"] for c in student["cells"]]
    assert len(ids) == len(set(ids)), f"{student_path(source).name}: duplicate cell ids"


def test_no_student_copy_without_a_source():
    names = {p.name for p in SOURCES}
    orphans = [p.name for p in (ROOT / "notebooks" / "student").glob("*.ipynb") if p.name not in names]
    assert not orphans, f"notebooks/student has copies of no chapter: {orphans}"


# --------------------------------------------------------------------------- the built sites


def _need(site: Path, flag: str) -> None:
    if not (site / "index.html").is_file():
        pytest.skip(f"no built site in {site.relative_to(ROOT)}: run `bash scripts/build_book.sh{flag}` first")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_student_site_launches_and_downloads_the_solution_free_copy(source):
    _need(STUDENT_SITE, "")
    page = (STUDENT_SITE / "notebooks" / f"{source.stem}.html").read_text(encoding="utf8")
    assert f"{COLAB}notebooks/student/{source.name}" in page, f"{source.stem}.html: Colab does not open the student copy"
    assert f"{COLAB}notebooks/{source.name}" not in page, f"{source.stem}.html: Colab opens the full notebook"
    download = STUDENT_SITE / "_sources" / "notebooks" / source.name
    assert download.read_text(encoding="utf8") == student_path(source).read_text(encoding="utf8")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_instructor_site_launches_and_downloads_the_full_notebook(source):
    _need(INSTRUCTOR_SITE, " --instructor")
    page = (INSTRUCTOR_SITE / "notebooks" / f"{source.stem}.html").read_text(encoding="utf8")
    assert f"{COLAB}notebooks/{source.name}" in page, f"{source.stem}.html: Colab does not open the full notebook"
    download = INSTRUCTOR_SITE / "_sources" / "notebooks" / source.name
    assert json.loads(download.read_text(encoding="utf8")) == json.loads(source.read_text(encoding="utf8"))
