"""``python -m rankcourse.grade SUBMISSIONS/ --out grades.csv``; see :mod:`rankcourse.grade.cli`."""

from .cli import main

raise SystemExit(main())
