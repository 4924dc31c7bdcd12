"""Each chapter reads as a page: scripts/page_check.py's measures, chapter by chapter, and the measures' own checks.

The limits (code lines <= 80 characters, visible code cells <= 30 lines, <= 5,000 words, sentences
of <= 22 words on average, a 中文导读 and a 中文小结 with a glued number) are page_check's
constants; see its docstring. Run ``python scripts/page_check.py --details NN_x.ipynb`` for
every long line and sentence of a chapter.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_page_check():
    spec = importlib.util.spec_from_file_location("page_check", ROOT / "scripts" / "page_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("page_check", module)
    spec.loader.exec_module(module)
    return sys.modules["page_check"]


page_check = _load_page_check()
SHOWN = 8  # items of each kind a failure message lists in full


def _report(m: dict, problems: list[str]) -> str:
    """What a chapter engineer needs to fix: each breach, then the cells and sentences behind it."""
    lines = [f"{m['name']}: {len(problems)} breach(es) of the page rules:"]
    lines += [f"  - {p}" for p in problems]
    if m["long_lines"]:
        by_cell: dict[str, list[str]] = {}
        for cell_id, line in m["long_lines"]:
            by_cell.setdefault(str(cell_id), []).append(line)
        lines.append(f"  code lines over {page_check.MAX_CODE_CHARS} characters, by cell (id: count, longest):")
        for cell_id, found in list(by_cell.items())[:SHOWN]:
            longest = max(found, key=len)
            lines.append(f"    {cell_id}: {len(found)}, {len(longest)} chars: {longest.strip()[:90]}")
        if len(by_cell) > SHOWN:
            lines.append(f"    ... and {len(by_cell) - SHOWN} more cells")
    if m["mean_sentence"] > page_check.MAX_MEAN_SENTENCE and m["long_sentences"]:
        lines.append("  longest sentences (over 40 words) to split:")
        for sentence in sorted(m["long_sentences"], key=lambda s: -len(s.split()))[:SHOWN]:
            lines.append(f"    ({len(sentence.split())} words) {sentence[:120]}")
    lines.append(f"  details: python scripts/page_check.py --details {m['name']}")
    return "\n".join(lines)


@pytest.mark.parametrize("name", page_check.chapters())
def test_chapter_page_keeps_the_page_rules(name):
    m = page_check.measure(name)
    problems = page_check.breaches(m)
    assert not problems, _report(m, problems)


# --------------------------------------------------------------------------- the measures themselves


def _cell(kind: str, source: str, tags: tuple[str, ...] = (), cell_id: str | None = None) -> dict:
    cell = {"cell_type": kind, "metadata": {"tags": list(tags)} if tags else {}, "source": source}
    if cell_id:
        cell["id"] = cell_id
    return cell


def _write_chapter(root: Path, cells: list[dict], student_cells: list[dict] | None = None,
                   name: str = "99_made_up.ipynb") -> str:
    for folder, nb_cells in ((root / "notebooks", cells), (root / "notebooks" / "student", student_cells or cells)):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps({"cells": nb_cells, "metadata": {}, "nbformat": 4,
                                               "nbformat_minor": 5}), encoding="utf8")
    return name


_GUIDE = "```{admonition} 中文导读\n:class: tip\n本章学习目标。\n```"
_SUMMARY = "```{admonition} 中文小结\n:class: tip\n差距为 {glue:text}`ch99_gap`。\n```"


def test_sentences_are_split_at_full_stops_and_counted_in_words():
    text = "The model learns a weight per id. It then adds the two logits and applies a sigmoid."
    assert [len(s) for s in page_check.sentences(text)] == [7, 10]


def test_maths_code_and_roles_count_as_one_word_in_a_sentence():
    text = "The loss $\\ell(z, y) = -y \\log \\sigma(z)$ is computed by `bce(z, y)` as in {cite:p}`x2016`."
    (words,) = page_check.sentences(text)
    assert words == ["The", "loss", "x", "is", "computed", "by", "x", "as", "in", "x"]


def test_code_fences_tables_and_display_maths_are_not_sentences():
    text = ("A short sentence here.\n\n```python\nthis is code and not a sentence at all\n```\n\n"
            "| a table | row with many words in it |\n|---|---|\n\n$$\na + b = c\n$$\n")
    assert [len(s) for s in page_check.sentences(text)] == [4]


def test_english_words_leave_maths_out():
    assert page_check.english_words("One two three $x + y$ four.\n\n$$\nsum over items\n$$\n") == 4
    assert page_check.english_words("本章 has three words") == 3


def test_measure_finds_a_long_code_line_by_its_cell(tmp_path, monkeypatch):
    monkeypatch.setattr(page_check, "ROOT", tmp_path)
    long_line = "x = " + "1 + " * 30 + "1"  # 125 characters
    cells = [_cell("markdown", "# Title\n\nA short opening line."), _cell("markdown", _GUIDE),
             _cell("code", "y = 1\n" + long_line, cell_id="long-one"),
             _cell("code", "z = 2", cell_id="short-one"), _cell("markdown", _SUMMARY)]
    m = page_check.measure(_write_chapter(tmp_path, cells))
    assert m["long_lines"] == [("long-one", long_line)]
    assert page_check.breaches(m) == [f"1 code lines over {page_check.MAX_CODE_CHARS} characters"]
    assert "long-one" in _report(m, page_check.breaches(m))


def test_a_line_of_exactly_80_characters_fits(tmp_path, monkeypatch):
    monkeypatch.setattr(page_check, "ROOT", tmp_path)
    cells = [_cell("markdown", _GUIDE), _cell("code", "#" * 80), _cell("markdown", _SUMMARY)]
    assert page_check.breaches(page_check.measure(_write_chapter(tmp_path, cells))) == []


def test_a_long_visible_cell_breaches_and_a_hidden_one_passes(tmp_path, monkeypatch):
    monkeypatch.setattr(page_check, "ROOT", tmp_path)
    body = "\n".join(f"a{i} = {i}" for i in range(page_check.MAX_VISIBLE_LINES + 5))
    cells = [_cell("markdown", _GUIDE), _cell("code", body, cell_id="shown"),
             _cell("code", body, ("hide-input",), cell_id="hidden"),
             _cell("code", body, ("remove-cell",), cell_id="removed"), _cell("markdown", _SUMMARY)]
    m = page_check.measure(_write_chapter(tmp_path, cells))
    assert m["long_cells"] == [("shown", page_check.MAX_VISIBLE_LINES + 5)]


def test_a_hidden_cell_still_keeps_its_lines_within_80_characters(tmp_path, monkeypatch):
    """Hidden code expands when a student opens it: its lines must fit too."""
    monkeypatch.setattr(page_check, "ROOT", tmp_path)
    cells = [_cell("markdown", _GUIDE), _cell("code", "q" * 81, ("hide-input",), cell_id="h"),
             _cell("markdown", _SUMMARY)]
    assert page_check.measure(_write_chapter(tmp_path, cells))["long_lines"] == [("h", "q" * 81)]


def test_words_and_mean_sentence_of_a_made_up_chapter(tmp_path, monkeypatch):
    monkeypatch.setattr(page_check, "ROOT", tmp_path)
    long_sentence = " ".join(["word"] * 29) + "."  # 29 words
    short_sentence = "This one has five words."
    cells = [_cell("markdown", "# A title"), _cell("markdown", _GUIDE),
             _cell("markdown", f"{long_sentence} {short_sentence}"), _cell("markdown", _SUMMARY)]
    m = page_check.measure(_write_chapter(tmp_path, cells))
    admonitions = page_check.english_words(_GUIDE) + page_check.english_words(_SUMMARY)
    assert m["words"] == 2 + 29 + 5 + admonitions  # the title's two words count, headings are prose
    assert m["mean_sentence"] == pytest.approx((29 + 5) / 2)  # a title is not a sentence
    assert m["guide"] and m["summary"] and m["summary_glued"]
    assert page_check.breaches(m) == []


def test_a_chapter_without_its_chinese_guide_and_glued_summary_breaches(tmp_path, monkeypatch):
    monkeypatch.setattr(page_check, "ROOT", tmp_path)
    unglued = _SUMMARY.replace("{glue:text}`ch99_gap`", "0.01")
    cells = [_cell("markdown", "# Title"), _cell("markdown", "Some text here."), _cell("markdown", unglued)]
    problems = page_check.breaches(page_check.measure(_write_chapter(tmp_path, cells)))
    assert problems == ["no 中文导读 in the first cells", "no 中文小结 with a glued number"]


def test_too_many_words_breach(tmp_path, monkeypatch):
    monkeypatch.setattr(page_check, "ROOT", tmp_path)
    prose = " ".join(["Short words here."] * (page_check.MAX_WORDS // 3 + 1))
    cells = [_cell("markdown", _GUIDE), _cell("markdown", prose), _cell("markdown", _SUMMARY)]
    m = page_check.measure(_write_chapter(tmp_path, cells))
    assert m["words"] > page_check.MAX_WORDS
    assert any("words of prose" in p for p in page_check.breaches(m))
