"""Chapter 9's data with string ids: the re-encoded splits equal the raw values sent through the encoder."""

from __future__ import annotations

import numpy as np
import torch

from rankcourse.data import make_behaviour_data
from rankcourse.serving.shop import (SHOP_USER_FIELDS, downsample_negatives, draw_requests, encode_split,
                                     rows_as_requests, shop_encoder)


def test_encoded_split_equals_the_raw_rows_through_the_encoder():
    data = make_behaviour_data(60, 5, max_len=6, n_items=50, n_categories=5, seed=1)
    encoder = shop_encoder(data)
    test = encode_split(data.test, encoder)
    rows = np.arange(len(test))
    raw = [{**r["user"], **r["candidates"][0]} for r in rows_as_requests(data, "test", rows)]
    dense, sparse = encoder.encode(raw, [str(i) for i in rows])
    assert torch.equal(sparse, test.sparse) and test.schema == encoder.schema
    assert torch.equal(test.labels, data.test.labels)


def test_requests_have_distinct_candidates_and_the_user_fields():
    data = make_behaviour_data(60, 5, max_len=6, n_items=50, n_categories=5, seed=1)
    request = draw_requests(data, 30, 1, seed=0, unseen_share=0.2)[0]
    assert set(request["user"]) == set(SHOP_USER_FIELDS)
    items = [c["item"] for c in request["candidates"]]
    assert len(set(items)) == 30 and any(i.startswith("new") for i in items)


def test_downsampling_keeps_every_positive_and_about_the_share_of_negatives():
    data = make_behaviour_data(200, 10, seed=2)
    kept = downsample_negatives(data.train, 0.25, seed=0)
    y, yk = data.train.labels[:, 0], kept.labels[:, 0]
    assert int(yk.sum()) == int(y.sum())
    share = float((yk == 0).sum()) / float((y == 0).sum())
    assert 0.2 < share < 0.3
