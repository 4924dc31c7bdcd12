"""The chapter 5 self-check accepts a correct MMoE mixture and names the typical mistakes."""

from __future__ import annotations

import re

import pytest
import torch

from rankcourse.exercises.ch05 import check_mmoe_mixture, reference_mmoe_mixture


def test_reference_solution_passes(capsys):
    check_mmoe_mixture(reference_mmoe_mixture)
    assert "all 5 cases pass" in capsys.readouterr().out


def test_einsum_solution_passes():
    check_mmoe_mixture(lambda f, a: torch.einsum("bte,beh->bth", torch.softmax(a, dim=-1), f))


def test_reference_matches_a_loop_over_tasks_and_experts():
    torch.manual_seed(0)
    f, a = torch.randn(3, 4, 5, dtype=torch.float64), torch.randn(3, 2, 4, dtype=torch.float64)
    out = reference_mmoe_mixture(f, a)
    for b in range(3):
        for k in range(2):
            g = torch.exp(a[b, k]) / torch.exp(a[b, k]).sum()
            torch.testing.assert_close(out[b, k], sum(g[i] * f[b, i] for i in range(4)))


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda f, a: torch.softmax(a, dim=1) @ f, "over the tasks (dim 1)"),
        (lambda f, a: torch.softmax(a, dim=0) @ f, "over the batch (dim 0)"),
        (lambda f, a: a @ f, "without a softmax"),
        (lambda f, a: (torch.softmax(a[:, :1], -1) @ f).expand(-1, a.shape[1], -1), "first task's gate"),
        (lambda f, a: (torch.softmax(a, -1).mean(1, keepdim=True) @ f).expand(-1, a.shape[1], -1), "same mixture"),
        (lambda f, a: torch.sigmoid(a) @ f, "sigmoid"),
        (lambda f, a: (torch.softmax(a, -1) @ f).transpose(1, 2), "swapped"),
        (lambda f, a: (torch.softmax(a, -1).unsqueeze(-1) * f.unsqueeze(1)), "not summed over the expert"),
        (lambda f, a: (torch.softmax(a, -1) @ f).sum(1), "its own mixture"),
        (lambda f, a: (torch.exp(a) / torch.exp(a).sum(-1, keepdim=True)) @ f, "overflows"),
        (lambda f, a: (torch.softmax(a, -1) @ f) + 0.1, "differs from softmax"),
    ],
    ids=["softmax-over-tasks", "softmax-over-batch", "no-softmax", "first-gate-for-all", "mean-gate",
         "sigmoid", "transposed", "not-summed", "summed-over-tasks", "unstable-exp", "offset"],
)
def test_typical_mistakes_are_named(wrong, message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_mmoe_mixture(wrong)


def test_in_place_changes_and_non_tensors_are_reported():
    def in_place(f, a):
        a.sub_(a.max())  # softmax is shift-invariant, so the value is right, but the caller's tensor changed
        return torch.softmax(a, -1) @ f

    with pytest.raises(AssertionError, match="in place"):
        check_mmoe_mixture(in_place)
    with pytest.raises(AssertionError, match="expected a torch.Tensor"):
        check_mmoe_mixture(lambda f, a: (torch.softmax(a, -1) @ f).tolist())


def test_an_exception_in_the_students_code_is_reported_with_the_case():
    def broken(f, a):
        raise NotImplementedError("write me")

    with pytest.raises(AssertionError, match="raised NotImplementedError: write me"):
        check_mmoe_mixture(broken)
