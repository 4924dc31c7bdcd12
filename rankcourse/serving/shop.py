"""Chapter 9's behaviour data as a shop that receives raw requests: string ids, vocabularies, requests.

:func:`~rankcourse.data.make_behaviour_data` draws integer ids. A served model sees strings, so here
user ``k`` is ``"u<k>"``, item ``k`` is ``"i<k>"`` and category ``k`` is ``"c<k>"``, and
:func:`shop_encoder` builds the :class:`~rankcourse.serving.features.FeatureEncoder` whose vocabulary
lists them in id order: encoded id = synthetic id + 2 (ids 0 and 1 are OOV and missing).
:func:`encode_split` re-encodes a split that way, and :func:`draw_requests` draws requests of one
user and N candidate items as raw values, the way a recall stage would hand them over.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..data.tabular import TabularData
from .features import FeatureEncoder

__all__ = ["SHOP_USER_FIELDS", "shop_encoder", "encode_split", "draw_requests", "downsample_negatives",
           "rows_as_requests"]

#: What a request gives once: the user and the two history fields; each candidate gives item and category.
SHOP_USER_FIELDS = ("user", "hist_item", "hist_category")


def shop_encoder(data: Any) -> FeatureEncoder:
    """The encoder of a :func:`make_behaviour_data` data set with string ids (see the module docstring)."""
    schema = data.schema
    size = {f.name: f.vocab_size for f in schema.sparse}
    max_len = schema.sequence("hist_item").max_len
    return FeatureEncoder(
        categorical={"user": [f"u{k}" for k in range(size["user"])], "item": [f"i{k}" for k in range(size["item"])],
                     "category": [f"c{k}" for k in range(size["category"])]},
        sequences={"hist_item": ("item", max_len), "hist_category": ("category", max_len)},
    )


def encode_split(split: TabularData, encoder: FeatureEncoder) -> TabularData:
    """``split`` with the encoder's ids: every id + 2, the padding id moved to the new padding id."""
    old, new = split.schema, encoder.schema
    sparse = split.sparse.clone()
    for seq in old.sequences:
        cols = list(old.sequence_columns(seq.name))
        block = sparse[:, cols]
        sparse[:, cols] = torch.where(block == seq.padding_id, new.sequence(seq.name).padding_id, block + 2)
    plain = [i for i, f in enumerate(old.sparse) if "[" not in f.name]
    sparse[:, plain] += 2
    return TabularData(new, split.dense, sparse, split.labels, split.true_prob, split.task_names, split.task_types)


def _history(row: np.ndarray, cols: list[int], pad: int, prefix: str) -> list[str]:
    return [f"{prefix}{int(v)}" for v in row[cols] if int(v) != pad]


def draw_requests(data: Any, n_candidates: int, count: int, seed: int = 0, split: str = "test",
                  unseen_share: float = 0.0) -> list[dict[str, Any]]:
    """``count`` raw requests: a user of ``split`` with the history of one of its rows, and
    ``n_candidates`` items drawn from the catalogue (a share ``unseen_share`` of them new items the
    model never saw, with a known category)."""
    rng = np.random.default_rng(seed)
    rows = data.split(split).sparse.numpy()
    schema, truth = data.schema, data.truth
    hist_item, hist_cat = list(schema.sequence_columns("hist_item")), list(schema.sequence_columns("hist_category"))
    n_items = schema.sequence("hist_item").vocab_size
    pad_item, pad_cat = n_items, schema.sequence("hist_category").padding_id
    requests = []
    for r in rng.integers(0, len(rows), size=count):
        row = rows[r]
        user = {"user": f"u{row[schema.sparse_index('user')]}",
                "hist_item": _history(row, hist_item, pad_item, "i"),
                "hist_category": _history(row, hist_cat, pad_cat, "c")}
        items = rng.choice(n_items, size=n_candidates, replace=n_candidates > n_items)  # distinct when possible
        new = rng.random(n_candidates) < unseen_share
        candidates = [{"item": f"new{int(i)}" if is_new else f"i{int(i)}", "category": f"c{int(truth.item_category[i])}"}
                      for i, is_new in zip(items, new)]
        requests.append({"user": user, "candidates": candidates})
    return requests


def downsample_negatives(split: TabularData, keep: float, seed: int = 0) -> TabularData:
    """Every positive and a random fraction ``keep`` of the negatives (integer indices, seeded)."""
    rng = np.random.default_rng(seed)
    labels = split.labels[:, 0].numpy()
    kept = np.flatnonzero((labels == 1) | (rng.random(len(labels)) < keep))
    return split.subset(torch.from_numpy(kept))


def rows_as_requests(data: Any, split: str, rows: np.ndarray) -> list[dict[str, Any]]:
    """Rows of ``split`` as raw one-candidate requests (the row's user and history, its item)."""
    sparse = data.split(split).sparse.numpy()
    schema = data.schema
    hist_item, hist_cat = list(schema.sequence_columns("hist_item")), list(schema.sequence_columns("hist_category"))
    pad_item, pad_cat = schema.sequence("hist_item").padding_id, schema.sequence("hist_category").padding_id
    col = schema.sparse_index
    out = []
    for r in rows:
        row = sparse[r]
        out.append({"user": {"user": f"u{row[col('user')]}", "hist_item": _history(row, hist_item, pad_item, "i"),
                             "hist_category": _history(row, hist_cat, pad_cat, "c")},
                    "candidates": [{"item": f"i{row[col('item')]}", "category": f"c{row[col('category')]}"}]})
    return out
