#!/usr/bin/env python
"""Measure each chapter as a page a student reads: code width, visible cell length, words, sentences.

    python scripts/page_check.py            # a table, one row per chapter; exit 1 on a breach
    python scripts/page_check.py --details  # and every long line, long cell and long sentence

The limits (``tests/test_page_check.py`` holds them):

- a code line is at most ``MAX_CODE_CHARS`` characters (the book's column shows about 80);
- a code cell shown on the page (not tagged ``hide-input``, ``remove-input``, ``hide-cell`` or
  ``remove-cell``) is at most ``MAX_VISIBLE_LINES`` lines;
- the chapter's markdown (the instructors' page: text, tables, captions and solutions; maths not
  counted) has at most ``MAX_WORDS`` English words;
- the sentences of the student page (the solution-free copy in ``notebooks/student/``; maths, code
  and tables left out) average at most ``MAX_MEAN_SENTENCE`` words;
- it opens with a ``中文导读`` and ends its text with a ``中文小结`` (admonitions), the summary
  carrying at least one number glued from the run (``{glue:text}``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_CODE_CHARS = 80
MAX_VISIBLE_LINES = 30
MAX_WORDS = 5000
MAX_MEAN_SENTENCE = 22.0
HIDDEN_TAGS = {"hide-input", "remove-input", "hide-cell", "remove-cell"}
# Directives whose body is not prose.
PLAIN_DIRECTIVES = {"math", "code", "code-block", "code-cell", "literalinclude", "glue:figure",
                    "raw", "mermaid", "bibliography", "tableofcontents", "list-table", "csv-table"}

_FENCE = re.compile(r"^(`{3,}|~{3,}|:{3,})")
_DISPLAY_MATHS = re.compile(r"\$\$.*?\$\$", re.DOTALL)
_INLINE_MATHS = re.compile(r"\$[^$\n]+\$")
_ROLE = re.compile(r"\{[\w:-]+\}`[^`]*`")
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_HTML = re.compile(r"<[^>\n]+>|<!--.*?-->", re.DOTALL)
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+(?:[.,]\d+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’)]*\s+(?=[A-Z(\"“*{$`])")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def prose_blocks(markdown: str) -> list[str]:
    """The paragraphs and list items of a markdown cell, as plain text (no maths, code or tables)."""
    text = _DISPLAY_MATHS.sub(" ", _HTML.sub(" ", markdown))
    blocks, current = [], []
    fences: list[tuple[str, bool]] = []  # open fences: (marker, is its body prose?)
    for line in text.splitlines():
        stripped = line.strip()
        fence = _FENCE.match(stripped)
        if fence:
            current and blocks.append(" ".join(current))
            current = []
            marker, rest = fence.group(1), stripped[len(fence.group(1)):].strip()
            if not rest and fences and fences[-1][0][0] == marker[0] and len(marker) >= len(fences[-1][0]):
                fences.pop()  # a bare fence closes the innermost open one
            else:
                # a directive's body (admonition, dropdown, figure caption) is prose;
                # code, maths and a fence with a language name are not
                directive = re.match(r"\{([\w:-]+)\}", rest)
                prose = bool(directive) and directive.group(1) not in PLAIN_DIRECTIVES
                fences.append((marker, prose and all(p for _, p in fences)))
            continue
        in_code = bool(fences) and not fences[-1][1]
        if in_code or stripped.startswith(("|", ":", "(", "#")) or not stripped:
            if stripped.startswith("#") or not stripped:
                current and blocks.append(" ".join(current))
                current = []
            continue
        if re.match(r"([-*+]|\d+[.)])\s", stripped):  # a list item starts a block of its own
            current and blocks.append(" ".join(current))
            current = [re.sub(r"^([-*+]|\d+[.)])\s+", "", stripped)]
            continue
        current.append(stripped)
    current and blocks.append(" ".join(current))
    cleaned = []
    for block in blocks:
        block = _INLINE_MATHS.sub("x", block)
        block = _ROLE.sub("x", block)
        block = _CODE_SPAN.sub("x", block)
        block = _LINK.sub(r"\1", block)
        cleaned.append(block)
    return cleaned


def sentences(markdown: str) -> list[list[str]]:
    """Each sentence of the prose as its list of words (sentences under three words are dropped)."""
    out = []
    for block in prose_blocks(markdown):
        for sentence in _SENTENCE_END.split(block):
            words = _WORD.findall(sentence)
            if len(words) >= 3:
                out.append(words)
    return out


def english_words(markdown: str) -> int:
    """English words of a markdown cell, maths left out."""
    text = re.sub(r"```\{math\}.*?```", " ", _DISPLAY_MATHS.sub(" ", markdown), flags=re.DOTALL)
    return len(re.findall(r"[A-Za-z][A-Za-z'’-]*", _INLINE_MATHS.sub(" ", text)))


def measure(name: str) -> dict:
    """The page measures of one chapter, ``name`` being its notebook's file name."""
    source = json.loads((ROOT / "notebooks" / name).read_text(encoding="utf-8"))
    student = json.loads((ROOT / "notebooks" / "student" / name).read_text(encoding="utf-8"))
    long_lines, long_cells = [], []
    for cell in source["cells"]:
        if cell["cell_type"] != "code":
            continue
        text = _source(cell)
        long_lines += [(cell.get("id"), line) for line in text.splitlines() if len(line) > MAX_CODE_CHARS]
        tags = set(cell.get("metadata", {}).get("tags", []))
        if not tags & HIDDEN_TAGS and len(text.splitlines()) > MAX_VISIBLE_LINES:
            long_cells.append((cell.get("id"), len(text.splitlines())))
    markdown = [_source(c) for c in student["cells"]
                if c["cell_type"] == "markdown" and c.get("id") != "student-copy-note"]
    all_sentences = [s for m in markdown for s in sentences(m)]
    mean = sum(map(len, all_sentences)) / max(len(all_sentences), 1)
    text = "\n".join(markdown)
    summary = next((m for m in markdown if "中文小结" in m), "")
    return {
        "name": name, "long_lines": long_lines, "long_cells": long_cells,
        "words": sum(english_words(_source(c)) for c in source["cells"] if c["cell_type"] == "markdown"),
        "mean_sentence": mean,
        "long_sentences": [" ".join(s) for s in all_sentences if len(s) > 40],
        "guide": "中文导读" in "\n".join(markdown[:4]), "summary": bool(summary),
        "summary_glued": "{glue:text}" in summary, "text": text,
    }


def breaches(m: dict) -> list[str]:
    out = []
    if m["long_lines"]:
        out.append(f"{len(m['long_lines'])} code lines over {MAX_CODE_CHARS} characters")
    if m["long_cells"]:
        out.append(f"visible code cells over {MAX_VISIBLE_LINES} lines: {m['long_cells']}")
    if m["words"] > MAX_WORDS:
        out.append(f"{m['words']} words of prose (at most {MAX_WORDS})")
    if m["mean_sentence"] > MAX_MEAN_SENTENCE:
        out.append(f"sentences average {m['mean_sentence']:.1f} words (at most {MAX_MEAN_SENTENCE})")
    if not m["guide"]:
        out.append("no 中文导读 in the first cells")
    if not m["summary"] or not m["summary_glued"]:
        out.append("no 中文小结 with a glued number")
    return out


def chapters() -> list[str]:
    return sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--details", action="store_true", help="list every long line, cell and sentence")
    parser.add_argument("names", nargs="*", help="notebook file names (default: every chapter)")
    args = parser.parse_args()
    failed = False
    print(f"{'chapter':28} {'long':>5} {'cells':>5} {'words':>6} {'mean':>5}  breaches")
    for name in args.names or chapters():
        m = measure(name)
        problems = breaches(m)
        failed |= bool(problems)
        print(f"{name:28} {len(m['long_lines']):5d} {len(m['long_cells']):5d} {m['words']:6d} "
              f"{m['mean_sentence']:5.1f}  {'; '.join(problems) or 'ok'}")
        if args.details:
            for cell_id, line in m["long_lines"]:
                print(f"    line  {cell_id}: {line}")
            for sentence in m["long_sentences"]:
                print(f"    long sentence ({len(sentence.split())} words): {sentence[:150]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
