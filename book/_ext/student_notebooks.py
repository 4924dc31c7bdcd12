"""Solution-free student copies of the chapter notebooks.

The chapter notebooks in ``notebooks/`` hold the exercises *and* their solutions (the
instructors' copies). A student copy is the same notebook without the solutions:

- every cell from a gated ``{solution-start}`` up to and including its ``{solution-end}``;
- every markdown cell that opens with an ungated ``{solution}`` directive (such a directive
  must be a cell of its own, as the instructors' page asks);
- every cell tagged ``solution``;

and with a first markdown cell saying where the copy comes from. Everything else is kept
unchanged, cell ids included.

The copies are committed in ``notebooks/student/`` (the student edition's Colab button opens
them from the repository) and written again at build time into the student site's
downloadable sources (see ``rankcourse_book_ext.py``). ``tests/test_student_notebooks.py``
checks that the committed copies equal what :func:`student_notebook_text` makes of the
sources, so they cannot drift. Regenerate them with
``python scripts/make_student_notebooks.py``.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

STUDENT_FOLDER = "student"
SOLUTION_TAG = "solution"
# A MyST directive opens with 3+ backticks or colons, then the directive name in braces.
_SOLUTION_ONE_CELL = re.compile(r"\A\s*(`{3,}|:{3,})\{solution\}")
_SOLUTION_START = re.compile(r"\A\s*(`{3,}|:{3,})\{solution-start\}")
# The end marker may close a cell that begins with solution text; nothing may follow it.
_SOLUTION_END = re.compile(r"^\s*(`{3,}|:{3,})\{solution-end\}[^\n]*", re.MULTILINE)
_ONLY_FENCES = re.compile(r"\A(\s*(`{3,}|:{3,})\s*)*\Z")
_NOTE_CELL_ID = "student-copy-note"


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _is_markdown_matching(cell: dict[str, Any], pattern: re.Pattern[str]) -> bool:
    return cell.get("cell_type") == "markdown" and bool(pattern.match(_source(cell)))


def _ends_solution(cell: dict[str, Any], name: str, index: int) -> bool:
    if cell.get("cell_type") != "markdown":
        return False
    found = _SOLUTION_END.search(_source(cell))
    if found and not _ONLY_FENCES.match(_source(cell)[found.end():]):
        raise ValueError(f"{name}: cell {index} has text after its {{solution-end}}; "
                         "move that text to a cell of its own")
    return bool(found)


def _tagged_solution(cell: dict[str, Any]) -> bool:
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def solution_cell_indices(notebook: dict[str, Any], name: str = "notebook") -> list[int]:
    """Indices of the cells that belong to a solution, in order.

    Raises ValueError, naming the notebook and the cell, for a ``{solution-start}`` without a
    ``{solution-end}`` and for an end without a start: dropping up to the end of the file, or
    keeping a stray end marker, would both hide the mistake.
    """
    cells = notebook["cells"]
    dropped: list[int] = []
    start: int | None = None
    for index, cell in enumerate(cells):
        if start is not None:
            dropped.append(index)
            if _ends_solution(cell, name, index):
                start = None
            continue
        if _is_markdown_matching(cell, _SOLUTION_START):
            dropped.append(index)
            # A short solution may open and close in the same markdown cell.
            start = None if _ends_solution(cell, name, index) else index
        elif _ends_solution(cell, name, index):
            raise ValueError(f"{name}: cell {index} closes a {{solution-end}} that was never opened")
        elif _is_markdown_matching(cell, _SOLUTION_ONE_CELL) or _tagged_solution(cell):
            dropped.append(index)
    if start is not None:
        raise ValueError(f"{name}: the {{solution-start}} in cell {start} has no {{solution-end}}")
    return dropped


def student_path(source: Path) -> Path:
    """Where the student copy of ``notebooks/NAME.ipynb`` lives: ``notebooks/student/NAME.ipynb``."""
    return source.parent / STUDENT_FOLDER / source.name


def strip_solutions(notebook: dict[str, Any], source_name: str) -> dict[str, Any]:
    """A copy of `notebook` without its solution cells, led by a note naming `source_name`."""
    dropped = set(solution_cell_indices(notebook, source_name))
    student = copy.deepcopy(notebook)
    student["cells"] = [cell for i, cell in enumerate(student["cells"]) if i not in dropped]
    note = {
        "cell_type": "markdown",
        "id": _NOTE_CELL_ID,
        "metadata": {},
        "source": (
            "*Student copy, without solutions.* It is generated from `"
            + source_name
            + "` by `scripts/make_student_notebooks.py`: edit that notebook, not this one."
        ),
    }
    student["cells"].insert(0, note)
    for cell in student["cells"]:  # sources are committed without outputs; make sure of it
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return student


def student_notebook_text(source: Path, root: Path) -> str:
    """The exact text of the student copy of the notebook file `source` (under `root`)."""
    notebook = json.loads(source.read_text(encoding="utf8"))
    name = source.resolve().relative_to(root.resolve()).as_posix()
    return json.dumps(strip_solutions(notebook, name), indent=1, ensure_ascii=False) + "\n"


def chapter_notebooks(root: Path) -> list[Path]:
    """The instructors' chapter notebooks: ``notebooks/*.ipynb`` (not the student folder)."""
    return sorted((root / "notebooks").glob("*.ipynb"))
