#!/usr/bin/env bash
# README command 1: set everything up and build the course (student edition) into _build/html.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
bash scripts/build_book.sh "$@"
echo "The course is built: open _build/html/index.html"
