r"""Combining the losses of several tasks into one training objective.

* :func:`weighted_task_loss` -- fixed weights: :math:`\sum_k \lambda_k L_k`, :math:`\lambda_k \ge 0`.
* :class:`UncertaintyWeighting` -- learned weights (Kendall, Gal & Cipolla, "Multi-Task Learning Using
  Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR 2018).

The 1/2 convention of :class:`UncertaintyWeighting`
---------------------------------------------------
Kendall et al. derive, for a regression task with Gaussian noise of variance :math:`\sigma_k^2`,
the term :math:`\frac{1}{2\sigma_k^2} L_k + \log\sigma_k`, and for a classification task
:math:`\frac{1}{\sigma_k^2} L_k + \log\sigma_k`. With the learned log-variance :math:`s_k = \log\sigma_k^2`
(stable: no division by a parameter that may reach 0) the regression term is
:math:`\frac12 (e^{-s_k} L_k + s_k)`. This module uses, for every task,

.. math::

    \mathcal{L} = \sum_k e^{-s_k} L_k + s_k ,

i.e. twice the regression form, without the 1/2 (a constant factor changes neither the minimiser
nor, with Adam, the step sizes much). For fixed :math:`L_k` the optimum is :math:`s_k^* = \log L_k`,
giving weight :math:`e^{-s_k^*} = 1/L_k`: each task is weighted by the inverse of its current loss.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn
from .checks import check_positive_int

__all__ = ["weighted_task_loss", "UncertaintyWeighting"]


def _as_loss_vector(losses: Any) -> Tensor:
    if isinstance(losses, Tensor):
        vec = losses
    elif isinstance(losses, (list, tuple)) and all(isinstance(x, Tensor) for x in losses):
        if not losses:
            raise ValueError("losses is empty: need one loss per task")
        for k, x in enumerate(losses):
            if x.numel() != 1:
                raise ValueError(f"loss of task {k} must be a scalar, got shape {tuple(x.shape)}")
        vec = torch.stack([x.reshape(()) for x in losses])
    else:
        raise TypeError(f"losses must be a tensor of shape (n_tasks,) or a list of scalar tensors, got {type(losses).__name__}")
    if vec.dim() != 1 or vec.numel() == 0:
        raise ValueError(f"losses must have shape (n_tasks,) with n_tasks >= 1, got {tuple(vec.shape)}")
    if not vec.is_floating_point():
        raise TypeError(f"losses must be floating, got {vec.dtype}")
    return vec


def weighted_task_loss(losses: Tensor | Sequence[Tensor], weights: Sequence[float] | Tensor | None = None) -> Tensor:
    """:math:`\\sum_k \\lambda_k L_k`.

    Args:
        losses: ``(n_tasks,)`` per-task losses (or a list of scalar tensors).
        weights: ``(n_tasks,)`` non-negative :math:`\\lambda_k`; ``None`` means all 1.

    Returns:
        A scalar tensor, differentiable with respect to ``losses``.
    """
    vec = _as_loss_vector(losses)
    if weights is None:
        return vec.sum()
    lam = torch.as_tensor(weights.detach() if isinstance(weights, Tensor) else list(weights), dtype=torch.float64)
    if lam.dim() != 1 or lam.numel() != vec.numel():
        raise ValueError(f"weights must have one value per task ({vec.numel()}), got shape {tuple(lam.shape)}")
    for k, w in enumerate(lam.tolist()):
        if not (math.isfinite(w) and w >= 0):
            raise ValueError(f"task weight lambda[{k}] must be a finite number >= 0, got {w!r}")
    return (lam.to(vec.dtype).to(vec.device) * vec).sum()


class UncertaintyWeighting(nn.Module):
    """Learned task weights: :math:`\\sum_k e^{-s_k} L_k + s_k` with trainable :math:`s_k = \\log\\sigma_k^2`.

    Give its parameters to the optimiser together with the model's. See the module docstring for
    the 1/2 convention.

    Args:
        n_tasks: number of tasks.
        init_log_variance: initial :math:`s_k` (0 = weight 1 for every task).

    Shapes:
        forward: ``losses (n_tasks,)`` -> scalar.
    """

    def __init__(self, n_tasks: int, init_log_variance: float = 0.0) -> None:
        super().__init__()
        n_tasks = check_positive_int(n_tasks, "UncertaintyWeighting n_tasks")
        if not math.isfinite(float(init_log_variance)):
            raise ValueError(f"init_log_variance must be finite, got {init_log_variance!r}")
        self.n_tasks = n_tasks
        self.log_variance = nn.Parameter(torch.full((n_tasks,), float(init_log_variance)))

    def forward(self, losses: Tensor | Sequence[Tensor]) -> Tensor:
        vec = _as_loss_vector(losses)
        if vec.numel() != self.n_tasks:
            raise ValueError(f"expected {self.n_tasks} task losses, got {vec.numel()}")
        s = self.log_variance.to(vec.dtype)
        return (torch.exp(-s) * vec + s).sum()

    @property
    def weights(self) -> Tensor:
        """Current task weights :math:`e^{-s_k}`, ``(n_tasks,)``, detached."""
        return torch.exp(-self.log_variance.detach())

    def extra_repr(self) -> str:
        return f"n_tasks={self.n_tasks}"
