"""The one engine: fit and fit_distributed run the same loop, and every fit argument means the same."""

from __future__ import annotations

import inspect

import pandas as pd
import pytest
import torch

from rankcourse import distributed as D
from rankcourse.engine import EpochBatches, batch_bounds
from rankcourse.training import TIMING_COLUMNS, fit


def test_fit_distributed_takes_every_argument_of_fit():
    assert list(inspect.signature(D.fit_distributed).parameters) == list(inspect.signature(fit).parameters)


@pytest.mark.parametrize("kwargs", [
    dict(max_steps=7, eval_every=3),
    dict(shuffle=False, eval_every=2, epochs=2),
    dict(max_steps=5, log_every=1),
])
def test_without_a_process_group_fit_distributed_matches_fit_for_the_other_arguments(toy, tiny_model, kwargs):
    train, valid = toy(500), toy(200, seed=1)
    a, b = tiny_model(train.schema, dropout=0.2), tiny_model(train.schema, dropout=0.2)
    args = dict(epochs=1, batch_size=64, lr=0.05, progress=False, device="cpu") | kwargs
    h_fit = fit(a, train, valid, **args)
    h_dist = D.fit_distributed(b, train, valid, **args)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=0, atol=0, msg=name)
    pd.testing.assert_frame_equal(h_fit.drop(columns=list(TIMING_COLUMNS)),
                                  h_dist.drop(columns=list(TIMING_COLUMNS)))
    if "max_steps" in kwargs:
        assert h_fit["step"].iloc[-1] == kwargs["max_steps"]


def test_fit_distributed_refuses_a_bad_argument_with_fits_message(toy, tiny_model):
    train = toy(100)
    with pytest.raises(ValueError, match="eval_every must be a positive int"):
        D.fit_distributed(tiny_model(train.schema), train, eval_every=0, progress=False)


def test_epoch_batches_split_across_ranks_rebuild_the_global_batch(toy):
    data = toy(103)
    bounds = batch_bounds(len(data), 20)
    whole = list(EpochBatches(data, bounds, seed=4)(0))
    parts = [list(EpochBatches(data, bounds, seed=4, split=lambda idx, r=r: (D.shard_batch(idx, r, 3),
                                                                             3 * len(D.shard_batch(idx, r, 3)) / len(idx)))(0))
             for r in range(3)]
    for b, ((dense, _, _), rows) in enumerate(whole):
        assert rows == len(dense)
        rebuilt = torch.cat([parts[r][b][0][0] for r in range(3)])
        assert torch.equal(rebuilt, dense)
        assert sum(parts[r][b][0][3] for r in range(3)) == pytest.approx(3.0)
