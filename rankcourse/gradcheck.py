"""Checking a gradient against central finite differences.

Central differences, :math:`(f(x + \\epsilon e_i) - f(x - \\epsilon e_i)) / 2\\epsilon`, have error
:math:`O(\\epsilon^2)` from truncation plus :math:`O(u |f| / \\epsilon)` from rounding (unit roundoff
:math:`u \\approx 1.1\\times 10^{-16}` in float64). With :math:`\\epsilon = 10^{-6}` both are around
:math:`10^{-10}` for well-scaled functions, which is why everything here runs in float64: in float32
(:math:`u \\approx 6\\times 10^{-8}`) the rounding term alone is :math:`\\sim 0.06`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

__all__ = ["numerical_gradient", "compare_gradients", "GradientComparison"]


def _scalar(value: Any) -> float:
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"f must return a scalar, got a tensor of shape {tuple(value.shape)}")
        return float(value.item())
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(f"f must return a scalar, got an array of shape {value.shape}")
        return float(value.reshape(()))
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"f must return a number or a one-element tensor, got {type(value).__name__}") from None


def numerical_gradient(f: Callable[[Tensor], Any], x: Tensor | Any, eps: float = 1e-6) -> Tensor:
    """Central-difference gradient of a scalar function ``f`` at ``x``.

    Args:
        f: called with a float64 tensor of ``x``'s shape; returns a scalar (number or one-element
            tensor). It is called ``2 * x.numel()`` times, under ``torch.no_grad()``.
        x: a tensor (any shape, any device) or array-like; it is not modified.
        eps: the step, > 0.

    Returns:
        float64 tensor of ``x``'s shape (on ``x``'s device).
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    if not (isinstance(eps, (int, float)) and not isinstance(eps, bool) and np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    if isinstance(x, Tensor):
        point = x.detach().to(torch.float64).clone()
    else:
        point = torch.as_tensor(np.asarray(x, dtype=np.float64)).clone()
    grad = torch.zeros_like(point)
    flat, gflat = point.view(-1), grad.view(-1)
    with torch.no_grad():
        for i in range(flat.numel()):
            old = flat[i].item()
            flat[i] = old + eps
            up = _scalar(f(point))
            flat[i] = old - eps
            down = _scalar(f(point))
            flat[i] = old
            gflat[i] = (up - down) / (2 * eps)
    return grad


@dataclass
class GradientComparison:
    """How far two gradients are apart.

    Attributes:
        max_abs_error: :math:`\\max_i |a_i - b_i|`.
        max_rel_error: :math:`\\max_i |a_i - b_i| / \\max(|a_i|, |b_i|)` (0 where both are 0).
        worst_index: index (a tuple) of the largest absolute error.
        n: number of elements compared.
    """

    max_abs_error: float
    max_rel_error: float
    worst_index: tuple[int, ...]
    n: int
    analytic: Tensor = field(repr=False, compare=False)
    numeric: Tensor = field(repr=False, compare=False)

    def __str__(self) -> str:
        if self.n == 0:
            return "no elements to compare"
        a = self.analytic[self.worst_index].item()
        b = self.numeric[self.worst_index].item()
        return (f"max abs error {self.max_abs_error:.3e}, max rel error {self.max_rel_error:.3e} over "
                f"{self.n} element(s); worst at index {self.worst_index}: {a:.10g} vs {b:.10g}")

    def assert_close(self, atol: float = 1e-6, rtol: float = 1e-4) -> None:
        """Raise ``AssertionError`` unless every element has :math:`|a-b| \\le atol + rtol \\max(|a|,|b|)`."""
        if atol < 0 or rtol < 0:
            raise ValueError(f"atol and rtol must be >= 0, got {atol!r} and {rtol!r}")
        a, b = self.analytic, self.numeric
        diff = (a - b).abs()
        ok = diff <= atol + rtol * torch.maximum(a.abs(), b.abs())
        if not bool(ok.all()):
            n_bad = int((~ok).sum())
            raise AssertionError(f"gradients differ beyond atol={atol:g}, rtol={rtol:g} in {n_bad} of "
                                 f"{self.n} element(s): {self}")


def compare_gradients(analytic: Tensor | Any, numeric: Tensor | Any) -> GradientComparison:
    """Compare two gradients of the same shape (e.g. autograd or a formula vs :func:`numerical_gradient`).

    NaNs make both errors NaN (and :meth:`GradientComparison.assert_close` fail).
    """
    a = (analytic.detach() if isinstance(analytic, Tensor) else torch.as_tensor(np.asarray(analytic))).to("cpu", torch.float64)
    b = (numeric.detach() if isinstance(numeric, Tensor) else torch.as_tensor(np.asarray(numeric))).to("cpu", torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"gradients must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.numel() == 0:
        return GradientComparison(0.0, 0.0, (), 0, a, b)
    diff = (a - b).abs()
    scale = torch.maximum(a.abs(), b.abs())
    rel = torch.where(scale > 0, diff / torch.where(scale > 0, scale, torch.ones_like(scale)), torch.zeros_like(diff))
    rel = torch.where(torch.isnan(diff), diff, rel)
    nan = bool(torch.isnan(diff).any())
    worst_flat = int(torch.isnan(diff).flatten().nonzero()[0]) if nan else int(diff.flatten().argmax())
    worst = tuple(int(i) for i in np.unravel_index(worst_flat, tuple(a.shape))) if a.dim() else ()
    max_abs = float("nan") if nan else float(diff.max())
    max_rel = float("nan") if nan else float(rel.max())
    return GradientComparison(max_abs, max_rel, worst, a.numel(), a, b)
