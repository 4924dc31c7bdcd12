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
from tqdm.auto import tqdm

from .data.tabular import TabularData
from .training import (
    _check_output,
    _positive_int,
    _resolve_losses,
    _resolve_optimizers,
    _resolve_task_weights,
    _valid_metrics,
)
from .metrics import check_model_matches_data

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
            "`torchrun --nproc-per-node N script.py` (or rankcourse.distributed.launch)"
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
    _positive_int(world, "world")
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


def _mean_over_ranks(value: Tensor) -> Tensor:
    if is_distributed():
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= world_size()
    return value


# --------------------------------------------------------------------------- the loop
class _Run:
    """State of one distributed run: model copy, optimisers, the loss pieces and the running loss."""

    def __init__(self, model: nn.Module, train: TabularData, device: torch.device, loss: Any,
                 task_weights: Any, optimizer: Any, lr: float, weight_decay: float) -> None:
        self.device = device
        self.model = model.to(device)
        self.loss_fns = _resolve_losses(loss, train)
        weighting = _resolve_task_weights(task_weights, train)
        self.weighting = weighting.to(device)
        extra = [p for p in weighting.parameters() if p.requires_grad] if isinstance(weighting, nn.Module) else []
        self.ddp = wrap_ddp(model, device) if is_distributed() else model
        # Optimisers after wrapping: DDP keeps the same parameter tensors, so either order works,
        # but the weighting module's parameters (outside the model) are averaged by hand below.
        self.opts = _resolve_optimizers(optimizer, model, extra, lr, weight_decay)
        self.extra = extra
        self.n_tasks = train.n_tasks
        self.acc = torch.zeros((), device=device)
        self.acc_steps = 0

    def step(self, dense: Tensor, sparse: Tensor, labels: Tensor, share: float, check: bool) -> None:
        """One optimiser step on this rank's rows; ``share = W * n_r / n`` (see the module doc)."""
        out = self.ddp(dense, sparse)
        if check:
            _check_output(out, len(labels), self.n_tasks, type(self.model).__name__)
        out = out.reshape(len(labels), self.n_tasks)
        losses = torch.stack([fn(out[:, k], labels[:, k]) for k, fn in enumerate(self.loss_fns)])
        w = self.weighting
        total = (w(losses) if isinstance(w, nn.Module) else (w * losses).sum()) * share
        for o in self.opts:
            o.zero_grad(set_to_none=True)
        total.backward()
        for p in self.extra:  # parameters outside the DDP module: average their gradients by hand
            if p.grad is not None:
                p.grad = _mean_over_ranks(p.grad)
        for o in self.opts:
            o.step()
        self.acc += total.detach()
        self.acc_steps += 1

    def read_train_loss(self, step: int) -> float:
        """Mean objective over the global batches since the last call (all ranks take part)."""
        value = (_mean_over_ranks(self.acc) / max(self.acc_steps, 1)).item()
        self.acc = torch.zeros((), device=self.device)
        self.acc_steps = 0
        if not math.isfinite(value):
            raise FloatingPointError(f"training loss is {value} by step {step}: training diverged")
        return value


def _check_args(model: nn.Module, train: TabularData, valid: TabularData | None, epochs: int,
                batch_size: int, early_stopping: int | None) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _positive_int(epochs, "epochs")
    _positive_int(batch_size, "batch_size (rows per rank per step)")
    _positive_int(early_stopping, "early_stopping (patience in epochs)", allow_none=True)
    if not isinstance(train, TabularData):
        raise TypeError(f"train must be a TabularData, got {type(train).__name__}")
    check_model_matches_data(model, train, "train")
    if valid is not None:
        check_model_matches_data(model, valid, "valid")
    if early_stopping is not None and valid is None:
        raise ValueError("early_stopping needs a validation split: pass valid=...")
    if len(train) < world_size():
        raise ValueError(f"train has {len(train)} rows, fewer than the {world_size()} ranks")


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
    progress: bool = True,
) -> pd.DataFrame:
    """:func:`~rankcourse.training.fit` on every rank of a process group, data-parallel.

    Each step takes a global batch of ``batch_size * world_size()`` rows from the epoch's seeded
    permutation (the same on every rank); each rank trains on its own slice of it
    (:func:`shard_batch`) and DDP averages the gradients. Without a process group this is a plain
    one-process run with batch ``batch_size``.

    Args:
        batch_size: rows per rank per step; the global batch is ``batch_size * world_size()``
            (scale ``lr`` with it if you change the number of ranks; see the appendix).
        device: this rank's device (default: what :func:`init_process_group` chose, or the CPU).
        Other arguments as in :func:`~rankcourse.training.fit`.

    Returns:
        The history, the same DataFrame on every rank: one row per epoch with ``epoch``, ``step``,
        ``train_loss`` (mean over all ranks' rows), the validation columns (computed on rank 0 and
        shared), ``samples_per_s`` (global rows per second) and ``elapsed_s``.

    Early stopping: rank 0 validates and decides; the decision is broadcast so every rank leaves the
    loop at the same epoch (a rank that left alone would make the others wait for ever in the next
    all-reduce). Every rank keeps its own copy of the best weights (the copies are identical).
    """
    _check_args(model, train, valid, epochs, batch_size, early_stopping)
    dev = torch.device(device) if device is not None else (
        torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() and is_distributed()
        else torch.device("cpu"))
    torch.manual_seed(seed)  # same initial weights everywhere (DDP also broadcasts rank 0's)
    run = _Run(model, train, dev, loss, task_weights, optimizer, lr, weight_decay)
    tr, va = train.to(dev), (valid.to(dev) if valid is not None and is_main_process() else None)
    torch.manual_seed(seed + rank())  # dropout: each rank its own masks
    order_gen = torch.Generator().manual_seed(seed)
    history = _train_epochs(run, tr, va, epochs, batch_size, early_stopping, order_gen, progress)
    frame = pd.DataFrame(history["rows"])
    if early_stopping is not None and history["best_state"] is not None:
        model.load_state_dict(history["best_state"])
        frame.attrs.update(best_step=history["best_step"], best_score=history["best_score"])
    model.eval()
    return frame


class _Patience:
    """Rank 0's early-stopping bookkeeping: best score so far and epochs left without a gain."""

    def __init__(self, patience: int | None) -> None:
        self.patience = patience
        self.left = patience
        self.best_score = -math.inf

    def update(self, score: float) -> tuple[bool, bool]:
        """Record an epoch's score; return (new best?, stop now?)."""
        improved = score > self.best_score
        if improved:
            self.best_score = score
        if self.patience is None:
            return improved, False
        self.left = self.patience if improved else self.left - 1
        return improved, self.left <= 0


def _train_epochs(run: _Run, tr: TabularData, va: TabularData | None, epochs: int, batch_size: int,
                  early_stopping: int | None, order_gen: torch.Generator, progress: bool) -> dict[str, Any]:
    """The epoch loop of :func:`fit_distributed`; returns the history rows and the best weights."""
    r, w, n = rank(), world_size(), len(tr)
    global_batch = batch_size * w
    steps_per_epoch = math.ceil(n / global_batch)
    rows: list[dict[str, Any]] = []
    out: dict[str, Any] = {"best_state": None, "best_step": None}
    patience = _Patience(early_stopping)
    step, start = 0, time.perf_counter()
    bar = tqdm(total=epochs * steps_per_epoch, disable=not (progress and r == 0), unit="step",
               desc=f"fit_distributed {type(run.model).__name__} x{w}")
    run.model.train()
    trusted = getattr(run.model, "trusted_inputs", None)
    try:
        with (trusted() if callable(trusted) else contextlib.nullcontext()):
            for epoch in range(epochs):
                perm = torch.randperm(n, generator=order_gen).to(tr.dense.device)
                epoch_start = time.perf_counter()
                for b in range(steps_per_epoch):
                    glob = perm[b * global_batch:(b + 1) * global_batch]
                    idx = shard_batch(glob, r, w)
                    share = w * len(idx) / len(glob)
                    run.step(tr.dense[idx], tr.sparse[idx], tr.labels[idx], share, check=step == 0)
                    step += 1
                    bar.update(1)
                seconds = time.perf_counter() - epoch_start
                row = {"epoch": float(epoch + 1), "step": step, "train_loss": run.read_train_loss(step)}
                # Rank 0 validates and decides; every rank follows its decision.
                improved, stop = _validate_on_rank0(run, va, row, patience)
                improved, stop = broadcast_flags([improved, stop], run.device)
                if improved and early_stopping is not None:
                    out["best_state"] = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
                    out["best_step"] = step
                row.update(samples_per_s=n / seconds, elapsed_s=time.perf_counter() - start)
                rows.append(row)
                if stop:
                    break
    finally:
        bar.close()
    out["rows"] = _share_rows(rows)
    out["best_score"] = out["rows"][-1].get("best_score") if out["rows"] else None
    for row in out["rows"]:
        row.pop("best_score", None)
    return out


def _validate_on_rank0(run: _Run, va: TabularData | None, row: dict[str, Any],
                       patience: _Patience) -> tuple[bool, bool]:
    """Validation columns into ``row`` on rank 0; returns (new best score?, stop now?)."""
    if va is None:  # other ranks, or no validation split
        return False, False
    metrics, score = _valid_metrics(run.model, va, 8192)
    run.model.train()
    row.update(metrics)
    decision = patience.update(score)
    row["best_score"] = patience.best_score  # popped after the rows are shared
    return decision


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
    After ``timeout_s`` seconds every rank is stopped and :class:`TimeoutError` is raised.
    Results come back through files that ``fn`` writes itself.
    """
    _positive_int(world, "world")
    ctx = mp.start_processes(_worker, args=(fn, world, _free_port(), args, timeout_s), nprocs=world,
                             join=False, start_method="spawn")
    deadline = time.monotonic() + timeout_s
    try:
        while not ctx.join(timeout=1.0):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {world} ranks did not finish within {timeout_s} s; all were stopped")
    except mp.ProcessRaisedException as exc:
        raise RankFailedError(f"rank {exc.error_index} of {world} raised; the other ranks were stopped.\n{exc}") from None
    except mp.ProcessExitedException as exc:
        raise RankFailedError(f"rank {exc.error_index} of {world} exited with code {exc.exit_code}; "
                              "the other ranks were stopped") from None
    finally:
        for proc in ctx.processes:
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
