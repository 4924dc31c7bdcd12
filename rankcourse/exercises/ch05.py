"""Self-checks for chapter 5 (multi-task learning with MMoE).

:func:`check_mmoe_mixture` tests a student's multi-gate mixture of experts (Ma et al. 2018, eq. 6-7):

.. math::

    m_k(x) = \\sum_{i=1}^{E} g_k(x)_i\\, f_i(x), \\qquad g_k(x) = \\operatorname{softmax}(a_k(x)),

on a batch: ``mixture(expert_outputs (B, E, H), gate_logits (B, T, E)) -> (B, T, H)``. When the answer
is wrong, the check compares it with the typical mistakes and names the one it matches (softmax over
the wrong axis -- the bug of DeepCTR's AutoInt, issue #63 --, one gate shared by all tasks, no
softmax, an unstable softmax, a transposed result).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ._seeding import torch_generator

__all__ = ["check_mmoe_mixture", "reference_mmoe_mixture"]


def reference_mmoe_mixture(expert_outputs: Tensor, gate_logits: Tensor) -> Tensor:
    """``(B, E, H)``, ``(B, T, E)`` -> ``(B, T, H)``: each task's softmax-weighted sum of the experts."""
    return torch.softmax(gate_logits, dim=-1) @ expert_outputs


def _cases(seed: int | None = None) -> list[tuple[str, Tensor, Tensor]]:
    gen = torch_generator(5, seed)  # a grading seed draws other values

    def rand(*shape: int, scale: float = 1.0) -> Tensor:
        return scale * torch.randn(*shape, generator=gen, dtype=torch.float64)

    return [
        # Distinct B, T, E, H, so that a result of the wrong shape cannot pass by accident.
        ("4 rows, 2 tasks, 3 experts of width 5", rand(4, 3, 5), rand(4, 2, 3, scale=2.0)),
        ("3 tasks", rand(6, 4, 2), rand(6, 3, 4, scale=2.0)),
        ("batch of one", rand(1, 3, 5), rand(1, 2, 3, scale=2.0)),
        ("one expert (every gate must give it weight 1)", rand(3, 1, 4), rand(3, 2, 1, scale=3.0)),
        ("extreme gate logits (+-1000)", rand(2, 3, 4), torch.tensor(
            [[[1000.0, -1000.0, 0.0], [-1000.0, 0.0, 1000.0]],
             [[0.0, 1000.0, 999.0], [1000.0, 1000.0, -1000.0]]], dtype=torch.float64)),
    ]


def _wrong_answers(f: Tensor, a: Tensor) -> list[tuple[str, Callable[[], Tensor]]]:
    """Typical mistakes, each as (diagnosis, value it would produce); tried only when shapes allow."""
    B, T, E = a.shape
    out = [
        ("the softmax runs over the tasks (dim 1) instead of over the experts (the last dim): each "
         "expert's weights then sum to one across tasks, not each task's weights across experts -- "
         "the same softmax-over-the-wrong-axis bug as DeepCTR's AutoInt (issue #63)",
         lambda: torch.softmax(a, dim=1) @ f),
        ("the softmax runs over the batch (dim 0) instead of over the experts (the last dim): "
         "the weights of one row then depend on the other rows of the batch",
         lambda: torch.softmax(a, dim=0) @ f),
        ("the gate logits are used as weights without a softmax: a task's weights must be positive "
         "and sum to one over the experts", lambda: a @ f),
        ("every task uses the first task's gate: task k must mix the experts with its own gate, "
         "softmax(gate_logits[:, k]) -- with one shared gate the model is OMoE, not MMoE",
         lambda: (torch.softmax(a[:, :1], dim=-1) @ f).expand(B, T, f.shape[2])),
        ("every task gets the same mixture (the gates were averaged over the tasks): each task k "
         "must use its own gate softmax(gate_logits[:, k])",
         lambda: (torch.softmax(a, dim=-1).mean(1, keepdim=True) @ f).expand(B, T, f.shape[2])),
        ("the weights are a sigmoid of the logits, not a softmax: they do not sum to one over the experts",
         lambda: torch.sigmoid(a) @ f),
        ("the experts are averaged with equal weights: the gate logits are ignored",
         lambda: f.mean(1, keepdim=True).expand(B, T, f.shape[2])),
    ]
    return out


def check_mmoe_mixture(mixture: Callable[[Tensor, Tensor], Tensor], *, seed: int | None = None) -> None:
    """Check ``mixture(expert_outputs (B, E, H), gate_logits (B, T, E)) -> (B, T, H)``.

    The result must be ``softmax(gate_logits, over experts) @ expert_outputs`` on every case:
    several shapes, a batch of one, a single expert, and extreme logits (where an unstable softmax
    overflows). Raises ``AssertionError`` saying what is wrong; prints one line when all pass.
    ``seed`` (for grading) draws hidden cases with the same shapes and new values.
    """
    if not callable(mixture):
        raise AssertionError(f"check_mmoe_mixture needs your function, got {type(mixture).__name__}")
    for name, f, a in _cases(seed):
        B, E, H = f.shape
        T = a.shape[1]
        f_in, a_in = f.clone(), a.clone()
        try:
            got = mixture(f_in, a_in)
        except Exception as exc:  # the student's error, reported with the case that caused it
            raise AssertionError(
                f"case '{name}': your function raised {type(exc).__name__}: {exc} "
                f"(inputs: expert_outputs {tuple(f.shape)} = (B, E, H), gate_logits {tuple(a.shape)} = (B, T, E))"
            ) from exc
        if not isinstance(got, Tensor):
            raise AssertionError(f"case '{name}': expected a torch.Tensor, got {type(got).__name__}")
        if not (torch.equal(f_in, f) and torch.equal(a_in, a)):
            raise AssertionError(f"case '{name}': your function changed its inputs in place; compute a new tensor")
        want_shape = (B, T, H)
        if tuple(got.shape) != want_shape:
            hint = ""
            if tuple(got.shape) == (B, H, T):
                hint = " -- tasks and units are swapped (transpose the result?)"
            elif tuple(got.shape) in ((B, H), (B, 1, H)):
                hint = " -- one mixture for all tasks? Each of the T tasks needs its own mixture"
            elif tuple(got.shape) == (B, T, E, H):
                hint = " -- the weighted experts were not summed over the expert dimension"
            raise AssertionError(
                f"case '{name}': returned shape {tuple(got.shape)}; expected (B, T, H) = {want_shape}{hint}"
            )
        got = got.detach().to(torch.float64)
        if not bool(torch.isfinite(got).all()):
            raise AssertionError(
                f"case '{name}': the result contains NaN or inf -- exp() of a logit of 1000 overflows; "
                "use torch.softmax (it subtracts the row maximum first) or subtract the max yourself"
            )
        want = reference_mmoe_mixture(f, a)
        err = float((got - want).abs().max())
        if err <= 1e-5 * (1.0 + float(want.abs().max())):
            continue
        for diagnosis, wrong in _wrong_answers(f, a):
            try:
                candidate = wrong()
            except RuntimeError:
                continue
            if candidate.shape == got.shape and torch.allclose(got, candidate, atol=1e-6, rtol=1e-5):
                raise AssertionError(f"case '{name}': {diagnosis}")
        raise AssertionError(
            f"case '{name}': value differs from softmax(gate_logits, dim=-1) @ expert_outputs by up to "
            f"{err:.3g} -- each task k should weight expert i by softmax(gate_logits[b, k])[i]"
        )
    print(f"check_mmoe_mixture: all {len(_cases())} cases pass (shapes, batch of one, one expert, extreme logits)")
