"""Losses on logits, their analytic gradients, prior correction and task weighting."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rankcourse.gradcheck import compare_gradients, numerical_gradient
from rankcourse.losses import (
    bce_grad,
    bce_with_logits,
    focal_grad,
    focal_loss,
    negative_sampling_correction,
    prior_correction,
    weighted_bce_grad,
    weighted_bce_with_logits,
)
from rankcourse.task_weighting import UncertaintyWeighting, weighted_task_loss

# Logits from moderate to extreme (sigma(30) = 1 - 9e-14), each with both labels.
Z = torch.tensor([-30.0, -12.0, -3.0, -0.4, 0.0, 0.7, 2.5, 11.0, 30.0], dtype=torch.float64)
LOGITS = torch.cat([Z, Z])
LABELS = torch.cat([torch.ones_like(Z), torch.zeros_like(Z)])

CASES = [
    ("bce", bce_with_logits, bce_grad, {}),
    ("wbce", weighted_bce_with_logits, weighted_bce_grad, {"w1": 3.0, "w0": 0.5}),
    ("focal", focal_loss, focal_grad, {"alpha": 0.25, "gamma": 2.0}),
    ("focal_g0.5", focal_loss, focal_grad, {"alpha": 0.6, "gamma": 0.5}),
    ("focal_g0", focal_loss, focal_grad, {"alpha": 0.5, "gamma": 0.0}),
]


def _random(n=64, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=g, dtype=dtype) * 3, torch.randint(0, 2, (n,), generator=g).to(dtype)


# ----------------------------------------------------------------------------- values
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_matches_torch(reduction):
    z, y = _random()
    assert torch.allclose(bce_with_logits(z, y, reduction), F.binary_cross_entropy_with_logits(z, y, reduction=reduction))


def test_weighted_bce_with_unit_weights_is_bce_and_matches_pos_weight():
    z, y = _random(seed=1)
    assert torch.allclose(weighted_bce_with_logits(z, y, 1.0, 1.0), bce_with_logits(z, y))
    ref = F.binary_cross_entropy_with_logits(z, y, pos_weight=torch.tensor(4.0, dtype=z.dtype))
    assert torch.allclose(weighted_bce_with_logits(z, y, w1=4.0, w0=1.0), ref)


def test_focal_with_gamma_0_is_weighted_bce_and_half_bce_at_alpha_half():
    z, y = _random(seed=2)
    assert torch.allclose(focal_loss(z, y, alpha=0.5, gamma=0.0), 0.5 * bce_with_logits(z, y))
    assert torch.allclose(focal_loss(z, y, alpha=0.3, gamma=0.0, reduction="none"),
                          weighted_bce_with_logits(z, y, w1=0.3, w0=0.7, reduction="none"))


def test_focal_matches_the_probability_formula_and_down_weights_easy_examples():
    z, y = _random(seed=3)
    p = torch.sigmoid(z)
    pt = torch.where(y == 1, p, 1 - p)
    at = torch.where(y == 1, torch.tensor(0.25, dtype=z.dtype), torch.tensor(0.75, dtype=z.dtype))
    naive = -at * (1 - pt) ** 2 * torch.log(pt)
    assert torch.allclose(focal_loss(z, y, reduction="none"), naive)
    easy, hard = torch.tensor([4.0]), torch.tensor([-1.0])
    one = torch.ones(1)
    ratio_easy = focal_loss(easy, one, 0.5, 2.0) / bce_with_logits(easy, one)
    ratio_hard = focal_loss(hard, one, 0.5, 2.0) / bce_with_logits(hard, one)
    assert ratio_easy < 0.01 < 0.1 < ratio_hard


@pytest.mark.parametrize("name, loss, grad, kw", CASES, ids=[c[0] for c in CASES])
def test_losses_stay_finite_at_extreme_logits_in_float32(name, loss, grad, kw):
    z = torch.tensor([-1000.0, -40.0, 40.0, 1000.0])
    for y in (torch.zeros(4), torch.ones(4)):
        assert torch.isfinite(loss(z, y, **kw, reduction="none")).all()
        assert torch.isfinite(grad(z, y, **kw, reduction="none")).all()
    # Confidently wrong costs about |z|; confidently right costs about 0.
    assert bce_with_logits(torch.tensor([-1000.0]), torch.ones(1)).item() == pytest.approx(1000.0)
    assert bce_with_logits(torch.tensor([1000.0]), torch.ones(1)).item() == 0.0


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name, loss, grad, kw", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_analytic_gradient_matches_autograd_at_extreme_logits(name, loss, grad, kw, reduction):
    z = LOGITS.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(loss(z, LABELS, **kw, reduction=reduction), z)
    analytic = grad(LOGITS, LABELS, **kw, reduction=reduction)
    assert analytic.shape == LOGITS.shape and analytic.dtype == torch.float64
    compare_gradients(analytic, auto).assert_close(atol=1e-15, rtol=1e-12)


@pytest.mark.parametrize("name, loss, grad, kw", CASES, ids=[c[0] for c in CASES])
def test_analytic_gradient_matches_central_differences_at_extreme_logits(name, loss, grad, kw):
    # One element at a time, so the rounding error scales with that element's loss only.
    for z, y in zip(LOGITS, LABELS):
        numeric = numerical_gradient(lambda t: loss(t, y.reshape(1), **kw, reduction="sum"), z.reshape(1), eps=1e-6)
        analytic = grad(z.reshape(1), y.reshape(1), **kw, reduction="sum")
        compare_gradients(analytic, numeric).assert_close(atol=1e-8, rtol=1e-6)
    # The gradient of sigmoid(30) - 1 = -9.4e-14 is resolved, not rounded to 0.
    assert bce_grad(torch.tensor([30.0], dtype=torch.float64), torch.ones(1, dtype=torch.float64), "sum").item() == \
        pytest.approx(-math.exp(-30) / (1 + math.exp(-30)), rel=1e-12)


def test_gradient_of_none_reduction_is_per_element():
    z, y = _random(8, seed=4)
    assert torch.allclose(bce_grad(z, y, "none"), torch.sigmoid(z) - y)
    assert torch.allclose(bce_grad(z, y, "mean"), (torch.sigmoid(z) - y) / 8)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: bce_with_logits(torch.zeros(3), torch.tensor([0.0, 0.5, 1.0])), ValueError, "0.5"),
        (lambda: bce_grad(torch.zeros(3), torch.tensor([0.0, 2.0, 1.0])), ValueError, "2.0"),
        (lambda: focal_loss(torch.zeros(2), torch.tensor([-1.0, 0.0])), ValueError, "-1.0"),
        (lambda: bce_with_logits(torch.zeros(2), torch.tensor([float("nan"), 0.0])), ValueError, "nan"),
        (lambda: bce_with_logits(torch.zeros(3), torch.zeros(3, 1)), ValueError, r"\(3,\) and \(3, 1\)"),
        (lambda: bce_with_logits(torch.tensor([0.0, float("inf")]), torch.zeros(2)), ValueError, "inf"),
        (lambda: bce_with_logits(torch.zeros(0), torch.zeros(0)), ValueError, "empty"),
        (lambda: bce_with_logits(torch.zeros(2), torch.zeros(2), "avg"), ValueError, "avg"),
        (lambda: bce_with_logits(torch.zeros(2, dtype=torch.long), torch.zeros(2)), TypeError, "int64"),
        (lambda: bce_with_logits([0.0, 1.0], torch.zeros(2)), TypeError, "list"),
        (lambda: focal_loss(torch.zeros(2), torch.zeros(2), gamma=-0.5), ValueError, "-0.5"),
        (lambda: focal_grad(torch.zeros(2), torch.zeros(2), alpha=1.0), ValueError, "1.0"),
        (lambda: focal_loss(torch.zeros(2), torch.zeros(2), alpha=0.0), ValueError, "alpha"),
        (lambda: weighted_bce_with_logits(torch.zeros(2), torch.zeros(2), w1=-2.0), ValueError, "-2.0"),
        (lambda: weighted_bce_grad(torch.zeros(2), torch.zeros(2), w0=float("nan")), ValueError, "w0"),
        (lambda: weighted_bce_with_logits(torch.zeros(2), torch.zeros(2), 0.0, 0.0), ValueError, "both 0"),
        (lambda: prior_correction(torch.zeros(2), w1=0.0), ValueError, "w1"),
        (lambda: negative_sampling_correction(torch.zeros(2), 1.5), ValueError, "1.5"),
    ],
)
def test_bad_input_raises_naming_the_value(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_validate_false_skips_the_value_checks_only():
    z, y = _random(seed=5)
    assert torch.equal(bce_with_logits(z, y, validate=False), bce_with_logits(z, y))
    with pytest.raises(ValueError, match="shape"):
        bce_with_logits(z, y[:3], validate=False)


# ----------------------------------------------------------------------------- prior correction
@pytest.mark.parametrize("w1, w0", [(5.0, 1.0), (1.0, 0.1), (0.3, 2.0)])
def test_prior_correction_maps_the_weighted_bce_optimum_back_to_the_true_logit(w1, w0):
    p = torch.tensor([0.001, 0.05, 0.3, 0.5, 0.9], dtype=torch.float64)
    z_star = torch.logit(p) + math.log(w1 / w0)
    # z_star minimises the expected weighted BCE: its expected gradient vanishes.
    expected_grad = p * weighted_bce_grad(z_star, torch.ones_like(p), w1, w0, "none") + \
        (1 - p) * weighted_bce_grad(z_star, torch.zeros_like(p), w1, w0, "none")
    assert torch.allclose(expected_grad, torch.zeros_like(p), atol=1e-12)
    assert torch.allclose(prior_correction(z_star, w1, w0), torch.logit(p), atol=1e-12)
    assert np.allclose(prior_correction(z_star.numpy(), w1, w0), torch.logit(p).numpy())
    assert prior_correction(float(z_star[2]), w1, w0) == pytest.approx(float(torch.logit(p[2])))


def test_negative_sampling_correction_equals_prior_correction_with_w0_the_keep_rate():
    z = torch.tensor([-2.0, 0.0, 3.0])
    assert torch.allclose(negative_sampling_correction(z, 0.1), prior_correction(z, 1.0, 0.1))
    assert torch.allclose(negative_sampling_correction(z, 0.1), z + math.log(0.1))


# ----------------------------------------------------------------------------- task weighting
def test_weighted_task_loss_is_the_weighted_sum_and_rejects_negative_weights():
    losses = torch.tensor([0.5, 2.0], requires_grad=True)
    total = weighted_task_loss(losses, [1.0, 0.25])
    assert total.item() == pytest.approx(1.0)
    total.backward()
    assert torch.allclose(losses.grad, torch.tensor([1.0, 0.25]))
    assert weighted_task_loss([torch.tensor(1.0), torch.tensor(2.0)]).item() == 3.0
    with pytest.raises(ValueError, match=r"lambda\[1\].*-0.5"):
        weighted_task_loss(losses, [1.0, -0.5])
    with pytest.raises(ValueError, match="one value per task"):
        weighted_task_loss(losses, [1.0])


def test_uncertainty_weighting_formula_and_optimum():
    uw = UncertaintyWeighting(2)
    losses = torch.tensor([0.5, 2.0])
    assert uw(losses).item() == pytest.approx(2.5)  # s = 0: plain sum
    with torch.no_grad():
        uw.log_variance.copy_(torch.log(losses))  # the optimum s* = log L
    uw.zero_grad()
    uw(losses).backward()
    assert torch.allclose(uw.log_variance.grad, torch.zeros(2), atol=1e-6)
    assert torch.allclose(uw.weights, 1 / losses)
    with pytest.raises(ValueError, match="expected 2 task losses"):
        uw(torch.ones(3))
    with pytest.raises(ValueError, match="n_tasks"):
        UncertaintyWeighting(0)
