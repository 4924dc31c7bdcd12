"""The second-order term of a factorization machine (Rendle 2010), used by FM and DeepFM (Guo et al. 2017)."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

__all__ = ["FMInteraction", "fm_pairwise_bruteforce"]


class FMInteraction(nn.Module):
    """Sum of all pairwise inner products of field embeddings, in O(F·D).

    ``sum_{i<j} <v_i, v_j> = 1/2 * sum_d [ (sum_i v_{i,d})^2 - sum_i v_{i,d}^2 ]`` (Rendle 2010,
    lemma 3.1), computed on the whole ``(batch, n_fields, dim)`` tensor at once.

    Shapes:
        ``v``: ``(batch, n_fields, dim)`` -> ``(batch,)``.
    """

    def forward(self, v: Tensor) -> Tensor:
        if v.dim() != 3:
            raise ValueError(f"FMInteraction expects (batch, n_fields, dim), got shape {tuple(v.shape)}")
        square_of_sum = v.sum(dim=1).square()
        sum_of_squares = v.square().sum(dim=1)
        return 0.5 * (square_of_sum - sum_of_squares).sum(dim=1)


def fm_pairwise_bruteforce(v: Tensor) -> Tensor:
    """The same quantity by the definition: a loop over all pairs ``i < j``. O(F²·D); for tests and notebooks.

    Shapes:
        ``v``: ``(batch, n_fields, dim)`` -> ``(batch,)``.
    """
    if v.dim() != 3:
        raise ValueError(f"expected (batch, n_fields, dim), got shape {tuple(v.shape)}")
    total = torch.zeros(v.shape[0], dtype=v.dtype, device=v.device)
    for i, j in itertools.combinations(range(v.shape[1]), 2):
        total = total + (v[:, i] * v[:, j]).sum(dim=1)
    return total
