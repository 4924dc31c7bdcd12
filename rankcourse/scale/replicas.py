r"""Training many small multi-task models at once, as stacked copies.

Comparing Shared-Bottom, OMoE and MMoE fairly needs many runs: several seeds for every task
correlation (Ma et al. 2018 repeat each setting many times). The models of that experiment are
tiny (about 14k weights), so a training step is dominated by fixed costs, not by arithmetic, and a
Python loop over runs wastes most of the machine. Here the ``C`` copies keep their weights stacked
along a leading *copy* axis, and one batched matrix product serves them all:

.. math::

    H^{(c)} = \mathrm{relu}(X^{(c)} W^{(c)} + b^{(c)}), \qquad c = 1, \dots, C
    \quad\Longrightarrow\quad
    \texttt{baddbmm}(b, X, W) \text{ on tensors of shape } (C, \cdot, \cdot).

The copies share nothing but the step: the objective is the *sum* of the copies' losses, so the
gradient of copy ``c``'s weights is exactly the gradient of its own loss, and Adam works element by
element, so one Adam over the stacked tensors is ``C`` independent Adams. A copy trained here
follows the same trajectory as the same model trained alone on the same batches
(``tests/test_replicas.py`` checks it to float64 round-off).

* :class:`StackedMultiTask` -- ``C`` copies of :class:`~rankcourse.models.SharedBottom`,
  :class:`~rankcourse.models.OMoE` or :class:`~rankcourse.models.MMoE` (dense inputs only, as in the
  synthetic experiment), built from the course models and written back into them.
* :func:`train_replicas` -- Adam on all copies at once; every copy reads its own data set.
* :func:`batch_indices` -- the row order used by :func:`train_replicas`.
* :func:`seeded_copies` -- one fresh model per seed, each built right after seeding.
* :func:`step_milliseconds` -- one Adam step of the copies, timed as a loop and stacked.

The loop is :func:`rankcourse.engine.run_epochs`, the one under ``fit``; what stacked copies bring
is their step (:class:`ReplicaStep`), their batches (:class:`StackedBatches`) and their log
(:class:`ReplicaLog`).
"""

from __future__ import annotations

import copy
import math
import time
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..data.tabular import TabularData
from ..engine import RunningLoss, run_epochs
from ..layers.experts import ParallelMLP
from ..losses import default_loss
from ..models.multitask import MMoE, OMoE, SharedBottom
from ..runtime import seed_everything
from ..training import check_learning_rate, check_positive_int, make_adam, resolve_device

__all__ = ["StackedMultiTask", "train_replicas", "batch_indices", "epoch_rows", "StackedBatches",
           "ReplicaStep", "ReplicaLog", "seeded_copies", "step_milliseconds"]


def _check_relu(module: nn.Module, where: str) -> None:
    if not isinstance(module, nn.ReLU):
        raise ValueError(f"{where}: only ReLU activations can be stacked, got {type(module).__name__}")


def _parallel_layers(mlp: ParallelMLP, where: str) -> list[tuple[Tensor, Tensor]]:
    """``[(W (n, fan_in, fan_out), b (n, fan_out)), ...]`` of a ParallelMLP without dropout."""
    for activation in mlp.activations:
        _check_relu(activation, where)
    if not isinstance(mlp.dropout, nn.Identity):
        raise ValueError(f"{where}: dropout cannot be stacked (train the copies without it)")
    if mlp.norms is not None:
        raise ValueError(f"{where}: batch normalisation cannot be stacked (train the copies without it)")
    return [(w.detach(), b.detach()) for w, b in zip(mlp.weights, mlp.biases)]


def _mlp_layers(mlp: nn.Module, where: str) -> list[tuple[Tensor, Tensor]]:
    """``[(W (fan_in, fan_out), b (fan_out,)), ...]`` of a plain ReLU MLP (hidden layers only)."""
    out = []
    for block in mlp.layers:
        body = list(getattr(block, "body", []))
        if len(body) != 2 or not isinstance(body[0], nn.Linear) or getattr(block, "skip", None) is not None:
            raise ValueError(f"{where}: only plain Linear -> ReLU layers can be stacked "
                             "(no normalisation, dropout, residual or output layer)")
        _check_relu(body[1], where)
        out.append((body[0].weight.detach().T, body[0].bias.detach()))
    return out


class StackedMultiTask(nn.Module):
    """``C`` copies of one multi-task architecture with stacked weights.

    Built from a list of course models of the same class and shape (their current weights are
    copied); :meth:`write_back` copies the trained weights back into such models.

    Supported: :class:`~rankcourse.models.SharedBottom`, :class:`~rankcourse.models.OMoE`,
    :class:`~rankcourse.models.MMoE` on schemas with dense fields only, ReLU, no dropout.

    Layout (``D`` inputs, ``E`` experts, ``T`` tasks, ``G`` gates: ``T`` for MMoE, 1 for OMoE):
        the first expert layer and the gate logits share one product, ``first_w (C, D, E*H1 + G*E)``
        (columns: expert ``e``'s units at ``[e*H1, (e+1)*H1)``, then gate ``g``'s logits);
        deeper expert layers ``(C, E, fan_in, fan_out)``; tower layers ``(C, T, fan_in, fan_out)``.
        Shared-Bottom: ``first_w (C, D, H1)``, deeper bottom layers ``(C, fan_in, fan_out)``.

    Shapes:
        ``forward``: ``x (C, B, D)`` -> ``(C, B, T)``;
        ``gate_weights``: ``x (C, B, D)`` -> ``(C, B, T, E)`` (mixtures only).
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        models = list(models)
        if not models:
            raise ValueError("StackedMultiTask needs at least one model")
        kind = type(models[0])
        if kind not in (SharedBottom, OMoE, MMoE):
            raise TypeError(f"can stack SharedBottom, OMoE or MMoE models, got {kind.__name__}")
        for i, m in enumerate(models):
            if type(m) is not kind:
                raise TypeError(f"model {i} is a {type(m).__name__}, model 0 a {kind.__name__}: stack one class at a time")
            if m.schema.n_fields:
                raise ValueError(f"model {i} has categorical fields {[f.name for f in m.schema.sparse]}: "
                                 "only dense-input models can be stacked")
        self.kind = kind
        self.n_copies = len(models)
        self.n_tasks = models[0].n_tasks
        self.in_dim = models[0].in_dim
        layouts = [self._layout(m) for m in models]
        shapes = [[tuple(t.shape) for t in lay] for lay in layouts]
        for i, s in enumerate(shapes):
            if s != shapes[0]:
                raise ValueError(f"model {i} has weight shapes {s}, model 0 {shapes[0]}: copies must have the same shape")
        first = models[0]
        self.n_body = len(first.bottom.layers) if kind is SharedBottom else first.experts.n_hidden
        self.n_tower = len(first.towers.weights)
        names = self._names()
        for k, name in enumerate(names):
            self.register_parameter(name, nn.Parameter(torch.stack([lay[k] for lay in layouts]).clone()))
        self._param_names = names

    # ------------------------------------------------------------------ layout
    def _names(self) -> list[str]:
        """Names of the stacked parameters, in the order of :meth:`_layout`."""
        names = ["first_w", "first_b"]
        names += [f"{p}{l}" for l in range(1, self.n_body) for p in ("body_w", "body_b")]
        names += [f"{p}{l}" for l in range(self.n_tower) for p in ("tower_w", "tower_b")]
        return names

    def _layout(self, model: nn.Module) -> list[Tensor]:
        """One model's weights in the stacked layout (without the copy axis), in ``_names`` order;
        also records the mixture's sizes (experts, gates, expert width)."""
        tower = _parallel_layers(model.towers, "towers")
        if self.kind is SharedBottom:
            body = _mlp_layers(model.bottom, "bottom")
            first_w, first_b = body[0]
            rest = [t for w, b in body[1:] for t in (w, b.unsqueeze(0))]
            self.n_experts = None
        else:
            experts = _parallel_layers(model.experts, "experts")
            if len(experts) != model.experts.n_hidden:
                raise ValueError("experts with an output layer cannot be stacked")
            w0, b0 = experts[0]                                   # (E, D, H1), (E, H1)
            n_exp = w0.shape[0]
            if getattr(model.gate, "norm", None) is not None:
                raise ValueError("gates with batch normalisation cannot be stacked (train the copies without it)")
            gate = model.gate.linear                              # weight (G*E, D)
            first_w = torch.cat([w0.permute(1, 0, 2).reshape(w0.shape[1], -1), gate.weight.detach().T], 1)
            first_b = torch.cat([b0.reshape(-1), gate.bias.detach()])
            rest = [t for w, b in experts[1:] for t in (w, b.unsqueeze(1))]  # (E, i, o), (E, 1, o)
            self.n_experts = n_exp
            self.n_gates = model.gate.n_gates or 1
            self.expert_width = w0.shape[2]
        tow = [t for w, b in tower for t in (w, b.unsqueeze(1))]    # (T, i, o), (T, 1, o)
        return [first_w, first_b.unsqueeze(0), *rest, *tow]

    def write_back(self, models: Sequence[nn.Module]) -> None:
        """Copy copy ``c``'s weights into ``models[c]`` (same class and shapes as at construction)."""
        models = list(models)
        if len(models) != self.n_copies:
            raise ValueError(f"write_back got {len(models)} models for {self.n_copies} copies")
        with torch.no_grad():
            for c, m in enumerate(models):
                if type(m) is not self.kind:
                    raise TypeError(f"model {c} is a {type(m).__name__}, the copies are {self.kind.__name__}")
                p = {name: getattr(self, name)[c] for name in self._param_names}
                for l, (w, b) in enumerate(zip(m.towers.weights, m.towers.biases)):
                    w.copy_(p[f"tower_w{l}"])
                    b.copy_(p[f"tower_b{l}"].squeeze(1))
                if self.kind is SharedBottom:
                    for l, block in enumerate(m.bottom.layers):
                        lin = block.body[0]
                        w, b = (p["first_w"], p["first_b"]) if l == 0 else (p[f"body_w{l}"], p[f"body_b{l}"])
                        lin.weight.copy_(w.T)
                        lin.bias.copy_(b.squeeze(0))
                    continue
                n_units = self.n_experts * self.expert_width
                w0 = p["first_w"][:, :n_units].reshape(self.in_dim, self.n_experts, self.expert_width)
                m.experts.weights[0].copy_(w0.permute(1, 0, 2))
                m.experts.biases[0].copy_(p["first_b"][0, :n_units].reshape(self.n_experts, self.expert_width))
                m.gate.linear.weight.copy_(p["first_w"][:, n_units:].T)
                m.gate.linear.bias.copy_(p["first_b"][0, n_units:])
                for l in range(1, self.n_body):
                    m.experts.weights[l].copy_(p[f"body_w{l}"])
                    m.experts.biases[l].copy_(p[f"body_b{l}"].squeeze(1))

    # ------------------------------------------------------------------ forward
    def _check_x(self, x: Tensor) -> None:
        if x.dim() != 3 or x.shape[0] != self.n_copies or x.shape[2] != self.in_dim:
            raise ValueError(f"x must have shape (copies={self.n_copies}, batch, {self.in_dim}), got {tuple(x.shape)}")

    def _experts_and_gates(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Expert outputs ``(C, B, E, H)`` and gate weights ``(C, B, G, E)``."""
        C, B, _ = x.shape
        z = torch.baddbmm(self.first_b, x, self.first_w)                   # (C, B, E*H1 + G*E)
        n_units = self.n_experts * self.expert_width
        h = torch.relu(z[..., :n_units]).view(C, B, self.n_experts, self.expert_width)
        for l in range(1, self.n_body):  # deeper expert layers, one small product per expert
            h = torch.relu(torch.einsum("cbei,ceio->cbeo", h, getattr(self, f"body_w{l}")) + getattr(self, f"body_b{l}").transpose(1, 2))
        g = torch.softmax(z[..., n_units:].reshape(C, B, self.n_gates, self.n_experts), dim=-1)
        return h, g

    def gate_weights(self, x: Tensor) -> Tensor:
        """Each copy's and task's softmax weights on the experts, ``(C, B, T, E)``."""
        if self.kind is SharedBottom:
            raise TypeError("Shared-Bottom has no gates")
        self._check_x(x)
        g = self._experts_and_gates(x)[1]
        return g.expand(-1, -1, self.n_tasks, -1)

    def forward(self, x: Tensor) -> Tensor:
        self._check_x(x)
        C, B, _ = x.shape
        w0, b0 = self.tower_w0, self.tower_b0                       # (C, T, H, K), (C, T, 1, K)
        T, H, K = w0.shape[1:]
        w0_side_by_side = w0.permute(0, 2, 1, 3).reshape(C, H, T * K)   # every tower's first layer at once
        if self.kind is SharedBottom:
            h = torch.relu(torch.baddbmm(self.first_b, x, self.first_w))
            for l in range(1, self.n_body):
                h = torch.relu(torch.baddbmm(getattr(self, f"body_b{l}"), h, getattr(self, f"body_w{l}")))
            t = torch.bmm(h, w0_side_by_side).view(C, B, T, K)      # all towers read the same h
        else:
            h, g = self._experts_and_gates(x)                       # (C, B, E, H), (C, B, G, E)
            # The towers' first layer is linear, so it can act before the mixture:
            #   W_t^T (sum_e g_te h_e) = sum_e g_te (W_t^T h_e).
            # One large product maps every expert to every tower, then a broadcast product and a sum
            # over the experts mixes them. On a CPU this beats C*B tiny (T x E)(E x H) products, and the
            # broadcast runs over the towers' K units rather than the experts' H (8 vs 16 in the paper).
            n_exp = h.shape[2]
            per_expert = torch.bmm(h.reshape(C, B * n_exp, H), w0_side_by_side).view(C, B, n_exp, T, K)
            t = (g.transpose(2, 3).unsqueeze(-1) * per_expert).sum(2)   # (C, B, T, K); G = 1 broadcasts (OMoE)
        t = (t + b0.transpose(1, 2)).transpose(1, 2)                # (C, T, B, K)
        for l in range(1, self.n_tower):
            t = torch.matmul(torch.relu(t), getattr(self, f"tower_w{l}")) + getattr(self, f"tower_b{l}")
        return t.squeeze(-1).transpose(1, 2)                        # (C, B, T)


# ---------------------------------------------------------------------- training
def epoch_rows(n_rows: int, batch_size: int, generator: torch.Generator) -> Tensor:
    """One epoch's batches, ``(n_rows // batch_size, batch_size)`` row indices: a permutation drawn
    from ``generator``, its remainder left out so that every step has the same shape."""
    per_epoch = n_rows // batch_size
    return torch.randperm(n_rows, generator=generator)[: per_epoch * batch_size].view(per_epoch, batch_size)


def batch_indices(n_rows: int, batch_size: int, steps: int, seed: int = 0) -> Tensor:
    """Row indices of every step, ``(steps, batch_size)`` int64.

    Each epoch draws a permutation from ``torch.Generator().manual_seed(seed)`` and cuts it into
    ``n_rows // batch_size`` full batches (:func:`epoch_rows`); epochs follow each other until
    ``steps`` batches are drawn. :func:`train_replicas` reads its batches in this order.
    """
    for name, v in (("n_rows", n_rows), ("batch_size", batch_size), ("steps", steps)):
        check_positive_int(v, name)
    if batch_size > n_rows:
        raise ValueError(f"batch_size={batch_size} is larger than the {n_rows} training rows")
    gen = torch.Generator().manual_seed(int(seed))
    chunks, have = [], 0
    while have < steps:
        chunks.append(epoch_rows(n_rows, batch_size, gen))
        have += chunks[-1].shape[0]
    return torch.cat(chunks)[:steps]


def _stack_split(splits: Sequence[TabularData], what: str, n_tasks: int,
                 in_dim: int) -> tuple[Tensor, Tensor, Tensor, tuple[str, ...], tuple[str, ...]]:
    """Checks the splits and stacks the *distinct* ones (copies often share a data set).

    Returns ``x (U, n, D)``, ``y (U, n, T)``, ``which (C,)`` (copy ``c`` reads ``x[which[c]]``), the task
    names and the task types.
    """
    if not all(isinstance(s, TabularData) for s in splits):
        raise TypeError(f"{what} must be a sequence of TabularData, one per copy")
    first = splits[0]
    distinct: dict[int, int] = {}
    for c, s in enumerate(splits):
        if s.schema.n_fields:
            raise ValueError(f"{what}[{c}] has categorical fields: only dense-input data can be stacked")
        if s.n_tasks != n_tasks:
            raise ValueError(f"{what}[{c}] has {s.n_tasks} task(s) {list(s.task_names)}; the models have {n_tasks}")
        if s.schema.n_dense != in_dim:
            raise ValueError(f"{what}[{c}] has {s.schema.n_dense} dense fields; the models read {in_dim}")
        if len(s) != len(first):
            raise ValueError(f"{what}[{c}] has {len(s)} rows, {what}[0] has {len(first)}: stacked copies need equal sizes")
        if s.task_types != first.task_types:
            raise ValueError(f"{what}[{c}] has task types {s.task_types}, {what}[0] has {first.task_types}")
        if id(s) not in distinct:
            s.schema.validate(s.dense, s.sparse)  # once per data set, on every row: NaNs are named here
            distinct[id(s)] = len(distinct)
    unique = {k: splits[[id(s) for s in splits].index(k)] for k in distinct}
    x = torch.stack([s.dense for s in unique.values()])
    y = torch.stack([s.labels.reshape(len(s), -1) for s in unique.values()])
    which = torch.tensor([distinct[id(s)] for s in splits])
    return x, y, which, first.task_names, first.task_types


def _task_losses(out: Tensor, y: Tensor, loss_fns: Sequence) -> Tensor:
    """Per copy and task mean loss ``(C, T)`` from ``out, y (C, B, T)``: each task's default loss
    (:func:`rankcourse.losses.default_loss`, as in :func:`rankcourse.training.fit`), unchecked (the
    data was validated once)."""
    return torch.stack([fn(out[..., k], y[..., k], reduction="none", validate=False).mean(1)
                        for k, fn in enumerate(loss_fns)], dim=1)


def _check_replica_arguments(models: Sequence[nn.Module], train: Sequence[TabularData],
                             valid: Sequence[TabularData] | None, steps: int, lr: float,
                             lr_schedule: str, eval_every: int | None
                             ) -> tuple[list[nn.Module], list[TabularData], list[TabularData] | None]:
    """``train_replicas``'s arguments checked, with the sequences as lists (one split per copy)."""
    models = list(models)
    if not models:
        raise ValueError("train_replicas needs at least one model")
    train = list(train)
    if len(train) != len(models):
        raise ValueError(f"got {len(models)} models but {len(train)} training splits: give one split per copy")
    if valid is not None:
        valid = list(valid)
        if len(valid) != len(models):
            raise ValueError(f"got {len(models)} models but {len(valid)} validation splits")
    check_positive_int(steps, "steps")
    check_learning_rate(lr)
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}")
    check_positive_int(eval_every, "eval_every", allow_none=True)
    return models, train, valid


def _copy_seeds(seed: int | Sequence[int], n_copies: int) -> list[int]:
    """One batch-order seed per copy: ``seed`` repeated, or the given one-per-copy list."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return [int(seed)] * n_copies
    seeds = [int(s) for s in seed]
    if len(seeds) != n_copies:
        raise ValueError(f"seed must be an int or one int per copy; got {len(seeds)} seeds for {n_copies} copies")
    return seeds


def _validation_losses(stacked: nn.Module, vx: Tensor, vy: Tensor, vwhich: Tensor,
                       loss_fns: Sequence, chunk: int = 4096) -> np.ndarray:
    """Per copy and task mean loss ``(C, T)`` over the whole validation splits, in chunks of rows."""
    n = vx.shape[1]
    with torch.no_grad():
        total = torch.stack([_task_losses(stacked(vx[vwhich, lo:lo + chunk]), vy[vwhich, lo:lo + chunk], loss_fns)
                             * min(chunk, n - lo) for lo in range(0, n, chunk)]).sum(0)
    return (total / n).cpu().numpy()


def _history_rows(step: int, train_loss: np.ndarray, valid_loss: np.ndarray | None,
                  task_names: Sequence[str]) -> list[dict]:
    """Long-format rows (one per copy and task) of one logging point."""
    rows = []
    for c in range(train_loss.shape[0]):
        for k, name in enumerate(task_names):
            row = {"step": step, "copy": c, "task": name, "train_loss": float(train_loss[c, k])}
            if valid_loss is not None:
                row["valid_loss"] = float(valid_loss[c, k])
            rows.append(row)
    return rows


class StackedBatches:
    """The batches of every epoch for stacked copies: copy ``c`` reads the rows :func:`epoch_rows`
    gives for its own seed, from its own data set. The distinct data sets are flattened to
    ``(U * n_rows, ...)`` so that one ``index_select`` fetches every copy's batch; a batch is
    ``((x (C, B, D), y (C, B, T)), C * B rows)``."""

    def __init__(self, x: Tensor, y: Tensor, which: Tensor, batch_size: int, seeds: Sequence[int],
                 device: torch.device) -> None:
        self.n_rows, self.batch_size, self.n_copies = x.shape[1], batch_size, len(seeds)
        self.gens = [torch.Generator().manual_seed(s) for s in seeds]
        self.offsets = (which * self.n_rows).view(-1, 1, 1)
        self.x_flat, self.y_flat = x.reshape(-1, x.shape[2]), y.reshape(-1, y.shape[2])
        self.device = device

    def __len__(self) -> int:
        return self.n_rows // self.batch_size

    def __call__(self, epoch: int) -> Iterator[tuple[tuple[Tensor, Tensor], int]]:
        perms = [epoch_rows(self.n_rows, self.batch_size, g) for g in self.gens]
        order = (torch.stack(perms) + self.offsets).to(self.device)  # (C, per_epoch, B)
        for b in range(order.shape[1]):
            idx = order[:, b].reshape(-1)
            xb = self.x_flat.index_select(0, idx).view(self.n_copies, self.batch_size, -1)
            yb = self.y_flat.index_select(0, idx).view(self.n_copies, self.batch_size, -1)
            yield (xb, yb), self.n_copies * self.batch_size


class ReplicaStep:
    """One Adam step of every copy on its own batch (the objective is the sum of the copies' task
    losses, so each copy gets its own gradient); the learning rate follows ``lr_schedule``.
    Returns ``(objective, task losses (C, T))``, detached, on the device."""

    def __init__(self, stacked: "StackedMultiTask", loss_fns: Sequence, lr: float, lr_schedule: str,
                 steps: int) -> None:
        self.stacked, self.loss_fns, self.lr, self.lr_schedule, self.steps = stacked, loss_fns, lr, lr_schedule, steps
        self.optimizer = make_adam(stacked.parameters(), lr=lr)
        self.t = 0

    def __call__(self, xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor]:
        if self.lr_schedule == "cosine":
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr * 0.5 * (1.0 + math.cos(math.pi * self.t / self.steps))
        losses = _task_losses(self.stacked(xb), yb, self.loss_fns)   # (C, T)
        self.optimizer.zero_grad(set_to_none=True)
        total = losses.sum()
        total.backward()   # copies share no weights: each gets its own gradient
        self.optimizer.step()
        self.t += 1
        return total.detach(), losses.detach()


class ReplicaLog:
    """Long-format history rows of stacked copies: one per logging point, copy and task, with the
    copy's mean training loss since the previous point and, with validation splits, its loss on
    the whole validation split. No early stopping (``end_epoch`` never stops)."""

    def __init__(self, stacked: "StackedMultiTask", task_names: Sequence[str], loss_fns: Sequence,
                 valid: tuple[Tensor, Tensor, Tensor] | None) -> None:
        self.stacked, self.task_names, self.loss_fns, self.valid = stacked, task_names, loss_fns, valid
        self.rows: list[dict] = []

    def add_row(self, step: int, running: RunningLoss, bar: object) -> None:
        train_loss = (running.tasks / max(running.steps, 1)).cpu().numpy()
        valid_loss = (_validation_losses(self.stacked, *self.valid, self.loss_fns)
                      if self.valid is not None else None)
        self.rows.extend(_history_rows(step, train_loss, valid_loss, self.task_names))
        if not np.all(np.isfinite(train_loss)):
            raise FloatingPointError(f"training loss became NaN or infinite by step {step}")
        running.reset()

    def end_epoch(self) -> bool:
        return False


def train_replicas(
    models: Sequence[nn.Module],
    train: Sequence[TabularData],
    valid: Sequence[TabularData] | None = None,
    *,
    steps: int,
    batch_size: int = 128,
    lr: float = 3e-3,
    lr_schedule: str = "constant",
    eval_every: int | None = None,
    seed: int | Sequence[int] = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    r"""Train ``len(models)`` copies at once; copy ``c`` learns from ``train[c]``.

    The objective of copy ``c`` is :math:`\sum_k L_k` over its tasks (mean squared error for
    regression tasks, binary cross-entropy on logits for binary ones), as in
    :func:`rankcourse.training.fit` with all task weights 1. Adam (fused where torch allows), one
    step per batch; copy ``c`` reads the rows :func:`batch_indices` gives for its seed. The trained
    weights are written back into ``models`` (left in eval mode on ``device``). The loop is
    :func:`rankcourse.engine.run_epochs`, the one under ``fit``, with a step of stacked copies
    (:class:`ReplicaStep`), their batches (:class:`StackedBatches`) and a long-format log
    (:class:`ReplicaLog`).

    Arguments shared with ``fit`` mean the same: ``lr``, ``eval_every`` (a logging row every this
    many steps, and one at the end), ``device``, ``progress``. The others differ on purpose and
    are named differently or documented: ``steps`` counts optimiser steps (``fit``'s ``max_steps``;
    there are no epochs to choose), ``valid`` is one split per copy, ``seed`` may be one per copy,
    and ``batch_size`` batches are all full (below). ``fit``'s other arguments (optimiser, loss,
    task weights, early stopping, shuffle) have no meaning for stacked copies and are not taken.

    Args:
        models: course models of one class and shape (see :class:`StackedMultiTask`); their
            current weights are the starting point (seed them before building them).
        train: one training split per copy, all with the same number of rows.
        valid: optional validation splits, one per copy, scored every ``eval_every`` steps and at the end.
        steps: optimiser steps.
        batch_size: rows per step. Unlike :func:`~rankcourse.training.fit`, every step has exactly
            ``batch_size`` rows and the remainder of an epoch is left out (see :func:`batch_indices`):
            all copies' batches are cut from one stacked index tensor of a fixed shape.
        lr: Adam's learning rate (its peak with ``lr_schedule="cosine"``).
        lr_schedule: ``"constant"`` or ``"cosine"`` (decays to 0 at ``steps``: :math:`\eta_t =
            \eta\,\tfrac12(1 + \cos(\pi t / \text{steps}))`).
        eval_every: steps between logging points (default: only at the end).
        seed: the batch order: one int (every copy reads the same row positions of its own data)
            or one int per copy; copy ``c`` reads ``batch_indices(n_rows, batch_size, steps, seed_c)``.
        device: where to train (default: CPU, or CUDA when available).
        progress: show a tqdm bar.

    Returns:
        Long-format history, one row per logging point, copy and task: ``step``, ``copy``, ``task``,
        ``train_loss`` (the copy's mean loss on that task since the previous logging point) and,
        with ``valid``, ``valid_loss`` (on the whole validation split).
    """
    models, train, valid = _check_replica_arguments(models, train, valid, steps, lr, lr_schedule, eval_every)
    device = resolve_device(device)

    stacked = StackedMultiTask(models).to(device)
    dtype = stacked.first_w.dtype
    x, y, which, task_names, task_types = _stack_split(train, "train", stacked.n_tasks, stacked.in_dim)
    loss_fns = [default_loss(t) for t in task_types]
    valid_stack = None
    if valid is not None:
        vx, vy, vwhich, _, valid_types = _stack_split(valid, "valid", stacked.n_tasks, stacked.in_dim)
        if valid_types != task_types:
            raise ValueError(f"valid has task types {valid_types} but train has {task_types}: "
                             "each task is scored with its training loss")
        valid_stack = (vx.to(device, dtype), vy.to(device, dtype), vwhich.to(device))
    batch_indices(x.shape[1], batch_size, 1)  # checks batch_size against the rows
    batches = StackedBatches(x.to(device, dtype), y.to(device, dtype), which, batch_size,
                             _copy_seeds(seed, stacked.n_copies), device)
    del x, y
    log = ReplicaLog(stacked, task_names, loss_fns, valid_stack)
    running = RunningLoss((stacked.n_copies, stacked.n_tasks), device, dtype)

    stacked.train()
    with tqdm(total=steps, disable=not progress, desc=f"{stacked.n_copies} x {stacked.kind.__name__}",
              leave=False) as bar:
        run_epochs(ReplicaStep(stacked, loss_fns, lr, lr_schedule, steps), batches, len(batches), log,
                   running, bar, epochs=math.ceil(steps / len(batches)), max_steps=steps,
                   eval_every=eval_every, row_each_epoch=False)
    stacked.write_back([m.to(device) for m in models])
    for m in models:
        m.eval()
    return pd.DataFrame(log.rows)


# ---------------------------------------------------------------------- helpers for experiments
def seeded_copies(build: Callable[[], nn.Module], seeds: Iterable[int]) -> list[nn.Module]:
    """One model per seed: ``seed_everything(s)``, then ``build()``.

    The same seed gives the same initial weights, so runs that share a seed differ only in their
    data (chapter 5 gives every task correlation the same seeds 0, 1, ...).
    """
    models = []
    for s in seeds:
        seed_everything(int(s))
        models.append(build())
    return models


def _timed(step: Callable[[Tensor], None], n_rows: int, batch_size: int, repeats: int,
           device: torch.device) -> float:
    """Milliseconds per call of ``step(rows)`` on random batches, after one warm-up call."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step(torch.arange(batch_size, device=device))  # warm-up: allocations, Adam's state
    sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        step(torch.randint(0, n_rows, (batch_size,), device=device))
    sync()
    return 1e3 * (time.perf_counter() - t0) / repeats


def step_milliseconds(models: Sequence[nn.Module], dense: Tensor, labels: Tensor, *,
                      batch_size: int = 128, repeats: int = 5, lr: float = 3e-3,
                      device: str | torch.device | None = None) -> tuple[float, float]:
    """Time one Adam step of ``C`` copies: a Python loop over the models, then one stacked step.

    Both versions train every copy on the same batch of ``dense (n, D)`` and ``labels (n, T)``
    rows (mean squared error summed over the tasks). They work on deep copies, so ``models`` are
    left as they were.

    Returns:
        ``(loop_ms, stacked_ms)``: milliseconds per step, after one warm-up step.
    """
    check_positive_int(batch_size, "batch_size")
    check_positive_int(repeats, "repeats")
    if dense.dim() != 2 or labels.dim() != 2 or dense.shape[0] != labels.shape[0]:
        raise ValueError(f"dense must be (n, D) and labels (n, T) with the same n, got "
                         f"dense {tuple(dense.shape)} and labels {tuple(labels.shape)}")
    if batch_size > dense.shape[0]:
        raise ValueError(f"batch_size={batch_size} exceeds the {dense.shape[0]} rows given")
    device = resolve_device(device)
    copies = [copy.deepcopy(m).to(device) for m in models]
    stacked = StackedMultiTask(copies).to(device)
    x, y = dense.to(device), labels.to(device)
    no_ids = torch.zeros(len(x), 0, dtype=torch.long, device=device)
    loop_opts = [torch.optim.Adam(m.parameters(), lr=lr) for m in copies]
    stacked_opt = torch.optim.Adam(stacked.parameters(), lr=lr)

    def loop_step(rows: Tensor) -> None:
        for m, opt in zip(copies, loop_opts):
            loss = ((m(x[rows], no_ids[rows]) - y[rows]) ** 2).mean(0).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()

    def stacked_step(rows: Tensor) -> None:
        out = stacked(x[rows].expand(len(copies), -1, -1))  # (C, batch, T): one batch for all
        loss = ((out - y[rows]) ** 2).mean(1).sum()  # the sum over copies of their own losses
        stacked_opt.zero_grad()
        loss.backward()
        stacked_opt.step()

    loop_ms = _timed(loop_step, len(x), batch_size, repeats, device)
    stacked_ms = _timed(stacked_step, len(x), batch_size, repeats, device)
    return loop_ms, stacked_ms
