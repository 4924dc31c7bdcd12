"""The chapter 3 self-checks accept the reference solutions and name the typical mistakes."""

from __future__ import annotations

import pytest
import torch

from rankcourse.exercises.ch03 import (
    check_ffm_interaction,
    check_fm_interaction,
    ffm_bruteforce,
    fm_cases,
)
from rankcourse.layers import FMInteraction, fm_pairwise_bruteforce


# --------------------------------------------------------------------------- reference solutions
def fm_interaction(v):
    square_of_sum = v.sum(dim=1).square()
    sum_of_squares = v.square().sum(dim=1)
    return 0.5 * (square_of_sum - sum_of_squares).sum(dim=-1)


def test_interaction_check_passes_the_reference_solution(capsys):
    check_fm_interaction(fm_interaction)
    assert "all 5 cases" in capsys.readouterr().out


def test_interaction_check_passes_the_package_layer_and_the_bruteforce_loop():
    check_fm_interaction(FMInteraction())
    check_fm_interaction(fm_pairwise_bruteforce)


def test_interaction_check_passes_a_float32_answer():
    check_fm_interaction(lambda v: fm_interaction(v.float()))


def test_cases_have_distinct_batch_field_and_dim_sizes():
    b, f, d = next(iter(fm_cases().values())).shape
    assert len({b, f, d}) == 3  # so a sum over the wrong axis gives a recognisably wrong shape


# --------------------------------------------------------------------------- typical wrong answers
@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda v: (v.sum(1).square() - v.square().sum(1)).sum(-1), "forget the 1/2"),
        (lambda v: 0.5 * (v.square().sum(1) - v.sum(1).square()).sum(-1), "sign is flipped"),
        (lambda v: 0.5 * v.sum(1).square().sum(-1), "sum of squares was not subtracted"),
        (lambda v: 0.5 * (v.sum(1).square() + v.square().sum(1)).sum(-1), "added instead of subtracted"),
        (lambda v: 0.5 * (v.sum(1).square() - v.sum(1)).sum(-1), "subtracted sum_i v_i (not squared)"),
        (lambda v: 0.5 * (v.sum(1).sum(-1).square() - v.square().sum((1, 2))), "summed over the embedding dimension before squaring"),
    ],
    ids=["no-half", "flipped", "no-subtraction", "added", "unsquared", "dim-summed-first"],
)
def test_interaction_check_names_the_value_mistake(wrong, message):
    with pytest.raises(AssertionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_fm_interaction(wrong)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda v: 0.5 * (v.sum(1).square() - v.square().sum(1)).sum(-1, keepdim=True), r"shape \(4, 1\).*keepdim"),
        (lambda v: 0.5 * (v.sum(1).square() - v.square().sum(1)), r"shape \(4, 5\).*embedding dimension"),
        (lambda v: 0.5 * (v.sum(1).square() - v.square().sum(1)).sum(), r"shape \(\).*sum over the batch"),
    ],
    ids=["keepdim", "no-sum-over-dim", "summed-over-batch"],
)
def test_interaction_check_names_the_shape_mistake(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_fm_interaction(wrong)


def test_interaction_check_catches_squeeze_on_a_batch_of_one():
    # Right for a batch of 4, but .squeeze() turns the (1, 1) result of a batch of one into ().
    def squeezed(v):
        return 0.5 * (v.sum(1).square() - v.square().sum(1)).sum(-1, keepdim=True).squeeze()

    with pytest.raises(AssertionError, match=r"shape \(\) on case 'batch of one.*squeeze"):
        check_fm_interaction(squeezed)


def test_interaction_check_reports_an_exception_with_the_case():
    def broken(v):
        raise NotImplementedError("write me")

    with pytest.raises(AssertionError, match="raised NotImplementedError: write me on case 'random batch"):
        check_fm_interaction(broken)


def test_interaction_check_rejects_a_result_without_gradient():
    def detached(v):
        return fm_interaction(v.detach())

    with pytest.raises(AssertionError, match="no gradient flows"):
        check_fm_interaction(detached)


def test_interaction_check_rejects_numpy_output():
    with pytest.raises(AssertionError, match="returned a ndarray"):
        check_fm_interaction(lambda v: fm_interaction(v).numpy())


def test_interaction_check_reports_an_unrecognised_error_with_the_gap():
    with pytest.raises(AssertionError, match="differs from the brute-force pair sum by up to"):
        check_fm_interaction(lambda v: fm_interaction(v) + 0.3)


# --------------------------------------------------------------------------- the field-aware FM exercise
def ffm_interaction(v):
    pair = (v * v.transpose(1, 2)).sum(-1)  # (B, F, F): <v[i, j], v[j, i]>
    return torch.triu(pair, diagonal=1).sum(dim=(1, 2))


def test_ffm_check_passes_the_reference_solution_and_the_brute_force(capsys):
    check_ffm_interaction(ffm_interaction)
    check_ffm_interaction(ffm_bruteforce)
    assert "all 4 cases" in capsys.readouterr().out


def test_ffm_with_one_shared_vector_per_id_is_the_plain_fm():
    v = fm_cases()["random batch (4 examples, 3 fields, dim 5)"]
    shared = v[:, :, None, :].expand(-1, -1, v.shape[1], -1)  # the same vector for every partner
    assert torch.allclose(ffm_bruteforce(shared), fm_pairwise_bruteforce(v))


def _pairs(v):
    return (v * v.transpose(1, 2)).sum(-1)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda v: _pairs(v).sum((1, 2)) - _pairs(v).diagonal(dim1=1, dim2=2).sum(-1), "counted twice"),
        (lambda v: (_pairs(v).sum((1, 2)) + _pairs(v).diagonal(dim1=1, dim2=2).sum(-1)) / 2,
         "i = j are included: a field"),
        (lambda v: _pairs(v).sum((1, 2)), "included and every pair"),
        (lambda v: torch.triu(v.square().sum(-1), diagonal=1).sum((1, 2)), "SAME vector index"),
        (lambda v: fm_pairwise_bruteforce(v.diagonal(dim1=1, dim2=2).transpose(1, 2)), "plain FM"),
        (lambda v: torch.triu(_pairs(v), diagonal=1), r"\(batch, F, F\) table"),
        (lambda v: ffm_interaction(v) + 0.1, "differs from the pair loop"),
        (lambda v: torch.as_tensor(ffm_interaction(v).detach().numpy()), "no gradient"),
    ],
    ids=["twice", "diagonal-half", "diagonal-twice", "same-index", "plain-fm", "table", "unnamed", "detached"],
)
def test_ffm_check_names_the_mistake(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_ffm_interaction(wrong)
