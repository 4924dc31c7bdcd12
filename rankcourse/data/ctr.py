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

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..schema import FeatureSchema, SparseField
from ._shared import check_int, check_scale, check_split, sigmoid, solve_intercept, split_rows
from .tabular import TabularData

__all__ = [
    "make_ctr_data",
    "SyntheticDataset",
    "CTRTruth",
    "PlantedCross",
    "PART_NAMES",
    "criteo_vocab_sizes",
]

#: The logit parts, in the order of the formula; what a model needs to capture each.
PART_NAMES = ("intercept", "main", "dense", "crosses", "pairwise", "dense_x_cat", "third_order")
_CAPTURED_BY = {
    "intercept": "any model (bias)",
    "main": "LR: one weight per id",
    "dense": "LR: one weight per dense field",
    "crosses": "Wide & Deep cross-product features (memorisation)",
    "pairwise": "FM / DeepFM second-order term",
    "dense_x_cat": "a deep part or cross layer (dense x embedding)",
    "third_order": "a cross network with >= 2 layers, CIN, or a deep part",
}

# Interaction parts draw their fields among those with at most this many ids (unless named
# explicitly): an interaction between two 100k-id fields is mostly unlearnable noise.
_INTERACTION_VOCAB_LIMIT = 10_000

_PRESETS = ("criteo", "teaching")

_CHUNK = 16_384  # rows per block when drawing features and evaluating the truth (cache-sized)

# Independent random streams, spawned in this fixed order from the seed.
_STREAMS = (
    "noise_fields", "informative_dense", "cross_roles", "pairwise_roles", "dense_x_cat_roles",
    "third_order_roles", "main", "dense", "pairwise", "dense_x_cat", "third_order", "features", "labels",
)


def criteo_vocab_sizes(n_fields: int = 26, smallest: int = 10, largest: int = 100_000) -> tuple[int, ...]:
    """Vocabulary sizes spaced geometrically from ``smallest`` to ``largest`` (Criteo-like)."""
    if n_fields < 1 or smallest < 1 or largest < smallest:
        raise ValueError(f"need n_fields >= 1 and 1 <= smallest <= largest, got {n_fields}, {smallest}, {largest}")
    return tuple(int(v) for v in np.round(np.geomspace(smallest, largest, n_fields)))


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


# ----------------------------------------------------------------------------- truth objects
@dataclass(frozen=True)
class PlantedCross:
    """One planted cross: ``field_a == value_a`` and ``field_b == value_b`` adds ``weight`` to the logit.

    ``frequency`` is the expected share of rows that have both values (product of the two Zipf
    probabilities); ``label_a``/``label_b`` are the human-readable value names.
    """

    field_a: str
    value_a: int
    field_b: str
    value_b: int
    weight: float
    frequency: float
    label_a: str = ""
    label_b: str = ""

    def __str__(self) -> str:
        return (f"{self.field_a}={self.label_a or self.value_a} x {self.field_b}={self.label_b or self.value_b}"
                f" -> {self.weight:+.2f} (in {self.frequency:.2%} of rows)")


def _to_numpy(x: Any, dtype: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


@dataclass
class CTRTruth:
    """The planted click model: every table, vector and role, and the function it defines.

    Use :meth:`logit_parts` / :meth:`logit` / :meth:`prob` to evaluate the true model on any
    ``(dense, sparse)`` batch (numpy arrays or tensors), e.g. to ask what the true click
    probability of a latte in Shanghai is. Array attributes are float64.

    Attributes:
        schema: the fields.
        intercept: :math:`b`, solved to hit ``positive_rate``.
        scales: the scale parameters the data were made with.
        value_probs: field -> Zipf probabilities ``(vocab,)``.
        value_names: field -> names of its values, for the fields that have names (others are
            shown as their ids).
        dense_center, dense_scale: ``(n_dense,)`` exact mean/std of each raw dense field.
        dense_params: ``(n_dense, 2)`` negative-binomial mean and dispersion of each dense count.
        main_effects: field -> :math:`\\beta_f` ``(vocab,)`` (zeros for noise fields).
        dense_coef: ``(n_dense,)`` :math:`\\gamma` (zeros for noise dense fields).
        crosses: the planted crosses.
        pairwise_fields, pairwise_vectors: :math:`P` and field -> :math:`v_f` ``(vocab, rank)``.
        dense_x_cat_pairs, dense_x_cat_slopes: :math:`Q` and one :math:`a_f` ``(vocab,)`` per pair.
        third_order_fields, third_order_factors: :math:`T` and per triple a dict field -> factor
            (``(vocab, rank)`` for a categorical member, ``(rank,)`` :math:`g_j` for a dense one).
        noise_fields, noise_dense: the fields that enter no part.
    """

    schema: FeatureSchema
    intercept: float
    scales: dict[str, float]
    value_probs: dict[str, np.ndarray]
    value_names: dict[str, tuple[str, ...]]
    dense_center: np.ndarray
    dense_scale: np.ndarray
    dense_params: np.ndarray
    main_effects: dict[str, np.ndarray]
    dense_coef: np.ndarray
    crosses: tuple[PlantedCross, ...]
    pairwise_fields: tuple[str, ...]
    pairwise_vectors: dict[str, np.ndarray]
    dense_x_cat_pairs: tuple[tuple[str, str], ...]
    dense_x_cat_slopes: tuple[np.ndarray, ...]
    third_order_fields: tuple[tuple[str, str, str], ...]
    third_order_factors: tuple[dict[str, np.ndarray], ...]
    noise_fields: tuple[str, ...]
    noise_dense: tuple[str, ...]

    # ------------------------------------------------------------------ evaluation
    def standardized_dense(self, dense: Any) -> np.ndarray:
        """``(n, n_dense)`` float64 :math:`x_j = (\\tilde d_j - m_j)/s_j`."""
        d = _to_numpy(dense, np.float64)
        if d.ndim != 2 or d.shape[1] != self.schema.n_dense:
            raise ValueError(f"dense must have shape (n, {self.schema.n_dense}), got {d.shape}")
        return (d - self.dense_center) / self.dense_scale

    def logit_parts(self, dense: Any, sparse: Any) -> dict[str, np.ndarray]:
        """Each part of the true logit, ``name -> float64 (n,)``, in :data:`PART_NAMES` order."""
        s = _to_numpy(sparse, np.int64)
        if s.ndim != 2 or s.shape[1] != self.schema.n_fields:
            raise ValueError(f"sparse must have shape (n, {self.schema.n_fields}), got {s.shape}")
        d = _to_numpy(dense, np.float32) if not isinstance(dense, np.ndarray) else dense
        if d.ndim != 2 or d.shape[1] != self.schema.n_dense:
            raise ValueError(f"dense must have shape (n, {self.schema.n_dense}), got {d.shape}")
        if d.shape[0] != s.shape[0]:
            raise ValueError(f"dense has {d.shape[0]} rows but sparse has {s.shape[0]}")
        n = s.shape[0]
        out = {k: np.empty(n) for k in PART_NAMES}
        # Row blocks keep each block's ids in cache while the per-field gathers run.
        for a in range(0, n, _CHUNK):
            for k, v in self._parts_block(d[a:a + _CHUNK], s[a:a + _CHUNK]).items():
                out[k][a:a + _CHUNK] = v
        return out

    def _parts_block(self, dense: np.ndarray, s: np.ndarray) -> dict[str, np.ndarray]:
        n = s.shape[0]
        x = (dense.astype(np.float64) - self.dense_center) / self.dense_scale
        col = self.schema.sparse_index
        dcol = self.schema.dense_index
        parts: dict[str, np.ndarray] = {"intercept": np.full(n, self.intercept)}

        main = np.zeros(n)
        for name, beta in self.main_effects.items():
            if name not in self.noise_fields:
                main += beta[s[:, col(name)]]
        parts["main"] = main
        parts["dense"] = x @ self.dense_coef if self.schema.n_dense else np.zeros(n)

        cross = np.zeros(n)
        for c in self.crosses:
            hit = (s[:, col(c.field_a)] == c.value_a) & (s[:, col(c.field_b)] == c.value_b)
            cross += c.weight * hit
        parts["crosses"] = cross

        # Sum over pairs f<g of <v_f, v_g> = (|sum_f v_f|^2 - sum_f |v_f|^2) / 2: linear in the fields.
        rank = next(iter(self.pairwise_vectors.values())).shape[1] if self.pairwise_vectors else 0
        total, squares = np.zeros((n, rank)), np.zeros(n)
        for name in self.pairwise_fields:
            v = self.pairwise_vectors[name][s[:, col(name)]]
            total += v
            squares += (v * v).sum(1)
        parts["pairwise"] = 0.5 * ((total * total).sum(1) - squares)

        dxc = np.zeros(n)
        for (dname, fname), slope in zip(self.dense_x_cat_pairs, self.dense_x_cat_slopes):
            dxc += x[:, dcol(dname)] * slope[s[:, col(fname)]]
        parts["dense_x_cat"] = dxc

        third = np.zeros(n)
        for triple, factors in zip(self.third_order_fields, self.third_order_factors):
            prod = None
            for name in triple:
                fac = factors[name]
                if name in self.schema.dense:
                    z = x[:, dcol(name), None] * fac[None, :]
                else:
                    z = fac[s[:, col(name)]]
                prod = z if prod is None else prod * z
            third += prod.sum(1)
        parts["third_order"] = third
        return parts

    def logit(self, dense: Any, sparse: Any) -> np.ndarray:
        """The true logit :math:`z(x)`, float64 ``(n,)``."""
        return np.sum(list(self.logit_parts(dense, sparse).values()), axis=0)

    def prob(self, dense: Any, sparse: Any) -> np.ndarray:
        """The true click probability :math:`\\sigma(z(x))`, float64 ``(n,)``."""
        return sigmoid(self.logit(dense, sparse))

    # ------------------------------------------------------------------ reading
    def decode(self, field_name: str, ids: Any) -> list[str]:
        """Human-readable names of ``ids`` of categorical field ``field_name``."""
        vocab = self.schema.sparse[self.schema.sparse_index(field_name)].vocab_size
        names = self.value_names.get(field_name)
        out = []
        for i in np.atleast_1d(np.asarray(ids)).tolist():
            if not 0 <= int(i) < vocab:
                raise ValueError(f"id {i} of field {field_name!r} is outside [0, {vocab})")
            out.append(names[int(i)] if names is not None else str(int(i)))
        return out

    def encode(self, field_name: str, value: str | int) -> int:
        """The id of value ``value`` (a name or an id) of field ``field_name``."""
        return _value_id(field_name, value, self.value_names, dict(zip(
            [f.name for f in self.schema.sparse], self.schema.vocab_sizes)))

    def describe(self) -> str:
        """A few lines naming every planted part, for printing in a notebook."""
        lines = [f"intercept b = {self.intercept:+.3f}"]
        present = {"main": any(n not in self.noise_fields for n in self.main_effects),
                   "dense": bool(np.any(self.dense_coef != 0)) or self.scales["dense"] == 0,
                   "crosses": bool(self.crosses), "pairwise": bool(self.pairwise_fields),
                   "dense_x_cat": bool(self.dense_x_cat_pairs), "third_order": bool(self.third_order_fields)}
        for k in PART_NAMES[1:]:
            off = "" if present[k] else "  [no fields: off]"
            lines.append(f"{k:<12} scale {self.scales[k]:g}  ({_CAPTURED_BY[k]}){off}")
        lines += ["planted crosses:"] + [f"  {c}" for c in self.crosses]
        lines.append(f"pairwise (FM) fields: {list(self.pairwise_fields)}")
        lines.append(f"dense x categorical pairs: {[f'{d}*{f}' for d, f in self.dense_x_cat_pairs]}")
        lines.append(f"third-order triples: {[' * '.join(t) for t in self.third_order_fields]}")
        lines.append(f"noise fields (no effect): {list(self.noise_fields) + list(self.noise_dense)}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- the dataset
@dataclass
class SyntheticDataset:
    """Train/valid/test splits of a synthetic dataset with its planted truth.

    Attributes:
        train, valid, test: :class:`TabularData` with ``true_prob`` filled in.
        schema: the fields (shared by the splits).
        truth: the planted model (:class:`CTRTruth` for click data; see the generator for others).
        params: the arguments the data were made with.
    """

    train: TabularData
    valid: TabularData
    test: TabularData
    truth: Any
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def schema(self) -> FeatureSchema:
        return self.train.schema

    @property
    def splits(self) -> tuple[TabularData, TabularData, TabularData]:
        """``(train, valid, test)``."""
        return self.train, self.valid, self.test

    @property
    def task_names(self) -> tuple[str, ...]:
        return self.train.task_names

    def split(self, name: str) -> TabularData:
        """The split called ``name``: "train", "valid" or "test"."""
        if name not in ("train", "valid", "test"):
            raise KeyError(f"unknown split {name!r}; use 'train', 'valid' or 'test'")
        return getattr(self, name)

    def bayes_metrics(self, split: str = "test", task: str | None = None) -> dict[str, Any]:
        """What the true probabilities score on ``split``: the ceiling for any model.

        Binary task: ``{"auc", "logloss", "positive_rate", "mean_true_prob", "n"}``
        (:func:`rankcourse.metrics.auc` and :func:`~rankcourse.metrics.logloss`: a one-class split
        has a NaN AUC, with a warning). Regression task: ``{"mse", "label_variance", "n"}`` where
        ``mse`` is the noise-free target's squared error. With one task (or ``task`` given) the dict
        is flat; otherwise it maps each task name to its dict.
        """
        from ..metrics import auc, logloss  # the one AUC rule; imported here, as metrics builds on data

        data = self.split(split)
        names = data.task_names if task is None else (task,)
        if task is not None and task not in data.task_names:
            raise KeyError(f"unknown task {task!r}; this data has tasks {list(data.task_names)}")
        out: dict[str, Any] = {}
        for name in names:
            k = data.task_names.index(name)
            y = data.labels[:, k].double().numpy()
            t = data.true_prob[:, k].double().numpy()
            if data.task_types[k] == "binary":
                out[name] = {"auc": auc(y, t, f"split {split!r}, task {name!r}"), "logloss": logloss(y, t),
                             "positive_rate": float(y.mean()), "mean_true_prob": float(t.mean()), "n": len(y)}
            else:
                out[name] = {"mse": float(np.mean((y - t) ** 2)), "label_variance": float(y.var()), "n": len(y)}
        return out[names[0]] if len(names) == 1 else out

    def parts_table(self, split: str = "train"):
        """A pandas DataFrame indexed by part: its ``scale`` parameter (for the intercept: :math:`b`),
        the ``std`` and ``mean`` of its contribution on ``split``, and which model family can
        capture it (``captured_by``). Click data from :func:`make_ctr_data` only."""
        import pandas as pd

        if not isinstance(self.truth, CTRTruth):
            raise TypeError("parts_table needs data from make_ctr_data (a CTRTruth)")
        data = self.split(split)
        parts = self.truth.logit_parts(data.dense, data.sparse)
        rows = [{"part": k, "scale": (self.truth.intercept if k == "intercept" else self.truth.scales[k]),
                 "std": float(parts[k].std()), "mean": float(parts[k].mean()),
                 "captured_by": _CAPTURED_BY[k]} for k in PART_NAMES]
        return pd.DataFrame(rows).set_index("part")

    def to_frame(self, split: str = "train", rows: int | None = 10, decode: bool = True):
        """The first ``rows`` rows of ``split`` (all if None) as a pandas DataFrame: dense columns,
        categorical columns (value names where the truth has them and ``decode``), labels and
        ``true_prob_<task>``. For looking at the data, not for training."""
        import pandas as pd

        data = self.split(split)
        n = len(data) if rows is None else min(int(rows), len(data))
        cols: dict[str, Any] = {}
        dense, sparse = data.dense[:n].numpy(), data.sparse[:n].numpy()
        for j, name in enumerate(self.schema.dense):
            cols[name] = dense[:, j]
        names = getattr(self.truth, "value_names", {}) if decode else {}
        for j, f in enumerate(self.schema.sparse):
            ids = sparse[:, j]
            cols[f.name] = [names[f.name][i] for i in ids] if f.name in names else ids
        for k, task in enumerate(data.task_names):
            cols[task] = data.labels[:n, k].numpy()
            if data.true_prob is not None:
                prefix = "true_prob" if data.task_types[k] == "binary" else "true_target"
                cols[f"{prefix}_{task}"] = data.true_prob[:n, k].numpy()
        return pd.DataFrame(cols)

    def __repr__(self) -> str:
        s = self.schema
        return (f"SyntheticDataset(train={len(self.train)}, valid={len(self.valid)}, test={len(self.test)}, "
                f"n_dense={s.n_dense}, n_fields={s.n_fields}, tasks={list(self.task_names)})")


# ----------------------------------------------------------------------------- helpers
def _zipf_probs(vocab: int, exponent: float) -> np.ndarray:
    p = np.arange(1, vocab + 1, dtype=np.float64) ** (-exponent)
    return p / p.sum()


def _negbin_pmf(mean: float, dispersion: float) -> np.ndarray:
    """pmf of a negative-binomial count with this mean and dispersion r (variance mean + mean^2/r),
    on 0..K where the tail beyond K is far below 1e-12 (renormalised)."""
    q = mean / (mean + dispersion)  # the "failure" probability
    sd = math.sqrt(mean + mean * mean / dispersion)
    kmax = int(mean + 60 * sd + 100)
    k = np.arange(kmax, dtype=np.float64)
    # log pmf(k+1) - log pmf(k) = log(k + r) - log(k + 1) + log q
    steps = np.log(k[:-1] + dispersion) - np.log(k[:-1] + 1) + math.log(q)
    logpmf = dispersion * math.log(1 - q) + np.concatenate([[0.0], np.cumsum(steps)])
    pmf = np.exp(logpmf)
    return pmf / pmf.sum()


def _log1p_moments(pmf: np.ndarray) -> tuple[float, float]:
    """Exact mean and std of log(1 + n) for a count n with this pmf."""
    v = np.log1p(np.arange(len(pmf), dtype=np.float64))
    m = float(pmf @ v)
    return m, float(math.sqrt(pmf @ (v - m) ** 2))


def _center(table: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Subtract the Zipf-weighted mean so the looked-up value has mean zero over rows."""
    return table - np.tensordot(probs, table, axes=(0, 0))


def _second_moment(table: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """E[v v^T] of a looked-up row v = table[id], id ~ probs: ``(rank, rank)``."""
    return (table * probs[:, None]).T @ table


def _value_id(field_name: str, value: str | int, value_names: Mapping[str, Sequence[str]],
              vocab: Mapping[str, int]) -> int:
    if field_name not in vocab:
        raise KeyError(f"unknown categorical field {field_name!r}; the schema has {list(vocab)}")
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if not 0 <= value < vocab[field_name]:
            raise ValueError(f"value {value} of field {field_name!r} is outside [0, {vocab[field_name]})")
        return int(value)
    names = list(value_names.get(field_name, ()))
    if value in names:
        return names.index(value)
    raise ValueError(f"field {field_name!r} has no value {value!r}; its values are {names[:20]}"
                     + (" ..." if len(names) > 20 else ""))


def _choose(rng: np.random.Generator, pool: Sequence[str], k: int) -> tuple[str, ...]:
    idx = rng.choice(len(pool), size=k, replace=False)
    return tuple(pool[i] for i in sorted(idx))


def _resolve_names(role: str, spec: Any, pool: Sequence[str], default: int, rng: np.random.Generator,
                   known: Sequence[str]) -> tuple[str, ...]:
    """A role given as None (default count), an int (count drawn from ``pool``) or explicit names."""
    if spec is None:
        return _choose(rng, pool, min(default, len(pool)))
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        if spec < 0 or spec > len(pool):
            raise ValueError(f"{role}={spec}: must be between 0 and {len(pool)} (the eligible fields {list(pool)})")
        return _choose(rng, pool, int(spec))
    if isinstance(spec, str):
        raise TypeError(f"{role} must be an int or a sequence of field names, got the string {spec!r}")
    names = tuple(spec)
    for n in names:
        if n not in known:
            raise KeyError(f"{role}: unknown field {n!r}; the fields are {list(known)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{role}: repeated field names in {names}")
    return names


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


# ----------------------------------------------------------------------------- the generator's steps
@dataclass
class _Fields:
    """Step 1: the fields, their value frequencies and the dense count distributions."""

    schema: FeatureSchema
    names: list[str]
    dnames: list[str]
    vocab_of: dict[str, int]
    probs: dict[str, np.ndarray]
    vnames: dict[str, tuple[str, ...]]
    dmeans: np.ndarray
    ddisp: np.ndarray
    dense_pmfs: list[np.ndarray]
    moments: np.ndarray

    def label(self, f: str, i: int) -> str:
        return self.vnames[f][i] if f in self.vnames else str(i)


@dataclass
class _Roles:
    """Step 2: which fields play which part in the logit."""

    noise: tuple[str, ...]
    active: list[str]
    eligible: list[str]
    inf_dense: tuple[str, ...]
    noise_dense: tuple[str, ...]
    pw: tuple[str, ...]
    dxc_pairs: tuple[tuple[str, str], ...]
    third_triples: tuple[tuple[str, ...], ...]
    planted: list[PlantedCross]

    def check_active(self, role: str, used: Sequence[str]) -> None:
        for u in used:
            if u in self.noise or u in self.noise_dense:
                raise ValueError(f"{role}: field {u!r} is a noise field; noise fields must have no effect")


def _make_fields(teach: dict | None, n_dense: int | None, vocab_sizes: Sequence[int] | None,
                 field_names: Sequence[str] | None, dense_names: Sequence[str] | None,
                 value_names: Mapping[str, Sequence[str]] | None,
                 zipf_exponent: float | Sequence[float] | None) -> _Fields:
    """Names, vocabularies, Zipf frequencies and dense count distributions (no randomness)."""
    if teach is not None:
        fields = teach["fields"]
        vocab = list(vocab_sizes) if vocab_sizes is not None else [f[1] for f in fields]
        names = list(field_names) if field_names is not None else [f[0] for f in fields]
        expo = zipf_exponent if zipf_exponent is not None else [f[2] for f in fields]
        dnames = list(dense_names) if dense_names is not None else (
            list(teach["dense_names"]) if n_dense is None else [f"I{i + 1}" for i in range(n_dense)])
    else:
        vocab = list(vocab_sizes) if vocab_sizes is not None else list(criteo_vocab_sizes())
        names = list(field_names) if field_names is not None else [f"C{i + 1}" for i in range(len(vocab))]
        expo = zipf_exponent if zipf_exponent is not None else 1.1
        nd = 13 if n_dense is None else n_dense
        dnames = list(dense_names) if dense_names is not None else [f"I{i + 1}" for i in range(check_int("n_dense", nd, 0))]
    if n_dense is not None and len(dnames) != check_int("n_dense", n_dense, 0):
        raise ValueError(f"n_dense={n_dense} but dense_names has {len(dnames)} names: {dnames}")
    if len(names) != len(vocab):
        raise ValueError(f"field_names has {len(names)} names but vocab_sizes has {len(vocab)} sizes")
    for n_, v in zip(names, vocab):
        check_int(f"vocab size of field {n_!r}", v, 1)
    vocab = [int(v) for v in vocab]
    vnames: dict[str, Sequence[str]] = {}
    if teach is not None:  # keep the value names of every preset field still there with its vocabulary
        vnames = {f[0]: f[3] for f in teach["fields"] if f[3] is not None and f[0] in names
                  and vocab[names.index(f[0])] == f[1]}
    expos = [float(expo)] * len(vocab) if np.ndim(expo) == 0 else [float(e) for e in expo]
    if len(expos) != len(vocab):
        raise ValueError(f"zipf_exponent has {len(expos)} values for {len(vocab)} categorical fields")
    for n_, e in zip(names, expos):
        if not (math.isfinite(e) and e >= 0):
            raise ValueError(f"zipf_exponent of field {n_!r} must be finite and >= 0, got {e!r}")
    schema = FeatureSchema(dense=tuple(dnames), sparse=tuple(SparseField(n_, v) for n_, v in zip(names, vocab)))
    if value_names is not None:
        for k, vals in value_names.items():
            if k not in names:
                raise KeyError(f"value_names: unknown categorical field {k!r}; the fields are {names}")
            vals = tuple(str(x) for x in vals)
            if len(vals) != vocab[names.index(k)]:
                raise ValueError(f"value_names[{k!r}] has {len(vals)} names for a vocabulary of {vocab[names.index(k)]}")
            vnames[k] = vals
    vnames = {k: tuple(v) for k, v in vnames.items()}

    vocab_of = dict(zip(names, vocab))
    probs = {n_: _zipf_probs(v, e) for n_, v, e in zip(names, vocab, expos)}

    nd = len(dnames)
    if teach is not None and dense_names is None and n_dense is None:
        dmeans, ddisp = np.array(teach["dense_means"]), np.array(teach["dense_dispersions"])
    else:
        dmeans = np.geomspace(0.3, 300.0, nd) if nd else np.zeros(0)
        ddisp = np.array([(0.5, 1.0, 2.0)[j % 3] for j in range(nd)])
    dense_pmfs = [_negbin_pmf(float(m), float(r)) for m, r in zip(dmeans, ddisp)]
    moments = np.array([_log1p_moments(pmf) for pmf in dense_pmfs]).reshape(nd, 2)
    return _Fields(schema, names, dnames, vocab_of, probs, vnames, dmeans, ddisp, dense_pmfs, moments)


def _draw_roles(fields: _Fields, specs: dict[str, Any], streams: Mapping[str, np.random.Generator],
                cross_scale: float, min_cross_frequency: float) -> _Roles:
    """Noise fields, informative dense fields, FM fields, then the interaction roles."""
    names, dnames, vocab_of = fields.names, fields.dnames, fields.vocab_of
    nd = len(dnames)
    noise = _resolve_names("noise_fields", specs["noise_fields"],
                           names, len(names) // 6, streams["noise_fields"], names)
    active = [n_ for n_ in names if n_ not in noise]
    eligible = [n_ for n_ in active if vocab_of[n_] <= _INTERACTION_VOCAB_LIMIT]
    inf_dense = _resolve_names("informative_dense",
                               specs["informative_dense"],
                               dnames, math.ceil(0.6 * nd), streams["informative_dense"], dnames)
    noise_dense = tuple(d for d in dnames if d not in inf_dense)

    roles = _Roles(noise, active, eligible, inf_dense, noise_dense, (), (), (), [])
    pw = _resolve_names("pairwise_fields", specs["pairwise_fields"],
                        eligible, 8 if len(eligible) >= 2 else 0, streams["pairwise_roles"], names)
    roles.check_active("pairwise_fields", pw)
    if len(pw) == 1:
        raise ValueError(f"pairwise_fields needs at least 2 fields (or none), got {pw}")
    roles.pw = pw
    roles.dxc_pairs = _dense_x_cat_roles(specs["dense_x_cat_pairs"], fields, roles, streams["dense_x_cat_roles"])
    roles.third_triples = _third_order_roles(specs["third_order_fields"], fields, roles, streams["third_order_roles"])
    roles.planted = _cross_roles(specs["cross_pairs"], fields, roles, streams["cross_roles"], cross_scale,
                                 min_cross_frequency)
    return roles


def _dense_x_cat_roles(spec: Any, fields: _Fields, roles: _Roles,
                       rng: np.random.Generator) -> tuple[tuple[str, str], ...]:
    """The (dense field, categorical field) pairs of the dense-by-categorical slopes."""
    names, dnames = fields.names, fields.dnames
    inf_dense, eligible, check_active = roles.inf_dense, roles.eligible, roles.check_active
    if spec is None or (isinstance(spec, (int, np.integer)) and not isinstance(spec, bool)):
        k = min(3, len(inf_dense), len(eligible)) if spec is None else int(spec)
        if k < 0 or (k > 0 and (not inf_dense or not eligible)) or k > len(inf_dense) * len(eligible):
            raise ValueError(f"dense_x_cat_pairs={spec}: cannot draw that many pairs from informative dense fields "
                             f"{list(inf_dense)} and categorical fields {eligible}")
        combos = [(d, f) for d in inf_dense for f in eligible]
        dxc_pairs = tuple(combos[i] for i in sorted(rng.choice(len(combos), size=k, replace=False)))
    else:
        dxc_pairs = tuple((str(d), str(f)) for d, f in spec)
        for d, f in dxc_pairs:
            if d not in dnames:
                raise KeyError(f"dense_x_cat_pairs: unknown dense field {d!r}; the dense fields are {dnames}")
            if f not in names:
                raise KeyError(f"dense_x_cat_pairs: unknown categorical field {f!r}; the fields are {names}")
            check_active("dense_x_cat_pairs", (d, f))
        if len(set(dxc_pairs)) != len(dxc_pairs):
            raise ValueError(f"dense_x_cat_pairs: repeated pair in {dxc_pairs}")
    return dxc_pairs


def _third_order_roles(spec: Any, fields: _Fields, roles: _Roles,
                       rng: np.random.Generator) -> tuple[tuple[str, ...], ...]:
    """The field triples of the third-order term (every second drawn triple has a dense member)."""
    names, dnames = fields.names, fields.dnames
    inf_dense, eligible, check_active = roles.inf_dense, roles.eligible, roles.check_active
    if spec is None or (isinstance(spec, (int, np.integer)) and not isinstance(spec, bool)):
        k = (2 if len(eligible) >= 3 else 0) if spec is None else int(spec)
        if k < 0 or (k > 0 and len(eligible) < 3):
            raise ValueError(f"third_order_fields={spec}: need at least 3 eligible categorical fields, have {eligible}")
        triples: list[tuple[str, str, str]] = []
        for t in range(k):
            for _ in range(1000):
                if t % 2 == 1 and inf_dense:  # every second drawn triple has a dense member
                    a, b = (eligible[i] for i in rng.choice(len(eligible), 2, replace=False))
                    cand = (a, b, inf_dense[int(rng.integers(len(inf_dense)))])
                else:
                    cand = tuple(eligible[i] for i in rng.choice(len(eligible), 3, replace=False))
                if frozenset(cand) not in {frozenset(x) for x in triples}:
                    triples.append(cand)  # type: ignore[arg-type]
                    break
            else:
                if spec is None:  # the default asks for at most 2; keep what can be drawn
                    break
                raise ValueError(f"third_order_fields={spec}: could not draw {k} distinct triples from {eligible}")
        third_triples = tuple(triples)
    else:
        third_triples = tuple(tuple(str(x) for x in t) for t in spec)  # type: ignore[misc]
        for t in third_triples:
            if len(t) != 3 or len(set(t)) != 3:
                raise ValueError(f"third_order_fields: each entry must be 3 distinct field names, got {t}")
            for x in t:
                if x not in names and x not in dnames:
                    raise KeyError(f"third_order_fields: unknown field {x!r}; the fields are {dnames + names}")
            check_active("third_order_fields", t)
        if len({frozenset(t) for t in third_triples}) != len(third_triples):
            raise ValueError(f"third_order_fields: repeated triple in {third_triples}")
    return third_triples


def _cross_roles(spec: Any, fields: _Fields, roles: _Roles, rng: np.random.Generator,
                 cross_scale: float, min_cross_frequency: float) -> list[PlantedCross]:
    """The planted crosses: drawn among frequent value pairs, or as given."""
    names, probs, label = fields.names, fields.probs, fields.label
    vnames, vocab_of, active, check_active = fields.vnames, fields.vocab_of, roles.active, roles.check_active
    scales = {"crosses": cross_scale}
    planted: list[PlantedCross] = []
    if spec is None or (isinstance(spec, (int, np.integer)) and not isinstance(spec, bool)):
        k = 4 if spec is None else int(spec)
        if k < 0:
            raise ValueError(f"cross_pairs must be >= 0, got {spec}")
        pairs = [(a, b) for i, a in enumerate(active) for b in active[i + 1:]]
        order = rng.permutation(len(pairs))
        used_pairs: set[tuple[str, str]] = set()
        for pi in order:
            if len(planted) == k:
                break
            a, b = pairs[pi]
            top_a, top_b = probs[a][:50], probs[b][:50]
            joint = top_a[:, None] * top_b[None, :]
            ok = np.argwhere(joint >= min_cross_frequency)
            if len(ok) == 0 or (a, b) in used_pairs:
                continue
            ia, ib = ok[int(rng.integers(len(ok)))]
            used_pairs.add((a, b))
            planted.append(PlantedCross(a, int(ia), b, int(ib), scales["crosses"], float(joint[ia, ib]),
                                        label(a, ia), label(b, ib)))
        if len(planted) < k and spec is not None:
            raise ValueError(f"cross_pairs={k}: only {len(planted)} field pairs have values with joint frequency "
                             f">= min_cross_frequency={min_cross_frequency}")
        planted.sort(key=lambda c: (names.index(c.field_a), names.index(c.field_b)))
    else:
        for c in spec:
            if len(c) not in (4, 5):
                raise ValueError(f"cross_pairs: each cross is (field_a, value_a, field_b, value_b[, weight]), got {c!r}")
            a, va, b, vb = c[:4]
            w = check_scale("cross weight", abs(c[4])) * np.sign(c[4]) if len(c) == 5 else scales["crosses"]
            if a == b:
                raise ValueError(f"cross_pairs: a cross needs two different fields, got {a!r} twice")
            ia, ib = _value_id(a, va, vnames, vocab_of), _value_id(b, vb, vnames, vocab_of)
            check_active("cross_pairs", (a, b))
            planted.append(PlantedCross(a, ia, b, ib, float(w) if scales["crosses"] > 0 else 0.0,
                                        float(probs[a][ia] * probs[b][ib]), label(a, ia), label(b, ib)))
    return planted


def _make_truth(fields: _Fields, roles: _Roles, scales: dict[str, float], pairwise_rank: int,
                third_order_rank: int, streams: Mapping[str, np.random.Generator]) -> CTRTruth:
    """Step 3: the tables of every logit part, each scaled to its population standard deviation;
    the intercept is solved later, on the drawn rows."""
    names, dnames, vocab_of, probs = fields.names, fields.dnames, fields.vocab_of, fields.probs
    active, noise, inf_dense, pw = roles.active, roles.noise, roles.inf_dense, roles.pw
    dxc_pairs, third_triples = roles.dxc_pairs, roles.third_triples
    nd = len(dnames)
    main_tabs: dict[str, np.ndarray] = {}
    rng = streams["main"]
    share = rng.dirichlet(np.ones(len(active))) if active else np.zeros(0)
    raw = {n_: rng.standard_normal(vocab_of[n_]) for n_ in active}
    for n_, sh in zip(active, share):
        t = _center(raw[n_], probs[n_])
        var = float(probs[n_] @ t ** 2)
        main_tabs[n_] = t * (scales["main"] * math.sqrt(sh / var) if var > 0 else 0.0)
    for n_ in noise:
        main_tabs[n_] = np.zeros(vocab_of[n_])
    main_tabs = {n_: main_tabs[n_] for n_ in names}

    dense_coef = np.zeros(nd)
    g = streams["dense"].standard_normal(len(inf_dense))
    if len(inf_dense) and scales["dense"] > 0:
        g *= scales["dense"] / np.linalg.norm(g)
        for d, c in zip(inf_dense, g):
            dense_coef[dnames.index(d)] = c

    rng = streams["pairwise"]
    pw_vecs = {n_: _center(rng.standard_normal((vocab_of[n_], pairwise_rank)), probs[n_]) for n_ in pw}
    var = sum(float(np.sum(_second_moment(pw_vecs[f], probs[f]) * _second_moment(pw_vecs[h], probs[h])))
              for i, f in enumerate(pw) for h in pw[i + 1:])
    # <c v_f, c v_g> = c^2 <v_f, v_g>: the term's std scales with c^2.
    c = math.sqrt(scales["pairwise"] / math.sqrt(var)) if var > 0 else 0.0
    pw_vecs = {n_: v * c for n_, v in pw_vecs.items()}

    rng = streams["dense_x_cat"]
    slopes = [_center(rng.standard_normal(vocab_of[f]), probs[f]) for _, f in dxc_pairs]
    var = sum(float(probs[f] @ s_ ** 2) for (_, f), s_ in zip(dxc_pairs, slopes))  # E[x_j^2] = 1
    c = scales["dense_x_cat"] / math.sqrt(var) if var > 0 else 0.0
    slopes = [s_ * c for s_ in slopes]

    rng = streams["third_order"]
    factors: list[dict[str, np.ndarray]] = []
    var = 0.0
    for t in third_triples:
        fac, prod = {}, np.ones((third_order_rank, third_order_rank))
        for x in t:
            if x in dnames:
                fac[x] = rng.standard_normal(third_order_rank)
                prod = prod * np.outer(fac[x], fac[x])  # E[x_j^2] = 1
            else:
                fac[x] = _center(rng.standard_normal((vocab_of[x], third_order_rank)), probs[x])
                prod = prod * _second_moment(fac[x], probs[x])
        factors.append(fac)
        var += float(prod.sum())  # Var sum_k prod_m z_mk = sum_{k,l} prod_m E[z_mk z_ml]
    # Each factor times c scales the product by c^3.
    c = (scales["third_order"] / math.sqrt(var)) ** (1 / 3) if var > 0 else 0.0
    factors = [{k_: v * c for k_, v in fac.items()} for fac in factors]

    return CTRTruth(
        schema=fields.schema, intercept=0.0, scales=scales, value_probs=probs, value_names=fields.vnames,
        dense_center=fields.moments[:, 0].copy(), dense_scale=fields.moments[:, 1].copy(),
        dense_params=np.stack([fields.dmeans, fields.ddisp], 1).reshape(nd, 2),
        main_effects=main_tabs, dense_coef=dense_coef, crosses=tuple(roles.planted), pairwise_fields=tuple(pw),
        pairwise_vectors=pw_vecs, dense_x_cat_pairs=dxc_pairs, dense_x_cat_slopes=tuple(slopes),
        third_order_fields=third_triples, third_order_factors=tuple(factors), noise_fields=tuple(noise),
        noise_dense=roles.noise_dense,
    )


def _draw_rows(truth: CTRTruth, fields: _Fields, n_samples: int, rate: float, features: np.random.SeedSequence,
               label_rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps 4 and 5: features, the logit parts' sum, the intercept that gives ``rate``, the labels.
    Returns ``dense, sparse, labels, true probabilities``; sets ``truth.intercept``."""
    dense, sparse = _draw_features(fields.schema, fields.probs, fields.dense_pmfs, n_samples, features)
    z = truth.logit(dense, sparse)
    truth.intercept = solve_intercept(z, rate)
    p = sigmoid(z + truth.intercept)
    labels = (label_rng.random(n_samples) < p).astype(np.float32)
    return dense, sparse, labels, p


def _draw_features(schema: FeatureSchema, probs: Mapping[str, np.ndarray], dense_pmfs: Sequence[np.ndarray],
                   n: int, seq: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    """Zipf ids and log1p negative-binomial counts, both by inverse-CDF sampling of a uniform.

    (Inverse-CDF sampling of the tabulated count pmf is several times faster than numpy's
    gamma-Poisson negative_binomial.) Each field has its own generator and rows are produced in
    blocks: the result does not depend on the block size, and the column writes stay in cache (a
    column-at-a-time write over 500k rows is several times slower).
    """
    gens = [np.random.default_rng(c) for c in seq.spawn(schema.n_fields + schema.n_dense)]
    cdfs = [np.cumsum(probs[f.name]) for f in schema.sparse] + [np.cumsum(p) for p in dense_pmfs]
    for cdf in cdfs:
        cdf[-1] = 1.0  # uniforms are < 1, so the last value is never exceeded
    sparse = np.empty((n, schema.n_fields), dtype=np.int64)
    dense = np.empty((n, schema.n_dense), dtype=np.float32)
    nf = schema.n_fields
    for a in range(0, n, _CHUNK):
        m = min(_CHUNK, n - a)
        for j in range(nf):
            sparse[a:a + m, j] = np.searchsorted(cdfs[j], gens[j].random(m), side="right")
        for j in range(schema.n_dense):
            counts = np.searchsorted(cdfs[nf + j], gens[nf + j].random(m), side="right")
            dense[a:a + m, j] = np.log1p(counts)
    return dense, sparse


def _make_splits(schema: FeatureSchema, dense: np.ndarray, sparse: np.ndarray, labels: np.ndarray,
                 true_prob: np.ndarray, task_names: tuple[str, ...], task_types: tuple[str, ...],
                 fractions: Sequence[float], truth: Any, params: dict[str, Any]) -> SyntheticDataset:
    """A :class:`SyntheticDataset` of rows cut into consecutive train/valid/test blocks."""
    parts = split_rows(schema, dense, sparse, labels, true_prob, task_names, task_types, fractions)
    return SyntheticDataset(*parts, truth=truth, params=params)
