"""The Chapter 4 self-checks pass right answers and name the typical mistakes."""

from __future__ import annotations

import pytest
import torch

from rankcourse.exercises.ch04 import (
    check_cin_layer,
    check_cin_weight_gradient,
    check_first_layer_jacobian,
    reference_cin_layer,
    reference_cin_weight_gradient,
    reference_first_layer_jacobian,
)
from rankcourse.layers import CIN, CrossNetV2


# --------------------------------------------------------------------------- CIN layer
def test_cin_layer_check_passes_the_reference(capsys):
    check_cin_layer(reference_cin_layer)
    assert "all 5 cases pass" in capsys.readouterr().out


def test_cin_layer_check_passes_a_broadcasting_answer():
    def broadcast(x0, xk, W):
        products = xk.unsqueeze(2) * x0.unsqueeze(1)            # (B, H_prev, F, d)
        return (W.unsqueeze(0).unsqueeze(-1) * products.unsqueeze(1)).sum(dim=(2, 3))

    check_cin_layer(broadcast)


def test_reference_cin_layer_matches_the_package_module():
    torch.manual_seed(0)
    x0 = torch.randn(5, 3, 4, dtype=torch.float64)
    cin = CIN(3, 4, layer_sizes=(2, 2), split_half=False).double()
    first = reference_cin_layer(x0, x0, cin.weights[0].view(2, 3, 3))
    second = reference_cin_layer(x0, first, cin.weights[1].view(2, 2, 3))
    expected = cin(x0)
    assert torch.allclose(torch.cat([first.sum(-1), second.sum(-1)], dim=1), expected, atol=1e-12)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda x0, xk, W: torch.einsum("hij,bie,bje->bhe", W, xk, xk[:, : x0.shape[1]]), "by themselves"),
        (lambda x0, xk, W: torch.einsum("hji,bie,bje->bhe", W, xk, x0), "indices of W are swapped"),
        (lambda x0, xk, W: torch.einsum("hij,bie,bjf->bhe", W, xk, x0), "bit-wise"),
        (lambda x0, xk, W: torch.einsum("hij,bie,bje->bh", W, xk, x0), "summed over the embedding"),
        (lambda x0, xk, W: torch.einsum("hij,bie,bje->bhe", W, xk, x0).squeeze(0), "squeeze"),
        (lambda x0, xk, W: 2 * torch.einsum("hij,bie,bje->bhe", W, xk, x0), "not one of the usual mistakes"),
        (lambda x0, xk, W: torch.einsum("hij,bie,bje->bhe", W, xk, x0).tolist(), "expected a torch.Tensor"),
    ],
)
def test_cin_layer_check_names_the_mistake(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_cin_layer(wrong)


def test_cin_layer_check_rejects_changing_an_input_in_place():
    def in_place(x0, xk, W):
        out = reference_cin_layer(x0, xk, W)
        xk.zero_()
        return out

    with pytest.raises(AssertionError, match="changed its input xk in place"):
        check_cin_layer(in_place)


# --------------------------------------------------------------------------- CIN weight gradient
def test_cin_gradient_check_passes_the_reference(capsys):
    check_cin_weight_gradient(reference_cin_weight_gradient)
    assert "all 5 cases agree with autograd" in capsys.readouterr().out


def test_reference_cin_gradient_matches_finite_differences():
    from rankcourse.gradcheck import numerical_gradient

    torch.manual_seed(1)
    x0, xk = torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(2, 5, 4, dtype=torch.float64)
    delta, W = torch.randn(2, 2, 4, dtype=torch.float64), torch.randn(2, 5, 3, dtype=torch.float64)
    numeric = numerical_gradient(lambda w: (delta * reference_cin_layer(x0, xk, w)).sum(), W)
    assert torch.allclose(reference_cin_weight_gradient(x0, xk, delta), numeric, atol=1e-8)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda x0, xk, d: torch.einsum("bhe,bie,bje->hij", d, xk, x0) / x0.shape[0], "averaged over the batch"),
        (lambda x0, xk, d: torch.einsum("bhe,bie,bje->hji", d, xk, x0), "swapped"),
        (lambda x0, xk, d: torch.einsum("bhe,bie,bje->hij", d, xk, xk[:, : x0.shape[1]]), "xk where x0 belongs"),
        (lambda x0, xk, d: torch.einsum("bhe,bie,bjf->hij", d, xk, x0), "all pairs of coordinates"),
        (lambda x0, xk, d: torch.einsum("bhe,bie,bje->bhij", d, xk, x0), "one gradient per example"),
    ],
)
def test_cin_gradient_check_names_the_mistake(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_cin_weight_gradient(wrong)


# --------------------------------------------------------------------------- the first layer's Jacobian
def test_jacobian_check_passes_the_reference_and_autograd(capsys):
    check_first_layer_jacobian(reference_first_layer_jacobian)
    check_first_layer_jacobian(
        lambda x0, W, b: torch.autograd.functional.jacobian(lambda x: x * (W @ x + b) + x, x0))
    assert "all 4 cases pass" in capsys.readouterr().out


def test_jacobian_reference_matches_the_package_layer():
    torch.manual_seed(0)
    layer = CrossNetV2(6, 1).double()
    with torch.no_grad():
        layer.layers[0].bias.normal_()
    x0 = torch.randn(6, dtype=torch.float64)
    W, b = layer.layers[0].weight.detach(), layer.layers[0].bias.detach()
    jac = torch.autograd.functional.jacobian(lambda x: layer(x[None])[0], x0)
    assert torch.allclose(reference_first_layer_jacobian(x0, W, b), jac, atol=1e-12)


def _eye(x0):
    return torch.eye(len(x0), dtype=x0.dtype)


@pytest.mark.parametrize("wrong, slip", [
    (lambda x0, W, b: _eye(x0) + x0[:, None] * W, "x0 held fixed"),
    (lambda x0, W, b: reference_first_layer_jacobian(x0, W, b) - _eye(x0), "residual"),
    (lambda x0, W, b: _eye(x0) + torch.diag(W @ x0 + b) + x0[:, None] * W.T, "transposed: d"),
    (lambda x0, W, b: _eye(x0) + torch.diag(W @ x0) + x0[:, None] * W, "bias is missing"),
    (lambda x0, W, b: reference_first_layer_jacobian(x0, W, b).T, "result is transposed"),
    (lambda x0, W, b: _eye(x0) + torch.diag(W @ x0 + b) @ (x0[:, None] * W), "a sum"),
    (lambda x0, W, b: reference_first_layer_jacobian(x0, W, b)[0], "shape"),
])
@pytest.mark.parametrize("seed", [None, 20261206], ids=["public", "hidden"])
def test_jacobian_check_names_the_slip(wrong, slip, seed):
    # the hidden cases keep the public ones' roles, so the same slips are recognised
    with pytest.raises(AssertionError, match=slip):
        check_first_layer_jacobian(wrong, seed=seed)


def test_jacobian_check_rejects_changing_an_input_in_place():
    def in_place(x0, W, b):
        b += 1.0
        return reference_first_layer_jacobian(x0, W, b - 1.0)

    with pytest.raises(AssertionError, match="in place"):
        check_first_layer_jacobian(in_place)
