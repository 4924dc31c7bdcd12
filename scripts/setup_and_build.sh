#!/usr/bin/env bash
# README command 1: set everything up and build the course (student edition) into _build/html,
# and its Chinese edition into _build/html/zh_CN (from the same executed notebooks).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
bash scripts/build_book.sh "$@"
bash scripts/build_book.sh "$@" --language zh_CN
echo "The course is built: open _build/html/index.html (Chinese: _build/html/zh_CN/index.html)"
