"""Chapter 2's experiment bookkeeping and the FTRL-Proximal optimiser behave as the chapter relies on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rankcourse.experiments.memorisation import (
    DeepModel,
    WideModel,
    add_crossed_field,
    choose_unseen_pairs,
    coordinates_to_check,
    excess_logloss,
    flat_wide_loss,
    interaction_table,
    kept_cross_weights,
    nonzero_by_block,
    pair_mask,
    prepare_run,
    score_subsets,
)
from rankcourse.ftrl import FTRLProximal, ftrl_weight
from rankcourse.layers import WideLinear

PAIRS = [("taste", "city"), ("device", "hour")]


@pytest.fixture(scope="module")
def run():
    return prepare_run(seed=0, n_rows=20_000)


def test_unseen_pairs_are_distinct_values_and_not_planted(run):
    truth = run.data.truth
    pairs = choose_unseen_pairs(truth)
    assert len(pairs) == 4
    assert len({t for t, _ in pairs}) == 4 and len({c for _, c in pairs}) == 4
    planted = {(c.value_a, c.value_b) for c in truth.crosses if (c.field_a, c.field_b) == ("taste", "city")}
    assert not planted & set(pairs)


def test_unseen_pairs_are_absent_from_training_but_kept_in_test(run):
    schema = run.data.schema
    assert not pair_mask(run.train, schema, run.unseen).any()
    assert not pair_mask(run.valid, schema, run.unseen).any()
    assert run.masks["unseen pairs"].sum() > 0
    assert len(run.test) == len(run.data.test)


def test_pair_mask_matches_a_row_by_row_comparison(run):
    schema = run.data.schema
    t = run.test.sparse[:, schema.sparse_index("taste")].tolist()
    c = run.test.sparse[:, schema.sparse_index("city")].tolist()
    expected = [(a, b) in set(run.unseen) for a, b in zip(t, c)]
    assert pair_mask(run.test, schema, run.unseen).tolist() == expected


def test_any_planted_cross_mask_is_the_union_of_the_cross_masks(run):
    names = [f"{c.label_a} x {c.label_b}" for c in run.data.truth.crosses]
    union = np.any([run.masks[n] for n in names], axis=0)
    assert np.array_equal(union, run.masks["any planted cross"])


def test_excess_logloss_is_zero_for_the_truth_and_equals_the_kl_divergence():
    p_true = np.array([0.1, 0.5, 0.02])
    assert excess_logloss(p_true, p_true) == pytest.approx(0.0, abs=1e-12)
    q = np.array([0.2, 0.4, 0.05])
    kl = p_true * np.log(p_true / q) + (1 - p_true) * np.log((1 - p_true) / (1 - q))
    assert excess_logloss(p_true, q) == pytest.approx(kl.mean(), rel=1e-12)


def test_score_subsets_scores_each_mask_and_rejects_a_length_mismatch(run):
    probs = run.test.true_prob[:, 0].double().numpy()
    table = score_subsets(probs, run.test, run.masks)
    assert list(table.index) == list(run.masks)
    assert table.loc["all rows", "rows"] == len(run.test)
    assert np.allclose(table["excess"], 0.0, atol=1e-9)
    assert np.allclose(table["logloss"], table["bayes_logloss"])
    with pytest.raises(ValueError, match="probs has 3 rows"):
        score_subsets(probs[:3], run.test, run.masks)


def test_flat_wide_loss_reproduces_the_module_and_its_gradient(run):
    schema = run.data.schema
    wide = WideLinear(schema, cross_pairs=PAIRS).double()
    torch.nn.init.normal_(wide.weight, std=0.3)
    rows = run.train.subset(slice(0, 16))
    dense, sparse, y = rows.dense.double(), rows.sparse, rows.labels[:, 0].double()
    theta0, loss_at = flat_wide_loss(wide, dense, sparse, y)
    loss = F.binary_cross_entropy_with_logits(wide(dense, sparse), y)
    assert torch.allclose(loss_at(theta0), loss)
    loss.backward()
    theta = theta0.clone().requires_grad_(True)
    loss_at(theta).backward()
    assert torch.allclose(theta.grad[: wide.weight.shape[0]], wide.weight.grad[:, 0])
    checked = coordinates_to_check(wide, sparse, n_inactive=10, seed=0)
    active = set(torch.unique(wide.active_indices(sparse)).tolist())
    assert active <= set(checked.tolist())
    assert len(checked) == len(active) + 10 + wide.dense_weight.numel() + 1


def test_interaction_table_is_zero_for_an_additive_logit_and_finds_a_bump(run):
    schema = run.data.schema
    ti, ci = schema.sparse_index("taste"), schema.sparse_index("city")

    def additive(dense, sparse):
        return (0.3 * sparse[:, ti].double() - 0.2 * sparse[:, ci].double()).numpy()

    def bumped(dense, sparse):
        return additive(dense, sparse) + 2.0 * ((sparse[:, ti] == 1) & (sparse[:, ci] == 2)).double().numpy()

    background = run.test.subset(slice(0, 1))
    assert np.abs(interaction_table(additive, background, schema)).max() < 1e-12
    table = interaction_table(bumped, background, schema)
    assert np.unravel_index(np.abs(table).argmax(), table.shape) == (1, 2)


def test_nonzero_counts_and_kept_crosses_follow_the_weights(run):
    schema, truth = run.data.schema, run.data.truth
    wide = WideLinear(schema, cross_pairs=PAIRS)
    with torch.no_grad():
        start = schema.total_vocab
        vb = schema.vocab_sizes[schema.sparse_index("city")]
        wide.weight[start + 1 * vb + 2, 0] = -1.5  # taste id 1 x city id 2
        wide.weight[start + 0, 0] = 0.5  # taste id 0 x city id 0
        wide.weight[0, 0] = 1.0  # the first id of the first field
    blocks = nonzero_by_block(wide, schema, PAIRS)
    assert blocks.loc["taste x city", "non_zero"] == 2 and blocks["non_zero"].sum() == 3
    kept = kept_cross_weights(wide, schema, truth, PAIRS)
    assert list(kept["weight"]) == [-1.5, 0.5]
    assert kept["cross"][0] == (f"taste={truth.decode('taste', [1])[0]} x city={truth.decode('city', [2])[0]}")


def test_wide_and_deep_models_return_one_logit_per_row(run):
    rows = run.train.subset(slice(0, 5))
    for model in (WideModel(run.data.schema), WideModel(run.data.schema, PAIRS), DeepModel(run.data.schema)):
        assert model(rows.dense, rows.sparse).shape == (5,)


def test_ftrl_weights_are_exactly_zero_while_the_evidence_is_below_l1():
    z = torch.tensor([-0.5, 0.2, 0.31, -2.0], dtype=torch.float64)
    w = ftrl_weight(z, torch.ones(4, dtype=torch.float64), alpha=1.0, beta=1.0, l1=0.3, l2=0.0)
    assert w[0] > 0 and w[1] == 0 and w[2] < 0 and w[3] > 0


def test_ftrl_optimiser_rejects_bad_settings_and_sparse_gradients():
    p = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match="alpha=0"):
        FTRLProximal([p], alpha=0)
    with pytest.raises(ValueError, match="l1=-1"):
        FTRLProximal([p], l1=-1)
    emb = torch.nn.Embedding(4, 1, sparse=True)
    emb(torch.tensor([1])).sum().backward()
    with pytest.raises(TypeError, match="dense gradients"):
        FTRLProximal(emb.parameters()).step()


def test_add_crossed_field_appends_the_exact_pair_index(run):
    crossed = add_crossed_field(run.test, "taste", "city")
    schema = run.data.schema
    vb = schema.vocab_sizes[schema.sparse_index("city")]
    expected = run.test.sparse[:, schema.sparse_index("taste")] * vb + run.test.sparse[:, schema.sparse_index("city")]
    assert torch.equal(crossed.sparse[:, -1], expected)
    assert crossed.schema.sparse[-1].name == "taste_x_city"
    assert crossed.schema.sparse[-1].vocab_size == schema.vocab_sizes[schema.sparse_index("taste")] * vb
    assert torch.equal(crossed.sparse[:, :-1], run.test.sparse)
