"""Self-checks for chapter 6 (capacity and tuning).

* :func:`check_behaviour_pooling` -- a target-attention pooling of a user's behaviour sequence
  (the interface of DIN, Zhou et al. 2018), checked on random tensors.

The check runs the student's module on small cases (a batch of one, padded positions, empty
histories) and raises ``AssertionError`` with a message that says what is wrong and, for the common
mistakes, why.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ._seeding import case_seed, torch_generator

__all__ = ["check_behaviour_pooling"]


# ----------------------------------------------------------------------------- behaviour pooling
def check_behaviour_pooling(make_module: Callable[[int], nn.Module], *, seed: int | None = None) -> None:
    """Check a target-attention pooling of a behaviour sequence.

    ``make_module(dim)`` returns an ``nn.Module`` whose forward takes ``history (B, T, d)`` float,
    ``candidate (B, d)`` float and ``mask (B, T)`` bool (True = a real behaviour, False = padding)
    and returns ``(B, d)``: one vector per row summarising the history *with respect to the
    candidate*. Checked: shapes (including a batch of one), that padded positions have no effect,
    that a user with no history gets a finite vector, that the result depends on the candidate
    (otherwise it is plain pooling, not attention), and that gradients reach the history.
    ``seed`` None runs the public cases; an integer (the grader's) draws other tensors and weights.
    """
    gen = torch_generator(0, seed)
    dim, length = 8, 5
    torch.manual_seed(case_seed(0, seed, salt=1))  # the module's initial weights
    module = make_module(dim)
    if not isinstance(module, nn.Module):
        raise AssertionError(f"make_module({dim}) returned {type(module).__name__}; expected an nn.Module")
    module.eval()
    label = type(module).__name__

    def run(h: torch.Tensor, c: torch.Tensor, m: torch.Tensor, case: str) -> torch.Tensor:
        try:
            out = module(h, c, m)
        except Exception as err:  # noqa: BLE001
            raise AssertionError(f"{label} raised {type(err).__name__}: {err} on case {case!r} "
                                 f"(history {tuple(h.shape)}, candidate {tuple(c.shape)}, mask {tuple(m.shape)})") from err
        if not isinstance(out, torch.Tensor):
            raise AssertionError(f"{label} returned {type(out).__name__} on case {case!r}; expected a tensor")
        want = (h.shape[0], h.shape[2])
        if tuple(out.shape) != want:
            hint = " -- sum (or average) over the history axis T" if out.dim() == 3 else ""
            raise AssertionError(f"{label} returned shape {tuple(out.shape)} on case {case!r}; expected {want}{hint}")
        return out

    with torch.no_grad():
        _check_values(run, gen, dim, length, label)

    # Gradients reach the real behaviours.
    module.train()
    h = torch.randn(2, length, dim, generator=gen, requires_grad=True)
    c = torch.randn(2, dim, generator=gen)
    m = torch.ones(2, length, dtype=torch.bool)
    m[:, -1] = False
    run(h, c, m, "gradient").sum().backward()
    if h.grad is None or float(h.grad[:, :-1].abs().sum()) == 0.0:
        raise AssertionError(f"{label}: no gradient reaches the history embeddings (did you detach them?)")
    print("check_behaviour_pooling: shapes, padding, empty histories, candidate dependence and gradients all pass.")


def _check_values(run: Callable, gen: torch.Generator, dim: int, length: int, label: str) -> None:
    """The value checks of :func:`check_behaviour_pooling` (run under ``no_grad``)."""
    for batch in (4, 1):
        case = "batch of one" if batch == 1 else "batch of four"
        h = torch.randn(batch, length, dim, generator=gen)
        c = torch.randn(batch, dim, generator=gen)
        m = torch.ones(batch, length, dtype=torch.bool)
        m[:, -2:] = False
        out = run(h, c, m, case)
        if not torch.isfinite(out).all():
            raise AssertionError(f"{label} returned NaN or inf on case {case!r}")

        # Padding must not matter: change what sits at the padded positions.
        h2 = h.clone()
        h2[:, -2:] = 100.0 * torch.randn(batch, 2, dim, generator=gen)
        diff = float((run(h2, c, m, case + ", new padding") - out).abs().max())
        if diff > 1e-5:
            raise AssertionError(
                f"{label}: changing the embeddings at PADDED positions (mask False) changed the output by {diff:.3g} "
                f"on case {case!r}. Padded positions must get zero weight: apply the mask to the attention weights."
            )

    # A user with no history at all.
    h = torch.randn(3, length, dim, generator=gen)
    c = torch.randn(3, dim, generator=gen)
    m = torch.ones(3, length, dtype=torch.bool)
    m[1] = False
    out = run(h, c, m, "one row with no history")
    if not torch.isfinite(out).all():
        raise AssertionError(
            f"{label} returned NaN/inf for a user with an EMPTY history (all mask False). A softmax over a row of "
            "-inf scores gives 0/0; either use DIN's unnormalised weights or set empty rows to zero explicitly."
        )

    # The candidate must matter (target attention, not plain pooling).
    h = torch.randn(2, length, dim, generator=gen)
    m = torch.ones(2, length, dtype=torch.bool)
    c1, c2 = torch.randn(2, dim, generator=gen), torch.randn(2, dim, generator=gen)
    o1, o2 = run(h, c1, m, "candidate A"), run(h, c2, m, "candidate B")
    if float((o1 - o2).abs().max()) < 1e-6:
        raise AssertionError(
            f"{label}: the output does not depend on the candidate. Sum or mean pooling of the history gives every "
            "candidate the same user vector; DIN's point is to weigh each behaviour by its relevance to the candidate."
        )

