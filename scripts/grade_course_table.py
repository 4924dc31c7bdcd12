#!/usr/bin/env python3
"""Grade the book's own notebooks with ``python -m rankcourse.grade`` and write the table that the
instructors' page shows (between the grade-table markers of book/instructors.md).

For every chapter with graded exercises, two submissions are graded: the student copy as
distributed (``student``, nothing written yet) and the student copy with the solutions put back,
which is the chapter notebook itself (``student + solutions``). Each chapter runs in full, as a
submission would, so this takes several minutes; run it by hand after exercises change:

    python scripts/grade_course_table.py [--seed S] [--jobs N] [--chapters 01_framework_and_losses ...]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rankcourse.grade.exercises import course_chapters  # noqa: E402


def grade_chapter(name: str, seed: int, jobs: int, timeout: float, work: Path) -> list[dict[str, str]]:
    folder = work / name
    folder.mkdir()
    shutil.copyfile(ROOT / "notebooks" / "student" / f"{name}.ipynb", folder / "student.ipynb")
    shutil.copyfile(ROOT / "notebooks" / f"{name}.ipynb", folder / "student + solutions.ipynb")
    out = work / f"{name}.csv"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "rankcourse.grade", str(folder), "--out", str(out), "--chapter", name,
                    "--seed", str(seed), "--jobs", str(jobs), "--timeout", str(timeout)], check=True, env=env)
    with open(out, newline="", encoding="utf8") as file:
        return list(csv.DictReader(file))


def markdown(results: dict[str, list[dict[str, str]]], labels: dict[str, list[str]], note: str) -> str:
    lines = [note, "", "| chapter | submission | exercise: verdict | total | seconds | status |",
             "|---|---|---|---|---|---|"]
    for chapter, rows in results.items():
        for row in rows:
            verdicts = "; ".join(f"`{label}`: {row[label]}" for label in labels[chapter])
            status = row["status"] + (f" ({row['reason']})" if row["reason"] else "")
            lines.append(f"| {chapter} | {row['submission'].removesuffix('.ipynb')} | {verdicts} | "
                         f"{row['total']}/{row['out_of']} | {row['seconds']} | {status} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1200.0)
    parser.add_argument("--chapters", nargs="*")
    parser.add_argument("--page", type=Path, default=ROOT / "book" / "instructors.md")
    args = parser.parse_args()
    chapters = course_chapters(ROOT / "notebooks")
    names = args.chapters or list(chapters)
    start, results = time.time(), {}
    with tempfile.TemporaryDirectory(prefix="rankcourse-table-") as tmp:
        for name in names:  # the page is rewritten after each chapter: a long run keeps what it did
            results[name] = grade_chapter(name, args.seed, args.jobs, args.timeout, Path(tmp))
            note = (f"Made by `python scripts/grade_course_table.py --seed {args.seed} --jobs {args.jobs}` on "
                    f"{time.strftime('%Y-%m-%d', time.gmtime())}: {len(results)} chapters graded in "
                    f"{(time.time() - start) / 60:.0f} min on {os.cpu_count()} CPU cores (load average "
                    f"{os.getloadavg()[0]:.1f}, shared with other work; the seconds are wall-clock times "
                    "under that load).")
            table = markdown(results, {n: [e.label for e in chapters[n]] for n in results}, note)
            write_between_markers(args.page, table)
            print(f"{name}: done; wrote {args.page}", flush=True)
    return 0


START, END = "<!-- grade-table-start -->", "<!-- grade-table-end -->"


def write_between_markers(page: Path, table: str) -> None:
    text = page.read_text(encoding="utf8")
    if START not in text or END not in text:
        raise SystemExit(f"{page} has no {START} ... {END} block for the table")
    head, rest = text.split(START, 1)
    page.write_text(head + START + "\n" + table + END + rest.split(END, 1)[1], encoding="utf8")


if __name__ == "__main__":
    raise SystemExit(main())
