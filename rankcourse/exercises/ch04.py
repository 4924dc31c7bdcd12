"""Self-checks for the code exercises of Chapter 4 (DCN, DCN-V2 and xDeepFM's CIN).

* :func:`check_cin_layer` -- one layer of xDeepFM's compressed interaction network (Lian et al.
  2018, eq. 6), ``X^k_h = sum_{i,j} W_{h,i,j} (X^{k-1}_i ⊙ X^0_j)``, as a function of plain tensors.
* :func:`check_cin_weight_gradient` -- the gradient of ``L = sum(delta * X^k)`` with respect to
  that layer's weight ``W``.
* :func:`check_first_layer_jacobian` -- the Jacobian of DCN-V2's first cross layer,
  ``x_1 = x_0 * (W x_0 + b) + x_0``, with respect to its input ``x_0``: ``x_0`` enters twice.

Neither answer is printed in the chapter (the chapter uses the package's ``CIN`` module without
showing its code). Each check compares the student's answer with a reference on small cases and,
when the answer is wrong, recognises the usual mistakes and names them: ``X^{k-1}`` where ``X^0``
belongs, the two indices of ``W`` swapped, a bit-wise (all pairs of coordinates) product instead of
a vector-wise one, pooling over the embedding inside the layer, a batch mean instead of a sum.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ._seeding import hidden_size, torch_generator

__all__ = [
    "check_cin_layer",
    "check_cin_weight_gradient",
    "check_first_layer_jacobian",
    "reference_cin_layer",
    "reference_cin_weight_gradient",
    "reference_first_layer_jacobian",
]

LayerFn = Callable[[Tensor, Tensor, Tensor], Tensor]


# --------------------------------------------------------------------------- references
def reference_cin_layer(x0: Tensor, xk: Tensor, W: Tensor) -> Tensor:
    """One CIN layer without activation or bias: ``out[b, h] = sum_{i,j} W[h, i, j] xk[b, i] ⊙ x0[b, j]``.

    Shapes: ``x0 (batch, F, d)`` the field embeddings, ``xk (batch, H_prev, d)`` the previous
    layer's feature maps (``x0`` itself for the first layer), ``W (H, H_prev, F)`` -> ``(batch, H, d)``.
    """
    return torch.einsum("hij,bie,bje->bhe", W, xk, x0)


def reference_cin_weight_gradient(x0: Tensor, xk: Tensor, delta: Tensor) -> Tensor:
    """``dL/dW`` for ``L = sum(delta * cin_layer(x0, xk, W))``, summed over the batch.

    Shapes: ``x0 (batch, F, d)``, ``xk (batch, H_prev, d)``, ``delta (batch, H, d)`` ->
    ``(H, H_prev, F)``: ``dL/dW[h, i, j] = sum_{b, e} delta[b, h, e] xk[b, i, e] x0[b, j, e]``.
    """
    return torch.einsum("bhe,bie,bje->hij", delta, xk, x0)


# The usual wrong answers, each with the hint printed when a student's output matches it.
_LAYER_MISTAKES: tuple[tuple[str, LayerFn], ...] = (
    ("you multiplied the previous maps by themselves (xk ⊙ xk); the second factor is always the field "
     "embeddings x0 -- that is what raises the degree by one per layer",
     lambda x0, xk, W: torch.einsum("hij,bie,bje->bhe", W, xk, xk[:, : x0.shape[1]])),
    ("the two indices of W are swapped: W[h, i, j] weighs xk[:, i] ⊙ x0[:, j] (i runs over the previous "
     "maps, j over the fields)",
     lambda x0, xk, W: torch.einsum("hji,bie,bje->bhe", W, xk, x0)),
    ("you formed all products of coordinates, xk[:, i, e] * x0[:, j, e'] for every e, e' (bit-wise); "
     "a CIN multiplies whole vectors element by element (vector-wise): the same e in both factors",
     lambda x0, xk, W: torch.einsum("hij,bie,bjf->bhe", W, xk, x0)),
)

_GRADIENT_MISTAKES: tuple[tuple[str, LayerFn], ...] = (
    ("you averaged over the batch; L is a sum over the batch, so its gradient is a sum too",
     lambda x0, xk, delta: torch.einsum("bhe,bie,bje->hij", delta, xk, x0) / x0.shape[0]),
    ("the two indices i (previous maps) and j (fields) are swapped in the result",
     lambda x0, xk, delta: torch.einsum("bhe,bie,bje->hji", delta, xk, x0)),
    ("you used xk where x0 belongs (or the other way round): dL/dW[h, i, j] pairs xk[:, i] with x0[:, j]",
     lambda x0, xk, delta: torch.einsum("bhe,bie,bje->hij", delta, xk, xk[:, : x0.shape[1]])),
    ("you summed the products over all pairs of coordinates (e, e'); each term pairs the same "
     "coordinate e of delta, xk and x0",
     lambda x0, xk, delta: torch.einsum("bhe,bie,bjf->hij", delta, xk, x0)),
)


# --------------------------------------------------------------------------- cases and helpers
def _cases(seed: int | None = None) -> list[tuple[str, Tensor, Tensor, Tensor]]:
    """(name, x0 (B, F, d), xk (B, H_prev, d), W (H, H_prev, F)) in float64; ``seed``: other values."""
    g = torch_generator(8, seed)

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    x0 = randn(3, 4, 5)
    xk = randn(3, 6, 5)
    return [
        ("first layer (xk = x0, F = 4, d = 5, H = 3)", x0, x0.clone(), randn(3, 4, 4)),
        ("a later layer with as many maps as fields (H_prev = F = 4)", x0, randn(3, 4, 5), randn(3, 4, 4)),
        ("a later layer (H_prev = 6 maps, F = 4 fields, H = 2)", x0, xk, randn(2, 6, 4)),
        ("batch of one", x0[:1].clone(), xk[:1].clone(), randn(2, 6, 4)),
        ("one field, embedding size 1", x0[:, :1, :1].clone(), xk[:, :, :1].clone(), randn(2, 6, 1)),
    ]


def _as_tensor(out: object, case: str) -> Tensor:
    if not isinstance(out, Tensor):
        raise AssertionError(f"on case '{case}' the function returned {type(out).__name__}; expected a torch.Tensor")
    return out


def _check_unchanged(case: str, names: tuple[str, ...], given: tuple[Tensor, ...], orig: tuple[Tensor, ...]) -> None:
    for name, a, b in zip(names, given, orig):
        if not torch.equal(a, b):
            raise AssertionError(f"on case '{case}' the function changed its input {name} in place; "
                                 "compute a new tensor instead")


def _compare(case: str, out: Tensor, expected: Tensor, mistakes: tuple[tuple[str, LayerFn], ...],
             args: tuple[Tensor, Tensor, Tensor], what: str, shape_hint: str, atol: float) -> None:
    if tuple(out.shape) != tuple(expected.shape):
        raise AssertionError(f"on case '{case}' the output has shape {tuple(out.shape)}; expected "
                             f"{tuple(expected.shape)}{shape_hint}")
    out = out.detach().to(torch.float64)
    scale = 1.0 + float(expected.abs().max())
    err = float((out - expected).abs().max())
    if err <= atol * scale:
        return
    for hint, wrong in mistakes:
        try:
            candidate = wrong(*args)
        except RuntimeError:  # the mistake needs shapes this case does not have
            continue
        if candidate.shape == out.shape and float((out - candidate).abs().max()) <= atol * scale:
            raise AssertionError(f"on case '{case}' the output is off by {err:.3g}: {hint}")
    raise AssertionError(f"on case '{case}' the output differs from {what} by up to {err:.3g} "
                         "(not one of the usual mistakes; print both and compare)")


def _shape_hint(out: Tensor, expected: Tensor, pooled_hint: str) -> str:
    if out.dim() == expected.dim() - 1 and tuple(out.shape) == tuple(expected.shape[:-1]):
        return pooled_hint
    if out.numel() == expected.numel() and out.dim() < expected.dim():
        return " -- do not squeeze(): a batch of one keeps its batch dimension"
    if out.dim() == expected.dim() + 1:
        return " -- a dimension was not summed over (the batch? the embedding coordinate?)"
    return ""


# --------------------------------------------------------------------------- the checks
def check_cin_layer(fn: LayerFn, atol: float = 1e-9, *, seed: int | None = None) -> None:
    """Check ``fn(x0, xk, W)`` against one CIN layer, and against the package's ``CIN`` module.

    Args:
        fn: the student's layer; float64 inputs ``x0 (batch, F, d)``, ``xk (batch, H_prev, d)``,
            ``W (H, H_prev, F)``; it must return ``(batch, H, d)``, also for a batch of one.
        atol: tolerance, relative to the size of the reference values.
        seed: for grading, hidden cases with the same shapes and new values.

    Raises:
        AssertionError naming the case and, when the answer matches a known mistake, the mistake.
    """
    from ..layers import CIN

    for case, x0, xk, W in _cases(seed):
        args = (x0.clone(), xk.clone(), W.clone())
        out = _as_tensor(fn(*args), case)
        _check_unchanged(case, ("x0", "xk", "W"), args, (x0, xk, W))
        expected = reference_cin_layer(x0, xk, W)
        hint = _shape_hint(out, expected, " -- you summed over the embedding dimension; a CIN layer keeps "
                           "(batch, H, d) and sum-pooling happens only when the maps go to the output")
        _compare(case, out, expected, _LAYER_MISTAKES, (x0, xk, W), "sum_ij W[h,i,j] xk[:,i] ⊙ x0[:,j]", hint, atol)
    # The package's first CIN layer, sum-pooled, is the same function (its weight is W viewed flat).
    _, x0, _, W = _cases(seed)[0]
    cin = CIN(x0.shape[1], x0.shape[2], layer_sizes=(W.shape[0],), split_half=False).double()
    with torch.no_grad():
        cin.weights[0].copy_(W.reshape(W.shape[0], -1))
        expected = cin(x0)
    got = fn(x0.clone(), x0.clone(), W.clone()).detach().to(torch.float64).sum(-1)
    if not torch.allclose(got, expected, atol=atol * (1 + float(expected.abs().max()))):
        raise AssertionError("the layer agrees with the reference but, sum-pooled, not with rankcourse.layers.CIN; "
                             "please report this")
    print("check_cin_layer: all 5 cases pass, and the first layer sum-pooled equals rankcourse.layers.CIN.")


def check_cin_weight_gradient(fn: LayerFn, atol: float = 1e-9, *, seed: int | None = None) -> None:
    """Check ``fn(x0, xk, delta)`` against ``dL/dW`` of one CIN layer, with ``L = sum(delta * X^k)``.

    The reference is autograd through :func:`reference_cin_layer`, so the check also confirms that
    the closed form (the einsum of :func:`reference_cin_weight_gradient`) is right.

    Args:
        fn: the student's gradient; float64 inputs ``x0 (batch, F, d)``, ``xk (batch, H_prev, d)``,
            ``delta (batch, H, d)``; it must return ``(H, H_prev, F)`` summed over the batch.
        atol: tolerance, relative to the size of the reference values.
        seed: for grading, hidden cases with the same shapes and new values.

    Raises:
        AssertionError naming the case and, when the answer matches a known mistake, the mistake.
    """
    g = torch_generator(9, seed)
    for case, x0, xk, W in _cases(seed):
        delta = torch.randn(x0.shape[0], W.shape[0], x0.shape[2], generator=g, dtype=torch.float64)
        leaf = W.clone().requires_grad_(True)
        (delta * reference_cin_layer(x0, xk, leaf)).sum().backward()
        expected = leaf.grad
        args = (x0.clone(), xk.clone(), delta.clone())
        out = _as_tensor(fn(*args), case)
        _check_unchanged(case, ("x0", "xk", "delta"), args, (x0, xk, delta))
        hint = _shape_hint(out, expected, "")
        if out.dim() == 4 and tuple(out.shape[1:]) == tuple(expected.shape):
            hint = " -- one gradient per example; L sums over the batch, so sum them"
        _compare(case, out, expected, _GRADIENT_MISTAKES, (x0, xk, delta), "the autograd gradient", hint, atol)
    print("check_cin_weight_gradient: all 5 cases agree with autograd.")


# --------------------------------------------------------------------------- DCN-V2: the first layer's Jacobian
def reference_first_layer_jacobian(x0: Tensor, W: Tensor, b: Tensor) -> Tensor:
    """Jacobian ``(D, D)`` of ``x1 = x0 * (W x0 + b) + x0`` with respect to ``x0`` (one example).

    Row ``i`` is the gradient of ``x1[i]``: ``I + diag(W x0 + b) + diag(x0) W``. The last term is the
    Jacobian with respect to the layer input that the chapter derives (``x_l`` with ``x0`` held
    fixed); in the first layer ``x_l`` *is* ``x0``, so the path through the factor ``x0`` adds
    ``diag(W x0 + b)``.
    """
    eye = torch.eye(len(x0), dtype=x0.dtype)
    return eye + torch.diag(W @ x0 + b) + x0[:, None] * W


def _jacobian_mistakes(x0: Tensor, W: Tensor, b: Tensor) -> tuple[tuple[str, Tensor], ...]:
    eye = torch.eye(len(x0), dtype=x0.dtype)
    ref = reference_first_layer_jacobian(x0, W, b)
    return (
        ("this is I + diag(x0) W, the Jacobian with respect to x_l with x0 held fixed: in the first "
         "layer x_l = x0, so x0 also enters through the factor x0 * (...), which adds diag(W x0 + b)",
         eye + x0[:, None] * W),
        ("the identity from the residual connection (+ x0) is missing", ref - eye),
        ("W appears transposed: d (W x0)_i / d x0_j = W[i, j], so row i of diag(x0) W is x0[i] W[i, :]",
         eye + torch.diag(W @ x0 + b) + x0[:, None] * W.T),
        ("the bias is missing from diag(W x0 + b): it multiplies x0 too, inside the product",
         eye + torch.diag(W @ x0) + x0[:, None] * W),
        ("the result is transposed: row i must hold the derivatives of output i (torch's convention)",
         ref.T),
        ("the product rule gives diag(W x0 + b) + diag(x0) W, a sum; this is a product of the two",
         eye + torch.diag(W @ x0 + b) @ (x0[:, None] * W)),
    )


def _jacobian_cases(seed: int | None = None) -> list[tuple[str, Tensor, Tensor, Tensor]]:
    """(name, x0 (D,), W (D, D), b (D,)); ``seed``: other sizes D and values, same roles."""
    gen = torch_generator(5, seed, salt=40)

    def draw(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    d_full, d_no_bias, d_zero = (hidden_size(d, seed, salt=40 + d) for d in (5, 4, 3))
    return [(f"D = {d_full}, random W and b", draw(d_full), draw(d_full, d_full), draw(d_full)),
            (f"D = {d_no_bias}, zero bias", draw(d_no_bias), draw(d_no_bias, d_no_bias),
             torch.zeros(d_no_bias, dtype=torch.float64)),
            ("D = 1", draw(1), draw(1, 1), draw(1)),
            ("x0 = 0", torch.zeros(d_zero, dtype=torch.float64), draw(d_zero, d_zero), draw(d_zero))]


def check_first_layer_jacobian(fn: Callable[[Tensor, Tensor, Tensor], Tensor], atol: float = 1e-9, *,
                               seed: int | None = None) -> None:
    """Check ``fn(x0, W, b) -> (D, D)``, the Jacobian of DCN-V2's first layer with respect to ``x0``.

    ``x0``: ``(D,)``; ``W``: ``(D, D)`` (like ``nn.Linear.weight``); ``b``: ``(D,)``; all float64.
    Compares with autograd on cases with a non-symmetric ``W``, a zero bias, ``D = 1`` and a zero
    input, and names the usual slips. Prints one line when every case passes. ``seed`` (for
    grading) draws hidden cases with the same roles, other sizes ``D`` and new values.
    """
    if not callable(fn):
        raise AssertionError(f"check_first_layer_jacobian needs a function, got {type(fn).__name__}")
    cases = _jacobian_cases(seed)
    for case, x0, W, b in cases:
        given = (x0.clone(), W.clone(), b.clone())
        try:
            out = _as_tensor(fn(*given), case)
        except NotImplementedError:
            raise AssertionError("the function is not written yet (it raised NotImplementedError)") from None
        _check_unchanged(case, ("x0", "W", "b"), given, (x0, W, b))
        expected = torch.autograd.functional.jacobian(lambda x: x * (W @ x + b) + x, x0)
        if tuple(out.shape) != tuple(expected.shape):
            raise AssertionError(f"on case '{case}' the output has shape {tuple(out.shape)}; expected "
                                 f"{tuple(expected.shape)}: one row per output coordinate, one column per "
                                 "input coordinate")
        out = out.detach().to(torch.float64)
        scale = 1.0 + float(expected.abs().max())
        err = float((out - expected).abs().max())
        if err <= atol * scale:
            continue
        for hint, wrong in _jacobian_mistakes(x0, W, b):
            if float((out - wrong).abs().max()) <= atol * scale and \
                    float((wrong - expected).abs().max()) > atol * scale:
                raise AssertionError(f"on case '{case}' the Jacobian is off by {err:.3g}: {hint}")
        raise AssertionError(f"on case '{case}' the Jacobian differs from autograd's by up to {err:.3g} "
                             "(not one of the usual mistakes; print both and compare)")
    print(f"check_first_layer_jacobian: all {len(cases)} cases pass (matches autograd).")
