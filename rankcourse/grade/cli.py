"""``python -m rankcourse.grade``: grade a folder of submitted notebooks, or one notebook."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import sys
from pathlib import Path

from .batch import grade_folder, grade_submission, submissions_in
from .exercises import GradedExercise, course_chapters, default_course_folder, graded_exercises, labels_in
from .feedback import LEVELS
from .limits import Limits
from .table import records, write_csv, write_html


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m rankcourse.grade",
        description="Run each submitted notebook in its own limited process and check its exercises.")
    parser.add_argument("submissions", nargs="?", type=Path, help="folder of submitted .ipynb files")
    parser.add_argument("--one", type=Path, help="grade this one notebook and print its row")
    parser.add_argument("--out", type=Path, default=Path("grades.csv"), help="CSV to write (default grades.csv)")
    parser.add_argument("--html", type=Path, help="HTML summary to write (default: the CSV's name, .html)")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
    parser.add_argument("--seed", type=int, help="the instructor's secret seed for the hidden cases")
    parser.add_argument("--feedback", choices=LEVELS, default="hints",
                        help="practice: whole messages; hints (default): no expected value or formula; "
                             "verdict: pass/fail only")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per notebook (default 300)")
    parser.add_argument("--memory-gb", type=float, default=4.0, help="address space per notebook (default 4)")
    parser.add_argument("--chapter", help="the chapter graded, e.g. 01_framework_and_losses (default: guessed)")
    parser.add_argument("--course", type=Path, help="folder of the course's chapter notebooks "
                        "(default: notebooks/ of this repository)")
    args = parser.parse_args(argv)
    if (args.submissions is None) == (args.one is None):
        parser.error("give a folder of submissions or --one NOTEBOOK (one of the two)")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    return args


def _labels_of(paths: list[Path]) -> list[str]:
    labels: list[str] = []
    for path in paths:
        try:
            labels += labels_in(json.loads(path.read_text(encoding="utf8")))
        except (OSError, ValueError, AttributeError, TypeError):
            continue  # a malformed submission gets its error row later
    return labels


def choose_exercises(paths: list[Path], chapter: str | None, course: Path | None) -> list[GradedExercise]:
    """The graded exercises of the chapter the submissions belong to (the one sharing most labels)."""
    chapters = course_chapters(course) if course else {}
    if chapter:
        if chapter not in chapters:
            raise SystemExit(f"--chapter {chapter!r} is not a chapter with graded exercises in {course}; "
                             f"chapters: {', '.join(chapters) or 'none found'}")
        return chapters[chapter]
    labels = _labels_of(paths)
    if chapters:
        best = max(chapters, key=lambda c: sum(labels.count(e.label) for e in chapters[c]))
        if any(labels.count(e.label) for e in chapters[best]):
            return chapters[best]
    # No course folder (an installed package): the exercises the submissions themselves declare.
    found: dict[str, GradedExercise] = {}
    for path in paths:
        try:
            for e in graded_exercises(json.loads(path.read_text(encoding="utf8"))):
                found.setdefault(e.label, e)
        except (OSError, ValueError, AttributeError, TypeError):
            continue
    if not found:
        raise SystemExit("no graded exercise found: pass --chapter (and --course) to say what to grade")
    return list(found.values())


def _warn_public_only(exercises: list[GradedExercise]) -> None:
    for e in exercises:
        check = getattr(importlib.import_module(e.module), e.check)
        if "seed" not in inspect.signature(check).parameters:
            print(f"note: {e.module}.{e.check} takes no seed; {e.label} was graded on its public cases",
                  file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    course = args.course or default_course_folder()
    try:
        limits = Limits(seconds=args.timeout, memory_bytes=int(args.memory_gb * 1024**3))
    except ValueError as err:
        raise SystemExit(f"--timeout / --memory-gb: {err}") from None
    if args.one is not None:
        if not args.one.is_file():
            raise SystemExit(f"--one: no such file: {args.one}")
        exercises = choose_exercises([args.one], args.chapter, course)
        rows = [grade_submission(args.one, exercises, limits, args.seed, args.feedback)]
    else:
        if not args.submissions.is_dir():
            raise SystemExit(f"not a folder: {args.submissions}")
        paths = submissions_in(args.submissions)
        if not paths:
            raise SystemExit(f"no .ipynb file under {args.submissions}")
        exercises = choose_exercises(paths, args.chapter, course)
        rows = grade_folder(args.submissions, exercises, limits, args.seed, args.feedback, args.jobs,
                            progress=sys.stderr.isatty() or bool(os.environ.get("RANKCOURSE_PROGRESS")))
    labels = [e.label for e in exercises]
    if args.seed is not None:
        _warn_public_only(exercises)
    write_csv(rows, labels, args.out)
    html_path = args.html or args.out.with_suffix(".html")
    write_html(rows, labels, html_path, title=f"Grades: {', '.join(labels)}")
    for record in records(rows, labels):
        marks = " ".join(f"{label}={record[label]}" for label in labels)
        print(f"{record['submission']}: {record['total']}/{record['out_of']} {marks} "
              f"({record['seconds']} s){' ERROR: ' + str(record['reason']) if record['reason'] else ''}")
        if args.one is not None and record["feedback"]:
            print("  " + str(record["feedback"]).replace(" | ", "\n  "))
    print(f"wrote {args.out} and {html_path}")
    return 0
