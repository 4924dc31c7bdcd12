"""The synthetic generators: planted truth, determinism, scales, roles, speed, and bad input."""

import math

import numpy as np
import pytest
import torch

from rankcourse.data import (
    PART_NAMES,
    TabularData,
    make_click_conversion,
    make_ctr_data,
    make_mmoe_regression,
)


@pytest.fixture(scope="module")
def ctr():
    return make_ctr_data(60_000, seed=1)


@pytest.fixture(scope="module")
def teaching():
    return make_ctr_data(40_000, preset="teaching", seed=2)


def _all_rows(ds):
    dense = torch.cat([d.dense for d in ds.splits]).numpy()
    sparse = torch.cat([d.sparse for d in ds.splits]).numpy()
    prob = torch.cat([d.true_prob for d in ds.splits]).numpy()
    return dense, sparse, prob


# ----------------------------------------------------------------------------- CTR data: shape
def test_criteo_preset_has_13_dense_and_26_zipf_fields(ctr):
    s = ctr.schema
    assert s.n_dense == 13 and s.n_fields == 26
    assert s.vocab_sizes[0] == 10 and s.vocab_sizes[-1] == 100_000
    assert [len(d) for d in ctr.splits] == [48_000, 6_000, 6_000]
    for d in ctr.splits:
        assert isinstance(d, TabularData)
        assert d.dense.dtype == torch.float32 and d.sparse.dtype == torch.int64
        assert d.task_names == ("click",) and d.task_types == ("binary",)
        assert d.true_prob is not None and d.true_prob.shape == d.labels.shape


def test_ids_follow_the_zipf_probabilities(ctr):
    sparse = ctr.train.sparse.numpy()
    for name in ("C1", "C13", "C26"):
        j = ctr.schema.sparse_index(name)
        p = ctr.truth.value_probs[name]
        freq = np.bincount(sparse[:, j], minlength=len(p)) / len(sparse)
        assert abs(freq[0] - p[0]) < 0.01  # id 0 is the most frequent value
        assert freq[0] > freq[1] > freq[3]


def test_dense_fields_are_log1p_of_counts(ctr):
    counts = np.expm1(ctr.train.dense.double().numpy())
    assert counts.min() >= 0
    assert np.allclose(counts, np.round(counts), atol=1e-3 * np.maximum(1, counts))
    x = ctr.truth.standardized_dense(ctr.train.dense)  # exact moments => ~standard
    assert np.all(np.abs(x.mean(0)) < 0.05) and np.all(np.abs(x.std(0) - 1) < 0.05)


# ----------------------------------------------------------------------------- CTR data: truth
def test_same_seed_gives_identical_data_and_another_seed_does_not():
    a, b, c = make_ctr_data(3000, seed=7), make_ctr_data(3000, seed=7), make_ctr_data(3000, seed=8)
    for x, y in zip(a.splits, b.splits):
        assert torch.equal(x.dense, y.dense) and torch.equal(x.sparse, y.sparse)
        assert torch.equal(x.labels, y.labels) and torch.equal(x.true_prob, y.true_prob)
    assert not torch.equal(a.train.sparse, c.train.sparse)


@pytest.mark.parametrize("rate", [0.5, 0.25, 0.05, 0.01])
def test_intercept_hits_the_positive_rate(rate):
    ds = make_ctr_data(20_000, positive_rate=rate, seed=3)
    _, _, prob = _all_rows(ds)
    assert abs(prob.mean() - rate) < 1e-5 * max(1, rate * 10)
    labels = torch.cat([d.labels for d in ds.splits]).numpy()
    assert abs(labels.mean() - rate) < 4 * math.sqrt(rate * (1 - rate) / len(labels)) + 1e-3


def test_true_prob_is_the_truth_evaluated_on_the_features(ctr):
    d = ctr.valid
    p = ctr.truth.prob(d.dense, d.sparse)
    assert np.allclose(p, d.true_prob[:, 0].numpy(), atol=1e-6)
    parts = ctr.truth.logit_parts(d.dense, d.sparse)
    assert tuple(parts) == PART_NAMES
    assert np.allclose(sum(parts.values()), ctr.truth.logit(d.dense, d.sparse))


def test_each_part_has_its_scale_as_standard_deviation(ctr):
    parts = ctr.truth.logit_parts(ctr.train.dense, ctr.train.sparse)
    for name, scale in (("main", 1.0), ("dense", 0.5), ("pairwise", 0.8), ("dense_x_cat", 0.5), ("third_order", 0.6)):
        assert ctr.truth.scales[name] == scale
        assert abs(parts[name].std() / scale - 1) < 0.1, name
        assert abs(parts[name].mean()) < 0.1 * scale, name  # every part but the crosses is centred
    table = ctr.parts_table()
    assert list(table.index) == list(PART_NAMES) and {"scale", "std", "mean", "captured_by"} <= set(table.columns)


def test_switching_a_part_off_leaves_features_and_other_parts_unchanged():
    full = make_ctr_data(4000, seed=5)
    off = make_ctr_data(4000, seed=5, pairwise=0.0, third_order=0.0)
    assert torch.equal(full.train.sparse, off.train.sparse) and torch.equal(full.train.dense, off.train.dense)
    a = full.truth.logit_parts(full.train.dense, full.train.sparse)
    b = off.truth.logit_parts(off.train.dense, off.train.sparse)
    for name in ("main", "dense", "crosses", "dense_x_cat"):
        assert np.array_equal(a[name], b[name]), name
    assert np.all(b["pairwise"] == 0) and np.all(b["third_order"] == 0)
    assert off.truth.pairwise_fields == full.truth.pairwise_fields  # the roles stay too
    assert a["pairwise"].std() > 0.5


def test_noise_fields_have_no_effect(ctr):
    t = ctr.truth
    assert len(t.noise_fields) == 4 and len(t.noise_dense) == 13 - math.ceil(0.6 * 13)
    dense, sparse = ctr.test.dense.numpy().copy(), ctr.test.sparse.numpy().copy()
    before = t.logit(dense, sparse)
    rng = np.random.default_rng(0)
    for name in t.noise_fields:
        j = t.schema.sparse_index(name)
        sparse[:, j] = rng.integers(0, t.schema.vocab_sizes[j], len(sparse))
    for name in t.noise_dense:
        dense[:, t.schema.dense_index(name)] = rng.random(len(dense)) * 5
    assert np.array_equal(before, t.logit(dense, sparse))
    used = set(t.pairwise_fields) | {f for _, f in t.dense_x_cat_pairs} | {x for tr in t.third_order_fields for x in tr}
    used |= {c.field_a for c in t.crosses} | {c.field_b for c in t.crosses}
    assert not used & set(t.noise_fields)


def test_pairwise_part_equals_the_sum_over_pairs(ctr):
    t = ctr.truth
    d = ctr.test.subset(slice(0, 50))
    s = d.sparse.numpy()
    vecs = [t.pairwise_vectors[f][s[:, t.schema.sparse_index(f)]] for f in t.pairwise_fields]
    brute = sum((vecs[i] * vecs[j]).sum(1) for i in range(len(vecs)) for j in range(i + 1, len(vecs)))
    assert np.allclose(t.logit_parts(d.dense, d.sparse)["pairwise"], brute)


def test_planted_crosses_are_frequent_and_add_their_weight(ctr):
    t, s = ctr.truth, ctr.train.sparse.numpy()
    assert len(t.crosses) == 4
    for c in t.crosses:
        assert c.frequency >= 0.005 and c.weight == 1.5
        hit = (s[:, t.schema.sparse_index(c.field_a)] == c.value_a) & (s[:, t.schema.sparse_index(c.field_b)] == c.value_b)
        assert abs(hit.mean() - c.frequency) < 4 * math.sqrt(c.frequency / len(s)) + 1e-3
        assert hit.sum() > 150  # learnable: many training rows have it


def test_teaching_preset_has_readable_names_and_the_latte_shanghai_cross(teaching):
    t = teaching.truth
    assert [f.name for f in teaching.schema.sparse][:2] == ["city", "taste"]
    assert "past_visits" in teaching.schema.dense and t.noise_fields == ("banner_color",)
    c = t.crosses[0]
    assert (c.field_a, c.label_a, c.field_b, c.label_b) == ("taste", "latte", "city", "Shanghai")
    assert "taste=latte x city=Shanghai" in str(c) and "taste=latte" in t.describe()
    assert t.decode("taste", [0, 6]) == ["latte", "milk_tea"] and t.encode("city", "Shanghai") == 1
    assert t.decode("shop", [3]) == ["3"]
    # Each cross adds its weight to exactly the rows that have both values.
    s = teaching.train.sparse.numpy()
    col = teaching.schema.sparse_index
    hits = [(s[:, col(c.field_a)] == c.value_a) & (s[:, col(c.field_b)] == c.value_b) for c in t.crosses]
    assert hits[0].sum() == ((s[:, col("taste")] == 0) & (s[:, col("city")] == 1)).sum() > 0
    parts = t.logit_parts(teaching.train.dense, teaching.train.sparse)
    assert np.array_equal(parts["crosses"], sum(1.5 * h for h in hits))


def test_explicit_roles_and_cross_weights_are_used():
    ds = make_ctr_data(3000, preset="teaching", cross_pairs=[("taste", "mocha", "device", "web", -2.0)],
                       pairwise_fields=["shop", "user"], third_order_fields=[("city", "hour", "past_orders")],
                       dense_x_cat_pairs=[("minutes_on_app", "city")])
    t = ds.truth
    assert len(t.crosses) == 1 and t.crosses[0].weight == -2.0 and t.crosses[0].value_a == 3
    assert t.pairwise_fields == ("shop", "user") and t.dense_x_cat_pairs == (("minutes_on_app", "city"),)
    assert t.third_order_fields == (("city", "hour", "past_orders"),)
    assert t.third_order_factors[0]["past_orders"].shape == (2,)


def test_bayes_metrics_score_the_true_probabilities(ctr):
    from sklearn.metrics import log_loss, roc_auc_score

    m = ctr.bayes_metrics("test")
    y, p = ctr.test.labels[:, 0].numpy(), ctr.test.true_prob[:, 0].numpy()
    assert m["auc"] == pytest.approx(roc_auc_score(y, p)) and m["logloss"] == pytest.approx(log_loss(y, p), rel=1e-5)
    assert 0.78 < m["auc"] < 0.88 and m["n"] == len(ctr.test)
    with pytest.raises(KeyError, match="split"):
        ctr.bayes_metrics("holdout")


@pytest.mark.slow
def test_200k_rows_are_split_into_train_valid_and_test():
    # How fast the generator is belongs in a benchmark, not in a test.
    ds = make_ctr_data(200_000, seed=0)
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (160_000, 20_000, 20_000)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(positive_rate=0.0), ValueError, "positive_rate"),
        (dict(positive_rate=1.5), ValueError, "1.5"),
        (dict(main_effects=-1.0), ValueError, "main_effects"),
        (dict(pairwise=float("nan")), ValueError, "pairwise"),
        (dict(split=(0.8, 0.3, 0.1)), ValueError, "split"),
        (dict(preset="kaggle"), ValueError, "kaggle"),
        (dict(vocab_sizes=[10, 0, 5]), ValueError, "C2"),
        (dict(zipf_exponent=-1.0), ValueError, "zipf_exponent"),
        (dict(noise_fields=["C99"]), KeyError, "C99"),
        (dict(noise_fields=["C3"], pairwise_fields=["C3", "C4"]), ValueError, "C3"),
        (dict(pairwise_fields=["C4"]), ValueError, "at least 2"),
        (dict(third_order_fields=[("C2", "C2", "C3")]), ValueError, "distinct"),
        (dict(preset="teaching", cross_pairs=[("taste", "chai", "city", "Shanghai")]), ValueError, "chai"),
        (dict(preset="teaching", cross_pairs=[("taste", 99, "city", 0)]), ValueError, "99"),
        (dict(n_samples=2), ValueError, "n_samples"),
        (dict(n_dense=2, dense_names=["a"]), ValueError, "n_dense"),
    ],
)
def test_bad_ctr_arguments_raise_naming_the_problem(kwargs, error, words):
    kwargs = {"n_samples": 500, **kwargs}
    with pytest.raises(error, match=words):
        make_ctr_data(**kwargs)


# ----------------------------------------------------------------------------- MMoE regression
@pytest.mark.parametrize("p", [1.0, 0.9, 0.5, 0.0])
def test_mmoe_task_correlation_is_the_weight_cosine(p):
    ds = make_mmoe_regression(p, 20_000, seed=0)
    w1, w2 = ds.truth.w
    assert np.dot(w1, w2) / (np.linalg.norm(w1) * np.linalg.norm(w2)) == pytest.approx(p, abs=1e-12)
    assert np.dot(ds.truth.u[0], ds.truth.u[1]) == pytest.approx(0, abs=1e-12)
    x = ds.train.dense.double().numpy()
    assert np.corrcoef(x @ w1, x @ w2)[0, 1] == pytest.approx(p, abs=0.03)


def test_mmoe_data_follows_the_paper_formula():
    ds = make_mmoe_regression(0.5, 5000, dim=20, m=3, noise_std=0.0, seed=4)
    t = ds.truth
    assert np.allclose(t.alpha, [0.5, 1.0, 1.5]) and np.allclose(t.beta, [1, 4, 9])
    x = ds.test.dense.double().numpy()
    lin = x @ t.w.T
    raw = lin + sum(np.sin(a * lin + b) for a, b in zip(t.alpha, t.beta))
    assert np.allclose((raw - t.label_mean) / t.label_std, ds.test.labels.numpy(), atol=1e-5)
    assert ds.schema.n_fields == 0 and ds.test.sparse.shape == (len(ds.test), 0)
    assert ds.test.task_types == ("regression", "regression")


def test_mmoe_labels_are_standardised_with_training_statistics():
    ds = make_mmoe_regression(0.8, 10_000, seed=1)
    y = ds.train.labels.double()
    assert torch.allclose(y.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(y.std(0, unbiased=False), torch.ones(2, dtype=torch.float64), atol=1e-5)
    assert np.allclose(ds.truth.targets(ds.test.dense), ds.test.true_prob.numpy(), atol=1e-5)
    noise = (ds.train.labels - ds.train.true_prob).std(0).numpy()
    assert np.allclose(noise, 0.1 / ds.truth.label_std, rtol=0.05)
    m = ds.bayes_metrics("test")
    assert set(m) == {"task1", "task2"} and m["task1"]["mse"] < 0.01


@pytest.mark.parametrize(
    "kwargs, words",
    [(dict(correlation=1.2), "correlation"), (dict(correlation=0.5, alpha=[1.0]), "alpha"),
     (dict(correlation=0.5, dim=1), "dim"), (dict(correlation=0.5, c=0.0), "c must be"),
     (dict(correlation=0.5, noise_std=-0.1), "noise_std")],
)
def test_bad_mmoe_arguments_raise(kwargs, words):
    with pytest.raises(ValueError, match=words):
        make_mmoe_regression(n_samples=200, **kwargs)


# ----------------------------------------------------------------------------- click + conversion
@pytest.mark.parametrize("rho", [-0.5, 0.0, 0.8])
def test_click_conversion_logit_correlation_is_controlled(rho):
    ds = make_click_conversion(rho, 8000, vocab_sizes=[20, 50, 300, 1000, 5000, 30], n_dense=4, seed=3)
    dense, sparse, prob = _all_rows(ds)
    z = ds.truth.logits(dense, sparse)
    assert np.corrcoef(z.T)[0, 1] == pytest.approx(rho, abs=1e-8)
    assert z.std(0) == pytest.approx([1.5, 1.5], rel=1e-6)
    assert prob.mean(0) == pytest.approx([0.2, 0.1], abs=1e-5)
    assert np.allclose(ds.truth.probs(dense, sparse), prob, atol=1e-6)
    assert ds.task_names == ("click", "conversion")


def test_post_click_conversions_only_follow_clicks():
    ds = make_click_conversion(0.5, 8000, post_click=True, preset="teaching", seed=0)
    y = torch.cat([d.labels for d in ds.splits])
    assert torch.all(y[:, 1] <= y[:, 0])
    p = torch.cat([d.true_prob for d in ds.splits])
    assert torch.all(p[:, 1] <= p[:, 0])
    assert abs(y[:, 1].mean().item() - p[:, 1].mean().item()) < 0.01


def test_bad_click_conversion_arguments_raise():
    with pytest.raises(ValueError, match="correlation"):
        make_click_conversion(-2, 500)
    with pytest.raises(ValueError, match="click_rate"):
        make_click_conversion(0.5, 500, click_rate=0)
    with pytest.raises(TypeError, match="positive_rate"):
        make_click_conversion(0.5, 500, positive_rate=0.3)
