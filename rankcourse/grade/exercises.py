"""Which exercises the grader grades, found in the course's own notebooks.

An exercise is graded when its student cell follows the course's pattern: a markdown cell with an
``{exercise}`` (or ``{exercise-start}``) directive and a ``:label:``, then, before the solution, a
code cell with the commented self-check call ``# check_NAME(ANSWER)``. ``check_NAME`` must be a
public function of a module of :mod:`rankcourse.exercises`; ``ANSWER`` is the name the student
defines. Written exercises (no check call) are not graded.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rankcourse.exercises

_LABEL = re.compile(r"\{exercise(?:-start)?\}[^\n]*\n(?:[^\n]*\n)*?\s*:label:\s*(\S+)")
_SOLUTION_START = re.compile(r"\A\s*(`{3,}|:{3,})\{solution-start\}")
_CHECK_CALL = re.compile(r"^\s*#?\s*(check_\w+)\(\s*([A-Za-z_]\w*)\s*\)", re.MULTILINE)


@dataclass(frozen=True)
class GradedExercise:
    """One graded exercise: its label, the check that grades it and the answer's name."""

    label: str
    check: str  # e.g. "check_focal_grad"
    answer: str  # e.g. "focal_grad_per_example", the name the student defines
    module: str  # e.g. "rankcourse.exercises.ch01", where ``check`` lives


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def labels_in(notebook: dict[str, Any]) -> list[str]:
    """The exercise labels of a notebook, in order (the cells a student kept)."""
    found = []
    for cell in notebook.get("cells", []):
        if isinstance(cell, dict) and cell.get("cell_type") == "markdown":
            found += _LABEL.findall(_source(cell))
    return found


def check_modules() -> dict[str, str]:
    """``check_NAME -> module`` for every public check of :mod:`rankcourse.exercises`."""
    where: dict[str, str] = {}
    for info in pkgutil.iter_modules(rankcourse.exercises.__path__):
        if info.name.startswith("_"):
            continue
        name = f"rankcourse.exercises.{info.name}"
        module = importlib.import_module(name)
        for attr in dir(module):
            if attr.startswith("check_") and callable(getattr(module, attr)):
                where.setdefault(attr, name)
    return where


def graded_exercises(notebook: dict[str, Any], checks: dict[str, str] | None = None) -> list[GradedExercise]:
    """The graded exercises of one notebook (a chapter or its student copy), in order."""
    checks = check_modules() if checks is None else checks
    out: list[GradedExercise] = []
    label: str | None = None
    for cell in notebook.get("cells", []):
        text = _source(cell)
        if cell.get("cell_type") == "markdown":
            labels = _LABEL.findall(text)
            if labels:
                label = labels[-1]
            elif _SOLUTION_START.match(text):
                label = None  # the solution's cells are not the student's cell
            continue
        if label is None or "solution" in cell.get("metadata", {}).get("tags", []):
            continue
        for check, answer in _CHECK_CALL.findall(text):
            if check in checks:
                out.append(GradedExercise(label, check, answer, checks[check]))
                label = None  # one graded call per exercise: the first
                break
    return out


def course_chapters(folder: Path) -> dict[str, list[GradedExercise]]:
    """``chapter file stem -> graded exercises`` for the chapter notebooks in ``folder``."""
    checks = check_modules()
    chapters = {}
    for path in sorted(folder.glob("*.ipynb")):
        exercises = graded_exercises(json.loads(path.read_text(encoding="utf8")), checks)
        if exercises:
            chapters[path.stem] = exercises
    return chapters


def default_course_folder() -> Path | None:
    """The course's ``notebooks/`` folder next to the package (a clone of the repository), if any."""
    folder = Path(rankcourse.exercises.__file__).resolve().parents[2] / "notebooks"
    return folder if folder.is_dir() else None
