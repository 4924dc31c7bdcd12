"""The Chapter 2 self-checks accept the reference solutions and reject typical wrong answers with a useful message."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rankcourse.exercises.ch02 import (
    check_cross_ids,
    check_wide_gradient,
    reference_cross_ids,
    reference_wide_gradient,
)
from rankcourse.layers import CrossProductHashing, WideLinear
from rankcourse.schema import FeatureSchema, SparseField


# --------------------------------------------------------------------------- cross ids
def test_cross_ids_check_accepts_the_reference(capsys):
    check_cross_ids(reference_cross_ids)
    assert "all cases pass" in capsys.readouterr().out


def test_cross_ids_check_accepts_another_one_to_one_numbering():
    check_cross_ids(lambda a, b, va, vb: b * va + a)


def test_cross_ids_reference_matches_the_package_exact_combination():
    schema = FeatureSchema(dense=(), sparse=(SparseField("taste", 8), SparseField("city", 12)))
    hashing = CrossProductHashing(schema, [("taste", "city")], n_buckets=1000)
    sparse = torch.tensor([[t, c] for t in range(8) for c in range(12)])
    assert torch.equal(hashing(sparse)[:, 0], reference_cross_ids(sparse[:, 0], sparse[:, 1], 8, 12))


def test_cross_ids_check_names_a_symmetric_sum():
    with pytest.raises(AssertionError, match="symmetric"):
        check_cross_ids(lambda a, b, va, vb: a + b)


def test_cross_ids_check_names_a_product():
    with pytest.raises(AssertionError, match="sum or product"):
        check_cross_ids(lambda a, b, va, vb: a * b)


def test_cross_ids_check_names_the_wrong_stride():
    with pytest.raises(AssertionError, match="stride must be vocab_b"):
        check_cross_ids(lambda a, b, va, vb: a * va + b)


def test_cross_ids_check_rejects_indices_out_of_range():
    with pytest.raises(AssertionError, match=r"must lie in \[0, vocab_a \* vocab_b\)"):
        check_cross_ids(lambda a, b, va, vb: a * vb + b + 1)


def test_cross_ids_check_rejects_a_wrong_shape():
    with pytest.raises(AssertionError, match="shape"):
        check_cross_ids(lambda a, b, va, vb: torch.stack([a, b], 1))


# --------------------------------------------------------------------------- wide gradient
def _student_correct(phi, w, b, y):
    p = torch.sigmoid(phi @ w + b)
    return phi.T @ (p - y) / len(y), (p - y).mean()


def test_wide_gradient_check_accepts_the_reference(capsys):
    check_wide_gradient(reference_wide_gradient)
    check_wide_gradient(_student_correct)
    assert "all cases pass" in capsys.readouterr().out


def test_wide_gradient_reference_equals_autograd_on_wide_linear():
    schema = FeatureSchema(dense=("d",), sparse=(SparseField("a", 3), SparseField("b", 4)))
    wide = WideLinear(schema, cross_pairs=[("a", "b")]).double()
    torch.nn.init.normal_(wide.weight, std=0.3)
    torch.nn.init.normal_(wide.dense_weight, std=0.3)
    gen = torch.Generator().manual_seed(0)
    sparse = torch.stack([torch.randint(0, 3, (7,), generator=gen), torch.randint(0, 4, (7,), generator=gen)], 1)
    dense = torch.randn(7, 1, generator=gen, dtype=torch.float64)
    y = torch.tensor([1.0, 0, 1, 0, 0, 1, 1], dtype=torch.float64)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(wide(dense, sparse), y)
    loss.backward()
    theta = torch.cat([wide.weight.detach()[:, 0], wide.dense_weight.detach()])
    gw, gb = reference_wide_gradient(wide.phi(dense, sparse), theta, wide.bias.detach(), y)
    auto = torch.cat([wide.weight.grad[:, 0], wide.dense_weight.grad])
    assert torch.allclose(gw, auto, atol=1e-12)
    assert torch.allclose(gb, wide.bias.grad, atol=1e-12)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda phi, w, b, y: (-_student_correct(phi, w, b, y)[0], -_student_correct(phi, w, b, y)[1]), "sign is flipped"),
        (lambda phi, w, b, y: (phi.T @ (torch.sigmoid(phi @ w + b) - y), (torch.sigmoid(phi @ w + b) - y).sum()),
         "times too large"),
        (lambda phi, w, b, y: (phi.T @ (phi @ w + b - y) / len(y), (phi @ w + b - y).mean()), "logit z instead"),
        (lambda phi, w, b, y: (phi * (torch.sigmoid(phi @ w + b) - y)[:, None], (torch.sigmoid(phi @ w + b) - y).mean()),
         "sum \\(or average\\) over the rows"),
        (lambda phi, w, b, y: (_student_correct(phi, w, b, y)[0], torch.tensor(0.0)), "grad_b"),
    ],
    ids=["sign", "sum-not-mean", "logit-not-prob", "per-row", "bias"],
)
def test_wide_gradient_check_names_the_mistake(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_wide_gradient(wrong)


def test_wide_gradient_check_catches_an_unstable_sigmoid():
    def unstable(phi, w, b, y):
        z = phi @ w + b
        p = torch.exp(z) / (1 + torch.exp(z))
        return phi.T @ (p - y) / len(y), (p - y).mean()

    with pytest.raises(AssertionError, match="NaN or inf"):
        check_wide_gradient(unstable)


def test_wide_gradient_check_accepts_numpy_outputs():
    def numpy_version(phi, w, b, y):
        phi, w, y = phi.numpy(), w.numpy(), y.numpy()
        p = 1 / (1 + np.exp(-np.clip(phi @ w + float(b), -500, 500)))
        return phi.T @ (p - y) / len(y), float(np.mean(p - y))

    check_wide_gradient(numpy_version)


def test_cross_ids_check_names_a_collision_it_has_no_name_for():
    with pytest.raises(AssertionError, match="the same index"):
        check_cross_ids(lambda a, b, va, vb: (a * vb + b) // 2)
