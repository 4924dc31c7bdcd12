"""Scoring several requests in one forward pass equals scoring them one by one (float64, tight)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rankcourse.models import DIN, BehaviourRanker, DeepFM, MMoE
from rankcourse.serving import ModelBundle, RequestError, RequestScorer
from serving_fixtures import USER_FIELDS, randomise, shop_encoder, shop_request

MODELS = {
    "DeepFM": lambda s: DeepFM(s, embed_dim=4, hidden=(16, 8)),
    "DeepFM, batch norm": lambda s: DeepFM(s, embed_dim=4, hidden=(16,), batch_norm=True),
    "DIN": lambda s: DIN(s, embed_dim=4, hidden=(16, 8), attention_hidden=6),
    "DIN with Dice": lambda s: DIN(s, embed_dim=4, hidden=(16,), activation="dice"),
    "DIN softmax + FM": lambda s: BehaviourRanker(s, "din_softmax", embed_dim=4, hidden=(8,), fm=True),
    "mean pooling": lambda s: BehaviourRanker(s, "mean", embed_dim=4, hidden=(8,)),
    "MMoE (naive engine)": lambda s: MMoE(s, n_tasks=2, n_experts=2, expert=(4,), tower=(4,), embed_dim=4),
}


def requests_of_different_sizes() -> list[dict]:
    requests = [shop_request(n, seed=n) for n in (5, 1, 12, 0, 3)]
    requests[1]["user"].update(hist_item=[], user="never-seen", city=None)   # empty history, OOV user
    return requests


def scorer_of(name: str, engine: str = "shared") -> RequestScorer:
    encoder = shop_encoder()
    model = randomise(MODELS[name](encoder.schema)).double()
    return RequestScorer(ModelBundle(model, {}, encoder, USER_FIELDS), engine, top_k=4)


@pytest.mark.parametrize("engine", ["shared", "naive"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_batch_of_requests_scores_like_the_requests_one_by_one(name, engine):
    scorer = scorer_of(name, engine)
    requests = requests_of_different_sizes()
    batch = scorer.score_batch(requests)
    assert len(batch) == len(requests)
    for request, got in zip(requests, batch):
        want = scorer.score(request)
        assert got.probabilities.shape == (len(request["candidates"]),)
        np.testing.assert_allclose(got.probabilities, want.probabilities, rtol=1e-12, atol=1e-14)
        assert got.top.tolist() == want.top.tolist()


def test_batch_logits_of_the_shared_engine_keep_each_requests_user_side_apart():
    scorer = scorer_of("DeepFM")
    same_items = shop_request(6, seed=1)
    other_user = {**same_items, "user": shop_request(1, seed=9)["user"]}
    a, b = scorer.batch_logits([scorer.encode(same_items), scorer.encode(other_user)])
    assert not torch.allclose(a, b)          # same candidates, different users, different scores


def test_a_bad_request_in_a_batch_is_named_by_its_position():
    scorer = scorer_of("DIN")
    requests = requests_of_different_sizes()
    requests[2]["candidates"][4]["price"] = "cheap"
    with pytest.raises(RequestError) as info:
        scorer.score_batch(requests)
    assert info.value.where == "request 2, candidate 4" and info.value.field_name == "price"
    with pytest.raises(RequestError, match="request 0"):
        scorer.score_batch([None])
    with pytest.raises(RequestError, match="expected a list of requests"):
        scorer.score_batch({"user": {}})


def test_an_empty_batch_gives_no_rankings_and_engines_without_batches_are_refused():
    scorer = scorer_of("DeepFM")
    assert scorer.score_batch([]) == []
    plain = RequestScorer(scorer.bundle, lambda *inputs: torch.zeros(inputs[3].shape[0]))
    with pytest.raises(ValueError, match="cannot score a batch"):
        plain.score_batch([shop_request(2)])
