"""The HTTP endpoint answers good and bad requests and stops cleanly; the load test counts every request."""

from __future__ import annotations

import http.client
import json
import socket

import numpy as np
import pytest
import torch

from rankcourse.models import DeepFM
from rankcourse.serving import ModelBundle, RequestScorer
from rankcourse.serving.http import ScoringServer, load_test, post
from rankcourse.serving.latency import latency_grid, percentiles, time_requests
from serving_fixtures import USER_FIELDS, randomise, shop_encoder, shop_request


@pytest.fixture(scope="module")
def scorer():
    encoder = shop_encoder()
    model = randomise(DeepFM(encoder.schema, embed_dim=4, hidden=(8,)))
    return RequestScorer(ModelBundle(model, {"embed_dim": 4, "hidden": (8,)}, encoder, USER_FIELDS),
                         max_candidates=100)


def test_server_scores_good_requests_and_names_the_field_of_bad_ones(scorer):
    with ScoringServer(scorer) as server:
        assert server.host == "127.0.0.1" and server.port > 0
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        request = shop_request(6)
        status, answer = post(conn, json.dumps(request).encode())
        assert status == 200 and answer["ok"]
        np.testing.assert_allclose(answer["probabilities"], scorer.score(request).probabilities, rtol=1e-6)
        request["candidates"][4]["price"] = "free"
        status, answer = post(conn, json.dumps(request).encode())
        assert status == 400 and answer["where"] == "candidate 4" and answer["field"] == "price"
        status, answer = post(conn, b"{not json")
        assert status == 400 and "not JSON" in answer["error"]
        conn.request("POST", "/other", body=b"{}")
        response = conn.getresponse()
        assert response.status == 404 and not json.loads(response.read())["ok"]
        conn.close()
        port = server.port
    with pytest.raises(OSError):  # stopped: nothing listens on the port any more
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_oversized_bodies_are_refused(scorer):
    with ScoringServer(scorer, max_body_bytes=100) as server:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        status, answer = post(conn, json.dumps(shop_request(5)).encode())
        assert status == 413 and "over 100" in answer["error"]


@pytest.mark.parametrize("clients", [1, 4])
def test_load_test_sends_every_request_and_separates_scorer_time(scorer, clients):
    requests = [shop_request(8, seed=i) for i in range(12)]
    with ScoringServer(scorer) as server:
        result = load_test(server, requests, clients)
    assert len(result.latency) == 12 and result.errors == 0
    assert (result.scorer_time > 0).all() and (result.latency >= result.scorer_time).all()
    assert result.summary()["clients"] == clients


def test_latency_grid_has_one_row_per_engine_size_and_thread_count(scorer):
    def make(n, count):
        return [scorer.encode(shop_request(n, seed=i)) for i in range(count)]

    grid = latency_grid({"shared": lambda t: scorer.engine}, make, sizes=(5, 20), threads=(1, 2), n_requests=8)
    assert len(grid) == 4 and (grid["p99"] >= grid["p50"]).all()
    assert set(percentiles(time_requests(scorer.engine, make(3, 4)))) == {"p50", "p95", "p99"}
    assert torch.get_num_threads() >= 1


def test_server_listens_with_a_backlog_for_many_clients_at_once():
    """16 clients connecting at once must not find the listen queue full (the standard library's
    default backlog is 5, which reset connections in chapter 10's load test)."""
    from rankcourse.serving.http import _Server

    assert _Server.request_queue_size >= 64 and _Server.daemon_threads
