"""Chapter 2's experiment on memorisation and generalisation: data, models and scores.

The coffee data of :func:`make_coffee_data` have three planted crosses (what a wide cross feature
should memorise) and a smooth rank-1 taste x city interaction (what embeddings can generalise).
:func:`prepare_run` removes a few strong (taste, city) pairs from training and keeps boolean masks
of the test rows to score separately: every row, the rows of each planted cross, the unseen pairs.
:func:`score_subsets` scores predictions on those rows against the true probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ..data import TabularData, make_ctr_data
from ..data.ctr_truth import CTRTruth, PlantedCross
from ..data.synthetic import SyntheticDataset
from ..ftrl import FTRLProximal
from ..layers import WideLinear
from ..metrics import logloss
from ..models import CTRModel, DeepTower
from ..schema import FeatureSchema, SparseField
from ..training import make_adam

__all__ = [
    "DeepModel", "MemorisationRun", "WideModel", "adam_per_part", "add_crossed_field", "coordinates_to_check",
    "choose_unseen_pairs", "cross_mask", "excess_logloss", "flat_wide_loss", "ftrl_wide_adam_deep",
    "interaction_table", "kept_cross_weights", "make_coffee_data", "model_logits",
    "nonzero_by_block", "pair_mask", "prepare_run", "score_subsets",
]


# --------------------------------------------------------------------------- data
def make_coffee_data(seed: int, n_rows: int) -> SyntheticDataset:
    """Teaching data with planted crosses (logit bump 2) and a rank-1 taste x city interaction."""
    return make_ctr_data(
        n_rows, preset="teaching", seed=seed,
        crosses=2.0,
        pairwise=1.0, pairwise_fields=("taste", "city"), pairwise_rank=1,
        dense_x_cat=0.0, third_order=0.0,  # parts for chapters 3 and 4: off
    )


def choose_unseen_pairs(truth: CTRTruth, n_pairs: int = 4, tastes: Sequence[int] = range(1, 5),
                        cities: Sequence[int] = range(2, 8)) -> list[tuple[int, int]]:
    """The ``n_pairs`` strongest true taste x city interactions among mid-frequency values.

    Planted crosses are skipped and no taste or city is used twice. Returns ``(taste, city)`` ids.
    """
    inter = truth.pairwise_vectors["taste"] @ truth.pairwise_vectors["city"].T
    planted = {(c.value_a, c.value_b) for c in truth.crosses if (c.field_a, c.field_b) == ("taste", "city")}
    ranked = sorted(((abs(inter[t, c]), t, c) for t in tastes for c in cities if (t, c) not in planted),
                    reverse=True)
    chosen: list[tuple[int, int]] = []
    used_t: set[int] = set()
    used_c: set[int] = set()
    for _, t, c in ranked:
        if t not in used_t and c not in used_c and len(chosen) < n_pairs:
            chosen.append((t, c))
            used_t.add(t)
            used_c.add(c)
    return chosen


def pair_mask(split: TabularData, schema: FeatureSchema, pairs: Sequence[tuple[int, int]],
              field_a: str = "taste", field_b: str = "city") -> Tensor:
    """Boolean ``(n,)``: the row's ``(field_a, field_b)`` ids are one of ``pairs``."""
    ia, ib = schema.sparse_index(field_a), schema.sparse_index(field_b)
    vb = schema.vocab_sizes[ib]
    codes = torch.tensor([a * vb + b for a, b in pairs], dtype=torch.long)
    return torch.isin(split.sparse[:, ia] * vb + split.sparse[:, ib], codes)


def cross_mask(split: TabularData, schema: FeatureSchema, cross: PlantedCross) -> np.ndarray:
    """Boolean ``(n,)`` NumPy array: the planted ``cross`` fires on the row."""
    a = split.sparse[:, schema.sparse_index(cross.field_a)]
    b = split.sparse[:, schema.sparse_index(cross.field_b)]
    return ((a == cross.value_a) & (b == cross.value_b)).numpy()


@dataclass
class MemorisationRun:
    """One data seed of the experiment.

    Attributes:
        data: the full data set (its ``test`` split keeps every row).
        train, valid: the splits without the unseen pairs.
        test: the test split.
        masks: name -> boolean ``(n_test,)`` array of the rows to score: ``"all rows"``, one entry
            per planted cross (``"latte x Shanghai"``), ``"any planted cross"``, ``"unseen pairs"``.
        unseen: the ``(taste, city)`` id pairs removed from training and validation.
    """

    data: SyntheticDataset
    train: TabularData
    valid: TabularData
    test: TabularData
    masks: dict[str, np.ndarray]
    unseen: list[tuple[int, int]]


def prepare_run(seed: int, n_rows: int) -> MemorisationRun:
    """Make the coffee data of ``seed``, remove the unseen pairs from train/valid, build the masks."""
    data = make_coffee_data(seed, n_rows)
    schema, truth = data.schema, data.truth
    unseen = choose_unseen_pairs(truth)

    def without_unseen(split: TabularData) -> TabularData:
        return split.subset(~pair_mask(split, schema, unseen))

    test = data.test
    masks = {"all rows": np.ones(len(test), dtype=bool)}
    for c in truth.crosses:
        masks[f"{c.label_a} x {c.label_b}"] = cross_mask(test, schema, c)
    masks["any planted cross"] = np.any([cross_mask(test, schema, c) for c in truth.crosses], axis=0)
    masks["unseen pairs"] = pair_mask(test, schema, unseen).numpy()
    return MemorisationRun(data, without_unseen(data.train), without_unseen(data.valid), test, masks,
                           unseen)


def add_crossed_field(split: TabularData, field_a: str, field_b: str) -> TabularData:
    """``split`` with one more categorical field, ``"{field_a}_x_{field_b}"``, whose id is the
    pair's exact cross-product index ``id_a * V_b + id_b`` (vocabulary ``V_a * V_b``)."""
    schema = split.schema
    ia, ib = schema.sparse_index(field_a), schema.sparse_index(field_b)
    va, vb = schema.vocab_sizes[ia], schema.vocab_sizes[ib]
    crossed = SparseField(f"{field_a}_x_{field_b}", va * vb)
    new_schema = FeatureSchema(dense=schema.dense, sparse=schema.sparse + (crossed,))
    ids = split.sparse[:, ia] * vb + split.sparse[:, ib]
    return TabularData(new_schema, split.dense, torch.cat([split.sparse, ids[:, None]], dim=1), split.labels,
                       split.true_prob, split.task_names, split.task_types)


# --------------------------------------------------------------------------- scores
def excess_logloss(p_true: np.ndarray, p_model: np.ndarray) -> float:
    """Mean ``KL(p* || p)``: the expected log loss above the Bayes-optimal one, free of label noise."""
    q = np.clip(np.asarray(p_model, dtype=np.float64), 1e-7, 1 - 1e-7)
    t = np.clip(np.asarray(p_true, dtype=np.float64), 1e-12, 1 - 1e-12)
    return float(np.mean(t * np.log(t / q) + (1 - t) * np.log((1 - t) / (1 - q))))


def score_subsets(probs: np.ndarray, test: TabularData, masks: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per mask: rows, log loss, Bayes log loss, excess (mean KL), mean prediction, mean p*."""
    if len(probs) != len(test):
        raise ValueError(f"probs has {len(probs)} rows but the test split has {len(test)}")
    y = test.labels[:, 0].double().numpy()
    t = test.true_prob[:, 0].double().numpy()
    rows = {}
    for name, m in masks.items():
        rows[name] = {"rows": int(m.sum()), "logloss": logloss(y[m], probs[m]),
                      "bayes_logloss": logloss(y[m], t[m]), "excess": excess_logloss(t[m], probs[m]),
                      "mean_pred": float(probs[m].mean()), "mean_true": float(t[m].mean())}
    return pd.DataFrame.from_dict(rows, orient="index")


# --------------------------------------------------------------------------- models and optimisers
class WideModel(CTRModel):
    """The wide part alone; with no ``cross_pairs`` it is a logistic regression. Returns ``(batch,)`` logits."""

    def __init__(self, schema: FeatureSchema, cross_pairs: Sequence[tuple[str, str]] = (),
                 n_buckets: int = 2**16) -> None:
        super().__init__(schema)
        self.wide = WideLinear(schema, cross_pairs=cross_pairs, n_buckets=n_buckets)

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        self.check_input(dense, sparse)
        return self.wide(dense, sparse)


class DeepModel(CTRModel):
    """The deep part of Wide & Deep alone: embeddings + MLP. Returns ``(batch,)`` logits."""

    def __init__(self, schema: FeatureSchema, embed_dim: int = 8, hidden: Sequence[int] = (64, 32)) -> None:
        super().__init__(schema)
        self.deep = DeepTower(schema, embed_dim, hidden)

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        self.check_input(dense, sparse)
        return self.deep(dense, sparse)


def adam_per_part(wide_lr: float = 0.01, deep_lr: float = 0.01) -> Callable[[nn.Module], list]:
    """For ``fit(optimizer=...)``: one Adam for ``model.wide`` and one for ``model.deep`` (those present)."""
    def make(model: nn.Module) -> list:
        parts = [(getattr(model, "wide", None), wide_lr), (getattr(model, "deep", None), deep_lr)]
        return [make_adam(part.parameters(), lr=lr) for part, lr in parts if part is not None]
    return make


def ftrl_wide_adam_deep(l1: float = 0.1, alpha: float = 0.2, beta: float = 1e-3,
                        deep_lr: float = 0.01) -> Callable[[nn.Module], list]:
    """For ``fit(optimizer=...)``: FTRL-Proximal with L1 on ``model.wide`` (no L1 on its bias), Adam on ``model.deep``."""
    def make(model: nn.Module) -> list:
        wide = model.wide
        ftrl = FTRLProximal([{"params": [wide.weight, wide.dense_weight]},
                             {"params": [wide.bias], "l1": 0.0}], alpha=alpha, beta=beta, l1=l1)
        return [ftrl, make_adam(model.deep.parameters(), lr=deep_lr)]
    return make


# --------------------------------------------------------------------------- the gradient check
def flat_wide_loss(wide: WideLinear, dense: Tensor, sparse: Tensor,
                   y: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """All weights of ``wide`` as one vector ``theta0 = [id and cross weights, dense weights, bias]``,
    and the mean log loss of the module's own forward pass as a function of such a vector."""
    n_w = wide.weight.shape[0]
    theta0 = torch.cat([wide.weight.detach()[:, 0], wide.dense_weight.detach(), wide.bias.detach()[None]])

    def loss_at(theta: Tensor) -> Tensor:
        params = {"weight": theta[:n_w, None], "dense_weight": theta[n_w:-1], "bias": theta[-1]}
        z = torch.func.functional_call(wide, params, (dense, sparse))
        return nn.functional.binary_cross_entropy_with_logits(z, y)

    return theta0, loss_at


def coordinates_to_check(wide: WideLinear, sparse: Tensor, n_inactive: int, seed: int) -> Tensor:
    """Indices into ``theta0`` of :func:`flat_wide_loss`: every id/cross weight active in ``sparse``,
    ``n_inactive`` random inactive ones, the dense weights and the bias."""
    n_w = wide.weight.shape[0]
    n_all = n_w + wide.dense_weight.numel() + 1
    active = torch.unique(wide.active_indices(sparse))
    inactive = torch.tensor(np.setdiff1d(np.arange(n_w), active.numpy()), dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    inactive = inactive[torch.randperm(len(inactive), generator=gen)[:n_inactive]]
    return torch.cat([active, inactive, torch.arange(n_w, n_all)])


# --------------------------------------------------------------------------- what a model has learnt
def model_logits(model: nn.Module) -> Callable[[Tensor, Tensor], np.ndarray]:
    """``(dense, sparse) -> logits`` of ``model`` on the CPU, in eval mode, as a NumPy array."""
    def logits(dense: Tensor, sparse: Tensor) -> np.ndarray:
        model.eval()
        with torch.no_grad():
            return model.cpu()(dense, sparse).numpy()
    return logits


def interaction_table(logit_fn: Callable[[Tensor, Tensor], np.ndarray], background: TabularData,
                      schema: FeatureSchema, field_a: str = "taste", field_b: str = "city") -> np.ndarray:
    """``(V_a, V_b)`` logits of the first row of ``background`` with every ``(field_a, field_b)``
    substituted, rows and columns centred: the interaction left after the additive part is removed."""
    ia, ib = schema.sparse_index(field_a), schema.sparse_index(field_b)
    va, vb = schema.vocab_sizes[ia], schema.vocab_sizes[ib]
    grid_a = torch.arange(va).repeat_interleave(vb)
    grid_b = torch.arange(vb).repeat(va)
    sparse = background.sparse[:1].repeat(va * vb, 1)
    sparse[:, ia], sparse[:, ib] = grid_a, grid_b
    dense = background.dense[:1].repeat(va * vb, 1)
    z = np.asarray(logit_fn(dense, sparse), dtype=np.float64).reshape(va, vb)
    return z - z.mean(1, keepdims=True) - z.mean(0, keepdims=True) + z.mean()


def nonzero_by_block(wide: WideLinear, schema: FeatureSchema,
                     pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Non-zero id/cross weights of ``wide`` per field and per crossed pair: columns ``non_zero``, ``features``."""
    w = wide.weight.detach().cpu()[:, 0]
    offsets = list(schema.offsets) + [schema.total_vocab]
    out = {f.name: (int((w[a:b] != 0).sum()), b - a)
           for f, a, b in zip(schema.sparse, offsets[:-1], offsets[1:])}
    start = schema.total_vocab
    for (fa, fb), size in zip(pairs, wide.crosses.sizes):
        out[f"{fa} x {fb}"] = (int((w[start:start + size] != 0).sum()), size)
        start += size
    return pd.DataFrame.from_dict(out, orient="index", columns=["non_zero", "features"])


def kept_cross_weights(wide: WideLinear, schema: FeatureSchema, truth: CTRTruth,
                       pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """The non-zero cross weights of ``wide`` with their value names, largest ``|weight|`` first.

    Assumes exact (unhashed) cross indices ``id_a * V_b + id_b``."""
    w = wide.weight.detach().cpu()[:, 0]
    kept, start = [], schema.total_vocab
    for (fa, fb), size in zip(pairs, wide.crosses.sizes):
        vb = schema.vocab_sizes[schema.sparse_index(fb)]
        for k in torch.nonzero(w[start:start + size]).flatten().tolist():
            name = f"{fa}={truth.decode(fa, [k // vb])[0]} x {fb}={truth.decode(fb, [k % vb])[0]}"
            kept.append({"cross": name, "weight": float(w[start + k])})
        start += size
    frame = pd.DataFrame(kept, columns=["cross", "weight"])
    return frame.sort_values("weight", key=abs, ascending=False).reset_index(drop=True)
