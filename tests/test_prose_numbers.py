"""Book test: a number in a chapter's prose comes from the run, or is a setting, a definition or cited.

The build re-executes every notebook, so a result typed into markdown can silently disagree with the
output above it. Every markdown cell of a chapter notebook is read, the introduction and the
solutions included (a result announced in the introduction or used in a solution is still a
result). Each cell is cut into sentences (at ". ", "! ", "? " before a capital, at blank lines and
at list items), and every number a sentence carries must be one of:

- **glued**: it is a ``{glue:text}`` / ``{glue}`` role (myst-nb pastes the value the run produced;
  ``rankcourse.glue.glue("key", value)`` stores it, and ``test_every_pasted_glue_key_is_glued...``
  checks that each pasted key is glued);
- **asserted nearby**: the same value (or, for a percentage, the value / 100) is a literal in an
  ``assert`` statement or an ``assert*(...)`` call of one of the ``NEARBY`` code cells before or after
  the sentence's cell;
- **a setting**: the value is a literal of the notebook's code outside assertions and outside
  ``print`` / f-strings (``positive_rate=0.02``, ``W1 = 10.0``, ``pick(small=400_000, ...)``);
- **maths**: it is inside display maths, or inside inline maths that contains a symbol
  (``$\\gamma = 2$``). Inline maths that is only a quantity (``$10^{-9}$``, ``$3\\times10^{-8}$``) is a
  number like any other: typesetting a measured value as maths does not exempt it;
- **cited**: the sentence carries a ``{cite...}`` role;
- **a reference, not a quantity**: a chapter / section / table / figure / equation / cell / item
  number, a year (1950-2039), or a list marker such as ``(1)``. This is the whole allow list
  (``REFERENCE_WORDS``, ``_is_year``), each entry because it names a place, not a measurement.

Digits glued to letters (``float32``, ``L2``, ``x_0``) are names, not numbers. Spelled ratios
("five to eight times", "tenfold") are read as numbers too, because they are how a measured ratio
slips into prose without a digit; a setting cannot explain them (they must be glued, asserted or
cited).

What the rule cannot see, and a reviewer must: claims without a number ("ranked best of the three",
"closes most of the gap"), a plain "N times", and a measured value that happens to equal a literal
of the code (a setting "explains" it). Literals inside Matplotlib calls and indices are not
settings, which keeps the last case rare.

A failure names the notebook, the cell (0-based index and id) and the sentence. The test cannot pass
by inspecting nothing: each chapter must yield at least ``MIN_SENTENCES`` sentences with numbers and
``MIN_NUMBERS`` numbers, and ``test_rule_fails_on_a_sentence_from_main`` feeds the rule a sentence
that was on main (chapter 3, "about 0.06 AUC") and sees it fail.

Run as a script to write every notebook's failures to a file:
``python tests/test_prose_numbers.py --report FILE``.
"""

from __future__ import annotations

import ast
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NEARBY = 2  # code cells on each side whose assertions count as "asserted nearby"
MIN_SENTENCES = 10  # sentences carrying a number, per chapter: guards against a vacuous pass
MIN_NUMBERS = 15  # numbers inspected per chapter (the fewest today: chapter 9, 12 and 18)

# Words after which a number names a place in the book or a paper, not a quantity.
REFERENCE_WORDS = (
    "chapter", "chapters", "ch", "section", "sections", "§", "table", "tables", "figure", "fig",
    "equation", "eq", "appendix", "cell", "cells", "item", "items", "question", "exercise", "step",
    "version", "python", "part",
)
NUMBER_WORDS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "fifty": 50, "hundred": 100,
    "thousand": 1000,
}
_WORD = "|".join(NUMBER_WORDS)
# A measured ratio in words: "five to eight times", "five- to eightfold", "tenfold", "fifty-fold".
# A plain "N times" is not read: it is mostly a repetition ("trained three times") or a ratio of
# settings ("five times the rows"), and a reviewer reads those.
MULTIPLIER_RE = re.compile(
    rf"\b(?P<a>{_WORD})(?:-?\s*(?:to|or)\s+(?P<b>{_WORD})\s*-?\s*(?:times|fold)|\s*-?\s*fold)\b",
    re.IGNORECASE,
)
# 0.5, 300 000, 5,000, 1e-3, 2 %, 49:1 (two numbers), ±40, −40
NUMBER_RE = re.compile(
    r"(?<![\w.\\^_{])"  # not part of a name (float32, x_0, \\alpha2)
    r"(?P<num>\d{1,3}(?:(?:,| |\u202f|\u2009)\d{3})+(?!\d)|\d+(?:\.\d+)?(?:[eE][-+−]?\d+)?)"
    r"(?P<pct>\s?%)?"
    r"(?![\w])(?!\.\d)"  # not a version (2.13.0)
)
DISPLAY_MATH_RE = re.compile(r"\$\$.*?\$\$|```\{math\}.*?```|\\begin\{(\w+\*?)\}.*?\\end\{\1\}", re.S)
INLINE_MATH_RE = re.compile(r"(?<![\\$])\$(?!\$)(?P<body>[^$\n]+?)\$")
FENCE_RE = re.compile(r"^(```|~~~)(?!\{(?:exercise|solution|note|admonition|tip|warning|important)).*?^\1\s*$", re.S | re.M)
ROLE_RE = re.compile(r"\{(?P<name>[\w:-]+)\}`(?P<body>[^`]*)`")
CODE_SPAN_RE = re.compile(r"`[^`]*`")
LINK_TARGET_RE = re.compile(r"\]\([^)]*\)")
HTML_RE = re.compile(r"<[^>]+>")
DIRECTIVE_LINE_RE = re.compile(r"^\s*(```+|~~~+|:[\w-]+:).*$", re.M)
SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(*\[{$\"'“])|\n\s*\n|\n\s*(?=[-*+] |\d+\. |#)")


GLUED = "GLUEDVALUE"  # stands for a {glue:text} role in the prose: a number, explained by the run


def _is_year(value: float, text: str) -> bool:
    return value.is_integer() and 1950 <= value <= 2039 and "." not in text and "," not in text


@dataclass
class Number:
    text: str
    value: float
    percent: bool = False
    spelled: bool = False  # "five to eight times": a ratio, never a setting of the code
    glued: bool = False  # a {glue:text} role: the run's own value

    def candidates(self) -> list[float]:
        """The values a code literal may carry for this number (a percentage may be a fraction)."""
        return [self.value, self.value / 100] if self.percent else [self.value]


@dataclass
class Sentence:
    notebook: str
    cell: int
    cell_id: str
    text: str
    numbers: list[Number] = field(default_factory=list)
    unexplained: list[Number] = field(default_factory=list)

    def describe(self) -> str:
        bad = ", ".join(n.text for n in self.unexplained)
        return f"{self.notebook} cell {self.cell} (id {self.cell_id}): [{bad}] in: {self.text}"


@dataclass
class NotebookReport:
    name: str
    sentences: list[Sentence]

    @property
    def n_numbers(self) -> int:
        return sum(len(s.numbers) for s in self.sentences)

    @property
    def failures(self) -> list[Sentence]:
        return [s for s in self.sentences if s.unexplained]


# --- numbers in code ------------------------------------------------------------------------------


def _parse_code(source: str) -> ast.Module | None:
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def _constants(node: ast.AST) -> list[float]:
    values = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, (int, float)) \
                and not isinstance(sub.value, bool):
            values.append(abs(float(sub.value)))
    return values


def _is_assert_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name.startswith(("assert", "check_"))


def _is_output_call(node: ast.AST) -> bool:
    func = getattr(node, "func", None)
    return isinstance(node, ast.Call) and getattr(func, "id", "") in ("print", "display")


def _root_name(node: ast.AST) -> str:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return getattr(node, "id", "")


def _is_plot_call(node: ast.AST) -> bool:
    """A Matplotlib call (``ax.plot``, ``plt.subplots``): its sizes and colours are not settings."""
    return isinstance(node, ast.Call) and _root_name(node.func).startswith(("ax", "plt", "fig"))


def asserted_values(source: str) -> list[float]:
    """Numeric literals that a cell's assertions check (``assert ...`` and ``assert*(...)`` calls)."""
    tree = _parse_code(source)
    if tree is None:
        return []
    values = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            values += _constants(node.test)
        elif _is_assert_call(node):
            values += _constants(node)
    return values


def setting_values(source: str) -> list[float]:
    """Numeric literals of a cell's code outside assertions, prints and f-strings: its settings."""
    tree = _parse_code(source)
    if tree is None:
        return []
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assert, ast.JoinedStr)) or _is_assert_call(node) \
                or _is_output_call(node) or _is_plot_call(node):
            skipped.update(id(sub) for sub in ast.walk(node))
        elif isinstance(node, ast.Subscript):  # indices and slices ([:4]) are not settings
            skipped.update(id(sub) for sub in ast.walk(node.slice))
    return [
        abs(float(n.value)) for n in ast.walk(tree)
        if id(n) not in skipped and isinstance(n, ast.Constant)
        and isinstance(n.value, (int, float)) and not isinstance(n.value, bool)
    ]


def _matches(number: Number, values: list[float]) -> bool:
    return any(
        math.isclose(c, v, rel_tol=1e-9) for c in number.candidates() for v in values
    )


# --- numbers in prose -----------------------------------------------------------------------------


def _parse_number(text: str) -> float:
    clean = re.sub(r"[,\u202f\u2009 ]", "", text).replace("−", "-")
    return float(clean)


def _quantity_maths(body: str) -> str | None:
    """The number in an inline maths span that is only a quantity (``10^{-9}``, ``3\\times10^{-8}``)."""
    compact = re.sub(r"\\[,;! ]|\s|\{|\}", "", body)
    match = re.fullmatch(r"(?:(\d+(?:\.\d+)?)(?:\\times|\\cdot|×))?10\^(-?\d+)|(\d+(?:\.\d+)?)", compact)
    if match is None:
        return None
    if match.group(3):
        return match.group(3)
    mantissa = match.group(1) or "1"
    return f"{mantissa}e{match.group(2)}"


def _prose(markdown: str) -> str:
    """Markdown without display maths, code, roles other than citations, link targets and markup."""
    text = DISPLAY_MATH_RE.sub(" ", markdown)
    text = FENCE_RE.sub(" ", text)
    text = DIRECTIVE_LINE_RE.sub(" ", text)

    def inline_maths(match: re.Match) -> str:
        quantity = _quantity_maths(match.group("body"))
        return f" {quantity} " if quantity else " MATHS "

    text = INLINE_MATH_RE.sub(inline_maths, text)

    def role(match: re.Match) -> str:
        name = match.group("name")
        if name.startswith("glue"):
            return f" {GLUED} "
        return " CITATION " if name.startswith("cite") else " ROLE "

    text = ROLE_RE.sub(role, text)
    text = CODE_SPAN_RE.sub(" CODE ", text)
    text = LINK_TARGET_RE.sub("]", text)
    return HTML_RE.sub(" ", text)


def _is_reference(prose: str, start: int) -> bool:
    before = prose[max(0, start - 20):start]
    word = re.search(r"([§\w]+)\.?\s*$", before)
    if word and word.group(1).lower() in REFERENCE_WORDS:
        return True
    # list markers: "(1)", "(2)" and "1." at the start of a line
    if re.search(r"\(\s*$", before) and re.match(r"\d\)", prose[start:start + 2]):
        return True
    return bool(re.search(r"(^|\n)\s*$", before)) and re.match(r"\d+\.\s", prose[start:start + 4]) is not None


def numbers_in(sentence: str) -> list[Number]:
    """The quantities a prose sentence (already passed through ``_prose``) carries."""
    found = [Number(GLUED, math.nan, glued=True) for _ in range(sentence.count(GLUED))]
    for match in NUMBER_RE.finditer(sentence):
        text = match.group("num")
        value = abs(_parse_number(text))
        if _is_year(value, text) or _is_reference(sentence, match.start()):
            continue
        found.append(Number(match.group(0).strip(), value, bool(match.group("pct"))))
    for match in MULTIPLIER_RE.finditer(sentence):
        for part in ("a", "b"):
            if match.group(part):
                value = float(NUMBER_WORDS[match.group(part).lower()])
                found.append(Number(f"{match.group(part)} ('{match.group(0)}')", value, spelled=True))
    return found


def sentences_of(markdown: str) -> list[str]:
    prose = _prose(markdown)
    parts = (re.sub(r"\s+", " ", p).strip() for p in SENTENCE_END_RE.split(prose))
    return [p for p in parts if p]


# --- the rule -------------------------------------------------------------------------------------


def check_notebook(nb: dict, name: str) -> NotebookReport:
    cells = nb["cells"]
    source = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]
    code = [i for i, c in enumerate(cells) if c["cell_type"] == "code"]
    settings = [v for i in code for v in setting_values(source[i])]
    report = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        before = [j for j in code if j < i][-NEARBY:]
        after = [j for j in code if j > i][:NEARBY]
        asserted = [v for j in before + after for v in asserted_values(source[j])]
        for text in sentences_of(source[i]):
            numbers = numbers_in(text)
            if not numbers:
                continue
            sentence = Sentence(name, i, cell.get("id", "?"), text, numbers)
            if "CITATION" not in text:
                sentence.unexplained = [
                    n for n in numbers
                    if not n.glued and not _matches(n, asserted) and (n.spelled or not _matches(n, settings))
                ]
            report.append(sentence)
    return NotebookReport(name, report)


def check_path(path: Path) -> NotebookReport:
    return check_notebook(json.loads(path.read_text(encoding="utf8")), path.name)


# --- tests ----------------------------------------------------------------------------------------


def _notebook(*cells: tuple[str, str]) -> dict:
    return {"cells": [{"cell_type": kind, "id": f"c{i}", "source": text}
                      for i, (kind, text) in enumerate(cells)]}


# Chapter 3, cell 20, on main aedde01: the run's AUC gap typed into the prose.
MAIN_SENTENCE = (
    "- **Pairs matter, and the factorization machine finds them.** FM and DeepFM beat logistic "
    "regression by\n  about 0.06 AUC and 0.04 in log loss at the small size (more at the large size), "
    "in every seed; the\n  assertions hold the notebook to a margin of 0.03 AUC and 0.02 log loss."
)
MAIN_CODE = (
    "for name in ('FM', 'DeepFM'):\n"
    "    assert (auc_a[name] - auc_a['LR']).min() > 0.03, name\n"
    "    assert (logloss_a['LR'] - logloss_a[name]).min() > 0.02, name\n"
)


def test_rule_fails_on_a_sentence_from_main():
    report = check_notebook(_notebook(("code", MAIN_CODE), ("markdown", MAIN_SENTENCE)), "03_deepfm")
    (failure,) = report.failures
    assert [n.text for n in failure.unexplained] == ["0.06", "0.04"]
    assert "03_deepfm cell 1 (id c1)" in failure.describe() and "about 0.06 AUC" in failure.describe()


def test_rule_accepts_a_glued_an_asserted_a_set_and_a_cited_number():
    prose = (
        "FM beats LR by {glue:text}`fm_gain:.3f` AUC. The margin is at least 0.03 AUC. "
        "We train for 4 epochs. The paper reports 0.8007 {cite:p}`guo2017deepfm`. "
        "The float32 sigmoid is $\\sigma(z) = 1$ from $z = 16.6$ in chapter 2 (2018)."
    )
    code = "EPOCHS = 4\nassert gain > 0.03\n"
    report = check_notebook(_notebook(("code", code), ("markdown", prose)), "toy")
    assert not report.failures, [s.describe() for s in report.failures]
    # the glued value, 0.03, 4 and 0.8007; maths, references and years are not numbers
    assert report.n_numbers == 4


def test_rule_reads_quantities_typeset_as_maths_and_spelled_multipliers():
    prose = "The errors are about $3\\times10^{-8}$. The models predict five to eight times too many clicks."
    report = check_notebook(_notebook(("code", "x = 1\n"), ("markdown", prose)), "toy")
    assert [[n.value for n in s.unexplained] for s in report.failures] == [[3e-8], [5.0, 8.0]]


def test_rule_does_not_take_an_assertion_far_away_or_a_printed_value_as_evidence():
    far = _notebook(("code", "assert gain > 0.06\n"), ("code", "a = 1\n"), ("code", "b = 2\n"),
                    ("markdown", "The gain is 0.06 AUC."))
    printed = _notebook(("code", "print(f'{gain:.2f}', 0.06)\n"), ("markdown", "The gain is 0.06 AUC."))
    assert len(check_notebook(far, "far").failures) == 1
    assert len(check_notebook(printed, "printed").failures) == 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_prose_numbers_are_glued_asserted_settings_or_cited(path):
    report = check_path(path)
    assert len(report.sentences) >= MIN_SENTENCES and report.n_numbers >= MIN_NUMBERS, (
        f"{path.name}: only {len(report.sentences)} sentences with {report.n_numbers} numbers "
        "inspected: the rule would pass vacuously (has the parser broken?)"
    )
    failures = report.failures
    if failures:
        pytest.fail(
            f"{path.name}: {len(failures)} sentences carry a number that is neither glued "
            "({glue:text}), asserted in a nearby code cell, a setting of the code, maths, nor "
            "cited:\n" + "\n".join(s.describe() for s in failures),
            pytrace=False,
        )


GLUE_ROLE_RE = re.compile(r"\{glue(?::\w+)?\}`(?P<body>[^`]+)`")
GLUE_CALL_RE = re.compile(r"\bglue\(\s*[\"'](?P<key>[^\"']+)[\"']")


def glued_keys(nb: dict) -> set[str]:
    """Keys that a notebook's code glues (``glue("key", value, ...)``)."""
    code = ("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    return {m.group("key") for text in code for m in GLUE_CALL_RE.finditer(text)}


def pasted_keys(markdown: str) -> list[tuple[str | None, str]]:
    """(other notebook or None, key) for every glue role of a page; the format spec is dropped."""
    pasted = []
    for match in GLUE_ROLE_RE.finditer(markdown):
        body = match.group("body")
        doc, _, key = body.rpartition("::")
        pasted.append((doc or None, key.split(":", 1)[0]))
    return pasted


PAGES = sorted((ROOT / "book").glob("*.md"))


@pytest.mark.parametrize("path", NOTEBOOKS + PAGES, ids=lambda p: p.name)
def test_every_pasted_glue_key_is_glued_by_its_notebook(path):
    """A {glue:text} role whose key no cell glues renders as nothing but a build warning.

    Keys are read from ``glue("key", ...)`` calls with a literal key, so that a reader (and this
    test) can find where each pasted number comes from.
    """
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf8"))
        markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
        own = glued_keys(nb)
    else:
        markdown, own = path.read_text(encoding="utf8"), set()
    missing = []
    for doc, key in pasted_keys(markdown):
        if doc is None:
            keys = own
        else:
            other = (path.parent / doc).resolve()
            keys = glued_keys(json.loads(other.read_text(encoding="utf8"))) if other.exists() else set()
        if key not in keys:
            missing.append(f"{doc + '::' if doc else ''}{key}")
    assert not missing, f"{path.name}: glue keys pasted but never glued: {missing}"


def test_glue_keys_are_read_from_the_roles_and_the_calls():
    nb = _notebook(("code", "glue('fm_gain', gain, display=False)\n"),
                   ("markdown", "{glue:text}`fm_gain:.3f` and {glue:text}`../x.ipynb::auc:.4f`"))
    assert glued_keys(nb) == {"fm_gain"}
    assert pasted_keys(nb["cells"][1]["source"]) == [(None, "fm_gain"), ("../x.ipynb", "auc")]


def write_report(target: Path) -> None:
    lines = [
        "# Sentences whose numbers are neither glued, asserted nearby, settings, maths nor cited",
        "# (tests/test_prose_numbers.py; regenerate: python tests/test_prose_numbers.py --report FILE).",
        "# Cells are 0-based indices. MATHS / CODE / ROLE stand for inline maths, code and roles.",
        "",
    ]
    for path in NOTEBOOKS:
        report = check_path(path)
        lines.append(
            f"## {path.name}: {len(report.failures)} failing sentences "
            f"(of {len(report.sentences)} sentences, {report.n_numbers} numbers inspected)"
        )
        lines += [s.describe() for s in report.failures] + [""]
    target.write_text("\n".join(lines), encoding="utf8")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--report":
        sys.exit("usage: python tests/test_prose_numbers.py --report FILE")
    write_report(Path(sys.argv[2]))
