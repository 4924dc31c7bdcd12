"""A one-class split has no AUC: every path that scores one says so the same way (NaN, one warning)."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from rankcourse import metrics
from rankcourse.data import make_ctr_data
from rankcourse.training import validation_row


@pytest.fixture(scope="module")
def one_class():
    data = make_ctr_data(600, n_dense=2, vocab_sizes=(5, 7), seed=0)
    valid = dataclasses.replace(data.valid, labels=torch.ones_like(data.valid.labels))
    return dataclasses.replace(data, valid=valid)


class _Constant(torch.nn.Module):
    def forward(self, dense, sparse):
        return dense[:, 0] * 0.1


def test_auc_is_defined_only_with_both_classes():
    assert metrics.auc_is_defined(np.array([0, 1, 1]))
    assert not metrics.auc_is_defined(np.array([1, 1, 1]))


def test_evaluate_of_a_one_class_split_gives_nan_auc_with_a_warning(one_class):
    with pytest.warns(UserWarning, match="AUC is undefined"):
        table = metrics.evaluate(np.full(len(one_class.valid), 0.5), one_class.valid)
    assert np.isnan(table.loc["click", "auc"])


def test_validation_row_of_a_one_class_split_gives_nan_auc_with_the_same_warning(one_class):
    with pytest.warns(UserWarning, match="AUC is undefined"):
        row = validation_row(_Constant(), one_class.valid, 64, scored=[0])
    assert np.isnan(row["valid_auc_click"])
    assert np.isfinite(row["valid_logloss_click"])


def test_bayes_metrics_of_a_one_class_split_gives_nan_auc_with_the_same_warning(one_class):
    with pytest.warns(UserWarning, match="AUC is undefined"):
        row = one_class.bayes_metrics("valid")
    assert np.isnan(row["auc"]) and np.isfinite(row["logloss"])


def test_the_three_paths_agree_on_a_two_class_split(one_class):
    split = one_class.test
    probs = split.true_prob[:, 0].numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bayes = one_class.bayes_metrics("test")
        table = metrics.evaluate(probs, split)
    assert bayes["auc"] == pytest.approx(table.loc["click", "auc"])
    assert bayes["logloss"] == pytest.approx(table.loc["click", "logloss"])
