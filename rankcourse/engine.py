"""The one training engine under :func:`~rankcourse.training.fit`,
:func:`~rankcourse.scale.distributed.fit_distributed` and :func:`~rankcourse.scale.replicas.train_replicas`.

The three entry points differ only in how a batch is made and stepped and in who validates; the
epoch loop and its bookkeeping are shared and live here:

* :func:`run_epochs` -- the loop: epochs of batches, a logging row at the end of each epoch, every
  ``eval_every`` steps and at ``max_steps``, early stopping decided at the end of an epoch;
* :class:`EpochBatches` -- the batches of one epoch: a seeded permutation (the same on every rank)
  cut at :func:`batch_bounds`, each batch optionally split across ranks;
* :class:`RunningLoss` -- the losses since the last row, summed on the device (no host sync a step);
* :class:`HistoryLog` -- the rows of the history: training loss, validation
  (:func:`validation_row`, :func:`scored_tasks`), early stopping (:class:`EarlyStopping`), timing;
* :func:`seeded`, :func:`trusted_inputs`, :func:`enter_training` -- the contexts a run is inside.

What each entry point brings: ``fit`` a :class:`~rankcourse.training.TrainStep` and these batches;
``fit_distributed`` the same step on a DDP-wrapped model, batches split across ranks, and a log that
sums the loss over ranks and validates on rank 0; ``train_replicas`` a step of stacked copies, its
own batches of fixed shape and a long-format log.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .checks import check_positive_int
from .data.tabular import TabularData
from .inference import forward_batched
from .scores import auc, auc_is_defined, logloss, undefined_auc_warning

__all__ = [
    "run_epochs", "EpochBatches", "RunningLoss", "HistoryLog", "EarlyStopping", "StepFn",
    "batch_bounds", "epoch_batches", "has_batch_norm", "scored_tasks", "validation_row",
    "seeded", "trusted_inputs", "enter_training",
]

#: One batch as the step function takes it (its positional arguments) and its number of rows.
Batch = tuple[tuple[Any, ...], int]


class StepFn(Protocol):
    """One optimisation step: ``step(*batch_args) -> (objective, task_losses)``, both detached and
    left on the device (:class:`~rankcourse.training.TrainStep` is the standard one)."""

    def __call__(self, *batch: Any) -> tuple[Tensor, Tensor]: ...


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


class EpochBatches:
    """The batches of every epoch of ``data``: rows ``order[start:stop]`` for each ``(start, stop)``
    of ``bounds``, where ``order`` is a fresh permutation per epoch drawn from
    ``torch.Generator().manual_seed(seed)`` (the same on every rank), or the rows in place when
    ``shuffle`` is ``False``.

    ``split`` cuts one batch's row indices across ranks: ``split(idx) -> (this rank's idx, share)``,
    where ``share`` scales this rank's objective (see :mod:`rankcourse.scale.distributed`); the batch is
    then ``(dense, sparse, labels, share)``. Without ``split`` it is ``(dense, sparse, labels)``.
    Either way the row count beside it is the whole batch's.
    """

    def __init__(self, data: TabularData, bounds: Sequence[tuple[int, int]], seed: int = 0,
                 shuffle: bool = True, split: Callable[[Tensor], tuple[Tensor, float]] | None = None) -> None:
        self.data, self.bounds, self.shuffle, self.split = data, list(bounds), shuffle, split
        self.order_gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.bounds)

    def __call__(self, epoch: int) -> Iterator[Batch]:
        d = self.data
        order = torch.randperm(len(d), generator=self.order_gen).to(d.device) if self.shuffle else None
        if self.split is None:
            for (dense, sparse, labels), (lo, hi) in zip(epoch_batches(d, self.bounds, order), self.bounds):
                yield (dense, sparse, labels), hi - lo
            return
        for lo, hi in self.bounds:
            rows = order[lo:hi] if order is not None else torch.arange(lo, hi, device=d.device)
            idx, share = self.split(rows)
            yield (d.dense[idx], d.sparse[idx], d.labels[idx], share), hi - lo

# --------------------------------------------------------------------------- logging
class RunningLoss:
    """Sums of the objective and the task losses since the last logging row, kept on the device.

    ``n_tasks`` is the shape of one step's task losses: ``n_tasks`` for one model, ``(n_copies,
    n_tasks)`` for stacked copies (:func:`rankcourse.scale.replicas.train_replicas`).
    """

    def __init__(self, n_tasks: int | tuple[int, ...], device: torch.device,
                 dtype: torch.dtype = torch.float32) -> None:
        self.n_tasks, self.device, self.dtype = n_tasks, device, dtype
        self.reset()

    def reset(self) -> None:
        self.total = torch.zeros((), device=self.device, dtype=self.dtype)
        self.tasks = torch.zeros(self.n_tasks, device=self.device, dtype=self.dtype)
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

    A binary task with one class has no AUC (:func:`rankcourse.scores.auc_is_defined`); it is
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

    The AUC and log loss are :func:`rankcourse.scores.auc` and :func:`~rankcourse.scores.logloss`;
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


class HistoryLog:
    """The rows of a history: the training loss since the previous row, the validation metrics
    (which also feed early stopping) and the timing. ``fit`` uses it as it is; the other entry
    points override :meth:`train_columns`, :meth:`validation_columns` or :meth:`end_epoch`."""

    def __init__(self, model: nn.Module, task_names: Sequence[str], n_batches: int,
                 valid: TabularData | None, eval_batch_size: int, scored: list[int],
                 stopper: EarlyStopping | None) -> None:
        self.model, self.task_names, self.n_batches = model, tuple(task_names), n_batches
        self.valid, self.eval_batch_size, self.scored, self.stopper = valid, eval_batch_size, scored, stopper
        self.rows: list[dict[str, Any]] = []
        self.start = time.perf_counter()

    def train_columns(self, step: int, running: RunningLoss) -> dict[str, Any]:
        """``epoch``, ``step``, ``train_loss`` and, for several tasks, ``train_loss_<task>``."""
        row: dict[str, Any] = {"epoch": step / self.n_batches, "step": step, "train_loss": running.mean(step)}
        if len(self.task_names) > 1:
            row.update({f"train_loss_{t}": v for t, v in zip(self.task_names, running.task_means())})
        return row

    def validation_columns(self, step: int) -> dict[str, Any]:
        """The :func:`validation_row` columns (none without a validation split); feeds early stopping."""
        if self.valid is None:
            return {}
        row = validation_row(self.model, self.valid, self.eval_batch_size, self.scored)
        if self.stopper is not None:
            self.stopper.observe(row["valid_score"], step)
        return row

    def add_row(self, step: int, running: RunningLoss, bar: Any) -> None:
        """Append the row for ``step``, show it on the progress bar and reset ``running``."""
        speed = running.samples_per_s()  # before validation: training throughput only
        row = self.train_columns(step, running)
        row.update(self.validation_columns(step))
        row.update(samples_per_s=speed, elapsed_s=time.perf_counter() - self.start)
        self.rows.append(row)
        bar.set_postfix({k: f"{row[c]:.4f}" for k, c in (("loss", "train_loss"), ("valid", "valid_score")) if c in row})
        running.reset()

    def end_epoch(self) -> bool:
        """Close an epoch; ``True`` when early stopping says to stop."""
        return self.stopper is not None and self.stopper.end_epoch()


# --------------------------------------------------------------------------- the loop
def run_epochs(step_fn: StepFn, batches: Callable[[int], Iterable[Batch]], n_batches: int,
               log: HistoryLog, running: RunningLoss, bar: Any, *, epochs: int,
               max_steps: int | None = None, eval_every: int | None = None,
               log_every: int | None = None, row_each_epoch: bool = True) -> int:
    """Train for ``epochs`` passes of ``n_batches`` batches; return the number of steps taken.

    Each batch ``(args, rows)`` of ``batches(epoch)`` is one ``step_fn(*args)``, whose losses join
    ``running``. ``log`` adds a row at the end of each epoch (if ``row_each_epoch``), every
    ``eval_every`` steps and at the last step (``max_steps``, if it comes first); the progress bar
    shows the running loss every ``log_every`` steps (``None``: never; each read waits for the
    device). After each epoch ``log.end_epoch()`` may stop the run (early stopping).
    """
    total_steps = min(max_steps or math.inf, epochs * n_batches)
    step = 0
    for epoch in range(epochs):
        for b, (args, rows) in enumerate(batches(epoch)):
            running.add(*step_fn(*args), rows=rows)
            step += 1
            bar.update(1)
            end_of_epoch = row_each_epoch and b == n_batches - 1
            if end_of_epoch or step >= total_steps or (eval_every and step % eval_every == 0):
                log.add_row(step, running, bar)
            elif log_every and step % log_every == 0:
                bar.set_postfix({"loss": f"{running.mean(step):.4f}"})
            if step >= total_steps:
                break
        if step >= total_steps or log.end_epoch():
            break
    return step


# --------------------------------------------------------------------------- the contexts of a run
@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's RNG (dropout) inside a fork of it: the caller's random state is left as found."""
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


def trusted_inputs(model: nn.Module) -> contextlib.AbstractContextManager:
    """The model's ``trusted_inputs()`` switch (no per-batch value checks), if it has one."""
    trusted = getattr(model, "trusted_inputs", None)
    return trusted() if callable(trusted) else contextlib.nullcontext()


def enter_training(stack: contextlib.ExitStack, model: nn.Module, seed: int, device: torch.device,
                   total_steps: float, progress: bool, desc: str, make_bar: Callable[..., Any] = tqdm) -> Any:
    """Enter a run's contexts on ``stack`` (eval mode, the forked RNG, the value checks and the
    progress bar are all restored or closed on the way out, error or not); return the bar, made by
    ``make_bar`` (``tqdm``'s arguments)."""
    stack.callback(model.eval)
    stack.enter_context(seeded(seed, device))
    # The data was validated (data.check()); skip the per-batch value checks (a host sync per step).
    stack.enter_context(trusted_inputs(model))
    bar = stack.enter_context(make_bar(total=total_steps, disable=not progress, unit="step", desc=desc))
    model.train()
    return bar
