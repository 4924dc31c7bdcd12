"""The Chapter 4 self-checks pass the reference answers and name the typical mistakes."""

from __future__ import annotations

import pytest
import torch

from rankcourse.exercises.ch04 import (
    check_cross_v2_layer,
    check_mix_param_count,
    reference_cross_v2_layer,
    reference_mix_param_count,
)
from rankcourse.layers import CrossNetV2


# --------------------------------------------------------------------------- cross layer
def test_cross_v2_check_passes_the_reference(capsys):
    check_cross_v2_layer(reference_cross_v2_layer)
    assert "all 5 cases pass" in capsys.readouterr().out


def test_cross_v2_check_passes_an_equivalent_einsum_answer():
    check_cross_v2_layer(lambda x0, xl, W, b: x0 * (torch.einsum("ij,bj->bi", W, xl) + b) + xl)


def test_reference_cross_v2_layer_matches_the_package_layer():
    torch.manual_seed(0)
    net = CrossNetV2(7, 1).double()
    with torch.no_grad():
        net.layers[0].bias.normal_()
    x0 = torch.randn(4, 7, dtype=torch.float64)
    layer = net.layers[0]
    expected = net(x0)
    assert torch.allclose(reference_cross_v2_layer(x0, x0, layer.weight, layer.bias), expected, atol=1e-12)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda x0, xl, W, b: x0 * (xl @ W.T) + b + xl, "bias is added outside"),
        (lambda x0, xl, W, b: xl * (xl @ W.T + b) + xl, "multiplied by xl where x0 belongs"),
        (lambda x0, xl, W, b: x0 * (xl @ W + b) + xl, "W is applied transposed"),
        (lambda x0, xl, W, b: x0 * (xl @ W.T + b), "residual is missing"),
        (lambda x0, xl, W, b: x0 * (xl @ W.T + b) + x0, "residual adds x0"),
    ],
)
def test_cross_v2_check_names_the_mistake(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_cross_v2_layer(wrong)


def test_cross_v2_check_catches_a_squeezed_batch_of_one():
    def squeezing(x0, xl, W, b):
        return (x0 * (xl @ W.T + b) + xl).squeeze()

    with pytest.raises(AssertionError, match=r"batch of one.*\(5,\).*expected \(1, 5\).*squeeze"):
        check_cross_v2_layer(squeezing)


def test_cross_v2_check_rejects_in_place_changes_and_non_tensors():
    def in_place(x0, xl, W, b):
        xl += x0 * (xl @ W.T + b)
        return xl

    with pytest.raises(AssertionError, match="changed its input xl in place"):
        check_cross_v2_layer(in_place)
    with pytest.raises(AssertionError, match="returned ndarray"):
        check_cross_v2_layer(lambda x0, xl, W, b: (x0 * (xl @ W.T + b) + xl).numpy())


def test_cross_v2_check_reports_an_unknown_error_with_its_size():
    with pytest.raises(AssertionError, match="not one of the usual mistakes"):
        check_cross_v2_layer(lambda x0, xl, W, b: 2 * (x0 * (xl @ W.T + b)) + xl)


def test_cross_v2_check_does_not_leave_a_stub_passing():
    def stub(x0, xl, W, b):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        check_cross_v2_layer(stub)


# --------------------------------------------------------------------------- parameter count
def test_mix_count_check_passes_the_reference(capsys):
    check_mix_param_count(reference_mix_param_count)
    assert "match the parameters of a real CrossNetMix" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda d, L, r, E: L * (E * (2 * d * r + r * r) + d), "left out the gates"),
        (lambda d, L, r, E: L * (E * (2 * d * r + r * r) + d + E * d), "left out the gate biases"),
        (lambda d, L, r, E: L * (E * (2 * d * r) + d + E * (d + 1)), r"left out C"),
        (lambda d, L, r, E: E * (2 * d * r + r * r) + d + E * (d + 1), "multiply by n_layers"),
        (lambda d, L, r, E: L * (E * (2 * d * r + r * r + d) + E * (d + 1)), "shared by the experts"),
    ],
)
def test_mix_count_check_names_the_missing_part(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_mix_param_count(wrong)


def test_mix_count_check_rejects_a_non_integer():
    with pytest.raises(AssertionError, match="expected an integer count"):
        check_mix_param_count(lambda d, L, r, E: reference_mix_param_count(d, L, r, E) + 0.5)
