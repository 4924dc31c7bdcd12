"""The chapter 6 self-check (attention over a behaviour sequence) accepts right modules and rejects
typical wrong answers with a message that names the mistake."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rankcourse.exercises.ch06 import check_behaviour_pooling


# ----------------------------------------------------------------------------- behaviour pooling
class DinPooling(nn.Module):
    """Reference: DIN's activation unit with unnormalised, masked weights."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(4 * dim, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, history, candidate, mask):
        c = candidate.unsqueeze(1).expand_as(history)
        w = self.score(torch.cat([history, c, history - c, history * c], -1)).squeeze(-1)
        w = w * mask.to(w.dtype)
        return (w.unsqueeze(-1) * history).sum(1)


class SoftmaxNoGuard(nn.Module):
    """Scaled dot-product attention with -inf masking and no guard for empty rows."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(dim, dim)

    def forward(self, history, candidate, mask):
        s = (history @ self.query(candidate).unsqueeze(-1)).squeeze(-1)
        s = s.masked_fill(~mask, float("-inf"))
        return (torch.softmax(s, 1).unsqueeze(-1) * history).sum(1)


class SoftmaxGuarded(SoftmaxNoGuard):
    def forward(self, history, candidate, mask):
        s = (history @ self.query(candidate).unsqueeze(-1)).squeeze(-1)
        s = s.masked_fill(~mask, float("-inf"))
        w = torch.softmax(s.masked_fill(~mask.any(1, keepdim=True), 0.0), 1) * mask
        return (w.unsqueeze(-1) * history).sum(1)


class MeanPooling(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)

    def forward(self, history, candidate, mask):
        m = mask.to(history.dtype).unsqueeze(-1)
        return self.proj((history * m).sum(1) / m.sum(1).clamp(min=1))


class IgnoresMask(DinPooling):
    def forward(self, history, candidate, mask):
        return super().forward(history, candidate, torch.ones_like(mask))


class KeepsTimeAxis(DinPooling):
    def forward(self, history, candidate, mask):
        c = candidate.unsqueeze(1).expand_as(history)
        w = self.score(torch.cat([history, c, history - c, history * c], -1)) * mask.unsqueeze(-1)
        return w * history


class DetachesHistory(DinPooling):
    def forward(self, history, candidate, mask):
        return super().forward(history.detach(), candidate, mask)


@pytest.mark.parametrize("module", [DinPooling, SoftmaxGuarded])
def test_pooling_check_passes_correct_modules(module, capsys):
    check_behaviour_pooling(module)
    assert "pass" in capsys.readouterr().out


@pytest.mark.parametrize(
    "module, message",
    [
        (SoftmaxNoGuard, "EMPTY history"),
        (MeanPooling, "does not depend on the candidate"),
        (IgnoresMask, "PADDED positions"),
        (KeepsTimeAxis, "sum \\(or average\\) over the history axis"),
        (DetachesHistory, "no gradient reaches"),
    ],
)
def test_pooling_check_names_the_mistake(module, message):
    with pytest.raises(AssertionError, match=message):
        check_behaviour_pooling(module)


def test_pooling_check_rejects_a_factory_that_returns_no_module():
    with pytest.raises(AssertionError, match="expected an nn.Module"):
        check_behaviour_pooling(lambda dim: (lambda h, c, m: h.sum(1)))


def test_pooling_check_draws_other_cases_under_a_grading_seed():
    # The same right answer passes the public and the hidden cases ...
    for seed in (None, 1, 987_654_321):
        check_behaviour_pooling(DinPooling, seed=seed)
    # ... and a wrong one fails both (the mistakes do not depend on the values drawn).
    with pytest.raises(AssertionError, match="EMPTY history"):
        check_behaviour_pooling(SoftmaxNoGuard, seed=5)


def test_the_chapter_solution_defines_the_answer_the_grader_reads():
    # The grader saves the object bound to the exercise's answer name. A solution that passes
    # something else to the check (the package's TargetAttentionPooling) leaves the student's stub
    # in place, and the chapter's own solution is graded "not attempted".
    import json
    import re
    from pathlib import Path

    from rankcourse.grade.exercises import graded_exercises

    path = Path(__file__).resolve().parents[1] / "notebooks" / "06_tuning.ipynb"
    notebook = json.loads(path.read_text(encoding="utf8"))
    exercises = {e.label: e for e in graded_exercises(notebook)}
    assert exercises["ch06-ex-attention"].answer == "UserBehaviourPooling"
    solutions = ["".join(c["source"]) for c in notebook["cells"]
                 if "solution" in c.get("metadata", {}).get("tags", [])]
    assert any(re.search(r"^class UserBehaviourPooling\(nn\.Module\)", s, re.MULTILINE) for s in solutions)
    assert any(re.search(r"^check_behaviour_pooling\(UserBehaviourPooling\)", s, re.MULTILINE) for s in solutions)
