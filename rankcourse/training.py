"""``fit``: training any model of the course, built from small named pieces.

How the time of a CTR training step is spent decided the design (``benchmarks/`` measures it):

* the data is moved to the device once, as whole tensors; a batch is an index slice of a seeded
  permutation (no ``DataLoader``, no per-sample collation): :func:`batch_bounds`, :func:`epoch_batches`;
* the default optimiser is Adam with ``fused=True`` where torch supports it (one kernel for all
  parameters instead of a Python loop over tensors): :func:`make_adam`, :func:`default_optimizers`;
* the loss is accumulated on the device and read only at logging points, so a step never waits
  for the host (no ``.item()`` per step): :class:`TrainStep`, :class:`RunningLoss`.

Multi-task models (Shared-Bottom, OMoE, MMoE) return ``(batch, n_tasks)`` logits; the loop computes
one loss per task (defaults from :func:`rankcourse.losses.default_loss`) and combines them with fixed
weights λ or a learnable :class:`~rankcourse.task_weighting.UncertaintyWeighting` (Kendall et al. 2018).

The pieces here: argument checks (:func:`check_fit_arguments`, :func:`check_learning_rate`),
:func:`resolve_device`, :func:`resolve_losses`, :func:`resolve_task_weights`, the optimisers and
:class:`TrainStep` (one optimisation step). The epoch loop and its bookkeeping (batches, running
loss, history, validation, early stopping) are :mod:`rankcourse.engine`, shared with
:func:`rankcourse.scale.distributed.fit_distributed` and :func:`rankcourse.scale.replicas.train_replicas`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import warnings
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .checks import check_positive_int
from .data.tabular import TabularData
from .engine import (
    EarlyStopping,
    EpochBatches,
    HistoryLog,
    RunningLoss,
    batch_bounds,
    enter_training,
    epoch_batches,
    has_batch_norm,
    run_epochs,
    scored_tasks,
    validation_row,
)
from .inference import check_model_matches_data
from .losses import default_loss
from .runtime import default_device

__all__ = [
    "fit", "make_adam", "TIMING_COLUMNS",
    # the pieces of fit (the engine's pieces are re-exported from rankcourse.engine)
    "check_positive_int", "check_learning_rate", "check_fit_arguments", "resolve_device",
    "resolve_losses", "resolve_task_weights", "sparse_grad_parameters", "default_optimizers",
    "resolve_optimizers", "on_device_with_optimizers", "TrainStep", "finish_history",
    "has_batch_norm", "batch_bounds", "epoch_batches", "RunningLoss", "scored_tasks",
    "validation_row", "EarlyStopping",
]

#: Names that moved to :mod:`rankcourse.inference`, their one home; old imports still resolve.
_MOVED_TO_INFERENCE = ("predict", "predict_logits", "predict_proba")


def __getattr__(name: str) -> Any:
    """``from rankcourse.training import predict_proba`` (the old path) still works, with a
    ``DeprecationWarning``: the predictions live in :mod:`rankcourse.inference` only."""
    if name in _MOVED_TO_INFERENCE:
        from . import inference

        warnings.warn(f"import {name} from rankcourse.inference; rankcourse.training.{name} is an old "
                      "path kept for old code", DeprecationWarning, stacklevel=2)
        return getattr(inference, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


LossFn = Callable[[Tensor, Tensor], Tensor]
OptimizerSpec = Union[
    None,
    torch.optim.Optimizer,
    Sequence[torch.optim.Optimizer],
    Callable[[nn.Module], Union[torch.optim.Optimizer, Sequence[torch.optim.Optimizer]]],
]

#: History columns that measure time and so differ between two otherwise identical runs.
TIMING_COLUMNS = ("elapsed_s", "samples_per_s")


# --------------------------------------------------------------------------- argument checks
def check_learning_rate(lr: Any) -> None:
    """Raise a ``ValueError`` unless ``lr`` is a finite number > 0."""
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0 or not math.isfinite(lr):
        raise ValueError(f"lr must be a positive number, got {lr!r}")


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` means CUDA when available, else the CPU."""
    return torch.device(device) if device is not None else default_device()


def _check_splits(model: nn.Module, train: Any, valid: Any, early_stopping: int | None) -> None:
    if not isinstance(train, TabularData):
        raise TypeError(f"train must be a TabularData, got {type(train).__name__}")
    train.check()  # validated again if a tensor was written in place since
    check_model_matches_data(model, train, "train")
    if valid is None:
        if early_stopping is not None:
            raise ValueError("early_stopping needs a validation split: pass valid=...")
        return
    if not isinstance(valid, TabularData):
        raise TypeError(f"valid must be a TabularData or None, got {type(valid).__name__}")
    valid.check()
    check_model_matches_data(model, valid, "valid")
    if valid.task_names != train.task_names or valid.task_types != train.task_types:
        raise ValueError(
            f"valid has tasks {list(zip(valid.task_names, valid.task_types))} but train has "
            f"{list(zip(train.task_names, train.task_types))}"
        )


def check_fit_arguments(model: Any, train: Any, valid: Any, *, epochs: Any, batch_size: Any,
                         max_steps: Any, eval_every: Any, log_every: Any, early_stopping: Any,
                         lr: Any, weight_decay: Any) -> None:
    """Every check of :func:`fit`'s arguments, before anything moves (also used by
    :func:`~rankcourse.scale.distributed.fit_distributed`, whose arguments mean the same)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for value, name in ((epochs, "epochs"), (batch_size, "batch_size"), (log_every, "log_every")):
        check_positive_int(value, name)
    for value, name in ((max_steps, "max_steps"), (eval_every, "eval_every"),
                        (early_stopping, "early_stopping (patience in epochs)")):
        check_positive_int(value, name, allow_none=True)
    check_learning_rate(lr)
    if not isinstance(weight_decay, (int, float)) or not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    _check_splits(model, train, valid, early_stopping)


# --------------------------------------------------------------------------- losses and task weights
def _without_per_step_checks(fn: LossFn) -> LossFn:
    """A loss of :mod:`rankcourse.losses` checks its inputs' values by reading them from the device;
    ``fit`` trains on validated data, so it calls such a loss with ``validate=False`` (unless the
    caller fixed ``validate`` with ``functools.partial``)."""
    if isinstance(fn, functools.partial) and "validate" in fn.keywords:
        return fn
    try:
        param = inspect.signature(fn).parameters.get("validate")
    except (TypeError, ValueError):
        return fn
    if param is None or param.kind is not inspect.Parameter.KEYWORD_ONLY:
        return fn
    return functools.partial(fn, validate=False)


def resolve_losses(loss: Any, task_names: Sequence[str], task_types: Sequence[str]) -> list[LossFn]:
    """One loss function per task from ``fit``'s ``loss`` argument (see :func:`fit`); ``None``
    entries take :func:`rankcourse.losses.default_loss` of the task's type."""
    names, n_tasks = list(task_names), len(task_names)
    defaults = [default_loss(t) for t in task_types]
    if loss is None:
        fns = defaults
    elif isinstance(loss, Mapping):
        unknown = [k for k in loss if k not in names]
        if unknown:
            raise KeyError(f"loss given for unknown task(s) {unknown}; tasks are {names}")
        fns = [loss.get(name) or d for name, d in zip(names, defaults)]
    elif callable(loss):
        fns = [loss] * n_tasks
    elif isinstance(loss, (list, tuple)):
        if len(loss) != n_tasks:
            raise ValueError(f"loss has {len(loss)} entries but the data has {n_tasks} task(s) {names}")
        fns = [f if f is not None else d for f, d in zip(loss, defaults)]
    else:
        raise TypeError(f"loss must be a callable, a list of callables or a dict task -> callable, got {type(loss).__name__}")
    for name, f in zip(names, fns):
        if not callable(f):
            raise TypeError(f"loss for task {name!r} is not callable: {f!r}")
    return [_without_per_step_checks(f) for f in fns]


def resolve_task_weights(task_weights: Any, task_names: Sequence[str]) -> Tensor | nn.Module:
    """Fixed weights λ as a float tensor ``(n_tasks,)`` (``None`` = all 1), or the given weighting
    module (checked against the number of tasks)."""
    names, n_tasks = list(task_names), len(task_names)
    if task_weights is None:
        return torch.ones(n_tasks)
    if isinstance(task_weights, nn.Module):
        n = getattr(task_weights, "n_tasks", None)
        if n is not None and int(n) != n_tasks:
            raise ValueError(f"task_weights module is for {n} task(s) but the data has {n_tasks}: {names}")
        return task_weights
    if isinstance(task_weights, (int, float)) and not isinstance(task_weights, bool):
        task_weights = [task_weights]
    w = torch.as_tensor(np.asarray(task_weights, dtype=np.float64)).float().reshape(-1)
    if w.numel() != n_tasks:
        raise ValueError(f"task_weights has {w.numel()} value(s) but the data has {n_tasks} task(s) {names}")
    for name, v in zip(names, w.tolist()):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"task weight λ for task {name!r} must be finite and >= 0, got {v}")
    if float(w.sum()) == 0:
        raise ValueError(f"task_weights are all zero: nothing would be trained ({names})")
    return w


# --------------------------------------------------------------------------- optimisers
def make_adam(params, lr: float = 1e-3, weight_decay: float = 0.0, **kwargs: Any) -> torch.optim.Adam:
    """Adam with ``fused=True`` when torch supports it for these parameters, plain Adam otherwise.

    Fused Adam updates every parameter in one kernel; without it, Adam loops over tensors in Python
    and the embedding tables dominate the step time on a CPU (see ``benchmarks/README.md``). torch >= 2.4 fuses
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


def sparse_grad_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable parameters whose gradients are sparse tensors.

    Each module is asked: ``nn.Embedding``/``nn.EmbeddingBag`` built with ``sparse=True``, and any
    module with a ``sparse_grad_parameters()`` method (the course's ``FieldEmbedding`` and
    ``WideLinear`` built with ``sparse_grad=True``).
    """
    found: dict[int, nn.Parameter] = {}
    for m in model.modules():
        if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.sparse:
            params = [m.weight]
        elif callable(getattr(m, "sparse_grad_parameters", None)) and m is not model:
            params = list(m.sparse_grad_parameters())
        else:
            continue
        found.update({id(p): p for p in params if p.requires_grad})
    return list(found.values())


def default_optimizers(model: nn.Module, extra: Sequence[nn.Parameter], lr: float,
                       weight_decay: float) -> list[torch.optim.Optimizer]:
    """Adam (fused where possible) for the dense parameters and ``extra`` ones (a task weighting's),
    ``SparseAdam`` for the parameters with sparse gradients."""
    sparse = sparse_grad_parameters(model)
    sparse_ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if p.requires_grad and id(p) not in sparse_ids] + list(extra)
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


def resolve_optimizers(optimizer: OptimizerSpec, model: nn.Module, extra: Sequence[nn.Parameter],
                       lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
    """The optimisers of ``fit``'s ``optimizer`` argument (see :func:`fit`), checked: no parameter in
    two of them; ``extra`` parameters left out join the first dense optimiser."""
    if optimizer is None:
        return default_optimizers(model, extra, lr, weight_decay)
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


# --------------------------------------------------------------------------- one optimisation step
class TrainStep:
    """One optimisation step: forward, one loss per task, their weighted sum, backward, update.

    The first call also checks the model's output and the losses' shapes (a clear error instead of a
    broadcasting surprise). Calling it returns ``(objective, task_losses (n_tasks,))``, detached and
    left on the device (reading them would make the step wait for the device).
    """

    def __init__(self, model: nn.Module, loss_fns: Sequence[LossFn], weighting: Tensor | nn.Module,
                 optimizers: Sequence[torch.optim.Optimizer]) -> None:
        self.model, self.loss_fns, self.weighting = model, list(loss_fns), weighting
        self.optimizers = list(optimizers)
        self.n_tasks = len(self.loss_fns)
        self.checked = False

    def losses(self, dense: Tensor, sparse: Tensor, labels: Tensor) -> Tensor:
        """The per-task losses ``(n_tasks,)`` of one batch, with gradients."""
        out = self.model(dense, sparse)
        if not self.checked:
            _check_output(out, len(labels), self.n_tasks, type(self.model).__name__)
        out = out.reshape(len(labels), self.n_tasks)
        labels = labels.to(out.dtype)
        losses = torch.stack([fn(out[:, k], labels[:, k]) for k, fn in enumerate(self.loss_fns)])
        if not self.checked:
            if losses.shape != (self.n_tasks,):
                shapes = [tuple(fn(out[:, k], labels[:, k]).shape) for k, fn in enumerate(self.loss_fns)]
                raise ValueError(f"each task's loss must return a scalar (reduction='mean'); got shapes {shapes}")
            self.checked = True
        return losses

    def __call__(self, dense: Tensor, sparse: Tensor, labels: Tensor, share: float = 1.0) -> tuple[Tensor, Tensor]:
        """One step on a batch. ``share`` scales the objective (and the logged losses): a rank's
        part of a global batch (:mod:`rankcourse.scale.distributed`); 1 for a whole batch."""
        losses = self.losses(dense, sparse, labels)
        w = self.weighting
        total = w(losses) if isinstance(w, nn.Module) else (w.to(losses.dtype) * losses).sum()
        if share != 1.0:
            total, losses = total * share, losses * share
        for o in self.optimizers:
            o.zero_grad(set_to_none=True)
        total.backward()
        self.after_backward()
        for o in self.optimizers:
            o.step()
        return total.detach(), losses.detach()

    def after_backward(self) -> None:
        """Called between ``backward`` and the optimiser steps (nothing here; a data-parallel step
        averages gradients that DDP does not see)."""


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


# --------------------------------------------------------------------------- the loop
def on_device_with_optimizers(model: nn.Module, weighting: Tensor | nn.Module, device: torch.device,
                               optimizer: OptimizerSpec, lr: float, weight_decay: float
                               ) -> tuple[Tensor | nn.Module, list[nn.Parameter], list[torch.optim.Optimizer]]:
    """Model and task weighting moved to ``device``, the weighting's trainable parameters, and the
    optimisers (built after the move, as an optimiser holds the parameters it was given)."""
    model.to(device)
    weighting = weighting.to(device)
    extra = [p for p in weighting.parameters() if p.requires_grad] if isinstance(weighting, nn.Module) else []
    return weighting, extra, resolve_optimizers(optimizer, model, extra, lr, weight_decay)


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
        batch_size: rows per step (the last batch of an epoch may be smaller; when the model has
            batch normalisation, a last batch of one row joins the one before, as batch
            normalisation cannot train on one row).
        lr, weight_decay: for the default optimiser only.
        optimizer: ``None`` (Adam, fused where supported; ``SparseAdam`` for embeddings built with
            ``sparse=True``), an optimiser, a list of them, or a callable ``model -> optimiser(s)``,
            called after the model is moved to ``device`` — e.g. Adagrad for ``model.wide`` and Adam
            for ``model.deep`` in Wide & Deep. Trainable parameters left out of every optimiser
            trigger a warning.
        loss: per-task loss on logits, ``loss(logits (B,), labels (B,)) -> scalar``: one callable
            for every task, a list (``None`` entries = default) or a dict task name -> callable.
            Defaults: :func:`rankcourse.losses.default_loss` (BCE on logits for binary tasks,
            squared error for regression). A loss with a keyword-only ``validate`` argument (those of
            :mod:`rankcourse.losses`) is called with ``validate=False``: the data was validated once.
        task_weights: the objective is ``sum_k λ_k L_k``: ``None`` (all λ = 1), a sequence of λ >= 0,
            or an ``nn.Module`` mapping the ``(n_tasks,)`` loss vector to a scalar, such as
            ``UncertaintyWeighting``; its parameters are trained (added to the first dense optimiser
            if a custom optimiser leaves them out).
        device: where to train; default CUDA when available, else CPU. Model and data are moved there
            once; the model stays there after training.
        seed: seeds the batch order (a ``torch.Generator``) and torch's RNG (dropout) inside a fork
            of it: the caller's random state is the same after ``fit`` as before.
            Same seed, same initial weights and same device type CPU => identical history.
        early_stopping: patience in epochs: stop after that many epochs with no new best validation
            score (mean AUC over binary tasks; ``-MSE`` when every task is a regression) and restore
            the best weights, and those of a ``task_weights`` module. Needs ``valid``. A binary
            validation task with one class has no AUC: it is left out of the score with a warning
            (a ``ValueError`` if no binary task is left).
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

    The model is left in eval mode, with its value checks (``trusted_inputs``) as they were, even
    when training fails.
    """
    check_fit_arguments(model, train, valid, epochs=epochs, batch_size=batch_size, max_steps=max_steps,
                        eval_every=eval_every, log_every=log_every, early_stopping=early_stopping,
                        lr=lr, weight_decay=weight_decay)
    loss_fns = resolve_losses(loss, train.task_names, train.task_types)
    weighting = resolve_task_weights(task_weights, train.task_names)
    scored = scored_tasks(valid, early_stopping) if valid is not None else []
    device = resolve_device(device)
    weighting, extra, opts = on_device_with_optimizers(model, weighting, device, optimizer, lr, weight_decay)
    tr = train.to(device)  # moved once; batches are index slices of these tensors
    va = valid.to(device) if valid is not None else None
    batches = EpochBatches(tr, batch_bounds(len(tr), batch_size, min_rows=2 if has_batch_norm(model) else 1),
                           seed=seed, shuffle=shuffle)
    stopper = (EarlyStopping(early_stopping, [model] + ([weighting] if extra else []))
               if early_stopping is not None else None)
    log = HistoryLog(model, tr.task_names, len(batches), va, max(batch_size, 8192), scored, stopper)

    with contextlib.ExitStack() as stack:  # each context is left on the way out, error or not
        bar = enter_training(stack, model, seed, device, min(max_steps or math.inf, epochs * len(batches)),
                             progress, desc=f"fit {type(model).__name__}", make_bar=tqdm)
        run_epochs(TrainStep(model, loss_fns, weighting, opts), batches, len(batches), log,
                   RunningLoss(tr.n_tasks, device), bar, epochs=epochs, max_steps=max_steps,
                   eval_every=eval_every, log_every=log_every if progress else None)
    return finish_history(log, stopper)


def finish_history(log: HistoryLog, stopper: EarlyStopping | None) -> pd.DataFrame:
    """The history as a DataFrame; with early stopping, the best weights put back and
    ``attrs`` ``best_step``/``best_score`` set."""
    frame = pd.DataFrame(log.rows)
    if stopper is not None and stopper.best_step is not None:
        stopper.restore()
        frame.attrs.update(best_step=stopper.best_step, best_score=stopper.best_score)
    return frame
