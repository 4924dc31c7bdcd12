"""Self-checks for the code exercises of Chapter 1 (the common framework and its losses).

* :func:`check_focal_grad` -- the gradient of the focal loss with respect to the logit, per element.
* :func:`check_downsampling_correction` -- the logit correction after keeping only a fraction of
  the negatives.

Each check runs the student's function on a few small cases (both labels, a batch of one, extreme
logits, edge values of the parameters) against a reference computed here, and raises
``AssertionError`` with a message that names the likely mistake.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["check_focal_grad", "check_downsampling_correction"]


# ----------------------------------------------------------------------------- helpers
def _as_tensor(out: Any, fn_name: str, case: str) -> Tensor:
    if not isinstance(out, Tensor):
        raise AssertionError(
            f"{fn_name} returned {type(out).__name__} on case '{case}'; expected a torch.Tensor"
        )
    return out.detach().to("cpu", torch.float64)


def _check_shape(out: Tensor, expected: tuple[int, ...], fn_name: str, case: str, hint: str) -> None:
    if tuple(out.shape) != expected:
        raise AssertionError(
            f"{fn_name} returned shape {tuple(out.shape)} on case '{case}'; expected {expected} -- {hint}"
        )


def _close(a: Tensor, b: Tensor, atol: float = 1e-6, rtol: float = 1e-5) -> bool:
    return a.shape == b.shape and bool(torch.all((a - b).abs() <= atol + rtol * b.abs()))


def _describe(z: Tensor, y: Tensor | None, i: int) -> str:
    where = f"z={z.flatten()[i].item():g}"
    return where if y is None else f"{where}, y={int(y.flatten()[i].item())}"


# ----------------------------------------------------------------------------- focal loss gradient
def _focal_loss_reference(z: Tensor, y: Tensor, alpha: float, gamma: float) -> Tensor:
    # -alpha_t (1 - p_t)^gamma log p_t with every power and log taken through logsigmoid (finite
    # for any logit); autograd of this sum gives the reference gradient.
    log_p, log_q = F.logsigmoid(z), F.logsigmoid(-z)
    pos = -alpha * torch.exp(gamma * log_q) * log_p
    neg = -(1 - alpha) * torch.exp(gamma * log_p) * log_q
    return y * pos + (1 - y) * neg


def _focal_grad_reference(z: Tensor, y: Tensor, alpha: float, gamma: float) -> Tensor:
    z = z.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(_focal_loss_reference(z, y, alpha, gamma).sum(), z)
    return g.detach()


def _focal_wrong_answers(z: Tensor, y: Tensor, alpha: float, gamma: float, ref: Tensor) -> list[tuple[Tensor, str]]:
    """Typical wrong answers and what to say about each (checked in this order)."""
    p = torch.sigmoid(z)
    p_t = torch.where(y == 1, p, 1 - p)
    alpha_t = torch.where(y == 1, torch.full_like(z, alpha), torch.full_like(z, 1 - alpha))
    n = z.numel()
    out = [
        (-ref, "has the opposite sign: it is the derivative of +alpha_t (1-p_t)^gamma log p_t. "
               "The loss has a minus in front; for y=1 the gradient must be negative (raise z), for y=0 positive."),
        (ref / n, f"is the per-element gradient divided by n={n}: you returned the gradient of the MEAN loss. "
                  "Return one derivative per logit, without averaging."),
        (alpha_t * (1 - p_t) ** gamma * (p - y),
         "equals alpha_t (1-p_t)^gamma (p - y): you treated the modulating factor (1-p_t)^gamma as a constant. "
         "It depends on z too: differentiate it with the product rule; the missing term contains gamma * log(p_t)."),
        (_focal_grad_reference(z, y, 1 - alpha, gamma),
         "equals the gradient with alpha and 1-alpha swapped: alpha weighs the POSITIVES (y=1), 1-alpha the negatives."),
        (_focal_grad_reference(z, y, 0.5, gamma) * 2,
         "equals the gradient without the alpha_t weight: multiply the y=1 terms by alpha and the y=0 terms by 1-alpha."),
        (ref / (p * (1 - p)),
         "looks like the derivative with respect to the probability p, not the logit z: multiply by dp/dz = p(1-p)."),
    ]
    return out


def check_focal_grad(focal_grad_fn: Callable[..., Tensor]) -> None:
    """Check ``focal_grad_fn(logits, labels, alpha, gamma) -> Tensor`` (same shape as ``logits``).

    It must return :math:`\\partial\\,\\mathrm{FL}(z_i, y_i) / \\partial z_i` for every element
    (no reduction), where :math:`\\mathrm{FL} = -\\alpha_t (1-p_t)^\\gamma \\log p_t` (Lin et al. 2017),
    and stay finite and accurate at extreme logits.

    Raises:
        AssertionError naming the case and the likely mistake. Prints one line when all cases pass.
    """
    name = getattr(focal_grad_fn, "__name__", "your function")
    if not callable(focal_grad_fn):
        raise AssertionError(f"check_focal_grad needs a function, got {type(focal_grad_fn).__name__}")
    moderate = torch.tensor([-3.0, -1.0, -0.2, 0.0, 0.5, 2.0, 4.0], dtype=torch.float64)
    cases = [
        ("both labels, alpha=0.25, gamma=2", torch.cat([moderate, moderate]),
         torch.cat([torch.ones(7), torch.zeros(7)]).double(), 0.25, 2.0),
        ("gamma=0 (weighted BCE), alpha=0.6", torch.cat([moderate, moderate]),
         torch.cat([torch.zeros(7), torch.ones(7)]).double(), 0.6, 0.0),
        ("fractional gamma=0.5, alpha=0.25", torch.cat([moderate, moderate]),
         torch.cat([torch.ones(7), torch.zeros(7)]).double(), 0.25, 0.5),
        ("batch of one: z=0.7, y=1, alpha=0.25, gamma=2", torch.tensor([0.7], dtype=torch.float64),
         torch.tensor([1.0], dtype=torch.float64), 0.25, 2.0),
        ("extreme logits +-40 and +-100, gamma=2",
         torch.tensor([-100.0, -40.0, 40.0, 100.0, -100.0, -40.0, 40.0, 100.0], dtype=torch.float64),
         torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64), 0.25, 2.0),
    ]
    for case, z, y, alpha, gamma in cases:
        try:
            raw = focal_grad_fn(z.clone(), y.clone(), alpha, gamma)
        except NotImplementedError:
            raise AssertionError(f"{name} is not written yet (it raised NotImplementedError)") from None
        out = _as_tensor(raw, name, case)
        if out.dim() == 0 or (out.numel() == 1 and z.numel() > 1):
            raise AssertionError(
                f"{name} returned a single number on case '{case}'; expected one gradient per logit, shape "
                f"{tuple(z.shape)} -- do not sum or average over the batch"
            )
        _check_shape(out, tuple(z.shape), name, case, "one derivative per logit, same shape as the logits")
        ref = _focal_grad_reference(z, y, alpha, gamma)
        bad = ~torch.isfinite(out)
        if bool(bad.any()):
            i = int(bad.flatten().nonzero()[0])
            raise AssertionError(
                f"{name} returned {out.flatten()[i].item()} at {_describe(z, y, i)} on case '{case}' "
                "(the true value is finite). Compute log p and log(1-p) as F.logsigmoid(z) and F.logsigmoid(-z), "
                "and powers as exp(gamma * logsigmoid(...)): sigmoid(z) rounds to exactly 0 or 1 at large |z|."
            )
        if _close(out, ref):
            continue
        if "extreme" not in case:
            for wrong, message in _focal_wrong_answers(z, y, alpha, gamma, ref):
                if torch.isfinite(wrong).all() and _close(out, wrong) and not _close(wrong, ref):
                    raise AssertionError(f"{name} on case '{case}' {message}")
        err = (out - ref).abs()
        i = int(err.flatten().argmax())
        hint = (" Large logits: use logsigmoid instead of log(sigmoid(z)) or log(1 - sigmoid(z))."
                if "extreme" in case else "")
        raise AssertionError(
            f"{name} differs from the reference by {err.flatten()[i].item():.3g} at {_describe(z, y, i)} on case "
            f"'{case}' (got {out.flatten()[i].item():.6g}, expected {ref.flatten()[i].item():.6g}).{hint}"
        )
    print(f"check_focal_grad: all {len(cases)} cases pass ({name} matches autograd of the focal loss).")


# ----------------------------------------------------------------------------- down-sampling correction
def check_downsampling_correction(correct_fn: Callable[[Tensor, float], Tensor]) -> None:
    """Check ``correct_fn(logits, keep_rate) -> Tensor``: calibrated logits of a model trained on
    data where each negative was kept with probability ``keep_rate`` (all positives kept).

    The reference is :math:`z + \\log r`: dropping negatives multiplies the odds by :math:`1/r`.

    Raises:
        AssertionError naming the case and the likely mistake. Prints one line when all cases pass.
    """
    name = getattr(correct_fn, "__name__", "your function")
    if not callable(correct_fn):
        raise AssertionError(f"check_downsampling_correction needs a function, got {type(correct_fn).__name__}")
    grid = torch.tensor([-6.0, -2.0, -0.5, 0.0, 1.0, 3.0], dtype=torch.float64)
    cases = [
        ("keep 10% of negatives", grid, 0.1),
        ("keep 50% of negatives", grid, 0.5),
        ("keep every negative (rate 1: nothing to correct)", grid, 1.0),
        ("batch of one, keep 2%", torch.tensor([0.3], dtype=torch.float64), 0.02),
        ("large logits, keep 1%", torch.tensor([-30.0, 25.0], dtype=torch.float64), 0.01),
    ]
    for case, z, r in cases:
        try:
            raw = correct_fn(z.clone(), r)
        except NotImplementedError:
            raise AssertionError(f"{name} is not written yet (it raised NotImplementedError)") from None
        out = _as_tensor(raw, name, case)
        _check_shape(out, tuple(z.shape), name, case, "one corrected logit per input logit")
        ref = z + math.log(r)
        if not bool(torch.isfinite(out).all()):
            raise AssertionError(
                f"{name} returned a non-finite value on case '{case}': work in logits (add a number) rather "
                "than going through probabilities, which round to 0 or 1 at large |z|"
            )
        if _close(out, ref, atol=1e-6, rtol=1e-6):
            continue
        wrong = [
            (z, "returned the logits unchanged: a model trained without most of its negatives over-predicts; "
                "add log(keep_rate) to every logit."),
            (torch.sigmoid(ref), "returned probabilities; return LOGITS (the course's models and losses work on logits)."),
            (z - math.log(r), "moves the logit the wrong way: with fewer negatives the model over-predicts, so the "
                              "correction must LOWER the logit. Add log(keep_rate), which is negative."),
            (z * r, "multiplied the logit by the rate; the rate multiplies the ODDS, which adds log(rate) to the logit."),
            (torch.logit(torch.sigmoid(z) * r), "multiplied the probability by the rate; the rate multiplies the "
                                                "ODDS p/(1-p), not p (they differ once p is not small)."),
        ]
        if r < 1:
            wrong.append((z + math.log(1 - r), "added log(1 - keep_rate); the factor is keep_rate itself: keeping a "
                                               "fraction r of the negatives scales the odds by 1/r."))
        for w, message in wrong:
            if bool(torch.isfinite(w).all()) and _close(out, w, atol=1e-6, rtol=1e-6) and not _close(w, ref):
                raise AssertionError(f"{name} on case '{case}' {message}")
        err = (out - ref).abs()
        i = int(err.flatten().argmax())
        raise AssertionError(
            f"{name} differs from z + log(keep_rate) by {err.flatten()[i].item():.3g} at {_describe(z, None, i)} "
            f"on case '{case}' (got {out.flatten()[i].item():.6g}, expected {ref.flatten()[i].item():.6g})"
        )
    print(f"check_downsampling_correction: all {len(cases)} cases pass.")
