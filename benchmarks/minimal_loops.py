"""The reference for ``fit``'s speed: the same models in plain PyTorch, trained by a bare loop.

Each model here computes what its ``rankcourse.models`` namesake computes (same layers, widths and
initialisation scheme, not the same random draws), written as plainly as PyTorch allows: one
``nn.Embedding`` table for all fields, ``nn.Linear`` layers, no input checks, no schema. The loop
holds the whole split on the device as tensors, cuts batches from one permutation per epoch, calls
fused Adam and reads the loss never. It is the practical limit of a CPU training step for these
models; ``bench_epoch.py --impls minimal`` runs it next to ``fit``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _mlp(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers)


class _Inputs(nn.Module):
    """One embedding table for every field (ids offset per field), and the flat deep input."""

    def __init__(self, vocab_sizes: list[int], n_dense: int, dim: int) -> None:
        super().__init__()
        self.table = nn.Embedding(sum(vocab_sizes), dim)
        nn.init.normal_(self.table.weight, std=0.01)
        offsets = torch.tensor([0, *vocab_sizes[:-1]]).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        self.width = len(vocab_sizes) * dim + n_dense

    def forward(self, dense: Tensor, sparse: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        ids = sparse + self.offsets
        v = self.table(ids)                                     # (B, F, k)
        return ids, v, torch.cat([v.flatten(1), dense], dim=1)  # ids, embeddings, deep input


class MinimalDeepFM(nn.Module):
    """First order (one weight per id, dense weights, bias) + FM + MLP ending in one unit."""

    def __init__(self, vocab_sizes: list[int], n_dense: int, dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.inputs = _Inputs(vocab_sizes, n_dense, dim)
        self.first = nn.Embedding(sum(vocab_sizes), 1)
        nn.init.zeros_(self.first.weight)
        self.dense_linear = nn.Linear(n_dense, 1)
        self.mlp = nn.Sequential(_mlp([self.inputs.width, *hidden]), nn.Linear(hidden[-1], 1))

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        ids, v, x = self.inputs(dense, sparse)
        fm = 0.5 * (v.sum(1).square() - v.square().sum(1)).sum(1)
        first = self.first(ids).sum((1, 2)) + self.dense_linear(dense).squeeze(-1)
        return first + fm + self.mlp(x).squeeze(-1)


class MinimalDCNv2(nn.Module):
    """Parallel DCN-V2: ``head(concat(cross(x0), MLP(x0)))``; cross full rank or low-rank mixture."""

    def __init__(self, vocab_sizes: list[int], n_dense: int, dim: int, hidden: tuple[int, ...], n_cross: int,
                 low_rank: int | None, n_experts: int) -> None:
        super().__init__()
        self.inputs = _Inputs(vocab_sizes, n_dense, dim)
        d = self.inputs.width
        self.low_rank, self.n_experts = low_rank, n_experts
        if low_rank is None:
            self.cross = nn.ModuleList(nn.Linear(d, d) for _ in range(n_cross))
        else:
            r, e = low_rank, n_experts
            self.V = nn.Parameter(torch.empty(n_cross, d, e * r).uniform_(-1 / math.sqrt(d), 1 / math.sqrt(d)))
            self.C = nn.Parameter(torch.empty(n_cross, e, r, r).uniform_(-1 / math.sqrt(r), 1 / math.sqrt(r)))
            self.U = nn.Parameter(torch.empty(n_cross, e * r, d).uniform_(-1 / math.sqrt(r), 1 / math.sqrt(r)))
            self.bias = nn.Parameter(torch.zeros(n_cross, d))
            self.gate = nn.ModuleList(nn.Linear(d, e) for _ in range(n_cross))
        self.n_cross = n_cross
        self.mlp = _mlp([d, *hidden])
        self.head = nn.Linear(d + hidden[-1], 1)

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        x0 = self.inputs(dense, sparse)[2]
        x = x0
        for l in range(self.n_cross):
            if self.low_rank is None:
                x = x0 * self.cross[l](x) + x
                continue
            b, e, r = x.shape[0], self.n_experts, self.low_rank
            h = torch.tanh((x @ self.V[l]).view(b, e, r))
            h = torch.tanh(torch.einsum("bet,est->bes", h, self.C[l]))
            g = torch.softmax(self.gate[l](x), dim=-1)
            x = x0 * ((g.unsqueeze(-1) * h).reshape(b, e * r) @ self.U[l] + self.bias[l]) + x
        return self.head(torch.cat([x, self.mlp(x0)], dim=1)).squeeze(-1)


class MinimalMMoE(nn.Module):
    """Experts as stacked weights (batched products), one softmax gate per task, towers per task."""

    def __init__(self, vocab_sizes: list[int], n_dense: int, dim: int, n_tasks: int, n_experts: int,
                 expert: tuple[int, ...], tower: tuple[int, ...]) -> None:
        super().__init__()
        self.inputs = _Inputs(vocab_sizes, n_dense, dim)
        self.n_tasks, self.n_experts = n_tasks, n_experts
        self.experts = self._stacked(n_experts, [self.inputs.width, *expert])
        self.gates = nn.Linear(self.inputs.width, n_tasks * n_experts)
        self.towers = self._stacked(n_tasks, [expert[-1], *tower, 1])

    @staticmethod
    def _stacked(n: int, widths: list[int]) -> nn.ParameterList:
        params = nn.ParameterList()
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            bound = 1 / math.sqrt(fan_in)
            params.append(nn.Parameter(torch.empty(n, fan_in, fan_out).uniform_(-bound, bound)))
            params.append(nn.Parameter(torch.empty(n, 1, fan_out).uniform_(-bound, bound)))
        return params

    @staticmethod
    def _run(params: nn.ParameterList, h: Tensor, last_linear: bool) -> Tensor:
        """``h (n, B, fan_in)`` through every layer; ReLU on all but (if ``last_linear``) the last."""
        n_layers = len(params) // 2
        for i in range(n_layers):
            h = torch.baddbmm(params[2 * i + 1], h, params[2 * i])
            if not (last_linear and i == n_layers - 1):
                h = torch.relu(h)
        return h

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        x = self.inputs(dense, sparse)[2]
        b = x.shape[0]
        experts = self._run(self.experts, x.expand(self.n_experts, -1, -1), last_linear=False)   # (E, B, H)
        g = torch.softmax(self.gates(x).view(b, self.n_tasks, self.n_experts), dim=-1)          # (B, T, E)
        mixed = torch.bmm(g, experts.transpose(0, 1))                                            # (B, T, H)
        return self._run(self.towers, mixed.transpose(0, 1), last_linear=True).squeeze(-1).T     # (B, T)


def train_one_epoch(model: nn.Module, dense: Tensor, sparse: Tensor, labels: Tensor, batch_size: int,
                    lr: float, seed: int) -> None:
    """One epoch of fused Adam on BCE-with-logits summed over tasks; tensors already on the device."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed)).to(labels.device)
    model.train()
    for start in range(0, len(labels), batch_size):
        idx = order[start:start + batch_size]
        out = model(dense[idx], sparse[idx]).reshape(len(idx), -1)
        loss = F.binary_cross_entropy_with_logits(out, labels[idx], reduction="none").mean(0).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
