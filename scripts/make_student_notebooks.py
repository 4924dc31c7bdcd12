#!/usr/bin/env python3
"""Write the solution-free student copies of the chapter notebooks to notebooks/student/.

    python scripts/make_student_notebooks.py           regenerate every copy
    python scripts/make_student_notebooks.py --check   exit 1 if a copy is missing or stale

Run it after editing a chapter notebook and commit the copies with it; the rules for what
counts as a solution are in book/_ext/student_notebooks.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

from student_notebooks import chapter_notebooks, student_notebook_text, student_path  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale or missing copies")
    args = parser.parse_args()
    stale = []
    for source in chapter_notebooks(ROOT):
        target = student_path(source)
        text = student_notebook_text(source, ROOT)
        current = target.read_text(encoding="utf8") if target.is_file() else None
        if current == text:
            continue
        stale.append(target.relative_to(ROOT).as_posix())
        if not args.check:
            target.parent.mkdir(exist_ok=True)
            target.write_text(text, encoding="utf8")
    sources = {student_path(s).name for s in chapter_notebooks(ROOT)}
    orphans = sorted(p for p in (ROOT / "notebooks" / "student").glob("*.ipynb") if p.name not in sources)
    for orphan in orphans:
        stale.append(f"{orphan.relative_to(ROOT).as_posix()} (no source notebook)")
        if not args.check:
            orphan.unlink()
    verb = "stale" if args.check else "written"
    for name in stale:
        print(f"{verb}: {name}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
