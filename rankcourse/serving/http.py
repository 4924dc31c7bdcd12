"""A minimal HTTP endpoint for a :class:`~rankcourse.serving.scorer.RequestScorer`, and a bounded load test.

Standard library only: ``http.server.ThreadingHTTPServer`` answers ``POST /score`` with a JSON body
(the request of :mod:`.scorer`) and returns the scorer's answer as JSON, with the time the scorer
spent (encoding and model) so a client can separate the server's own overhead from the model's.
Bad JSON or a bad request gets status 400 and the named error; a body over ``max_body_bytes`` 413.
This is a teaching server: no TLS, no authentication, bound to ``127.0.0.1``.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Sequence

import numpy as np

from .scorer import RequestScorer

__all__ = ["ScoringServer", "LoadTestResult", "load_test"]


def _handler(scorer: RequestScorer, max_body_bytes: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: one connection per client

        def log_message(self, *args: Any) -> None:  # quiet: a notebook is not a log
            return None

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            if self.path != "/score":
                return self._reply(404, {"ok": False, "error": f"no endpoint {self.path!r}; use POST /score"})
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                return self._reply(400, {"ok": False, "error": "Content-Length is not a number"})
            if length > max_body_bytes:
                return self._reply(413, {"ok": False, "error": f"body of {length} bytes, over {max_body_bytes}"})
            try:
                request = json.loads(self.rfile.read(length) or b"null")
            except (ValueError, UnicodeDecodeError) as err:
                return self._reply(400, {"ok": False, "error": f"body is not JSON: {err}"})
            answer = scorer.handle(request)
            self._reply(200 if answer["ok"] else 400, answer)

    return Handler


class _Server(ThreadingHTTPServer):
    # The socket's listen backlog: the standard library's 5 resets connections when a load test
    # opens 16 at once.
    request_queue_size = 128
    daemon_threads = True


class ScoringServer:
    """``POST /score`` on ``127.0.0.1`` and a free port, served from a background thread.

    Use as a context manager (or call :meth:`stop`): the port is released when the block ends.
    """

    def __init__(self, scorer: RequestScorer, host: str = "127.0.0.1", port: int = 0,
                 max_body_bytes: int = 4 << 20) -> None:
        self.httpd = _Server((host, port), _handler(scorer, max_body_bytes))
        self.host, self.port = self.httpd.server_address[:2]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/score"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> "ScoringServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def post(connection: http.client.HTTPConnection, body: bytes) -> tuple[int, dict[str, Any]]:
    """One ``POST /score`` on an open connection: ``(status, decoded answer)``."""
    connection.request("POST", "/score", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


@dataclass
class LoadTestResult:
    """Per-request client latency and the scorer's own time (seconds), and the wall time of the test."""

    clients: int
    latency: np.ndarray
    scorer_time: np.ndarray
    wall: float
    errors: int

    def summary(self) -> dict[str, float]:
        overhead = self.latency - self.scorer_time
        return {"clients": self.clients, "requests/s": len(self.latency) / self.wall,
                "p50 ms": float(np.percentile(self.latency, 50) * 1e3),
                "p99 ms": float(np.percentile(self.latency, 99) * 1e3),
                "scorer p50 ms": float(np.percentile(self.scorer_time, 50) * 1e3),
                "overhead p50 ms": float(np.percentile(overhead, 50) * 1e3), "errors": self.errors}


def load_test(server: ScoringServer, requests: Sequence[dict[str, Any]], clients: int) -> LoadTestResult:
    """Send every request once, ``clients`` at a time (each client its own keep-alive connection)."""
    bodies = [json.dumps(r).encode() for r in requests]
    shares = [bodies[c::clients] for c in range(clients)]

    def run(share: list[bytes]) -> list[tuple[float, float, bool]]:
        connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
        out = []
        try:
            for body in share:
                start = time.perf_counter()
                status, answer = post(connection, body)
                elapsed = time.perf_counter() - start
                inside = sum(answer.get("seconds", {}).values()) if status == 200 else 0.0
                out.append((elapsed, inside, status == 200))
        finally:
            connection.close()
        return out

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = [row for part in pool.map(run, shares) for row in part]
    wall = time.perf_counter() - start
    latency = np.array([r[0] for r in results])
    inside = np.array([r[1] for r in results])
    return LoadTestResult(clients, latency, inside, wall, sum(not r[2] for r in results))
