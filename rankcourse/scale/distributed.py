"""Data-parallel training of the course's models with ``torch.distributed`` (the appendix).

Every process ("rank") holds a full copy of the model and trains on its own slice of each batch;
:class:`~torch.nn.parallel.DistributedDataParallel` (DDP) averages the gradients across ranks during
``backward`` so all copies take the same optimiser step (Li et al. 2020, PyTorch's DDP paper). The
processes are started by ``torchrun --nproc-per-node N script.py`` (or :func:`launch` from Python),
which sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; the script calls
:func:`init_process_group` and then :func:`fit_distributed` in place of
:func:`~rankcourse.training.fit`.

Why one epoch on ``W`` ranks with ``b`` rows each equals one process with batch ``W * b``: every rank
draws the *same* seeded permutation and takes a disjoint, contiguous slice of each global batch.
Rank ``r`` minimises ``c_r * L_r`` where ``L_r`` is the mean loss over its ``n_r`` rows and
``c_r = W * n_r / n`` (``n`` rows in the global batch); DDP averages gradients, so the step uses
``(1/W) sum_r c_r grad L_r = (1/n) sum_r n_r grad L_r``, the gradient of the mean loss over all ``n``
rows: exactly the one-process gradient. (``c_r = 1`` when the batch splits evenly; the factor matters
for the last, smaller batch of an epoch.) Two things break the equality and are the user's to mind:
dropout draws its masks per rank (different random numbers from one process), and BatchNorm
normalises with each rank's own batch statistics (:class:`torch.nn.SyncBatchNorm` shares them).

Sparse gradients: DDP all-reduces sparse gradients (with gloo; tested) but only for
``nn.Embedding`` / ``nn.EmbeddingBag`` modules built with ``sparse=True``, which it finds when it
wraps the model. The course's ``FieldEmbedding`` / ``WideLinear`` with ``sparse_grad=True`` call
``F.embedding`` themselves, DDP does not see them, and ``backward`` fails; :func:`wrap_ddp` refuses
them by name (:func:`check_ddp_sparse_tables`). Dense gradients (the default) always work; tables
too big for one device are sharded with TorchRec instead (see the appendix).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
from datetime import timedelta
from typing import Any, Callable, Sequence

import pandas as pd
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..checks import check_positive_int
from ..data.tabular import TabularData
from ..engine import (
    EarlyStopping,
    EpochBatches,
    HistoryLog,
    RunningLoss,
    batch_bounds,
    enter_training,
    has_batch_norm,
    run_epochs,
    scored_tasks,
)
from ..training import (
    TrainStep,
    check_fit_arguments,
    finish_history,
    resolve_device,
    resolve_losses,
    resolve_optimizers,
    resolve_task_weights,
)

__all__ = [
    "is_distributed",
    "rank",
    "world_size",
    "is_main_process",
    "backend_for",
    "init_process_group",
    "shard_batch",
    "check_ddp_sparse_tables",
    "wrap_ddp",
    "broadcast_flags",
    "broadcast_score",
    "ShardStep",
    "DistributedLog",
    "fit_distributed",
    "launch",
    "RankFailedError",
]


# --------------------------------------------------------------------------- who am I
def is_distributed() -> bool:
    """True when ``torch.distributed`` is available and a process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank, 0 without a process group."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes in the group, 1 without a process group."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 (and in a plain, single process): the one that logs and validates."""
    return rank() == 0


def backend_for(device: torch.device | str) -> str:
    """``"nccl"`` for CUDA devices, ``"gloo"`` for the CPU (NCCL only moves GPU tensors)."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init_process_group(device: torch.device | str = "cpu", timeout_s: float = 300.0) -> torch.device:
    """Join the process group described by torchrun's environment variables; return this rank's device.

    On CUDA each rank takes GPU ``LOCAL_RANK``. ``timeout_s`` bounds how long a collective waits for
    a rank that never arrives, so a lost rank ends in an error, not a hang.
    """
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise RuntimeError(
            f"environment variables {missing} are not set: start this script with "
            "`torchrun --nproc-per-node N script.py` (or rankcourse.scale.distributed.launch)"
        )
    device = torch.device(device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    if not is_distributed():
        dist.init_process_group(backend_for(device), timeout=timedelta(seconds=timeout_s))
    return device


# --------------------------------------------------------------------------- pieces
def shard_batch(global_idx: Tensor, rank_: int, world: int) -> Tensor:
    """This rank's disjoint, contiguous slice of a global batch of row indices.

    Slices differ in size by at most one row; concatenated in rank order they give ``global_idx``.

    Shapes:
        ``global_idx (n,)`` -> ``(n_r,)`` with ``sum_r n_r = n``.
    """
    check_positive_int(world, "world")
    if not 0 <= rank_ < world:
        raise ValueError(f"rank must lie in [0, {world}), got {rank_}")
    if global_idx.dim() != 1:
        raise ValueError(f"global_idx must be 1-D, got shape {tuple(global_idx.shape)}")
    return torch.tensor_split(global_idx, world)[rank_]


def check_ddp_sparse_tables(model: nn.Module) -> None:
    """Raise if a module makes sparse gradients that DDP would not expect.

    DDP looks for sparse gradients only on ``nn.Embedding`` / ``nn.EmbeddingBag`` modules built
    with ``sparse=True``; a table that calls ``F.embedding(..., sparse=True)`` itself (the course's
    ``FieldEmbedding`` and ``WideLinear`` with ``sparse_grad=True``) would fail deep inside
    ``backward`` with "Cannot access storage of SparseTensorImpl".
    """
    for name, module in model.named_modules():
        if getattr(module, "sparse_grad", False) and not isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
            raise ValueError(
                f"module {name!r} ({type(module).__name__}) has sparse_grad=True, which "
                "DistributedDataParallel cannot reduce (it expects sparse gradients only from "
                "nn.Embedding/nn.EmbeddingBag with sparse=True): build it with sparse_grad=False"
            )


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel (rank 0's weights are broadcast to every rank)."""
    if not is_distributed():
        raise RuntimeError("wrap_ddp needs an initialised process group: call init_process_group first")
    check_ddp_sparse_tables(model)
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def broadcast_flags(flags: Sequence[bool], device: torch.device, src: int = 0) -> list[bool]:
    """Rank ``src``'s flags on every rank: one decision (e.g. early stopping) taken by one rank for all."""
    t = torch.tensor([float(f) for f in flags], device=device)
    if is_distributed():
        dist.broadcast(t, src=src)
    return [bool(v) for v in t.tolist()]


def broadcast_score(score: float | None, device: torch.device, src: int = 0) -> float:
    """Rank ``src``'s validation score on every rank (the other ranks pass ``None``)."""
    t = torch.tensor([math.nan if score is None else float(score)], dtype=torch.float64, device=device)
    if is_distributed():
        dist.broadcast(t, src=src)
    return float(t.item())


def _sum_over_ranks(value: Tensor) -> Tensor:
    if is_distributed():
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


# --------------------------------------------------------------------------- the loop
class ShardStep(TrainStep):
    """:class:`~rankcourse.training.TrainStep` for one rank's slice of a global batch.

    The step is called with ``share = W * n_r / n``, which scales the objective before
    ``backward``; DDP then averages the gradients over the ``W`` ranks, which gives the gradient of
    the global batch's mean loss (module doc). Parameters outside the DDP-wrapped model (a trained
    task weighting) have their gradients averaged here, after ``backward``. The logged losses are
    this rank's share of the global mean (their sum over ranks / W is the mean).
    """

    def __init__(self, ddp_model: nn.Module, loss_fns: Sequence[Any], weighting: Tensor | nn.Module,
                 optimizers: Sequence[torch.optim.Optimizer], extra: Sequence[nn.Parameter]) -> None:
        super().__init__(ddp_model, loss_fns, weighting, optimizers)
        self.extra = list(extra)

    def after_backward(self) -> None:
        for p in self.extra:
            if p.grad is not None:
                p.grad = _sum_over_ranks(p.grad) / world_size()


class DistributedLog(HistoryLog):
    """:class:`~rankcourse.engine.HistoryLog` across ranks: the training loss is summed over all
    ranks (a collective every rank joins at the same step), rank 0 validates and its score is
    broadcast, so every rank keeps the same best weights; rank 0's decision to stop is broadcast."""

    def __init__(self, *args: Any, device: torch.device, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.device = device

    def train_columns(self, step: int, running: RunningLoss) -> dict[str, Any]:
        running.total = _sum_over_ranks(running.total) / world_size()
        running.tasks = _sum_over_ranks(running.tasks) / world_size()
        return super().train_columns(step, running)

    def validation_columns(self, step: int) -> dict[str, Any]:
        stopper, self.stopper = self.stopper, None  # observe below, with rank 0's score
        try:
            row = super().validation_columns(step)
        finally:
            self.stopper = stopper
        if stopper is not None:
            stopper.observe(broadcast_score(row.get("valid_score"), self.device), step)
        return row

    def end_epoch(self) -> bool:
        return self.stopper is not None and broadcast_flags([self.stopper.end_epoch()], self.device)[0]


def _rank_slice(rank_: int, world: int) -> Callable[[Tensor], tuple[Tensor, float]]:
    """This rank's part of a global batch's indices and its share ``W * n_r / n`` of the objective."""
    def split(idx: Tensor) -> tuple[Tensor, float]:
        part = shard_batch(idx, rank_, world)
        return part, world * len(part) / len(idx)
    return split


def fit_distributed(
    model: nn.Module,
    train: TabularData,
    valid: TabularData | None = None,
    *,
    epochs: int = 1,
    batch_size: int = 1024,
    lr: float = 1e-3,
    optimizer: Any = None,
    loss: Any = None,
    task_weights: Any = None,
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
    """:func:`~rankcourse.training.fit` on every rank of a process group, data-parallel.

    Each step takes a global batch of ``batch_size * world_size()`` rows from the epoch's seeded
    permutation (the same on every rank); each rank trains on its own slice of it
    (:func:`shard_batch`) and DDP averages the gradients. The loop is :func:`rankcourse.engine.run_epochs`,
    the one under ``fit``: without a process group this *is* ``fit`` with batch ``batch_size``.

    Args:
        batch_size: rows per rank per step; the global batch is ``batch_size * world_size()``
            (scale ``lr`` with it when you change the number of ranks; see the appendix). A last
            global batch with fewer rows than ranks (two per rank with batch normalisation) joins
            the one before it.
        device: this rank's device: under a process group on CUDA, GPU ``LOCAL_RANK`` (the current
            device); otherwise as in ``fit`` (CUDA when available, else the CPU).
        max_steps, eval_every: counted in global steps, the same on every rank; a logging row is a
            collective (every rank joins it), validation runs on rank 0.
        log_every: steps between progress-bar updates on rank 0 (its own running loss).
        Other arguments as in :func:`~rankcourse.training.fit`; dropout draws different masks on
        each rank (its RNG is seeded with ``seed + rank``).

    Returns:
        The history, the same DataFrame on every rank, with the columns of ``fit``'s:
        ``train_loss`` is the mean over all ranks' rows, the validation columns are computed on
        rank 0 and shared, ``samples_per_s`` counts global rows.

    Early stopping: rank 0 validates; its score is broadcast, every rank keeps its own (identical)
    best weights, and rank 0's decision to stop is broadcast, so every rank leaves the loop at the
    same epoch (a rank that left alone would make the others wait in the next all-reduce).
    """
    check_fit_arguments(model, train, valid, epochs=epochs, batch_size=batch_size, max_steps=max_steps,
                        eval_every=eval_every, log_every=log_every, early_stopping=early_stopping, lr=lr,
                        weight_decay=weight_decay)
    if device is None and is_distributed() and torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    device = resolve_device(device)
    loss_fns = resolve_losses(loss, train.task_names, train.task_types)
    weighting = resolve_task_weights(task_weights, train.task_names).to(device)
    scored = scored_tasks(valid, early_stopping) if valid is not None and is_main_process() else []
    model.to(device)
    extra = [p for p in weighting.parameters() if p.requires_grad] if isinstance(weighting, nn.Module) else []
    ddp = wrap_ddp(model, device) if is_distributed() else model
    step_fn = ShardStep(ddp, loss_fns, weighting, resolve_optimizers(optimizer, model, extra, lr, weight_decay), extra)
    stopper = EarlyStopping(early_stopping, [model] + ([weighting] if extra else [])) if early_stopping else None
    tr = train.to(device)
    va = valid.to(device) if valid is not None and is_main_process() else None
    r, w = rank(), world_size()
    min_rows = w * (2 if has_batch_norm(model) else 1)  # every rank gets a row (two with BN)
    batches = EpochBatches(tr, batch_bounds(len(tr), batch_size * w, min_rows=min_rows), seed=seed,
                           shuffle=shuffle, split=_rank_slice(r, w))
    log = DistributedLog(model, tr.task_names, len(batches), va, max(batch_size, 8192), scored, stopper,
                         device=device)
    show = progress and r == 0
    with contextlib.ExitStack() as stack:
        bar = enter_training(stack, model, seed + r, device,  # dropout: each rank its own masks
                             min(max_steps or math.inf, epochs * len(batches)), show,
                             desc=f"fit_distributed x{w}")
        try:
            run_epochs(step_fn, batches, len(batches), log, RunningLoss(tr.n_tasks, device), bar,
                       epochs=epochs, max_steps=max_steps, eval_every=eval_every,
                       log_every=log_every if show else None)
        except Exception as exc:  # torchrun prints each failed rank's traceback: say which rank
            if hasattr(exc, "add_note"):
                exc.add_note(f"raised on rank {r} of {w} in fit_distributed")
            raise
    log.rows = _share_rows(log.rows)
    return finish_history(log, stopper)


def _share_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rank 0's history rows on every rank (they alone carry the validation columns)."""
    if not is_distributed():
        return rows
    box = [rows if is_main_process() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# --------------------------------------------------------------------------- launching from Python
class RankFailedError(RuntimeError):
    """One rank raised; the others were stopped. The message holds the failing rank's traceback."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(local_rank: int, fn: Callable[..., Any], world: int, port: int, args: tuple, timeout_s: float) -> None:
    os.environ.update(RANK=str(local_rank), LOCAL_RANK=str(local_rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)  # W processes on few cores: one thread each, or they fight
    dist.init_process_group("gloo", timeout=timedelta(seconds=timeout_s))
    try:
        fn(*args)
    finally:
        dist.destroy_process_group()


def launch(fn: Callable[..., Any], world: int, args: tuple = (), timeout_s: float = 120.0) -> None:
    """Run ``fn(*args)`` in ``world`` CPU processes joined in a gloo group, like ``torchrun`` does.

    ``fn`` must be importable by name (defined in a module, not in a notebook cell): the processes
    are started with ``spawn``. If any rank raises, the others are terminated and
    :class:`RankFailedError` names the rank and carries its traceback; no rank is left waiting.
    (``torchrun`` does the same for a script: when one worker fails it stops the others and
    reports the failed rank's traceback.)
    After ``timeout_s`` seconds every rank is stopped and :class:`TimeoutError` is raised.
    Results come back through files that ``fn`` writes itself.
    """
    check_positive_int(world, "world")
    ctx = mp.start_processes(_worker, args=(fn, world, _free_port(), args, timeout_s), nprocs=world,
                             join=False, start_method="spawn")
    deadline = time.monotonic() + timeout_s
    try:
        while not ctx.join(timeout=1.0):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {world} ranks did not finish within {timeout_s} s; all were stopped")
    except mp.ProcessRaisedException as exc:
        raise RankFailedError(f"rank {exc.error_index} of {world} raised; the other ranks were "
                              f"stopped.\n{exc}") from None
    except mp.ProcessExitedException as exc:
        raise RankFailedError(f"rank {exc.error_index} of {world} exited with code {exc.exit_code}; "
                              "the other ranks were stopped") from None
    finally:
        for proc in ctx.processes:
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
