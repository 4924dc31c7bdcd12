#!/usr/bin/env bash
# Install the reference libraries of bench_epoch.py into benchmarks/.libs, away from the course's
# environment: --no-deps so pip never installs or upgrades torch (or anything else) there.
# Their runtime dependencies (torch, numpy, pandas, scikit-learn, tqdm) are the course's own.
#
#   bash benchmarks/install_reference_libs.sh            # uses .venv/bin/python if present
#   PYTHON=python3 bash benchmarks/install_reference_libs.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
fi
target="$here/.libs"
mkdir -p "$target"
"$PYTHON" -m pip install --quiet --no-deps --upgrade --target "$target" -r "$here/requirements.txt"
# deepctr-torch's wheel also ships a top-level `tests` package: drop it so that nothing there can be
# collected or imported in place of the course's own tests.
rm -rf "$target/tests"
# The libraries import only what the course already has; say so if something is missing.
PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" - <<'PY'
import importlib
for mod in ("torch_rechub", "deepctr_torch"):
    m = importlib.import_module(mod)
    print(f"{mod} {getattr(m, '__version__', '?')} importable from {m.__file__.rsplit('/', 2)[0]}")
PY
