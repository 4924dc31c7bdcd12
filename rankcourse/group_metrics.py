r"""Per-user AUC and its impression-weighted mean, GAUC (Zhou et al. 2018, eq. 10).

.. math::

    \mathrm{GAUC} = \frac{\sum_u n_u \, \mathrm{AUC}_u}{\sum_u n_u},

over the users whose impressions hold both a click and a non-click (``AUC_u`` is undefined
otherwise), with :math:`n_u` the user's impressions. AUC ranks every impression against every other,
so it rewards a model for telling an active user from an inactive one; GAUC only compares
impressions of the same user, which is what a ranker does when it orders one user's candidates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["per_user_auc", "gauc"]


def _flat(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (n,), got shape {a.shape}")
    return a


def per_user_auc(y: Any, p: Any, users: Any) -> pd.DataFrame:
    """One row per user: ``n`` impressions, ``clicks`` and ``auc`` (NaN when one class only).

    Ties in ``p`` count one half, as in ``sklearn.metrics.roc_auc_score``.
    """
    y, p, users = _flat(y, "y").astype(np.float64), _flat(p, "p").astype(np.float64), _flat(users, "users")
    if not (len(y) == len(p) == len(users)):
        raise ValueError(f"y, p and users must have the same length, got {len(y)}, {len(p)}, {len(users)}")
    bad = (y != 0) & (y != 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"y must hold 0/1 labels, got {y[i]} at row {i}")
    if not np.isfinite(p).all():
        i = int(np.flatnonzero(~np.isfinite(p))[0])
        raise ValueError(f"p must be finite, got {p[i]} at row {i}")
    frame = pd.DataFrame({"user": users, "y": y, "p": p})
    frame["rank"] = frame.groupby("user")["p"].rank(method="average")
    frame["pos_rank"] = frame["rank"] * frame["y"]
    g = frame.groupby("user").agg(n=("y", "size"), clicks=("y", "sum"), pos_rank=("pos_rank", "sum"))
    neg = g["n"] - g["clicks"]
    # Mann-Whitney: AUC = (sum of the positives' ranks - P(P+1)/2) / (P N).
    with np.errstate(invalid="ignore", divide="ignore"):
        g["auc"] = (g["pos_rank"] - g["clicks"] * (g["clicks"] + 1) / 2) / (g["clicks"] * neg)
    g.loc[(g["clicks"] == 0) | (neg == 0), "auc"] = np.nan
    return g[["n", "clicks", "auc"]].astype({"n": int, "clicks": int})


def gauc(y: Any, p: Any, users: Any) -> float:
    """Impression-weighted mean of the per-user AUCs over users with both classes."""
    table = per_user_auc(y, p, users).dropna(subset=["auc"])
    if table.empty:
        raise ValueError("no user has both a click and a non-click: GAUC is undefined")
    return float(np.average(table["auc"], weights=table["n"]))
