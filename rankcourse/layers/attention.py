r"""Target attention over a behaviour sequence: DIN, its softmax variant, BST's transformer, DIEN's AUGRU.

All poolings share the interface of :mod:`rankcourse.layers.sequence`:
``forward(behaviours (B, T, E), candidate (B, E), mask (B, T) bool) -> (B, E)``.

* :class:`TargetAttentionPooling` -- DIN (Zhou et al. 2018): a small MLP, the *local activation
  unit*, scores each behaviour :math:`e_t` against the candidate :math:`v_A` from
  :math:`[e_t, v_A, e_t - v_A, e_t \odot v_A]`, and the user vector is
  :math:`\sum_t a(e_t, v_A)\, e_t` over real behaviours. The weights are *not* normalised by a
  softmax, so the vector keeps the intensity of the user's interest (how many relevant behaviours);
  ``normalise="softmax"`` is the variant for comparison.
* :class:`Dice` -- DIN's data-adaptive activation, beside PReLU.
* :class:`TransformerPooling` -- BST (Chen et al. 2019): one transformer block over the
  behaviours and the candidate with learned position embeddings; the candidate's output is the
  user vector.
* :class:`AUGRUCell` and :class:`InterestEvolution` -- DIEN's idea (Zhou et al. 2019): a GRU over
  the behaviours, then a GRU whose update gate is scaled by the attention score.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .mlp import make_activation
from .sequence import _check_pooling_input, masked_sum

__all__ = ["Dice", "LocalActivationUnit", "TargetAttentionPooling", "TransformerPooling",
           "AUGRUCell", "InterestEvolution", "NORMALISATIONS"]

NORMALISATIONS = ("none", "softmax")


class Dice(nn.Module):
    r"""Dice (Zhou et al. 2018, eq. 9): :math:`f(s) = p(s)\,s + (1 - p(s))\,\alpha s`,
    :math:`p(s) = \sigma\bigl((s - \mathrm{E}[s]) / \sqrt{\mathrm{Var}[s] + \epsilon}\bigr)`.

    PReLU switches at 0; Dice switches smoothly at the mean of its input. Mean and variance are per
    unit, over the real (masked-in) positions of the batch while training and running averages in
    eval mode, so padding never moves them.

    Shapes: ``x (..., H)``, optional ``mask`` of ``x.shape[:-1]`` -> ``(..., H)``.
    """

    def __init__(self, n_units: int, eps: float = 1e-8, momentum: float = 0.1) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(n_units))
        self.eps, self.momentum = eps, momentum
        self.register_buffer("running_mean", torch.zeros(n_units))
        self.register_buffer("running_var", torch.ones(n_units))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.training:
            rows = x.reshape(-1, x.shape[-1])
            if mask is not None:
                rows = rows[mask.reshape(-1)]
            if rows.shape[0] > 1:
                mean, var = rows.mean(0), rows.var(0, unbiased=False)
                with torch.no_grad():
                    self.running_mean.lerp_(mean, self.momentum)
                    self.running_var.lerp_(var, self.momentum)
            else:  # one row has no spread: fall back on the running statistics
                mean, var = self.running_mean, self.running_var
        else:
            mean, var = self.running_mean, self.running_var
        p = torch.sigmoid((x - mean) / torch.sqrt(var + self.eps))
        return p * x + (1 - p) * self.alpha * x


class LocalActivationUnit(nn.Module):
    """DIN's scorer: ``MLP([e_t, v, e_t - v, e_t * v]) -> score_t`` for each behaviour.

    Args:
        dim: width ``E`` of a behaviour and of the candidate.
        hidden: width of the hidden layer.
        activation: ``"dice"`` or any name :func:`~rankcourse.layers.make_activation` knows
            (``"prelu"``, as in the paper, by default).

    Shapes: ``behaviours (B, T, E)``, ``candidate (B, E)``, optional ``mask (B, T)`` -> ``(B, T)``.
    """

    def __init__(self, dim: int, hidden: int = 36, activation: str = "prelu") -> None:
        super().__init__()
        self.inner = nn.Linear(4 * dim, hidden)
        self.activation = Dice(hidden) if activation == "dice" else make_activation(activation)
        self.outer = nn.Linear(hidden, 1)

    def forward(self, behaviours: Tensor, candidate: Tensor, mask: Tensor | None = None) -> Tensor:
        v = candidate.unsqueeze(1).expand_as(behaviours)
        h = self.inner(torch.cat([behaviours, v, behaviours - v, behaviours * v], dim=-1))
        h = self.activation(h, mask) if isinstance(self.activation, Dice) else self.activation(h)
        return self.outer(h).squeeze(-1)


def normalised_weights(scores: Tensor, mask: Tensor, normalise: str) -> Tensor:
    """Attention weights ``(B, T)`` from scores: masked scores (``"none"``, DIN) or a softmax over
    the real positions (``"softmax"``); padded positions get weight 0, an empty history all zeros."""
    if normalise == "none":
        return scores * mask.to(scores.dtype)
    if normalise == "softmax":
        # A large finite fill, not -inf: an all-padding row then gives a uniform softmax (zeroed
        # by the mask below) instead of 0/0 = NaN.
        filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min / 2)
        return F.softmax(filled, dim=1) * mask.to(scores.dtype)
    raise ValueError(f"normalise must be one of {NORMALISATIONS}, got {normalise!r}")


class TargetAttentionPooling(nn.Module):
    """DIN's attention pooling: ``sum_t w_t e_t`` with ``w = LocalActivationUnit(e_t, v)`` (masked).

    Args:
        dim: width ``E``.
        hidden: hidden width of the local activation unit.
        activation: ``"prelu"`` or ``"dice"`` (or another activation name).
        normalise: ``"none"`` (DIN: weights are not normalised) or ``"softmax"``.

    Shapes: ``behaviours (B, T, E)``, ``candidate (B, E)``, ``mask (B, T)`` -> ``(B, E)``;
    :meth:`weights` gives the ``(B, T)`` weights.
    """

    def __init__(self, dim: int, hidden: int = 36, activation: str = "prelu", normalise: str = "none") -> None:
        super().__init__()
        if normalise not in NORMALISATIONS:
            raise ValueError(f"normalise must be one of {NORMALISATIONS}, got {normalise!r}")
        self.unit = LocalActivationUnit(dim, hidden, activation)
        self.normalise = normalise

    def weights(self, behaviours: Tensor, candidate: Tensor, mask: Tensor) -> Tensor:
        _check_pooling_input(behaviours, mask)
        return normalised_weights(self.unit(behaviours, candidate, mask), mask, self.normalise)

    def forward(self, behaviours: Tensor, candidate: Tensor, mask: Tensor) -> Tensor:
        return masked_sum(behaviours, self.weights(behaviours, candidate, mask), mask)


class TransformerPooling(nn.Module):
    """BST's block: self-attention over ``[e_1 .. e_T, v]`` plus position embeddings; returns the
    candidate's output (so it attends to the history, and the history to itself).

    Position embeddings make the result depend on the order of the behaviours (DIN's pooling
    does not). Padded positions are excluded as keys by ``src_key_padding_mask``.

    Args:
        dim: width ``E`` (a multiple of ``n_heads``).
        max_len: number of behaviour positions ``T``; the candidate takes position ``T``.
        n_heads, ff_dim, dropout: of the ``torch.nn.TransformerEncoderLayer``.

    Shapes: ``behaviours (B, T, E)``, ``candidate (B, E)``, ``mask (B, T)`` -> ``(B, E)``.
    """

    def __init__(self, dim: int, max_len: int, n_heads: int = 2, ff_dim: int | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"dim ({dim}) must be a multiple of n_heads ({n_heads})")
        self.max_len = max_len
        self.positions = nn.Parameter(0.01 * torch.randn(max_len + 1, dim))
        self.block = nn.TransformerEncoderLayer(dim, n_heads, ff_dim or 4 * dim, dropout,
                                                batch_first=True, norm_first=True)

    def forward(self, behaviours: Tensor, candidate: Tensor, mask: Tensor) -> Tensor:
        _check_pooling_input(behaviours, mask)
        if behaviours.shape[1] != self.max_len:
            raise ValueError(f"TransformerPooling was built for {self.max_len} positions, got {behaviours.shape[1]}")
        tokens = torch.cat([behaviours, candidate.unsqueeze(1)], dim=1) + self.positions
        keep = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        # Padded tokens are zeroed too, so their (ignored) outputs stay finite.
        tokens = tokens * keep.unsqueeze(-1).to(tokens.dtype)
        return self.block(tokens, src_key_padding_mask=~keep)[:, -1]


class AUGRUCell(nn.Module):
    r"""GRU with attentional update gate (DIEN, Zhou et al. 2019, eqs. 7-9 with AUGRU).

    :math:`\tilde u_t = a_t u_t`, :math:`h_t = (1 - \tilde u_t) \odot h_{t-1} + \tilde u_t \odot \tilde h_t`.
    Gates follow ``torch.nn.GRUCell`` (same parameter layout), whose gate ``z`` keeps the old
    state, so :math:`u_t = 1 - z_t`. With :math:`a_t = 1` this is exactly a GRU cell; with
    :math:`a_t = 0` the state does not move, which is how padding (weight 0) is skipped. With one
    scalar :math:`a_t` per row, :math:`(1 - a u) h + a u \tilde h = (1 - a) h + a\,\mathrm{GRU}(x, h)`;
    DIEN's AGRU instead replaces the gate by :math:`a_t`, losing its per-unit values.

    Shapes: ``x (B, I)``, ``h (B, H)``, ``attention (B,)`` -> ``(B, H)``.
    """

    def __init__(self, input_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.gru = nn.GRUCell(input_dim, hidden_dim)  # holds the parameters; its forward is not used

    def forward(self, x: Tensor, h: Tensor, attention: Tensor) -> Tensor:
        gi = F.linear(x, self.gru.weight_ih, self.gru.bias_ih)
        gh = F.linear(h, self.gru.weight_hh, self.gru.bias_hh)
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        update = 1 - torch.sigmoid(i_z + h_z)
        candidate_state = torch.tanh(i_n + r * h_n)
        u = attention.unsqueeze(-1) * update
        return (1 - u) * h + u * candidate_state


class InterestEvolution(nn.Module):
    """DIEN's interest extractor and evolving layer: GRU over the behaviours, attention of each
    interest state on the candidate (softmax over real positions of ``h_t W v``), then an
    :class:`AUGRUCell` pass; the final state is the user vector (zero for an empty history).

    Shapes: ``behaviours (B, T, E)``, ``candidate (B, E)``, ``mask (B, T)`` -> ``(B, H)``
    (``H = hidden_dim``, ``E`` by default).
    """

    def __init__(self, dim: int, hidden_dim: int | None = None) -> None:
        super().__init__()
        hidden_dim = hidden_dim or dim
        self.extractor = nn.GRU(dim, hidden_dim, batch_first=True)
        self.bilinear = nn.Linear(dim, hidden_dim, bias=False)
        self.evolution = AUGRUCell(hidden_dim, hidden_dim)
        self.hidden_dim = hidden_dim

    def attention(self, states: Tensor, candidate: Tensor, mask: Tensor) -> Tensor:
        """``(B, T)`` softmax weights of the interest states on the candidate (0 at padding)."""
        scores = torch.einsum("bth,bh->bt", states, self.bilinear(candidate))
        return normalised_weights(scores, mask, "softmax")

    def forward(self, behaviours: Tensor, candidate: Tensor, mask: Tensor) -> Tensor:
        _check_pooling_input(behaviours, mask)
        # Histories are padded at the end, so the causal GRU's states at real positions never
        # see padding; the AUGRU then skips padding through weight 0.
        states, _ = self.extractor(behaviours)
        weights = self.attention(states, candidate, mask)
        h = states.new_zeros(states.shape[0], self.hidden_dim)
        for t in range(states.shape[1]):
            h = self.evolution(states[:, t], h, weights[:, t])
        return h
