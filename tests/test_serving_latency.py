"""Latency timing: a pool of encoded requests taken in turn, and batches of requests in one call."""

from __future__ import annotations

import pytest
import torch

from rankcourse.models import DeepFM
from rankcourse.serving import ModelBundle, RequestScorer
from rankcourse.serving.latency import latency_grid, time_batches, time_requests
from serving_fixtures import USER_FIELDS, randomise, shop_encoder, shop_request


class CountingEngine:
    """Records the number of candidates of each call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, *inputs):
        self.calls.append(inputs[3].shape[0])
        return torch.zeros(inputs[3].shape[0])


def test_time_requests_times_count_requests_taking_the_pool_in_turn():
    engine = CountingEngine()
    pool = [tuple(torch.zeros(1, 1) for _ in range(3)) + (torch.zeros(n, 2),) for n in (1, 2, 3)]
    seconds = time_requests(engine, pool, warmup=0, count=7)
    assert seconds.shape == (7,) and (seconds >= 0).all()
    assert engine.calls == [1, 2, 3, 1, 2, 3, 1]
    with pytest.raises(ValueError, match="count >= 1"):
        time_requests(engine, pool, count=0)


def test_latency_grid_reports_the_timed_count_not_the_pool_size():
    made = []

    def make(n, count):
        made.append(count)
        return [tuple(torch.zeros(1, 1) for _ in range(3)) + (torch.zeros(n, 2),)] * count

    grid = latency_grid({"counting": lambda t: CountingEngine()}, make, (4,), (1,), n_requests=30, pool=5)
    assert made == [5] and grid["requests"].tolist() == [30]


def test_time_batches_scores_batch_size_requests_per_call():
    encoder = shop_encoder()
    scorer = RequestScorer(ModelBundle(randomise(DeepFM(encoder.schema, embed_dim=4, hidden=(8,))), {},
                                       encoder, USER_FIELDS))
    requests = [scorer.encode(shop_request(n, seed=n)) for n in (3, 4, 5)]
    sizes = []

    def batch_logits(batch):
        sizes.append(len(batch))
        return scorer.batch_logits(batch)

    seconds = time_batches(batch_logits, requests, batch_size=2, count=4, warmup=1)
    assert seconds.shape == (4,) and sizes == [2] * 5
    with pytest.raises(ValueError, match="batch_size >= 1"):
        time_batches(batch_logits, requests, batch_size=0, count=1)
