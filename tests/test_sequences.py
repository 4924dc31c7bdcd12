"""Sequence fields, the behaviour-history generator, the pooling/attention layers, the sequence models, GAUC."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from rankcourse.data import make_behaviour_data
from rankcourse.exercises.ch06 import check_behaviour_pooling
from rankcourse.gradcheck import compare_gradients, numerical_gradient
from rankcourse.group_metrics import gauc, per_user_auc
from rankcourse.layers import (AUGRUCell, Dice, InterestEvolution, MeanPooling, SequenceEmbedding, SumPooling,
                               TargetAttentionPooling, TransformerPooling)
from rankcourse.models import BehaviourRanker
from rankcourse.models.sequence import POOLINGS
from rankcourse.schema import FeatureSchema, SequenceField, SparseField
from rankcourse.training import fit


def _schema(max_len: int = 4) -> FeatureSchema:
    return FeatureSchema(sparse=(SparseField("user", 3), SparseField("item", 6)),
                         sequences=(SequenceField("hist", 6, max_len, target="item"),))


def _batch(gen: torch.Generator, batch: int = 5, length: int = 6, dim: int = 4, dtype=torch.float32):
    h = torch.randn(batch, length, dim, generator=gen, dtype=dtype)
    c = torch.randn(batch, dim, generator=gen, dtype=dtype)
    lengths = torch.tensor([length, 3, 1, 0, 2][:batch])
    mask = torch.arange(length)[None, :] < lengths[:, None]
    return h, c, mask


# ----------------------------------------------------------------------------- schema
def test_sequence_field_appends_padded_columns_to_sparse():
    s = _schema(3)
    assert [f.name for f in s.sparse] == ["user", "item", "hist[0]", "hist[1]", "hist[2]"]
    assert s.sparse[2].vocab_size == 7 and s.sequence("hist").padding_id == 6
    assert s.sequence_columns("hist") == (2, 3, 4)
    assert s.subset().sequences == s.sequences and s.subset(sparse_names=["user"]).sequences == ()


def test_schema_names_field_row_and_position_of_a_history_gap():
    s = _schema(3)
    s.validate(torch.zeros(2, 0), torch.tensor([[0, 1, 2, 6, 6], [1, 1, 6, 6, 6]]))
    with pytest.raises(ValueError, match=r"'hist': row 1 has id 3 at position 2 after padding"):
        s.validate(torch.zeros(2, 0), torch.tensor([[0, 1, 2, 6, 6], [1, 1, 6, 6, 3]]))
    with pytest.raises(ValueError, match=r"hist\[1\]' has id 7"):
        s.validate(torch.zeros(1, 0), torch.tensor([[0, 1, 2, 7, 6]]))


def test_schema_rejects_a_target_with_another_vocabulary():
    with pytest.raises(ValueError, match="share one vocabulary"):
        FeatureSchema(sparse=(SparseField("item", 5),), sequences=(SequenceField("hist", 6, 2, target="item"),))
    with pytest.raises(ValueError, match="max_len must be a positive int"):
        SequenceField("hist", 6, 0)


# ----------------------------------------------------------------------------- generator
def test_generator_same_seed_same_data_and_control_shares_every_draw():
    a, b = make_behaviour_data(300, 5, seed=3), make_behaviour_data(300, 5, seed=3)
    c = make_behaviour_data(300, 5, seed=3, history_effect=0.0)
    assert torch.equal(a.train.sparse, b.train.sparse) and torch.equal(a.train.labels, b.train.labels)
    assert torch.equal(a.train.sparse, c.train.sparse)
    # Control: the true probability ignores the history, so wiping it changes nothing.
    sparse = c.test.sparse.clone()
    cols = list(c.schema.sequence_columns("hist_category"))
    sparse[:, cols] = c.schema.sequence("hist_category").padding_id
    assert np.allclose(c.truth.prob(None, sparse), c.test.true_prob[:, 0].numpy(), atol=1e-6)
    # Planted: it does not ignore it.
    assert not np.allclose(a.truth.prob(None, sparse), a.test.true_prob[:, 0].numpy(), atol=1e-3)


def test_generator_lengths_are_long_tailed_and_padding_is_never_relevant():
    ds = make_behaviour_data(2000, 2, seed=0, max_len=20, mean_length=8.0)
    lengths = ds.truth.history_length
    assert (lengths == 0).any() and (lengths == 20).any()
    assert np.median(lengths) < lengths.mean()
    rel = ds.truth.relevance(ds.train.sparse)
    pad = (ds.train.sparse[:, list(ds.schema.sequence_columns("hist_item"))] == 1000).numpy()
    assert rel[pad].sum() == 0 and rel[~pad].sum() > 0


def test_planted_history_raises_the_bayes_auc_over_the_control():
    planted = make_behaviour_data(1500, 10, seed=1).bayes_metrics()["auc"]
    control = make_behaviour_data(1500, 10, seed=1, history_effect=0.0).bayes_metrics()["auc"]
    assert planted > control + 0.05


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_users=1), "n_users must be an int >= 2"),
    (dict(n_categories=2000), "cannot exceed n_items"),
    (dict(history_effect=float("nan")), "history_effect"),
    (dict(max_len=0), "max_len"),
])
def test_generator_rejects_bad_arguments_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_behaviour_data(**{"n_users": 50, **kwargs})


# ----------------------------------------------------------------------------- pooling layers
def _poolings(dim: int = 4, length: int = 6):
    torch.manual_seed(0)
    return {"sum": SumPooling(), "mean": MeanPooling(), "din": TargetAttentionPooling(dim, 8),
            "din_softmax": TargetAttentionPooling(dim, 8, normalise="softmax"),
            "din_dice": TargetAttentionPooling(dim, 8, activation="dice"),
            "bst": TransformerPooling(dim, length), "dien": InterestEvolution(dim)}


@pytest.mark.parametrize("name", ["sum", "mean", "din", "din_softmax", "din_dice", "bst", "dien"])
def test_padded_positions_never_change_a_pooling(name):
    gen = torch.Generator().manual_seed(0)
    pool = _poolings()[name].eval()
    h, c, mask = _batch(gen)
    out = pool(h, c, mask)
    h2 = torch.where(mask[..., None], h, 50 * torch.randn(h.shape, generator=gen))
    assert torch.allclose(pool(h2, c, mask), out, atol=1e-5)
    assert torch.isfinite(out).all()
    if name != "bst":  # BST's candidate token still has an output for an empty history
        assert out[3].abs().max() < 1e-6


@pytest.mark.parametrize("name", ["din", "din_softmax", "din_dice", "dien"])
def test_training_mode_statistics_ignore_padding(name):
    gen = torch.Generator().manual_seed(1)
    pool = _poolings()[name].train()
    h, c, mask = _batch(gen)
    out = pool(h, c, mask)
    h2 = torch.where(mask[..., None], h, 50 * torch.randn(h.shape, generator=gen))
    assert torch.allclose(_poolings()[name].train()(h2, c, mask), out, atol=1e-5)


def test_mean_and_sum_pooling_match_a_loop():
    gen = torch.Generator().manual_seed(2)
    h, c, mask = _batch(gen)
    for i in range(h.shape[0]):
        real = h[i, mask[i]]
        assert torch.allclose(SumPooling()(h, c, mask)[i], real.sum(0), atol=1e-6)
        want = real.mean(0) if len(real) else torch.zeros(4)
        assert torch.allclose(MeanPooling()(h, c, mask)[i], want, atol=1e-6)


def test_din_weights_are_unnormalised_and_softmax_weights_sum_to_one():
    gen = torch.Generator().manual_seed(3)
    h, c, mask = _batch(gen)
    din, soft = _poolings()["din"], _poolings()["din_softmax"]
    w, s = din.weights(h, c, mask), soft.weights(h, c, mask)
    assert (w[~mask] == 0).all() and (s[~mask] == 0).all()
    sums = s.sum(1)
    assert torch.allclose(sums[mask.any(1)], torch.ones(int(mask.any(1).sum())), atol=1e-6)
    assert sums[3] == 0  # empty history: zero weights, not NaN
    assert not torch.allclose(w.sum(1)[mask.any(1)], torch.ones(int(mask.any(1).sum())), atol=1e-2)


@pytest.mark.parametrize("normalise", ["none", "softmax"])
def test_attention_pooling_gradient_matches_central_differences_in_float64(normalise):
    gen = torch.Generator().manual_seed(4)
    h, c, mask = _batch(gen, dtype=torch.float64)
    torch.manual_seed(0)
    pool = TargetAttentionPooling(4, 8, normalise=normalise).double()
    probe = torch.randn(5, 4, generator=gen, dtype=torch.float64)

    def loss(x: torch.Tensor) -> torch.Tensor:
        return (pool(x, c, mask) * probe).sum()

    x = h.clone().requires_grad_(True)
    loss(x).backward()
    compare_gradients(x.grad, numerical_gradient(loss, h)).assert_close(atol=1e-7, rtol=1e-5)
    assert (x.grad[~mask] == 0).all() and x.grad[mask].abs().sum() > 0


def test_din_pooling_is_order_free_and_bst_is_not():
    gen = torch.Generator().manual_seed(5)
    h, c, _ = _batch(gen, batch=2)
    mask = torch.ones(2, 6, dtype=torch.bool)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    pools = _poolings()
    din, bst = pools["din"].eval(), pools["bst"].eval()
    assert torch.allclose(din(h[:, perm], c, mask), din(h, c, mask), atol=1e-6)
    assert not torch.allclose(bst(h[:, perm], c, mask), bst(h, c, mask), atol=1e-4)


def test_dice_in_eval_mode_follows_its_formula():
    dice = Dice(3)
    with torch.no_grad():
        dice.alpha.copy_(torch.tensor([0.0, 0.5, -1.0]))
        dice.running_mean.copy_(torch.tensor([0.1, -0.2, 0.3]))
        dice.running_var.copy_(torch.tensor([1.0, 4.0, 0.25]))
    dice.eval()
    x = torch.randn(7, 3)
    p = torch.sigmoid((x - dice.running_mean) / torch.sqrt(dice.running_var + dice.eps))
    assert torch.allclose(dice(x), p * x + (1 - p) * dice.alpha * x)


def test_augru_with_attention_one_is_a_gru_cell_and_with_zero_keeps_the_state():
    torch.manual_seed(0)
    cell = AUGRUCell(3, 5)
    x, h = torch.randn(4, 3), torch.randn(4, 5)
    assert torch.allclose(cell(x, h, torch.ones(4)), cell.gru(x, h), atol=1e-6)
    assert torch.equal(cell(x, h, torch.zeros(4)), h)
    half = cell(x, h, torch.full((4,), 0.5))
    # Attention scales the update gate: h' = (1 - a u) h + a u n, with u = 1 - z of torch's GRU.
    gi = torch.nn.functional.linear(x, cell.gru.weight_ih, cell.gru.bias_ih).chunk(3, -1)
    gh = torch.nn.functional.linear(h, cell.gru.weight_hh, cell.gru.bias_hh).chunk(3, -1)
    u = 0.5 * (1 - torch.sigmoid(gi[1] + gh[1]))
    n = torch.tanh(gi[2] + torch.sigmoid(gi[0] + gh[0]) * gh[2])
    assert torch.allclose(half, (1 - u) * h + u * n, atol=1e-6)


def test_ch06_behaviour_pooling_check_accepts_the_package_din_pooling():
    check_behaviour_pooling(lambda dim: TargetAttentionPooling(dim, 16))


# ----------------------------------------------------------------------------- models
def _data(max_len: int, n: int = 64, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, 4, (n,), generator=gen)
    hist = torch.randint(0, 6, (n, max_len), generator=gen)
    hist[torch.arange(max_len)[None, :] >= lengths[:, None]] = 6
    base = torch.stack([torch.randint(0, 3, (n,), generator=gen), torch.randint(0, 6, (n,), generator=gen)], 1)
    return torch.zeros(n, 0), torch.cat([base, hist], 1)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_models_return_one_logit_per_row_and_extra_padding_changes_nothing(pooling):
    dense, sparse = _data(4)
    torch.manual_seed(0)
    short = BehaviourRanker(_schema(4), pooling=pooling, embed_dim=4, hidden=(8,)).eval()
    out = short(dense, sparse)
    assert out.shape == (64,) and torch.isfinite(out).all()
    if pooling == "bst":  # its position table has one row per position
        return
    longer = BehaviourRanker(_schema(7), pooling=pooling, embed_dim=4, hidden=(8,)).eval()
    longer.load_state_dict(short.state_dict())
    padded = torch.cat([sparse, torch.full((64, 3), 6)], 1)
    assert torch.allclose(longer(dense, padded), out, atol=1e-6)


def test_model_trains_with_fit_and_repeats_with_the_same_seed():
    ds = make_behaviour_data(200, 5, seed=0)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = BehaviourRanker(ds.schema, pooling="din", embed_dim=4, hidden=(8,), fm=True)
        history = fit(model, ds.train, ds.valid, epochs=1, batch_size=128, progress=False, seed=0)
        runs.append(history["valid_logloss_click"].iloc[-1])
    assert runs[0] == runs[1] and np.isfinite(runs[0])


def test_attention_weights_exist_only_for_din_poolings():
    dense, sparse = _data(4)
    torch.manual_seed(0)
    w = BehaviourRanker(_schema(4), pooling="din", embed_dim=4).attention_weights(dense, sparse)
    assert w.shape == (64, 4) and (w[sparse[:, 2:] == 6] == 0).all()
    with pytest.raises(TypeError, match="no per-behaviour weights"):
        BehaviourRanker(_schema(4), pooling="sum", embed_dim=4).attention_weights(dense, sparse)


def test_sequence_embedding_shares_the_table_of_history_and_candidate():
    torch.manual_seed(0)
    emb = SequenceEmbedding(_schema(4), 3)
    sparse = torch.tensor([[1, 2, 2, 5, 6, 6]])
    fields, behaviours, candidate, mask = emb(sparse)
    assert fields.shape == (1, 1, 3) and behaviours.shape == (1, 4, 3)
    assert torch.equal(behaviours[0, 0], candidate[0]) and mask.tolist() == [[True, True, False, False]]
    assert (behaviours[0, 2:] == 0).all()


# ----------------------------------------------------------------------------- GAUC
def test_per_user_auc_matches_sklearn_and_gauc_weights_by_impressions():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 6, 200)
    y = (rng.random(200) < 0.4).astype(float)
    p = np.round(rng.random(200) + 0.3 * y, 1)  # rounded: ties must count one half
    table = per_user_auc(y, p, users)
    for u, row in table.iterrows():
        sel = users == u
        assert row["auc"] == pytest.approx(roc_auc_score(y[sel], p[sel]))
    assert gauc(y, p, users) == pytest.approx(np.average(table["auc"], weights=table["n"]))


def test_gauc_ignores_between_user_ranking_that_auc_rewards():
    # Each user is ranked perfectly inside; user 1 clicks more but gets lower scores.
    users = np.array([0, 0, 0, 1, 1, 1])
    y = np.array([1, 0, 0, 1, 1, 0])
    p = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    assert gauc(y, p, users) == 1.0 and roc_auc_score(y, p) < 0.7
    with pytest.raises(ValueError, match="GAUC is undefined"):
        gauc([1, 1], [0.2, 0.3], [0, 1])
