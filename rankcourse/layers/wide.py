"""The wide part of Wide & Deep (Cheng et al. 2016): a linear model over one-hot ids and cross products.

The wide part is a *generalised linear model* ``y = w^T phi(x) + b`` whose features ``phi(x)``
are the one-hot ids of every categorical field, hashed cross-product features of chosen field
pairs (``AND(city=Shanghai, taste=latte)``), and (here) the dense values. One weight per
active feature means it can memorise one specific co-occurrence, which an embedding-based
"wide" layer (as in torch-rechub and many tutorials) cannot.

Because the model is linear in its weights, the gradient of the binary cross-entropy with
respect to them is ``(p - y) * phi(x)``: only the weights of the active features move.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..schema import FeatureSchema
from ..checks import check_positive_int

__all__ = ["CrossProductHashing", "WideLinear"]

_PRIME = 2_147_483_647  # 2^31 - 1: products of two residues stay below 2^62, no int64 overflow


class CrossProductHashing(nn.Module):
    """Map each chosen pair of categorical fields to one cross-product bucket id.

    For a pair ``(a, b)`` with vocabularies ``V_a, V_b`` the combination ``id_a * V_b + id_b``
    identifies the co-occurrence exactly. If ``V_a * V_b <= n_buckets`` it is used as is (no
    collisions; the pair gets ``V_a * V_b`` buckets); otherwise it is hashed into ``n_buckets``
    buckets with a fixed universal hash ``((c mod P) * A + B) mod P mod n_buckets`` (different
    ``A, B`` per pair), so distinct combinations may share a bucket.

    Args:
        schema: the fields.
        pairs: field-name pairs, e.g. ``[("city", "taste")]``.
        n_buckets: the most buckets one pair gets.

    Shapes:
        ``sparse``: ``int64 (batch, n_fields)`` -> ``int64 (batch, n_pairs)``, bucket ids local to
        each pair: column ``p`` lies in ``[0, sizes[p])``.
    """

    def __init__(self, schema: FeatureSchema, pairs: Sequence[tuple[str, str]], n_buckets: int = 2**16) -> None:
        super().__init__()
        n_buckets = check_positive_int(n_buckets, "n_buckets")
        pairs = tuple(tuple(p) for p in pairs)
        for p in pairs:
            if len(p) != 2:
                raise ValueError(f"each cross pair must name two fields, got {p!r}")
            if p[0] == p[1]:
                raise ValueError(f"cross pair {p!r} crosses a field with itself")
        if len(set(pairs)) != len(pairs):
            raise ValueError(f"cross pairs repeat: {pairs}")
        self.schema = schema
        self.pairs = pairs
        self.n_buckets = n_buckets
        ia = [schema.sparse_index(a) for a, _ in pairs]  # KeyError names an unknown field
        ib = [schema.sparse_index(b) for _, b in pairs]
        vocab = schema.vocab_sizes
        products = [vocab[a] * vocab[b] for a, b in zip(ia, ib)]
        self.sizes: tuple[int, ...] = tuple(min(n, n_buckets) for n in products)
        gen = torch.Generator().manual_seed(12345)  # fixed: the same pairs always hash the same way
        n = len(pairs)
        self.register_buffer("index_a", torch.tensor(ia, dtype=torch.long), persistent=False)
        self.register_buffer("index_b", torch.tensor(ib, dtype=torch.long), persistent=False)
        self.register_buffer("vocab_b", torch.tensor([vocab[b] for b in ib], dtype=torch.long), persistent=False)
        self.register_buffer("exact", torch.tensor([p <= n_buckets for p in products], dtype=torch.bool), persistent=False)
        self.register_buffer("size", torch.tensor(self.sizes, dtype=torch.long), persistent=False)
        self.register_buffer("mult", torch.randint(1, _PRIME, (n,), generator=gen), persistent=False)
        self.register_buffer("add", torch.randint(0, _PRIME, (n,), generator=gen), persistent=False)

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)

    def combination(self, sparse: Tensor) -> Tensor:
        """The exact combination ``id_a * V_b + id_b`` of each pair, ``int64 (batch, n_pairs)``."""
        sparse = sparse.long()
        return sparse[:, self.index_a] * self.vocab_b + sparse[:, self.index_b]

    def forward(self, sparse: Tensor) -> Tensor:
        combo = self.combination(sparse)
        hashed = ((combo % _PRIME) * self.mult + self.add) % _PRIME % self.size
        return torch.where(self.exact, combo, hashed)

    def extra_repr(self) -> str:
        return f"pairs={list(self.pairs)}, n_buckets={self.n_buckets}"


class WideLinear(nn.Module):
    """A true linear (logistic-regression) model: one weight per id, per cross bucket, per dense field.

    ``logit = bias + sum_f w[id_f] + sum_p w[bucket_p] + dense · w_dense`` (Cheng et al. 2016, eq. 1).
    All id and bucket weights live in one vector ``weight`` so the whole sum is one lookup:
    rows ``[0, total_vocab)`` are the ids (field ``f`` from ``schema.offsets[f]``), then each
    cross pair's buckets. Weights start at zero (the model starts at ``p = sigmoid(bias)``).

    Args:
        schema: the fields.
        cross_pairs: categorical field pairs to cross (see :class:`CrossProductHashing`).
        n_buckets: the most buckets per cross pair.
        use_dense: include a linear term in the dense fields.
        sparse_grad: sparse gradients for ``weight`` (for SparseAdam / Adagrad-like optimisers).

    Shapes:
        ``dense (batch, n_dense)``, ``sparse (batch, n_fields)`` -> ``(batch,)``.

    Attributes:
        weight: ``(n_sparse_features, 1)``, ``n_sparse_features = total_vocab + sum(cross sizes)``.
        dense_weight: ``(n_dense,)`` (absent if ``use_dense=False``); bias: ``()``.
    """

    def __init__(
        self,
        schema: FeatureSchema,
        cross_pairs: Sequence[tuple[str, str]] = (),
        n_buckets: int = 2**16,
        use_dense: bool = True,
        sparse_grad: bool = False,
    ) -> None:
        super().__init__()
        self.schema = schema
        self.crosses = CrossProductHashing(schema, cross_pairs, n_buckets)
        self.use_dense = use_dense
        self.sparse_grad = sparse_grad
        self.n_sparse_features = schema.total_vocab + sum(self.crosses.sizes)
        self.weight = nn.Parameter(torch.zeros(self.n_sparse_features, 1))
        self.dense_weight = nn.Parameter(torch.zeros(schema.n_dense)) if use_dense else None
        self.bias = nn.Parameter(torch.zeros(()))
        cross_offsets = [schema.total_vocab]
        for s in self.crosses.sizes[:-1]:
            cross_offsets.append(cross_offsets[-1] + s)
        self.register_buffer("id_offsets", schema.offsets_tensor(), persistent=False)
        self.register_buffer(
            "cross_offsets", torch.tensor(cross_offsets[: self.crosses.n_pairs], dtype=torch.long), persistent=False
        )

    def active_indices(self, sparse: Tensor) -> Tensor:
        """Rows of ``weight`` that are active (equal to 1 in ``phi(x)``): ``int64 (batch, n_fields + n_pairs)``.

        Columns are the fields in schema order, then the cross pairs.
        """
        ids = sparse.long() + self.id_offsets
        if self.crosses.n_pairs == 0:
            return ids
        return torch.cat([ids, self.crosses(sparse) + self.cross_offsets], dim=1)

    def phi(self, dense: Tensor, sparse: Tensor) -> Tensor:
        """The explicit feature vector ``(batch, n_sparse_features [+ n_dense])``: one-hot ids and
        cross buckets, then the dense values. Materialises a wide matrix: for small examples only.
        ``logit = phi @ cat(weight[:, 0], dense_weight) + bias``."""
        idx = self.active_indices(sparse)
        onehot = torch.zeros(sparse.shape[0], self.n_sparse_features, dtype=self.weight.dtype, device=sparse.device)
        onehot.scatter_add_(1, idx, torch.ones_like(idx, dtype=onehot.dtype))
        return torch.cat([onehot, dense.to(onehot.dtype)], dim=1) if self.use_dense else onehot

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        logit = F.embedding(self.active_indices(sparse), self.weight, sparse=self.sparse_grad).sum(dim=(1, 2))
        if self.dense_weight is not None and self.schema.n_dense:
            logit = logit + dense.to(self.dense_weight.dtype) @ self.dense_weight
        return logit + self.bias

    def sparse_grad_parameters(self) -> list[nn.Parameter]:
        """The parameters whose gradients are sparse tensors (for ``SparseAdam``): ``weight`` if
        built with ``sparse_grad=True``."""
        return [self.weight] if self.sparse_grad else []

    def extra_repr(self) -> str:
        return f"n_sparse_features={self.n_sparse_features}, use_dense={self.use_dense}"
