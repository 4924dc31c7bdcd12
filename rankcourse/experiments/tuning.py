"""Bookkeeping for chapter 6 (capacity and tuning: gradient flow through deep MLPs) and chapter 7
(class imbalance and task weights: the summary rows of the imbalance experiment).

The chapter keeps on the page what it teaches (the formula for the variance gain, the models, the
corrections); this module holds the loops and tables around them.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..layers import MLP
from ..metrics import auc, expected_calibration_error, logloss

__all__ = [
    "DEPTH_VARIANTS",
    "calibration_summary",
    "gradient_flow_experiment",
    "he_init",
    "layer_gradient_norms",
    "logistic_teacher_batch",
    "weight_layers",
]

# The MLP variants of the depth experiment: name -> keyword arguments of rankcourse.layers.MLP
# ("He init" is the plain MLP re-initialised by he_init).
DEPTH_VARIANTS: dict[str, dict[str, bool]] = {
    "plain": {},
    "He init": {},
    "residual": {"residual": True},
    "layer norm": {"layer_norm": True},
    "residual + layer norm": {"residual": True, "layer_norm": True},
}


def he_init(mlp: nn.Module) -> None:
    """He (Kaiming) normal initialisation of every ``nn.Linear`` in `mlp`, biases zero, in place."""
    for layer in mlp.modules():
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def weight_layers(mlp: nn.Module) -> list[nn.Linear]:
    """The ``Linear`` of every hidden block, then the output layer; not the residual skip projections."""
    return [m for name, m in mlp.named_modules() if isinstance(m, nn.Linear) and "skip" not in name]


def logistic_teacher_batch(seed: int, n_rows: int = 512, width: int = 64) -> tuple[Tensor, Tensor]:
    """Standard normal inputs ``x (n_rows, width)`` and 0/1 labels ``y (n_rows,)`` drawn from a
    logistic teacher ``P(y = 1 | x) = sigmoid(x . w / 8)`` with standard normal ``w``; same seed,
    same batch."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n_rows, width, generator=gen)
    uniform = torch.rand(n_rows, generator=gen)
    teacher = torch.randn(width, generator=gen)
    y = (uniform < torch.sigmoid(x @ teacher / 8)).float()
    return x, y


def layer_gradient_norms(
    mlp: nn.Module, x: Tensor, y: Tensor, steps: int = 10, lr: float = 1e-3
) -> dict[int, np.ndarray]:
    """Frobenius norm of each weight layer's BCE gradient, at step 0 and after `steps` Adam steps.

    Args:
        mlp: a network mapping ``(batch, in_dim)`` to one logit per row, ``(batch, 1)``.
        x, y: inputs ``(batch, in_dim)`` and 0/1 labels ``(batch,)``.
        steps: Adam steps to take; ``0`` measures at initialisation only.
        lr: Adam's learning rate.

    Returns:
        ``{0: norms, steps: norms}``, each an array with one entry per layer of :func:`weight_layers`.
    """
    opt = torch.optim.Adam(mlp.parameters(), lr=lr)
    norms: dict[int, np.ndarray] = {}
    for step in range(steps + 1):
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(mlp(x).squeeze(-1), y).backward()
        if step in (0, steps):
            norms[step] = np.array([float(layer.weight.grad.norm()) for layer in weight_layers(mlp)])
        opt.step()
    return norms


def gradient_flow_experiment(
    depths: Sequence[int],
    seeds: Sequence[int],
    variants: Mapping[str, Mapping[str, bool]] = DEPTH_VARIANTS,
    width: int = 64,
    steps: int = 10,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict[tuple[str, int], list[np.ndarray]]]:
    """Per-layer gradient norms of MLPs of every variant and depth, on a logistic-teacher batch.

    Args:
        depths: numbers of hidden layers, each of `width` units.
        seeds: one teacher batch and one initialisation per seed; the table averages over them.
        variants: name -> MLP options (see :data:`DEPTH_VARIANTS`; ``"He init"`` re-initialises).
        width: input and hidden width.
        steps: Adam steps before the second measurement.
        progress: one tqdm bar over all (seed, variant, depth) fits.

    Returns:
        ``(table, profiles)``: ``table`` has index ``(variant, depth)`` and columns ``first_layer``,
        ``last_hidden`` (gradient norms at initialisation), ``ratio_init`` and ``ratio_step10``
        (first / last hidden layer, at initialisation and after `steps` steps); ``profiles`` maps
        ``(variant, depth)`` to one array of per-layer norms at initialisation per seed.
    """
    jobs = [(seed, variant, depth) for seed in seeds for variant in variants for depth in depths]
    rows, profiles = [], {}
    for seed, variant, depth in tqdm(jobs, desc="MLPs measured", disable=not progress):
        x, y = logistic_teacher_batch(seed, width=width)
        torch.manual_seed(seed)
        mlp = MLP(width, [width] * depth, out_dim=1, **variants[variant])
        if variant == "He init":
            he_init(mlp)
        norms = layer_gradient_norms(mlp, x, y, steps=steps)
        profiles.setdefault((variant, depth), []).append(norms[0])
        rows.append({
            "variant": variant, "depth": depth, "first_layer": norms[0][0], "last_hidden": norms[0][depth - 1],
            "ratio_init": norms[0][0] / norms[0][depth - 1],
            "ratio_step10": norms[steps][0] / norms[steps][depth - 1],
        })
    table = pd.DataFrame(rows).groupby(["variant", "depth"], sort=False).mean()
    return table, profiles


def calibration_summary(y: Any, p_raw: Any, p_fixed: Any) -> dict[str, float]:
    """Ranking and calibration of predictions before and after a correction.

    Args:
        y: 0/1 labels, shape ``(n,)``.
        p_raw: the model's probabilities as trained, ``(n,)``.
        p_fixed: the probabilities after its correction, ``(n,)``.

    Returns:
        AUC, log loss, expected calibration error and mean prediction, each ``raw`` and ``fixed``
        (keys ``"AUC"``, ``"AUC fixed"``, ``"log loss"``, ...).
    """
    y, p_raw, p_fixed = (np.asarray(a, dtype=np.float64) for a in (y, p_raw, p_fixed))
    if not (y.shape == p_raw.shape == p_fixed.shape) or y.ndim != 1:
        raise ValueError(f"y, p_raw and p_fixed must be 1-D of one length; got shapes "
                         f"{y.shape}, {p_raw.shape}, {p_fixed.shape}")
    summary: dict[str, float] = {}
    for suffix, p in (("", p_raw), (" fixed", p_fixed)):
        summary[f"AUC{suffix}"] = auc(y, p)
        summary[f"log loss{suffix}"] = logloss(y, p)
        summary[f"ECE{suffix}"] = expected_calibration_error(y, p)
        summary[f"mean p{suffix}"] = float(p.mean())
    return summary


