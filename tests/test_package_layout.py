"""Where things live: one home per public name, old import paths kept as thin re-exports."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import rankcourse
from rankcourse import inference


def _modules():
    for info in pkgutil.walk_packages(rankcourse.__path__, "rankcourse."):
        if info.name.endswith(".__main__"):
            continue  # a command's entry point runs on import (python -m rankcourse.grade)
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


@pytest.mark.parametrize("name", ["replicas", "distributed", "ddp_job", "sharded_tables"])
def test_old_paths_of_the_scale_modules_are_the_same_modules(name):
    old = importlib.import_module(f"rankcourse.{name}")
    new = importlib.import_module(f"rankcourse.scale.{name}")
    assert old is new


def test_importing_the_package_does_not_load_torch_distributed_helpers():
    import subprocess
    import sys

    code = "import sys, rankcourse; print('rankcourse.scale.distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_module_of_the_package_is_longer_than_about_600_lines():
    long = {m.__name__: n for m in _modules() if getattr(m, "__file__", None)
            for n in [sum(1 for _ in open(m.__file__, encoding="utf-8"))] if n > 620}
    assert long == {}
