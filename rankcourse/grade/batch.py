"""Grade one submitted notebook, or a folder of them, into rows of a grade table."""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .exercises import GradedExercise, labels_in
from .feedback import feedback
from .limits import ChildResult, Limits, run_limited, scratch_env

VERDICTS = ("pass", "fail", "not attempted", "error", "uses-reference")
# Least time for the check process (imports and checks take seconds, many more on a loaded machine);
# a longer --timeout applies to it too.
CHECK_SECONDS = 120.0


@dataclass
class Row:
    """One submission's line of the grade table."""

    submission: str
    status: str = "ok"  # "ok", or "error" when the notebook could not be run to its end
    reason: str = ""
    verdicts: dict[str, str] = field(default_factory=dict)  # label -> one of VERDICTS
    messages: dict[str, str] = field(default_factory=dict)  # label -> feedback at the chosen level
    details: dict[str, str] = field(default_factory=dict)  # label -> the check's whole message (instructor)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(v == "pass" for v in self.verdicts.values())


def _decode(payload: str) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload


def _last(result: ChildResult, kind: str) -> Any:
    values = [_decode(p) for k, p in result.reports if k == kind]
    return values[-1] if values else None


def _why_child_stopped(result: ChildResult, what: str, seconds: float) -> str:
    if result.timed_out:
        return f"{what} was stopped at the time limit ({seconds:.0f} s)"
    return f"{what} ended without a report (exit code {result.returncode}; out of memory?)"


def _execute(path: Path, scratch: Path, exercises: list[GradedExercise], limits: Limits,
             env: dict[str, str]) -> ChildResult:
    work = scratch / "work"
    work.mkdir()
    copy = work / path.name
    shutil.copyfile(path, copy)
    token = secrets.token_hex(16)
    request = {"token": token, "notebook": str(copy), "scratch": str(scratch), "seconds": limits.seconds,
               "exercises": [{"label": e.label, "answer": e.answer} for e in exercises]}
    # The wall-clock limit covers the cells; the kernel's start and the export get a margin.
    return run_limited("rankcourse.grade.execute", json.dumps(request), token, work, env, limits,
                       limits.seconds + 60)


def _check(answers: str, exported: dict[str, str], scratch: Path, exercises: list[GradedExercise],
           seed: int | None, limits: Limits, env: dict[str, str]) -> ChildResult:
    token = secrets.token_hex(16)
    request = {"token": token, "answers": answers, "exported": exported, "scratch": str(scratch), "seed": seed,
               "exercises": [vars(e) for e in exercises]}
    return run_limited("rankcourse.grade.check", json.dumps(request), token, scratch / "work", env, limits,
                       _check_seconds(limits))


def _check_seconds(limits: Limits) -> float:
    return max(CHECK_SECONDS, limits.seconds)


def _exported(result: ChildResult) -> dict[str, str]:
    lines = _last(result, "exported") or [""]
    try:
        found = json.loads(lines[0]) if lines and lines[0] else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _fill_verdicts(row: Row, result: ChildResult, seconds: float, level: str) -> None:
    for kind, payload in result.reports:
        verdict = _decode(payload) if kind == "verdict" else None
        if isinstance(verdict, dict) and verdict.get("label") in row.verdicts:
            label = verdict["label"]
            row.verdicts[label] = verdict.get("verdict", "error")
            message = str(verdict.get("message", ""))
            row.details[label] = message
            # Only failures are redacted: a grader's error or a reference's name is not a hint.
            row.messages[label] = feedback(message, level) if row.verdicts[label] == "fail" else message
    started = [_decode(p) for k, p in result.reports if k == "start"]
    for label in row.verdicts:
        if row.verdicts[label] == "checking":
            hung = started and started[-1] == label
            row.verdicts[label] = "error"
            row.messages[label] = (_why_child_stopped(result, "its check", seconds) if hung
                                   else "not checked: an earlier check stopped the grader")


def grade_submission(path: Path, exercises: list[GradedExercise], limits: Limits = Limits(),
                     seed: int | None = None, level: str = "hints", name: str | None = None) -> Row:
    """Run the notebook at ``path`` and check its answers to ``exercises``; never raises for a bad submission."""
    start = time.monotonic()
    row = Row(name or path.name, verdicts={e.label: "error" for e in exercises})
    scratch = Path(tempfile.mkdtemp(prefix="rankcourse-grade-"))
    try:
        env = scratch_env(scratch)
        ran = _execute(path, scratch, exercises, limits, env)
        stopped, raised, answers = _last(ran, "stopped"), _last(ran, "raised"), _last(ran, "answers")
        if stopped or not answers:
            row.status = "error"
            row.reason = str(stopped or _why_child_stopped(ran, "the notebook", limits.seconds))
            row.messages = {label: "the notebook did not run to its end" for label in row.verdicts}
            return row
        if raised:
            row.status, row.reason = "error", str(raised)
        present = set(labels_in(json.loads(Path(path).read_text(encoding="utf8"))))
        for e in exercises:
            row.verdicts[e.label] = "checking" if e.label in present else "not attempted"
            row.messages[e.label] = "" if e.label in present else "the exercise is not in the notebook"
        todo = [e for e in exercises if e.label in present]
        if todo:
            checked = _check(str(answers), _exported(ran), scratch, todo, seed, limits, env)
            _fill_verdicts(row, checked, _check_seconds(limits), level)
        return row
    except Exception as err:  # noqa: BLE001 - one broken submission never stops the batch
        row.status, row.reason = "error", f"the grader failed on it: {type(err).__name__}: {err}"
        return row
    finally:
        row.seconds = round(time.monotonic() - start, 1)
        if level == "verdict":
            row.messages = {label: "" for label in row.messages}
        shutil.rmtree(scratch, ignore_errors=True)


def submissions_in(folder: Path) -> list[Path]:
    """The ``.ipynb`` files under ``folder`` in a fixed order (sorted by relative path)."""
    found = [p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def grade_folder(folder: Path, exercises: list[GradedExercise], limits: Limits = Limits(),
                 seed: int | None = None, level: str = "hints", jobs: int = 1,
                 progress: bool = True) -> list[Row]:
    """Grade every notebook under ``folder``, ``jobs`` at a time; rows come back in file order."""
    paths = submissions_in(folder)
    names = [p.relative_to(folder).as_posix() for p in paths]
    with tqdm(total=len(paths), desc="grading", unit="notebook", disable=not progress) as bar, \
            ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(grade_submission, p, exercises, limits, seed, level, n)
                   for p, n in zip(paths, names)]
        for future in futures:
            future.add_done_callback(lambda _: bar.update(1))
        return [future.result() for future in futures]
