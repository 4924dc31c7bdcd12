"""Score one request: the user's raw features once + N candidates -> calibrated probabilities and a top-k.

A request is a mapping ``{"user": {field: value, ...}, "candidates": [{field: value, ...}, ...]}``
(what a JSON body decodes to). The user part carries the bundle's ``user_fields``, each candidate the
other fields; ``None`` is a missing value. :meth:`RequestScorer.score` raises :class:`RequestError`
naming the field and the candidate for a bad request; :meth:`RequestScorer.handle` never raises: it
answers ``{"ok": False, "error": ...}`` instead, so one bad request cannot take a server down.
:meth:`RequestScorer.score_batch` scores several requests in one forward pass (what a GPU wants):
their candidates are concatenated, each request's user side is computed once, and the scores are
split back; it equals scoring the requests one by one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from .bundle import ModelBundle
from .engines import RequestLayout, make_engine
from .features import RequestError

__all__ = ["Ranking", "RequestScorer", "corrected_probability"]


def corrected_probability(logits: Tensor, negative_rate: float) -> Tensor:
    """Probabilities of a model trained with a fraction ``negative_rate`` of the negatives kept.

    Down-sampling multiplies the odds by ``1 / negative_rate``; adding ``log(negative_rate)`` to the
    logit undoes it: ``p = sigmoid(z + log r)`` (chapter 1's correction).
    """
    return torch.sigmoid(logits.double() + math.log(negative_rate))


@dataclass
class Ranking:
    """The answer to one request.

    Attributes:
        probabilities: ``(N,)`` calibrated click probabilities, in the candidates' order.
        top: ``(k,)`` indices of the best candidates, best first (ties: the earlier candidate first).
        seconds: time spent ``{"encode": ..., "model": ...}``.
    """

    probabilities: np.ndarray
    top: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, "probabilities": self.probabilities.tolist(), "top": self.top.tolist(),
                "seconds": self.seconds}


class RequestScorer:
    """Scores raw requests with a loaded :class:`ModelBundle`.

    Args:
        bundle: the model and its encoder.
        engine: ``"shared"`` (user side once, see :mod:`.engines`), ``"naive"``, or any callable with
            the engines' signature (an onnxruntime session wrapper, a quantised model's engine).
        max_candidates: requests with more candidates are refused.
        top_k: default length of the ranking.
    """

    def __init__(self, bundle: ModelBundle, engine: str | Callable[..., Tensor] = "shared",
                 max_candidates: int = 2000, top_k: int = 10) -> None:
        if not isinstance(max_candidates, int) or max_candidates < 1:
            raise ValueError(f"max_candidates must be a positive int, got {max_candidates!r}")
        self.bundle = bundle
        self.layout = RequestLayout.from_encoder(bundle.encoder, bundle.user_fields)
        bundle.model.eval()
        self.engine = make_engine(bundle.model, self.layout, engine, bundle.task) if isinstance(engine, str) else engine
        self.max_candidates, self.top_k = max_candidates, top_k
        self.user_fields = tuple(bundle.user_fields)
        self.item_fields = bundle.item_fields

    # ------------------------------------------------------------ parsing
    def _check_request(self, request: Any) -> tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]:
        if not isinstance(request, Mapping):
            raise RequestError("request", None, f"expected an object with 'user' and 'candidates', "
                                                f"got {type(request).__name__}")
        extra = sorted(set(request) - {"user", "candidates", "top_k"})
        if extra:
            raise RequestError("request", None, f"unknown keys {extra}; expected 'user', 'candidates', 'top_k'")
        for key in ("user", "candidates"):
            if key not in request:
                raise RequestError("request", key, "missing")
        user, candidates = request["user"], request["candidates"]
        if not isinstance(candidates, (list, tuple)):
            raise RequestError("request", "candidates", f"expected a list, got {type(candidates).__name__}")
        if len(candidates) > self.max_candidates:
            raise RequestError("request", "candidates", f"{len(candidates)} candidates, more than the "
                                                        f"maximum {self.max_candidates}")
        self._check_fields(user, self.user_fields, "user")
        for i, cand in enumerate(candidates):
            self._check_fields(cand, self.item_fields, f"candidate {i}")
        return user, candidates

    @staticmethod
    def _check_fields(row: Any, expected: Sequence[str], where: str) -> None:
        if not isinstance(row, Mapping):
            raise RequestError(where, None, f"expected an object of fields, got {type(row).__name__}")
        missing = [f for f in expected if f not in row]
        if missing:
            raise RequestError(where, missing[0], f"missing required field (send null for a missing value); "
                                                  f"all missing: {missing}")
        unknown = sorted(str(f) for f in row if f not in expected)
        if unknown:
            raise RequestError(where, unknown[0], f"unknown field; this part takes {list(expected)}")

    def _top_k(self, request: Mapping[str, Any], n: int) -> int:
        k = request.get("top_k", self.top_k)
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise RequestError("request", "top_k", f"expected a non-negative int, got {k!r:.40}")
        return min(k, n)

    # ------------------------------------------------------------ scoring
    def encode(self, request: Any) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The engine's four inputs for a request (raises :class:`RequestError`)."""
        user, candidates = self._check_request(request)
        enc = self.bundle.encoder
        user_dense, user_sparse = enc.encode([user], ["user"], self.user_fields)
        labels = [f"candidate {i}" for i in range(len(candidates))]
        item_dense, item_sparse = enc.encode(candidates, labels, self.item_fields)
        return user_dense, user_sparse, item_dense, item_sparse

    def score(self, request: Any) -> Ranking:
        """Calibrated probabilities and the top-k of one request; raises :class:`RequestError`."""
        start = time.perf_counter()
        inputs = self.encode(request)
        k = self._top_k(request, inputs[2].shape[0])
        encoded = time.perf_counter()
        n = inputs[3].shape[0]
        if n == 0:
            return Ranking(np.zeros(0), np.zeros(0, np.int64), {"encode": encoded - start, "model": 0.0})
        with torch.inference_mode():
            logits = self.engine(*inputs)
        probs = corrected_probability(torch.as_tensor(logits).reshape(-1), self.bundle.negative_rate).numpy()
        done = time.perf_counter()
        top = np.argsort(-probs, kind="stable")[:k]
        return Ranking(probs, top, {"encode": encoded - start, "model": done - encoded})

    def batch_logits(self, encoded: Sequence[tuple[Tensor, Tensor, Tensor, Tensor]]) -> list[Tensor]:
        """Logits of several encoded requests from one forward pass, split back per request.

        The user tensors are stacked ``(R, ...)``, the candidates concatenated ``(sum N, ...)`` and
        ``owner`` tells the engine each candidate's request. Inputs go to the model's device.
        """
        if not getattr(self.engine, "supports_batch", False):
            raise ValueError(f"engine {type(self.engine).__name__} cannot score a batch of requests; "
                             "use an engine of rankcourse.serving.engines")
        if not encoded:
            return []
        device = next(self.bundle.model.parameters()).device
        parts = [torch.cat([inputs[k] for inputs in encoded]).to(device) for k in range(4)]
        sizes = [inputs[3].shape[0] for inputs in encoded]
        owner = torch.repeat_interleave(torch.arange(len(sizes), device=device),
                                        torch.tensor(sizes, device=device))
        with torch.inference_mode():
            logits = self.engine(*parts, owner=owner).reshape(-1)
        return list(logits.cpu().split(sizes))

    def score_batch(self, requests: Sequence[Any]) -> list[Ranking]:
        """:meth:`score` for each request, from one forward pass; a bad request is named by position.

        Raises :class:`RequestError` whose ``where`` starts with ``"request i"`` (0-based).
        """
        if not isinstance(requests, (list, tuple)):
            raise RequestError("batch", None, f"expected a list of requests, got {type(requests).__name__}")
        start = time.perf_counter()
        encoded, ks = [], []
        for i, request in enumerate(requests):
            try:
                encoded.append(self.encode(request))
                ks.append(self._top_k(request, encoded[-1][3].shape[0]))
            except RequestError as err:
                raise RequestError(f"request {i}, {err.where}", err.field_name, err.problem) from None
        encoded_at = time.perf_counter()
        logits = self.batch_logits(encoded)
        done = time.perf_counter()
        seconds = {"encode": encoded_at - start, "model": done - encoded_at}
        rankings = []
        for z, k in zip(logits, ks):
            probs = corrected_probability(z, self.bundle.negative_rate).numpy()
            rankings.append(Ranking(probs, np.argsort(-probs, kind="stable")[:k], dict(seconds)))
        return rankings

    def handle(self, request: Any) -> dict[str, Any]:
        """Like :meth:`score`, but never raises: errors come back as ``{"ok": False, "error": ...}``."""
        try:
            return self.score(request).to_json()
        except RequestError as err:
            return {"ok": False, "error": str(err), "field": err.field_name, "where": err.where}
        except Exception as err:  # noqa: BLE001 - a server must answer, whatever went wrong inside
            return {"ok": False, "error": f"internal error: {type(err).__name__}: {err}", "field": None,
                    "where": "server"}

