r"""Self-checks for chapter 6 (hyperparameters and tuning).

* :func:`check_platt_scaling` -- Platt scaling, :math:`p = \sigma(a z + b)` fitted on held-out logits,
  the practical recalibration of a focal-loss model (or of any model whose calibration drifted).
* :func:`check_behaviour_pooling` -- a target-attention pooling of a user's behaviour sequence
  (the interface of DIN, Zhou et al. 2018), checked on random tensors.

Each check runs the student's code on small cases (three rows, one class only, empty histories)
against a reference computed here, and raises ``AssertionError`` with a message that says what is
wrong and, for the common mistakes, why.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ._seeding import numpy_rng

__all__ = ["check_platt_scaling", "check_behaviour_pooling", "reference_platt"]


# ----------------------------------------------------------------------------- Platt scaling
def reference_platt(z: Any, y: Any, iterations: int = 50) -> tuple[float, float]:
    r"""Maximum-likelihood :math:`(a, b)` of :math:`p = \sigma(a z + b)`, by Newton's method in float64.

    The log loss of a logistic model is convex in :math:`(a, b)`, and Newton's method converges in a
    handful of steps when both classes are present and not perfectly separated by ``z``.
    """
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x = np.stack([z, np.ones_like(z)], 1)
    w = np.zeros(2)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) / len(y)
        hess = (x * (p * (1 - p))[:, None]).T @ x / len(y)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-12:
            break
    return float(w[0]), float(w[1])


def _platt_logloss(z: np.ndarray, y: np.ndarray, a: float, b: float) -> float:
    t = a * z + b
    # log(1 + e^t) - y t, written stably
    return float(np.mean(np.logaddexp(0.0, t) - y * t))


def _platt_cases(seed: int | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = numpy_rng(6, seed)  # a grading seed draws other values
    cases = []
    truth = rng.normal(-2.5, 1.5, 5_000)
    y = (rng.random(truth.size) < 1 / (1 + np.exp(-truth))).astype(np.float64)
    cases.append(("compressed logits (like a focal-loss model)", truth / 2.5 - 0.8, y))
    cases.append(("shifted logits (like a down-sampled model)", truth + np.log(10.0), y))
    cases.append(("already calibrated", truth.copy(), y))
    three = np.array([-1.0, 0.2, 1.5]) if seed is None else np.sort(rng.normal(0.0, 1.5, 3))
    cases.append(("three rows", three, np.array([0.0, 1.0, 0.0])))
    return cases


def check_platt_scaling(fit_platt: Callable[[Any, Any], tuple[float, float]], *, seed: int | None = None) -> None:
    r"""Check ``fit_platt(z, y) -> (a, b)``: Platt scaling, :math:`p = \sigma(a z + b)` fitted by
    maximum likelihood (no regularisation) on held-out logits ``z`` and 0/1 labels ``y`` (NumPy arrays).

    It must raise ``ValueError`` when ``y`` holds only one class (the fit has no finite optimum).
    """
    name = getattr(fit_platt, "__name__", "fit_platt")
    cases = _platt_cases(seed)
    for label, z, y in cases:
        try:
            out = fit_platt(z.copy(), y.copy())
        except Exception as err:  # noqa: BLE001 - report any failure with the case
            raise AssertionError(f"{name} raised {type(err).__name__}: {err} on case {label!r}") from err
        try:
            a, b = (float(v) for v in out)
        except (TypeError, ValueError):
            raise AssertionError(f"{name} returned {out!r} on case {label!r}; expected a pair of numbers (a, b)") from None
        if not (np.isfinite(a) and np.isfinite(b)):
            raise AssertionError(f"{name} returned a={a}, b={b} on case {label!r}: not finite")
        ra, rb = reference_platt(z, y)
        got, best = _platt_logloss(z, y, a, b), _platt_logloss(z, y, ra, rb)
        if got <= best + 1e-6 and abs(a - ra) <= 0.02 * max(1.0, abs(ra)) and abs(b - rb) <= 0.02 * max(1.0, abs(rb)):
            continue
        hint = ""
        if abs(b - ra) <= 0.02 * max(1.0, abs(ra)) and abs(a - rb) <= 0.02 * max(1.0, abs(rb)):
            hint = " It looks like (b, a): return the slope first."
        elif a < 0 < ra:
            hint = " A negative slope reverses the ranking: check the sign of your gradient (p - y, not y - p)."
        elif b == 0.0 and abs(rb) > 0.1:
            hint = (" b is exactly 0: that is temperature scaling, which can stretch the logits but cannot move the "
                    "base rate; Platt scaling needs the intercept.")
        else:
            pa, pb = reference_platt(1.0 / (1.0 + np.exp(-z)), y)
            if abs(a - pa) <= 0.02 * max(1.0, abs(pa)) and abs(b - pb) <= 0.02 * max(1.0, abs(pb)):
                hint = " These are the parameters of a fit on probabilities: Platt scaling works on the logits z."
            elif got > best + 1e-6:
                hint = (" Your (a, b) do not minimise the log loss: run more iterations, use a larger step, or use "
                        "Newton's method (the problem is convex in (a, b)).")
        raise AssertionError(
            f"{name} on case {label!r}: got a={a:.4f}, b={b:.4f} (log loss {got:.6f}); the maximum-likelihood fit is "
            f"a={ra:.4f}, b={rb:.4f} (log loss {best:.6f}).{hint}"
        )
    for label, y in [("all labels 0", np.zeros(50)), ("all labels 1", np.ones(50))]:
        z = np.linspace(-2, 2, 50)
        try:
            fit_platt(z, y)
        except ValueError:
            continue
        except Exception as err:  # noqa: BLE001
            raise AssertionError(f"{name} raised {type(err).__name__} on case {label!r}; expected ValueError") from err
        raise AssertionError(
            f"{name} did not raise ValueError on case {label!r}: with one class only, the likelihood keeps improving "
            "as b goes to -inf or +inf, so there is no fit to return"
        )
    print(f"check_platt_scaling: all {len(cases)} cases match the maximum-likelihood fit; one-class inputs are refused.")


# ----------------------------------------------------------------------------- behaviour pooling
def check_behaviour_pooling(make_module: Callable[[int], nn.Module], seed: int = 0) -> None:
    """Check a target-attention pooling of a behaviour sequence.

    ``make_module(dim)`` returns an ``nn.Module`` whose forward takes ``history (B, T, d)`` float,
    ``candidate (B, d)`` float and ``mask (B, T)`` bool (True = a real behaviour, False = padding)
    and returns ``(B, d)``: one vector per row summarising the history *with respect to the
    candidate*. Checked: shapes (including a batch of one), that padded positions have no effect,
    that a user with no history gets a finite vector, that the result depends on the candidate
    (otherwise it is plain pooling, not attention), and that gradients reach the history.
    """
    gen = torch.Generator().manual_seed(seed)
    dim, length = 8, 5
    torch.manual_seed(seed)
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

