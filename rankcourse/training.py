"""One training loop for every model of the course, and batched prediction.

Where the time goes in CTR training (COURSE_NOTES §4) decided the design:

* the data is moved to the device once, as whole tensors; a batch is an index slice of a seeded
  permutation (no ``DataLoader``, no per-sample collation);
* the default optimiser is Adam with ``fused=True`` where torch supports it (one kernel for all
  parameters instead of a Python loop over tensors);
* the loss is accumulated on the device and read only at logging points, so a step never waits
  for the host (no ``.item()`` per step).

Multi-task models (Shared-Bottom, OMoE, MMoE) return ``(batch, n_tasks)`` logits; the loop computes
one loss per task and combines them with fixed weights λ or a learnable
:class:`~rankcourse.task_weighting.UncertaintyWeighting` (Kendall et al. 2018).
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from .data.tabular import TabularData
from .metrics import check_model_matches_data, forward_batched
from .runtime import default_device

__all__ = ["fit", "predict_logits", "predict_proba", "predict", "make_adam", "TIMING_COLUMNS"]

LossFn = Callable[[Tensor, Tensor], Tensor]
OptimizerSpec = Union[
    None,
    torch.optim.Optimizer,
    Sequence[torch.optim.Optimizer],
    Callable[[nn.Module], Union[torch.optim.Optimizer, Sequence[torch.optim.Optimizer]]],
]

#: History columns that measure time and so differ between two otherwise identical runs.
TIMING_COLUMNS = ("elapsed_s", "samples_per_s")


# --------------------------------------------------------------------------- optimisers
def make_adam(params, lr: float = 1e-3, weight_decay: float = 0.0, **kwargs: Any) -> torch.optim.Adam:
    """Adam with ``fused=True`` when torch supports it for these parameters, plain Adam otherwise.

    Fused Adam updates every parameter in one kernel; without it, Adam loops over tensors in Python
    and the embedding tables dominate the step time on a CPU (COURSE_NOTES §4). torch >= 2.4 fuses
    on CPU as well as CUDA; older versions refuse at construction and we fall back.
    """
    # Materialise generators (e.g. {"params": model.parameters()}): they are read twice below.
    params = [dict(g, params=list(g["params"])) if isinstance(g, dict) else g for g in params]
    tensors = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
    if tensors and all(t.is_floating_point() for t in tensors) and len({t.device.type for t in tensors}) == 1:
        try:
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True, **kwargs)
        except (RuntimeError, ValueError, TypeError):
            pass
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **kwargs)


def _sparse_grad_params(model: nn.Module) -> list[nn.Parameter]:
    """Weights of embedding modules built with ``sparse=True`` (their gradients are sparse tensors)."""
    out = []
    for m in model.modules():
        if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.sparse and m.weight.requires_grad:
            out.append(m.weight)
    return out


def _default_optimizers(model: nn.Module, extra: list[nn.Parameter], lr: float,
                        weight_decay: float) -> list[torch.optim.Optimizer]:
    sparse = _sparse_grad_params(model)
    sparse_ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if p.requires_grad and id(p) not in sparse_ids] + extra
    opts: list[torch.optim.Optimizer] = []
    if dense:
        opts.append(make_adam(dense, lr=lr, weight_decay=weight_decay))
    if sparse:
        if weight_decay:
            raise ValueError(
                "weight_decay is not supported for embeddings with sparse gradients (SparseAdam); "
                "set weight_decay=0 or build the embeddings with sparse=False"
            )
        opts.append(torch.optim.SparseAdam(sparse, lr=lr))
    if not opts:
        raise ValueError("the model has no trainable parameters")
    return opts


def _resolve_optimizers(optimizer: OptimizerSpec, model: nn.Module, extra: list[nn.Parameter],
                        lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
    if optimizer is None:
        return _default_optimizers(model, extra, lr, weight_decay)
    made = optimizer(model) if callable(optimizer) and not isinstance(optimizer, torch.optim.Optimizer) else optimizer
    opts = [made] if isinstance(made, torch.optim.Optimizer) else list(made) if isinstance(made, (list, tuple)) else None
    if not opts or not all(isinstance(o, torch.optim.Optimizer) for o in opts):
        raise TypeError(
            "optimizer must be None, a torch Optimizer, a list of them, or a callable model -> Optimizer "
            f"(or list); got {type(made).__name__}"
        )
    seen: dict[int, int] = {}
    for k, o in enumerate(opts):
        for g in o.param_groups:
            for p in g["params"]:
                if id(p) in seen and seen[id(p)] != k:
                    raise ValueError(f"a parameter appears in optimisers {seen[id(p)]} and {k}: it would be updated twice")
                seen[id(p)] = k
    names = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in seen]
    if names:
        warnings.warn(f"these trainable parameters are in no optimiser and will not change: {names}", stacklevel=3)
    missing = [p for p in extra if id(p) not in seen]
    if missing:
        # The task-weighting parameters (log-variances) must be learnt too: give them to the first
        # optimiser that takes dense gradients.
        target = next((o for o in opts if not isinstance(o, torch.optim.SparseAdam)), None)
        if target is None:
            raise ValueError("no optimiser for the task-weighting parameters: add one that takes dense gradients")
        target.add_param_group({"params": missing})
    return opts


# --------------------------------------------------------------------------- argument checks
def _positive_int(value: Any, name: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _resolve_losses(loss: Any, data: TabularData) -> list[LossFn]:
    defaults = {"binary": F.binary_cross_entropy_with_logits, "regression": F.mse_loss}
    if loss is None:
        return [defaults[t] for t in data.task_types]
    if isinstance(loss, Mapping):
        unknown = [k for k in loss if k not in data.task_names]
        if unknown:
            raise KeyError(f"loss given for unknown task(s) {unknown}; tasks are {list(data.task_names)}")
        fns = [loss.get(name) or defaults[t] for name, t in zip(data.task_names, data.task_types)]
    elif callable(loss):
        fns = [loss] * data.n_tasks
    elif isinstance(loss, (list, tuple)):
        if len(loss) != data.n_tasks:
            raise ValueError(f"loss has {len(loss)} entries but the data has {data.n_tasks} task(s) {list(data.task_names)}")
        fns = [f if f is not None else defaults[t] for f, t in zip(loss, data.task_types)]
    else:
        raise TypeError(f"loss must be a callable, a list of callables or a dict task -> callable, got {type(loss).__name__}")
    for name, f in zip(data.task_names, fns):
        if not callable(f):
            raise TypeError(f"loss for task {name!r} is not callable: {f!r}")
    return fns


def _resolve_task_weights(task_weights: Any, data: TabularData) -> Tensor | nn.Module:
    names = list(data.task_names)
    if task_weights is None:
        return torch.ones(data.n_tasks)
    if isinstance(task_weights, nn.Module):
        n = getattr(task_weights, "n_tasks", None)
        if n is not None and int(n) != data.n_tasks:
            raise ValueError(f"task_weights module is for {n} task(s) but the data has {data.n_tasks}: {names}")
        return task_weights
    if isinstance(task_weights, (int, float)) and not isinstance(task_weights, bool):
        task_weights = [task_weights]
    w = torch.as_tensor(np.asarray(task_weights, dtype=np.float64)).float().reshape(-1)
    if w.numel() != data.n_tasks:
        raise ValueError(f"task_weights has {w.numel()} value(s) but the data has {data.n_tasks} task(s) {names}")
    for name, v in zip(names, w.tolist()):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"task weight λ for task {name!r} must be finite and >= 0, got {v}")
    if float(w.sum()) == 0:
        raise ValueError(f"task_weights are all zero: nothing would be trained ({names})")
    return w


# --------------------------------------------------------------------------- validation metrics
def _valid_metrics(model: nn.Module, valid: TabularData, batch_size: int) -> tuple[dict[str, float], float]:
    """Validation columns of one history row and the early-stopping score (higher is better)."""
    from sklearn.metrics import log_loss, roc_auc_score

    out = forward_batched(model, valid.dense, valid.sparse, batch_size).reshape(len(valid), -1).double()
    labels = valid.labels.detach().cpu().double()
    row: dict[str, float] = {}
    aucs, mses = [], []
    for k, (name, kind) in enumerate(zip(valid.task_names, valid.task_types)):
        y, z = labels[:, k].numpy(), out[:, k]
        if not bool(torch.isfinite(z).all()):
            raise FloatingPointError(f"validation outputs for task {name!r} contain NaN or inf: training diverged")
        if kind == "binary":
            p = torch.sigmoid(z).numpy()
            a = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")
            row[f"valid_auc_{name}"] = a
            row[f"valid_logloss_{name}"] = float(log_loss(y, p, labels=[0, 1]))
            aucs.append(a)
        else:
            m = float(np.mean((z.numpy() - y) ** 2))
            row[f"valid_mse_{name}"] = m
            mses.append(m)
    # Early stopping watches the mean AUC of the binary tasks, or -MSE when all tasks are regressions.
    score = float(np.mean(aucs)) if aucs else -float(np.mean(mses))
    row["valid_score"] = score
    return row, score


# --------------------------------------------------------------------------- the loop
def fit(
    model: nn.Module,
    train: TabularData,
    valid: TabularData | None = None,
    *,
    epochs: int = 1,
    batch_size: int = 1024,
    lr: float = 1e-3,
    optimizer: OptimizerSpec = None,
    loss: LossFn | Sequence[LossFn | None] | Mapping[str, LossFn] | None = None,
    task_weights: Sequence[float] | nn.Module | None = None,
    weight_decay: float = 0.0,
    device: torch.device | str | None = None,
    seed: int = 0,
    early_stopping: int | None = None,
    max_steps: int | None = None,
    eval_every: int | None = None,
    progress: bool = True,
    shuffle: bool = True,
    log_every: int = 50,
) -> pd.DataFrame:
    """Train ``model`` on ``train`` with mini-batch gradient descent; return the history.

    Args:
        model: a course model: ``forward(dense, sparse)`` returns logits ``(B,)`` or
            ``(B, n_tasks)``; attributes ``schema`` and ``n_tasks`` are checked against the data.
        train: training split.
        valid: validation split, scored after every epoch (and every ``eval_every`` steps).
        epochs: passes over ``train``.
        batch_size: rows per step (the last batch of an epoch may be smaller).
        lr, weight_decay: for the default optimiser only.
        optimizer: ``None`` (Adam, fused where supported; ``SparseAdam`` for embeddings built with
            ``sparse=True``), an optimiser, a list of them, or a callable ``model -> optimiser(s)``,
            called after the model is moved to ``device`` — e.g. Adagrad for ``model.wide`` and Adam
            for ``model.deep`` in Wide & Deep. Trainable parameters left out of every optimiser
            trigger a warning.
        loss: per-task loss on logits, ``loss(logits (B,), labels (B,)) -> scalar``: one callable
            for every task, a list (``None`` entries = default) or a dict task name -> callable.
            Defaults: ``binary_cross_entropy_with_logits`` for binary tasks, ``mse_loss`` for regression.
        task_weights: the objective is ``sum_k λ_k L_k``: ``None`` (all λ = 1), a sequence of λ >= 0,
            or an ``nn.Module`` mapping the ``(n_tasks,)`` loss vector to a scalar, such as
            ``UncertaintyWeighting``; its parameters are trained (added to the first dense optimiser
            if a custom optimiser leaves them out).
        device: where to train; default CUDA when available, else CPU. Model and data are moved there
            once; the model stays there after training.
        seed: seeds the batch order (a ``torch.Generator``) and torch's global RNG (dropout).
            Same seed, same initial weights and same device type CPU => identical history.
        early_stopping: patience in epochs: stop after that many epochs with no new best validation
            score (mean AUC over binary tasks; ``-MSE`` when every task is a regression) and restore
            the best weights. Needs ``valid``.
        max_steps: stop after this many optimiser steps in total.
        eval_every: also log (and validate) every this many steps.
        progress: show a ``tqdm`` progress bar with the running loss.
        shuffle: draw a fresh permutation each epoch (else rows in order).
        log_every: steps between progress-bar updates (each one waits for the device).

    Returns:
        A DataFrame, one row per logging point (end of each epoch, every ``eval_every`` steps):
        ``epoch`` (fraction of epochs done), ``step``, ``train_loss`` (mean objective since the
        previous row), ``train_loss_<task>`` for multi-task data, and with ``valid``:
        ``valid_auc_<task>``, ``valid_logloss_<task>`` / ``valid_mse_<task>`` and ``valid_score``;
        then ``samples_per_s`` (training throughput since the previous row, validation excluded) and
        ``elapsed_s``. Only the timing columns (:data:`TIMING_COLUMNS`) vary between identical runs.
        ``history.attrs`` holds ``best_step``/``best_score`` when early stopping ran.

    Raises:
        ValueError / TypeError naming the bad argument, field or task (see the checks below).
        FloatingPointError if the training loss becomes NaN or infinite.

    The model is left in eval mode.
    """
    # ---- checks, before anything moves
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _positive_int(epochs, "epochs")
    _positive_int(batch_size, "batch_size")
    _positive_int(max_steps, "max_steps", allow_none=True)
    _positive_int(eval_every, "eval_every", allow_none=True)
    _positive_int(log_every, "log_every")
    _positive_int(early_stopping, "early_stopping (patience in epochs)", allow_none=True)
    if not isinstance(lr, (int, float)) or not lr > 0 or not math.isfinite(lr):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not isinstance(weight_decay, (int, float)) or not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    if not isinstance(train, TabularData):
        raise TypeError(f"train must be a TabularData, got {type(train).__name__}")
    if len(train) == 0:
        raise ValueError("train is empty: 0 rows")
    check_model_matches_data(model, train, "train")
    if valid is not None:
        if not isinstance(valid, TabularData):
            raise TypeError(f"valid must be a TabularData or None, got {type(valid).__name__}")
        if len(valid) == 0:
            raise ValueError("valid is empty: 0 rows")
        check_model_matches_data(model, valid, "valid")
        if valid.task_names != train.task_names or valid.task_types != train.task_types:
            raise ValueError(
                f"valid has tasks {list(zip(valid.task_names, valid.task_types))} but train has "
                f"{list(zip(train.task_names, train.task_types))}"
            )
    if early_stopping is not None and valid is None:
        raise ValueError("early_stopping needs a validation split: pass valid=...")
    loss_fns = _resolve_losses(loss, train)
    weighting = _resolve_task_weights(task_weights, train)

    # ---- device, seeds, optimisers
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    extra: list[nn.Parameter] = []
    if isinstance(weighting, nn.Module):
        weighting.to(device)
        extra = [p for p in weighting.parameters() if p.requires_grad]
    else:
        weighting = weighting.to(device)
    torch.manual_seed(seed)
    order_gen = torch.Generator().manual_seed(seed)
    opts = _resolve_optimizers(optimizer, model, extra, lr, weight_decay)

    tr = train.to(device)  # moved once; batches below are index slices of these tensors
    va = valid.to(device) if valid is not None else None
    n, n_tasks = len(tr), tr.n_tasks
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    eval_batch = max(batch_size, 8192)
    multi = n_tasks > 1

    # ---- state
    history: list[dict[str, Any]] = []
    acc_total = torch.zeros((), device=device)
    acc_tasks = torch.zeros(n_tasks, device=device)
    acc_steps = acc_rows = 0
    step = 0
    start = segment_start = time.perf_counter()
    best_score, best_state, best_step, best_epoch_done = -math.inf, None, None, 0
    improved_this_epoch, epochs_without_gain = False, 0
    checked_output = False

    def read_running_loss() -> float:
        value = (acc_total / max(acc_steps, 1)).item()  # the only host sync outside logging rows
        if not math.isfinite(value):
            raise FloatingPointError(
                f"training loss is {value} by step {step}: training diverged (try a lower lr, "
                "check the inputs' scale, or use a loss on logits)"
            )
        return value

    def log_row() -> None:
        nonlocal acc_total, acc_tasks, acc_steps, acc_rows, segment_start
        nonlocal best_score, best_state, best_step, improved_this_epoch
        train_loss = read_running_loss()
        seconds = time.perf_counter() - segment_start
        row: dict[str, Any] = {"epoch": step / steps_per_epoch, "step": step, "train_loss": train_loss}
        if multi:
            per_task = (acc_tasks / max(acc_steps, 1)).tolist()
            row.update({f"train_loss_{t}": v for t, v in zip(tr.task_names, per_task)})
        samples_per_s = acc_rows / seconds if seconds > 0 else float("nan")
        if va is not None:
            metrics, score = _valid_metrics(model, va, eval_batch)
            row.update(metrics)
            if early_stopping is not None and score > best_score:
                best_score, best_step, improved_this_epoch = score, step, True
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        row["samples_per_s"] = samples_per_s
        row["elapsed_s"] = time.perf_counter() - start
        history.append(row)
        bar.set_postfix({"loss": f"{train_loss:.4f}", **({"valid": f"{row['valid_score']:.4f}"} if va is not None else {})})
        acc_total = torch.zeros((), device=device)
        acc_tasks = torch.zeros(n_tasks, device=device)
        acc_steps = acc_rows = 0
        segment_start = time.perf_counter()

    model.train()
    # The train and valid TabularData were validated when built; skip the models' per-batch value
    # checks (a host sync per step on a GPU). Models without the switch are used as they are.
    trusted = getattr(model, "trusted_inputs", None)
    trust = trusted() if callable(trusted) else contextlib.nullcontext()
    trust.__enter__()
    bar = tqdm(total=total_steps, disable=not progress, unit="step", desc=f"fit {type(model).__name__}")
    try:
        for epoch in range(epochs):
            perm = torch.randperm(n, generator=order_gen).to(device) if shuffle else None
            for b in range(steps_per_epoch):
                lo, hi = b * batch_size, min((b + 1) * batch_size, n)
                if perm is None:
                    dense, sparse, labels = tr.dense[lo:hi], tr.sparse[lo:hi], tr.labels[lo:hi]
                else:
                    idx = perm[lo:hi]
                    dense, sparse, labels = tr.dense[idx], tr.sparse[idx], tr.labels[idx]
                out = model(dense, sparse)
                if not checked_output:
                    _check_output(out, hi - lo, n_tasks, type(model).__name__)
                out = out.reshape(hi - lo, n_tasks)
                losses = torch.stack([fn(out[:, k], labels[:, k]) for k, fn in enumerate(loss_fns)])
                if not checked_output:
                    if losses.shape != (n_tasks,):
                        raise ValueError(
                            "each task's loss must return a scalar (reduction='mean'); got shapes "
                            f"{[tuple(fn(out[:, k], labels[:, k]).shape) for k, fn in enumerate(loss_fns)]}"
                        )
                    checked_output = True
                total = weighting(losses) if isinstance(weighting, nn.Module) else (weighting * losses).sum()
                for o in opts:
                    o.zero_grad(set_to_none=True)
                total.backward()
                for o in opts:
                    o.step()
                acc_total += total.detach()
                if multi:
                    acc_tasks += losses.detach()
                acc_steps += 1
                acc_rows += hi - lo
                step += 1
                bar.update(1)
                done = step >= total_steps
                if (eval_every is not None and step % eval_every == 0) or b == steps_per_epoch - 1 or done:
                    log_row()
                elif step % log_every == 0 and progress:
                    bar.set_postfix({"loss": f"{read_running_loss():.4f}"})
                if done:
                    break
            if early_stopping is not None:
                epochs_without_gain = 0 if improved_this_epoch else epochs_without_gain + 1
                improved_this_epoch = False
                if epochs_without_gain >= early_stopping:
                    break
            if step >= total_steps:
                break
    finally:
        bar.close()
        trust.__exit__(None, None, None)
        model.eval()

    frame = pd.DataFrame(history)
    if early_stopping is not None and best_state is not None:
        model.load_state_dict(best_state)
        frame.attrs.update(best_step=best_step, best_score=best_score)
    return frame


def _check_output(out: Any, batch: int, n_tasks: int, name: str) -> None:
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}.forward must return a tensor of logits, got {type(out).__name__}")
    ok = (out.dim() == 1 and n_tasks == 1 and out.shape[0] == batch) or (
        out.dim() == 2 and tuple(out.shape) == (batch, n_tasks)
    )
    if not ok:
        want = f"({batch},) or ({batch}, 1)" if n_tasks == 1 else f"({batch}, {n_tasks})"
        raise ValueError(f"{name} returned logits of shape {tuple(out.shape)} for a batch of {batch}; expected {want}")
    if not out.is_floating_point():
        raise TypeError(f"{name} returned {out.dtype} logits; expected a floating tensor")


# --------------------------------------------------------------------------- prediction
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


def predict(model: nn.Module, data: TabularData, batch_size: int = 8192) -> np.ndarray:
    """Predictions in label units: probabilities for binary tasks, raw outputs for regression tasks."""
    if not isinstance(data, TabularData):
        raise TypeError(f"data must be a TabularData (its task types decide the output), got {type(data).__name__}")
    dense, sparse = _inputs(model, data)
    out = forward_batched(model, dense, sparse, batch_size)
    shape = out.shape
    out = out.reshape(len(data), -1)
    binary = torch.tensor([t == "binary" for t in data.task_types])
    if out.shape[1] != binary.numel():
        raise ValueError(f"model returned {out.shape[1]} output column(s) but data has {data.n_tasks} task(s)")
    return torch.where(binary, torch.sigmoid(out), out).reshape(shape).numpy()
