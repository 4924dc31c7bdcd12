"""Data-parallel training with torch.distributed: two CPU processes (gloo) against one process.

The two-process tests spawn fresh interpreters (a few seconds each, bounded by ``launch``'s
timeout); the pieces (batch sharding, flags, argument errors) are checked in-process.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd
import pytest
import torch

from rankcourse import distributed as D
from rankcourse.data import make_ctr_data
from rankcourse.layers import FieldEmbedding
from torch import nn
from rankcourse.models import DeepFM
from rankcourse.training import TIMING_COLUMNS, fit

BATCH = 64  # 1120 training rows / (2 x 64) = 8.75 global batches: the last one splits unevenly


def _data():
    ds = make_ctr_data(1400, vocab_sizes=[30] * 6, n_dense=3, seed=3)
    return ds.train, ds.valid


class SparseTableCTR(nn.Module):
    """A logistic model whose id weights are an ``nn.Embedding(sparse=True)``: DDP recognises that
    module and all-reduces its sparse gradients; SparseAdam updates it."""

    def __init__(self, schema) -> None:
        super().__init__()
        self.schema, self.n_tasks = schema, 1
        self.ids = nn.Embedding(schema.total_vocab, 1, sparse=True)
        self.dense = nn.Linear(schema.n_dense, 1)
        self.register_buffer("offsets", schema.offsets_tensor())

    def forward(self, dense, sparse):
        return (self.dense(dense) + self.ids(sparse + self.offsets).sum(1))[:, 0]


def _model(schema, sparse_grad: bool = False) -> nn.Module:
    torch.manual_seed(0)
    return SparseTableCTR(schema) if sparse_grad else DeepFM(schema, embed_dim=8, hidden=(32,))


def _train_worker(out_dir: str) -> None:
    """Runs on every rank: two epochs of a DeepFM and of a sparse-gradient model (one launch for
    both, as starting processes costs more than training); weights and history saved per rank."""
    torch.set_num_threads(1)
    train, valid = _data()
    for sparse_grad in (False, True):
        model = _model(train.schema, sparse_grad)
        history = D.fit_distributed(model, train, valid, epochs=2, batch_size=BATCH, lr=3e-3,
                                    progress=False)
        with open(Path(out_dir) / f"sparse{int(sparse_grad)}_rank{D.rank()}.pkl", "wb") as f:
            pickle.dump({"state": model.state_dict(), "history": history}, f)


def _failing_worker(out_dir: str) -> None:
    """Rank 1 raises before its first step; rank 0 would otherwise wait in the first all-reduce."""
    if D.rank() == 1:
        raise ValueError("planted failure on rank 1")
    _train_worker(out_dir)


@pytest.fixture(scope="module")
def two_rank_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    D.launch(_train_worker, world=2, args=(str(out),), timeout_s=120)
    return out


def _two_rank_results(out: Path, sparse_grad: bool) -> list[dict]:
    return [pickle.loads((out / f"sparse{int(sparse_grad)}_rank{r}.pkl").read_bytes()) for r in range(2)]


def _one_process(sparse_grad: bool):
    train, valid = _data()
    model = _model(train.schema, sparse_grad)
    history = fit(model, train, valid, epochs=2, batch_size=2 * BATCH, lr=3e-3, progress=False, device="cpu")
    return model, history


def _assert_same_run(results: list[dict], model, history: pd.DataFrame) -> None:
    for res in results:
        for name, value in model.state_dict().items():
            torch.testing.assert_close(res["state"][name], value, rtol=1e-4, atol=1e-5, msg=name)
        got = res["history"].drop(columns=list(TIMING_COLUMNS))
        want = history.drop(columns=list(TIMING_COLUMNS))
        assert list(got.columns) == list(want.columns)
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-4)


# --------------------------------------------------------------------------- two processes
@pytest.mark.slow
def test_two_ranks_with_batch_b_train_like_one_process_with_batch_2b(two_rank_dir):
    """Same weights and same validation history on both ranks (DDP averages the ranks'
    share-weighted losses: the gradient of the mean loss over the global batch)."""
    results = _two_rank_results(two_rank_dir, sparse_grad=False)
    model, history = _one_process(sparse_grad=False)
    _assert_same_run(results, model, history)


@pytest.mark.slow
def test_sparse_gradient_table_under_ddp_with_gloo_matches_one_process(two_rank_dir):
    """gloo all-reduces sparse gradients: SparseAdam on an nn.Embedding(sparse=True) gives the same run."""
    results = _two_rank_results(two_rank_dir, sparse_grad=True)
    model, history = _one_process(sparse_grad=True)
    _assert_same_run(results, model, history)


def test_a_table_with_sparse_grad_that_ddp_cannot_see_is_refused_by_name():
    # DDP finds sparse gradients only on nn.Embedding / nn.EmbeddingBag modules built with
    # sparse=True; the course's FieldEmbedding(sparse_grad=True) would fail inside backward with
    # "Cannot access storage of SparseTensorImpl".
    train, _ = _data()
    model = DeepFM(train.schema, embed_dim=4, hidden=(8,))
    model.embedding = FieldEmbedding(train.schema, 4, sparse_grad=True)
    with pytest.raises(ValueError, match=r"'embedding' \(FieldEmbedding\) has sparse_grad=True"):
        D.check_ddp_sparse_tables(model)


@pytest.mark.slow
def test_a_rank_that_raises_stops_the_others_with_its_error(tmp_path):
    with pytest.raises(D.RankFailedError, match=r"rank 1 of 2 raised(.|\n)*planted failure on rank 1"):
        D.launch(_failing_worker, world=2, args=(str(tmp_path),), timeout_s=60)
    assert not list(tmp_path.glob("*.pkl"))  # rank 0 was stopped, it did not finish alone


# --------------------------------------------------------------------------- in one process
def test_shard_batch_gives_disjoint_slices_that_rebuild_the_batch():
    batch = torch.randperm(131, generator=torch.Generator().manual_seed(0))
    for world in (1, 2, 3, 8):
        parts = [D.shard_batch(batch, r, world) for r in range(world)]
        assert torch.equal(torch.cat(parts), batch)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_shard_batch_rejects_a_rank_outside_the_world():
    with pytest.raises(ValueError, match=r"rank must lie in \[0, 2\), got 2"):
        D.shard_batch(torch.arange(4), 2, 2)


def test_without_a_process_group_fit_distributed_is_fit(toy, tiny_model):
    train, valid = toy(700), toy(300, seed=1)
    a, b = tiny_model(train.schema), tiny_model(train.schema)
    h_fit = fit(a, train, valid, epochs=2, batch_size=128, lr=0.05, progress=False, device="cpu")
    h_dist = D.fit_distributed(b, train, valid, epochs=2, batch_size=128, lr=0.05, progress=False)
    assert D.world_size() == 1 and D.rank() == 0 and D.is_main_process()
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=0, atol=0, msg=name)
    pd.testing.assert_frame_equal(h_fit.drop(columns=list(TIMING_COLUMNS)),
                                  h_dist.drop(columns=list(TIMING_COLUMNS)))


def test_early_stopping_restores_the_best_weights_without_a_process_group(toy, tiny_model):
    train, valid = toy(600), toy(300, seed=1, flip=True)  # valid disagrees: AUC falls as training goes on
    model = tiny_model(train.schema)
    history = D.fit_distributed(model, train, valid, epochs=6, batch_size=100, lr=0.2,
                                early_stopping=1, progress=False)
    assert len(history) < 6
    assert history.attrs["best_score"] == pytest.approx(history["valid_score"].max())


def test_init_process_group_without_torchrun_names_the_missing_variables(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match=r"\['RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'\].*torchrun"):
        D.init_process_group()


def test_backend_is_gloo_on_cpu_and_nccl_on_cuda():
    assert D.backend_for("cpu") == "gloo"
    assert D.backend_for("cuda:0") == "nccl"
