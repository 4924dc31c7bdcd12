r"""Synthetic click data with a known, planted click probability.

Every chapter of the course trains on this data, because only synthetic data tells us what a
*perfect* model would score (the Bayes AUC and logloss of the true probabilities) and which kind of
structure each model can and cannot capture.

Features
--------
* ``n_dense`` dense fields: :math:`\tilde d_j = \log(1 + n_j)` of a negative-binomial count
  :math:`n_j` (heavy-tailed like Criteo's integer features). The logit uses the standardised
  :math:`x_j = (\tilde d_j - m_j) / s_j`, where :math:`m_j, s_j` are the exact mean and standard
  deviation of :math:`\log(1+n_j)` under its distribution (stored in ``truth``); the data hold the
  raw :math:`\tilde d_j`.
* categorical fields with Zipf-distributed ids: field :math:`f` with vocabulary :math:`V_f` takes id
  :math:`k \in \{0..V_f-1\}` with probability :math:`\pi_f(k) \propto (k+1)^{-s_f}`. Id 0 is the most
  frequent value of every field (ids are frequency ranks).

The true logit
--------------
.. math::

    z(x) = b
         + \underbrace{\sum_{f \in M} \beta_f[x_f]}_{\text{main}}
         + \underbrace{\sum_{j \in D} \gamma_j x_j}_{\text{dense}}
         + \underbrace{\sum_{(f,a,g,c,w) \in C} w \, 1[x_f = a] \, 1[x_g = c]}_{\text{crosses}}
         + \underbrace{\sum_{f < g \in P} \langle v_f[x_f], v_g[x_g] \rangle}_{\text{pairwise}}
         + \underbrace{\sum_{(j, f) \in Q} x_j \, a_f[x_f]}_{\text{dense\_x\_cat}}
         + \underbrace{\sum_{(f,g,h) \in T} \sum_{k=1}^{r_3} u_f[x_f]_k \, u_g[x_g]_k \, u_h[x_h]_k}_{\text{third\_order}}

    p(x) = \sigma(z(x)), \qquad y \sim \mathrm{Bernoulli}(p(x)).

* :math:`M` -- every categorical field except the noise fields; :math:`D` -- the informative dense
  fields. A logistic regression (one weight per id) can learn these two parts exactly.
* :math:`C` -- planted crosses: "field f has value a AND field g has value c" adds :math:`w` to the
  logit (e.g. ``taste=latte`` x ``city=Shanghai``). The values are chosen frequent enough to be
  learnable. Wide & Deep's cross-product features memorise these.
* :math:`P` -- a subset of fields whose rank-``pairwise_rank`` vectors interact pairwise: exactly the
  form of a factorization machine (Rendle 2010).
* :math:`Q` -- (dense field, categorical field) pairs: the slope of a dense feature depends on a
  category.
* :math:`T` -- triples of fields (a member may be a dense field: its "vector" is :math:`x_j g_j`
  for a fixed :math:`g_j`) multiplied as a rank-``third_order_rank`` trilinear form: a degree-3
  interaction that no pairwise model can represent, and that a two-layer cross network can.
* noise fields (categorical and dense) enter no part.

Every table and vector is centred under the field's Zipf distribution, so all parts except the
crosses have mean zero and the parts are uncorrelated. Each part is then scaled so that its
*population* standard deviation equals its scale parameter (``main_effects``, ``dense_effects``,
``pairwise``, ``dense_x_cat``, ``third_order``); a scale of 0 switches the part off. ``crosses`` is
the logit bump :math:`w` of each planted cross. The intercept :math:`b` is solved by bisection so
that the mean of :math:`p` over the generated rows equals ``positive_rate``.

Randomness: every part, role choice, the features and the labels use their own stream spawned from
``seed``. So the same seed gives identical data, and switching one part off (scale 0) leaves all
other parts, the features and the uniform numbers behind the labels unchanged: ablations compare
like with like.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..schema import FeatureSchema
from ._shared import check_int, check_scale, check_split, split_rows
from .ctr_steps import _draw_roles, _draw_rows, _make_fields, _make_truth, criteo_vocab_sizes
from .ctr_truth import PART_NAMES, CTRTruth, PlantedCross
from .synthetic import SyntheticDataset

__all__ = [
    "make_ctr_data",
    "SyntheticDataset",
    "CTRTruth",
    "PlantedCross",
    "PART_NAMES",
    "criteo_vocab_sizes",
]

_PRESETS = ("criteo", "teaching")
# Independent random streams, spawned in this fixed order from the seed.
_STREAMS = (
    "noise_fields", "informative_dense", "cross_roles", "pairwise_roles", "dense_x_cat_roles",
    "third_order_roles", "main", "dense", "pairwise", "dense_x_cat", "third_order", "features", "labels",
)


# ----------------------------------------------------------------------------- teaching preset
_CITIES = ("Beijing", "Shanghai", "Guangzhou", "Shenzhen", "Chengdu", "Hangzhou", "Wuhan",
           "Nanjing", "Xian", "Chongqing", "Suzhou", "Tianjin")
_TASTES = ("latte", "americano", "cappuccino", "mocha", "flat_white", "matcha", "milk_tea", "orange_juice")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_HOURS = tuple(f"{h:02d}h" for h in range(24))
_DEVICES = ("iphone", "android", "web", "ipad")
_COLORS = ("red", "blue", "green", "yellow", "black", "white")

_TEACHING: dict[str, Any] = dict(
    dense_names=("past_visits", "past_orders", "minutes_on_app", "coupons_held"),
    dense_means=(4.0, 0.8, 12.0, 1.0),
    dense_dispersions=(1.0, 0.7, 1.5, 2.0),
    fields=(
        ("city", len(_CITIES), 1.0, _CITIES),
        ("taste", len(_TASTES), 1.1, _TASTES),
        ("weekday", 7, 0.0, _WEEKDAYS),
        ("hour", 24, 0.0, _HOURS),
        ("device", 4, 0.8, _DEVICES),
        ("shop", 300, 1.1, None),
        ("user", 5000, 1.05, None),
        ("banner_color", 6, 0.5, _COLORS),
    ),
    cross_pairs=(("taste", "latte", "city", "Shanghai"),
                 ("weekday", "Sat", "taste", "milk_tea"),
                 ("device", "android", "hour", "22h")),
    pairwise_fields=("user", "shop", "taste", "city"),
    dense_x_cat_pairs=(("past_visits", "device"), ("past_orders", "taste")),
    third_order_fields=(("city", "taste", "hour"),),
    noise_fields=("banner_color",),
    informative_dense=("past_visits", "past_orders", "minutes_on_app"),
)


# ----------------------------------------------------------------------------- the generator
def make_ctr_data(
    n_samples: int = 200_000,
    *,
    preset: str = "criteo",
    n_dense: int | None = None,
    vocab_sizes: Sequence[int] | None = None,
    field_names: Sequence[str] | None = None,
    dense_names: Sequence[str] | None = None,
    value_names: Mapping[str, Sequence[str]] | None = None,
    zipf_exponent: float | Sequence[float] | None = None,
    positive_rate: float = 0.25,
    main_effects: float = 1.0,
    dense_effects: float = 0.5,
    crosses: float = 1.5,
    cross_pairs: int | Sequence[tuple] | None = None,
    pairwise: float = 0.8,
    pairwise_rank: int = 4,
    pairwise_fields: int | Sequence[str] | None = None,
    dense_x_cat: float = 0.5,
    dense_x_cat_pairs: int | Sequence[tuple[str, str]] | None = None,
    third_order: float = 0.6,
    third_order_rank: int = 2,
    third_order_fields: int | Sequence[tuple[str, str, str]] | None = None,
    noise_fields: int | Sequence[str] | None = None,
    informative_dense: int | Sequence[str] | None = None,
    min_cross_frequency: float = 0.005,
    seed: int = 0,
    split: Sequence[float] = (0.8, 0.1, 0.1),
) -> SyntheticDataset:
    r"""Generate Criteo-like click data with a planted, known click probability.

    See the module docstring for the formula. Returns a :class:`SyntheticDataset` with ``.train
    .valid .test`` (:class:`TabularData`, one binary task ``"click"``, ``true_prob`` filled),
    ``.schema``, ``.truth`` (:class:`CTRTruth`), ``.bayes_metrics(split)`` and ``.parts_table()``.

    Structure:
        n_samples: rows in all three splits together.
        preset: ``"criteo"`` (default: 13 dense fields ``I1..I13``, 26 categorical fields
            ``C1..C26`` with vocabularies 10..100k, ~0.33M ids) or ``"teaching"`` (4 dense and 8
            categorical fields with readable names: city, taste, weekday, hour, device, shop, user,
            banner_color; crosses such as ``taste=latte x city=Shanghai``). Any structure argument
            given explicitly overrides the preset.
        n_dense, dense_names: number/names of dense fields.
        vocab_sizes, field_names: vocabulary size/name of each categorical field.
        value_names: optional ``field -> names of its ids`` (id 0 is the most frequent value).
        zipf_exponent: :math:`s` of :math:`\pi_f(k) \propto (k+1)^{-s}`, one for all fields or one
            per field; 0 is uniform. Default 1.1.

    Scales (population standard deviation of the part's contribution to the logit; 0 = off):
        main_effects, dense_effects, pairwise, dense_x_cat, third_order.
        crosses: the logit bump :math:`w` of each planted cross (0 = off).

    Roles (``None`` = preset default; an int = that many, drawn with the seed; or explicit names):
        cross_pairs: crosses as ``(field_a, value_a, field_b, value_b)`` or with a 5th element,
            the weight (values are ids or names). Drawn crosses use values whose joint frequency is
            at least ``min_cross_frequency``. Default 4.
        pairwise_fields, pairwise_rank: the FM fields :math:`P` (default 8) and vector size.
        dense_x_cat_pairs: ``(dense field, categorical field)`` pairs (default 3).
        third_order_fields, third_order_rank: triples (default 2; the second drawn triple has a
            dense member) and the rank of the trilinear form.
        noise_fields: categorical fields with no effect (default n_fields // 6).
        informative_dense: dense fields with a linear effect (default 60 %, rounded up); the
            other dense fields are noise.

    Other:
        positive_rate: mean true click probability over the rows (solved intercept), in (0, 1);
            tested from 0.5 down to 0.01.
        seed: everything is deterministic given the seed.
        split: fractions ``(train, valid, test)``; rows are i.i.d., so the splits are consecutive blocks.
    """
    # ---------------------------------------------------------------- validate simple arguments
    n_samples = check_int("n_samples", n_samples, 3)
    if preset not in _PRESETS:
        raise ValueError(f"preset must be one of {_PRESETS}, got {preset!r}")
    seed = check_int("seed", seed, 0)
    fractions = check_split(split)
    try:
        rate = float(positive_rate)
    except (TypeError, ValueError):
        raise TypeError(f"positive_rate must be a number, got {positive_rate!r}") from None
    if not 0.0 < rate < 1.0:
        raise ValueError(f"positive_rate must lie strictly between 0 and 1, got {positive_rate!r}")
    scales = {"main": check_scale("main_effects", main_effects), "dense": check_scale("dense_effects", dense_effects),
              "crosses": check_scale("crosses", crosses), "pairwise": check_scale("pairwise", pairwise),
              "dense_x_cat": check_scale("dense_x_cat", dense_x_cat),
              "third_order": check_scale("third_order", third_order)}
    pairwise_rank = check_int("pairwise_rank", pairwise_rank, 1)
    third_order_rank = check_int("third_order_rank", third_order_rank, 1)
    min_cross_frequency = check_scale("min_cross_frequency", min_cross_frequency)
    seqs = dict(zip(_STREAMS, np.random.SeedSequence(seed).spawn(len(_STREAMS))))
    streams = {k: np.random.default_rng(v) for k, v in seqs.items()}

    teach = _TEACHING if preset == "teaching" else None
    fields = _make_fields(teach, n_dense, vocab_sizes, field_names, dense_names, value_names, zipf_exponent)
    specs = dict(noise_fields=noise_fields, informative_dense=informative_dense, pairwise_fields=pairwise_fields,
                 dense_x_cat_pairs=dense_x_cat_pairs, third_order_fields=third_order_fields, cross_pairs=cross_pairs)
    if teach is not None:  # the preset's roles, unless given
        specs = {k: teach[k] if v is None else v for k, v in specs.items()}
    roles = _draw_roles(fields, specs, streams, scales["crosses"], min_cross_frequency)
    truth = _make_truth(fields, roles, scales, pairwise_rank, third_order_rank, streams)
    dense, sparse, labels, p = _draw_rows(truth, fields, n_samples, rate, seqs["features"], streams["labels"])
    params = dict(n_samples=n_samples, preset=preset, positive_rate=rate, seed=seed, split=fractions,
                  pairwise_rank=pairwise_rank, third_order_rank=third_order_rank, **{f"scale_{k}": v for k, v in scales.items()})
    return _make_splits(schema=fields.schema, dense=dense, sparse=sparse, labels=labels[:, None],
                        true_prob=p.astype(np.float32)[:, None], task_names=("click",), task_types=("binary",),
                        fractions=fractions, truth=truth, params=params)


def _make_splits(schema: FeatureSchema, dense: np.ndarray, sparse: np.ndarray, labels: np.ndarray,
                 true_prob: np.ndarray, task_names: tuple[str, ...], task_types: tuple[str, ...],
                 fractions: Sequence[float], truth: Any, params: dict[str, Any]) -> SyntheticDataset:
    """A :class:`SyntheticDataset` of rows cut into consecutive train/valid/test blocks."""
    parts = split_rows(schema, dense, sparse, labels, true_prob, task_names, task_types, fractions)
    return SyntheticDataset(*parts, truth=truth, params=params)
