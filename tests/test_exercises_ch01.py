"""The Chapter 1 self-checks pass the reference solutions and name the mistake in typical wrong answers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rankcourse import losses
from rankcourse.exercises.ch01 import check_downsampling_correction, check_focal_grad


# ----------------------------------------------------------------------------- focal loss gradient
def focal_grad_solution(logits, labels, alpha=0.25, gamma=2.0):
    """The notebook's reference solution: stable, per element."""
    p, q = torch.sigmoid(logits), torch.sigmoid(-logits)
    log_p, log_q = F.logsigmoid(logits), F.logsigmoid(-logits)
    pos = alpha * torch.exp(gamma * log_q) * (gamma * p * log_p - q)
    neg = (1 - alpha) * torch.exp(gamma * log_p) * (p - gamma * q * log_q)
    return labels * pos + (1 - labels) * neg


def test_focal_check_passes_reference_solution(capsys):
    check_focal_grad(focal_grad_solution)
    assert "all 5 cases pass" in capsys.readouterr().out


def test_focal_check_passes_package_gradient_without_reduction():
    check_focal_grad(lambda z, y, a, g: losses.focal_grad(z, y, a, g, reduction="none"))


def test_focal_check_passes_autograd_of_the_loss():
    def via_autograd(z, y, alpha, gamma):
        z = z.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(losses.focal_loss(z, y, alpha, gamma, reduction="sum"), z)
        return g

    check_focal_grad(via_autograd)


def test_focal_check_names_a_flipped_sign():
    with pytest.raises(AssertionError, match="opposite sign"):
        check_focal_grad(lambda z, y, a, g: -focal_grad_solution(z, y, a, g))


def test_focal_check_names_the_gradient_of_the_mean():
    with pytest.raises(AssertionError, match="gradient of the MEAN"):
        check_focal_grad(lambda z, y, a, g: focal_grad_solution(z, y, a, g) / z.numel())


def test_focal_check_names_a_constant_modulating_factor():
    def constant_factor(z, y, alpha, gamma):
        p = torch.sigmoid(z)
        p_t = torch.where(y == 1, p, 1 - p)
        alpha_t = torch.where(y == 1, torch.full_like(z, alpha), torch.full_like(z, 1 - alpha))
        return alpha_t * (1 - p_t) ** gamma * (p - y)

    with pytest.raises(AssertionError, match="modulating factor"):
        check_focal_grad(constant_factor)


def test_focal_check_names_swapped_alpha():
    with pytest.raises(AssertionError, match="swapped"):
        check_focal_grad(lambda z, y, a, g: focal_grad_solution(z, y, 1 - a, g))


def test_focal_check_names_a_missing_alpha():
    with pytest.raises(AssertionError, match="without the alpha_t weight"):
        check_focal_grad(lambda z, y, a, g: 2 * focal_grad_solution(z, y, 0.5, g))


def test_focal_check_names_the_derivative_with_respect_to_p():
    def d_by_dp(z, y, alpha, gamma):
        p = torch.sigmoid(z)
        return focal_grad_solution(z, y, alpha, gamma) / (p * (1 - p))

    with pytest.raises(AssertionError, match="respect to the probability"):
        check_focal_grad(d_by_dp)


def test_focal_check_flags_a_naive_formula_at_extreme_logits():
    def naive(z, y, alpha, gamma):  # right formula, but log(sigmoid) overflows to -inf at |z| >~ 37
        p = torch.sigmoid(z)
        pos = alpha * (1 - p) ** gamma * (gamma * p * torch.log(p) - (1 - p))
        neg = (1 - alpha) * p**gamma * (p - gamma * (1 - p) * torch.log(1 - p))
        return y * pos + (1 - y) * neg

    with pytest.raises(AssertionError, match="logsigmoid"):
        check_focal_grad(naive)


def test_focal_check_names_a_reduced_output_and_a_wrong_shape():
    with pytest.raises(AssertionError, match="single number"):
        check_focal_grad(lambda z, y, a, g: focal_grad_solution(z, y, a, g).sum())
    with pytest.raises(AssertionError, match=r"shape \(14, 1\)"):
        check_focal_grad(lambda z, y, a, g: focal_grad_solution(z, y, a, g)[:, None])


def test_focal_check_reports_an_unwritten_stub():
    def stub(z, y, alpha, gamma):
        raise NotImplementedError

    with pytest.raises(AssertionError, match="not written yet"):
        check_focal_grad(stub)


def test_focal_check_reports_an_unrecognised_error_with_the_worst_element():
    with pytest.raises(AssertionError, match=r"differs from the reference by .* at z="):
        check_focal_grad(lambda z, y, a, g: focal_grad_solution(z, y, a, g) + 0.01 * z)


# ----------------------------------------------------------------------------- down-sampling correction
def downsampling_solution(logits, keep_rate):
    return logits + math.log(keep_rate)


def test_downsampling_check_passes_reference_and_package(capsys):
    check_downsampling_correction(downsampling_solution)
    check_downsampling_correction(losses.negative_sampling_correction)
    assert "all 5 cases pass" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda z, r: z - math.log(r), "wrong way"),
        (lambda z, r: torch.sigmoid(z + math.log(r)), "returned probabilities"),
        (lambda z, r: z * r, "multiplied the logit"),
        (lambda z, r: torch.logit(torch.sigmoid(z) * r), "multiplies the ODDS"),
        (lambda z, r: z + math.log(1 - r) if r < 1 else z, r"log\(1 - keep_rate\)"),
        (lambda z, r: z, "unchanged"),
        (lambda z, r: z + 2 * math.log(r), r"differs from z \+ log\(keep_rate\)"),
        (lambda z, r: (z + math.log(r)).sum(), "shape"),
    ],
)
def test_downsampling_check_names_typical_mistakes(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_downsampling_correction(wrong)


def test_downsampling_check_flags_overflow_through_probabilities():
    def via_probabilities(z, r):  # float32 probabilities round to 1 at z = 25, logit(1) = inf
        p = torch.sigmoid(z.float())
        odds = p / (1 - p) * r
        return torch.log(odds).double()

    with pytest.raises(AssertionError, match="non-finite"):
        check_downsampling_correction(via_probabilities)
