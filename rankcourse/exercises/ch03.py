r"""Self-checks for chapter 3 (DeepFM): the factorization-machine term and a field-aware variant.

* :func:`check_fm_interaction` -- the second-order FM term computed by the square-of-sum identity
  (Rendle 2010),

  .. math:: \sum_{i<j} \langle v_i, v_j \rangle
            = \tfrac12 \sum_{d} \Big[ \big(\textstyle\sum_i v_{i,d}\big)^2 - \sum_i v_{i,d}^2 \Big].

* :func:`check_ffm_interaction` -- the pairwise term of a field-aware factorization machine
  (Juan et al. 2016), where field :math:`i` has one vector per partner field:
  :math:`\sum_{i<j} \langle v_{i,j}, v_{j,i} \rangle`.

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

from ._seeding import torch_generator

__all__ = ["check_ffm_interaction", "check_fm_interaction", "ffm_bruteforce", "ffm_cases", "fm_cases"]


# --------------------------------------------------------------------------- test inputs
def fm_cases(seed: int | None = None) -> dict[str, Tensor]:
    """The inputs the checks use: name -> float64 tensor ``(batch, n_fields, dim)``.

    The random case has batch 4, 3 fields and dimension 5, three different sizes, so that a sum
    over the wrong axis shows up as a wrong shape.
    """
    g = torch_generator(3, seed)  # a grading seed draws other values
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


def check_fm_interaction(fm_interaction: Callable[[Tensor], Tensor], *, seed: int | None = None) -> None:
    """Check ``fm_interaction(v: (batch, n_fields, dim)) -> (batch,)`` = sum over pairs i<j of <v_i, v_j>.

    Runs the cases of :func:`fm_cases` (float64), compares with the brute-force pair sum, and checks
    that autograd through ``fm_interaction`` gives the known gradient ``sum_j v_j - v_i``. Raises
    ``AssertionError`` saying what is wrong; prints one line when every case passes.
    """
    name = getattr(fm_interaction, "__name__", "fm_interaction")
    if not callable(fm_interaction):
        raise AssertionError(f"expected a function v -> (batch,) tensor, got {type(fm_interaction).__name__}")
    for case, v in fm_cases(seed).items():
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
    v = next(iter(fm_cases(seed).values())).clone().requires_grad_(True)
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


# --------------------------------------------------------------------------- field-aware FM
def ffm_cases(seed: int | None = None) -> dict[str, Tensor]:
    """Inputs of :func:`check_ffm_interaction`: name -> float64 ``(batch, n_fields, n_fields, dim)``.

    ``v[b, i, j]`` is the vector that field ``i``'s id uses when it meets field ``j``.
    """
    g = torch_generator(4, seed)  # a grading seed draws other values
    return {
        "random batch (4 examples, 3 fields, dim 5)": torch.randn(4, 3, 3, 5, generator=g, dtype=torch.float64),
        "batch of one (1 example, 5 fields, dim 2)": torch.randn(1, 5, 5, 2, generator=g, dtype=torch.float64),
        "one field (no pairs: the answer is 0)": torch.randn(2, 1, 1, 3, generator=g, dtype=torch.float64),
        "two fields (the answer is <v[0,1], v[1,0]>)": torch.randn(3, 2, 2, 4, generator=g, dtype=torch.float64),
    }


def ffm_bruteforce(v: Tensor) -> Tensor:
    """Field-aware FM (Juan et al. 2016): ``sum_{i<j} <v[:, i, j], v[:, j, i]>``, ``(B, F, F, d) -> (B,)``."""
    total = 0.0 * v.sum(dim=(1, 2, 3))  # zeros that stay in the autograd graph (one field: no pairs)
    for i, j in itertools.combinations(range(v.shape[1]), 2):
        total = total + (v[:, i, j] * v[:, j, i]).sum(dim=-1)
    return total


def _ffm_mistakes(v: Tensor) -> dict[str, Tensor]:
    pair = (v * v.transpose(1, 2)).sum(-1)  # (B, F, F): <v[i, j], v[j, i]>, symmetric
    diag = pair.diagonal(dim1=1, dim2=2).sum(-1)
    upper = torch.triu(torch.ones(v.shape[1], v.shape[1], dtype=torch.bool, device=v.device), diagonal=1)
    own = v.diagonal(dim1=1, dim2=2).transpose(1, 2)  # (B, F, d): v[i, i], the vector "for itself"
    return {
        "each pair is counted twice: sum over i < j only (or halve the sum over i != j)": pair.sum((1, 2)) - diag,
        "the terms i = j are included: a field is never paired with itself": (pair.sum((1, 2)) + diag) / 2,
        "the terms i = j are included and every pair is counted twice": pair.sum((1, 2)),
        "field i's vector was paired with the SAME vector index of field j: use v[i, j] with v[j, i], "
        "not v[i, j] with v[j, j] or v[i, j] with itself": (v.square().sum(-1) * upper).sum((1, 2)),
        "this is the plain FM over the vectors v[i, i]: in an FFM, field i uses a different vector for "
        "each partner j, v[i, j]": _bruteforce(own),
    }


def check_ffm_interaction(ffm_interaction: Callable[[Tensor], Tensor], *, seed: int | None = None) -> None:
    """Check ``ffm_interaction(v: (batch, n_fields, n_fields, dim)) -> (batch,)``.

    The field-aware FM's pairwise term is ``sum_{i<j} <v[:, i, j], v[:, j, i]>`` (Juan et al. 2016):
    field ``i`` meets field ``j`` with its vector for ``j``, and field ``j`` with its vector for ``i``.
    Compares with :func:`ffm_bruteforce` on :func:`ffm_cases`, names the usual slips, and checks that
    autograd flows through the answer. Prints one line when every case passes.
    """
    name = getattr(ffm_interaction, "__name__", "ffm_interaction")
    if not callable(ffm_interaction):
        raise AssertionError(f"expected a function v -> (batch,) tensor, got {type(ffm_interaction).__name__}")
    for case, v in ffm_cases(seed).items():
        b, f, _, d = v.shape
        out = _call(ffm_interaction, v.clone(), name, case)
        if tuple(out.shape) != (b,):
            hint = ("one number per example: sum over the pairs and over the dimension, keep the batch "
                    "dimension")
            if tuple(out.shape) == (b, f, f):
                hint = "this is the (batch, F, F) table of pair values: add up its entries above the diagonal"
            raise AssertionError(f"{name} returned shape {tuple(out.shape)} on case '{case}'; expected ({b},) "
                                 f"-- {hint}")
        ref = ffm_bruteforce(v)
        scale = float(v.abs().max()) ** 2 * f * f
        if _close(out, ref, scale):
            continue
        for message, wrong in _ffm_mistakes(v).items():
            if _close(out, wrong, scale) and not _close(wrong, ref, scale):
                raise AssertionError(f"{name} is wrong on case '{case}': {message}")
        raise AssertionError(
            f"{name} differs from the pair loop by up to {_max_gap(out, ref):.4g} on case '{case}'; the "
            "term is sum over i < j of <v[:, i, j], v[:, j, i]>"
        )
    v = next(iter(ffm_cases(seed).values())).clone().requires_grad_(True)
    out = _call(ffm_interaction, v, name, "gradient")
    if not out.requires_grad:
        raise AssertionError(f"{name}'s output does not depend on its input through autograd (no gradient "
                             "flows): stay in torch, do not detach or go through NumPy")
    (grad,) = torch.autograd.grad(out.sum(), v)
    vv = v.detach().clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(ffm_bruteforce(vv).sum(), vv)
    if not _close(grad, expected, float(v.detach().abs().max()) * v.shape[1]):
        raise AssertionError(f"autograd through {name} gives a gradient off by up to {_max_gap(grad, expected):.4g} "
                             "although the values match: is something computed outside torch?")
    print(f"{name}: all {len(ffm_cases())} cases match the pair loop, and gradients flow.")
