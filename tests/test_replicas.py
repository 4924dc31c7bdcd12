"""Stacked copies behave exactly like the course models they were built from, trained alone."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rankcourse.data import make_ctr_data, make_mmoe_regression
from rankcourse.data.tabular import TabularData
from rankcourse.models import MMoE, OMoE, SharedBottom
from rankcourse.replicas import StackedMultiTask, batch_indices, train_replicas

DIM = 6

BUILDERS = {
    "shared-bottom": lambda s: SharedBottom(s, 2, bottom=(7,), tower=(3,)),
    "shared-bottom-deep": lambda s: SharedBottom(s, 2, bottom=(7, 5), tower=(4, 3)),
    "omoe": lambda s: OMoE(s, 2, n_experts=3, expert=(4,), tower=(3,)),
    "mmoe": lambda s: MMoE(s, 2, n_experts=3, expert=(4,), tower=(3,)),
    "mmoe-deep": lambda s: MMoE(s, 2, n_experts=3, expert=(5, 4), tower=(3, 2)),
    "mmoe-linear-towers": lambda s: MMoE(s, 2, n_experts=2, expert=(4,), tower=()),
}


def _data(n_copies: int, n: int = 200):
    return [make_mmoe_regression(rho, n, dim=DIM, seed=c) for c, rho in zip(range(n_copies), (1.0, 0.5, 0.8, 0.2))]


def _models(build, schema, n_copies: int, dtype=torch.float32):
    out = []
    for c in range(n_copies):
        torch.manual_seed(100 + c)
        out.append(build(schema).to(dtype))
    return out


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_stacked_forward_and_gates_match_each_model(kind):
    data = _data(3)
    models = _models(BUILDERS[kind], data[0].schema, 3)
    stacked = StackedMultiTask(models)
    x = torch.stack([d.test.dense for d in data])
    want = torch.stack([m(d.test.dense, d.test.sparse) for m, d in zip(models, data)])
    torch.testing.assert_close(stacked(x), want, atol=1e-5, rtol=1e-5)
    if kind.startswith(("omoe", "mmoe")):
        gates = torch.stack([m.gate_weights(d.test.dense, d.test.sparse) for m, d in zip(models, data)])
        torch.testing.assert_close(stacked.gate_weights(x), gates, atol=1e-6, rtol=1e-5)
    else:
        with pytest.raises(TypeError, match="no gates"):
            stacked.gate_weights(x)


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_write_back_restores_every_weight(kind):
    schema = _data(1)[0].schema
    models = _models(BUILDERS[kind], schema, 2)
    stacked = StackedMultiTask(models)
    blank = [copy.deepcopy(m) for m in models]
    for m in blank:
        for p in m.parameters():
            p.data.zero_()
    stacked.write_back(blank)
    for m, b in zip(models, blank):
        for (name, p), q in zip(m.named_parameters(), b.parameters()):
            assert torch.equal(p, q), f"{kind}: {name} not restored"


def _train_alone(model, train: TabularData, steps, batch_size, lr, seed, schedule, binary=False):
    """The reference: one model, plain (unfused) Adam, the same batches, no stacking."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, foreach=False)
    x, y = train.dense.double(), train.labels.double()
    for t, idx in enumerate(batch_indices(len(train), batch_size, steps, seed)):
        if schedule == "cosine":
            opt.param_groups[0]["lr"] = lr * 0.5 * (1 + np.cos(np.pi * t / steps))
        out = model(x[idx], train.sparse[idx])
        if binary:
            loss = sum(F.binary_cross_entropy_with_logits(out[:, k], y[idx, k]) for k in range(2))
        else:
            loss = sum(F.mse_loss(out[:, k], y[idx, k]) for k in range(2))
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("kind", ["shared-bottom-deep", "omoe", "mmoe", "mmoe-deep"])
@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_a_stacked_copy_trains_exactly_like_the_model_alone(kind, schedule):
    data = _data(3)
    models = _models(BUILDERS[kind], data[0].schema, 3, torch.float64)
    alone = copy.deepcopy(models[1])
    seeds = [7, 8, 9]
    hist = train_replicas(models, [d.train for d in data], [d.valid for d in data], steps=25, batch_size=32,
                          lr=1e-2, lr_schedule=schedule, eval_every=10, seed=seeds, device="cpu", progress=False)
    _train_alone(alone, data[1].train, 25, 32, 1e-2, seed=8, schedule=schedule)
    for (name, p), q in zip(alone.named_parameters(), models[1].parameters()):
        torch.testing.assert_close(q, p, atol=1e-10, rtol=1e-9, msg=f"{name} differs after 25 steps")
    assert set(hist.step) == {10, 20, 25} and len(hist) == 3 * 3 * 2
    final = hist[(hist.step == 25) & (hist["copy"] == 1)].set_index("task").valid_loss
    with torch.no_grad():
        pred = alone(data[1].valid.dense.double(), data[1].valid.sparse)
    mse = ((pred - data[1].valid.labels.double()) ** 2).mean(0)
    np.testing.assert_allclose(final[["task1", "task2"]].to_numpy(), mse.numpy(), rtol=1e-9)


def test_binary_tasks_are_trained_with_bce_on_logits():
    rng = np.random.default_rng(0)
    sets = []
    base = _data(1)[0]
    for c in range(2):
        x = rng.standard_normal((120, DIM)).astype(np.float32)
        labels = (rng.random((120, 2)) < 0.3).astype(np.float32)
        sets.append(TabularData(base.schema, x, np.zeros((120, 0), np.int64), labels, None, ("click", "buy"), ("binary", "binary")))
    models = _models(BUILDERS["mmoe"], base.schema, 2, torch.float64)
    alone = copy.deepcopy(models[0])
    train_replicas(models, sets, steps=8, batch_size=16, lr=1e-2, seed=3, device="cpu", progress=False)
    _train_alone(alone, sets[0], 8, 16, 1e-2, seed=3, schedule="constant", binary=True)
    for p, q in zip(alone.parameters(), models[0].parameters()):
        torch.testing.assert_close(q, p, atol=1e-10, rtol=1e-9)


def test_batch_indices_cover_each_epoch_once_and_repeat_per_seed():
    idx = batch_indices(103, 10, 25, seed=4)
    assert idx.shape == (25, 10) and idx.dtype == torch.int64
    first_epoch = idx[:10].flatten()
    assert len(set(first_epoch.tolist())) == 100  # 10 full batches of distinct rows; 3 rows left out
    assert torch.equal(idx, batch_indices(103, 10, 25, seed=4))
    assert not torch.equal(idx, batch_indices(103, 10, 25, seed=5))
    with pytest.raises(ValueError, match="larger than"):
        batch_indices(5, 10, 3)
    with pytest.raises(ValueError, match="steps"):
        batch_indices(50, 10, 0)


def test_bad_inputs_are_named():
    data = _data(2)
    schema = data[0].schema
    mixed = [MMoE(schema, 2, n_experts=3, expert=(4,)), OMoE(schema, 2, n_experts=3, expert=(4,))]
    with pytest.raises(TypeError, match="stack one class at a time"):
        StackedMultiTask(mixed)
    with pytest.raises(ValueError, match="same shape"):
        StackedMultiTask([MMoE(schema, 2, n_experts=3, expert=(4,)), MMoE(schema, 2, n_experts=4, expert=(4,))])
    with pytest.raises(ValueError, match="dropout"):
        StackedMultiTask([MMoE(schema, 2, n_experts=3, expert=(4,), dropout=0.1)])
    ctr = make_ctr_data(300, preset="teaching", seed=0)
    with pytest.raises(ValueError, match="categorical fields"):
        StackedMultiTask([MMoE(ctr.schema, 1)])
    models = _models(BUILDERS["mmoe"], schema, 2)
    with pytest.raises(ValueError, match="one split per copy"):
        train_replicas(models, [data[0].train], steps=2, progress=False)
    with pytest.raises(ValueError, match="rows"):
        train_replicas(models, [data[0].train, data[1].valid], steps=2, progress=False)
    with pytest.raises(ValueError, match="steps must be"):
        train_replicas(models, [d.train for d in data], steps=0, progress=False)
    with pytest.raises(ValueError, match="lr_schedule"):
        train_replicas(models, [d.train for d in data], steps=2, lr_schedule="linear", progress=False)
    with pytest.raises(ValueError, match="one int per copy"):
        train_replicas(models, [d.train for d in data], steps=2, seed=[1, 2, 3], progress=False)
    with pytest.raises(ValueError, match=r"shape \(copies=2, batch, 6\)"):
        StackedMultiTask(models)(torch.zeros(3, 4, DIM))


def test_copies_may_share_a_data_set():
    data = _data(2)
    build = BUILDERS["mmoe"]
    models = _models(build, data[0].schema, 3)
    torch.manual_seed(100)
    models[2] = build(data[0].schema)       # copy 2: same initial weights and data as copy 0
    train = [data[0].train, data[1].train, data[0].train]
    hist = train_replicas(models, train, [data[0].valid, data[1].valid, data[0].valid], steps=12, batch_size=32,
                          seed=[5, 6, 5], device="cpu", progress=False)
    for p, q in zip(models[0].parameters(), models[2].parameters()):
        assert torch.equal(p, q)
    last = hist[hist.step == 12].set_index(["copy", "task"]).valid_loss
    assert last[0, "task1"] == last[2, "task1"] and last[0, "task1"] != last[1, "task1"]
    models64 = _models(build, data[0].schema, 3, torch.float64)
    ref = copy.deepcopy(models64[1])
    train_replicas(models64, train, steps=12, batch_size=32, seed=[5, 6, 5], device="cpu", progress=False)
    _train_alone(ref, data[1].train, 12, 32, 3e-3, seed=6, schedule="constant")
    for p, q in zip(ref.parameters(), models64[1].parameters()):
        torch.testing.assert_close(q, p, atol=1e-10, rtol=1e-9)


def test_seeded_copies_repeat_a_seed_and_differ_across_seeds():
    from rankcourse.scale.replicas import seeded_copies

    schema = make_mmoe_regression(1.0, 50, dim=DIM, seed=0).schema
    a, b, a_again = seeded_copies(lambda: BUILDERS["mmoe"](schema), [0, 1, 0])
    for wa, wb, wa2 in zip(a.parameters(), b.parameters(), a_again.parameters()):
        torch.testing.assert_close(wa, wa2)
    assert any(not torch.equal(wa, wb) for wa, wb in zip(a.parameters(), b.parameters()))


def test_step_milliseconds_times_both_steps_and_leaves_the_models_alone():
    from rankcourse.scale.replicas import step_milliseconds

    d = make_mmoe_regression(0.5, 300, dim=DIM, seed=0)
    models = _models(BUILDERS["mmoe"], d.schema, 3)
    before = [copy.deepcopy(m.state_dict()) for m in models]
    loop_ms, stacked_ms = step_milliseconds(models, d.train.dense, d.train.labels, batch_size=16,
                                            repeats=2, device="cpu")
    assert loop_ms > 0 and stacked_ms > 0
    for m, state in zip(models, before):
        for name, w in m.state_dict().items():
            torch.testing.assert_close(w, state[name])


def test_step_milliseconds_names_mismatched_rows_and_a_too_large_batch():
    from rankcourse.scale.replicas import step_milliseconds

    d = make_mmoe_regression(0.5, 300, dim=DIM, seed=0)
    models = _models(BUILDERS["mmoe"], d.schema, 2)
    with pytest.raises(ValueError, match=r"dense \(10, 6\) and labels \(9, 2\)"):
        step_milliseconds(models, d.train.dense[:10], d.train.labels[:9], batch_size=4)
    with pytest.raises(ValueError, match="batch_size=64 exceeds the 10 rows"):
        step_milliseconds(models, d.train.dense[:10], d.train.labels[:10], batch_size=64)
