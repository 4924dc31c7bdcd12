"""rankcourse.glue: values reach myst-nb as plain numbers, and a missing myst-nb is not an error."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from rankcourse import glue as glue_module
from rankcourse.glue import glue

format_plain_text = pytest.importorskip("myst_nb.core.variables").format_plain_text


def _captured(monkeypatch) -> list[tuple]:
    calls: list[tuple] = []
    monkeypatch.setattr("myst_nb.glue", lambda name, value, display: calls.append((name, value, display)))
    return calls


@pytest.mark.parametrize("value", [np.float64(0.0625), np.float32(0.0625), torch.tensor(0.0625), np.array(0.0625)])
def test_numpy_and_torch_scalars_are_glued_as_python_floats(monkeypatch, value):
    calls = _captured(monkeypatch)
    glue("gain", value)
    ((name, glued, display),) = calls
    assert (name, glued, display) == ("gain", 0.0625, False) and type(glued) is float
    # what myst-nb does with {glue:text}`gain:.3f`: read the text back, then format it
    assert format_plain_text(repr(glued), ".3f") == "0.062"


def test_numpy_float_text_is_what_myst_nb_cannot_format():
    # the reason for the conversion: NumPy 2 writes np.float64(0.0625), not a number to myst-nb
    with pytest.raises(ValueError):
        format_plain_text(repr(np.float64(0.0625)), ".3f")


def test_integers_and_strings_pass_unchanged(monkeypatch):
    calls = _captured(monkeypatch)
    glue("rows", np.int64(300_000))
    glue("winner", "DeepFM", display=True)
    assert calls == [("rows", 300_000, False), ("winner", "DeepFM", True)]
    assert type(calls[0][1]) is int


def test_without_myst_nb_glue_does_nothing(monkeypatch):
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import myst_nb now raises ImportError
    assert glue_module.glue("gain", 0.5) is None


@pytest.mark.parametrize("name", ["", None, 3])
def test_a_missing_name_is_an_error(name):
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        glue(name, 0.5)
