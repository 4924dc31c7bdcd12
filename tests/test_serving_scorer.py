"""The request scorer: raw values in, calibrated probabilities and a top-k out, clear errors for bad requests."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from rankcourse.models import DIN, DeepFM
from rankcourse.serving import ModelBundle, RequestError, RequestScorer, load_bundle, save_bundle
from serving_fixtures import USER_FIELDS, randomise, shop_encoder, shop_request


@pytest.fixture(scope="module")
def bundle():
    encoder = shop_encoder()
    model = randomise(DIN(encoder.schema, embed_dim=4, hidden=(8,)))
    return ModelBundle(model, {"embed_dim": 4, "hidden": (8,)}, encoder, USER_FIELDS)


@pytest.fixture(scope="module")
def scorer(bundle):
    return RequestScorer(bundle, max_candidates=50, top_k=3)


def test_scores_are_the_models_probabilities_of_the_encoded_rows(bundle, scorer):
    request = shop_request(6)
    ranking = scorer.score(request)
    rows = [{**request["user"], **c} for c in request["candidates"]]
    dense, sparse = bundle.encoder.encode(rows, [str(i) for i in range(6)])
    with torch.no_grad():
        want = torch.sigmoid(bundle.model(dense, sparse)).numpy()
    np.testing.assert_allclose(ranking.probabilities, want, rtol=1e-5, atol=1e-6)
    assert list(ranking.top) == list(np.argsort(-want, kind="stable")[:3])
    assert set(ranking.seconds) == {"encode", "model"}


def test_naive_and_shared_scorers_agree(bundle):
    request = shop_request(20, seed=3)
    a = RequestScorer(bundle, "naive").score(request).probabilities
    b = RequestScorer(bundle, "shared").score(request).probabilities
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_unseen_values_get_the_oov_id_and_none_the_missing_id(bundle, scorer):
    request = shop_request(3)
    request["user"]["user"] = "someone new"
    request["candidates"][0]["item"] = "brand-new item"
    request["candidates"][1]["shop"] = None
    _, user_sparse, _, item_sparse = scorer.encode(request)
    layout = scorer.layout
    names = [bundle.encoder.schema.sparse[i].name for i in layout.item_sparse]
    assert int(user_sparse[0, 0]) == 0                              # user: OOV
    assert int(item_sparse[0, names.index("item")]) == 0           # unseen item: OOV
    assert int(item_sparse[1, names.index("shop")]) == 1           # missing shop: the missing id
    assert np.isfinite(scorer.score(request).probabilities).all()


def test_integer_values_of_a_string_field_are_read_as_their_text(bundle):
    encoder = bundle.encoder
    encoder2 = type(encoder)(encoder.dense, {**encoder.categorical, "shop": ["7", "8"]}, encoder.sequences)
    dense, sparse = encoder2.encode([{"shop": 8}, {"shop": "8"}], ["a", "b"], ["shop"])
    assert sparse[:, 0].tolist() == [3, 3]


def test_no_candidates_give_an_empty_ranking(scorer):
    ranking = scorer.score({"user": shop_request(1)["user"], "candidates": []})
    assert ranking.probabilities.shape == (0,) and ranking.top.shape == (0,)


def test_more_candidates_than_the_maximum_are_refused(scorer):
    with pytest.raises(RequestError, match="51 candidates, more than the maximum 50"):
        scorer.score(shop_request(51))


def bad(change):
    request = shop_request(4)
    change(request)
    return request


BAD_REQUESTS = {
    "not an object": (lambda r: None, "request", None),
    "wrong type of a dense value": (lambda r: r["candidates"][2].update(price="cheap"), "candidate 2", "price"),
    "infinite dense value": (lambda r: r["candidates"][1].update(price=math.inf), "candidate 1", "price"),
    "boolean id": (lambda r: r["candidates"][3].update(item=True), "candidate 3", "item"),
    "list as an id": (lambda r: r["candidates"][0].update(shop=["s1"]), "candidate 0", "shop"),
    "missing candidate field": (lambda r: r["candidates"][2].pop("item"), "candidate 2", "item"),
    "missing user field": (lambda r: r["user"].pop("city"), "user", "city"),
    "unknown candidate field": (lambda r: r["candidates"][1].update(colour="red"), "candidate 1", "colour"),
    "user field sent with a candidate": (lambda r: r["candidates"][0].update(age=3.0), "candidate 0", "age"),
    "history is a string": (lambda r: r["user"].update(hist_item="i1 i2"), "user", "hist_item"),
    "history holds a dict": (lambda r: r["user"].update(hist_item=["i1", {}]), "user", "hist_item"),
    "candidates not a list": (lambda r: r.update(candidates={"item": "i1"}), "request", "candidates"),
    "candidate not an object": (lambda r: r["candidates"].__setitem__(1, "i3"), "candidate 1", None),
    "no user": (lambda r: r.pop("user"), "request", "user"),
    "negative top_k": (lambda r: r.update(top_k=-1), "request", "top_k"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_get_an_error_naming_the_field_and_the_candidate(case, scorer):
    change, where, field = BAD_REQUESTS[case]
    request = None if case == "not an object" else bad(change)
    with pytest.raises(RequestError) as info:
        scorer.score(request)
    assert info.value.where == where and info.value.field_name == field
    answer = scorer.handle(request)
    assert answer["ok"] is False and answer["where"] == where and answer["field"] == field


def test_random_garbage_never_crashes_the_scorer(scorer):
    rng = np.random.default_rng(0)
    junk = [None, 1, -3.5, math.nan, math.inf, "x", "", [], {}, ["i1"], {"a": 1}, True, b"\x00", 10**30]
    good = shop_request(5)
    for trial in range(300):
        request = copy.deepcopy(good)
        for _ in range(rng.integers(1, 4)):
            part = request["user"] if rng.random() < 0.3 else request["candidates"][rng.integers(5)]
            key = list(part)[rng.integers(len(part))] if rng.random() < 0.9 else "junk"
            part[key] = junk[rng.integers(len(junk))]
        answer = scorer.handle(request)
        assert answer["ok"] in (True, False)
        assert not str(answer.get("error", "")).startswith("internal error"), (trial, request, answer)


def test_a_loaded_bundle_scores_like_the_saved_one_with_negative_sampling_corrected(bundle, tmp_path):
    model = randomise(DeepFM(bundle.encoder.schema, embed_dim=4, hidden=(8,)), seed=5)
    saved = ModelBundle(model, {"embed_dim": 4, "hidden": (8,)}, bundle.encoder, USER_FIELDS, negative_rate=0.1)
    loaded = load_bundle(save_bundle(saved, tmp_path / "deepfm.pt"))
    request = shop_request(9)
    raw = RequestScorer(ModelBundle(model, saved.model_args, bundle.encoder, USER_FIELDS)).score(request)
    served = RequestScorer(loaded).score(request).probabilities
    odds = raw.probabilities / (1 - raw.probabilities) * 0.1      # the odds shrink by the kept fraction
    np.testing.assert_allclose(served, odds / (1 + odds), rtol=1e-5)
