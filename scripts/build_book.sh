#!/usr/bin/env bash
# Build the course book from a clean output folder, executing every notebook and failing on
# any Sphinx warning or notebook error.
#
#   bash scripts/build_book.sh                 student edition, solutions hidden  -> _build/html
#   bash scripts/build_book.sh --instructor    instructor edition, solutions shown -> _build/instructor/html
#   ... --instructor --reuse-execution          right after a student build: reuse its executed notebooks
#   ... --language zh_CN                         the Chinese edition, into a zh_CN folder inside the English
#                                                one (_build/html/zh_CN, _build/instructor/html/zh_CN); built
#                                                after the English edition, it always reuses its executed
#                                                notebooks (translations: locale/, scripts/translations.py)
#
# Uses .venv/bin/jupyter-book when the repository has a .venv, else jupyter-book on PATH
# (override with JUPYTER_BOOK=/path/to/jupyter-book and PYTHON=/path/to/python).
# Why a clean folder: Jupyter Book 1 only re-reads changed files, so a rebuild over an old
# _build passes -W even when sources are broken (their warnings are not emitted again).
set -euo pipefail

usage() {
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
}

edition="student"
reuse=0
language=""
expect_language=0
for arg in "$@"; do
    if [ "$expect_language" = 1 ]; then language="$arg"; expect_language=0; continue; fi
    case "$arg" in
        --instructor) edition="instructor" ;;
        --reuse-execution) reuse=1 ;;
        --language) expect_language=1 ;;
        --language=*) language="${arg#--language=}" ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build_book.sh: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done
case "$language" in
    ""|en) language="" ;;
    zh_CN) ;;
    *) echo "build_book.sh: unknown language '$language' (known: zh_CN)" >&2; exit 2 ;;
esac

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
work="_build/.$edition${language:+-$language}-work"
rm -rf "$work"
mkdir -p "$work"
if [ -n "$language" ]; then
    # Its own work folder, hence its own doctrees (an English environment is "incompatible"),
    # and the English build's cache of executed notebooks: nothing runs again.
    if [ "$edition" = "student" ]; then out="_build/html/$language"; else out="_build/instructor/html/$language"; fi
    if [ ! -d "$(dirname "$out")" ]; then
        echo "build_book.sh: build the English $edition edition first (into $(dirname "$out"))" >&2; exit 2
    fi
    rm -rf "$out"
elif [ "$edition" = "student" ]; then
    out="_build/html"
    rm -rf "$out" _build/.doctrees _build/jupyter_execute "$cache"
else
    out="_build/instructor/html"
    rm -rf _build/instructor
    mkdir -p _build/instructor
    [ "$reuse" = 1 ] || rm -rf "$cache"
fi
# The build config is _config.yml with the cache path made absolute, the local extension path
# made absolute (it is resolved relative to the config file), for instructors, solutions shown,
# and for a language, its catalogues, title, footer and search (book/_ext/book_translations.py).
"$PYTHON" - "$work/_config.yml" "$edition" "$cache" "$language" <<'PY'
import sys
from pathlib import Path

import yaml

target, edition, cache, language = sys.argv[1:5]
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
if language:
    sys.path.insert(0, str(root / "book" / "_ext"))
    from book_translations import Settings, glossary_terms, translate_config

    settings = Settings.read(root, language)
    config = translate_config(config, settings, edition)
    # Chinese search cuts text into words with jieba; the glossary's terms are its dictionary.
    terms = Path(target).parent / "search_terms.txt"
    terms.write_text("".join(f"{t} 1000\n" for t in glossary_terms(root, settings)), encoding="utf8")
    config["sphinx"]["config"].update(
        language=language,
        locale_dirs=[str(root / "locale")],
        html_search_options={"dict": str(terms.resolve())},
        rankcourse_search_bar_text=settings.config["search_bar_text"],
        # The link back: this edition sits in a folder inside the English one.
        rankcourse_other_language={"lang": "en", "label": "English", "prefix": "../",
                                   "title": "This page in English"},
    )
Path(target).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf8")
PY
"$JUPYTER_BOOK" build . --config "$work/_config.yml" --path-output "$work" -W --keep-going --all \
    2>&1 | tee "$work/build.log"
if [ -n "$language" ] && grep -q "Executing notebook" "$work/build.log"; then
    # A translated edition shows the English build's results; running a chapter again could
    # show different numbers, and costs CI minutes.
    echo "build_book.sh: the $language build executed notebooks the English build had not cached:" >&2
    grep "Executing notebook" "$work/build.log" >&2
    exit 1
fi
mv "$work/_build/html" "$out"
if [ "$edition" = "student" ] && [ -z "$language" ]; then
    # Keep the executed notebooks beside the site, where a rebuild by hand would put them.
    rm -rf _build/jupyter_execute && mv "$work/_build/jupyter_execute" _build/jupyter_execute 2>/dev/null || true
fi
rm -rf "$work"
end=$(date +%s)
echo "build_book.sh: $edition edition${language:+ ($language)} built in $((end - start)) s: $root/$out/index.html"
