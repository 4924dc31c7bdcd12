"""rankcourse.experiments.gradient_table: rows, assertions and the summary of a gradient check."""

from __future__ import annotations

import pytest
import torch

from rankcourse.experiments.gradient_table import GradientCheckTable
from rankcourse.gradcheck import numerical_gradient


def _square_gradients():
    x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    numeric = numerical_gradient(lambda t: (t ** 2).sum(), x)
    leaf = x.clone().requires_grad_(True)
    (leaf ** 2).sum().backward()
    return x, numeric, leaf.grad


def test_a_right_gradient_is_recorded_with_its_errors():
    x, numeric, autograd = _square_gradients()
    checks = GradientCheckTable()
    checks.add("square", "d/dx", numeric, autograd, analytic=2 * x)
    checks.add("square", "d/dx, no formula", numeric, autograd)
    table = checks.table()
    assert list(table.gradient) == ["d/dx", "d/dx, no formula"]
    assert table.loc[0, "analytic vs autograd"] < 1e-12
    assert pd_isna(table.loc[1, "analytic vs numeric"])
    assert checks.largest_numeric_error() < 1e-8


def test_a_wrong_formula_is_an_error_naming_the_check():
    x, numeric, autograd = _square_gradients()
    checks = GradientCheckTable()
    with pytest.raises(AssertionError, match="square, d/dx, analytic vs numeric"):
        checks.add("square", "d/dx", numeric, autograd, analytic=x)  # forgot the factor 2
    assert checks.table().empty


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))
