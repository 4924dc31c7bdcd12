r"""Binary classification losses on logits, with their analytic gradients.

Every function takes raw logits :math:`z` (never probabilities) and 0/1 labels :math:`y` of the same
shape, and is written with :math:`\log\sigma(z)` (``logsigmoid``), which is finite for every finite
:math:`z`: computing :math:`\log(\sigma(z))` from a probability instead gives ``-inf`` once
:math:`\sigma(z)` rounds to 0 or 1 (around :math:`|z| > 17` in float32, :math:`|z| > 37` in
float64 for the upper side).

Losses (per element, before the reduction):

.. math::

    \mathrm{BCE}(z, y) &= -y \log\sigma(z) - (1-y) \log\sigma(-z)
        \qquad \partial_z = \sigma(z) - y

    \mathrm{WBCE}(z, y) &= -w_1\, y \log\sigma(z) - w_0\,(1-y) \log\sigma(-z)
        \qquad \partial_z = w_0 (1-y)\,\sigma(z) - w_1\, y\,\sigma(-z)

    \mathrm{FL}(z, y) &= -\alpha_t\,(1-p_t)^\gamma \log p_t, \quad
        p_t = \sigma(z) \text{ if } y=1 \text{ else } \sigma(-z), \quad
        \alpha_t = \alpha \text{ if } y=1 \text{ else } 1-\alpha

with, writing :math:`p = \sigma(z)`, :math:`\partial_z \mathrm{FL} = \alpha (1-p)^\gamma\,[\gamma\, p \log p - (1-p)]`
for :math:`y = 1` and :math:`(1-\alpha)\, p^\gamma\,[p - \gamma (1-p) \log(1-p)]` for :math:`y = 0`.

Identities (checked in the tests): WBCE with :math:`w_1 = w_0 = 1` is BCE; FL with :math:`\gamma = 0` is
WBCE with :math:`w_1 = \alpha, w_0 = 1-\alpha`, so FL with :math:`\gamma = 0, \alpha = 1/2` is BCE / 2.

Prior correction: over examples with click probability :math:`p`, the expected WBCE is minimised at
:math:`\sigma(z^*) = w_1 p / (w_1 p + w_0 (1-p))`, i.e. :math:`z^* = \mathrm{logit}(p) + \log(w_1/w_0)`. A model
trained with WBCE is therefore miscalibrated by exactly :math:`\log(w_1/w_0)` in the logit;
:func:`prior_correction` removes it. Keeping only a fraction :math:`r` of the negatives acts like
:math:`w_0 = r` (:func:`negative_sampling_correction`).

Reference: T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollár, "Focal Loss for Dense Object
Detection", ICCV 2017.

Reductions: ``"mean"`` (default; the plain mean over elements, not normalised by the weights),
``"sum"`` or ``"none"``. The ``*_grad`` functions return the gradient of the *reduced* loss with
respect to each logit (same shape as ``logits``), so ``bce_grad(z, y)`` equals
``torch.autograd.grad(bce_with_logits(z, y), z)``.

Input checks (``validate=True``): tensors, floating logits, equal shapes, no empty input, finite
logits, labels exactly 0 or 1. Each check reads values back from the device; a training loop that
has validated its data once may pass ``validate=False`` to avoid the per-step synchronisation.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "bce_with_logits",
    "squared_error",
    "default_loss",
    "weighted_bce_with_logits",
    "focal_loss",
    "bce_grad",
    "weighted_bce_grad",
    "focal_grad",
    "prior_correction",
    "negative_sampling_correction",
    "REDUCTIONS",
]

REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------- checks
def _check_inputs(logits: Any, labels: Any, reduction: str, validate: bool) -> tuple[Tensor, Tensor]:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not isinstance(logits, Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if not isinstance(labels, Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating tensor (raw scores), got {logits.dtype}")
    if logits.shape != labels.shape:
        raise ValueError(f"logits and labels must have the same shape, got {tuple(logits.shape)} and "
                         f"{tuple(labels.shape)} (no broadcasting: squeeze or reshape explicitly)")
    labels = labels.to(logits.dtype)
    if validate:
        if logits.numel() == 0:
            raise ValueError("logits and labels are empty (0 elements)")
        bad = ~torch.isfinite(logits.detach())
        if bool(bad.any()):
            i = int(bad.flatten().nonzero()[0])
            raise ValueError(f"logits must be finite, got {logits.detach().flatten()[i].item()} at flat index {i}")
        bad = (labels != 0) & (labels != 1)
        if bool(bad.any()):
            i = int(bad.flatten().nonzero()[0])
            raise ValueError(f"labels must be 0 or 1, got {labels.flatten()[i].item()} at flat index {i}")
    return logits, labels


def _check_weight(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def _check_class_weights(w1: Any, w0: Any) -> tuple[float, float]:
    a, b = _check_weight("w1", w1), _check_weight("w0", w0)
    if a == 0 and b == 0:
        raise ValueError("w1 and w0 are both 0: the loss would be identically zero")
    return a, b


def _check_focal(alpha: Any, gamma: Any) -> tuple[float, float]:
    try:
        a, g = float(alpha), float(gamma)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"alpha and gamma must be numbers, got {alpha!r} and {gamma!r}") from None
    if not 0.0 < a < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    if not (math.isfinite(g) and g >= 0):
        raise ValueError(f"gamma must be a finite number >= 0, got {gamma!r}")
    return a, g


def _reduce(x: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    return x


def _reduce_grad(g: Tensor, reduction: str) -> Tensor:
    # d(mean)/dz_i = (1/n) d(loss_i)/dz_i; sum and none keep the per-element derivative.
    return g / g.numel() if reduction == "mean" else g


# ----------------------------------------------------------------------------- losses
def bce_with_logits(logits: Tensor, labels: Tensor, reduction: str = "mean", *, validate: bool = True) -> Tensor:
    """Binary cross-entropy :math:`-y\\log\\sigma(z) - (1-y)\\log\\sigma(-z)` on logits.

    Args:
        logits: ``(...)`` raw scores :math:`z`.
        labels: ``(...)`` 0/1 labels, same shape.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        validate: check the inputs (see the module docstring).
    """
    z, y = _check_inputs(logits, labels, reduction, validate)
    # torch's fused kernel computes exactly this, as max(z, 0) - z*y + log(1 + exp(-|z|)).
    return F.binary_cross_entropy_with_logits(z, y, reduction=reduction)


def squared_error(outputs: Tensor, targets: Tensor, reduction: str = "mean", *, validate: bool = True) -> Tensor:
    r"""Squared error :math:`(\hat y - y)^2`, the loss of regression tasks.

    Args:
        outputs: ``(...)`` predicted values.
        targets: ``(...)`` real targets, same shape.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        validate: check shapes, dtypes and that both are finite (reads values from the device).
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not isinstance(outputs, Tensor) or not isinstance(targets, Tensor):
        raise TypeError(f"outputs and targets must be tensors, got {type(outputs).__name__} and {type(targets).__name__}")
    if not outputs.is_floating_point():
        raise TypeError(f"outputs must be a floating tensor, got {outputs.dtype}")
    if outputs.shape != targets.shape:
        raise ValueError(f"outputs and targets must have the same shape, got {tuple(outputs.shape)} and "
                         f"{tuple(targets.shape)} (no broadcasting: squeeze or reshape explicitly)")
    targets = targets.to(outputs.dtype)
    if validate:
        for name, t in (("outputs", outputs.detach()), ("targets", targets)):
            bad = ~torch.isfinite(t)
            if bool(bad.any()):
                i = int(bad.flatten().nonzero()[0])
                raise ValueError(f"{name} must be finite, got {t.flatten()[i].item()} at flat index {i}")
    return F.mse_loss(outputs, targets, reduction=reduction)


def default_loss(task_type: str) -> Callable[..., Tensor]:
    """The loss of a task type: :func:`bce_with_logits` for ``"binary"``, :func:`squared_error` for
    ``"regression"``. :func:`rankcourse.training.fit` and :func:`rankcourse.scale.replicas.train_replicas`
    use it when no loss is given."""
    try:
        return {"binary": bce_with_logits, "regression": squared_error}[task_type]
    except KeyError:
        raise ValueError(f"no default loss for task type {task_type!r}; expected 'binary' or 'regression'") from None


def weighted_bce_with_logits(logits: Tensor, labels: Tensor, w1: float = 1.0, w0: float = 1.0,
                             reduction: str = "mean", *, validate: bool = True) -> Tensor:
    """Class-weighted BCE :math:`-w_1 y\\log\\sigma(z) - w_0 (1-y)\\log\\sigma(-z)`.

    ``w1`` weighs positives, ``w0`` negatives (``pos_weight`` of PyTorch's BCEWithLogitsLoss is
    ``w1/w0`` up to an overall factor). Its minimiser is shifted by :math:`\\log(w_1/w_0)` in the
    logit: undo it with :func:`prior_correction`.
    """
    z, y = _check_inputs(logits, labels, reduction, validate)
    a, b = _check_class_weights(w1, w0)
    return _reduce(-(a * y * F.logsigmoid(z) + b * (1 - y) * F.logsigmoid(-z)), reduction)


def focal_loss(logits: Tensor, labels: Tensor, alpha: float = 0.25, gamma: float = 2.0,
               reduction: str = "mean", *, validate: bool = True) -> Tensor:
    """Focal loss :math:`-\\alpha_t (1-p_t)^\\gamma \\log p_t` (Lin et al. 2017) on logits.

    ``gamma`` down-weights easy examples (those with :math:`p_t` near 1); ``alpha`` in (0, 1) weighs
    positives, ``1 - alpha`` negatives. ``gamma = 0`` gives weighted BCE with
    ``w1 = alpha, w0 = 1 - alpha``. :math:`(1-p_t)^\\gamma` is computed as
    :math:`\\exp(\\gamma \\log\\sigma(\\mp z))`, finite at any logit.
    """
    z, y = _check_inputs(logits, labels, reduction, validate)
    a, g = _check_focal(alpha, gamma)
    log_p, log_q = F.logsigmoid(z), F.logsigmoid(-z)  # log p, log(1 - p)
    pos = -a * torch.exp(g * log_q) * log_p
    neg = -(1 - a) * torch.exp(g * log_p) * log_q
    return _reduce(y * pos + (1 - y) * neg, reduction)


# ----------------------------------------------------------------------------- gradients
def bce_grad(logits: Tensor, labels: Tensor, reduction: str = "mean", *, validate: bool = True) -> Tensor:
    """:math:`\\partial \\mathrm{BCE} / \\partial z = \\sigma(z) - y` (divided by n for ``"mean"``), shape of ``logits``."""
    z, y = _check_inputs(logits, labels, reduction, validate)
    return _reduce_grad(torch.sigmoid(z.detach()) - y, reduction)


def weighted_bce_grad(logits: Tensor, labels: Tensor, w1: float = 1.0, w0: float = 1.0,
                      reduction: str = "mean", *, validate: bool = True) -> Tensor:
    """:math:`w_0 (1-y)\\sigma(z) - w_1 y \\sigma(-z)` (divided by n for ``"mean"``), shape of ``logits``."""
    z, y = _check_inputs(logits, labels, reduction, validate)
    a, b = _check_class_weights(w1, w0)
    z = z.detach()
    return _reduce_grad(b * (1 - y) * torch.sigmoid(z) - a * y * torch.sigmoid(-z), reduction)


def focal_grad(logits: Tensor, labels: Tensor, alpha: float = 0.25, gamma: float = 2.0,
               reduction: str = "mean", *, validate: bool = True) -> Tensor:
    """Analytic :math:`\\partial \\mathrm{FL} / \\partial z` (see the module docstring), shape of ``logits``.

    Written with :math:`\\sigma(\\pm z)` and :math:`\\log\\sigma(\\pm z)` only, so it has no
    :math:`(1-p)^{\\gamma-1}` factor that would blow up for :math:`0 < \\gamma < 1` as :math:`p \\to 1`.
    """
    z, y = _check_inputs(logits, labels, reduction, validate)
    a, g = _check_focal(alpha, gamma)
    z = z.detach()
    p, q = torch.sigmoid(z), torch.sigmoid(-z)
    log_p, log_q = F.logsigmoid(z), F.logsigmoid(-z)
    pos = a * torch.exp(g * log_q) * (g * p * log_p - q)
    neg = (1 - a) * torch.exp(g * log_p) * (p - g * q * log_q)
    return _reduce_grad(y * pos + (1 - y) * neg, reduction)


# ----------------------------------------------------------------------------- calibration
def _shift(logits: Any, delta: float) -> Any:
    if isinstance(logits, Tensor):
        if not logits.is_floating_point():
            raise TypeError(f"logits must be a floating tensor, got {logits.dtype}")
        return logits - delta
    if isinstance(logits, (int, float, np.floating, np.integer)) and not isinstance(logits, bool):
        return float(logits) - delta
    try:
        arr = np.asarray(logits, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"logits must be a tensor, an array or a number, got {type(logits).__name__}") from None
    return arr - delta


def prior_correction(logits: Any, w1: float = 1.0, w0: float = 1.0) -> Any:
    """Map a weighted-BCE model's logit back to a calibrated one: :math:`z - \\log(w_1/w_0)`.

    A model trained with :func:`weighted_bce_with_logits` (weights ``w1`` for positives, ``w0``
    for negatives) converges to :math:`\\mathrm{logit}(p) + \\log(w_1/w_0)`; subtracting the shift
    recovers :math:`\\mathrm{logit}(p)`. Works on tensors, numpy arrays and numbers (returns the
    same kind). Both weights must be > 0.
    """
    a, b = _check_weight("w1", w1), _check_weight("w0", w0)
    if a == 0 or b == 0:
        raise ValueError(f"prior_correction needs w1 > 0 and w0 > 0 (log(w1/w0) must be finite), got w1={w1!r}, w0={w0!r}")
    return _shift(logits, math.log(a / b))


def negative_sampling_correction(logits: Any, keep_rate: float) -> Any:
    """Calibrate a model trained on data where each negative was kept with probability ``keep_rate``.

    Down-sampling negatives multiplies the odds by :math:`1/r`, like :func:`prior_correction`
    with ``w1=1, w0=keep_rate``: the calibrated logit is :math:`z + \\log r`.
    """
    try:
        r = float(keep_rate)
    except (TypeError, ValueError):
        raise TypeError(f"keep_rate must be a number, got {keep_rate!r}") from None
    if not 0.0 < r <= 1.0:
        raise ValueError(f"keep_rate must lie in (0, 1], got {keep_rate!r}")
    return prior_correction(logits, 1.0, r)
