"""Where things live: one home per public name, old import paths kept as thin re-exports."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import rankcourse
from rankcourse import inference


def _modules():
    for info in pkgutil.walk_packages(rankcourse.__path__, "rankcourse."):
        yield importlib.import_module(info.name)


@pytest.mark.parametrize("name", ["predict", "predict_logits", "predict_proba"])
def test_predictions_are_defined_and_exported_by_inference_only(name):
    homes = [m.__name__ for m in _modules() if name in getattr(m, "__all__", ())]
    assert homes == ["rankcourse.inference"]
    assert getattr(inference, name).__module__ == "rankcourse.inference"


def test_the_old_training_path_of_predict_proba_still_works_with_a_deprecation_warning():
    from rankcourse import training

    with pytest.warns(DeprecationWarning, match="rankcourse.inference"):
        assert training.predict_proba is inference.predict_proba
