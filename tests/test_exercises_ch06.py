"""The chapter 6 self-checks accept the reference solutions and reject typical wrong answers
with a message that names the mistake."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from torch import nn

from rankcourse.exercises.ch06 import check_behaviour_pooling, check_platt_scaling, reference_platt


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
