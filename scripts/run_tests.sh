#!/usr/bin/env bash
# README command 2: every test. Package tests, the chapter notebooks under nbval, and a clean
# book build with -W (student and instructor editions), whose HTML the book tests then inspect.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
# No MPLBACKEND=Agg here: under Agg, plt.show() in a notebook draws nothing and the built book would
# have no figures (tests/conftest.py sets Agg for pytest's own process only).
unset MPLBACKEND
# Clean builds only: a rebuild over an old _build hides warnings of unchanged files.
bash scripts/build_book.sh
bash scripts/build_book.sh --instructor --reuse-execution
# The Chinese editions, into _build/html/zh_CN and _build/instructor/html/zh_CN, from the same
# executed notebooks (nothing runs again).
bash scripts/build_book.sh --language zh_CN
bash scripts/build_book.sh --instructor --language zh_CN
# -p no:cacheprovider: a .pytest_cache/README.md would break the next -W build.
# notebooks/student holds the solution-free copies of the same chapters; tests/test_student_notebooks.py
# checks them against the sources, so they are not executed a second time.
.venv/bin/python -m pytest -p no:cacheprovider tests notebooks --ignore=notebooks/student \
    --nbval-lax --nbval-current-env "$@"
