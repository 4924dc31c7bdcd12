"""The shared-user-side engines equal naive scoring of the N full rows (float64, tight tolerance)."""

from __future__ import annotations

import pytest
import torch

from rankcourse.models import DIN, BehaviourRanker, DeepFM, MMoE
from rankcourse.serving.engines import (NaiveEngine, RequestLayout, SharedBehaviourRanker, SharedDeepFM,
                                        make_engine)
from serving_fixtures import USER_FIELDS, randomise, shop_encoder, shop_request


def encoded(encoder, request):
    item_fields = [f for f in encoder.field_names() if f not in USER_FIELDS]
    user = encoder.encode([request["user"]], ["user"], USER_FIELDS)
    labels = [f"candidate {i}" for i in range(len(request["candidates"]))]
    items = encoder.encode(request["candidates"], labels, item_fields)
    return (*user, *items)


def naive_rows(encoder, request):
    """The N full rows built by hand, without the engines' column bookkeeping."""
    rows = [{**request["user"], **c} for c in request["candidates"]]
    return encoder.encode(rows, [f"row {i}" for i in range(len(rows))])


MODELS = {
    "DeepFM": lambda s: DeepFM(s, embed_dim=4, hidden=(16, 8)),
    "DeepFM, separate embeddings, batch norm": lambda s: DeepFM(s, embed_dim=4, hidden=(16,),
                                                                 separate_embeddings=True, batch_norm=True),
    "DeepFM, no hidden layer": lambda s: DeepFM(s, embed_dim=4, hidden=()),
    "DIN": lambda s: DIN(s, embed_dim=4, hidden=(16, 8), attention_hidden=6),
    "DIN with Dice": lambda s: DIN(s, embed_dim=4, hidden=(16,), activation="dice"),
    "DIN softmax + FM": lambda s: BehaviourRanker(s, "din_softmax", embed_dim=4, hidden=(8,), fm=True),
    "mean pooling": lambda s: BehaviourRanker(s, "mean", embed_dim=4, hidden=(8,)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("n", [1, 7, 64])
def test_shared_engine_equals_scoring_the_full_rows_in_float64(name, n):
    encoder = shop_encoder()
    model = randomise(MODELS[name](encoder.schema)).double()
    layout = RequestLayout.from_encoder(encoder, USER_FIELDS)
    engine = make_engine(model, layout, "shared")
    assert isinstance(engine, (SharedDeepFM, SharedBehaviourRanker))
    request = shop_request(n, seed=n)
    with torch.no_grad():
        got = engine(*encoded(encoder, request))
        dense, sparse = naive_rows(encoder, request)
        want = model(dense.double(), sparse)
        naive = NaiveEngine(model, layout)(*encoded(encoder, request))
    assert got.shape == (n,) and got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(naive, want, rtol=0, atol=0)


def test_an_empty_history_and_unseen_values_score_like_the_full_rows():
    encoder = shop_encoder()
    model = randomise(DIN(encoder.schema, embed_dim=4, hidden=(8,))).double()
    layout = RequestLayout.from_encoder(encoder, USER_FIELDS)
    request = shop_request(5)
    request["user"].update(hist_item=[], user="never-seen", city=None)
    with torch.no_grad():
        got = make_engine(model, layout)(*encoded(encoder, request))
        want = model(*(lambda d, s: (d.double(), s))(*naive_rows(encoder, request)))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_models_without_a_shared_engine_fall_back_to_naive_scoring():
    encoder = shop_encoder()
    model = randomise(MMoE(encoder.schema, n_tasks=2, n_experts=2, expert=(4,), tower=(4,), embed_dim=4))
    layout = RequestLayout.from_encoder(encoder, USER_FIELDS)
    engine = make_engine(model, layout, "shared", task=1)
    assert isinstance(engine, NaiveEngine)
    request = shop_request(4)
    with torch.no_grad():
        torch.testing.assert_close(engine(*encoded(encoder, request)), model(*naive_rows(encoder, request))[:, 1])


def test_din_with_its_history_among_the_candidate_fields_is_not_shared():
    encoder = shop_encoder()
    model = randomise(DIN(encoder.schema, embed_dim=4, hidden=(8,)))
    layout = RequestLayout.from_encoder(encoder, ("user", "city", "age"))
    assert isinstance(make_engine(model, layout), NaiveEngine)


def test_the_naive_engine_leaves_the_callers_model_checking_its_inputs():
    encoder = shop_encoder()
    model = randomise(DeepFM(encoder.schema, embed_dim=4, hidden=(8,)))
    engine = NaiveEngine(model, RequestLayout.from_encoder(encoder, USER_FIELDS))
    with torch.no_grad():
        engine(*encoded(encoder, shop_request(3)))
    assert model.check_values is True and engine.model.embedding is model.embedding


def test_the_shared_engine_follows_a_change_of_the_models_weights():
    # The engine keeps the first layer's column blocks; an in-place update must not leave them stale.
    encoder = shop_encoder()
    model = randomise(DeepFM(encoder.schema, embed_dim=4, hidden=(8,))).double()
    layout = RequestLayout.from_encoder(encoder, USER_FIELDS)
    engine, naive = make_engine(model, layout, "shared"), NaiveEngine(model, layout)
    inputs = encoded(encoder, shop_request(5))
    with torch.no_grad():
        before = engine(*inputs)
        model.dnn.layers[0].weight.mul_(-2.0) if isinstance(model.dnn.layers[0], torch.nn.Linear) \
            else model.dnn.layers[0].body[0].weight.mul_(-2.0)
        after = engine(*inputs)
        torch.testing.assert_close(after, naive(*inputs), rtol=1e-12, atol=1e-12)
    assert not torch.allclose(before, after)
