"""Serving a trained ranking model: save and load it with its vocabularies, score raw requests,
share the user side of the work across candidates, and export it for onnxruntime.

* :mod:`.features` -- :class:`FeatureEncoder`: raw values -> ids and standardised numbers (training statistics).
* :mod:`.bundle` -- :func:`save_bundle` / :func:`load_bundle`: one file, atomic write, checked on load.
* :mod:`.engines` -- naive and shared-user-side scoring of one request's N candidates.
* :mod:`.scorer` -- :class:`RequestScorer`: raw request -> calibrated probabilities and top-k, clear errors.
* :mod:`.export` -- ``torch.export`` and ONNX (onnxruntime, optional extra ``rankcourse[serving]``).
* :mod:`.latency` -- percentiles of per-request latency over engines, sizes and thread counts.
* :mod:`.http` -- a standard-library HTTP endpoint and a bounded load test.
"""

from .bundle import (BundleError, BundleFormatError, BundleSchemaError, BundleVersionError, ModelBundle,
                     load_bundle, save_bundle)
from .engines import NaiveEngine, RequestLayout, SharedBehaviourRanker, SharedDeepFM, make_engine
from .features import DenseStatistic, FeatureEncoder, RequestError
from .scorer import Ranking, RequestScorer, corrected_probability

__all__ = ["FeatureEncoder", "DenseStatistic", "RequestError", "ModelBundle", "save_bundle", "load_bundle",
           "BundleError", "BundleFormatError", "BundleSchemaError", "BundleVersionError", "RequestLayout",
           "NaiveEngine", "SharedDeepFM", "SharedBehaviourRanker", "make_engine", "RequestScorer", "Ranking",
           "corrected_probability"]
