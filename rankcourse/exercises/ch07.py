r"""Self-checks for chapter 7 (class imbalance and task weights).

* :func:`check_platt_scaling` -- Platt scaling, :math:`p = \sigma(a z + b)` fitted on held-out logits,
  the practical recalibration of a focal-loss model (or of any model whose calibration drifted).

The check runs the student's code on small cases (three rows, one class only) against a reference
computed here, and raises ``AssertionError`` with a message that says what is wrong and, for the
common mistakes, why.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ._seeding import numpy_rng

__all__ = ["check_platt_scaling", "reference_platt"]


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
    rng = numpy_rng(6, seed)  # a grading seed draws other values (6: the public cases of chapter 6's time)
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
