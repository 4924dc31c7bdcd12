"""torch.export and ONNX (run in onnxruntime) of the scoring engines equal eager scoring, for any N."""

from __future__ import annotations

import pytest
import torch

from rankcourse.models import DIN, DeepFM
from rankcourse.serving import ModelBundle, RequestScorer
from rankcourse.serving.export import OnnxEngine, export_onnx, export_program, onnx_available
from serving_fixtures import USER_FIELDS, randomise, shop_encoder, shop_request

CASES = {"DeepFM": (DeepFM, {"embed_dim": 4, "hidden": (8,)}), "DIN": (DIN, {"embed_dim": 4, "hidden": (8,)})}
needs_onnx = pytest.mark.skipif(not onnx_available(), reason="onnxruntime/onnxscript not installed "
                                                              "(pip install 'rankcourse[serving]')")


def scorer_for(name: str, engine: str) -> RequestScorer:
    cls, args = CASES[name]
    encoder = shop_encoder()
    return RequestScorer(ModelBundle(randomise(cls(encoder.schema, **args)), args, encoder, USER_FIELDS), engine)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_export_equals_eager_for_other_numbers_of_candidates(name):
    scorer = scorer_for(name, "shared")
    program = export_program(scorer.engine, scorer.encode(shop_request(5)), max_candidates=100)
    for n in (1, 2, 37, 100):
        inputs = scorer.encode(shop_request(n, seed=n))
        with torch.no_grad():
            torch.testing.assert_close(program.module()(*inputs), scorer.engine(*inputs), rtol=0, atol=1e-6)


@needs_onnx
@pytest.mark.slow
@pytest.mark.parametrize("engine", ["shared", "naive"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_onnxruntime_equals_eager_for_other_numbers_of_candidates(name, engine, tmp_path):
    scorer = scorer_for(name, engine)
    path = export_onnx(scorer.engine, scorer.encode(shop_request(4)), tmp_path / "m.onnx", max_candidates=500)
    session = OnnxEngine(path, threads=1)
    for n in (1, 3, 64, 500):
        inputs = scorer.encode(shop_request(n, seed=n))
        with torch.no_grad():
            torch.testing.assert_close(session(*inputs), scorer.engine(*inputs), rtol=1e-5, atol=1e-5)
    # The onnxruntime engine plugs into the scorer like any other.
    request = shop_request(10)
    via_onnx = RequestScorer(scorer.bundle, engine=session).score(request)
    torch.testing.assert_close(torch.from_numpy(via_onnx.probabilities),
                               torch.from_numpy(scorer.score(request).probabilities), rtol=1e-5, atol=1e-6)
