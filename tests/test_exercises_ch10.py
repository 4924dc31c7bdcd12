"""Chapter 10's self-checks accept right answers and name the typical wrong ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rankcourse.exercises.ch10 import (check_corrected_probability, check_cross_once, check_latency_line,
                                       check_shared_fm, reference_corrected_probability, reference_cross_once,
                                       reference_shared_fm)


def fm(v):
    s = v.sum(-2)
    return 0.5 * (s.square() - v.square().sum(-2)).sum(-1)


def test_shared_fm_check_accepts_the_reference_and_the_full_rows():
    check_shared_fm(reference_shared_fm)
    check_shared_fm(lambda vu, vi: fm(torch.cat([vu.expand(vi.shape[0], -1, -1), vi], 1)))


@pytest.mark.parametrize("wrong, message", [
    (lambda vu, vi: fm(vu) + fm(vi), "cross term .* missing"),
    (lambda vu, vi: fm(vu) + fm(vi) + 2 * (vi.sum(1) @ vu.sum(0)), "counted twice"),
    (lambda vu, vi: fm(vi) + vi.sum(1) @ vu.sum(0), "user's own pairs"),
    (lambda vu, vi: fm(vu).expand(vi.shape[0]), "wrong FM values"),
    (lambda vu, vi: fm(vi)[:, None], "shape"),
    (lambda vu, vi: 1 / 0, "ZeroDivisionError"),
])
def test_shared_fm_check_names_the_mistake(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_shared_fm(wrong)


def test_corrected_probability_check_accepts_the_reference_and_the_logit_form():
    check_corrected_probability(reference_corrected_probability)
    check_corrected_probability(lambda p, r: 1 / (1 + np.exp(-(np.log(p / (1 - p)) + np.log(r)))))


@pytest.mark.parametrize("wrong, message", [
    (lambda p, r: p * r, "multiplied by keep"),
    (lambda p, r: (p / (1 - p) / r) / (1 + p / (1 - p) / r), "divided by keep"),
    (lambda p, r: p, "wrong values for keep=0.1"),
])
def test_corrected_probability_check_names_the_mistake(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_corrected_probability(wrong)


def test_latency_line_check_accepts_least_squares():
    check_latency_line(lambda n, ms: tuple(np.polyfit(n, ms, 1)[::-1]))


@pytest.mark.parametrize("wrong, message", [
    (lambda n, ms: tuple(np.polyfit(n, ms, 1)), "swapped"),
    (lambda n, ms: (0.0, ms[-1] / n[-1]), "origin"),
    (lambda n, ms: 3.0, "two numbers"),
])
def test_latency_line_check_names_the_mistake(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_latency_line(wrong)


@pytest.mark.parametrize("check, wrong, message", [
    (check_shared_fm, lambda vu, vi: fm(vu) + fm(vi), "cross term .* missing"),
    (check_corrected_probability, lambda p, r: p * r, "multiplied by keep"),
    (check_latency_line, lambda n, ms: (0.0, ms[-1] / n[-1]), "origin"),
    (check_latency_line, lambda n, ms: tuple(np.polyfit(n, ms, 1)), "swapped"),
])
def test_hidden_cases_name_the_same_mistakes(check, wrong, message):
    with pytest.raises(AssertionError, match=message):
        check(wrong, seed=12345)


def cross_parts(eu, ei, w, b):
    x0 = torch.cat([eu.expand(ei.shape[0], -1), ei], 1)
    return x0, w[:, :eu.shape[0]] @ eu + b


def test_cross_once_check_accepts_the_reference_and_the_full_rows():
    check_cross_once(reference_cross_once)

    def full_rows(eu, ei, w, b):
        x0, once = cross_parts(eu, ei, w, b)
        return once, x0 * (x0 @ w.T + b) + x0

    check_cross_once(full_rows)


def with_once(x1_of):
    """An answer whose once-per-request vector is right and whose x1 is ``x1_of(x0, once, eu, ei, w, b)``."""
    def answer(eu, ei, w, b):
        x0, once = cross_parts(eu, ei, w, b)
        return once, x1_of(x0, once, eu, ei, w, b)
    return answer


def user_coordinates_once(x0, once, eu, ei, w, b):
    x1 = x0 * (x0 @ w.T + b) + x0
    x1[:, :eu.shape[0]] = eu * once[:eu.shape[0]] + eu
    return x1


CROSS_MISTAKES = [
    (with_once(lambda x0, once, eu, ei, w, b: x0 * (x0 @ w.T + b)), "residual"),
    (with_once(lambda x0, once, eu, ei, w, b: x0 * (x0 @ w.T) + x0), "bias b is missing"),
    (with_once(lambda x0, once, eu, ei, w, b: x0 * once + x0), "candidate's columns"),
    (with_once(user_coordinates_once), "user's coordinates of x1 were computed once"),
    (with_once(lambda x0, once, eu, ei, w, b: x0 * (x0 @ w + b) + x0), "transposed"),
    (lambda eu, ei, w, b: (w[:, :eu.shape[0]] @ eu, reference_cross_once(eu, ei, w, b)[1]), "bias b is missing"),
    (lambda eu, ei, w, b: (w[:eu.shape[0], :eu.shape[0]] @ eu, None), "full width"),
    (lambda eu, ei, w, b: reference_cross_once(eu, ei, w, b)[1], "two tensors"),
    (with_once(lambda x0, once, eu, ei, w, b: x0[:, :1]), "x1 must have shape"),
]


@pytest.mark.parametrize("wrong, message", CROSS_MISTAKES, ids=[m for _, m in CROSS_MISTAKES])
@pytest.mark.parametrize("seed", [None, 2468])
def test_cross_once_check_names_the_mistake(wrong, message, seed):
    with pytest.raises(AssertionError, match=message):
        check_cross_once(wrong, seed=seed)
