#!/usr/bin/env bash
# Build the course book from a clean output folder, executing every notebook and failing on
# any Sphinx warning or notebook error.
#
#   bash scripts/build_book.sh                 student edition, solutions hidden  -> _build/html
#   bash scripts/build_book.sh --instructor    instructor edition, solutions shown -> _build/instructor/html
#   ... --instructor --reuse-execution          right after a student build: reuse its executed notebooks
#
# Uses .venv/bin/jupyter-book when the repository has a .venv, else jupyter-book on PATH
# (override with JUPYTER_BOOK=/path/to/jupyter-book and PYTHON=/path/to/python).
# Why a clean folder: Jupyter Book 1 only re-reads changed files, so a rebuild over an old
# _build passes -W even when sources are broken (their warnings are not emitted again).
set -euo pipefail

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

edition="student"
reuse=0
for arg in "$@"; do
    case "$arg" in
        --instructor) edition="instructor" ;;
        --reuse-execution) reuse=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build_book.sh: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [ -z "${JUPYTER_BOOK:-}" ]; then
    if [ -x .venv/bin/jupyter-book ]; then JUPYTER_BOOK=.venv/bin/jupyter-book; else JUPYTER_BOOK=jupyter-book; fi
fi
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

# Jupyter Book 2 (mystmd) ignores _config.yml/_toc.yml: refuse to run with it.
jb_version="$("$JUPYTER_BOOK" --version 2>/dev/null | sed -n 's/^Jupyter Book *: *//p')"
case "$jb_version" in
    1.*) ;;
    *) echo "build_book.sh: needs Jupyter Book 1.x, found '${jb_version:-nothing}' ($JUPYTER_BOOK)" >&2; exit 2 ;;
esac

# The notebooks import the course package; the kernels inherit this environment, so the
# build also works without `pip install -e .`.
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"

start=$(date +%s)
# Executed notebooks are recorded in a jupyter-cache that each student build starts afresh (so
# it always runs every notebook against the current package). The instructor edition, built
# right after with --reuse-execution, reads them from there instead of running them again.
cache="$root/_build/.jupyter_cache"
work="_build/.$edition-work"
rm -rf "$work"
mkdir -p "$work"
if [ "$edition" = "student" ]; then
    out="_build/html"
    rm -rf "$out" _build/.doctrees _build/jupyter_execute "$cache"
else
    out="_build/instructor/html"
    rm -rf _build/instructor
    mkdir -p _build/instructor
    [ "$reuse" = 1 ] || rm -rf "$cache"
fi
# The build config is _config.yml with the cache path made absolute, the local extension path
# made absolute (it is resolved relative to the config file) and, for instructors, solutions shown.
"$PYTHON" - "$work/_config.yml" "$edition" "$cache" <<'PY'
import sys
from pathlib import Path

import yaml

target, edition, cache = sys.argv[1:4]
root = Path.cwd()
config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf8"))
config.setdefault("execute", {}).update(execute_notebooks="cache", cache=cache)
sphinx = config.setdefault("sphinx", {})
sphinx["local_extensions"] = {
    name: str((root / path).resolve()) for name, path in (sphinx.get("local_extensions") or {}).items()
}
if edition == "instructor":
    sphinx.setdefault("config", {})["hide_solutions"] = False
    config["title"] = f"{config.get('title', 'rankcourse')} (instructor edition)"
    config.setdefault("html", {})["announcement"] = "Instructor edition: solutions are shown."
Path(target).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf8")
PY
"$JUPYTER_BOOK" build . --config "$work/_config.yml" --path-output "$work" -W --keep-going --all
mv "$work/_build/html" "$out"
if [ "$edition" = "student" ]; then
    # Keep the executed notebooks beside the site, where a rebuild by hand would put them.
    rm -rf _build/jupyter_execute && mv "$work/_build/jupyter_execute" _build/jupyter_execute 2>/dev/null || true
fi
rm -rf "$work"
end=$(date +%s)
echo "build_book.sh: $edition edition built in $((end - start)) s: $root/$out/index.html"
