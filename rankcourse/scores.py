"""Scalar scores of 0/1 labels against probabilities: AUC and log loss, with the course's one rule
for a split that holds one class only (its AUC is NaN, with a warning).

The bottom of the metrics: it needs neither the data container nor a model, so every module that
scores (``metrics.evaluate``, ``training``'s validation, ``SyntheticDataset.bayes_metrics``) uses it
without an import cycle. :mod:`rankcourse.metrics` re-exports every name.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from sklearn.metrics import log_loss, roc_auc_score

__all__ = ["auc", "auc_is_defined", "undefined_auc_warning", "logloss", "check_binary_pair", "to_numpy"]


# --------------------------------------------------------------------------- input checks
def to_numpy(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: cannot convert to a float array ({err})") from None
    return arr


def check_binary_pair(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels ``y`` (0/1) and probabilities ``p`` (in [0, 1]), both 1-D of equal length."""
    y, p = to_numpy(y, "y"), to_numpy(p, "p")
    if y.ndim != 1 or p.ndim != 1:
        raise ValueError(f"y and p must be 1-D, got shapes {y.shape} and {p.shape}")
    if len(y) != len(p):
        raise ValueError(f"y has {len(y)} values but p has {len(p)}")
    if len(y) == 0:
        raise ValueError("y and p are empty")
    bad = (y != 0) & (y != 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"labels y must be 0 or 1, got {y[i]} at position {i}")
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"probabilities p must be finite and in [0, 1], got {p[i]} at position {i}")
    return y, p


# --------------------------------------------------------------------------- scalar metrics
def auc_is_defined(y: np.ndarray | torch.Tensor) -> bool:
    """Whether 0/1 labels ``y`` hold both classes, so that an AUC exists.

    The course's one rule for a one-class split (a small validation set of a rare task, one user
    with clicks only): its AUC is NaN, with a warning, wherever an AUC is computed
    (:func:`auc`, :func:`evaluate`, :func:`rankcourse.training.validation_row`,
    ``SyntheticDataset.bayes_metrics``). Log loss and calibration are still defined there.
    """
    y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    return len(y) > 0 and y.min() != y.max()


def undefined_auc_warning(y: np.ndarray, what: str = "") -> None:
    """Warn that the AUC of labels ``y`` (one class only) is undefined and NaN stands for it."""
    where = f" for {what}" if what else ""
    warnings.warn(f"AUC is undefined{where}: all {len(y)} labels are {np.asarray(y).flat[0]:g} "
                  "(only one class); returning NaN", stacklevel=3)


def auc(y: Any, p: Any, what: str = "") -> float:
    """ROC AUC of scores ``p`` for 0/1 labels ``y``; NaN (with a warning) if ``y`` has one class only
    (see :func:`auc_is_defined`). ``what`` names the task or split in the warning."""
    y, p = check_binary_pair(y, p)
    if not auc_is_defined(y):
        undefined_auc_warning(y, what)
        return float("nan")
    return float(roc_auc_score(y, p))


def logloss(y: Any, p: Any) -> float:
    """Mean binary cross-entropy of probabilities ``p`` (sklearn's ``log_loss``, which clips at float eps)."""
    y, p = check_binary_pair(y, p)
    return float(log_loss(y, p, labels=[0, 1]))


