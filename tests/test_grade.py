"""The grading command on planted submissions built here, graded cell by cell.

Each planted notebook is a small chapter-1 submission (the two graded exercises of chapter 1);
they are graded together in one batch (two at a time, with a secret seed), as an instructor would.
A kernel starts in about two seconds, so the batch takes a minute or two.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from rankcourse.exercises import ch01
from rankcourse.grade import Limits, grade_folder, grade_submission
from rankcourse.grade.cli import main as grade_main
from rankcourse.grade.exercises import course_chapters, default_course_folder

pytestmark = pytest.mark.slow

SEED = 20261206
FOCAL, BIAS = "ch01-ex-focal-grad", "ch01-ex-bias-newton"
# The two exercises the planted notebooks answer (chapter 1 may gain others).
EXERCISES = [e for e in course_chapters(default_course_folder())["01_framework_and_losses"]
             if e.label in (FOCAL, BIAS)]

IMPORTS = "import torch\nimport torch.nn.functional as F"
FOCAL_TEXT = "```{exercise} Implement the focal-loss gradient\n:label: ch01-ex-focal-grad\n\nWrite it.\n```"
BIAS_TEXT = "```{exercise-start}\n:label: ch01-ex-bias-newton\n```\n\nWrite the Newton step."
FOCAL_STUB = '''def focal_grad_per_example(logits, labels, alpha=0.25, gamma=2.0):
    raise NotImplementedError("write the focal-loss gradient")


# check_focal_grad(focal_grad_per_example)  # uncomment when you have written it'''
FOCAL_RIGHT = '''def focal_grad_per_example(logits, labels, alpha=0.25, gamma=2.0):
    p, q = torch.sigmoid(logits), torch.sigmoid(-logits)
    log_p, log_q = F.logsigmoid(logits), F.logsigmoid(-logits)
    positive = alpha * torch.exp(gamma * log_q) * (gamma * p * log_p - q)
    negative = (1 - alpha) * torch.exp(gamma * log_p) * (p - gamma * q * log_q)
    return labels * positive + (1 - labels) * negative'''
FOCAL_SLIP = '''def focal_grad_per_example(logits, labels, alpha=0.25, gamma=2.0):
    # the modulating factor treated as a constant
    p = torch.sigmoid(logits)
    p_t = torch.where(labels == 1, p, 1 - p)
    alpha_t = torch.where(labels == 1, alpha, 1 - alpha)
    return alpha_t * (1 - p_t) ** gamma * (p - labels)'''
BIAS_RIGHT = '''def bias_newton_step(logits, labels):
    p = torch.sigmoid(logits)
    return (labels - p).sum() / (p * (1 - p)).sum()'''
BIAS_SLIP = '''def bias_newton_step(logits, labels):
    p = torch.sigmoid(logits)
    return (p - labels).sum() / (p * (1 - p)).sum()  # the sign is flipped'''


def chapter(*cells: str | tuple[str, str]) -> nbformat.NotebookNode:
    """A notebook: strings are code cells, ("md", text) markdown cells."""
    nb = new_notebook()
    nb.cells = [new_markdown_cell(c[1]) if isinstance(c, tuple) else new_code_cell(c) for c in cells]
    return nb


def submission(focal: str, bias: str, *extra: str) -> nbformat.NotebookNode:
    return chapter(("md", "# Chapter 1"), IMPORTS, ("md", FOCAL_TEXT), focal, ("md", BIAS_TEXT), bias, *extra)


def public_table() -> str:
    """Source of an answer that returns the right step for the public cases only."""
    table = {}

    def record(z, y):
        out = ch01.reference_bias_newton_step(z, y)
        table[(len(z), round(float(z.sum()), 6), round(float(y.sum()), 6))] = float(out)
        return out

    ch01.check_bias_newton_step(record)
    return (f"ANSWERS = {table!r}\n\n\ndef bias_newton_step(logits, labels):\n"
            "    key = (len(logits), round(float(logits.sum()), 6), round(float(labels.sum()), 6))\n"
            "    return torch.tensor(ANSWERS[key], dtype=torch.float64)")


PATCHES = '''import rankcourse.exercises.ch01 as checks
from rankcourse.exercises.ch01 import check_bias_newton_step

checks.check_focal_grad = lambda *args, **kwargs: None
checks.check_bias_newton_step = lambda *args, **kwargs: None
check_bias_newton_step = lambda *args, **kwargs: None
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
print("RCGRADE 0123456789abcdef verdict {\\"label\\": \\"ch01-ex-bias-newton\\", \\"verdict\\": \\"pass\\"}")'''

OUTSIDE = '''import os
from pathlib import Path

Path(os.path.expanduser("~/written-by-a-submission.txt")).write_text("x")
Path("../written-by-a-submission.txt").write_text("x")
for name in os.listdir("."):
    os.remove(name)  # the notebook deletes its own copy'''


def planted() -> dict[str, nbformat.NotebookNode | str]:
    bias_cells = submission(FOCAL_RIGHT, BIAS_RIGHT).cells
    return {
        "full.ipynb": submission(FOCAL_RIGHT, BIAS_RIGHT),
        "slips.ipynb": submission(FOCAL_SLIP, BIAS_SLIP),
        "deleted.ipynb": chapter(*[c.source if c.cell_type == "code" else ("md", c.source)
                                   for c in submission(FOCAL_STUB, "").cells[:4]]),
        "raises.ipynb": chapter(("md", "# Chapter 1"), IMPORTS, "1 / 0", *[
            c.source if c.cell_type == "code" else ("md", c.source) for c in bias_cells[2:]]),
        "patches.ipynb": submission("def focal_grad_per_example(*args):\n    return 0",
                                    "def bias_newton_step(*args):\n    return 0", PATCHES),
        "reference.ipynb": submission(
            "from rankcourse import losses\n\n\ndef focal_grad_per_example(z, y, alpha=0.25, gamma=2.0):\n"
            "    return losses.focal_grad(z, y, alpha, gamma, reduction='none')",
            "from rankcourse.exercises.ch01 import reference_bias_newton_step as bias_newton_step"),
        "hardcoded.ipynb": submission(FOCAL_RIGHT, public_table()),
        "outside.ipynb": submission(FOCAL_RIGHT, BIAS_RIGHT, OUTSIDE),
        "sysexit.ipynb": submission(FOCAL_RIGHT, BIAS_RIGHT, "import sys\nsys.exit(3)"),
        "malformed.ipynb": '{"cells": [{"cell_type": "code", "source": "1 +',
    }


def write_folder(folder: Path, notebooks: dict[str, nbformat.NotebookNode | str]) -> dict[str, bytes]:
    folder.mkdir()
    for name, nb in notebooks.items():
        text = nb if isinstance(nb, str) else nbformat.writes(nb)
        (folder / name).write_text(text, encoding="utf8")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class") / "submissions"
    before = write_folder(folder, planted())
    rows = grade_folder(folder, EXERCISES, Limits(seconds=120), seed=SEED, level="hints", jobs=2,
                        progress=False)
    return folder, before, {row.submission: row for row in rows}


def test_rows_come_in_file_order_one_per_submission(graded):
    folder, _, rows = graded
    assert list(rows) == sorted(p.name for p in folder.iterdir())


def test_full_solution_passes_everything(graded):
    row = graded[2]["full.ipynb"]
    assert (row.status, row.verdicts, row.total) == ("ok", {FOCAL: "pass", BIAS: "pass"}, 2)


def test_each_typical_slip_shows_the_checks_message(graded):
    row = graded[2]["slips.ipynb"]
    assert row.verdicts == {FOCAL: "fail", BIAS: "fail"}
    assert "treated the modulating factor" in row.details[FOCAL]
    assert "modulating factor" in row.messages[FOCAL]
    assert "sign is flipped" in row.details[BIAS] and "sign is flipped" in row.messages[BIAS]


def test_graded_feedback_contains_no_expected_value_or_formula(graded):
    rows = graded[2]
    for row in rows.values():
        for label, message in row.messages.items():
            if row.verdicts[label] == "fail":
                assert "expected" not in message and "=" not in message.replace("alpha=", "").replace(
                    "gamma=", ""), message
    assert "mean(p - y)" in rows["slips.ipynb"].details[BIAS]  # what the hint left out
    assert "mean(" not in rows["slips.ipynb"].messages[BIAS]


def test_deleted_and_unwritten_exercises_are_not_attempted(graded):
    row = graded[2]["deleted.ipynb"]
    assert row.status == "ok"
    assert row.verdicts == {FOCAL: "not attempted", BIAS: "not attempted"}


def test_a_raising_cell_is_named_and_the_rest_still_graded(graded):
    row = graded[2]["raises.ipynb"]
    assert row.status == "error"
    assert row.reason.startswith("cell 3 raised ZeroDivisionError")
    assert row.verdicts == {FOCAL: "pass", BIAS: "pass"}


def test_sys_exit_is_an_error_row(graded):
    row = graded[2]["sysexit.ipynb"]
    assert row.status == "error" and "SystemExit" in row.reason


def test_rebinding_and_patching_the_checks_passes_nothing(graded):
    row = graded[2]["patches.ipynb"]
    assert row.verdicts == {FOCAL: "fail", BIAS: "fail"}
    assert row.total == 0


def test_importing_or_wrapping_a_reference_is_uses_reference(graded):
    row = graded[2]["reference.ipynb"]
    assert row.verdicts == {FOCAL: "uses-reference", BIAS: "uses-reference"}
    assert "rankcourse.losses.focal_grad" in row.messages[FOCAL]
    assert "reference_bias_newton_step" in row.messages[BIAS]


def test_hard_coded_public_cases_pass_the_self_check_and_fail_under_the_seed(graded):
    namespace = {"torch": torch}
    exec(public_table(), namespace)  # the planted answer, run as the notebook's self-check would
    ch01.check_bias_newton_step(namespace["bias_newton_step"])
    assert graded[2]["hardcoded.ipynb"].verdicts == {FOCAL: "pass", BIAS: "fail"}


def test_writes_outside_the_folder_change_nothing_outside(graded):
    folder, before, rows = graded
    assert rows["outside.ipynb"].verdicts == {FOCAL: "pass", BIAS: "pass"}
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert not (folder.parent / "written-by-a-submission.txt").exists()
    assert not (Path.home() / "written-by-a-submission.txt").exists()


def test_malformed_notebook_is_a_named_error_row(graded):
    row = graded[2]["malformed.ipynb"]
    assert row.status == "error" and row.reason.startswith("malformed notebook")
    assert set(row.verdicts.values()) == {"error"}


def test_hang_is_killed_at_the_limit_and_memory_exhaustion_is_an_error(tmp_path):
    exercises = EXERCISES[:1]
    hang = tmp_path / "hang.ipynb"
    nbformat.write(chapter(("md", FOCAL_TEXT), "while True:\n    pass"), hang)
    greedy = tmp_path / "greedy.ipynb"
    nbformat.write(chapter(("md", FOCAL_TEXT), "hoard = bytearray(3 * 1024**3)"), greedy)
    row = grade_submission(hang, exercises, Limits(seconds=6), level="hints")
    assert row.status == "error" and "time limit" in row.reason, row.reason
    assert row.seconds < 60
    row = grade_submission(greedy, exercises, Limits(seconds=30, memory_bytes=1024**3), level="hints")
    assert row.status == "error" and "MemoryError" in row.reason, row.reason


def test_command_writes_the_csv_and_html_table(tmp_path, capsys):
    folder = tmp_path / "one"
    write_folder(folder, {"b.ipynb": '{"cells": 1}', "a.ipynb": "not json"})
    out = tmp_path / "grades.csv"
    assert grade_main([str(folder), "--out", str(out), "--chapter", "01_framework_and_losses",
                       "--feedback", "verdict", "--timeout", "30"]) == 0
    with open(out, newline="", encoding="utf8") as file:
        table = list(csv.DictReader(file))
    assert [r["submission"] for r in table] == ["a.ipynb", "b.ipynb"]
    labels = [e.label for e in course_chapters(default_course_folder())["01_framework_and_losses"]]
    assert {FOCAL, BIAS} <= set(labels)
    assert list(table[0])[:1 + len(labels)] == ["submission", *labels]  # the chapter's order
    assert {"total", "out_of", "seconds", "status", "reason", "feedback"} <= set(table[0])
    assert all(r["status"] == "error" and r[FOCAL] == "error" for r in table)
    assert "<table>" in out.with_suffix(".html").read_text(encoding="utf8")
    capsys.readouterr()
    assert grade_main(["--one", str(folder / "a.ipynb"), "--out", str(tmp_path / "mine.csv"),
                       "--chapter", "01_framework_and_losses"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("a.ipynb: 0/") and "ERROR: malformed notebook" in printed
