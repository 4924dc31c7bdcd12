r"""Scoring engines: one request's user part once, its N candidates' part per candidate.

Every engine is an ``nn.Module`` with the same signature,

    ``forward(user_dense (1, du), user_sparse (1, fu), item_dense (N, di), item_sparse (N, fi)) -> logits (N,)``,

so the scorer, ``torch.export`` and the ONNX exporter treat them alike. A batch of R requests
scored in one forward pass (what a GPU wants) passes ``owner``: the user tensors then have R rows,
the candidates of all requests are concatenated, and ``owner (N,)`` gives each candidate's request;
each request's user side is still computed once.

* :class:`NaiveEngine` copies the user's columns into N full rows and runs the model: the user's
  embeddings, FM terms and first MLP layer are computed N times.
* :class:`SharedDeepFM` computes the user side once. With user fields :math:`U` and item fields
  :math:`I` the FM term splits as :math:`\mathrm{FM}(U \cup I) = \mathrm{FM}(U) + \mathrm{FM}(I) +
  \langle \sum_U v, \sum_I v \rangle`, and the first MLP layer as :math:`W[e_u; e_i] + b = (W_u e_u + b)
  + W_i e_i`: the bracket is one vector for the whole request.
* :class:`SharedBehaviourRanker` (DIN, sum/mean pooling) embeds the history once. DIN's local
  activation unit reads :math:`[e_t, v, e_t - v, e_t \odot v]`; its first layer
  :math:`W_1 e_t + W_2 v + W_3 (e_t - v) + W_4 (e_t \odot v)` splits into :math:`(W_1 + W_3) e_t`
  (once per request), :math:`(W_2 - W_3) v` (once per candidate) and :math:`W_4 (e_t \odot v)`, which
  is one matrix product of the candidates with a ``(T·H, E)`` matrix built once per request.

:func:`make_engine` picks the shared engine when one fits the model, else the naive one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.attention import Dice, TargetAttentionPooling, normalised_weights
from ..layers.sequence import MeanPooling, SumPooling, masked_sum
from ..models import DeepFM
from ..models.sequence import BehaviourRanker
from ..schema import FeatureSchema

__all__ = ["RequestLayout", "NaiveEngine", "SharedDeepFM", "SharedBehaviourRanker", "make_engine",
           "UnsupportedModelError"]


class UnsupportedModelError(TypeError):
    """The shared engine cannot split this model into user and candidate parts."""


@dataclass(frozen=True)
class RequestLayout:
    """Which schema columns a request gives once (user) and which per candidate (item).

    Attributes are schema indices in increasing order, as :meth:`FeatureEncoder.encode` fills them.
    """

    schema: FeatureSchema
    user_dense: tuple[int, ...]
    item_dense: tuple[int, ...]
    user_sparse: tuple[int, ...]
    item_sparse: tuple[int, ...]

    @classmethod
    def from_encoder(cls, encoder, user_fields: Sequence[str]) -> "RequestLayout":
        item_fields = [f for f in encoder.field_names() if f not in set(user_fields)]
        ud, us = encoder.columns_of(user_fields)
        idd, isp = encoder.columns_of(item_fields)
        return cls(encoder.schema, tuple(ud), tuple(idd), tuple(us), tuple(isp))

    def inverse(self) -> tuple[Tensor, Tensor]:
        """Permutations that put ``cat([user, item])`` columns back into schema order."""
        def inv(first: Sequence[int], second: Sequence[int]) -> Tensor:
            order = list(first) + list(second)
            out = torch.empty(len(order), dtype=torch.long)
            out[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
            return out
        return inv(self.user_dense, self.item_dense), inv(self.user_sparse, self.item_sparse)


def _select_task(logits: Tensor, task: int) -> Tensor:
    return logits[:, task] if logits.dim() == 2 else logits


def _spread(per_request: Tensor, owner: Tensor | None) -> Tensor:
    """Each candidate's row of a per-request tensor; with one request (``owner`` None) it broadcasts."""
    return per_request if owner is None else per_request.index_select(0, owner)


class _SplitFirstLayer(nn.Module):
    """The first MLP layer's weight split by the user's and the candidates' columns.

    Gathering the columns costs as much as a small matrix product, so the two blocks are kept,
    transposed and contiguous, until the weight changes (new storage, dtype, device, or an in-place
    update, which bumps the tensor's version counter). Under ``torch.export`` they are rebuilt in
    the graph, where they become constants.
    """

    first: nn.Linear
    user_columns: Tensor
    item_columns: Tensor

    def first_layer_blocks(self) -> tuple[Tensor, Tensor]:
        """``(W_U^T (cols_U, H), W_I^T (cols_I, H))``."""
        weight = self.first.weight
        if torch.compiler.is_compiling() or torch.compiler.is_exporting():
            return weight[:, self.user_columns].T, weight[:, self.item_columns].T
        key = (weight.data_ptr(), weight._version, weight.dtype, weight.device)
        cached = getattr(self, "_blocks", None)
        if cached is None or cached[0] != key:
            cached = (key, (weight[:, self.user_columns].T.contiguous(),
                            weight[:, self.item_columns].T.contiguous()))
            self._blocks = cached  # one assignment: safe when server threads share the engine
        return cached[1]


class NaiveEngine(nn.Module):
    """Score N candidates as N full rows: the user's columns copied into every row."""

    supports_batch = True  #: takes ``owner``: several requests in one forward pass

    def __init__(self, model: nn.Module, layout: RequestLayout, task: int = 0) -> None:
        super().__init__()
        # A shallow copy shares the weights; its own ``check_values = False`` skips the per-request
        # value scan (the encoder only makes ids in range) without touching the caller's model,
        # and without a flag toggled per call that concurrent requests would race on.
        self.model, self.task = copy.copy(model), task
        if hasattr(self.model, "check_values"):
            self.model.check_values = False
        dense_perm, sparse_perm = layout.inverse()
        self.register_buffer("dense_perm", dense_perm, persistent=False)
        self.register_buffer("sparse_perm", sparse_perm, persistent=False)

    def full_rows(self, user_dense: Tensor, user_sparse: Tensor, item_dense: Tensor,
                  item_sparse: Tensor, owner: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The N rows in schema order: ``dense (N, n_dense)``, ``sparse (N, n_fields)``."""
        n = item_sparse.shape[0]
        if owner is not None:
            user_dense, user_sparse = user_dense.index_select(0, owner), user_sparse.index_select(0, owner)
        # index_select, not ``x[:, perm]``: with torch 2.13's ONNX exporter and onnxruntime 1.32,
        # ``x[:, perm] @ w`` (w a vector) came out wrong in onnxruntime (measured); this form is exact.
        dense = torch.cat([user_dense.expand(n, -1), item_dense], 1).index_select(1, self.dense_perm)
        sparse = torch.cat([user_sparse.expand(n, -1), item_sparse], 1).index_select(1, self.sparse_perm)
        return dense, sparse

    def forward(self, user_dense: Tensor, user_sparse: Tensor, item_dense: Tensor, item_sparse: Tensor,
                owner: Tensor | None = None) -> Tensor:
        dense, sparse = self.full_rows(user_dense, user_sparse, item_dense, item_sparse, owner)
        return _select_task(self.model(dense, sparse), self.task)


def _split_first_layer(mlp: nn.Module) -> tuple[nn.Linear, nn.Module, nn.Module]:
    """``(first linear, what follows it in the first block, the remaining layers)`` of an MLP."""
    first = mlp.layers[0]
    rest = nn.Sequential(*list(mlp.layers)[1:])
    if isinstance(first, nn.Linear):
        return first, nn.Identity(), rest
    if getattr(first, "skip", None) is not None:
        raise UnsupportedModelError("a residual MLP's skip connection reads the whole input row")
    return first.body[0], nn.Sequential(*list(first.body)[1:]), rest


def _columns(blocks: Sequence[tuple[int, int]]) -> Tensor:
    """Concatenated ``range(start, stop)`` of each block."""
    parts = [torch.arange(a, b) for a, b in blocks]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


class SharedDeepFM(_SplitFirstLayer):
    """DeepFM with the user side computed once per request (see the module's docstring).

    Shapes: ``user_dense (1, du)``, ``user_sparse (1, fu)``, ``item_dense (N, di)``,
    ``item_sparse (N, fi)`` -> logits ``(N,)``, equal to ``model`` on the N full rows.
    """

    supports_batch = True

    def __init__(self, model: DeepFM, layout: RequestLayout) -> None:
        super().__init__()
        if not isinstance(model, DeepFM):
            raise UnsupportedModelError(f"SharedDeepFM needs a DeepFM, got {type(model).__name__}")
        if model.linear.crosses.n_pairs:
            raise UnsupportedModelError("cross-product features mix user and item ids")
        self.model = model
        self.first, self.after_first, self.rest = _split_first_layer(model.dnn)
        offsets = torch.tensor(layout.schema.offsets, dtype=torch.long)
        self.register_buffer("user_offsets", offsets[list(layout.user_sparse)], persistent=False)
        self.register_buffer("item_offsets", offsets[list(layout.item_sparse)], persistent=False)
        self.register_buffer("user_dense_index", torch.tensor(layout.user_dense, dtype=torch.long), persistent=False)
        self.register_buffer("item_dense_index", torch.tensor(layout.item_dense, dtype=torch.long), persistent=False)
        d, n_fields = model.embedding.dim, layout.schema.n_fields
        self.register_buffer("user_columns", _columns(
            [(f * d, (f + 1) * d) for f in layout.user_sparse] + [(n_fields * d + j, n_fields * d + j + 1)
                                                                  for j in layout.user_dense]), persistent=False)
        self.register_buffer("item_columns", _columns(
            [(f * d, (f + 1) * d) for f in layout.item_sparse] + [(n_fields * d + j, n_fields * d + j + 1)
                                                                  for j in layout.item_dense]), persistent=False)

    def _first_order(self, dense: Tensor, ids: Tensor, dense_index: Tensor) -> Tensor:
        linear = self.model.linear
        out = F.embedding(ids, linear.weight).sum(dim=(1, 2))
        if linear.dense_weight is not None and dense.shape[1]:
            out = out + dense.to(linear.weight.dtype) @ linear.dense_weight[dense_index]
        return out

    @staticmethod
    def _fm_within(v: Tensor) -> tuple[Tensor, Tensor]:
        """``(sum of the fields' vectors (B, D), FM term among these fields (B,))``."""
        total = v.sum(1)
        return total, 0.5 * (total.square() - v.square().sum(1)).sum(-1)

    def forward(self, user_dense: Tensor, user_sparse: Tensor, item_dense: Tensor, item_sparse: Tensor,
                owner: Tensor | None = None) -> Tensor:
        table = self.model.embedding.weight
        user_ids, item_ids = user_sparse + self.user_offsets, item_sparse + self.item_offsets
        v_user, v_item = F.embedding(user_ids, table), F.embedding(item_ids, table)      # (1, fu, D), (N, fi, D)
        sum_user, fm_user = self._fm_within(v_user)
        sum_item, fm_item = self._fm_within(v_item)
        fm = _spread(fm_user, owner) + fm_item + (sum_item * _spread(sum_user, owner)).sum(-1)
        first_order = (_spread(self._first_order(user_dense, user_ids, self.user_dense_index), owner)
                       + self._first_order(item_dense, item_ids, self.item_dense_index) + self.model.linear.bias)
        if self.model.dnn_embedding is not None:
            dnn_table = self.model.dnn_embedding.weight
            v_user, v_item = F.embedding(user_ids, dnn_table), F.embedding(item_ids, dnn_table)
        weight = self.first.weight
        x_user = torch.cat([v_user.flatten(1), user_dense.to(weight.dtype)], 1)
        x_item = torch.cat([v_item.flatten(1), item_dense.to(weight.dtype)], 1)
        w_user, w_item = self.first_layer_blocks()
        h_user = x_user @ w_user + self.first.bias                                       # (R, H): once
        h = self.after_first(x_item @ w_item + _spread(h_user, owner))                   # (N, H)
        return first_order + fm + self.rest(h).squeeze(-1)


class SharedBehaviourRanker(_SplitFirstLayer):
    """DIN (and sum/mean pooling) with the history and the user fields embedded once per request.

    The history fields must be user fields and their targets (the candidate item and its
    category) item fields. Shapes as :class:`SharedDeepFM`.
    """

    supports_batch = True

    def __init__(self, model: BehaviourRanker, layout: RequestLayout) -> None:
        super().__init__()
        if not isinstance(model, BehaviourRanker):
            raise UnsupportedModelError(f"SharedBehaviourRanker needs a BehaviourRanker, got {type(model).__name__}")
        if not isinstance(model.pooling, (TargetAttentionPooling, SumPooling, MeanPooling)):
            raise UnsupportedModelError(f"pooling {model.pooling_name!r} mixes history and candidate in depth")
        emb = model.embedding
        in_user = {c: j for j, c in enumerate(layout.user_sparse)}
        in_item = {c: j for j, c in enumerate(layout.item_sparse)}
        seq_cols = emb.sequence_columns.tolist()
        if any(c not in in_user for row in seq_cols for c in row):
            raise UnsupportedModelError("the history must be given once, with the user fields")
        if any(c not in in_item for c in emb.target_columns.tolist()):
            raise UnsupportedModelError("the history's target fields must be given with each candidate")
        self.model = model
        self.first, self.after_first, self.rest = _split_first_layer(model.mlp)
        other = emb.other_columns.tolist()
        fo, d, e = len(other), emb.dim, emb.behaviour_dim
        other_offsets = emb.fields.offsets.tolist() if emb.fields is not None else []
        user_other = [k for k, c in enumerate(other) if c in in_user]
        item_other = [k for k, c in enumerate(other) if c in in_item]
        self._buffer("user_other_pos", [in_user[other[k]] for k in user_other])
        self._buffer("user_other_offsets", [other_offsets[k] for k in user_other])
        self._buffer("item_other_pos", [in_item[other[k]] for k in item_other])
        self._buffer("item_other_offsets", [other_offsets[k] for k in item_other])
        self._buffer("history_pos", [[in_user[c] for c in row] for row in seq_cols])
        self._buffer("target_pos", [in_item[c] for c in emb.target_columns.tolist()])
        dense_start = fo * d + 2 * e
        self._buffer("user_columns", _columns([(k * d, (k + 1) * d) for k in user_other]
                                              + [(dense_start + j, dense_start + j + 1) for j in layout.user_dense]))
        self._buffer("item_columns", _columns([(k * d, (k + 1) * d) for k in item_other] + [(fo * d, fo * d + 2 * e)]
                                              + [(dense_start + j, dense_start + j + 1) for j in layout.item_dense]))

    def _buffer(self, name: str, values: list | Tensor) -> None:
        """An int64 index buffer (not saved in a state dict: it is rebuilt from the layout)."""
        tensor = values if isinstance(values, Tensor) else torch.tensor(values, dtype=torch.long)
        self.register_buffer(name, tensor.long() if tensor.numel() else tensor.long().reshape(0), persistent=False)

    def _fields(self, sparse: Tensor, pos: Tensor, offsets: Tensor) -> Tensor:
        emb = self.model.embedding
        if emb.fields is None or pos.numel() == 0:
            return sparse.new_zeros((sparse.shape[0], 0, emb.dim), dtype=emb.tables[0].weight.dtype)
        return F.embedding(sparse[:, pos] + offsets, emb.fields.weight)

    def _pool(self, behaviours: Tensor, candidate: Tensor, mask: Tensor) -> Tensor:
        """``(N, E)`` pooled history for each candidate; ``behaviours (T, E)``, ``mask (T,)``."""
        pooling = self.model.pooling
        n = candidate.shape[0]
        if not isinstance(pooling, TargetAttentionPooling):
            once = pooling(behaviours.unsqueeze(0), None, mask.unsqueeze(0))          # (1, E): once
            return once.expand(n, -1)
        unit, e = pooling.unit, behaviours.shape[1]
        w = unit.inner.weight                                                          # (H, 4E)
        w1, w2, w3, w4 = w[:, :e], w[:, e:2 * e], w[:, 2 * e:3 * e], w[:, 3 * e:]
        per_behaviour = behaviours @ (w1 + w3).T + unit.inner.bias                     # (T, H): once
        per_candidate = candidate @ (w2 - w3).T                                        # (N, H)
        product = (w4.unsqueeze(0) * behaviours.unsqueeze(1)).reshape(-1, e)           # (T*H, E): once
        hidden = per_behaviour + per_candidate.unsqueeze(1) + (candidate @ product.T).unflatten(1, (-1, w.shape[0]))
        act = unit.activation
        hidden = act(hidden, None) if isinstance(act, Dice) else act(hidden)
        scores = unit.outer(hidden).squeeze(-1)                                        # (N, T)
        masks = mask.unsqueeze(0).expand(n, -1)
        weights = normalised_weights(scores, masks, pooling.normalise)
        return masked_sum(behaviours.unsqueeze(0).expand(n, -1, -1), weights, masks)

    def _pool_batch(self, history: Tensor, candidate: Tensor, owner: Tensor) -> Tensor:
        """``(N, E)`` pooled histories of a batch of requests; ``history (R, S, T)``, ``owner (N,)``."""
        emb, pooling = self.model.embedding, self.model.pooling
        behaviours = torch.cat([t(history[:, s]) for s, t in enumerate(emb.tables)], -1)  # (R, T, E): once
        mask = history[:, 0] != emb.padding_id                                         # (R, T)
        if not isinstance(pooling, TargetAttentionPooling):
            return pooling(behaviours, None, mask).index_select(0, owner)
        unit, e = pooling.unit, behaviours.shape[-1]
        w = unit.inner.weight
        w1, w2, w3, w4 = w[:, :e], w[:, e:2 * e], w[:, 2 * e:3 * e], w[:, 3 * e:]
        per_behaviour = (behaviours @ (w1 + w3).T + unit.inner.bias).index_select(0, owner)  # (N, T, H)
        mine, masks = behaviours.index_select(0, owner), mask.index_select(0, owner)  # (N, T, E), (N, T)
        hidden = per_behaviour + (candidate @ (w2 - w3).T).unsqueeze(1) + (mine * candidate.unsqueeze(1)) @ w4.T
        act = unit.activation
        hidden = act(hidden, None) if isinstance(act, Dice) else act(hidden)
        weights = normalised_weights(unit.outer(hidden).squeeze(-1), masks, pooling.normalise)
        return masked_sum(mine, weights, masks)

    def forward(self, user_dense: Tensor, user_sparse: Tensor, item_dense: Tensor, item_sparse: Tensor,
                owner: Tensor | None = None) -> Tensor:
        emb = self.model.embedding
        candidate = torch.cat([t(item_sparse[:, self.target_pos[s]]) for s, t in enumerate(emb.tables)], -1)
        if owner is None:
            history = user_sparse[0, self.history_pos]                                 # (S, T)
            behaviours = torch.cat([t(history[s]) for s, t in enumerate(emb.tables)], -1)  # (T, E): once
            pooled = self._pool(behaviours, candidate, history[0] != emb.padding_id)
        else:
            pooled = self._pool_batch(user_sparse[:, self.history_pos], candidate, owner)
        f_user = self._fields(user_sparse, self.user_other_pos, self.user_other_offsets)  # (1, Fu, D)
        f_item = self._fields(item_sparse, self.item_other_pos, self.item_other_offsets)  # (N, Fi, D)
        weight = self.first.weight
        x_user = torch.cat([f_user.flatten(1), user_dense.to(weight.dtype)], 1)
        x_item = torch.cat([f_item.flatten(1), candidate, pooled, item_dense.to(weight.dtype)], 1)
        w_user, w_item = self.first_layer_blocks()
        h_user = x_user @ w_user + self.first.bias
        h_user = _spread(h_user, owner)
        logit = self.rest(self.after_first(x_item @ w_item + h_user)).squeeze(-1)
        if self.model.fm is not None:
            d, n = emb.dim, candidate.shape[0]
            f_user = f_user.expand(n, -1, -1) if owner is None else f_user.index_select(0, owner)
            stacked = torch.cat([f_user, f_item, candidate.unflatten(1, (-1, d)),
                                 pooled.unflatten(1, (-1, d))], 1)
            logit = logit + self.model.fm(stacked)
        return logit


def make_engine(model: nn.Module, layout: RequestLayout, kind: str = "shared", task: int = 0) -> nn.Module:
    """``"naive"``: :class:`NaiveEngine`; ``"shared"``: the shared engine of the model's class, or the
    naive one when none fits (the engine's class name says which was chosen)."""
    if kind == "naive":
        return NaiveEngine(model, layout, task)
    if kind != "shared":
        raise ValueError(f"kind must be 'shared' or 'naive', got {kind!r}")
    try:
        if isinstance(model, DeepFM):
            return SharedDeepFM(model, layout)
        if isinstance(model, BehaviourRanker):
            return SharedBehaviourRanker(model, layout)
    except UnsupportedModelError:
        pass
    return NaiveEngine(model, layout, task)
