"""Regression tests for bugs found in review of the training loop and the data container.

Each test failed on the code before its fix.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
import torch
from torch import nn

from rankcourse import training
from rankcourse.data.tabular import TabularData
from rankcourse.layers import MLP, FieldEmbedding, WideLinear
from rankcourse.models import DeepFM, MMoE
from rankcourse.models.base import CTRModel, deep_input
from rankcourse.replicas import train_replicas
from rankcourse.task_weighting import UncertaintyWeighting
from rankcourse.training import fit, make_adam

ROOT = Path(__file__).resolve().parents[1]


def quiet_fit(model, train, valid=None, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("device", "cpu")
    return fit(model, train, valid, **kw)


class SparseGradCTR(CTRModel):
    """Field embeddings and a wide part, both with sparse gradients."""

    def __init__(self, schema, dim: int = 4) -> None:
        super().__init__(schema)
        self.embedding = FieldEmbedding(schema, dim, sparse_grad=True)
        self.wide = WideLinear(schema, sparse_grad=True)
        self.head = nn.Linear(self.deep_input_dim(schema, dim), 1)

    def forward(self, dense, sparse):
        self.check_input(dense, sparse)
        return self.wide(dense, sparse) + self.head(deep_input(self.embedding(sparse), dense)).squeeze(-1)


class BatchNormCTR(CTRModel):
    """Embeddings and an MLP with batch normalisation."""

    def __init__(self, schema, dim: int = 4) -> None:
        super().__init__(schema)
        self.embedding = FieldEmbedding(schema, dim)
        self.mlp = MLP(self.deep_input_dim(schema, dim), (8,), batch_norm=True, out_dim=1)

    def forward(self, dense, sparse):
        self.check_input(dense, sparse)
        return self.mlp(deep_input(self.embedding(sparse), dense)).squeeze(-1)


# --------------------------------------------------------------------------- bug 1
def test_fit_trains_course_layers_built_with_sparse_gradients(toy):
    train = toy(600)
    torch.manual_seed(0)
    model = SparseGradCTR(train.schema)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quiet_fit(model, train, epochs=1, batch_size=128)
    for name in ("embedding.weight", "wide.weight"):
        assert not torch.equal(before[name], model.state_dict()[name]), name


def test_sparse_gradient_tables_go_to_sparse_adam(toy):
    model = SparseGradCTR(toy(10).schema)
    opts = training.default_optimizers(model, [], lr=1e-3, weight_decay=0.0)
    sparse_opt = [o for o in opts if isinstance(o, torch.optim.SparseAdam)]
    assert len(sparse_opt) == 1
    held = {id(p) for g in sparse_opt[0].param_groups for p in g["params"]}
    assert held == {id(model.embedding.weight), id(model.wide.weight)}


# --------------------------------------------------------------------------- bug 2
def test_fit_leaves_the_callers_random_state_as_it_found_it(toy, tiny_model):
    train = toy(300)
    model = tiny_model(train.schema, dropout=0.2)
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    expected = torch.rand(5)
    torch.random.set_rng_state(state)
    quiet_fit(model, train, epochs=1, batch_size=64, seed=99)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(torch.rand(5), expected)


def test_fit_with_the_same_seed_still_repeats_itself(toy, tiny_model):
    train = toy(300)
    runs = [quiet_fit(tiny_model(train.schema, dropout=0.2), train, epochs=2, batch_size=64, seed=5)
            for _ in range(2)]
    assert runs[0]["train_loss"].tolist() == runs[1]["train_loss"].tolist()


# --------------------------------------------------------------------------- bug 3
def test_value_checks_are_back_on_when_fit_fails_after_trusting_inputs(toy, monkeypatch):
    train = toy(200)
    model = DeepFM(train.schema, embed_dim=4, hidden=(8,))

    def broken_bar(*args, **kwargs):
        raise RuntimeError("no terminal")

    monkeypatch.setattr(training, "tqdm", broken_bar)
    with pytest.raises(RuntimeError, match="no terminal") as failure:
        quiet_fit(model, train, epochs=1)
    # While the traceback (and so fit's frame) is alive, nothing else can have restored the switch.
    assert failure.tb is not None
    assert model.check_values is True


# --------------------------------------------------------------------------- bug 4
def test_early_stopping_restores_the_task_weighting_of_the_best_step(toy):
    train, valid = toy(800, n_tasks=2), toy(400, n_tasks=2, seed=1, flip=True)

    def run(epochs, **kw):
        torch.manual_seed(0)
        model = MMoE(train.schema, 2, n_experts=2, expert=(8,), tower=(4,), embed_dim=4)
        weighting = UncertaintyWeighting(2)
        history = quiet_fit(model, train, valid, epochs=epochs, batch_size=100, lr=0.02,
                            task_weights=weighting, **kw)
        return history, weighting

    # On flipped validation labels the more the model learns, the worse it scores: the first epoch is best.
    history, late = run(4, early_stopping=2)
    assert history.attrs["best_step"] == 8
    _, first_epoch = run(1)
    assert torch.equal(late.log_variance, first_epoch.log_variance)


def test_early_stopping_skips_a_validation_task_with_one_class_and_warns(toy, tiny_model):
    train, valid = toy(600, n_tasks=2), toy(300, n_tasks=2, seed=1)
    labels = valid.labels.clone()
    labels[:, 1] = 0.0
    valid = dataclasses.replace(valid, labels=labels)
    with pytest.warns(UserWarning, match="task1"):
        history = quiet_fit(tiny_model(train.schema, n_tasks=2), train, valid, epochs=2,
                            batch_size=100, early_stopping=1)
    assert "best_step" in history.attrs
    assert history["valid_score"].notna().all()
    assert history["valid_score"].iloc[0] == pytest.approx(history["valid_auc_task0"].iloc[0])


def test_early_stopping_fails_clearly_when_no_validation_task_has_two_classes(toy, tiny_model):
    train, valid = toy(600), toy(300, seed=1)
    valid = dataclasses.replace(valid, labels=torch.zeros_like(valid.labels))
    with pytest.warns(UserWarning, match="one class"), pytest.raises(ValueError, match="click"):
        quiet_fit(tiny_model(train.schema), train, valid, epochs=2, early_stopping=1)


# --------------------------------------------------------------------------- bug 5
def test_a_last_batch_of_one_row_is_merged_for_batch_norm_models(toy):
    train = toy(257)
    torch.manual_seed(0)
    history = quiet_fit(BatchNormCTR(train.schema), train, epochs=2, batch_size=128)
    assert list(history["step"]) == [2, 4]  # 128 + 129 rows, not 128 + 128 + 1


def test_a_last_batch_of_one_row_is_kept_without_batch_norm(toy, tiny_model):
    train = toy(257)
    history = quiet_fit(tiny_model(train.schema), train, epochs=1, batch_size=128)
    assert list(history["step"]) == [3]


# --------------------------------------------------------------------------- bug 6
def test_fit_trains_a_float64_model(toy):
    train = toy(300)
    torch.manual_seed(0)
    model = DeepFM(train.schema, embed_dim=4, hidden=(8,)).double()
    history = quiet_fit(model, train, epochs=1, batch_size=100)
    assert history["train_loss"].notna().all()
    assert model.linear.dense_weight.dtype == torch.float64


# --------------------------------------------------------------------------- bug 7
def test_to_an_equal_device_spelt_differently_returns_the_same_data(toy):
    data = toy(50)
    assert data.to("cpu:0") is data
    assert data.to(torch.device("cpu", 0)) is data


@pytest.mark.cuda
def test_to_the_gpu_and_back_gives_the_same_values(toy):
    data = toy(5000)
    there = data.to("cuda")
    assert there.to("cuda:0") is there
    back = there.to("cpu")
    assert torch.equal(back.sparse, data.sparse) and torch.equal(back.dense, data.dense)


# --------------------------------------------------------------------------- bug 8
def test_tabular_data_fields_cannot_be_reassigned(toy):
    data = toy(20)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.sparse = torch.zeros_like(data.sparse)


def test_fit_names_an_out_of_vocabulary_id_written_into_the_data_after_it_was_built(toy):
    train = toy(200)
    train.sparse[3, 1] = 99  # field C2 has 7 values
    model = DeepFM(train.schema, embed_dim=4, hidden=(8,))
    with pytest.raises(ValueError, match="C2.*99"):
        quiet_fit(model, train, epochs=1)


# --------------------------------------------------------------------------- bug 9
def test_train_replicas_rejects_validation_tasks_of_another_type():
    from rankcourse.data import make_mmoe_regression

    train = make_mmoe_regression(0.5, 200, dim=6, seed=0).train
    valid = make_mmoe_regression(0.5, 200, dim=6, seed=1).valid
    as_binary = dataclasses.replace(valid, labels=(valid.labels > 0).float(),
                                    true_prob=None, task_types=("binary", "binary"))
    torch.manual_seed(0)
    model = MMoE(train.schema, 2, n_experts=2, expert=(4,), tower=(3,))
    with pytest.raises(ValueError, match="task types"):
        train_replicas([model], [train], [as_binary], steps=2, batch_size=16, progress=False)


# --------------------------------------------------------------------------- bug 10
def test_declared_torch_bound_has_fused_adam_on_the_cpu():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_dep = next(d for d in deps if d.replace(" ", "").startswith("torch>="))
    major, minor = (int(x) for x in torch_dep.split(">=")[1].split(".")[:2])
    assert (major, minor) >= (2, 4), torch_dep


def test_make_adam_falls_back_to_plain_adam_where_fused_is_refused(monkeypatch):
    real = torch.optim.Adam

    def refuses_fused(params, *args, fused=None, **kwargs):
        if fused:
            raise RuntimeError("fused=True requires a newer torch")
        return real(params, *args, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", refuses_fused)
    p = nn.Parameter(torch.zeros(3))
    opt = make_adam([p], lr=0.1)
    assert isinstance(opt, real) and not opt.defaults.get("fused")
    p.grad = torch.ones(3)
    opt.step()
    assert torch.allclose(p.detach(), torch.full((3,), -0.1))


# --------------------------------------------------------------------------- losses as fit's source of defaults
def test_a_losses_function_passed_to_fit_skips_its_per_step_checks(toy, tiny_model):
    import functools

    from rankcourse import losses

    seen = []

    def spy(logits, labels, reduction="mean", *, validate=True):
        seen.append(validate)
        return losses.bce_with_logits(logits, labels, reduction, validate=validate)

    train = toy(300)
    quiet_fit(tiny_model(train.schema), train, epochs=1, batch_size=100, loss=spy)
    assert seen == [False] * 3
    seen.clear()
    quiet_fit(tiny_model(train.schema), train, epochs=1, batch_size=100, loss=functools.partial(spy, validate=True))
    assert seen == [True] * 3  # a caller who fixed validate keeps it


def test_default_loss_is_the_losses_module_bce_and_gives_the_same_history(toy, tiny_model):
    from rankcourse import losses

    train = toy(300)
    default = quiet_fit(tiny_model(train.schema), train, epochs=2, batch_size=64)
    explicit = quiet_fit(tiny_model(train.schema), train, epochs=2, batch_size=64, loss=losses.bce_with_logits)
    assert default["train_loss"].tolist() == explicit["train_loss"].tolist()
    assert losses.default_loss("binary") is losses.bce_with_logits
    assert losses.default_loss("regression") is losses.squared_error
    with pytest.raises(ValueError, match="ranking"):
        losses.default_loss("ranking")
