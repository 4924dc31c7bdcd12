"""Shared test setup: a headless Matplotlib, a thread cap, the ``cuda`` marker, and toy fixtures."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")  # before anything imports pyplot: no display in CI

import pytest
import torch
from torch import nn

from rankcourse.data.tabular import TabularData
from rankcourse.schema import FeatureSchema

# The tests train tiny models (batches of a few hundred rows, layers of <= 64 units): intra-op
# threads gain nothing there, and when other processes share the cores, spinning OpenMP threads made
# the same test ~3x slower with 2 threads than with 1 (measured on a loaded 2-core machine).
# RANKCOURSE_TEST_THREADS overrides; the package itself never sets a thread count.
torch.set_num_threads(int(os.environ.get("RANKCOURSE_TEST_THREADS", "1")))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``@pytest.mark.cuda`` are skipped (not failed) where no CUDA device is visible."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


class TinyCTR(nn.Module):
    """A minimal model following the course convention: one weight per id, linear dense part,
    an optional dropout (to test seeding) and one logit per task."""

    def __init__(self, schema: FeatureSchema, n_tasks: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.schema, self.n_tasks = schema, n_tasks
        self.ids = nn.Embedding(max(schema.total_vocab, 1), n_tasks)
        nn.init.zeros_(self.ids.weight)
        self.dense = nn.Linear(schema.n_dense, n_tasks)
        self.drop = nn.Dropout(dropout)
        self.register_buffer("offsets", schema.offsets_tensor())

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        self.schema.validate(dense, sparse)
        z = self.dense(self.drop(dense)) + self.ids(sparse + self.offsets).sum(1)
        return z[:, 0] if self.n_tasks == 1 else z


def make_toy(n: int = 2000, n_tasks: int = 1, seed: int = 0, flip: bool = False,
             task_types: tuple[str, ...] | None = None) -> TabularData:
    """Random data with a planted signal: logit = 1.5*x0 - 2*[field A == 2] + 0.3 (sign flipped if ``flip``).

    Task k uses the same signal scaled by (1 - 0.5 k); regression tasks get the logit plus noise.
    """
    g = torch.Generator().manual_seed(seed)
    schema = FeatureSchema.from_vocab_sizes(3, [5, 7])
    dense = torch.randn(n, 3, generator=g)
    sparse = torch.stack([torch.randint(0, 5, (n,), generator=g), torch.randint(0, 7, (n,), generator=g)], 1)
    base = 1.5 * dense[:, 0] - 2.0 * (sparse[:, 0] == 2).float() + 0.3
    if flip:
        base = -base
    types = task_types or ("binary",) * n_tasks
    labels, truth = [], []
    for k, kind in enumerate(types):
        z = base * (1 - 0.5 * k)
        if kind == "binary":
            p = torch.sigmoid(z)
            labels.append(torch.bernoulli(p, generator=g))
            truth.append(p)
        else:
            labels.append(z + 0.3 * torch.randn(n, generator=g))
            truth.append(z)
    names = tuple(f"task{k}" for k in range(len(types))) if len(types) > 1 else ("click",)
    return TabularData(schema, dense, sparse, torch.stack(labels, 1), torch.stack(truth, 1), names, types)


@pytest.fixture
def toy():
    """Factory ``toy(n=..., n_tasks=..., seed=..., flip=..., task_types=...) -> TabularData``."""
    return make_toy


@pytest.fixture
def tiny_model():
    """Factory ``tiny_model(schema, n_tasks=1, dropout=0.0, seed=0) -> TinyCTR``."""

    def build(schema: FeatureSchema, n_tasks: int = 1, dropout: float = 0.0, seed: int = 0) -> TinyCTR:
        torch.manual_seed(seed)
        return TinyCTR(schema, n_tasks, dropout)

    return build
