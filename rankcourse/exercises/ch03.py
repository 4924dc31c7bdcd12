r"""Self-checks for chapter 3 (DeepFM): the factorization-machine term and its gradient.

* :func:`check_fm_interaction` -- the second-order FM term computed by the square-of-sum identity
  (Rendle 2010),

  .. math:: \sum_{i<j} \langle v_i, v_j \rangle
            = \tfrac12 \sum_{d} \Big[ \big(\textstyle\sum_i v_{i,d}\big)^2 - \sum_i v_{i,d}^2 \Big].

* :func:`check_fm_gradient` -- its gradient with respect to one field's embedding,
  :math:`\partial / \partial v_i = \sum_j v_j - v_i`.

Each check runs the student's function on a few small float64 inputs (a random batch, a batch of
one, a single field, two fields, large values), compares it with a reference computed here, and
raises ``AssertionError`` with a message that names the case and, where it recognises it, the
mistake (a missing ``1/2``, the wrong term subtracted, a sum over the wrong axis, ...).
"""

from __future__ import annotations

import itertools
from typing import Callable

import torch
from torch import Tensor

__all__ = ["check_fm_interaction", "check_fm_gradient", "fm_cases"]


# --------------------------------------------------------------------------- test inputs
def fm_cases() -> dict[str, Tensor]:
    """The inputs the checks use: name -> float64 tensor ``(batch, n_fields, dim)``.

    The random case has batch 4, 3 fields and dimension 5, three different sizes, so that a sum
    over the wrong axis shows up as a wrong shape.
    """
    g = torch.Generator().manual_seed(3)
    return {
        "random batch (4 examples, 3 fields, dim 5)": torch.randn(4, 3, 5, generator=g, dtype=torch.float64),
        "batch of one (1 example, 6 fields, dim 4)": torch.randn(1, 6, 4, generator=g, dtype=torch.float64),
        "one field (no pairs: the answer is 0)": torch.randn(3, 1, 4, generator=g, dtype=torch.float64),
        "two fields (the answer is <v_1, v_2>)": torch.randn(2, 2, 3, generator=g, dtype=torch.float64),
        "large values (|v| ~ 1000, 10 fields)": 1000.0 * torch.randn(2, 10, 8, generator=g, dtype=torch.float64),
    }


def _bruteforce(v: Tensor) -> Tensor:
    """The definition: a loop over all pairs ``i < j``. ``(B, F, D) -> (B,)``."""
    total = 0.0 * v.sum(dim=(1, 2))  # zeros that stay in the autograd graph (one field: no pairs)
    for i, j in itertools.combinations(range(v.shape[1]), 2):
        total = total + (v[:, i] * v[:, j]).sum(dim=1)
    return total


def _call(fn: Callable[[Tensor], Tensor], v: Tensor, name: str, case: str) -> Tensor:
    try:
        out = fn(v)
    except Exception as err:  # the student's code: report what it raised and on which input
        raise AssertionError(
            f"{name} raised {type(err).__name__}: {err} on case '{case}' (input shape {tuple(v.shape)})"
        ) from err
    if not isinstance(out, Tensor):
        raise AssertionError(
            f"{name} returned a {type(out).__name__} on case '{case}'; return a torch.Tensor "
            "(stay in torch: NumPy would also cut the gradient)"
        )
    return out


def _close(a: Tensor, b: Tensor, scale: float, float32: bool | None = None) -> bool:
    """``a`` and ``b`` agree to about 1e-9 of the inputs' scale, or 1e-5 when the answer was computed
    in float32 (``float32``; by default: ``a`` is not float64)."""
    if a.shape != b.shape:
        return False
    a64, b64 = a.detach().to(torch.float64), b.detach().to(torch.float64)
    loose = a.dtype != torch.float64 if float32 is None else float32
    tol = (1e-5 if loose else 1e-9) * max(scale, 1.0)
    return bool(((a64 - b64).abs() <= tol).all())


def _max_gap(a: Tensor, b: Tensor) -> float:
    return float((a.detach().to(torch.float64) - b.detach().to(torch.float64)).abs().max())


# --------------------------------------------------------------------------- FM interaction
def _interaction_shape_hint(shape: tuple[int, ...], b: int, f: int, d: int) -> str:
    if shape == (b, 1):
        return "one number per example, not a column: sum over the last dimension without keepdim=True (or squeeze(-1))"
    if shape == (b, d):
        return "this is (batch, dim): you still have to sum over the embedding dimension"
    if shape == (b, f) and f != d:
        return "this is (batch, n_fields): sum over the fields *inside* the square, then over the embedding dimension"
    if shape == (b, f, d):
        return "nothing was summed: add up over the fields (inside the square) and over the embedding dimension"
    if shape == ():
        return ("a single number: did you sum over the batch too, or call .squeeze() without a dim "
                "(that also drops the batch dimension of a batch of one)?")
    return "sum over the fields (dim=1) and over the embedding dimension (the last dim), keep the batch dimension"


def _interaction_mistakes(v: Tensor) -> dict[str, Tensor]:
    s, q = v.sum(dim=1), v.square().sum(dim=1)  # (B, D) square-of-sum pieces
    return {
        "the value is twice the right one: did you forget the 1/2? (each pair i<j is counted once, "
        "but (sum v)^2 holds both v_i v_j and v_j v_i)": (s.square() - q).sum(-1),
        "the sign is flipped: you subtracted the square of the sum from the sum of squares; "
        "it is (sum_i v_i)^2 - sum_i v_i^2": 0.5 * (q - s.square()).sum(-1),
        "the sum of squares was not subtracted: (sum_i v_i)^2 / 2 also pairs every field with itself "
        "(the terms i = j); subtract sum_i v_i^2": 0.5 * s.square().sum(-1),
        "the sum of squares was added instead of subtracted": 0.5 * (s.square() + q).sum(-1),
        "you subtracted sum_i v_i (not squared): square each embedding before summing over the fields": 0.5 * (s.square() - s).sum(-1),
        "you summed over the embedding dimension before squaring: square each dimension d separately, "
        "then sum over d": 0.5 * (s.sum(-1).square() - q.sum(-1)),
        "you took the inner product with the squared norm of the sum: it is (sum_i v_i)^2 per dimension, "
        "not (sum_i v_i)^4": 0.5 * (s.square().square() - q).sum(-1),
    }


def check_fm_interaction(fm_interaction: Callable[[Tensor], Tensor]) -> None:
    """Check ``fm_interaction(v: (batch, n_fields, dim)) -> (batch,)`` = sum over pairs i<j of <v_i, v_j>.

    Runs the cases of :func:`fm_cases` (float64), compares with the brute-force pair sum, and checks
    that autograd through ``fm_interaction`` gives the known gradient ``sum_j v_j - v_i``. Raises
    ``AssertionError`` saying what is wrong; prints one line when every case passes.
    """
    name = getattr(fm_interaction, "__name__", "fm_interaction")
    if not callable(fm_interaction):
        raise AssertionError(f"expected a function v -> (batch,) tensor, got {type(fm_interaction).__name__}")
    for case, v in fm_cases().items():
        b, f, d = v.shape
        out = _call(fm_interaction, v.clone(), name, case)
        if tuple(out.shape) != (b,):
            raise AssertionError(
                f"{name} returned shape {tuple(out.shape)} on case '{case}'; expected ({b},) -- "
                + _interaction_shape_hint(tuple(out.shape), b, f, d)
            )
        if not torch.isfinite(out).all():
            raise AssertionError(f"{name} returned non-finite values {out.tolist()} on case '{case}'")
        ref = _bruteforce(v)
        scale = float(v.abs().max()) ** 2 * f * f
        if _close(out, ref, scale):
            continue
        for message, wrong in _interaction_mistakes(v).items():
            if _close(out, wrong, scale):
                raise AssertionError(f"{name} is wrong on case '{case}': {message}")
        raise AssertionError(
            f"{name} differs from the brute-force pair sum by up to {_max_gap(out, ref):.4g} on case '{case}' "
            f"(got {[round(x, 4) for x in out.tolist()]}, expected {[round(x, 4) for x in ref.tolist()]}); "
            "compute 1/2 * sum_d [ (sum_i v_{i,d})^2 - sum_i v_{i,d}^2 ]"
        )
    # Gradient: the identity must be differentiable in torch (no .detach(), no NumPy round trip).
    v = next(iter(fm_cases().values())).clone().requires_grad_(True)
    out = _call(fm_interaction, v, name, "gradient")
    if not out.requires_grad:
        raise AssertionError(
            f"{name}'s output does not depend on its input through autograd (no gradient flows): "
            "do not detach, convert to NumPy or write into a tensor made with torch.zeros"
        )
    (grad,) = torch.autograd.grad(out.sum(), v)
    expected = v.detach().sum(dim=1, keepdim=True) - v.detach()
    if not _close(grad, expected, float(v.detach().abs().max()) * v.shape[1], float32=out.dtype != torch.float64):
        raise AssertionError(
            f"autograd through {name} gives a gradient off by up to {_max_gap(grad, expected):.4g} from "
            "sum_j v_j - v_i, although the values match: is something computed outside torch?"
        )
    print(f"{name}: all {len(fm_cases())} cases match the brute-force pair sum, and its gradient is sum_j v_j - v_i.")


# --------------------------------------------------------------------------- FM gradient
def _gradient_mistakes(v: Tensor) -> dict[str, Tensor]:
    s = v.sum(dim=1, keepdim=True).expand_as(v)
    return {
        "this is sum_j v_j over all fields: leave the field itself out (a field is never paired with "
        "itself), i.e. subtract v_i": s.clone(),
        "twice the right value: the 1/2 in front of the identity cancels the 2 from differentiating the squares": 2 * (s - v),
        "the sign is flipped: the derivative of (1/2)(sum_j v_j)^2 is +sum_j v_j and that of "
        "-(1/2) sum_j v_j^2 is -v_i": v - s,
        "you subtracted 2 v_i: the derivative of -(1/2) v_i^2 is -v_i": s - 2 * v,
        "this is -v_i alone: the square-of-sum term contributes +sum_j v_j": -v.clone(),
    }


def _gradient_shape_hint(shape: tuple[int, ...], b: int, f: int, d: int) -> str:
    if shape == (b, d):
        return "this is (batch, dim), the same vector for every field: subtract each field's own v_i, giving one row per field"
    if shape == (b, 1, d):
        return "this is only sum_j v_j: subtract v (broadcasting over the fields gives (batch, n_fields, dim))"
    if shape == (b,):
        return "that is one number per example, like the interaction itself: the gradient has the input's shape"
    return "the gradient with respect to v has the shape of v"


def check_fm_gradient(fm_gradient: Callable[[Tensor], Tensor]) -> None:
    """Check ``fm_gradient(v: (batch, n_fields, dim)) -> (batch, n_fields, dim)``, the gradient of
    ``sum_b FM(v_b)`` with respect to ``v``: ``sum_j v_j - v_i`` for field ``i``.

    Compares with autograd through the brute-force pair sum on the cases of :func:`fm_cases`.
    Raises ``AssertionError`` saying what is wrong; prints one line when every case passes.
    """
    name = getattr(fm_gradient, "__name__", "fm_gradient")
    if not callable(fm_gradient):
        raise AssertionError(f"expected a function v -> gradient tensor, got {type(fm_gradient).__name__}")
    for case, v in fm_cases().items():
        b, f, d = v.shape
        out = _call(fm_gradient, v.clone(), name, case)
        if tuple(out.shape) != (b, f, d):
            raise AssertionError(
                f"{name} returned shape {tuple(out.shape)} on case '{case}'; expected {(b, f, d)} -- "
                + _gradient_shape_hint(tuple(out.shape), b, f, d)
            )
        x = v.clone().requires_grad_(True)
        (ref,) = torch.autograd.grad(_bruteforce(x).sum(), x)
        scale = float(v.abs().max()) * f
        if _close(out, ref, scale):
            continue
        for message, wrong in _gradient_mistakes(v).items():
            if _close(out, wrong, scale):
                raise AssertionError(f"{name} is wrong on case '{case}': {message}")
        raise AssertionError(
            f"{name} differs from autograd through the pair sum by up to {_max_gap(out, ref):.4g} on case "
            f"'{case}'; the gradient for field i is sum_j v_j - v_i"
        )
    print(f"{name}: all {len(fm_cases())} cases match autograd through the brute-force pair sum.")
