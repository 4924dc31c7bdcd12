"""Self-checks for the code exercises of Chapter 1 (the common framework and its losses).

* :func:`check_focal_grad` -- the gradient of the focal loss with respect to the logit, per element.
* :func:`check_bias_newton_step` -- one Newton step on a shift shared by every logit, the cheapest
  recalibration of a model that ranks well but predicts too high or too low.
* :func:`check_smoothed_bce_grad` -- the gradient at the logit of the cross-entropy with smoothed
  labels, ``t = (1 - eps) y + eps / 2``.
* :func:`check_prior_shift_ratio` -- the class-weight ratio ``w1 / w0`` that makes a model trained on
  logs with one click rate calibrated for traffic with another (only the share of clicks changes).

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

from ._seeding import numpy_rng, torch_generator

__all__ = [
    "check_bias_newton_step",
    "check_focal_grad",
    "check_prior_shift_ratio",
    "check_smoothed_bce_grad",
    "reference_bias_newton_step",
    "reference_prior_shift_ratio",
    "reference_smoothed_bce_grad",
]


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


def _focal_cases(seed: int | None) -> list[tuple[str, Tensor, Tensor, float, float]]:
    """The public cases, or (given ``seed``) hidden ones with the same roles and new values."""
    moderate = torch.tensor([-3.0, -1.0, -0.2, 0.0, 0.5, 2.0, 4.0], dtype=torch.float64)
    params = [(0.25, 2.0), (0.6, 0.0), (0.25, 0.5)]
    one = 0.7
    if seed is not None:
        gen = torch_generator(1, seed)
        moderate = torch.cat([3 * torch.randn(6, generator=gen, dtype=torch.float64), torch.zeros(1).double()])
        alphas = (0.1 + 0.8 * torch.rand(3, generator=gen)).tolist()
        params = [(alphas[0], 1.0 + float(torch.randint(1, 4, (1,), generator=gen))), (alphas[1], 0.0),
                  (alphas[2], 0.5)]
        one = float(torch.randn(1, generator=gen))
    n = len(moderate)
    ones, zeros = torch.ones(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    (a1, g1), (a2, g2), (a3, g3) = params
    return [
        (f"both labels, alpha={a1:g}, gamma={g1:g}", torch.cat([moderate, moderate]), torch.cat([ones, zeros]), a1, g1),
        (f"gamma=0 (weighted BCE), alpha={a2:g}", torch.cat([moderate, moderate]), torch.cat([zeros, ones]), a2, g2),
        (f"fractional gamma={g3:g}, alpha={a3:g}", torch.cat([moderate, moderate]), torch.cat([ones, zeros]), a3, g3),
        (f"batch of one: z={one:g}, y=1, alpha=0.25, gamma=2", torch.tensor([one], dtype=torch.float64),
         torch.tensor([1.0], dtype=torch.float64), 0.25, 2.0),
        ("extreme logits +-40 and +-100, gamma=2",
         torch.tensor([-100.0, -40.0, 40.0, 100.0, -100.0, -40.0, 40.0, 100.0], dtype=torch.float64),
         torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64), 0.25, 2.0),
    ]


def check_focal_grad(focal_grad_fn: Callable[..., Tensor], *, seed: int | None = None) -> None:
    """Check ``focal_grad_fn(logits, labels, alpha, gamma) -> Tensor`` (same shape as ``logits``).

    It must return :math:`\\partial\\,\\mathrm{FL}(z_i, y_i) / \\partial z_i` for every element
    (no reduction), where :math:`\\mathrm{FL} = -\\alpha_t (1-p_t)^\\gamma \\log p_t` (Lin et al. 2017),
    and stay finite and accurate at extreme logits. ``seed`` (for grading) replaces the public
    cases by hidden ones with the same roles.

    Raises:
        AssertionError naming the case and the likely mistake. Prints one line when all cases pass.
    """
    name = getattr(focal_grad_fn, "__name__", "your function")
    if not callable(focal_grad_fn):
        raise AssertionError(f"check_focal_grad needs a function, got {type(focal_grad_fn).__name__}")
    cases = _focal_cases(seed)
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


# ----------------------------------------------------------------------------- Newton step on the bias
def reference_bias_newton_step(logits: Tensor, labels: Tensor) -> Tensor:
    """One Newton step on a shared shift ``delta`` of every logit, from ``delta = 0``.

    The mean log loss ``L(delta) = mean_i l(z_i + delta, y_i)`` has ``L'(0) = mean(p - y)`` and
    ``L''(0) = mean(p (1 - p))``; the step is ``-L'(0) / L''(0) = sum(y - p) / sum(p (1 - p))``.
    ``logits``, ``labels``: ``(batch,)``; returns a 0-d tensor.
    """
    p = torch.sigmoid(logits)
    return (labels - p).sum() / (p * (1 - p)).sum()


def _bias_cases(seed: int | None = None) -> list[tuple[str, Tensor, Tensor]]:
    gen = torch_generator(11, seed)
    z = -3.0 + 1.5 * torch.randn(400, generator=gen, dtype=torch.float64)
    y = torch.bernoulli(torch.sigmoid(z + 0.8), generator=gen)  # the model under-predicts
    z_over = -2.0 + torch.randn(300, generator=gen, dtype=torch.float64)
    y_over = torch.bernoulli(torch.sigmoid(z_over - 1.5), generator=gen)  # the model over-predicts
    z_ext = torch.cat([z[:50], torch.tensor([-800.0, 750.0], dtype=torch.float64)])
    y_ext = torch.cat([y[:50], torch.tensor([0.0, 1.0], dtype=torch.float64)])
    return [
        ("400 rows, the model predicts too low", z, y),
        ("300 rows, the model predicts too high", z_over, y_over),
        ("a batch of one click", torch.tensor([-1.0], dtype=torch.float64),
         torch.tensor([1.0], dtype=torch.float64)),
        ("52 rows, two with extreme logits (-800 and 750)", z_ext, y_ext),
    ]


def _bias_wrong_answers(z: Tensor, y: Tensor) -> list[tuple[Tensor, str]]:
    p = torch.sigmoid(z)
    n = len(z)
    ref = reference_bias_newton_step(z, y)
    wrong = [
        (-ref, "the sign is flipped: the step is -L'(0) / L''(0) with L'(0) = mean(p - y); when the "
               "model predicts too low (p < y on average) the shift must be positive"),
        ((y - p).mean(), "this is a plain gradient step with step size 1, mean(y - p): Newton's step "
                         "divides the first derivative by the second, mean(p (1 - p))"),
        ((y - p).sum() / p.sum(), "the curvature is wrong: the second derivative of the log loss in "
                                  "the logit is p (1 - p), not p"),
        (torch.logit(y.mean().clamp(1e-6, 1 - 1e-6)) - torch.logit(p.mean()),
         "this moves the logit of the mean prediction onto the logit of the click rate; that is not "
         "the Newton step (a shift of every logit does not shift the mean prediction's logit by the "
         "same amount)"),
    ]
    if n > 1:
        wrong += [
            ((y - p).sum() / (p * (1 - p)).mean(), f"it is {n} times too large: you summed the first "
                                                   "derivative but averaged the second; use the same "
                                                   "reduction for both"),
            ((y - p).mean() / (p * (1 - p)).sum(), f"it is {n} times too small: you averaged the first "
                                                   "derivative but summed the second"),
        ]
    return wrong


def check_bias_newton_step(step_fn: Callable[[Tensor, Tensor], Tensor], *, seed: int | None = None) -> None:
    """Check ``step_fn(logits, labels) -> 0-d tensor``: the Newton step for a shift of every logit.

    Compares with :func:`reference_bias_newton_step` on four cases (under- and over-prediction, a
    batch of one, extreme logits), names the usual slips, and then applies the step repeatedly:
    after five steps the mean of ``sigmoid(z + delta)`` must equal the click rate, the condition that
    holds at the minimum. Prints one line when everything passes. ``seed`` (for grading) draws
    hidden cases with the same roles.
    """
    name = getattr(step_fn, "__name__", "your function")
    if not callable(step_fn):
        raise AssertionError(f"check_bias_newton_step needs a function, got {type(step_fn).__name__}")
    for case, z, y in _bias_cases(seed):
        try:
            raw = step_fn(z.clone(), y.clone())
        except NotImplementedError:
            raise AssertionError(f"{name} is not written yet (it raised NotImplementedError)") from None
        out = _as_tensor(raw, name, case)
        if out.numel() != 1:
            raise AssertionError(
                f"{name} returned shape {tuple(out.shape)} on case '{case}'; expected one number (a 0-d "
                "tensor): the shift delta is shared by every row. Did you return the shifted logits?"
            )
        out = out.reshape(())
        if not bool(torch.isfinite(out)):
            raise AssertionError(
                f"{name} returned {out.item()} on case '{case}': compute p with torch.sigmoid (stable for "
                "any logit), not exp(z) / (1 + exp(z)), which overflows at z = 750"
            )
        ref = reference_bias_newton_step(z, y)
        if _close(out, ref, atol=1e-9, rtol=1e-7):
            continue
        for w, message in _bias_wrong_answers(z, y):
            if _close(out, w, atol=1e-9, rtol=1e-7) and not _close(w, ref):
                raise AssertionError(f"{name} is wrong on case '{case}': {message}.")
        raise AssertionError(
            f"{name} returned {out.item():.6g} on case '{case}', expected {ref.item():.6g} = "
            "sum(y - p) / sum(p (1 - p))"
        )
    z, y = _bias_cases(seed)[0][1:]
    delta = torch.zeros((), dtype=torch.float64)
    for _ in range(5):
        delta = delta + _as_tensor(step_fn((z + delta).clone(), y.clone()), name, "iteration").reshape(())
    gap = abs(torch.sigmoid(z + delta).mean().item() - y.mean().item())
    if gap > 1e-9:
        raise AssertionError(
            f"after five steps of {name} the mean prediction differs from the click rate by {gap:.3g}; "
            "at the minimum of the log loss over a shared shift they are equal"
        )
    print(f"check_bias_newton_step: all {len(_bias_cases())} cases pass, and five steps make the mean "
          "prediction equal to the click rate.")


# ----------------------------------------------------------------------------- label smoothing
def reference_smoothed_bce_grad(logits: Tensor, labels: Tensor, eps: float) -> Tensor:
    """Per element, the derivative in the logit of the cross-entropy against the smoothed target.

    With ``t = (1 - eps) y + eps / 2`` the loss is ``-t log sigma(z) - (1 - t) log sigma(-z)`` and its
    derivative is ``sigma(z) - t``. ``logits``, ``labels``: any shape; returns the same shape.
    """
    return torch.sigmoid(logits) - ((1 - eps) * labels + eps / 2)


def _smoothing_wrong_answers(z: Tensor, y: Tensor, eps: float) -> list[tuple[Tensor, str]]:
    p = torch.sigmoid(z)
    ref = reference_smoothed_bce_grad(z, y, eps)
    return [
        (-ref, "has the opposite sign: the derivative of the loss is p - t, positive when the "
               "prediction is above the target"),
        (p - y, "is the plain cross-entropy's p - y: the target must be the smoothed label "
                "t = (1 - eps) y + eps / 2, not y"),
        (p - ((1 - eps) * y + eps), "uses t = (1 - eps) y + eps: the smoothing mass eps is shared by "
                                    "the two classes, eps / 2 each"),
        (p - (y + eps / 2), "forgets the factor (1 - eps) on y: t = (1 - eps) y + eps / 2 stays in "
                            "[0, 1]; y + eps / 2 exceeds 1 for a click"),
        (p - (1 - eps) * y, "forgets the eps / 2 that a non-click receives: for y = 0 the target is "
                            "eps / 2, not 0"),
        (ref / z.numel(), f"is divided by n = {z.numel()}: you returned the gradient of the MEAN loss; "
                          "return one derivative per logit"),
    ]


def _smoothing_cases(seed: int | None = None) -> list[tuple[str, Tensor, Tensor, float]]:
    """The public cases, or (given ``seed``) hidden ones with the same roles and new values."""
    moderate = torch.tensor([-4.0, -1.5, -0.3, 0.0, 0.4, 1.0, 3.0], dtype=torch.float64)
    eps_a, eps_b, eps_one, one = 0.1, 0.3, 0.2, 0.5
    big, huge = 40.0, 100.0
    if seed is not None:
        gen = torch_generator(21, seed)
        moderate = torch.cat([3 * torch.randn(6, generator=gen, dtype=torch.float64),
                              torch.zeros(1, dtype=torch.float64)])
        eps_a, eps_b, eps_one = (round(0.05 + 0.4 * float(e), 2) for e in torch.rand(3, generator=gen))
        one = round(2 * float(torch.randn(1, generator=gen)), 2)
        big = float(torch.randint(30, 61, (1,), generator=gen))
        huge = float(torch.randint(80, 151, (1,), generator=gen))
    n = len(moderate)
    both = torch.cat([torch.ones(n), torch.zeros(n)]).double()
    extreme = torch.tensor([-huge, -big, big, huge], dtype=torch.float64)
    return [
        (f"both labels, eps = {eps_a:g}", torch.cat([moderate, moderate]), both, eps_a),
        (f"both labels, eps = {eps_b:g}", torch.cat([moderate, moderate]), both, eps_b),
        ("eps = 0 (the plain cross-entropy)", moderate, torch.ones(n, dtype=torch.float64), 0.0),
        (f"batch of one: z = {one:g}, y = 0, eps = {eps_one:g}", torch.tensor([one], dtype=torch.float64),
         torch.tensor([0.0], dtype=torch.float64), eps_one),
        (f"extreme logits +-{big:g} and +-{huge:g}, eps = {eps_a:g}", torch.cat([extreme, extreme]),
         torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64), eps_a),
    ]


def check_smoothed_bce_grad(grad_fn: Callable[..., Tensor], *, seed: int | None = None) -> None:
    """Check ``grad_fn(logits, labels, eps) -> Tensor``: d loss / d z per element, smoothed labels.

    Compares with autograd of the smoothed cross-entropy on a few cases (both labels, eps = 0, a
    batch of one, extreme logits) and names the usual slips. Prints one line when all cases pass.
    ``seed`` (for grading) draws hidden cases with the same roles.
    """
    name = getattr(grad_fn, "__name__", "your function")
    if not callable(grad_fn):
        raise AssertionError(f"check_smoothed_bce_grad needs a function, got {type(grad_fn).__name__}")
    cases = _smoothing_cases(seed)
    for case, z, y, eps in cases:
        try:
            raw = grad_fn(z.clone(), y.clone(), eps)
        except NotImplementedError:
            raise AssertionError(f"{name} is not written yet (it raised NotImplementedError)") from None
        out = _as_tensor(raw, name, case)
        if out.numel() == 1 and z.numel() > 1:
            raise AssertionError(
                f"{name} returned a single number on case '{case}'; expected one derivative per logit, "
                f"shape {tuple(z.shape)} -- do not sum or average over the batch"
            )
        _check_shape(out, tuple(z.shape), name, case, "one derivative per logit")
        zz = z.clone().requires_grad_(True)
        t = (1 - eps) * y + eps / 2
        loss = -(t * F.logsigmoid(zz) + (1 - t) * F.logsigmoid(-zz)).sum()
        (ref,) = torch.autograd.grad(loss, zz)
        if not bool(torch.isfinite(out).all()):
            raise AssertionError(
                f"{name} returned a non-finite value on case '{case}'; torch.sigmoid(z) is finite for "
                "any z, so p - t is too"
            )
        if _close(out, ref, atol=1e-9, rtol=1e-7):
            continue
        for wrong, message in _smoothing_wrong_answers(z, y, eps):
            if _close(out, wrong, atol=1e-9, rtol=1e-7) and not _close(wrong, ref, atol=1e-9, rtol=1e-7):
                raise AssertionError(f"{name} on case '{case}' {message}.")
        i = int((out - ref).abs().flatten().argmax())
        raise AssertionError(
            f"{name} differs from autograd of the smoothed loss on case '{case}' at "
            f"{_describe(z, y, i)}: got {out.flatten()[i].item():.6g}, expected "
            f"{ref.flatten()[i].item():.6g}"
        )
    print(f"check_smoothed_bce_grad: all {len(cases)} cases pass ({name} matches autograd).")


# ----------------------------------------------------------------------------- prior shift
def reference_prior_shift_ratio(rate_train: float, rate_serve: float) -> float:
    """``w1 / w0`` that turns the training click rate's odds into the serving rate's.

    If clicked and non-clicked rows look alike in both (only the share of clicks differs), the
    serving odds of a row are its training odds times ``odds(rate_serve) / odds(rate_train)``, and the
    weighted cross-entropy multiplies the odds of its optimum by ``w1 / w0``.
    """
    return (rate_serve / (1 - rate_serve)) / (rate_train / (1 - rate_train))


def _prior_wrong_answers(rt: float, rs: float) -> list[tuple[float, str]]:
    ref = reference_prior_shift_ratio(rt, rs)
    return [
        (rs / rt, "is the ratio of the click RATES, r_serve / r_train: the weights multiply the ODDS "
                  "p / (1 - p), so the ratio of the two rates' odds is needed"),
        (1 / ref, "is upside down: to predict MORE clicks than in training (r_serve > r_train) the "
                  "clicks must weigh more, w1 / w0 > 1"),
        (math.log(ref), "is the log of the answer: log(w1 / w0) is the shift of the logit, but the "
                        "question asks for the ratio of the weights"),
        ((1 - rt) / (1 - rs), "is the ratio of the non-click shares only: the click rates' own change "
                              "is missing"),
    ]


def _prior_cases(seed: int | None = None) -> list[tuple[float, float]]:
    """(rate_train, rate_serve): rising, falling, equal, large and rising, large and falling."""
    if seed is None:
        return [(0.02, 0.05), (0.05, 0.02), (0.02, 0.02), (0.3, 0.6), (0.5, 0.1)]
    rng = numpy_rng(22, seed)
    low = round(float(rng.uniform(0.005, 0.04)), 3)
    high = round(low * float(rng.uniform(1.5, 4.0)), 3)
    same = round(float(rng.uniform(0.005, 0.1)), 3)
    mid, up = round(float(rng.uniform(0.2, 0.4)), 2), round(float(rng.uniform(0.5, 0.8)), 2)
    half, down = round(float(rng.uniform(0.4, 0.6)), 2), round(float(rng.uniform(0.05, 0.15)), 2)
    return [(low, high), (high, low), (same, same), (mid, up), (half, down)]


def check_prior_shift_ratio(ratio_fn: Callable[[float, float], Any], *, seed: int | None = None) -> None:
    """Check ``ratio_fn(rate_train, rate_serve) -> float``, the weight ratio ``w1 / w0``.

    Tries rates that rise, fall, stay equal and are far from small; names the usual slips, then
    verifies the consequence: the optimum of the weighted loss, at the training rate, is the serving
    rate. Prints one line when everything passes. ``seed`` (for grading) draws hidden rates with
    the same roles.
    """
    name = getattr(ratio_fn, "__name__", "your function")
    if not callable(ratio_fn):
        raise AssertionError(f"check_prior_shift_ratio needs a function, got {type(ratio_fn).__name__}")
    cases = _prior_cases(seed)
    for rt, rs in cases:
        case = f"rate_train = {rt}, rate_serve = {rs}"
        try:
            raw = ratio_fn(rt, rs)
        except NotImplementedError:
            raise AssertionError(f"{name} is not written yet (it raised NotImplementedError)") from None
        try:
            out = float(raw)
        except (TypeError, ValueError):
            raise AssertionError(f"{name} returned {type(raw).__name__} on case '{case}'; expected one "
                                 "number, the ratio w1 / w0") from None
        ref = reference_prior_shift_ratio(rt, rs)
        if math.isclose(out, ref, rel_tol=1e-9):
            continue
        for wrong, message in _prior_wrong_answers(rt, rs):
            if math.isclose(out, wrong, rel_tol=1e-9) and not math.isclose(wrong, ref, rel_tol=1e-9):
                raise AssertionError(f"{name} on case '{case}' returned {out:.6g}, which {message}.")
        raise AssertionError(f"{name} returned {out:.6g} on case '{case}', expected {ref:.6g}")
    # the consequence: at the training rate, the weighted loss's optimum is the serving rate
    rt, rs = cases[0]
    ratio = float(ratio_fn(rt, rs))
    z_star = math.log(rt / (1 - rt)) + math.log(ratio)  # eq-wbce-shift
    served = 1 / (1 + math.exp(-z_star))
    if abs(served - rs) > 1e-12:
        raise AssertionError(f"with w1 / w0 = {ratio:.6g} the weighted loss's optimum at the training "
                             f"rate {rt} is {served:.6g}, not the serving rate {rs}")
    print(f"check_prior_shift_ratio: all {len(cases)} cases pass, and the weighted optimum at the "
          "training rate is the serving rate.")
