r"""The planted click model of :func:`rankcourse.data.make_ctr_data`: its tables, roles and logit.

:class:`CTRTruth` evaluates the true logit, part by part (:data:`PART_NAMES`), on any batch; the
formula and the meaning of every part are in :mod:`rankcourse.data.ctr`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..schema import FeatureSchema
from ._shared import sigmoid

__all__ = ["CTRTruth", "PlantedCross", "PART_NAMES", "ROW_BLOCK"]

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

#: Rows per block when drawing features and evaluating the truth (cache-sized).
ROW_BLOCK = 16_384


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
        for a in range(0, n, ROW_BLOCK):
            for k, v in self._parts_block(d[a:a + ROW_BLOCK], s[a:a + ROW_BLOCK]).items():
                out[k][a:a + ROW_BLOCK] = v
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

    def parts_table(self, dense: Any, sparse: Any):
        """A pandas DataFrame indexed by part: its ``scale`` parameter (for the intercept: :math:`b`),
        the ``std`` and ``mean`` of its contribution on the rows ``(dense, sparse)``, and which model
        family can capture it (``captured_by``)."""
        import pandas as pd

        parts = self.logit_parts(dense, sparse)
        rows = [{"part": k, "scale": (self.intercept if k == "intercept" else self.scales[k]),
                 "std": float(parts[k].std()), "mean": float(parts[k].mean()),
                 "captured_by": _CAPTURED_BY[k]} for k in PART_NAMES]
        return pd.DataFrame(rows).set_index("part")

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
