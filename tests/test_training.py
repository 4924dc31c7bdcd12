"""The training loop, prediction helpers and runtime utilities, on a tiny model and toy data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from rankcourse import runtime
from rankcourse.metrics import evaluate
from rankcourse.schema import FeatureSchema
from rankcourse.training import TIMING_COLUMNS, fit, make_adam, predict, predict_logits, predict_proba


def quiet_fit(model, train, valid=None, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("device", "cpu")
    return fit(model, train, valid, **kw)


# --------------------------------------------------------------------------- learning and history
@pytest.mark.slow
def test_fit_learns_planted_signal_close_to_bayes(toy, tiny_model):
    train, valid = toy(4000, seed=0), toy(2000, seed=1)
    model = tiny_model(train.schema)
    history = quiet_fit(model, train, valid, epochs=6, batch_size=256, lr=0.05)
    scores = evaluate(model, valid).loc["click"]
    assert scores["auc"] > scores["bayes_auc"] - 0.01, scores
    assert history["valid_auc_click"].iloc[-1] == pytest.approx(scores["auc"])
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]


def test_history_has_one_row_per_epoch_with_documented_columns(toy, tiny_model):
    train, valid = toy(1000), toy(300, seed=1)
    history = quiet_fit(tiny_model(train.schema), train, valid, epochs=3, batch_size=300)
    assert isinstance(history, pd.DataFrame)
    assert list(history["epoch"]) == [1.0, 2.0, 3.0]
    assert list(history["step"]) == [4, 8, 12]  # ceil(1000 / 300) = 4 steps, last batch partial
    for col in ("train_loss", "valid_auc_click", "valid_logloss_click", "valid_score", *TIMING_COLUMNS):
        assert col in history.columns
    assert (history["samples_per_s"] > 0).all()


def test_eval_every_and_max_steps_add_and_stop_rows(toy, tiny_model):
    train, valid = toy(1000), toy(300, seed=1)
    history = quiet_fit(tiny_model(train.schema), train, valid, epochs=5, batch_size=100, eval_every=4, max_steps=13)
    assert list(history["step"]) == [4, 8, 10, 12, 13]
    assert history["epoch"].iloc[-1] == pytest.approx(1.3)


def test_training_without_validation_logs_train_loss_only(toy, tiny_model):
    train = toy(500)
    history = quiet_fit(tiny_model(train.schema), train, epochs=2, batch_size=128)
    assert not any(c.startswith("valid_") for c in history.columns)
    assert len(history) == 2


def _left_on_device_in_eval_mode(model, data, device):
    assert all(p.device.type == device for p in model.parameters())
    assert not model.training
    with torch.no_grad():  # dropout is off: two passes agree
        dense, sparse = data.dense.to(device), data.sparse.to(device)
        torch.testing.assert_close(model(dense, sparse), model(dense, sparse), rtol=0, atol=0)


def test_model_is_left_on_device_in_eval_mode(toy, tiny_model):
    train = toy(300)
    model = tiny_model(train.schema, dropout=0.3).train()
    quiet_fit(model, train, device=torch.device("cpu"))
    _left_on_device_in_eval_mode(model, train, "cpu")


@pytest.mark.cuda
def test_model_is_left_on_the_gpu_in_eval_mode(toy, tiny_model):
    train = toy(300)
    model = tiny_model(train.schema, dropout=0.3).train()
    quiet_fit(model, train, device="cuda")
    _left_on_device_in_eval_mode(model, train, "cuda")


# --------------------------------------------------------------------------- batching and seeding
class RowSpy(nn.Module):
    """Records which rows (encoded in dense column 0) each training step saw."""

    def __init__(self, schema: FeatureSchema) -> None:
        super().__init__()
        self.schema, self.n_tasks = schema, 1
        self.w = nn.Parameter(torch.zeros(1))
        self.seen: list[torch.Tensor] = []

    def forward(self, dense, sparse):
        if self.training:
            self.seen.append(dense[:, 0].long().clone())
        return self.w * dense[:, 1]


def _indexed(toy, n):
    data = toy(n)
    dense = data.dense.clone()
    dense[:, 0] = torch.arange(n, dtype=torch.float32)
    return dataclasses.replace(data, dense=dense)


def test_each_epoch_visits_every_row_once_in_a_seeded_order(toy):
    data = _indexed(toy, 250)
    spy = RowSpy(data.schema)
    quiet_fit(spy, data, epochs=2, batch_size=64, seed=3)
    assert [len(s) for s in spy.seen] == [64, 64, 64, 58] * 2
    epochs = [torch.cat(spy.seen[:4]), torch.cat(spy.seen[4:])]
    for order in epochs:
        assert torch.equal(order.sort().values, torch.arange(250))
    assert not torch.equal(epochs[0], epochs[1]), "each epoch should draw a new permutation"
    expected = torch.randperm(250, generator=torch.Generator().manual_seed(3))
    assert torch.equal(epochs[0], expected), "the order should come from a generator seeded with `seed`"


def test_shuffle_false_keeps_row_order(toy):
    data = _indexed(toy, 100)
    spy = RowSpy(data.schema)
    quiet_fit(spy, data, batch_size=30, shuffle=False)
    assert torch.equal(torch.cat(spy.seen), torch.arange(100))


def test_same_seed_gives_identical_history_and_weights(toy, tiny_model):
    train, valid = toy(1500), toy(500, seed=1)
    runs = []
    for _ in range(2):
        model = tiny_model(train.schema, dropout=0.2, seed=7)
        h = quiet_fit(model, train, valid, epochs=2, batch_size=128, seed=11, lr=0.02)
        runs.append((h.drop(columns=list(TIMING_COLUMNS)), model.state_dict()))
    pd.testing.assert_frame_equal(runs[0][0], runs[1][0])
    for k in runs[0][1]:
        assert torch.equal(runs[0][1][k], runs[1][1][k]), k
    other = quiet_fit(tiny_model(train.schema, dropout=0.2, seed=7), train, valid, epochs=2, batch_size=128, seed=12, lr=0.02)
    assert not np.allclose(other["train_loss"], runs[0][0]["train_loss"])


# --------------------------------------------------------------------------- optimisers
def test_make_adam_is_fused_where_supported_and_falls_back(monkeypatch):
    params = [nn.Parameter(torch.randn(3))]
    opt = make_adam(params, lr=0.1)
    assert isinstance(opt, torch.optim.Adam)
    assert opt.defaults.get("fused") is True  # torch >= 2.4 fuses on CPU too
    real = torch.optim.Adam

    def no_fused(*args, **kw):
        if kw.get("fused"):
            raise RuntimeError("fused not supported here")
        return real(*args, **kw)

    monkeypatch.setattr(torch.optim, "Adam", no_fused)
    opt = make_adam(params, lr=0.1)
    assert not opt.defaults.get("fused")


def test_optimizer_callable_may_return_one_optimiser_per_part(toy, tiny_model):
    train = toy(500)
    model = tiny_model(train.schema)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    made = []

    def two(m):
        made.append([torch.optim.Adagrad(m.ids.parameters(), lr=0.1), make_adam(m.dense.parameters(), lr=0.01)])
        return made[-1]

    quiet_fit(model, train, optimizer=two, epochs=1, batch_size=100)
    assert not torch.equal(before["ids.weight"], model.ids.weight)
    assert not torch.equal(before["dense.weight"], model.dense.weight)
    assert made[0][0].state[model.ids.weight]["step"] == 5  # Adagrad stepped the wide-like part


def test_optimizer_leaving_parameters_out_warns_and_overlap_raises(toy, tiny_model):
    train = toy(200)
    model = tiny_model(train.schema)
    with pytest.warns(UserWarning, match="dense.weight"):
        quiet_fit(model, train, optimizer=lambda m: torch.optim.SGD(m.ids.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="updated twice"):
        quiet_fit(model, train, optimizer=lambda m: [torch.optim.SGD(m.parameters(), lr=0.1),
                                                     torch.optim.SGD(m.dense.parameters(), lr=0.1)])
    with pytest.raises(TypeError, match="optimizer"):
        quiet_fit(model, train, optimizer=lambda m: "adam")


def test_sparse_embeddings_get_sparse_adam(toy, tiny_model):
    train = toy(300)
    model = tiny_model(train.schema)
    model.ids.sparse = True
    quiet_fit(model, train, batch_size=100)
    assert model.ids.weight.abs().sum() > 0
    with pytest.raises(ValueError, match="weight_decay"):
        quiet_fit(model, train, weight_decay=1e-4)


# --------------------------------------------------------------------------- multi-task
def test_multitask_history_has_per_task_columns(toy, tiny_model):
    train, valid = toy(800, n_tasks=2), toy(300, n_tasks=2, seed=1)
    history = quiet_fit(tiny_model(train.schema, n_tasks=2), train, valid, epochs=2, batch_size=200)
    for col in ("train_loss_task0", "train_loss_task1", "valid_auc_task0", "valid_auc_task1"):
        assert col in history.columns
    assert history["valid_score"].iloc[-1] == pytest.approx(history[["valid_auc_task0", "valid_auc_task1"]].iloc[-1].mean())


def test_zero_task_weight_leaves_that_head_untouched(toy, tiny_model):
    train = toy(600, n_tasks=2)
    model = tiny_model(train.schema, n_tasks=2)
    before = model.dense.weight.detach().clone()
    history = quiet_fit(model, train, task_weights=[1.0, 0.0], epochs=2, batch_size=100, lr=0.05)
    assert torch.equal(model.dense.weight[1], before[1])
    assert not torch.equal(model.dense.weight[0], before[0])
    assert history["train_loss"].iloc[-1] == pytest.approx(history["train_loss_task0"].iloc[-1], rel=1e-5)


class LogVarianceWeighting(nn.Module):
    """sum_k exp(-s_k) L_k + s_k, enough to test that fit trains a weighting module's parameters."""

    def __init__(self, n_tasks: int) -> None:
        super().__init__()
        self.n_tasks = n_tasks
        self.log_var = nn.Parameter(torch.zeros(n_tasks))

    def forward(self, losses):
        return (torch.exp(-self.log_var) * losses + self.log_var).sum()


def test_weighting_module_parameters_are_trained(toy, tiny_model):
    train = toy(600, n_tasks=2)
    weighting = LogVarianceWeighting(2)
    quiet_fit(tiny_model(train.schema, n_tasks=2), train, task_weights=weighting, epochs=2, batch_size=100, lr=0.05)
    assert weighting.log_var.abs().min() > 0
    # ... also when a custom optimiser does not list them
    weighting2 = LogVarianceWeighting(2)
    quiet_fit(tiny_model(train.schema, n_tasks=2), train, task_weights=weighting2,
              optimizer=lambda m: torch.optim.Adam(m.parameters(), lr=0.05), batch_size=100)
    assert weighting2.log_var.abs().min() > 0


def test_uncertainty_weighting_from_the_package_trains(toy, tiny_model):
    from rankcourse import task_weighting as tw

    train = toy(600, n_tasks=2)
    weighting = tw.UncertaintyWeighting(2)
    before = [p.detach().clone() for p in weighting.parameters()]
    quiet_fit(tiny_model(train.schema, n_tasks=2), train, task_weights=weighting, epochs=2, batch_size=100, lr=0.05)
    after = list(weighting.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before))


def test_per_task_losses_and_regression_tasks(toy, tiny_model):
    train = toy(600, task_types=("binary", "regression"))
    valid = toy(300, seed=1, task_types=("binary", "regression"))
    calls = []

    def spy_loss(z, y):
        calls.append(z.shape)
        return torch.nn.functional.binary_cross_entropy_with_logits(z, y)

    history = quiet_fit(tiny_model(train.schema, n_tasks=2), train, valid, loss={"task0": spy_loss},
                        epochs=2, batch_size=200, lr=0.05)
    assert len(calls) == 6 and calls[0] == (200,)
    assert {"valid_auc_task0", "valid_mse_task1"} <= set(history.columns)
    assert "valid_auc_task1" not in history.columns
    # Mean AUC over the binary tasks only.
    assert history["valid_score"].iloc[-1] == pytest.approx(history["valid_auc_task0"].iloc[-1])
    reg = toy(400, task_types=("regression",))
    h = quiet_fit(tiny_model(reg.schema), reg, reg, epochs=2, batch_size=100)
    assert h["valid_score"].iloc[-1] == pytest.approx(-h["valid_mse_click"].iloc[-1])


# --------------------------------------------------------------------------- early stopping
def test_early_stopping_stops_and_restores_the_best_weights(toy, tiny_model):
    # Validation labels follow the opposite signal: the more the model learns, the worse it scores.
    train, valid = toy(1000), toy(500, seed=1, flip=True)
    model = tiny_model(train.schema)
    history = quiet_fit(model, train, valid, epochs=30, batch_size=100, lr=0.05, early_stopping=2)
    best = int(history["valid_score"].to_numpy().argmax())
    assert len(history) == best + 1 + 2, history["valid_score"].tolist()
    assert evaluate(model, valid).loc["click", "auc"] == pytest.approx(history["valid_score"].iloc[best])
    assert history.attrs["best_step"] == history["step"].iloc[best]


# --------------------------------------------------------------------------- bad input
def test_bad_arguments_raise_naming_the_argument(toy, tiny_model):
    train = toy(200)
    model = tiny_model(train.schema)
    cases = [
        (dict(batch_size=0), ValueError, "batch_size must be a positive int, got 0"),
        (dict(batch_size=-5), ValueError, "batch_size"),
        (dict(batch_size=2.5), ValueError, "batch_size"),
        (dict(epochs=0), ValueError, "epochs must be a positive int, got 0"),
        (dict(lr=-1e-3), ValueError, "lr must be a positive"),
        (dict(weight_decay=-1.0), ValueError, "weight_decay"),
        (dict(max_steps=0), ValueError, "max_steps"),
        (dict(early_stopping=2), ValueError, "early_stopping needs a validation split"),
        (dict(task_weights=[-0.5]), ValueError, "task weight λ for task 'click' must be finite and >= 0, got -0.5"),
        (dict(task_weights=[1.0, 1.0]), ValueError, "task_weights has 2 value"),
        (dict(loss="bce"), TypeError, "loss must be a callable"),
        (dict(loss={"ctr": None}), KeyError, "unknown task"),
    ]
    for kwargs, err, msg in cases:
        with pytest.raises(err, match=msg.replace("(", r"\(").replace(")", r"\)")):
            quiet_fit(model, train, **kwargs)


def test_task_count_and_schema_mismatch_are_explained(toy, tiny_model):
    two_task = toy(200, n_tasks=2)
    one_task = toy(200)
    with pytest.raises(ValueError, match=r"model has 2 task head\(s\) but train has 1 label column\(s\)"):
        quiet_fit(tiny_model(one_task.schema, n_tasks=2), one_task)
    with pytest.raises(ValueError, match=r"model has 1 task head\(s\) but train has 2"):
        quiet_fit(tiny_model(two_task.schema), two_task)
    other = FeatureSchema.from_vocab_sizes(3, [5, 9])
    with pytest.raises(ValueError, match=r"vocabulary sizes differ for 'C2' \(model 9, data 7\)"):
        quiet_fit(tiny_model(other), one_task)
    renamed = FeatureSchema.from_vocab_sizes(2, [5, 7])
    with pytest.raises(ValueError, match="dense fields"):
        quiet_fit(tiny_model(renamed), one_task)
    with pytest.raises(ValueError, match="valid has tasks"):
        quiet_fit(tiny_model(one_task.schema), one_task, dataclasses.replace(one_task, task_names=("buy",)))


def test_empty_and_wrongly_typed_data_are_rejected(toy, tiny_model):
    train = toy(100)
    model = tiny_model(train.schema)
    with pytest.raises(ValueError, match="empty"):  # an empty TabularData cannot be built
        dataclasses.replace(train, **{k: getattr(train, k)[:0] for k in ("dense", "sparse", "labels", "true_prob")})
    with pytest.raises(TypeError, match="train must be a TabularData"):
        quiet_fit(model, (train.dense, train.sparse))
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        quiet_fit("deepfm", train)


def test_wrong_output_shape_and_non_scalar_loss_are_explained(toy, tiny_model):
    train = toy(100)

    class TwoColumns(nn.Module):
        schema, n_tasks = train.schema, None

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(3, 2))

        def forward(self, dense, sparse):
            return dense @ self.w

    with pytest.raises(ValueError, match=r"returned logits of shape \(64, 2\) for a batch of 64; expected \(64,\)"):
        quiet_fit(TwoColumns(), train, batch_size=64)
    with pytest.raises(ValueError, match="must return a scalar"):
        quiet_fit(tiny_model(train.schema), train,
                  loss=lambda z, y: torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none"))


def test_diverging_loss_raises_floating_point_error(toy, tiny_model):
    train = toy(300)
    with pytest.raises(FloatingPointError, match="training loss is nan"):
        quiet_fit(tiny_model(train.schema), train, loss=lambda z, y: z.mean() * float("nan"), batch_size=100)


# --------------------------------------------------------------------------- progress bar
def test_progress_bar_shows_running_loss_and_can_be_silenced(toy, tiny_model, capsys):
    train = toy(300)
    fit(tiny_model(train.schema), train, batch_size=50, device="cpu", progress=False)
    assert capsys.readouterr().err == ""
    fit(tiny_model(train.schema), train, batch_size=50, device="cpu", progress=True)
    err = capsys.readouterr().err
    assert "loss=" in err and "6/6" in err


# --------------------------------------------------------------------------- prediction
def test_predict_helpers_return_numpy_batched_in_eval_mode(toy, tiny_model):
    data = toy(1000, n_tasks=2)
    model = tiny_model(data.schema, n_tasks=2, dropout=0.5)
    quiet_fit(model, data, lr=0.05)
    model.train()
    logits = predict_logits(model, data, batch_size=128)
    assert isinstance(logits, np.ndarray) and logits.shape == (1000, 2) and logits.dtype == np.float32
    assert model.training, "the previous train/eval mode is restored"
    np.testing.assert_array_equal(predict_logits(model, data, batch_size=999), logits)  # dropout off
    np.testing.assert_allclose(predict_proba(model, data), 1 / (1 + np.exp(-logits)), rtol=1e-6)
    single = toy(50)
    m1 = tiny_model(single.schema)
    assert predict_proba(m1, single).shape == (50,)
    assert predict_proba(m1, (single.dense, single.sparse)).shape == (50,)
    with pytest.raises(ValueError, match="batch_size"):
        predict_proba(m1, single, batch_size=0)
    with pytest.raises(ValueError, match="task head"):
        predict_proba(model, single)


def test_predict_gives_probabilities_for_binary_and_values_for_regression(toy, tiny_model):
    data = toy(200, task_types=("binary", "regression"))
    model = tiny_model(data.schema, n_tasks=2)
    quiet_fit(model, data, lr=0.05)
    pred, logits = predict(model, data), predict_logits(model, data)
    np.testing.assert_allclose(pred[:, 0], 1 / (1 + np.exp(-logits[:, 0])), rtol=1e-6)
    np.testing.assert_array_equal(pred[:, 1], logits[:, 1])


@pytest.mark.cuda
def test_cuda_fit_and_predict_match_cpu(toy, tiny_model):
    train, valid = toy(3000), toy(1000, seed=1)
    results = {}
    for device in ("cpu", "cuda"):
        model = tiny_model(train.schema, seed=5)
        history = quiet_fit(model, train, valid, device=device, epochs=3, batch_size=256, lr=0.05)
        assert str(next(model.parameters()).device).startswith(device)
        # data on the CPU, model on `device`: prediction moves each batch to the model
        results[device] = (evaluate(model, valid), history, predict_proba(model, valid))
    for col in ("auc", "logloss"):
        assert results["cuda"][0].loc["click", col] == pytest.approx(results["cpu"][0].loc["click", col], abs=1e-3)
    assert np.abs(results["cuda"][2] - results["cpu"][2]).max() < 1e-3
    # and data already on the GPU with the model back on the CPU
    model = tiny_model(train.schema, seed=5)
    quiet_fit(model, train, valid, device="cpu", epochs=1)
    assert predict_proba(model, valid.to("cuda")).shape == (1000,)


# --------------------------------------------------------------------------- runtime
def test_course_size_reads_the_environment(monkeypatch):
    monkeypatch.setenv("RANKCOURSE_SIZE", "large")
    assert runtime.course_size() == "large" and runtime.pick(small=1, large=2) == 2
    monkeypatch.setenv("RANKCOURSE_SIZE", " Small ")
    assert runtime.course_size() == "small" and runtime.pick(small=1, large=2) == 1
    monkeypatch.setenv("RANKCOURSE_SIZE", "huge")
    with pytest.raises(ValueError, match="RANKCOURSE_SIZE must be one of .* got 'huge'"):
        runtime.course_size()
    monkeypatch.delenv("RANKCOURSE_SIZE")
    assert runtime.course_size() == ("large" if torch.cuda.is_available() else "small")


def test_seed_everything_repeats_every_generator():
    import random

    draws = []
    for _ in range(2):
        runtime.seed_everything(123)
        draws.append((random.random(), np.random.rand(), torch.rand(1).item()))
    assert draws[0] == draws[1]
    with pytest.raises(ValueError, match="seed"):
        runtime.seed_everything(-1)
    with pytest.raises(TypeError, match="seed"):
        runtime.seed_everything(1.5)


@pytest.mark.parametrize("has_cuda, expected", [(True, "cuda"), (False, "cpu")])
def test_default_device_is_cuda_exactly_when_cuda_is_available(monkeypatch, has_cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: has_cuda)
    assert runtime.default_device() == torch.device(expected)


def test_make_adam_keeps_parameter_groups_given_as_generators():
    from rankcourse.training import make_adam

    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)
    opt = make_adam([{"params": a.parameters()}, {"params": b.parameters(), "lr": 0.5}], lr=0.1)
    assert [len(g["params"]) for g in opt.param_groups] == [2, 2]
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
