"""The chapter-8 self-checks accept correct answers and name the typical mistakes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from rankcourse.exercises.ch09 import (check_augru_step, check_din_pooling, check_gauc, check_minibatch_l2,
                                       reference_din_pooling, reference_minibatch_l2)
from rankcourse.group_metrics import gauc


def _features(h, c):
    v = c.unsqueeze(1).expand_as(h)
    return v, torch.cat([h, v, h - v, h * v], -1)


def test_din_pooling_check_accepts_the_reference():
    check_din_pooling(reference_din_pooling)


@pytest.mark.parametrize("mistake, message", [
    ("no_mask", "mask is not applied"),
    ("softmax", "softmax over the history"),
    ("order", "another order"),
    ("mean", "as a mean"),
])
def test_din_pooling_check_names_the_mistake(mistake, message):
    def pooling(h, c, mask, scorer):
        v, feats = _features(h, c)
        if mistake == "order":
            feats = torch.cat([v, h, h - v, h * v], -1)
        s = scorer(feats).squeeze(-1)
        m = mask.to(s.dtype)
        if mistake == "softmax":
            w = torch.softmax(s.masked_fill(~mask, -1e9), 1) * m
        else:
            w = s if mistake == "no_mask" else s * m
        out = (w.unsqueeze(-1) * h).sum(1)
        return out / m.sum(1, keepdim=True).clamp(min=1) if mistake == "mean" else out

    with pytest.raises(AssertionError, match=message):
        check_din_pooling(pooling)


def test_din_pooling_check_reports_a_wrong_shape():
    with pytest.raises(AssertionError, match="expected shape"):
        check_din_pooling(lambda h, c, mask, scorer: h)


def test_minibatch_l2_check_accepts_the_reference_and_names_mistakes():
    check_minibatch_l2(reference_minibatch_l2)
    with pytest.raises(AssertionError, match="counted several times"):
        check_minibatch_l2(lambda t, ids, n: ((t[ids.reshape(-1)] ** 2).sum(1) / n[ids.reshape(-1)]).sum())
    with pytest.raises(AssertionError, match="whole table"):
        check_minibatch_l2(lambda t, ids, n: ((t ** 2).sum(1) / n).sum())
    with pytest.raises(AssertionError, match="division by n_j is missing"):
        check_minibatch_l2(lambda t, ids, n: (t[torch.unique(ids)] ** 2).sum())


def _per_user(y, p, users, weighted=True, keep_one_class=False):
    aucs, sizes = [], []
    for u in np.unique(users):
        sel = users == u
        if 0 < y[sel].sum() < sel.sum():
            aucs.append(roc_auc_score(y[sel], p[sel]))
        elif keep_one_class:
            aucs.append(0.5)
        else:
            continue
        sizes.append(sel.sum())
    return float(np.average(aucs, weights=sizes if weighted else None))


def test_gauc_check_accepts_a_correct_answer_and_names_mistakes():
    check_gauc(gauc)
    check_gauc(_per_user)
    with pytest.raises(AssertionError, match="plain mean"):
        check_gauc(lambda y, p, u: _per_user(y, p, u, weighted=False))
    with pytest.raises(AssertionError, match="AUC over all impressions"):
        check_gauc(lambda y, p, u: roc_auc_score(y, p))
    with pytest.raises(AssertionError, match="one class only are counted"):
        check_gauc(lambda y, p, u: _per_user(y, p, u, keep_one_class=True))


def _augru(kind):
    def step(x, h, a, cell):
        gi = torch.nn.functional.linear(x, cell.weight_ih, cell.bias_ih).chunk(3, -1)
        gh = torch.nn.functional.linear(h, cell.weight_hh, cell.bias_hh).chunk(3, -1)
        z = torch.sigmoid(gi[1] + gh[1])
        n = torch.tanh(gi[2] + torch.sigmoid(gi[0] + gh[0]) * gh[2])
        u = a[:, None] * (z if kind == "z_as_update" else 1 - z)
        if kind == "agru":
            return (1 - a[:, None]) * h + a[:, None] * n
        return (1 - u) * h + u * n
    return step


def test_augru_check_accepts_the_reference_and_names_mistakes():
    check_augru_step(_augru("right"))
    # With a scalar attention, scaling the gate equals interpolating between h and the GRU step.
    check_augru_step(lambda x, h, a, cell: (1 - a[:, None]) * h + a[:, None] * cell(x, h))
    with pytest.raises(AssertionError, match="AGRU"):
        check_augru_step(_augru("agru"))
    with pytest.raises(AssertionError, match="z gate is used as the update gate"):
        check_augru_step(_augru("z_as_update"))
    with pytest.raises(AssertionError, match="the attention multiplies the output"):
        check_augru_step(lambda x, h, a, cell: a[:, None] * cell(x, h))
