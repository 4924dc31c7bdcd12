"""Self-checks for the code exercises of Chapter 4 (DCN and DCN-V2).

* :func:`check_cross_v2_layer` -- one DCN-V2 cross layer, ``x_{l+1} = x_0 ⊙ (W x_l + b) + x_l``
  (Wang et al. 2021, eq. 1), written as a function of plain tensors.
* :func:`check_mix_param_count` -- the number of parameters of DCN-V2's low-rank mixture of cross
  experts (same paper, eq. 3-4) as :class:`rankcourse.layers.CrossNetMix` builds it.

Each check compares the student's answer with a reference on a few small cases and, when the
answer is wrong, says what is wrong: it recognises the usual mistakes (the bias outside the
product, ``x_l`` where ``x_0`` belongs, ``W`` transposed, a missing residual, a squeezed batch of
one) and names them.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = ["check_cross_v2_layer", "check_mix_param_count", "reference_cross_v2_layer", "reference_mix_param_count"]


# --------------------------------------------------------------------------- cross layer
def reference_cross_v2_layer(x0: Tensor, xl: Tensor, W: Tensor, b: Tensor) -> Tensor:
    """The DCN-V2 cross layer: ``x0 ⊙ (W xl + b) + xl`` for a batch of rows.

    Shapes: ``x0, xl (batch, d)``, ``W (d, d)`` stored like ``nn.Linear.weight`` (row ``i`` gives
    output ``i``), ``b (d,)`` -> ``(batch, d)``.
    """
    return x0 * (xl @ W.T + b) + xl


# The usual wrong answers, each with the hint the check prints when a student's output matches it.
_MISTAKES: tuple[tuple[str, Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]], ...] = (
    ("the bias is added outside the Hadamard product (x0 * (W xl) + b + xl, as torch-rechub does); "
     "the paper has it inside: x0 * (W xl + b) + xl",
     lambda x0, xl, W, b: x0 * (xl @ W.T) + b + xl),
    ("you multiplied by xl where x0 belongs: the Hadamard factor is always the input x0 of the cross "
     "network, not the current layer's input xl (that is what raises the degree by one per layer)",
     lambda x0, xl, W, b: xl * (xl @ W.T + b) + xl),
    ("W is applied transposed: with W stored like nn.Linear.weight (row i gives output i), "
     "W xl for a batch of rows is xl @ W.T, not xl @ W",
     lambda x0, xl, W, b: x0 * (xl @ W + b) + xl),
    ("the residual is missing: add xl at the end (x0 * (W xl + b) + xl)",
     lambda x0, xl, W, b: x0 * (xl @ W.T + b)),
    ("the residual adds x0; it should add the layer's input xl",
     lambda x0, xl, W, b: x0 * (xl @ W.T + b) + x0),
    ("the bias is outside the product and the residual is missing (x0 * (W xl) + b)",
     lambda x0, xl, W, b: x0 * (xl @ W.T) + b),
)


def _cases(d: int = 5) -> list[tuple[str, Tensor, Tensor, Tensor, Tensor]]:
    g = torch.Generator().manual_seed(4)
    W = torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5
    b = torch.randn(d, generator=g, dtype=torch.float64)
    x0 = torch.randn(3, d, generator=g, dtype=torch.float64)
    xl = torch.randn(3, d, generator=g, dtype=torch.float64)
    big = 1e3 * torch.randn(2, d, generator=g, dtype=torch.float64)
    return [
        ("batch of three", x0, xl, W, b),
        ("batch of one", x0[:1].clone(), xl[:1].clone(), W, b),
        ("first layer (xl = x0)", x0, x0.clone(), W, b),
        ("W = 0 (output must be x0 * b + xl)", x0, xl, torch.zeros_like(W), b),
        ("large inputs (|x| ~ 1e3)", big, big.flip(0), W, b),
    ]


def _as_tensor(out: object, case: str) -> Tensor:
    if not isinstance(out, Tensor):
        raise AssertionError(f"on case '{case}' the function returned {type(out).__name__}; expected a torch.Tensor")
    return out


def check_cross_v2_layer(fn: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor], atol: float = 1e-9) -> None:
    """Check ``fn(x0, xl, W, b)`` against the DCN-V2 cross layer ``x0 ⊙ (W xl + b) + xl``.

    Args:
        fn: the student's layer. Inputs are float64: ``x0, xl (batch, d)``, ``W (d, d)`` (like
            ``nn.Linear.weight``), ``b (d,)``; it must return ``(batch, d)`` -- also for a batch of one.
        atol: tolerance (relative to the size of the reference values).

    Raises:
        AssertionError naming the case and, when the answer matches a known mistake, the mistake.
    """
    for case, x0, xl, W, b in _cases():
        args = (x0.clone(), xl.clone(), W.clone(), b.clone())
        out = _as_tensor(fn(*args), case)
        for name, given, orig in zip(("x0", "xl", "W", "b"), args, (x0, xl, W, b)):
            if not torch.equal(given, orig):
                raise AssertionError(f"on case '{case}' the function changed its input {name} in place; "
                                     "compute a new tensor instead")
        expected = reference_cross_v2_layer(x0, xl, W, b)
        if tuple(out.shape) != tuple(expected.shape):
            hint = ""
            if out.numel() == expected.numel() and out.dim() < expected.dim():
                hint = (" -- a batch of one must stay (1, d); do not squeeze() the batch dimension")
            raise AssertionError(f"on case '{case}' the output has shape {tuple(out.shape)}; expected "
                                 f"{tuple(expected.shape)}{hint}")
        out = out.detach().to(torch.float64)
        scale = 1.0 + float(expected.abs().max())
        err = float((out - expected).abs().max())
        if err <= atol * scale:
            continue
        for hint, wrong in _MISTAKES:
            w = wrong(x0, xl, W, b)
            if float((out - w).abs().max()) <= atol * scale:
                raise AssertionError(f"on case '{case}' the output is off by {err:.3g}: {hint}")
        raise AssertionError(f"on case '{case}' the output differs from x0 * (W xl + b) + xl by up to {err:.3g} "
                             "(not one of the usual mistakes; print both and compare)")
    print("check_cross_v2_layer: all 5 cases pass (shapes, batch of one, bias inside, x0 as the factor, residual).")


# --------------------------------------------------------------------------- parameter count
def reference_mix_param_count(d: int, n_layers: int, rank: int, n_experts: int) -> int:
    """Parameters of :class:`rankcourse.layers.CrossNetMix`: per layer, ``n_experts`` experts with
    ``U, V (d x r)`` and ``C (r x r)``, one bias ``b (d)`` shared by the experts, and a softmax gate
    ``W_g (d x E)`` with bias ``(E)``."""
    per_layer = n_experts * (2 * d * rank + rank * rank) + d + n_experts * (d + 1)
    return n_layers * per_layer


def check_mix_param_count(fn: Callable[[int, int, int, int], int]) -> None:
    """Check ``fn(d, n_layers, rank, n_experts)`` against the parameter count of ``CrossNetMix``.

    The reference is measured, not only computed: it counts the parameters of a real
    :class:`rankcourse.layers.CrossNetMix` built with the same sizes.

    Raises:
        AssertionError naming the case and the part of the formula that looks wrong.
    """
    from ..layers import CrossNetMix

    cases = [(8, 1, 2, 1), (68, 2, 8, 4), (429, 3, 32, 4), (10, 3, 10, 2)]
    for d, L, r, E in cases:
        case = f"d={d}, n_layers={L}, rank={r}, n_experts={E}"
        got = fn(d, L, r, E)
        if isinstance(got, Tensor):
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, (int, float)) or got != int(got):
            raise AssertionError(f"on case {case} the function returned {got!r}; expected an integer count")
        got = int(got)
        measured = sum(p.numel() for p in CrossNetMix(d, L, rank=r, n_experts=E).parameters())
        if got == measured:
            continue
        # Which part is missing or counted twice? Compare with the count minus (or plus) each part.
        parts = {
            "the gates (E * (d + 1) per layer: a d x E weight and E biases)": L * E * (d + 1),
            "the gate biases (E per layer)": L * E,
            "the shared bias b (d per layer)": L * d,
            "C (r x r per expert)": L * E * r * r,
            "one of U and V (d x r per expert each)": L * E * d * r,
        }
        diff = measured - got
        hint = ""
        for what, size in parts.items():
            if diff == size:
                hint = f" -- you seem to have left out {what}"
                break
            if diff == -size:
                hint = f" -- you seem to have counted {what} twice"
                break
        if not hint and got * L == measured:
            hint = " -- you counted one layer; multiply by n_layers"
        if not hint and diff == -L * (E - 1) * d:
            hint = " -- the bias b is shared by the experts of a layer (d per layer), not one per expert"
        raise AssertionError(f"on case {case} the count is {got}; CrossNetMix has {measured} parameters{hint}")
    print(f"check_mix_param_count: all {len(cases)} cases match the parameters of a real CrossNetMix.")
