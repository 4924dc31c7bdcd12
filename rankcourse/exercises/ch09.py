r"""Self-checks for chapter 9 (behaviour sequences and target attention).

* :func:`check_din_pooling` -- DIN's pooling with a given scorer (the local activation unit):
  ``din_pooling(behaviours (B, T, E), candidate (B, E), mask (B, T), scorer) -> (B, E)``.
* :func:`check_minibatch_l2` -- DIN's mini-batch aware L2 penalty on an embedding table.
* :func:`check_gauc` -- GAUC by hand: per-user AUC weighted by impressions.
* :func:`check_augru_step` -- one step of DIEN's AUGRU from a ``torch.nn.GRUCell``'s weights.

Each check runs the student's code on small cases against a reference and, when the answer is
wrong, compares it with the typical mistakes and names the one it matches.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from ..group_metrics import gauc
from ..layers.attention import AUGRUCell
from ._calling import call_student
from ._seeding import case_seed, numpy_rng, torch_generator

__all__ = ["check_din_pooling", "check_minibatch_l2", "check_gauc", "check_augru_step",
           "reference_din_pooling", "reference_minibatch_l2"]


def _diagnose(got: Tensor, wrong: list[tuple[str, Callable[[], Tensor]]]) -> str:
    for text, make in wrong:
        try:
            value = make()
        except Exception:  # noqa: BLE001 - a mistake that cannot be formed for these shapes
            continue
        if value.shape == got.shape and torch.allclose(got.double(), value.double(), atol=1e-6, rtol=1e-5):
            return " It looks like " + text + "."
    return ""


# ----------------------------------------------------------------------------- DIN pooling
def reference_din_pooling(behaviours: Tensor, candidate: Tensor, mask: Tensor, scorer: nn.Module) -> Tensor:
    """``sum_t mask_t * scorer([e_t, v, e_t - v, e_t * v])_t * e_t`` (no softmax)."""
    v = candidate.unsqueeze(1).expand_as(behaviours)
    scores = scorer(torch.cat([behaviours, v, behaviours - v, behaviours * v], -1)).squeeze(-1)
    return ((scores * mask.to(scores.dtype)).unsqueeze(-1) * behaviours).sum(1)


def _din_cases(seed: int | None = None) -> list[tuple[str, Tensor, Tensor, Tensor]]:
    gen = torch_generator(8, seed)  # a grading seed draws other values
    out = []
    for case, batch, length, lengths in [("4 users, histories of 5, 2, 1 and 0", 4, 5, [5, 2, 1, 0]),
                                         ("batch of one, full history", 1, 3, [3])]:
        h = torch.randn(batch, length, 6, generator=gen, dtype=torch.float64)
        c = torch.randn(batch, 6, generator=gen, dtype=torch.float64)
        mask = torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]
        out.append((case, h, c, mask))
    return out


def check_din_pooling(din_pooling: Callable[[Tensor, Tensor, Tensor, nn.Module], Tensor], *,
                      seed: int | None = None) -> None:
    """Check ``din_pooling(behaviours, candidate, mask, scorer) -> (B, E)``.

    ``scorer`` maps ``(B, T, 4E)`` features ``[e_t, v, e_t - v, e_t * v]`` (in that order) to
    ``(B, T, 1)`` scores. Padded positions (mask False) must get weight 0; the weights are not
    normalised; an empty history gives the zero vector.
    """
    torch.manual_seed(case_seed(0, seed))  # the scorer: the public one, or a hidden one
    scorer = nn.Sequential(nn.Linear(24, 8), nn.PReLU(), nn.Linear(8, 1)).double().requires_grad_(False)
    for case, h, c, mask in _din_cases(seed):
        got = call_student(din_pooling, (h, c, mask, scorer), case)
        got = got.detach() if isinstance(got, Tensor) else got
        want = reference_din_pooling(h, c, mask, scorer)
        if not isinstance(got, Tensor) or got.shape != want.shape:
            shape = tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__
            raise AssertionError(f"on case {case!r} you returned {shape}; expected shape {tuple(want.shape)} "
                                 "(one vector per user: sum over the history axis)")
        if torch.allclose(got.double(), want, atol=1e-6, rtol=1e-5):
            continue
        v = c.unsqueeze(1).expand_as(h)
        feats = torch.cat([h, v, h - v, h * v], -1)
        scores = scorer(feats).squeeze(-1)
        m = mask.to(scores.dtype)
        filled = scores.masked_fill(~mask, -1e9)
        wrong = [
            ("the mask is not applied: padded positions still add their weighted embedding",
             lambda: (scores.unsqueeze(-1) * h).sum(1)),
            ("the weights go through a softmax over the history. DIN keeps them unnormalised so that the "
             "pooled vector also says HOW MUCH the user cares about the candidate",
             lambda: ((torch.softmax(filled, 1) * m).unsqueeze(-1) * h).sum(1)),
            ("the features are in another order: use [e_t, v, e_t - v, e_t * v]",
             lambda: (((scorer(torch.cat([v, h, h - v, h * v], -1)).squeeze(-1)) * m).unsqueeze(-1) * h).sum(1)),
            ("the difference is v - e_t instead of e_t - v",
             lambda: (((scorer(torch.cat([h, v, v - h, h * v], -1)).squeeze(-1)) * m).unsqueeze(-1) * h).sum(1)),
            ("you return the weighted sum of the CANDIDATE, not of the behaviours",
             lambda: ((scores * m).unsqueeze(-1) * v).sum(1)),
            ("the mask is applied after the sum or as a mean: divide by nothing, the weights are the scores",
             lambda: ((scores * m).unsqueeze(-1) * h).sum(1) / m.sum(1, keepdim=True).clamp(min=1)),
        ]
        err = float((got.double() - want).abs().max())
        raise AssertionError(f"din_pooling is off by up to {err:.3g} on case {case!r}.{_diagnose(got, wrong)}")
    print("check_din_pooling: matches the reference on every case; padding and empty histories are handled.")


# ----------------------------------------------------------------------------- mini-batch aware L2
def reference_minibatch_l2(table: Tensor, batch_ids: Tensor, counts: Tensor) -> Tensor:
    r"""DIN's mini-batch aware L2 (Zhou et al. 2018, eq. 5) for one batch:
    :math:`\sum_{j \in \text{batch}} \lVert w_j \rVert^2 / n_j`, each id once, ``n_j`` its count in the
    whole training set."""
    ids = torch.unique(batch_ids.reshape(-1))
    return (table[ids] ** 2).sum(1).div(counts[ids].to(table.dtype)).sum()


def check_minibatch_l2(minibatch_l2: Callable[[Tensor, Tensor, Tensor], Tensor], *,
                       seed: int | None = None) -> None:
    """Check ``minibatch_l2(table (V, D), batch_ids (B, k) int64, counts (V,)) -> scalar``; ``seed``
    (for grading) draws another table and other counts."""
    gen = torch_generator(9, seed)
    table = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    counts = torch.randint(1, 50, (10,), generator=gen)
    cases = [("ids with repeats", torch.tensor([[1, 4], [4, 7], [1, 1]])),
             ("one row, one id", torch.tensor([[9]]))]
    for case, ids in cases:
        got = call_student(minibatch_l2, (table, ids, counts), case)
        want = reference_minibatch_l2(table, ids, counts)
        got_t = torch.as_tensor(got, dtype=torch.float64)
        if got_t.numel() == 1 and abs(float(got_t) - float(want)) <= 1e-8 * max(1.0, abs(float(want))):
            continue
        flat = ids.reshape(-1)
        wrong = [
            ("an id that occurs several times in the batch is counted several times: count each id once "
             "(alpha_mj is 1 if id j occurs in batch m)",
             lambda: ((table[flat] ** 2).sum(1) / counts[flat]).sum()),
            ("the penalty covers the whole table. That is the cost DIN avoids: with millions of rows, an L2 "
             "over all of them at every step touches every row",
             lambda: ((table ** 2).sum(1) / counts).sum()),
            ("the division by n_j is missing: frequent ids should be penalised less per batch, since they "
             "appear in many batches",
             lambda: (table[torch.unique(flat)] ** 2).sum()),
        ]
        diag = _diagnose(got_t.reshape(()), [(t, lambda m=m: m().reshape(())) for t, m in wrong])
        raise AssertionError(f"minibatch_l2 gave {float(got_t.reshape(-1)[0]):.6g} on case {case!r}; "
                             f"expected {float(want):.6g}.{diag}")
    print("check_minibatch_l2: matches the mini-batch aware penalty on every case.")


# ----------------------------------------------------------------------------- GAUC
def check_gauc(my_gauc: Callable[[np.ndarray, np.ndarray, np.ndarray], float], *, seed: int | None = None) -> None:
    """Check ``my_gauc(y, p, users) -> float``: per-user AUC weighted by the user's impressions,
    over users with both a click and a non-click."""
    from sklearn.metrics import roc_auc_score

    rng = numpy_rng(10, seed)  # a grading seed draws other labels and scores
    users = np.repeat(np.arange(6), [2, 3, 5, 8, 1, 13])
    y = (rng.random(users.size) < 0.4).astype(float)
    y[users == 2] = 0.0  # a user with no click
    y[users == 0] = [1.0, 0.0]
    p = rng.random(users.size) + 0.4 * y
    got = call_student(my_gauc, (y.copy(), p.copy(), users.copy()), "six users, one without clicks")
    want = gauc(y, p, users)
    if isinstance(got, (int, float, np.floating)) and abs(float(got) - want) < 1e-9:
        print("check_gauc: matches the impression-weighted mean of per-user AUCs.")
        return
    aucs, sizes = [], []
    for u in np.unique(users):
        sel = users == u
        if 0 < y[sel].sum() < sel.sum():
            aucs.append(roc_auc_score(y[sel], p[sel]))
            sizes.append(sel.sum())
    wrong = {
        "the plain mean of the per-user AUCs: weight each user by their number of impressions": np.mean(aucs),
        "the AUC over all impressions together, which also compares users with each other":
            roc_auc_score(y, p),
        "users with one class only are counted (with AUC 0.5): leave them out, their AUC is undefined":
            np.average(aucs + [0.5] * (6 - len(aucs)),
                       weights=sizes + [int((users == u).sum()) for u in np.unique(users)
                                        if not 0 < y[users == u].sum() < (users == u).sum()]),
    }
    hint = next((f" It looks like {k}." for k, v in wrong.items()
                 if isinstance(got, (int, float, np.floating)) and abs(float(got) - v) < 1e-9), "")
    raise AssertionError(f"my_gauc returned {got!r}; expected {want:.6f}.{hint}")


# ----------------------------------------------------------------------------- AUGRU
def check_augru_step(augru_step: Callable[[Tensor, Tensor, Tensor, nn.GRUCell], Tensor], *,
                     seed: int | None = None) -> None:
    """Check ``augru_step(x (B, I), h (B, H), attention (B,), cell: nn.GRUCell) -> (B, H)``: DIEN's
    AUGRU with the GRU cell's weights, where the attention scales the update gate."""
    torch.manual_seed(0)
    ref = AUGRUCell(3, 4).double()
    cell = ref.gru
    gen = torch_generator(11, seed)  # a grading seed draws other inputs
    x = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    h = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    a = torch.tensor([0.0, 0.25, 0.5, 1.0, 0.9], dtype=torch.float64)
    with torch.no_grad():
        got = call_student(augru_step, (x, h, a, cell), "five rows, attention 0 .. 1")
        want = ref(x, h, a)
        if isinstance(got, Tensor) and got.shape == want.shape and torch.allclose(got, want, atol=1e-8):
            print("check_augru_step: matches AUGRU; attention 0 keeps the state, attention 1 is a GRU step.")
            return
        gi = nn.functional.linear(x, cell.weight_ih, cell.bias_ih).chunk(3, -1)
        gh = nn.functional.linear(h, cell.weight_hh, cell.bias_hh).chunk(3, -1)
        z = torch.sigmoid(gi[1] + gh[1])
        n = torch.tanh(gi[2] + torch.sigmoid(gi[0] + gh[0]) * gh[2])
        gru = cell(x, h)  # the plain GRU step, for the mistake that scales its output
        wrong = [
            ("the attention replaces the update gate, h' = (1 - a) h + a h~: that is DIEN's AGRU, which "
             "loses the per-unit update gate; AUGRU multiplies the gate by a",
             lambda: (1 - a[:, None]) * h + a[:, None] * n),
            ("torch's z gate is used as the update gate: in nn.GRUCell, z weighs the OLD state "
             "(h' = (1 - z) n + z h), so the update gate is u = 1 - z",
             lambda: (1 - a[:, None] * z) * h + a[:, None] * z * n),
            ("the attention multiplies the output: h' = a GRU(x, h)", lambda: a[:, None] * gru),
        ]
        shape = tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__
        if not isinstance(got, Tensor) or got.shape != want.shape:
            raise AssertionError(f"augru_step returned {shape}; expected shape {tuple(want.shape)}")
        raise AssertionError(f"augru_step is off by {float((got - want).abs().max()):.3g}.{_diagnose(got, wrong)}")
