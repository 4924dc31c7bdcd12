"""Experts and gates for multi-task mixtures (Ma et al. 2018, "Modeling Task Relationships in
Multi-task Learning with Multi-gate Mixture-of-Experts").

:class:`ParallelMLP` holds ``n`` independent MLPs with stacked weights and evaluates them with batched
products, with no Python loop over the copies: it serves as the experts (all reading the same input)
and as the task towers (each reading its own input).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ..checks import check_positive_int
from .mlp import make_activation

__all__ = ["ExpertGate", "ParallelMLP"]


class ExpertGate(nn.Module):
    """Softmax gate(s) over experts: ``g(x) = softmax(W_g x + b_g)`` (Ma et al. 2018, eq. 6).

    By default no BatchNorm before the softmax, as in the paper; ``batch_norm=True`` puts one there,
    as torch-rechub does (``benchmarks/README.md`` measures what it changes).

    Args:
        in_dim: input width.
        n_experts: number of experts.
        n_gates: ``None`` for one gate (output ``(batch, n_experts)``); an int ``T`` for ``T``
            independent gates computed with one matrix product (output ``(batch, T, n_experts)``).
        batch_norm: normalise each gate logit over the batch (one ``BatchNorm1d`` over the
            ``n_experts * T`` logits) before the softmax.

    Shapes:
        ``x``: ``(batch, in_dim)`` -> ``(batch, n_experts)`` or ``(batch, n_gates, n_experts)``;
        rows sum to one over the experts.
    """

    def __init__(self, in_dim: int, n_experts: int, n_gates: int | None = None, batch_norm: bool = False) -> None:
        super().__init__()
        in_dim = check_positive_int(in_dim, "ExpertGate in_dim")
        n_experts = check_positive_int(n_experts, "ExpertGate n_experts")
        n_gates = check_positive_int(n_gates, "ExpertGate n_gates", allow_none=True)
        self.in_dim, self.n_experts, self.n_gates = in_dim, n_experts, n_gates
        self.linear = nn.Linear(in_dim, n_experts * (n_gates or 1))
        self.norm = nn.BatchNorm1d(n_experts * (n_gates or 1)) if batch_norm else None

    def forward(self, x: Tensor) -> Tensor:
        logits = self.linear(x)
        if self.norm is not None:
            logits = self.norm(logits)
        if self.n_gates is not None:
            logits = logits.view(x.shape[0], self.n_gates, self.n_experts)
        return torch.softmax(logits, dim=-1)


class ParallelMLP(nn.Module):
    """``n`` independent MLPs of the same shape, evaluated together with batched matrix products.

    Copy ``c``'s layer ``l`` computes ``act(x_c @ W_l[c] + b_l[c])``; the optional ``out_dim``
    layer has no activation. Weights start like ``nn.Linear``'s (uniform, bound ``1/sqrt(fan_in)``).

    Args:
        n: number of copies (experts or towers).
        in_dim: input width.
        hidden: hidden widths (may be empty only if ``out_dim`` is given).
        out_dim: width of a final linear layer, or ``None``.
        activation: hidden activation (a fresh module per hidden layer, see :func:`make_activation`).
        dropout: dropout after each hidden activation.
        batch_norm: batch normalisation after each hidden linear layer, separate for every copy
            and unit (as ``n`` MLPs with ``nn.BatchNorm1d`` would have); off by default.

    Shapes:
        ``x``: ``(batch, in_dim)`` (every copy reads the same input, e.g. experts) or
        ``(batch, n, in_dim)`` (copy ``c`` reads ``x[:, c]``, e.g. one tower per task)
        -> ``(batch, n, out_dim)`` (attribute ``out_dim``: the output width).

    Attributes:
        weights: ``nn.ParameterList`` of ``(n, fan_in, fan_out)``; biases: of ``(n, fan_out)``.
    """

    def __init__(
        self,
        n: int,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int | None = None,
        activation: str | Callable[[], nn.Module] | None = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        hidden = tuple(hidden)
        sizes = [in_dim, *hidden] + ([out_dim] if out_dim is not None else [])
        n = check_positive_int(n, "ParallelMLP n")
        sizes = [check_positive_int(s, f"ParallelMLP layer width {i}") for i, s in enumerate(sizes)]
        if len(sizes) < 2:
            raise ValueError("ParallelMLP needs at least one layer: give hidden widths or out_dim")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.n, self.in_dim, self.out_dim = n, in_dim, sizes[-1]
        self.n_hidden = len(hidden)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            self.weights.append(nn.Parameter(torch.empty(n, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n, fan_out).uniform_(-bound, bound)))
        # One module per hidden layer, as in MLP: a parametric activation (PReLU, Dice) learns its
        # own parameters in each layer instead of one set shared by all of them.
        self.activations = nn.ModuleList(make_activation(activation) for _ in hidden)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        # One BatchNorm1d over the (copy, unit) pairs of a layer normalises every copy's unit alone.
        self.norms = nn.ModuleList(nn.BatchNorm1d(n * width) for width in hidden) if batch_norm else None

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2 and x.shape[1] == self.in_dim:
            h = torch.einsum("bi,nio->bno", x, self.weights[0])  # one product serves all copies
        elif x.dim() == 3 and x.shape[1:] == (self.n, self.in_dim):
            h = torch.einsum("bni,nio->bno", x, self.weights[0])
        else:
            raise ValueError(
                f"ParallelMLP expects (batch, {self.in_dim}) or (batch, {self.n}, {self.in_dim}), got {tuple(x.shape)}"
            )
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            if layer > 0:
                h = torch.einsum("bni,nio->bno", h, w)
            h = h + b
            if layer < self.n_hidden:  # hidden layers get the activation; the out_dim layer does not
                if self.norms is not None:
                    h = self.norms[layer](h.reshape(h.shape[0], -1)).view_as(h)
                h = self.dropout(self.activations[layer](h))
        return h
