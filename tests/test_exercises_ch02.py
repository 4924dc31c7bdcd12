"""The Chapter 2 self-checks accept the reference solutions and reject typical wrong answers with a useful message."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rankcourse.exercises.ch02 import (
    check_cross_ids,
    check_ftrl_step,
    check_shared_bucket_fraction,
    reference_cross_ids,
    reference_ftrl_step,
    reference_ftrl_weight,
    reference_shared_bucket_fraction,
)
from rankcourse.ftrl import FTRLProximal, ftrl_step
from rankcourse.layers import CrossProductHashing
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


# --------------------------------------------------------------------------- one FTRL-Proximal step
def _student_ftrl(w, z, n, g, alpha, beta, l1, l2):
    sigma = ((n + g**2).sqrt() - n.sqrt()) / alpha
    z = z + g - sigma * w
    n = n + g**2
    w = torch.where(z.abs() <= l1, torch.zeros_like(z),
                    -(z - torch.sign(z) * l1) / ((beta + n.sqrt()) / alpha + l2))
    return w, z, n


def test_ftrl_check_accepts_the_reference_and_a_student_solution(capsys):
    check_ftrl_step(reference_ftrl_step)
    check_ftrl_step(_student_ftrl)
    assert "all 3 cases pass" in capsys.readouterr().out


def test_ftrl_reference_matches_the_package_optimiser_over_several_steps():
    gen = torch.Generator().manual_seed(3)
    param = torch.nn.Parameter(torch.zeros(30, dtype=torch.float64))
    opt = FTRLProximal([param], alpha=0.3, beta=0.5, l1=0.2, l2=0.1)
    w, z, n = (torch.zeros(30, dtype=torch.float64) for _ in range(3))
    for _ in range(5):
        g = torch.randn(30, generator=gen, dtype=torch.float64)
        param.grad = g.clone()
        opt.step()
        w, z, n = reference_ftrl_step(w, z, n, g, 0.3, 0.5, 0.2, 0.1)
        assert torch.allclose(param.detach(), w, atol=1e-14)
    assert torch.equal(ftrl_step(w, z, n, g, 0.3, 0.5, 0.2, 0.1)[0], reference_ftrl_step(w, z, n, g, 0.3, 0.5, 0.2, 0.1)[0])


def _ftrl_variant(kind):
    def step(w, z, n, g, alpha, beta, l1, l2):
        n_new = n + g * g
        sigma = (n_new.sqrt() - n.sqrt()) / alpha
        z_new = z + g - sigma * w
        if kind == "no-sigma":
            z_new = z + g
        elif kind == "full-sigma":
            z_new = z + g - n_new.sqrt() / alpha * w
        elif kind == "sigma-sign":
            z_new = z + g + sigma * w
        elif kind == "n-not-updated":
            n_new = n
        elif kind == "old-accumulators":
            return reference_ftrl_weight(z, n, alpha, beta, l1, l2), z_new, n_new
        w_new = reference_ftrl_weight(z_new, n_new, alpha, beta, l1, l2)
        if kind == "weight-sign":
            w_new = -w_new
        elif kind == "no-zeros":
            w_new = -(z_new - torch.sign(z_new) * l1) / ((beta + n_new.sqrt()) / alpha + l2)
        elif kind == "no-l2":
            w_new = reference_ftrl_weight(z_new, n_new, alpha, beta, l1, 0.0)
        elif kind == "in-place":
            z.add_(1.0)
        elif kind == "two-outputs":
            return w_new, z_new
        elif kind == "unnamed":
            w_new = 1.01 * w_new
        return w_new, z_new, n_new
    return step


@pytest.mark.parametrize(
    "kind, message",
    [
        ("no-sigma", "without the term - sigma"),
        ("full-sigma", "INCREASE of 1/eta"),
        ("sigma-sign", "sign of sigma"),
        ("n-not-updated", "n was not updated"),
        ("old-accumulators", "OLD accumulators"),
        ("weight-sign", "weight has the wrong sign"),
        ("no-zeros", "exactly zero"),
        ("no-l2", "l2 is missing"),
        ("in-place", "in place"),
        ("two-outputs", "three tensors"),
        ("unnamed", "coordinate .* expected"),
    ],
)
def test_ftrl_check_names_the_mistake(kind, message):
    with pytest.raises(AssertionError, match=message):
        check_ftrl_step(_ftrl_variant(kind))


def test_ftrl_check_reports_an_unwritten_stub():
    def stub(*args):
        raise NotImplementedError

    with pytest.raises(AssertionError, match="not written yet"):
        check_ftrl_step(stub)


def test_cross_ids_check_names_a_collision_it_has_no_name_for():
    with pytest.raises(AssertionError, match="the same index"):
        check_cross_ids(lambda a, b, va, vb: (a * vb + b) // 2)


# ----------------------------------------------------------------------------- hash collisions
def test_bucket_check_accepts_the_reference(capsys):
    check_shared_bucket_fraction(reference_shared_bucket_fraction)
    assert "all 6 cases pass" in capsys.readouterr().out


def test_bucket_reference_matches_a_simulation():
    gen = np.random.default_rng(3)
    buckets = gen.integers(0, 8, size=(20_000, 6))
    counts = np.stack([np.bincount(row, minlength=8)[row] for row in buckets])
    assert abs((counts > 1).mean() - reference_shared_bucket_fraction(6, 8)) < 0.01


@pytest.mark.parametrize("wrong, slip", [
    (lambda n, m: (1 - 1 / m) ** (n - 1), "ALONE"),
    (lambda n, m: 1 - (1 - 1 / m) ** n, "counts the cell itself"),
    (lambda n, m: n / m, "load factor"),
    (lambda n, m: n * (n - 1) / (2 * m), "PAIRS"),
    (lambda n, m: 1 - math.exp(-(n - 1) / m), "Poisson approximation"),
    (lambda n, m: 1 - math.exp(-n / m), "Poisson approximation"),
    (lambda n, m: [0.1, 0.2], "expected one number"),
])
@pytest.mark.parametrize("seed", [None, 20261206], ids=["public", "hidden"])
def test_bucket_check_names_the_slip(wrong, slip, seed):
    # the hidden cases keep the public ones' roles, so the same slips are recognised
    with pytest.raises(AssertionError, match=slip):
        check_shared_bucket_fraction(wrong, seed=seed)


def test_bucket_check_says_when_not_written():
    def unwritten(n, m):
        raise NotImplementedError

    with pytest.raises(AssertionError, match="not written yet"):
        check_shared_bucket_fraction(unwritten)
