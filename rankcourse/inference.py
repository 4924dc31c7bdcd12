"""Running a model on data: device, schema checks, batched forward passes and predictions.

Every model of the course returns logits. This module turns them into numbers a reader uses:
:func:`predict_logits` (raw logits), :func:`predict_proba` (``sigmoid`` of the logits, for binary
tasks) and :func:`predict` (label units: probabilities for binary tasks, values for regression
tasks), all as NumPy arrays. :mod:`rankcourse.metrics` and :mod:`rankcourse.training` build on it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from .checks import check_positive_int
from .data.tabular import TabularData
from .schema import FeatureSchema

__all__ = [
    "check_model_matches_data",
    "describe_schema_difference",
    "model_device",
    "forward_batched",
    "predict_logits",
    "predict_proba",
    "predict",
    "predictions_in_label_units",
]


# --------------------------------------------------------------------------- model and data
def describe_schema_difference(model_schema: FeatureSchema, data_schema: FeatureSchema) -> str:
    """A readable account of how two schemas differ ("" if they are equal)."""
    if model_schema == data_schema:
        return ""
    parts = []
    if model_schema.dense != data_schema.dense:
        parts.append(f"dense fields: model {list(model_schema.dense)} vs data {list(data_schema.dense)}")
    m = {f.name: f.vocab_size for f in model_schema.sparse}
    d = {f.name: f.vocab_size for f in data_schema.sparse}
    only_m, only_d = [k for k in m if k not in d], [k for k in d if k not in m]
    if only_m:
        parts.append(f"categorical fields only in the model: {only_m}")
    if only_d:
        parts.append(f"categorical fields only in the data: {only_d}")
    sizes = [f"{k!r} (model {m[k]}, data {d[k]})" for k in m if k in d and m[k] != d[k]]
    if sizes:
        parts.append("vocabulary sizes differ for " + ", ".join(sizes))
    if not parts:
        parts.append(
            f"categorical field order: model {list(m)} vs data {list(d)}"
        )
    return "; ".join(parts)


def check_model_matches_data(model: torch.nn.Module, data: TabularData, what: str = "data") -> None:
    """Raise a ``ValueError`` if ``model``'s schema or number of task heads does not fit ``data``."""
    if not isinstance(data, TabularData):
        raise TypeError(f"{what} must be a TabularData, got {type(data).__name__}")
    schema = getattr(model, "schema", None)
    if isinstance(schema, FeatureSchema) and schema != data.schema:
        raise ValueError(
            f"the model's schema does not match the {what}'s schema: "
            + describe_schema_difference(schema, data.schema)
        )
    n_tasks = getattr(model, "n_tasks", None)
    if n_tasks is not None and int(n_tasks) != data.n_tasks:
        raise ValueError(
            f"model has {n_tasks} task head(s) but {what} has {data.n_tasks} label column(s) "
            f"{list(data.task_names)}; pick tasks with data.task(name) or build the model with n_tasks={data.n_tasks}"
        )


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's first parameter (or buffer); CPU for a model with neither."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def forward_batched(
    model: torch.nn.Module, dense: torch.Tensor, sparse: torch.Tensor, batch_size: int = 8192
) -> torch.Tensor:
    """The model's outputs (logits) on every row, computed in batches under ``no_grad`` in eval mode.

    Batches are moved to the model's device, whatever device the inputs are on; the result is one
    float32 CPU tensor, ``(n,)`` or ``(n, n_tasks)`` like the model's output. The model's
    train/eval mode is restored afterwards.
    """
    check_positive_int(batch_size, "batch_size")
    n = dense.shape[0]
    if n == 0:
        raise ValueError("cannot predict on empty data (0 rows)")
    device = model_device(model)
    # Asynchronous only towards a GPU, which orders the copy before any use; a copy to the host
    # must be synchronous, or the host could read it before it lands.
    non_blocking = device.type == "cuda"
    was_training = model.training
    model.eval()
    outs = []
    try:
        with torch.no_grad():
            for start in range(0, n, batch_size):
                d = dense[start:start + batch_size].to(device, non_blocking=non_blocking)
                s = sparse[start:start + batch_size].to(device, non_blocking=non_blocking)
                outs.append(model(d, s).float())
    finally:
        model.train(was_training)
    # One transfer at the end instead of one host sync per batch.
    return torch.cat(outs).cpu()


# --------------------------------------------------------------------------- predictions
def _inputs(model: nn.Module, data: TabularData | tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    if isinstance(data, TabularData):
        check_model_matches_data(model, data)
        return data.dense, data.sparse
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    raise TypeError(f"data must be a TabularData or a (dense, sparse) pair, got {type(data).__name__}")


def predict_logits(model: nn.Module, data: TabularData | tuple[Tensor, Tensor], batch_size: int = 8192) -> np.ndarray:
    """The model's logits for every row, as a float32 NumPy array ``(n,)`` or ``(n, n_tasks)``.

    Runs in batches under ``no_grad`` in eval mode; each batch goes to the model's device, whatever
    device ``data`` is on (a device mismatch at predict time is a classic bug, DeepCTR-Torch #272).
    """
    dense, sparse = _inputs(model, data)
    return forward_batched(model, dense, sparse, batch_size).numpy()


def predict_proba(model: nn.Module, data: TabularData | tuple[Tensor, Tensor], batch_size: int = 8192) -> np.ndarray:
    """``sigmoid(logits)`` for every row: click probabilities ``(n,)`` or ``(n, n_tasks)`` (NumPy)."""
    dense, sparse = _inputs(model, data)
    return torch.sigmoid(forward_batched(model, dense, sparse, batch_size)).numpy()


def _label_units(model: nn.Module, data: TabularData, batch_size: int) -> tuple[Tensor, torch.Size]:
    if not isinstance(data, TabularData):
        raise TypeError(f"data must be a TabularData (its task types decide the output), got {type(data).__name__}")
    dense, sparse = _inputs(model, data)
    out = forward_batched(model, dense, sparse, batch_size)
    shape = out.shape
    out = out.reshape(len(data), -1)
    if out.shape[1] != data.n_tasks:
        raise ValueError(f"model returned {out.shape[1]} output column(s) but data has {data.n_tasks} task(s)")
    binary = torch.tensor([t == "binary" for t in data.task_types])
    return torch.where(binary, torch.sigmoid(out), out), shape


def predictions_in_label_units(model: nn.Module, data: TabularData, batch_size: int = 8192) -> Tensor:
    """``(n, n_tasks)`` float32 CPU tensor: ``sigmoid(logit)`` for binary tasks, the raw output for
    regression tasks."""
    return _label_units(model, data, batch_size)[0]


def predict(model: nn.Module, data: TabularData, batch_size: int = 8192) -> np.ndarray:
    """Predictions in label units, shaped like the model's output (``(n,)`` or ``(n, n_tasks)``):
    probabilities for binary tasks, raw outputs for regression tasks (NumPy)."""
    out, shape = _label_units(model, data, batch_size)
    return out.reshape(shape).numpy()
