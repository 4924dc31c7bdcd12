r"""Self-checks for chapter 10 (serving a ranking model).

* :func:`check_shared_fm` -- the FM term of user + candidate fields with the user part computed once:
  ``shared_fm(v_user (F_u, D), v_items (N, F_i, D)) -> (N,)``.
* :func:`check_corrected_probability` -- undo negative down-sampling on served probabilities:
  ``correct(p (n,), keep) -> (n,)``.
* :func:`check_latency_line` -- fit ``latency = a + b N`` to measured points and predict:
  ``fit_line(n (k,), ms (k,)) -> (a, b)``.
* :func:`check_cross_once` -- DCN-V2's first cross layer with the user's part once per request:
  ``cross_once(e_user (d_u,), e_items (N, d_i), weight (d, d), bias (d,)) -> (once (d,), x1 (N, d))``.

Each check runs the student's code on small cases against a reference and, when the answer is
wrong, compares it with the typical mistakes and names the one it matches.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from ._calling import call_student
from ._seeding import hidden_size, numpy_rng, torch_generator

__all__ = ["check_shared_fm", "check_corrected_probability", "check_latency_line", "check_cross_once",
           "reference_shared_fm", "reference_corrected_probability", "reference_cross_once"]


def _fm(v: Tensor) -> Tensor:
    s = v.sum(-2)
    return 0.5 * (s.square() - v.square().sum(-2)).sum(-1)


# ----------------------------------------------------------------------------- shared FM
def reference_shared_fm(v_user: Tensor, v_items: Tensor) -> Tensor:
    """``FM(user fields) + FM(item fields) + <sum of user vectors, sum of item vectors>``, ``(N,)``."""
    return _fm(v_user) + _fm(v_items) + v_items.sum(1) @ v_user.sum(0)


def _shared_fm_cases(seed: int | None = None) -> list[tuple[str, Tensor, Tensor]]:
    """The public cases, or (given ``seed``) hidden ones: new values and sizes, the same edge case of ones."""
    gen = torch_generator(9, seed)
    many = (hidden_size(3, seed, salt=1), hidden_size(5, seed, salt=2), hidden_size(2, seed, salt=3),
            hidden_size(4, seed, salt=4))
    ones = (1, 1, 1, hidden_size(3, seed, salt=5))
    cases = []
    for case, (fu, n, fi, d) in [("3 user fields, 5 candidates of 2 fields", many),
                                 ("1 user field, 1 candidate of 1 field", ones)]:
        if seed is not None:
            case = f"{fu} user fields, {n} candidates of {fi} fields" if fu > 1 else case
        vu = torch.randn(fu, d, generator=gen, dtype=torch.float64)
        vi = torch.randn(n, fi, d, generator=gen, dtype=torch.float64)
        cases.append((case, vu, vi))
    return cases


def check_shared_fm(shared_fm: Callable[[Tensor, Tensor], Tensor], *, seed: int | None = None) -> None:
    """Check ``shared_fm(v_user (F_u, D), v_items (N, F_i, D)) -> (N,)`` against the FM of the full rows.

    ``seed`` (for grading) draws hidden cases with the same roles: new vectors and sizes.
    """
    for case, vu, vi in _shared_fm_cases(seed):
        n = vi.shape[0]
        want = _fm(torch.cat([vu.expand(n, -1, -1), vi], 1))
        got = call_student(shared_fm, (vu, vi), case)
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


def _calibration_cases(seed: int | None = None) -> tuple[np.ndarray, tuple[float, ...]]:
    """The public probabilities and keep rates, or (given ``seed``) new ones with the same roles:
    probabilities near 0, in the middle and near 1; a small keep rate, a middle one and keep = 1."""
    if seed is None:
        return np.array([0.01, 0.2, 0.5, 0.9, 0.999]), (0.1, 0.5, 1.0)
    rng = numpy_rng(91, seed)
    p = np.sort(np.concatenate([rng.uniform(0.001, 0.05, 1), rng.uniform(0.05, 0.95, 3),
                                rng.uniform(0.99, 0.9995, 1)]))
    return p, (round(float(rng.uniform(0.02, 0.3)), 3), round(float(rng.uniform(0.35, 0.8)), 3), 1.0)


def check_corrected_probability(correct: Callable[[np.ndarray, float], np.ndarray], *,
                                seed: int | None = None) -> None:
    """Check ``correct(p, keep)``: probabilities of a model trained on a fraction ``keep`` of negatives.

    ``seed`` (for grading) draws hidden probabilities and keep rates with the same roles.
    """
    p, keeps = _calibration_cases(seed)
    for keep in keeps:
        got = np.asarray(call_student(correct, (p.copy(), keep), f"keep={keep}"), dtype=float)
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
    print(f"check_corrected_probability: correct for keep = {keeps[0]}, {keeps[1]} and 1.")


# ----------------------------------------------------------------------------- latency line
def _latency_case(seed: int | None = None) -> tuple[str, np.ndarray, np.ndarray]:
    """The public points, or (given ``seed``) a new line and new candidate counts: the same role
    (a fixed cost plus a cost per candidate, a little noise)."""
    if seed is None:
        rng = np.random.default_rng(3)
        n = np.array([50, 200, 500, 1000, 2000], dtype=float)
        return "five points near 0.4 + 0.003 N", n, 0.4 + 0.003 * n + rng.normal(0, 0.01, size=n.size)
    rng = numpy_rng(3, seed)
    a, b = round(float(rng.uniform(0.1, 2.0)), 2), round(float(rng.uniform(0.001, 0.01)), 4)
    n = np.sort(rng.choice(np.arange(20, 4001, 10), size=hidden_size(5, seed), replace=False)).astype(float)
    return f"{n.size} points near {a} + {b} N", n, a + b * n + rng.normal(0, 0.01, size=n.size)


def check_latency_line(fit_line: Callable[[np.ndarray, np.ndarray], tuple[float, float]], *,
                       seed: int | None = None) -> None:
    """Check ``fit_line(n, ms) -> (a, b)``: the least-squares line ``ms ≈ a + b n``.

    ``seed`` (for grading) draws a hidden line and new candidate counts.
    """
    case, n, ms = _latency_case(seed)
    want = np.polyfit(n, ms, 1)[::-1]
    got = call_student(fit_line, (n.copy(), ms.copy()), case)
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


# ----------------------------------------------------------------------------- DCN-V2 cross layer
def reference_cross_once(e_user: Tensor, e_items: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """``once = W[:, :d_u] e_U + b`` (one ``(d,)`` vector a request) and the first cross layer
    ``x1 = x0 ⊙ (once + W[:, d_u:] e_I) + x0`` of each candidate, ``(N, d)``, with ``x0 = [e_U; e_I]``."""
    d_user = e_user.shape[0]
    once = weight[:, :d_user] @ e_user + bias
    x0 = torch.cat([e_user.expand(e_items.shape[0], -1), e_items], 1)
    return once, x0 * (once + e_items @ weight[:, d_user:].T) + x0


def _cross_cases(seed: int | None = None) -> list[tuple[str, Tensor, Tensor, Tensor, Tensor]]:
    """The public cases, or (given ``seed``) new values and sizes with the same roles: several
    candidates with user and item parts of different widths, and one candidate with one user value."""
    gen = torch_generator(12, seed)
    sizes = [(hidden_size(3, seed, salt=1), hidden_size(2, seed, salt=2), hidden_size(4, seed, salt=3)),
             (1, hidden_size(3, seed, salt=4), 1)]
    cases = []
    for d_user, d_item, n in sizes:
        d = d_user + d_item
        tensors = [torch.randn(shape, generator=gen, dtype=torch.float64)
                   for shape in ((d_user,), (n, d_item), (d, d), (d,))]
        cases.append((f"d_u = {d_user}, d_i = {d_item}, {n} candidate{'s' * (n > 1)}", *tensors))
    return cases


def _cross_mistakes(e_user: Tensor, e_items: Tensor, w: Tensor, b: Tensor) -> list[tuple[str, Tensor]]:
    """Typical wrong ``x1`` with the words that name them."""
    d_user, n = e_user.shape[0], e_items.shape[0]
    x0 = torch.cat([e_user.expand(n, -1), e_items], 1)
    once = w[:, :d_user] @ e_user + b
    right = x0 * (once + e_items @ w[:, d_user:].T) + x0
    user_once = right.clone()
    user_once[:, :d_user] = e_user * once[:d_user] + e_user
    return [("the residual + x0 is missing", x0 * (x0 @ w.T + b)),
            ("the bias b is missing", x0 * (x0 @ w.T) + x0),
            ("the candidate's columns W_I e_I are missing from W x0", x0 * once + x0),
            ("the user's coordinates of x1 were computed once, but they depend on the candidate "
             "through W_I e_I", user_once),
            ("W was applied transposed (x0 @ W instead of W x0)", x0 * (x0 @ w + b) + x0)]


def _check_once(once: Any, e_user: Tensor, w: Tensor, b: Tensor, case: str) -> None:
    d, d_user = w.shape[0], e_user.shape[0]
    if not isinstance(once, Tensor) or tuple(once.shape) != (d,):
        shape = tuple(once.shape) if isinstance(once, Tensor) else type(once).__name__
        raise AssertionError(f"once must be a tensor of shape ({d},) on case {case!r}, got {shape}: every "
                             "coordinate of W x0 reads the user's columns, so the shared part is full width")
    want = w[:, :d_user] @ e_user + b
    if torch.allclose(once.double(), want, atol=1e-9, rtol=1e-9):
        return
    hint = ""
    if torch.allclose(once.double(), want - b, atol=1e-9, rtol=1e-9):
        hint = " It looks like the bias b is missing: it is the same for every candidate, so it belongs here."
    raise AssertionError(f"wrong once-per-request vector on case {case!r}: max error "
                         f"{(once.double() - want).abs().max().item():.3g}.{hint}")


def check_cross_once(cross_once: Callable[[Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]], *,
                     seed: int | None = None) -> None:
    """Check ``cross_once(e_user, e_items, weight, bias) -> (once, x1)`` against DCN-V2's first layer.

    ``once`` must be ``W[:, :d_u] e_U + b`` (computed once per request) and ``x1`` the layer's output
    ``x0 ⊙ (W x0 + b) + x0`` for each candidate. ``seed`` (for grading) draws hidden cases.
    """
    cases = _cross_cases(seed)
    for case, e_user, e_items, w, b in cases:
        got = call_student(cross_once, (e_user.clone(), e_items.clone(), w.clone(), b.clone()), case)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise AssertionError(f"cross_once must return two tensors (once, x1) on case {case!r}, "
                                 f"got {type(got).__name__}")
        once, x1 = got
        _check_once(once, e_user, w, b, case)
        _, want = reference_cross_once(e_user, e_items, w, b)
        if not isinstance(x1, Tensor) or x1.shape != want.shape:
            shape = tuple(x1.shape) if isinstance(x1, Tensor) else type(x1).__name__
            raise AssertionError(f"x1 must have shape {tuple(want.shape)} on case {case!r}, got {shape}")
        if torch.allclose(x1.double(), want, atol=1e-9, rtol=1e-9):
            continue
        hint = next((f" It looks like {t}." for t, m in _cross_mistakes(e_user, e_items, w, b)
                     if torch.allclose(x1.double(), m, atol=1e-9, rtol=1e-9)), "")
        raise AssertionError(f"wrong x1 on case {case!r}: max error "
                             f"{(x1.double() - want).abs().max().item():.3g}.{hint}")
    print(f"check_cross_once: correct on {len(cases)} cases, float64 to 1e-9.")
