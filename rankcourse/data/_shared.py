"""Helpers shared by the synthetic generators (:mod:`.ctr`, :mod:`.multitask`): argument checks,
the logistic function, the intercept solver and the cut into train/valid/test."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from ..schema import FeatureSchema
from .tabular import TabularData
from .. import checks


def check_scale(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0 (0 switches the part off), got {value!r}")
    return v


def check_int(name: str, value: Any, low: int) -> int:
    """:func:`rankcourse.checks.check_int` with the generators' argument order."""
    return checks.check_int(value, name, low)


def check_split(split: Sequence[float]) -> tuple[float, float, float]:
    try:
        fr = tuple(float(f) for f in split)
    except (TypeError, ValueError):
        raise TypeError(f"split must be three fractions (train, valid, test), got {split!r}") from None
    if len(fr) != 3 or any(not (f > 0) for f in fr) or abs(sum(fr) - 1) > 1e-9:
        raise ValueError(f"split must be three positive fractions (train, valid, test) summing to 1, got {split!r}")
    return fr  # type: ignore[return-value]


def sigmoid(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-z) = inf for z < -709 gives the right limit 0
        return 1.0 / (1.0 + np.exp(-z))



def solve_intercept(z: np.ndarray, rate: float) -> float:
    """The b with mean(sigmoid(b + z)) == rate, by bisection with Newton steps inside the bracket.

    The mean is increasing in b, so the bracket always holds the root; a Newton step is taken when
    it lands inside the bracket (it usually does, and then ~6 evaluations suffice), else we bisect.
    """
    lo, hi = -40.0 - float(z.max()), 40.0 - float(z.min())
    b = math.log(rate / (1 - rate)) - float(z.mean())
    for _ in range(200):
        p = sigmoid(b + z)
        gap = float(p.mean()) - rate
        if gap < 0:
            lo = b
        else:
            hi = b
        if abs(gap) < 1e-12 * rate or hi - lo < 1e-12:
            return b
        slope = float((p * (1 - p)).mean())
        step = b - gap / slope if slope > 0 else lo - 1.0
        b = step if lo < step < hi else 0.5 * (lo + hi)
    return b


def split_rows(schema: FeatureSchema, dense: np.ndarray, sparse: np.ndarray, labels: np.ndarray,
               true_prob: np.ndarray, task_names: tuple[str, ...], task_types: tuple[str, ...],
               fractions: Sequence[float]) -> tuple[TabularData, TabularData, TabularData]:
    """Cut i.i.d. rows into consecutive train/valid/test blocks (views, no copies)."""
    n = dense.shape[0]
    bounds = np.round(np.cumsum([0.0, *fractions]) * n).astype(int)
    bounds[-1] = n
    if np.any(np.diff(bounds) == 0):
        raise ValueError(f"n_samples={n} is too few for split {tuple(fractions)}: a split would be empty")
    dense_t, sparse_t = torch.from_numpy(np.ascontiguousarray(dense)), torch.from_numpy(np.ascontiguousarray(sparse))
    labels_t, prob_t = torch.from_numpy(labels), torch.from_numpy(true_prob)
    parts = [TabularData(schema, dense_t[a:b], sparse_t[a:b], labels_t[a:b], prob_t[a:b], task_names, task_types)
             for a, b in zip(bounds[:-1], bounds[1:])]
    return tuple(parts)  # type: ignore[return-value]
