"""Model-level behaviour: shapes, input errors, overfitting a tiny set, gradients, parameter counts."""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn.functional as F

from rankcourse.inference import model_device, predict_proba
from rankcourse.layers import CrossNetMix, CrossNetV2, FieldEmbedding, WideLinear
from rankcourse.models import (
    DCN,
    DCNv2,
    DeepFM,
    FactorizationMachine,
    LogisticRegression,
    MMoE,
    OMoE,
    SharedBottom,
    WideDeep,
    XDeepFM,
)
from rankcourse.schema import FeatureSchema

SCHEMA = FeatureSchema.from_vocab_sizes(3, [40, 50, 60, 7])

SINGLE_TASK: dict[str, Callable[[FeatureSchema], torch.nn.Module]] = {
    "LogisticRegression": lambda s: LogisticRegression(s),
    "FactorizationMachine": lambda s: FactorizationMachine(s, embed_dim=4),
    "WideDeep": lambda s: WideDeep(s, embed_dim=4, hidden=(16,), cross_pairs=[("C1", "C4")], n_buckets=64),
    "DeepFM": lambda s: DeepFM(s, embed_dim=4, hidden=(16,)),
    "DeepFM-separate": lambda s: DeepFM(s, embed_dim=4, hidden=(16,), separate_embeddings=True),
    "DCN": lambda s: DCN(s, embed_dim=4, n_cross=2, hidden=(16,)),
    "DCNv2-stacked": lambda s: DCNv2(s, embed_dim=4, n_cross=2, hidden=(16,)),
    "DCNv2-parallel-lowrank": lambda s: DCNv2(s, embed_dim=4, n_cross=2, hidden=(16,), structure="parallel", low_rank=3),
    "XDeepFM": lambda s: XDeepFM(s, embed_dim=4, cin_layers=(4, 4), hidden=(16,)),
}
MULTI_TASK: dict[str, Callable[[FeatureSchema], torch.nn.Module]] = {
    "SharedBottom": lambda s: SharedBottom(s, n_tasks=2, bottom=(16,), tower=(8,), embed_dim=4),
    "OMoE": lambda s: OMoE(s, n_tasks=2, n_experts=3, expert=(16,), tower=(8,), embed_dim=4),
    "MMoE": lambda s: MMoE(s, n_tasks=2, n_experts=3, expert=(16,), tower=(8,), embed_dim=4),
}
ALL = {**SINGLE_TASK, **MULTI_TASK}


@pytest.fixture(autouse=True)
def _one_thread():
    """These tensors are tiny: intra-op threads only add overhead (and spin when the cores are busy)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _batch(schema: FeatureSchema, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    dense = torch.randn(n, schema.n_dense, generator=g)
    sparse = torch.stack([torch.randint(0, v, (n,), generator=g) for v in schema.vocab_sizes], dim=1)
    return dense, sparse.reshape(n, schema.n_fields)


# --------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("name", list(ALL))
def test_logit_shapes_and_a_training_batch_of_one(name):
    torch.manual_seed(0)
    model = ALL[name](SCHEMA).train()
    n_tasks = 2 if name in MULTI_TASK else 1
    assert model.schema is SCHEMA and model.n_tasks == n_tasks
    dense, sparse = _batch(SCHEMA, 5)
    out = model(dense, sparse)
    assert out.shape == ((5,) if n_tasks == 1 else (5, n_tasks))
    one = model(dense[:1], sparse[:1])
    assert one.shape == ((1,) if n_tasks == 1 else (1, n_tasks))
    one.sum().backward()  # a batch of one trains (no BatchNorm)


@pytest.mark.parametrize("name", list(ALL))
def test_predict_proba_is_sigmoid_of_logits_without_grad_and_keeps_the_mode(name):
    torch.manual_seed(0)
    model = ALL[name](SCHEMA).train()
    dense, sparse = _batch(SCHEMA, 6)
    p = torch.from_numpy(predict_proba(model, (dense, sparse)))
    assert model.training
    assert ((p > 0) & (p < 1)).all()
    torch.testing.assert_close(p, torch.sigmoid(model.eval()(dense, sparse)).detach())


@pytest.mark.parametrize("name", list(MULTI_TASK))
def test_multitask_models_work_on_a_dense_only_schema(name):
    schema = FeatureSchema.from_vocab_sizes(6, [])
    model = MULTI_TASK[name](schema)
    dense = torch.randn(4, 6)
    assert model(dense, torch.zeros(4, 0, dtype=torch.long)).shape == (4, 2)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", list(ALL))
def test_bad_ids_and_nan_dense_raise_naming_the_field_before_any_lookup(name, monkeypatch):
    torch.manual_seed(0)
    model = ALL[name](SCHEMA)

    def no_lookup(*args, **kwargs):
        raise AssertionError("an embedding lookup ran before the input was checked")

    monkeypatch.setattr(FieldEmbedding, "forward", no_lookup)
    monkeypatch.setattr(WideLinear, "forward", no_lookup)
    dense, sparse = _batch(SCHEMA, 4)
    oov = sparse.clone()
    oov[2, 1] = 50  # C2 has vocab 50: ids 0..49
    with pytest.raises(ValueError, match=r"'C2'.*50"):
        model(dense, oov)
    negative = sparse.clone()
    negative[0, 3] = -1
    with pytest.raises(ValueError, match=r"'C4'.*-1"):
        model(dense, negative)
    nan = dense.clone()
    nan[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"'I3'.*nan"):
        model(nan, sparse)
    with pytest.raises(ValueError, match=r"\(batch, 4\)"):
        model(dense, sparse[:, :3])


# --------------------------------------------------------------------------- capacity
def _train_until_fit(model: torch.nn.Module, dense, sparse, y, steps: int = 600, lr: float = 0.03) -> tuple[float, float]:
    """Full-batch Adam until every label is on the right side of 0 and the BCE is below 0.1."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps + 1):
        opt.zero_grad(set_to_none=True)
        z = model(dense, sparse)
        loss = F.binary_cross_entropy_with_logits(z, y)
        acc = ((z > 0).float() == y).float().mean().item()
        if acc == 1.0 and loss.item() < 0.1:
            break
        loss.backward()
        opt.step()
    return loss.item(), acc


@pytest.mark.parametrize("name", list(ALL))
def test_every_model_overfits_64_rows_of_random_labels(name):
    torch.manual_seed(0)
    model = ALL[name](SCHEMA)
    dense, sparse = _batch(SCHEMA, 64, seed=1)
    g = torch.Generator().manual_seed(2)
    shape = (64, 2) if name in MULTI_TASK else (64,)
    y = torch.randint(0, 2, shape, generator=g).float()
    loss, acc = _train_until_fit(model, dense, sparse, y)
    assert acc == 1.0, f"{name}: training accuracy {acc:.3f}, BCE {loss:.3f}"
    assert loss < 0.1, f"{name}: training BCE {loss:.3f}"


def test_wide_cross_features_fit_an_interaction_that_logistic_regression_cannot():
    # y = XOR of two binary fields: no sum of per-field weights fits it, one weight per cross bucket does
    schema = FeatureSchema.from_vocab_sizes(0, [2, 2])
    sparse = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]]).repeat(8, 1)
    dense = torch.zeros(32, 0)
    y = (sparse[:, 0] ^ sparse[:, 1]).float()
    torch.manual_seed(0)
    _, acc_lr = _train_until_fit(LogisticRegression(schema), dense, sparse, y, steps=300)
    wide = WideDeep(schema, embed_dim=2, hidden=(4,), cross_pairs=[("C1", "C2")])
    with torch.no_grad():  # switch the deep part off: the wide part must do it alone
        for p in wide.deep.parameters():
            p.zero_()
    opt = torch.optim.Adam(wide.wide.parameters(), lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(wide(dense, sparse), y).backward()
        opt.step()
    acc_wide = ((wide.wide_logit(dense, sparse) > 0).float() == y).float().mean().item()
    assert acc_lr <= 0.75 and acc_wide == 1.0


# --------------------------------------------------------------------------- DeepFM embeddings
def test_deepfm_separate_embeddings_give_the_dnn_its_own_table():
    torch.manual_seed(0)
    shared = DeepFM(SCHEMA, embed_dim=4, hidden=(8,))
    separate = DeepFM(SCHEMA, embed_dim=4, hidden=(8,), separate_embeddings=True)
    assert shared.dnn_embedding is None
    assert separate.dnn_embedding.weight is not separate.embedding.weight
    assert not torch.equal(separate.dnn_embedding.weight, separate.embedding.weight)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(separate) - n(shared) == SCHEMA.total_vocab * 4
    dense, sparse = _batch(SCHEMA, 8)
    for model, fm_table_gets_deep_grad in ((shared, True), (separate, False)):
        model.zero_grad()
        model.parts(dense, sparse)["deep"].sum().backward()
        grad = model.embedding.weight.grad
        got = grad is not None and bool(grad.abs().sum() > 0)
        assert got == fm_table_gets_deep_grad
    assert separate.dnn_embedding.weight.grad.abs().sum() > 0


def test_shared_deepfm_embedding_gradient_is_fm_part_plus_deep_part():
    torch.manual_seed(0)
    model = DeepFM(SCHEMA, embed_dim=4, hidden=(8,)).double()
    dense, sparse = _batch(SCHEMA, 16)
    dense = dense.double()
    y = torch.randint(0, 2, (16,), generator=torch.Generator().manual_seed(3)).double()
    table = model.embedding.weight

    parts = model.parts(dense, sparse)
    z = parts["first_order"] + parts["fm"] + parts["deep"]
    torch.testing.assert_close(z, model(dense, sparse))
    (total,) = torch.autograd.grad(F.binary_cross_entropy_with_logits(z, y), table, retain_graph=True)
    r = (torch.sigmoid(z) - y).detach() / len(y)  # dL/dz
    (fm,) = torch.autograd.grad((r * parts["fm"]).sum(), table, retain_graph=True)
    (deep,) = torch.autograd.grad((r * parts["deep"]).sum(), table)
    assert fm.abs().sum() > 0 and deep.abs().sum() > 0
    torch.testing.assert_close(total, fm + deep)
    # the FM part by hand: d/dv_i sum_{j<k} <v_j, v_k> = sum_j v_j - v_i
    v = model.embedding(sparse).detach()
    per_slot = r[:, None, None] * (v.sum(1, keepdim=True) - v)
    expected = torch.zeros_like(table).index_add_(0, (sparse + model.embedding.offsets).flatten(), per_slot.reshape(-1, 4))
    torch.testing.assert_close(fm, expected)


# --------------------------------------------------------------------------- DCN-V2 structure
def _mlp_params(widths: list[int]) -> int:
    return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))


@pytest.mark.parametrize("structure", ["stacked", "parallel"])
@pytest.mark.parametrize("low_rank", [None, 3])
@pytest.mark.parametrize("hidden", [(16, 8), ()])
def test_dcnv2_parameter_counts_match_the_documented_formula(structure, low_rank, hidden):
    E, D, L = 2, 4, 2
    model = DCNv2(SCHEMA, embed_dim=D, n_cross=L, hidden=hidden, structure=structure, low_rank=low_rank, n_experts=E)
    d = SCHEMA.n_fields * D + SCHEMA.n_dense
    h = hidden[-1] if hidden else 0
    if low_rank is None:
        assert isinstance(model.cross, CrossNetV2)
        cross = L * (d * d + d)
    else:
        assert isinstance(model.cross, CrossNetMix)
        r = low_rank
        cross = L * (E * (2 * d * r + r * r) + d + E * (d + 1))
    head = ((h or d) if structure == "stacked" else d + h) + 1
    expected = SCHEMA.total_vocab * D + cross + _mlp_params([d, *hidden]) + head
    assert sum(p.numel() for p in model.parameters()) == expected


def test_dcnv2_stacked_feeds_the_cross_output_to_the_mlp_and_parallel_feeds_x0():
    torch.manual_seed(0)
    dense, sparse = _batch(SCHEMA, 5)
    seen = {}
    for structure in ("stacked", "parallel"):
        model = DCNv2(SCHEMA, embed_dim=4, n_cross=1, hidden=(8,), structure=structure)
        with torch.no_grad():
            model.cross.layers[0].bias.fill_(0.3)  # make cross(x0) differ from x0
        model.deep.register_forward_hook(lambda m, inp, out, s=structure: seen.__setitem__(s, inp[0]))
        model(dense, sparse)
        x0 = torch.cat([model.embedding(sparse).flatten(1), dense], 1)
        cross_out = model.cross(x0)
        expected = cross_out if structure == "stacked" else x0
        torch.testing.assert_close(seen[structure], expected)


# --------------------------------------------------------------------------- mixtures
def test_mmoe_gates_sum_to_one_depend_on_the_input_and_differ_across_tasks():
    torch.manual_seed(0)
    model = MMoE(SCHEMA, n_tasks=3, n_experts=4, expert=(8,), tower=(4,), embed_dim=4)
    dense, sparse = _batch(SCHEMA, 10)
    g = model.gate_weights(dense, sparse)
    assert g.shape == (10, 3, 4)
    torch.testing.assert_close(g.sum(-1), torch.ones(10, 3))
    assert not torch.allclose(g[0], g[1], atol=1e-4)          # input dependent
    assert not torch.allclose(g[:, 0], g[:, 1], atol=1e-4)    # one gate per task


def test_omoe_uses_one_gate_for_every_task():
    torch.manual_seed(0)
    model = OMoE(SCHEMA, n_tasks=3, n_experts=4, expert=(8,), tower=(4,), embed_dim=4)
    dense, sparse = _batch(SCHEMA, 10)
    g = model.gate_weights(dense, sparse)
    assert g.shape == (10, 3, 4)
    torch.testing.assert_close(g.sum(-1), torch.ones(10, 3))
    assert torch.equal(g[:, 0], g[:, 1]) and torch.equal(g[:, 0], g[:, 2])
    assert not torch.allclose(g[0, 0], g[1, 0], atol=1e-4)


def test_mmoe_output_is_each_task_tower_on_its_own_gated_mixture():
    torch.manual_seed(0)
    model = MMoE(SCHEMA, n_tasks=2, n_experts=3, expert=(8,), tower=(4,), embed_dim=4)
    dense, sparse = _batch(SCHEMA, 6)
    x = torch.cat([model.embedding(sparse).flatten(1), dense], 1)
    experts = [torch.relu(x @ model.experts.weights[0][e] + model.experts.biases[0][e]) for e in range(3)]
    gates = model.gate_weights(dense, sparse)
    tw, tb = model.towers.weights, model.towers.biases
    for k in range(2):
        mixed = sum(gates[:, k, e : e + 1] * experts[e] for e in range(3))
        h = torch.relu(mixed @ tw[0][k] + tb[0][k])
        torch.testing.assert_close(model(dense, sparse)[:, k], (h @ tw[1][k] + tb[1][k]).squeeze(-1))


# --------------------------------------------------------------------------- device
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", list(ALL))
def test_models_run_forward_backward_and_predict_on_cuda(name):
    torch.manual_seed(0)
    model = ALL[name](SCHEMA).cuda()  # buffers (offsets, hashing constants) must move with the module
    dense, sparse = (t.cuda() for t in _batch(SCHEMA, 8))
    out = model(dense, sparse)
    assert out.device.type == "cuda"
    out.sum().backward()
    assert model_device(model).type == "cuda"
    assert predict_proba(model, (dense, sparse)).shape[0] == 8
    bad = sparse.clone()
    bad[0, 0] = 40
    with pytest.raises(ValueError, match="'C1'"):
        model(dense, bad)


def test_fit_skips_per_batch_value_checks_but_restores_them(monkeypatch):
    from rankcourse.data import TabularData
    from rankcourse.models import DeepFM
    from rankcourse.training import fit

    schema = FeatureSchema.from_vocab_sizes(2, [5, 7])
    g = torch.Generator().manual_seed(0)
    data = TabularData(schema, torch.randn(64, 2, generator=g),
                       torch.stack([torch.randint(0, v, (64,), generator=g) for v in (5, 7)], 1),
                       torch.randint(0, 2, (64,), generator=g).float())
    model = DeepFM(schema, embed_dim=4, hidden=(8,))
    seen: list[bool] = []
    original = FeatureSchema.validate

    def spy(self, dense, sparse, check_values=True):
        seen.append(check_values)
        return original(self, dense, sparse, check_values=check_values)

    monkeypatch.setattr(FeatureSchema, "validate", spy)
    fit(model, data, epochs=1, batch_size=16, progress=False, device="cpu")
    assert len(seen) >= 4 and not any(seen), "training steps should skip the per-batch value checks"
    assert model.check_values is True
    bad = data.sparse[:2].clone()
    bad[0, 1] = 7
    with pytest.raises(ValueError, match="'C2' has id 7"):
        model(data.dense[:2], bad)


# --------------------------------------------------------------------------- batch normalisation option
WITH_MLP = [n for n in ALL if n not in ("LogisticRegression", "FactorizationMachine")]


def _norm_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def _hidden_layer_count(model: torch.nn.Module) -> int:
    """Hidden layers of every MLP in the model (plain MLPs and the experts/towers of ParallelMLPs)."""
    from rankcourse.layers import MLP, ParallelMLP

    return sum(len(m.hidden) if isinstance(m, MLP) else m.n_hidden
               for m in model.modules() if isinstance(m, (MLP, ParallelMLP)))


@pytest.mark.parametrize("name", WITH_MLP)
def test_batch_norm_option_normalises_every_hidden_layer_and_is_off_by_default(name):
    torch.manual_seed(0)
    plain = ALL[name](SCHEMA)
    assert _norm_layers(plain) == []
    model = _with_batch_norm(name)
    assert len(_norm_layers(model)) == _hidden_layer_count(model) > 0
    dense, sparse = _batch(SCHEMA, 16)
    out = model.train()(dense, sparse)
    out.sum().backward()
    model.eval()
    one = model(dense[:1], sparse[:1])  # eval mode uses the running statistics: one row is fine
    assert torch.isfinite(one).all()


def _with_batch_norm(name: str) -> torch.nn.Module:
    from rankcourse.models import DCN, DCNv2, DeepFM, MMoE, OMoE, SharedBottom, WideDeep, XDeepFM

    builders = {
        "WideDeep": lambda s: WideDeep(s, embed_dim=4, hidden=(16, 8), batch_norm=True),
        "DeepFM": lambda s: DeepFM(s, embed_dim=4, hidden=(16, 8), batch_norm=True),
        "DeepFM-separate": lambda s: DeepFM(s, embed_dim=4, hidden=(16,), separate_embeddings=True, batch_norm=True),
        "DCN": lambda s: DCN(s, embed_dim=4, n_cross=2, hidden=(16,), batch_norm=True),
        "DCNv2-stacked": lambda s: DCNv2(s, embed_dim=4, n_cross=2, hidden=(16,), batch_norm=True),
        "DCNv2-parallel-lowrank": lambda s: DCNv2(s, embed_dim=4, n_cross=2, hidden=(16,), structure="parallel",
                                                  low_rank=3, batch_norm=True),
        "XDeepFM": lambda s: XDeepFM(s, embed_dim=4, cin_layers=(4, 4), hidden=(16,), batch_norm=True),
        "SharedBottom": lambda s: SharedBottom(s, n_tasks=2, bottom=(16,), tower=(8,), embed_dim=4, batch_norm=True),
        "OMoE": lambda s: OMoE(s, n_tasks=2, n_experts=3, expert=(16, 8), tower=(8,), embed_dim=4, batch_norm=True),
        "MMoE": lambda s: MMoE(s, n_tasks=2, n_experts=3, expert=(16,), tower=(8, 4), embed_dim=4, batch_norm=True),
    }
    torch.manual_seed(0)
    return builders[name](SCHEMA)
