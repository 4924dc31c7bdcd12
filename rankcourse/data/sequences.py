r"""Synthetic impressions with a user behaviour history, where the history matters *through the candidate*.

Each user has a taste over item categories and a history of past clicks drawn from that taste; the
history's length is long-tailed (most users have a few behaviours, a few have many; some have
none). Each impression shows the user one candidate item. The true click logit is

.. math::

    z = b + \beta^{\text{user}}_u + \beta^{\text{item}}_i
          + w \, \log\bigl(1 + n_u(c_i)\bigr),
    \qquad n_u(c) = \#\{t < L_u : \text{category}(h_{u,t}) = c\},

where :math:`c_i` is the candidate's category and :math:`h_{u,1..L_u}` the history. So the
history's relevant part is the set of behaviours that share the candidate's category (the planted
*relevance* of behaviour :math:`t` to the candidate is :math:`1[\text{category}(h_t) = c_i]`), and
how many of them there are matters. A target-aware pooling that weighs each behaviour by its
relevance, *without* normalising the weights, can represent this exactly; a sum or mean of the
history gives every candidate the same user vector, and a softmax-normalised pooling loses the count.

``history_effect=0`` is the control: the same users, histories, candidates and uniforms behind the
labels, but the history has no effect on the click, so target attention has nothing to find.

Layout: categorical fields ``user``, ``item``, ``category``, then two aligned sequence fields
(:class:`~rankcourse.schema.SequenceField`) ``hist_item`` (target ``item``) and ``hist_category``
(target ``category``), padded at the end with the padding id. No dense fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..schema import FeatureSchema, SequenceField, SparseField
from ._shared import sigmoid, solve_intercept, split_rows
from .synthetic import SyntheticDataset
from ..checks import check_int

__all__ = ["make_behaviour_data", "BehaviourTruth"]

_STREAMS = ("categories", "effects", "tastes", "lengths", "histories", "candidates", "shuffle", "labels")


@dataclass
class BehaviourTruth:
    """The planted click model of :func:`make_behaviour_data` (float64 arrays).

    Attributes:
        schema: the fields.
        item_category: ``(n_items,)`` category of each item.
        user_effect: ``(n_users,)`` :math:`\\beta^{user}`; item_effect: ``(n_items,)`` :math:`\\beta^{item}`.
        history_effect: :math:`w`; 0 in the control.
        intercept: :math:`b`, solved to hit the positive rate.
        user_taste: ``(n_users, n_categories)`` each user's category distribution.
        history_length: ``(n_users,)`` :math:`L_u`.
    """

    schema: FeatureSchema
    item_category: np.ndarray
    user_effect: np.ndarray
    item_effect: np.ndarray
    history_effect: float
    intercept: float
    user_taste: np.ndarray
    history_length: np.ndarray

    def _columns(self, sparse: Any) -> dict[str, np.ndarray]:
        s = sparse.detach().cpu().numpy() if isinstance(sparse, torch.Tensor) else np.asarray(sparse)
        if s.ndim != 2 or s.shape[1] != self.schema.n_fields:
            raise ValueError(f"sparse must have shape (n, {self.schema.n_fields}), got {s.shape}")
        col = self.schema.sparse_index
        return {"user": s[:, col("user")], "item": s[:, col("item")], "category": s[:, col("category")],
                "hist_category": s[:, list(self.schema.sequence_columns("hist_category"))]}

    def relevance(self, sparse: Any) -> np.ndarray:
        """``(n, max_len)`` planted relevance: 1 where a behaviour shares the candidate's category,
        0 elsewhere (padding included)."""
        c = self._columns(sparse)
        return (c["hist_category"] == c["category"][:, None]).astype(np.float64)

    def matches(self, sparse: Any) -> np.ndarray:
        """``(n,)`` :math:`n_u(c_i)`: behaviours sharing the candidate's category."""
        return self.relevance(sparse).sum(1)

    def logit(self, dense: Any, sparse: Any) -> np.ndarray:
        """The true logit, float64 ``(n,)`` (``dense`` is unused: the data have no dense fields)."""
        c = self._columns(sparse)
        return (self.intercept + self.user_effect[c["user"]] + self.item_effect[c["item"]]
                + self.history_effect * np.log1p(self.matches(sparse)))

    def prob(self, dense: Any, sparse: Any) -> np.ndarray:
        """The true click probability, float64 ``(n,)``."""
        return sigmoid(self.logit(dense, sparse))


def _check_int(name: str, value: Any, low: int) -> int:
    return check_int(value, name, low)


def _check_float(name: str, value: Any, low: float, high: float = math.inf) -> float:
    if not isinstance(value, (int, float, np.floating)) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def _zipf(n: int, exponent: float) -> np.ndarray:
    p = (np.arange(n) + 1.0) ** -exponent
    return p / p.sum()


def _draw_lengths(rng: np.random.Generator, n_users: int, mean_length: float, max_len: int,
                  new_user_share: float) -> np.ndarray:
    """``1 + floor(Lomax)`` lengths (Pareto II, tail index 1.5), clipped to ``max_len``; a share
    ``new_user_share`` of users have an empty history.

    The tail index 1.5 gives a finite mean but an infinite variance: many short histories and a
    few very long ones, as in real behaviour logs.
    """
    alpha = 1.5
    scale = max(mean_length - 1, 0.0) * (alpha - 1)  # the Lomax mean is scale / (alpha - 1)
    u, new = rng.random(n_users), rng.random(n_users) < new_user_share
    lengths = np.minimum(1 + np.floor(scale * (u ** (-1 / alpha) - 1)), max_len).astype(np.int64)
    return np.where(new, 0, lengths)


def _inverse_cdf(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Category drawn by inverse-CDF sampling: ``cdf (..., n_categories)`` rows, uniforms ``u (...)``."""
    return np.minimum((cdf <= u[..., None]).sum(-1), cdf.shape[-1] - 1)


def _draw_items(rng: np.random.Generator, cats: np.ndarray, item_category: np.ndarray,
                item_pop: np.ndarray) -> np.ndarray:
    """One item per entry of ``cats``, drawn by popularity among the items of that category."""
    out = np.empty(cats.shape, dtype=np.int64)
    for c in np.unique(cats):
        members = np.flatnonzero(item_category == c)
        w = item_pop[members] / item_pop[members].sum()
        where = cats == c
        out[where] = members[rng.choice(len(members), size=int(where.sum()), p=w)]
    return out


def _draw_histories(rng: np.random.Generator, taste_cdf: np.ndarray, lengths: np.ndarray, max_len: int,
                    item_category: np.ndarray, item_pop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(n_users, max_len)`` item and category histories: a category from the user's taste, then an
    item of that category; positions from the user's length on hold the padding ids."""
    hist_cat = _inverse_cdf(taste_cdf[:, None, :], rng.random((len(lengths), max_len)))
    hist_item = _draw_items(rng, hist_cat, item_category, item_pop)
    pad = np.arange(max_len)[None, :] >= lengths[:, None]
    hist_item[pad], hist_cat[pad] = len(item_category), taste_cdf.shape[1]
    return hist_item, hist_cat


def _draw_candidates(rng: np.random.Generator, taste_cdf: np.ndarray, in_taste_share: float,
                     cat_pop: np.ndarray, item_category: np.ndarray,
                     item_pop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One candidate per row of ``taste_cdf`` (the impression's user): its category from the user's
    taste with probability ``in_taste_share``, else from the catalogue; then an item of it."""
    n = taste_cdf.shape[0]
    from_taste = rng.random(n) < in_taste_share
    cand_cat = np.where(from_taste, _inverse_cdf(taste_cdf, rng.random(n)),
                        rng.choice(len(cat_pop), n, p=cat_pop))
    return _draw_items(rng, cand_cat, item_category, item_pop), cand_cat


def _behaviour_schema(n_users: int, n_items: int, n_categories: int, max_len: int) -> FeatureSchema:
    return FeatureSchema(
        sparse=(SparseField("user", n_users), SparseField("item", n_items), SparseField("category", n_categories)),
        sequences=(SequenceField("hist_item", n_items, max_len, target="item"),
                   SequenceField("hist_category", n_categories, max_len, target="category")),
    )


def make_behaviour_data(
    n_users: int = 3000,
    impressions_per_user: int = 20,
    *,
    n_items: int = 1000,
    n_categories: int = 20,
    max_len: int = 20,
    mean_length: float = 10.0,
    new_user_share: float = 0.05,
    history_effect: float = 2.0,
    main_effects: float = 0.2,
    taste_concentration: float = 0.1,
    in_taste_share: float = 0.5,
    positive_rate: float = 0.2,
    split: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> SyntheticDataset:
    """Users with behaviour histories and candidate impressions; see the module docstring.

    Args:
        n_users, impressions_per_user: rows = ``n_users * impressions_per_user``, shuffled before
            the split, so every split holds impressions of most users.
        n_items, n_categories: the item vocabulary and its categories (every category has an item;
            category popularity is Zipf with exponent 1, item popularity within a category too).
        max_len: history columns; longer histories keep their ``max_len`` most recent behaviours.
        mean_length: mean of the unclipped long-tailed length distribution (of non-new users).
        new_user_share: share of users with an empty history.
        history_effect: :math:`w`, the logit per unit of :math:`\\log(1 + n_u(c_i))`; 0 is the control.
        main_effects: std of the user and item main effects (each).
        taste_concentration: Dirichlet concentration per category of a user's taste, scaled by
            the category's popularity (small: each user likes a few categories).
        in_taste_share: share of candidates drawn from the user's taste (the rest from the catalogue).
        positive_rate: mean click probability (sets the intercept).
        split: train/valid/test fractions.
        seed: everything derives from it; the control (``history_effect=0``) shares all draws.

    Returns:
        :class:`~rankcourse.data.SyntheticDataset` with :class:`BehaviourTruth` as ``truth``.
    """
    n_users = _check_int("n_users", n_users, 2)
    impressions_per_user = _check_int("impressions_per_user", impressions_per_user, 1)
    n_items = _check_int("n_items", n_items, 2)
    n_categories = _check_int("n_categories", n_categories, 1)
    if n_categories > n_items:
        raise ValueError(f"n_categories ({n_categories}) cannot exceed n_items ({n_items})")
    max_len = _check_int("max_len", max_len, 1)
    mean_length = _check_float("mean_length", mean_length, 1.0)
    new_user_share = _check_float("new_user_share", new_user_share, 0.0, 1.0)
    history_effect = _check_float("history_effect", history_effect, -10.0, 10.0)
    main_effects = _check_float("main_effects", main_effects, 0.0, 10.0)
    taste_concentration = _check_float("taste_concentration", taste_concentration, 1e-3)
    in_taste_share = _check_float("in_taste_share", in_taste_share, 0.0, 1.0)
    rate = _check_float("positive_rate", positive_rate, 1e-4, 1 - 1e-4)
    _check_int("seed", seed, 0)
    streams = dict(zip(_STREAMS, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(_STREAMS)))))

    cat_pop = _zipf(n_categories, 1.0)
    rng = streams["categories"]
    item_category = np.concatenate([np.arange(n_categories), rng.choice(n_categories, n_items - n_categories, p=cat_pop)])
    item_category = item_category[rng.permutation(n_items)]
    item_pop = rng.permutation(_zipf(n_items, 1.0))
    rng = streams["effects"]
    user_effect, item_effect = main_effects * rng.standard_normal(n_users), main_effects * rng.standard_normal(n_items)
    taste = streams["tastes"].dirichlet(taste_concentration * n_categories * cat_pop, size=n_users)
    lengths = _draw_lengths(streams["lengths"], n_users, mean_length, max_len, new_user_share)

    taste_cdf = np.cumsum(taste, 1)
    taste_cdf[:, -1] = 1.0
    hist_item, hist_cat = _draw_histories(streams["histories"], taste_cdf, lengths, max_len,
                                          item_category, item_pop)
    user = np.repeat(np.arange(n_users), impressions_per_user)
    cand_item, cand_cat = _draw_candidates(streams["candidates"], taste_cdf[user], in_taste_share, cat_pop,
                                           item_category, item_pop)
    schema = _behaviour_schema(n_users, n_items, n_categories, max_len)
    sparse = np.concatenate([np.stack([user, cand_item, cand_cat], 1), hist_item[user], hist_cat[user]], 1)
    sparse = sparse[streams["shuffle"].permutation(user.size)]

    truth = BehaviourTruth(schema, item_category, user_effect, item_effect, history_effect, 0.0, taste, lengths)
    z = truth.logit(None, sparse)
    truth.intercept = solve_intercept(z, rate)
    p = sigmoid(z + truth.intercept)
    labels = (streams["labels"].random(user.size) < p).astype(np.float32)
    dense = np.zeros((user.size, 0), np.float32)
    params = dict(n_users=n_users, impressions_per_user=impressions_per_user, n_items=n_items,
                  n_categories=n_categories, max_len=max_len, mean_length=mean_length,
                  new_user_share=new_user_share,
                  history_effect=history_effect, main_effects=main_effects,
                  taste_concentration=taste_concentration, in_taste_share=in_taste_share,
                  positive_rate=rate, split=tuple(split), seed=seed)
    parts = split_rows(schema, dense, sparse, labels[:, None], p.astype(np.float32)[:, None],
                       ("click",), ("binary",), split)
    return SyntheticDataset(*parts, truth=truth, params=params)
