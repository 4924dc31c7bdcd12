"""The chapter 7 self-check (Platt scaling) accepts right fits and rejects typical wrong answers
with a message that names the mistake."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from rankcourse.exercises.ch07 import check_platt_scaling, reference_platt


# ----------------------------------------------------------------------------- Platt scaling
def _two_classes(fn):
    def fit_platt(z, y):
        y = np.asarray(y, dtype=np.float64)
        if y.min() == y.max():
            raise ValueError("Platt scaling needs both classes in y")
        return fn(np.asarray(z, dtype=np.float64), y)
    fit_platt.__name__ = fn.__name__
    return fit_platt


@_two_classes
def newton_platt(z, y):
    a, b = 1.0, 0.0
    for _ in range(30):
        p = 1 / (1 + np.exp(-(a * z + b)))
        g = np.array([np.mean((p - y) * z), np.mean(p - y)])
        w = p * (1 - p)
        h = np.array([[np.mean(w * z * z), np.mean(w * z)], [np.mean(w * z), np.mean(w)]])
        a, b = np.array([a, b]) - np.linalg.solve(h, g)
    return a, b


@_two_classes
def sklearn_platt(z, y):
    reg = SkLogisticRegression(C=1e10, tol=1e-10, max_iter=1000).fit(z.reshape(-1, 1), y)
    return reg.coef_[0, 0], reg.intercept_[0]


@_two_classes
def gradient_descent_platt(z, y):
    a, b = torch.ones((), dtype=torch.float64, requires_grad=True), torch.zeros((), dtype=torch.float64, requires_grad=True)
    zt, yt = torch.as_tensor(z), torch.as_tensor(y)
    opt = torch.optim.LBFGS([a, b], lr=1.0, max_iter=100, tolerance_grad=1e-10, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(a * zt + b, yt)
        loss.backward()
        return loss

    opt.step(closure)
    return a.item(), b.item()


@pytest.mark.parametrize("solution", [newton_platt, sklearn_platt, gradient_descent_platt])
def test_platt_check_passes_correct_fits(solution, capsys):
    check_platt_scaling(solution)
    assert "match the maximum-likelihood fit" in capsys.readouterr().out


def test_reference_platt_recovers_a_known_distortion():
    rng = np.random.default_rng(0)
    truth = rng.normal(-1.0, 1.5, 200_000)
    y = (rng.random(truth.size) < 1 / (1 + np.exp(-truth))).astype(float)
    a, b = reference_platt(truth / 2.0 - 0.5, y)  # truth = 2 z + 1
    assert abs(a - 2.0) < 0.05 and abs(b - 1.0) < 0.05


@_two_classes
def temperature_only(z, y):
    a, _ = newton_platt(z, y)
    best = min(np.linspace(0.2, 5, 481), key=lambda t: np.mean(np.logaddexp(0, t * z) - y * t * z))
    return float(best), 0.0


@_two_classes
def swapped(z, y):
    a, b = newton_platt(z, y)
    return b, a


@_two_classes
def wrong_sign(z, y):
    a, b = newton_platt(z, y)
    return -a, b


@_two_classes
def on_probabilities(z, y):
    return newton_platt(1 / (1 + np.exp(-z)), y)


@_two_classes
def too_few_steps(z, y):
    a, b = 1.0, 0.0
    for _ in range(5):
        p = 1 / (1 + np.exp(-(a * z + b)))
        a, b = a - 0.1 * np.mean((p - y) * z), b - 0.1 * np.mean(p - y)
    return a, b


@pytest.mark.parametrize(
    "wrong, message",
    [
        (temperature_only, "temperature scaling"),
        (swapped, "return the slope first"),
        (wrong_sign, "reverses the ranking"),
        (on_probabilities, "works on the logits"),
        (too_few_steps, "do not minimise the log loss"),
        (_two_classes(lambda z, y: (1.0, 0.0, 0.0)), "expected a pair"),
    ],
)
def test_platt_check_names_the_mistake(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_platt_scaling(wrong)


def test_platt_check_requires_a_value_error_for_one_class():
    def no_validation(z, y):  # fits well, but returns a number even when y has one class only
        return reference_platt(z, y) if 0 < np.mean(y) < 1 else (1.0, -30.0)

    with pytest.raises(AssertionError, match="did not raise ValueError"):
        check_platt_scaling(no_validation)
