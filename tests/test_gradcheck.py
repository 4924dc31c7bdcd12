"""Central differences and gradient comparison."""

import numpy as np
import pytest
import torch

from rankcourse.gradcheck import GradientComparison, compare_gradients, numerical_gradient


def f_known(x):
    return (torch.sin(x) * x**2).sum()


def df_known(x):
    return torch.cos(x) * x**2 + 2 * x * torch.sin(x)


@pytest.mark.parametrize("shape", [(), (5,), (2, 3, 4)])
def test_numerical_gradient_of_a_known_function_any_shape(shape):
    x = torch.linspace(-2, 2, max(1, int(np.prod(shape)))).reshape(shape).to(torch.float32)
    before = x.clone()
    g = numerical_gradient(f_known, x)
    assert g.shape == x.shape and g.dtype == torch.float64
    assert torch.equal(x, before)  # the input is not modified
    compare_gradients(df_known(x.double()), g).assert_close(atol=1e-8, rtol=1e-7)


def test_numerical_gradient_matches_autograd_of_a_small_network():
    torch.manual_seed(0)
    w = torch.randn(3, 4, dtype=torch.float64)
    x = torch.randn(6, 3, dtype=torch.float64)

    def loss(weight):
        return torch.tanh(x @ weight).pow(2).mean()

    wg = w.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(loss(wg), wg)
    cmp = compare_gradients(auto, numerical_gradient(loss, w))
    assert cmp.max_abs_error < 1e-9 and cmp.n == 12
    cmp.assert_close()


def test_numerical_gradient_accepts_arrays_and_numbers_from_f():
    g = numerical_gradient(lambda t: float((t**2).sum()), np.array([1.0, -2.0]))
    assert torch.allclose(g, torch.tensor([2.0, -4.0], dtype=torch.float64), atol=1e-8)


def test_numerical_gradient_rejects_non_scalar_f_and_bad_eps():
    with pytest.raises(ValueError, match=r"scalar.*\(2,\)"):
        numerical_gradient(lambda t: t * 2, torch.ones(2))
    with pytest.raises(ValueError, match="eps"):
        numerical_gradient(f_known, torch.ones(2), eps=0.0)
    with pytest.raises(TypeError, match="callable"):
        numerical_gradient(3, torch.ones(2))


def test_compare_gradients_reports_max_abs_and_relative_error():
    a = torch.tensor([[1.0, 0.0], [4.0, -2.0]], dtype=torch.float64)
    b = torch.tensor([[1.1, 0.0], [4.0, -2.5]], dtype=torch.float64)
    cmp = compare_gradients(a, b)
    assert isinstance(cmp, GradientComparison)
    assert cmp.max_abs_error == pytest.approx(0.5)
    assert cmp.max_rel_error == pytest.approx(0.2)  # |-2 - -2.5| / 2.5
    assert cmp.worst_index == (1, 1) and cmp.n == 4
    text = str(cmp)
    assert "max abs error 5.000e-01" in text and "(1, 1)" in text
    cmp.assert_close(atol=0.51, rtol=0)
    with pytest.raises(AssertionError, match="2 of 4"):
        cmp.assert_close(atol=1e-3, rtol=1e-3)


def test_compare_gradients_rejects_shape_mismatch_and_flags_nan():
    with pytest.raises(ValueError, match=r"\(2,\) and \(3,\)"):
        compare_gradients(torch.ones(2), torch.ones(3))
    cmp = compare_gradients(torch.tensor([1.0, float("nan")]), torch.ones(2))
    assert np.isnan(cmp.max_abs_error) and cmp.worst_index == (1,)
    with pytest.raises(AssertionError):
        cmp.assert_close(atol=1.0, rtol=1.0)
