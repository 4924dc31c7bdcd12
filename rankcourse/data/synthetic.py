"""The container every synthetic generator returns: seeded splits beside the planted truth.

:func:`~rankcourse.data.make_ctr_data`, :func:`~rankcourse.data.make_mmoe_regression`,
:func:`~rankcourse.data.make_click_conversion` and :func:`~rankcourse.data.make_behaviour_data`
all return a :class:`SyntheticDataset`; its ``truth`` is the generator's own truth object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..schema import FeatureSchema
from ..scores import auc, logloss
from .tabular import TabularData

__all__ = ["SyntheticDataset"]


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
        (:func:`rankcourse.scores.auc` and :func:`~rankcourse.scores.logloss`: a one-class split
        has a NaN AUC, with a warning). Regression task: ``{"mse", "label_variance", "n"}`` where
        ``mse`` is the noise-free target's squared error. With one task (or ``task`` given) the dict
        is flat; otherwise it maps each task name to its dict.
        """
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
        """A pandas DataFrame indexed by part of the true logit: its ``scale``, the ``std`` and
        ``mean`` of its contribution on ``split``, and which model family can capture it
        (``captured_by``). Needs a truth with a ``parts_table`` method (click data from
        :func:`~rankcourse.data.make_ctr_data`)."""
        if not hasattr(self.truth, "parts_table"):
            raise TypeError("parts_table needs data from make_ctr_data (a CTRTruth)")
        data = self.split(split)
        return self.truth.parts_table(data.dense, data.sparse)

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
