"""The Chapter 1 self-checks pass the reference solutions and name the mistake in typical wrong answers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rankcourse import losses
from rankcourse.exercises.ch01 import (
    check_bias_newton_step,
    check_focal_grad,
    check_prior_shift_ratio,
    check_smoothed_bce_grad,
    reference_bias_newton_step,
    reference_prior_shift_ratio,
    reference_smoothed_bce_grad,
)


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


# ----------------------------------------------------------------------------- Newton step on the bias
def bias_step_solution(logits, labels):
    p = torch.sigmoid(logits)
    return (labels - p).sum() / (p * (1 - p)).sum()


def test_bias_step_check_passes_the_reference_and_the_solution(capsys):
    check_bias_newton_step(bias_step_solution)
    check_bias_newton_step(reference_bias_newton_step)
    assert "all 4 cases pass" in capsys.readouterr().out


def test_bias_step_reference_equals_newton_with_autograd_derivatives():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(50, generator=gen, dtype=torch.float64) - 2
    y = torch.bernoulli(torch.sigmoid(z), generator=gen)
    delta = torch.zeros((), dtype=torch.float64, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(z + delta, y)
    (g,) = torch.autograd.grad(loss, delta, create_graph=True)
    (h,) = torch.autograd.grad(g, delta)
    assert torch.allclose(reference_bias_newton_step(z, y), -g / h, atol=1e-12)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda z, y: -bias_step_solution(z, y), "sign is flipped"),
        (lambda z, y: (y - torch.sigmoid(z)).mean(), "plain gradient step"),
        (lambda z, y: (y - torch.sigmoid(z)).sum() / torch.sigmoid(z).sum(), "curvature is wrong"),
        (lambda z, y: torch.logit(y.mean().clamp(1e-6, 1 - 1e-6)) - torch.logit(torch.sigmoid(z).mean()),
         "not the Newton step"),
        (lambda z, y: (y - torch.sigmoid(z)).sum() / (torch.sigmoid(z) * torch.sigmoid(-z)).mean(),
         "times too large"),
        (lambda z, y: (y - torch.sigmoid(z)).mean() / (torch.sigmoid(z) * torch.sigmoid(-z)).sum(),
         "times too small"),
        (lambda z, y: z + bias_step_solution(z, y), "shifted logits"),
        (lambda z, y: 1.1 * bias_step_solution(z, y), "expected"),
    ],
    ids=["sign", "gradient-step", "curvature-p", "logit-of-means", "sum-over-mean", "mean-over-sum",
         "returns-logits", "unrecognised"],
)
def test_bias_step_check_names_the_mistake(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_bias_newton_step(wrong)


def test_bias_step_check_flags_an_overflowing_sigmoid():
    def unstable(z, y):
        p = torch.exp(z) / (1 + torch.exp(z))
        return (y - p).sum() / (p * (1 - p)).sum()

    with pytest.raises(AssertionError, match="torch.sigmoid"):
        check_bias_newton_step(unstable)


def test_bias_step_check_reports_an_unwritten_stub():
    def stub(z, y):
        raise NotImplementedError

    with pytest.raises(AssertionError, match="not written yet"):
        check_bias_newton_step(stub)


# ----------------------------------------------------------------------------- label smoothing
def test_smoothing_check_passes_the_reference_and_autograd(capsys):
    check_smoothed_bce_grad(reference_smoothed_bce_grad)

    def via_autograd(z, y, eps):
        z = z.clone().requires_grad_(True)
        t = (1 - eps) * y + eps / 2
        (g,) = torch.autograd.grad(F.binary_cross_entropy_with_logits(z, t, reduction="sum"), z)
        return g

    check_smoothed_bce_grad(via_autograd)
    assert "all 5 cases pass" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, slip", [
    (lambda z, y, e: torch.sigmoid(z) - y, "plain cross-entropy"),
    (lambda z, y, e: torch.sigmoid(z) - ((1 - e) * y + e), "eps / 2 each"),
    (lambda z, y, e: torch.sigmoid(z) - (y + e / 2), "forgets the factor"),
    (lambda z, y, e: torch.sigmoid(z) - (1 - e) * y, "receives"),
    (lambda z, y, e: -reference_smoothed_bce_grad(z, y, e), "opposite sign"),
    (lambda z, y, e: reference_smoothed_bce_grad(z, y, e) / z.numel(), "MEAN loss"),
    (lambda z, y, e: reference_smoothed_bce_grad(z, y, e).sum(), "single number"),
])
@pytest.mark.parametrize("seed", [None, 20261206], ids=["public", "hidden"])
def test_smoothing_check_names_the_slip(wrong, slip, seed):
    # the hidden cases keep the public ones' roles, so the same slips are recognised
    with pytest.raises(AssertionError, match=slip):
        check_smoothed_bce_grad(wrong, seed=seed)


def test_smoothing_check_says_when_not_written():
    def unwritten(z, y, e):
        raise NotImplementedError

    with pytest.raises(AssertionError, match="not written yet"):
        check_smoothed_bce_grad(unwritten)


# ----------------------------------------------------------------------------- prior shift
def test_prior_shift_check_passes_the_reference(capsys):
    check_prior_shift_ratio(reference_prior_shift_ratio)
    assert "all 5 cases pass" in capsys.readouterr().out


def test_prior_shift_reference_is_the_ratio_of_odds():
    assert reference_prior_shift_ratio(0.02, 0.05) == pytest.approx((0.05 / 0.95) / (0.02 / 0.98))
    assert reference_prior_shift_ratio(0.3, 0.3) == 1.0


@pytest.mark.parametrize("wrong, slip", [
    (lambda rt, rs: rs / rt, "ratio of the click RATES"),
    (lambda rt, rs: 1 / reference_prior_shift_ratio(rt, rs), "upside down"),
    (lambda rt, rs: math.log(reference_prior_shift_ratio(rt, rs)), "log of the answer"),
    (lambda rt, rs: (1 - rt) / (1 - rs), "non-click shares"),
    (lambda rt, rs: "2.5x", "expected one"),
])
@pytest.mark.parametrize("seed", [None, 20261206], ids=["public", "hidden"])
def test_prior_shift_check_names_the_slip(wrong, slip, seed):
    with pytest.raises(AssertionError, match=slip):
        check_prior_shift_ratio(wrong, seed=seed)
