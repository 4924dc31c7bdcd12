"""FTRL-Proximal (McMahan et al. 2013, Algorithm 1), the optimiser of the wide part of Wide & Deep.

Per coordinate ``i`` it keeps ``z_i`` (the sum of gradients, each corrected by ``sigma w``) and
``n_i`` (the sum of squared gradients). After a gradient ``g``::

    sigma = (sqrt(n + g^2) - sqrt(n)) / alpha        # 1/eta_t - 1/eta_{t-1}
    z    += g - sigma * w
    n    += g^2
    w     = 0                                                    if |z| <= l1
          = -(z - sign(z) l1) / ((beta + sqrt(n)) / alpha + l2)  otherwise

The last line is the closed-form minimiser of the FTRL objective; a weight is exactly zero while
its accumulated evidence ``|z|`` stays below ``l1``.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor

__all__ = ["FTRLProximal", "ftrl_step", "ftrl_weight"]


def ftrl_weight(z: Tensor, n: Tensor, alpha: float, beta: float, l1: float, l2: float) -> Tensor:
    """The closed-form FTRL-Proximal weight for accumulators ``z`` and ``n`` (element-wise, any shape)."""
    w = -(z - torch.sign(z) * l1) / ((beta + n.sqrt()) / alpha + l2)
    return torch.where(z.abs() > l1, w, torch.zeros_like(w))


def ftrl_step(w: Tensor, z: Tensor, n: Tensor, g: Tensor, alpha: float, beta: float, l1: float,
              l2: float) -> tuple[Tensor, Tensor, Tensor]:
    """One FTRL-Proximal update of weights ``w`` with accumulators ``z``, ``n`` after gradient ``g``.

    All four tensors have the same shape; returns new ``(w, z, n)`` and changes nothing in place.
    A coordinate whose gradient is 0 keeps its ``z``, ``n`` and (since ``sigma = 0``) its weight.
    """
    sigma = ((n + g * g).sqrt() - n.sqrt()) / alpha
    z_new = z + g - sigma * w
    n_new = n + g * g
    return ftrl_weight(z_new, n_new, alpha, beta, l1, l2), z_new, n_new


class FTRLProximal(torch.optim.Optimizer):
    """FTRL-Proximal for dense gradients, applied to whole tensors at once.

    Assumes the weights start at zero, as :class:`~rankcourse.layers.WideLinear`'s do (then
    ``w = 0`` is consistent with ``z = n = 0``). Parameter groups may override ``alpha``,
    ``beta``, ``l1`` and ``l2`` (e.g. no L1 on a bias).

    Args:
        params: parameters or parameter groups.
        alpha, beta: per-coordinate learning rate ``alpha / (beta + sqrt(n))``; ``alpha > 0``.
        l1, l2: regularisation strengths, ``>= 0``.
    """

    def __init__(self, params: Iterable, alpha: float = 0.1, beta: float = 1.0, l1: float = 0.0,
                 l2: float = 0.0) -> None:
        if not alpha > 0 or beta < 0 or l1 < 0 or l2 < 0:
            raise ValueError(f"FTRLProximal needs alpha > 0 and beta, l1, l2 >= 0; got alpha={alpha}, "
                             f"beta={beta}, l1={l1}, l2={l2}")
        super().__init__(params, dict(alpha=alpha, beta=beta, l1=l1, l2=l2))

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            hyper = (group["alpha"], group["beta"], group["l1"], group["l2"])
            for w in group["params"]:
                if w.grad is None:
                    continue
                if w.grad.is_sparse:
                    raise TypeError("FTRLProximal takes dense gradients; build WideLinear with "
                                    "sparse_grad=False")
                state = self.state[w]
                if not state:
                    state["z"], state["n"] = torch.zeros_like(w), torch.zeros_like(w)
                new_w, state["z"], state["n"] = ftrl_step(w, state["z"], state["n"], w.grad, *hyper)
                w.copy_(new_w)
        return loss
