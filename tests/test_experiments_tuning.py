"""rankcourse.experiments.tuning: the depth experiment's helpers and the calibration summary."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rankcourse.experiments.tuning import (
    DEPTH_VARIANTS,
    calibration_summary,
    gradient_flow_experiment,
    he_init,
    layer_gradient_norms,
    logistic_teacher_batch,
    weight_layers,
)
from rankcourse.layers import MLP


def test_he_init_gives_variance_two_over_fan_in_and_zero_bias():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(400, 300), nn.ReLU(), nn.Linear(300, 1))
    he_init(net)
    assert abs(float(net[0].weight.detach().var()) / (2 / 400) - 1) < 0.05
    assert torch.count_nonzero(net[0].bias) == 0 and torch.count_nonzero(net[2].bias) == 0


def test_weight_layers_skip_the_residual_projections():
    mlp = MLP(8, [16, 4], residual=True, out_dim=1)  # widths change: two skip projections exist
    names = [n for n, m in mlp.named_modules() if isinstance(m, nn.Linear)]
    assert any("skip" in n for n in names)
    layers = weight_layers(mlp)
    assert len(layers) == 3 and layers[-1].out_features == 1


def test_teacher_batch_is_reproducible_and_has_both_labels():
    x1, y1 = logistic_teacher_batch(3)
    x2, y2 = logistic_teacher_batch(3)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert x1.shape == (512, 64) and set(y1.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(logistic_teacher_batch(4)[0], x1)


def test_layer_gradient_norms_measure_every_layer_before_and_after_training():
    x, y = logistic_teacher_batch(0, n_rows=64, width=8)
    torch.manual_seed(0)
    norms = layer_gradient_norms(MLP(8, [8, 8, 8], out_dim=1), x, y, steps=3)
    assert sorted(norms) == [0, 3]
    assert all(v.shape == (4,) and (v > 0).all() for v in norms.values())
    assert not np.allclose(norms[0], norms[3])  # the network moved


def test_gradient_flow_shows_the_vanishing_first_layer_of_a_deep_plain_mlp():
    table, profiles = gradient_flow_experiment([2, 12], seeds=[0], width=32, steps=1, progress=False)
    assert list(table.index.get_level_values("variant").unique()) == list(DEPTH_VARIANTS)
    first = table["first_layer"]
    assert first["plain", 12] < 1e-3 * first["plain", 2]   # 6**-10 in variance
    assert first["He init", 12] > 0.05 * first["He init", 2]
    assert len(profiles["plain", 12]) == 1 and profiles["plain", 12][0].shape == (13,)


def test_calibration_summary_before_and_after_a_correction():
    y = np.array([0, 0, 1, 1, 0, 1], dtype=float)
    p = np.array([0.1, 0.2, 0.8, 0.7, 0.3, 0.9])
    s = calibration_summary(y, np.minimum(2 * p, 0.99), p)
    assert s["AUC"] == s["AUC fixed"] == 1.0
    assert s["mean p fixed"] == pytest.approx(p.mean())
    assert s["log loss fixed"] < s["log loss"]


def test_calibration_summary_names_the_shapes_it_cannot_use():
    with pytest.raises(ValueError, match=r"shapes \(3,\), \(2,\), \(3,\)"):
        calibration_summary(np.zeros(3), np.zeros(2), np.zeros(3))
