"""End to end: planted structure -> the model built for it beats logistic regression; seeds repeat;
bad input anywhere in the pipeline fails with a message that names the field or value.

The planted datasets are small (30k rows, 6 categorical fields of 6..50 ids) and each model trains
for a few epochs, so every comparison takes a second or two on two CPU cores. Margins are several
times the seed-to-seed spread seen when the tests were written; messages print the AUCs beside the
Bayes AUC (the true probabilities' AUC on the same rows), the ceiling for any model.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
import torch

from rankcourse.data.ctr import make_ctr_data
from rankcourse.data.multitask import make_click_conversion, make_mmoe_regression
from rankcourse.data.tabular import TabularData
from rankcourse.losses import focal_loss
from rankcourse.metrics import evaluate
from rankcourse.models import DCNv2, DeepFM, FactorizationMachine, LogisticRegression, MMoE, WideDeep
from rankcourse.runtime import seed_everything
from rankcourse.task_weighting import UncertaintyWeighting, weighted_task_loss
from rankcourse.inference import predict_proba
from rankcourse.training import TIMING_COLUMNS, fit

# Every logit part off except weak main and dense effects; each test switches one structure on.
BASE = dict(
    preset="criteo", n_dense=2, vocab_sizes=(6, 6, 6, 8, 20, 50), zipf_exponent=0.5, noise_fields=0,
    informative_dense=2, main_effects=0.3, dense_effects=0.2, crosses=0.0, pairwise=0.0, dense_x_cat=0.0,
    third_order=0.0, positive_rate=0.3, split=(0.7, 0.1, 0.2),
)
N = 30_000
TRAIN = dict(epochs=3, batch_size=256, lr=0.01, progress=False, device="cpu")


def planted(seed: int = 1, **parts):
    return make_ctr_data(N, **{**BASE, **parts}, seed=seed)


def train_and_score(model, ds, seed: int = 0, **train) -> tuple[float, float]:
    """(test AUC, Bayes test AUC) of ``model`` trained on ``ds``."""
    fit(model, ds.train, ds.valid, seed=seed, **{**TRAIN, **train})
    row = evaluate(model, ds.test).loc["click"]
    return float(row["auc"]), float(row["bayes_auc"])




def report(bayes: float, **aucs: float) -> str:
    return ", ".join(f"{k} AUC {v:.4f}" for k, v in aucs.items()) + f" (Bayes AUC {bayes:.4f})"


# --------------------------------------------------------------------------- planted structure
def test_fm_and_deepfm_beat_lr_on_low_rank_pairwise_interactions():
    # Only sum_{f<g} <v_f, v_g> (rank 4) on top of weak main effects: LR sees none of it.
    ds = planted(pairwise=1.5, pairwise_fields=("C1", "C2", "C3", "C4", "C5"))
    torch.manual_seed(0)
    lr, bayes = train_and_score(LogisticRegression(ds.schema), ds)
    fm, _ = train_and_score(FactorizationMachine(ds.schema, embed_dim=8), ds)
    dfm, _ = train_and_score(DeepFM(ds.schema, embed_dim=8, hidden=(32,)), ds)
    msg = report(bayes, LR=lr, FM=fm, DeepFM=dfm)
    assert fm > lr + 0.1, msg
    assert dfm > lr + 0.1, msg
    assert fm > bayes - 0.05, msg


def test_dcnv2_beats_lr_and_fm_on_a_third_order_term():
    # A centred trilinear term over (C1, C2, C3) has no first- or second-order projection:
    # neither LR nor FM can use it, two cross layers can.
    ds = planted(third_order=1.5, third_order_fields=(("C1", "C2", "C3"),))
    torch.manual_seed(0)
    lr, bayes = train_and_score(LogisticRegression(ds.schema), ds)
    fm, _ = train_and_score(FactorizationMachine(ds.schema, embed_dim=8), ds)
    dcn, _ = train_and_score(DCNv2(ds.schema, embed_dim=8, n_cross=2, hidden=()), ds, epochs=6, lr=0.03)
    msg = report(bayes, LR=lr, FM=fm, DCNv2=dcn)
    assert dcn > lr + 0.06, msg
    assert dcn > fm + 0.06, msg


def test_wide_and_deep_with_the_planted_cross_beats_lr():
    # An XOR-like pattern on (C4, C5): +3 on the diagonal, -3 off it. The marginals nearly cancel,
    # so one weight per id cannot express it; a cross-product feature of (C4, C5) can.
    cross = (("C4", 0, "C5", 0, 3.0), ("C4", 0, "C5", 1, -3.0), ("C4", 1, "C5", 0, -3.0), ("C4", 1, "C5", 1, 3.0))
    ds = planted(crosses=1.0, cross_pairs=cross)
    torch.manual_seed(0)
    lr, bayes = train_and_score(LogisticRegression(ds.schema), ds)
    wd, _ = train_and_score(WideDeep(ds.schema, embed_dim=4, hidden=(16,), cross_pairs=[("C4", "C5")], n_buckets=1024), ds)
    msg = report(bayes, LR=lr, WideDeep_with_C4xC5=wd)
    assert wd > lr + 0.03, msg
    assert wd > bayes - 0.03, msg


def test_mmoe_trains_on_both_task_kinds_with_uncertainty_weighting():
    cc = make_click_conversion(0.5, 12_000, vocab_sizes=(6, 8, 20), n_dense=2, seed=0)
    torch.manual_seed(0)
    model = MMoE(cc.schema, n_tasks=2, n_experts=4, expert=(16,), tower=(8,))
    weighting = UncertaintyWeighting(2)
    history = fit(model, cc.train, cc.valid, task_weights=weighting, **TRAIN)
    table = evaluate(model, cc.test)
    assert list(table.index) == ["click", "conversion"]
    assert (table["auc"] > 0.6).all(), table
    assert not torch.allclose(weighting.log_variance, torch.zeros(2))
    assert {"valid_auc_click", "valid_auc_conversion"} <= set(history.columns)
    reg = make_mmoe_regression(0.5, 6_000, dim=20, seed=0)
    model = MMoE(reg.schema, n_tasks=2, n_experts=4, expert=(16,), tower=(8,))
    history = fit(model, reg.train, reg.valid, **{**TRAIN, "epochs": 4, "lr": 3e-3})
    assert history["valid_score"].iloc[-1] > history["valid_score"].iloc[0]  # -MSE rises
    assert history["valid_score"].iloc[-1] == pytest.approx(-history.filter(like="valid_mse_").iloc[-1].mean())


# --------------------------------------------------------------------------- reproducibility
def test_two_cpu_runs_with_the_same_seed_give_identical_metrics():
    ds = planted(pairwise=1.0, crosses=1.5, third_order=0.5, seed=4)
    results = []
    for _ in range(2):
        seed_everything(123)
        model = DeepFM(ds.schema, embed_dim=4, hidden=(16,), dropout=0.2)
        history = fit(model, ds.train, ds.valid, **{**TRAIN, "epochs": 2}, seed=5)
        results.append((history.drop(columns=list(TIMING_COLUMNS)), evaluate(model, ds.test), predict_proba(model, ds.test)))
    pd.testing.assert_frame_equal(results[0][0], results[1][0], check_exact=True)
    pd.testing.assert_frame_equal(results[0][1], results[1][1], check_exact=True)
    np.testing.assert_array_equal(results[0][2], results[1][2])
    again = planted(pairwise=1.0, crosses=1.5, third_order=0.5, seed=4)
    assert torch.equal(again.train.sparse, ds.train.sparse) and torch.equal(again.train.labels, ds.train.labels)


# --------------------------------------------------------------------------- bad input, end to end
@pytest.fixture(scope="module")
def small():
    return make_ctr_data(2_000, preset="teaching", seed=0)


def columns_of(data: TabularData) -> dict[str, np.ndarray]:
    cols = {name: data.dense[:, j].numpy() for j, name in enumerate(data.schema.dense)}
    cols.update({f.name: data.sparse[:, j].numpy() for j, f in enumerate(data.schema.sparse)})
    cols["click"] = data.labels[:, 0].numpy()
    return cols


def test_from_columns_names_unknown_missing_and_mismatched_columns(small):
    cols = columns_of(small.test)
    TabularData.from_columns(cols, small.schema)  # the good case builds
    with pytest.raises(KeyError, match="unknown column.*'tastee'"):
        TabularData.from_columns({**cols, "tastee": cols["taste"]}, small.schema)
    missing = {k: v for k, v in cols.items() if k != "city"}
    with pytest.raises(KeyError, match=r"missing column\(s\) \['city'\]"):
        TabularData.from_columns(missing, small.schema)
    with pytest.raises(ValueError, match="mismatched lengths.*'city': 199"):
        TabularData.from_columns({**cols, "city": cols["city"][:-1]}, small.schema)


@pytest.mark.parametrize("bad_id", [-1, 10_000])
def test_out_of_vocabulary_ids_name_the_field_in_data_and_in_the_model(small, bad_id):
    cols = columns_of(small.test)
    cols["shop"] = cols["shop"].copy()
    cols["shop"][5] = bad_id
    with pytest.raises(ValueError, match=rf"categorical field 'shop' has id {bad_id} at row 5, outside \[0, 300\)"):
        TabularData.from_columns(cols, small.schema)
    model = DeepFM(small.schema, embed_dim=4, hidden=(8,))
    sparse = small.test.sparse.clone()
    sparse[3, small.schema.sparse_index("shop")] = bad_id
    with pytest.raises(ValueError, match=rf"'shop' has id {bad_id} at row 3"):
        predict_proba(model, (small.test.dense, sparse))


def test_nan_dense_and_non_binary_labels_name_field_and_value(small):
    cols = columns_of(small.test)
    cols["past_visits"] = cols["past_visits"].copy()
    cols["past_visits"][7] = np.nan
    with pytest.raises(ValueError, match="dense field 'past_visits' has a non-finite value nan at row 7"):
        TabularData.from_columns(cols, small.schema)
    cols = columns_of(small.test)
    cols["click"] = cols["click"].copy()
    cols["click"][2] = 2.0
    with pytest.raises(ValueError, match="task 'click': binary labels must be 0 or 1, got 2.0 at row 2"):
        TabularData.from_columns(cols, small.schema)
    with pytest.raises(ValueError, match="labels must be 0 or 1, got 0.5"):
        focal_loss(torch.zeros(3), torch.tensor([0.0, 0.5, 1.0]))


def test_empty_data_is_rejected(small):
    cols = {k: v[:0] for k, v in columns_of(small.test).items()}
    with pytest.raises(ValueError, match="empty"):
        TabularData.from_columns(cols, small.schema)
    with pytest.raises(ValueError, match="empty"):
        small.test.subset([])


def test_training_arguments_are_checked_before_training(small):
    model = DeepFM(small.schema, embed_dim=4, hidden=(8,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run = functools.partial(fit, model, small.train, small.valid, progress=False, device="cpu")
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        run(batch_size=0)
    with pytest.raises(ValueError, match="task weight λ for task 'click' must be finite and >= 0, got -1.0"):
        run(task_weights=[-1.0])
    with pytest.raises(ValueError, match=r"lambda\[1\] must be a finite number >= 0, got -0.5"):
        weighted_task_loss(torch.ones(2), [1.0, -0.5])
    two_tasks = make_click_conversion(0.5, 2_000, preset="teaching", seed=0)
    with pytest.raises(ValueError, match=r"model has 1 task head\(s\) but train has 2 label column\(s\) \['click', 'conversion'\]"):
        fit(model, two_tasks.train, progress=False, device="cpu")
    mmoe = MMoE(small.schema, n_tasks=2, n_experts=2, expert=(4,), tower=(4,))
    with pytest.raises(ValueError, match=r"model has 2 task head\(s\) but train has 1 label column\(s\) \['click'\]"):
        fit(mmoe, small.train, progress=False, device="cpu")
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed although fit refused to start"


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(gamma=-1.0), "gamma must be a finite number >= 0, got -1.0"),
     (dict(alpha=1.5), r"alpha must lie strictly between 0 and 1, got 1.5"),
     (dict(alpha=0.0), r"alpha must lie strictly between 0 and 1, got 0.0")],
)
def test_focal_loss_parameters_fail_at_the_first_step_of_fit(small, kwargs, message):
    model = LogisticRegression(small.schema)
    with pytest.raises(ValueError, match=message):
        fit(model, small.train, loss=functools.partial(focal_loss, **kwargs), progress=False, device="cpu")


def test_generator_arguments_are_named(small):
    with pytest.raises(ValueError, match="positive_rate"):
        make_ctr_data(1_000, positive_rate=1.5)
    with pytest.raises((ValueError, KeyError), match="tastee"):
        make_ctr_data(1_000, preset="teaching", pairwise_fields=("tastee", "city"))
