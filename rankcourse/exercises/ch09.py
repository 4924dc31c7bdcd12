r"""Self-checks for chapter 9 (serving a ranking model).

* :func:`check_shared_fm` -- the FM term of user + candidate fields with the user part computed once:
  ``shared_fm(v_user (F_u, D), v_items (N, F_i, D)) -> (N,)``.
* :func:`check_corrected_probability` -- undo negative down-sampling on served probabilities:
  ``correct(p (n,), keep) -> (n,)``.
* :func:`check_latency_line` -- fit ``latency = a + b N`` to measured points and predict:
  ``fit_line(n (k,), ms (k,)) -> (a, b)``.

Each check runs the student's code on small cases against a reference and, when the answer is
wrong, compares it with the typical mistakes and names the one it matches.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

__all__ = ["check_shared_fm", "check_corrected_probability", "check_latency_line", "reference_shared_fm",
           "reference_corrected_probability"]


def _call(fn: Callable, args: tuple, case: str) -> Any:
    name = getattr(fn, "__name__", "your function")
    try:
        return fn(*args)
    except Exception as err:  # noqa: BLE001 - report any failure with its case
        raise AssertionError(f"{name} raised {type(err).__name__}: {err} on case {case!r}") from err


def _fm(v: Tensor) -> Tensor:
    s = v.sum(-2)
    return 0.5 * (s.square() - v.square().sum(-2)).sum(-1)


# ----------------------------------------------------------------------------- shared FM
def reference_shared_fm(v_user: Tensor, v_items: Tensor) -> Tensor:
    """``FM(user fields) + FM(item fields) + <sum of user vectors, sum of item vectors>``, ``(N,)``."""
    return _fm(v_user) + _fm(v_items) + v_items.sum(1) @ v_user.sum(0)


def check_shared_fm(shared_fm: Callable[[Tensor, Tensor], Tensor]) -> None:
    """Check ``shared_fm(v_user (F_u, D), v_items (N, F_i, D)) -> (N,)`` against the FM of the full rows."""
    gen = torch.Generator().manual_seed(9)
    for case, fu, n, fi, d in [("3 user fields, 5 candidates of 2 fields", 3, 5, 2, 4),
                               ("1 user field, 1 candidate of 1 field", 1, 1, 1, 3)]:
        vu = torch.randn(fu, d, generator=gen, dtype=torch.float64)
        vi = torch.randn(n, fi, d, generator=gen, dtype=torch.float64)
        want = _fm(torch.cat([vu.expand(n, -1, -1), vi], 1))
        got = _call(shared_fm, (vu, vi), case)
        if not isinstance(got, Tensor) or tuple(got.shape) != (n,):
            raise AssertionError(f"expected a tensor of shape ({n},) on case {case!r}, got "
                                 f"{tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__}")
        if torch.allclose(got.double(), want, atol=1e-9, rtol=1e-9):
            continue
        mistakes = [("the cross term <sum_u v, sum_i v> is missing", _fm(vu) + _fm(vi)),
                    ("the cross term is counted twice", _fm(vu) + _fm(vi) + 2 * (vi.sum(1) @ vu.sum(0))),
                    ("the user's own pairs FM(user) are missing", _fm(vi) + vi.sum(1) @ vu.sum(0)),
                    ("only the candidates' fields are used", _fm(vi))]
        hint = next((f" It looks like {t}." for t, m in mistakes if torch.allclose(got.double(), m, atol=1e-9)), "")
        raise AssertionError(f"wrong FM values on case {case!r}: max error "
                             f"{(got.double() - want).abs().max().item():.3g}.{hint}")
    print("check_shared_fm: correct on 2 cases, float64 to 1e-9.")


# ----------------------------------------------------------------------------- calibration
def reference_corrected_probability(p: np.ndarray, keep: float) -> np.ndarray:
    """``p r / (p r + 1 - p)``: the odds of the model trained on kept negatives, times ``keep``."""
    p = np.asarray(p, dtype=float)
    return p * keep / (p * keep + 1 - p)


def check_corrected_probability(correct: Callable[[np.ndarray, float], np.ndarray]) -> None:
    """Check ``correct(p, keep)``: probabilities of a model trained on a fraction ``keep`` of negatives."""
    p = np.array([0.01, 0.2, 0.5, 0.9, 0.999])
    for keep in (0.1, 0.5, 1.0):
        got = np.asarray(_call(correct, (p.copy(), keep), f"keep={keep}"), dtype=float)
        want = reference_corrected_probability(p, keep)
        if got.shape == want.shape and np.allclose(got, want, rtol=1e-7, atol=1e-12):
            continue
        odds = p / (1 - p)
        mistakes = [("the probability was multiplied by keep instead of the odds", p * keep),
                    ("the odds were divided by keep (log keep subtracted from the logit): that is what "
                     "the sampling did, not its correction", odds / keep / (1 + odds / keep))]
        hint = next((f" It looks like {t}." for t, m in mistakes
                     if got.shape == m.shape and np.allclose(got, m, rtol=1e-7)), "")
        raise AssertionError(f"wrong values for keep={keep}: got {np.round(got, 4)}, expected "
                             f"{np.round(want, 4)}.{hint}")
    print("check_corrected_probability: correct for keep = 0.1, 0.5 and 1.")


# ----------------------------------------------------------------------------- latency line
def check_latency_line(fit_line: Callable[[np.ndarray, np.ndarray], tuple[float, float]]) -> None:
    """Check ``fit_line(n, ms) -> (a, b)``: the least-squares line ``ms ≈ a + b n``."""
    rng = np.random.default_rng(3)
    n = np.array([50, 200, 500, 1000, 2000], dtype=float)
    ms = 0.4 + 0.003 * n + rng.normal(0, 0.01, size=n.size)
    want = np.polyfit(n, ms, 1)[::-1]
    got = _call(fit_line, (n.copy(), ms.copy()), "five points near 0.4 + 0.003 N")
    try:
        a, b = (float(v) for v in got)
    except (TypeError, ValueError):
        raise AssertionError(f"fit_line must return two numbers (a, b), got {got!r}") from None
    if np.allclose([a, b], want, rtol=1e-6, atol=1e-9):
        print(f"check_latency_line: correct (a = {a:.3f} ms, b = {b * 1e3:.3f} ms per 1000 candidates).")
        return
    hint = " It looks like a and b are swapped." if np.allclose([b, a], want, rtol=1e-6) else ""
    if np.isclose(b, ms[-1] / n[-1], rtol=1e-6):
        hint = " It looks like the line goes through the origin: a fixed cost per request exists."
    raise AssertionError(f"got a = {a:.4g}, b = {b:.4g}; the least-squares line has a = {want[0]:.4g}, "
                         f"b = {want[1]:.4g}.{hint}")
