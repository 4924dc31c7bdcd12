"""What a student is told about a failed check, at three levels chosen by the instructor.

* ``practice``: the check's whole message, as in the notebook (expected values, formulas).
* ``hints`` (the default when grading): the message cut into clauses, keeping only those that
  show no number with a decimal point, no ``=`` and no formula (a function call, an operator
  between terms): what failed and on which case, and the name of the recognised mistake, but not
  the expected value or the formula.
* ``verdict``: nothing beyond pass / fail.
"""

from __future__ import annotations

import re

LEVELS = ("practice", "hints", "verdict")

# Clause boundaries of the checks' messages, and what gives an answer away inside a clause.
_CLAUSES = re.compile(r"(?<=[.;:!?])\s+|\s+--\s+")
_CALLS = re.compile(r"\w+\([^()]*\)")  # mean(p - y), sum(...): formulas
_PARENTHESES = re.compile(r"\s*\([^()]*\)")  # asides hold the details: shapes, values, formulas
_POWERS = re.compile(r"\S*\^[\w()]*")
_CASE = re.compile(r"case '([^']*)'|case \"([^\"]*)\"")
_REVEALS = re.compile(
    r"expected|got |\bgot\b|=|\d\.\d|\d[eE][-+]?\d|\b(sum|mean|exp|log|sqrt|softmax|sigmoid|logsigmoid|"
    r"einsum|unique|sign|logit|logaddexp)\s*\(|[A-Za-z0-9_)\]]\s*[-+*/^]\s*[A-Za-z0-9_(]|\s[-+*/^]\s|"
    r"[-+*/^]\s*[.,;:]?$|\bnan\b|\binf\b",
    re.IGNORECASE)


def hint(message: str) -> str:
    """``message`` without the clauses that give away an expected value or a formula."""
    cases = [m.group(0) for m in _CASE.finditer(message)]  # the case's name is kept whole
    text = _CASE.sub(lambda m: f"case <{cases.index(m.group(0))}>", message.strip())
    text = _POWERS.sub("", text)
    while _CALLS.search(text) or _PARENTHESES.search(text):
        text = _PARENTHESES.sub("", _CALLS.sub("", text))
    text = re.sub(r"\s+([.,;:])", r"\1", re.sub(r"  +", " ", text))
    text = re.sub(r"[,;:]+(?=[.;:])", "", text)
    kept = []
    for clause in _CLAUSES.split(text):
        clause = clause.strip()
        if clause and not _REVEALS.search(clause):
            kept.append(re.sub(r"case <(\d+)>", lambda m: cases[int(m.group(1))], clause.rstrip(".;:,")))
    if kept:
        return ". ".join(kept) + "."
    case = _CASE.search(message)
    return f"wrong on case '{case.group(1) or case.group(2)}'." if case else "the check failed."


def feedback(message: str, level: str) -> str:
    """The feedback a student gets for a check's ``message`` at ``level`` (one of :data:`LEVELS`)."""
    if level not in LEVELS:
        raise ValueError(f"feedback level must be one of {LEVELS}, got {level!r}")
    if level == "practice":
        return message
    return hint(message) if level == "hints" else ""
