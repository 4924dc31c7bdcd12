"""One training loop for every model of the course, built from small named pieces.

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

The pieces (also used by :func:`rankcourse.replicas.train_replicas`): argument checks
(:func:`check_positive_int`, :func:`check_learning_rate`), :func:`resolve_device`,
:func:`resolve_losses`, :func:`resolve_task_weights`, the optimisers, the batching, :class:`TrainStep`,
:class:`RunningLoss`, :func:`validation_row` and :class:`EarlyStopping`; :func:`fit` is the loop.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import time
import warnings
from typing import Any, Callable, Iterator, Mapping, Sequence, Union

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .checks import check_positive_int
from .data.tabular import TabularData
from .inference import check_model_matches_data, forward_batched
from .losses import default_loss
from .metrics import auc, auc_is_defined, logloss, undefined_auc_warning
from .runtime import default_device

__all__ = [
    "fit", "make_adam", "TIMING_COLUMNS",
    # the pieces of fit
    "check_positive_int", "check_learning_rate", "resolve_device", "resolve_losses",
    "resolve_task_weights", "sparse_grad_parameters", "default_optimizers", "resolve_optimizers",
    "has_batch_norm", "batch_bounds", "epoch_batches", "TrainStep", "RunningLoss",
    "scored_tasks", "validation_row", "EarlyStopping",
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


def _check_fit_arguments(model: Any, train: Any, valid: Any, *, epochs: Any, batch_size: Any,
                         max_steps: Any, eval_every: Any, log_every: Any, early_stopping: Any,
                         lr: Any, weight_decay: Any) -> None:
    """Every check of :func:`fit`'s arguments, before anything moves."""
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


# --------------------------------------------------------------------------- batching
def has_batch_norm(model: nn.Module) -> bool:
    """Whether ``model`` holds a batch-normalisation layer (which cannot train on a batch of one row)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def batch_bounds(n_rows: int, batch_size: int, min_rows: int = 1) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the batches of one epoch: ``batch_size`` rows each, the last one
    smaller; a last batch of fewer than ``min_rows`` rows joins the one before it.

    >>> batch_bounds(257, 128, min_rows=2)
    [(0, 128), (128, 257)]
    """
    check_positive_int(n_rows, "n_rows")
    check_positive_int(batch_size, "batch_size")
    if n_rows < min_rows:
        raise ValueError(f"{n_rows} training row(s) are fewer than the {min_rows} a batch needs here "
                         "(batch normalisation needs 2 rows in training mode)")
    starts = list(range(0, n_rows, batch_size))
    if len(starts) > 1 and n_rows - starts[-1] < min_rows:
        starts.pop()
    return list(zip(starts, starts[1:] + [n_rows]))


def epoch_batches(data: TabularData, bounds: Sequence[tuple[int, int]],
                  order: Tensor | None) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """``(dense, sparse, labels)`` of each batch of one epoch: rows ``order[start:stop]`` (index
    slices of the whole tensors), or the rows in place when ``order`` is ``None``."""
    for lo, hi in bounds:
        if order is None:
            yield data.dense[lo:hi], data.sparse[lo:hi], data.labels[lo:hi]
        else:
            idx = order[lo:hi]
            yield data.dense[idx], data.sparse[idx], data.labels[idx]


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

    def __call__(self, dense: Tensor, sparse: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        losses = self.losses(dense, sparse, labels)
        w = self.weighting
        total = w(losses) if isinstance(w, nn.Module) else (w.to(losses.dtype) * losses).sum()
        for o in self.optimizers:
            o.zero_grad(set_to_none=True)
        total.backward()
        for o in self.optimizers:
            o.step()
        return total.detach(), losses.detach()


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


# --------------------------------------------------------------------------- logging
class RunningLoss:
    """Sums of the objective and the task losses since the last logging row, kept on the device."""

    def __init__(self, n_tasks: int, device: torch.device) -> None:
        self.n_tasks, self.device = n_tasks, device
        self.reset()

    def reset(self) -> None:
        self.total = torch.zeros((), device=self.device)
        self.tasks = torch.zeros(self.n_tasks, device=self.device)
        self.steps = self.rows = 0
        self.started = time.perf_counter()

    def add(self, total: Tensor, task_losses: Tensor, rows: int) -> None:
        self.total += total
        self.tasks += task_losses
        self.steps += 1
        self.rows += rows

    def mean(self, step: int) -> float:
        """The mean objective since the last reset (a host sync); raises if it is not finite."""
        value = (self.total / max(self.steps, 1)).item()
        if not math.isfinite(value):
            raise FloatingPointError(
                f"training loss is {value} by step {step}: training diverged (try a lower lr, "
                "check the inputs' scale, or use a loss on logits)"
            )
        return value

    def task_means(self) -> list[float]:
        return (self.tasks / max(self.steps, 1)).tolist()

    def samples_per_s(self) -> float:
        seconds = time.perf_counter() - self.started
        return self.rows / seconds if seconds > 0 else float("nan")


# --------------------------------------------------------------------------- validation
def scored_tasks(valid: TabularData, early_stopping: int | None = None) -> list[int]:
    """The tasks whose validation AUC counts in the score: binary tasks with both classes present.

    A binary task with one class has no AUC (:func:`rankcourse.metrics.auc_is_defined`); it is
    warned about once here, its ``valid_auc_*`` column is NaN and it is left out of the score. With
    early stopping and no binary task left (while some exist), there is nothing to judge by: a
    ``ValueError``.
    """
    binary = [k for k, t in enumerate(valid.task_types) if t == "binary"]
    labels = valid.labels.detach().cpu().numpy()
    one_class = [k for k in binary if not auc_is_defined(labels[:, k])]
    for k in one_class:
        undefined_auc_warning(labels[:, k], f"validation task {valid.task_names[k]!r}, which has only "
                                            "one class (left out of valid_score)")
    kept = [k for k in binary if k not in one_class]
    if binary and not kept and early_stopping is not None:
        raise ValueError(f"early stopping needs a validation AUC, but every binary validation task "
                         f"{[valid.task_names[k] for k in binary]} has only one class")
    return kept


def validation_row(model: nn.Module, valid: TabularData, batch_size: int,
                   scored: Sequence[int]) -> dict[str, float]:
    """Validation columns of one history row; ``valid_score`` (higher is better) is the mean AUC of
    the ``scored`` binary tasks, or ``-MSE`` averaged over the tasks when no task is binary.

    The AUC and log loss are :func:`rankcourse.metrics.auc` and :func:`~rankcourse.metrics.logloss`;
    a binary task left out of ``scored`` (see :func:`scored_tasks`) has a NaN AUC.
    """
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
            row[f"valid_auc_{name}"] = auc(y, p, f"validation task {name!r}") if k in scored else float("nan")
            row[f"valid_logloss_{name}"] = logloss(y, p)
            if k in scored and not math.isnan(row[f"valid_auc_{name}"]):
                aucs.append(row[f"valid_auc_{name}"])
        else:
            row[f"valid_mse_{name}"] = float(np.mean((z.numpy() - y) ** 2))
            mses.append(row[f"valid_mse_{name}"])
    row["valid_score"] = float(np.mean(aucs)) if aucs else -float(np.mean(mses)) if mses else float("nan")
    return row


class EarlyStopping:
    """Stop after ``patience`` epochs without a new best validation score; keep the best state.

    The state is that of every module given (the model, and a trained task weighting such as
    ``UncertaintyWeighting``), copied at each new best score and put back by :meth:`restore`.
    """

    def __init__(self, patience: int, modules: Sequence[nn.Module]) -> None:
        check_positive_int(patience, "early_stopping (patience in epochs)")
        self.patience, self.modules = patience, list(modules)
        self.best_score, self.best_step = -math.inf, None
        self.best_states: list[dict[str, Tensor]] | None = None
        self.improved_this_epoch, self.epochs_without_gain = False, 0

    def observe(self, score: float, step: int) -> None:
        """Record a validation score (NaN never counts as a gain)."""
        if score > self.best_score:
            self.best_score, self.best_step, self.improved_this_epoch = score, step, True
            self.best_states = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in self.modules]

    def end_epoch(self) -> bool:
        """Close an epoch; ``True`` when training should stop."""
        self.epochs_without_gain = 0 if self.improved_this_epoch else self.epochs_without_gain + 1
        self.improved_this_epoch = False
        return self.epochs_without_gain >= self.patience

    def restore(self) -> None:
        """Put the best state back into every module (nothing to do if no score was ever recorded)."""
        if self.best_states is not None:
            for m, state in zip(self.modules, self.best_states):
                m.load_state_dict(state)


# --------------------------------------------------------------------------- the loop
@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's RNG (dropout) inside a fork of it: the caller's random state is left as found."""
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


def _on_device_with_optimizers(model: nn.Module, weighting: Tensor | nn.Module, device: torch.device,
                               optimizer: OptimizerSpec, lr: float, weight_decay: float
                               ) -> tuple[Tensor | nn.Module, list[nn.Parameter], list[torch.optim.Optimizer]]:
    """Model and task weighting moved to ``device``, the weighting's trainable parameters, and the
    optimisers (built after the move, as an optimiser holds the parameters it was given)."""
    model.to(device)
    weighting = weighting.to(device)
    extra = [p for p in weighting.parameters() if p.requires_grad] if isinstance(weighting, nn.Module) else []
    return weighting, extra, resolve_optimizers(optimizer, model, extra, lr, weight_decay)


def _enter_training(stack: contextlib.ExitStack, model: nn.Module, seed: int, device: torch.device,
                    total_steps: float, progress: bool) -> Any:
    """Enter ``fit``'s contexts on ``stack`` (eval mode, the forked RNG, the value checks and the
    progress bar are all restored or closed on the way out, error or not); return the bar."""
    stack.callback(model.eval)
    stack.enter_context(_seeded(seed, device))
    # The data was validated (train.check()); skip the per-batch value checks (a host sync per step).
    stack.enter_context(_trusted(model))
    bar = stack.enter_context(tqdm(total=total_steps, disable=not progress, unit="step",
                                   desc=f"fit {type(model).__name__}"))
    model.train()
    return bar


class HistoryLog:
    """The rows of ``fit``'s history: the training loss since the previous row, the validation
    metrics (which also feed early stopping) and the timing."""

    def __init__(self, model: nn.Module, task_names: Sequence[str], n_batches: int,
                 valid: TabularData | None, eval_batch_size: int, scored: list[int],
                 stopper: EarlyStopping | None) -> None:
        self.model, self.task_names, self.n_batches = model, tuple(task_names), n_batches
        self.valid, self.eval_batch_size, self.scored, self.stopper = valid, eval_batch_size, scored, stopper
        self.rows: list[dict[str, Any]] = []
        self.start = time.perf_counter()

    def add_row(self, step: int, running: RunningLoss, bar: Any) -> None:
        """Append the row for ``step``, show it on the progress bar and reset ``running``."""
        row: dict[str, Any] = {"epoch": step / self.n_batches, "step": step, "train_loss": running.mean(step)}
        if len(self.task_names) > 1:
            row.update({f"train_loss_{t}": v for t, v in zip(self.task_names, running.task_means())})
        speed = running.samples_per_s()  # before validation: training throughput only
        if self.valid is not None:
            row.update(validation_row(self.model, self.valid, self.eval_batch_size, self.scored))
            if self.stopper is not None:
                self.stopper.observe(row["valid_score"], step)
        row.update(samples_per_s=speed, elapsed_s=time.perf_counter() - self.start)
        self.rows.append(row)
        bar.set_postfix({k: f"{row[c]:.4f}" for k, c in (("loss", "train_loss"), ("valid", "valid_score")) if c in row})
        running.reset()


def _trusted(model: nn.Module) -> contextlib.AbstractContextManager:
    """The model's ``trusted_inputs()`` switch (no per-batch value checks), if it has one."""
    trusted = getattr(model, "trusted_inputs", None)
    return trusted() if callable(trusted) else contextlib.nullcontext()


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
    _check_fit_arguments(model, train, valid, epochs=epochs, batch_size=batch_size, max_steps=max_steps,
                         eval_every=eval_every, log_every=log_every, early_stopping=early_stopping,
                         lr=lr, weight_decay=weight_decay)
    loss_fns = resolve_losses(loss, train.task_names, train.task_types)
    weighting = resolve_task_weights(task_weights, train.task_names)
    scored = scored_tasks(valid, early_stopping) if valid is not None else []
    device = resolve_device(device)
    weighting, extra, opts = _on_device_with_optimizers(model, weighting, device, optimizer, lr, weight_decay)
    tr = train.to(device)  # moved once; batches are index slices of these tensors
    va = valid.to(device) if valid is not None else None
    bounds = batch_bounds(len(tr), batch_size, min_rows=2 if has_batch_norm(model) else 1)
    total_steps = min(max_steps or math.inf, epochs * len(bounds))
    step_fn = TrainStep(model, loss_fns, weighting, opts)
    running = RunningLoss(tr.n_tasks, device)
    stopper = (EarlyStopping(early_stopping, [model] + ([weighting] if extra else []))
               if early_stopping is not None else None)
    log = HistoryLog(model, tr.task_names, len(bounds), va, max(batch_size, 8192), scored, stopper)
    step, order_gen = 0, torch.Generator().manual_seed(seed)

    with contextlib.ExitStack() as stack:  # each context is left on the way out, error or not
        bar = _enter_training(stack, model, seed, device, total_steps, progress)
        for _ in range(epochs):
            order = torch.randperm(len(tr), generator=order_gen).to(device) if shuffle else None
            for b, (dense, sparse, labels) in enumerate(epoch_batches(tr, bounds, order)):
                running.add(*step_fn(dense, sparse, labels), rows=len(labels))
                step += 1
                bar.update(1)
                if b == len(bounds) - 1 or step >= total_steps or (eval_every and step % eval_every == 0):
                    log.add_row(step, running, bar)
                elif progress and step % log_every == 0:
                    bar.set_postfix({"loss": f"{running.mean(step):.4f}"})
                if step >= total_steps:
                    break
            if step >= total_steps or (stopper is not None and stopper.end_epoch()):
                break

    frame = pd.DataFrame(log.rows)
    if stopper is not None and stopper.best_step is not None:
        stopper.restore()
        frame.attrs.update(best_step=stopper.best_step, best_score=stopper.best_score)
    return frame
