"""Numerical checks of the building blocks against their formulas written out by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rankcourse.layers import (
    CIN,
    MLP,
    CrossNet,
    CrossNetMix,
    CrossNetV2,
    CrossProductHashing,
    ExpertGate,
    FieldEmbedding,
    FMInteraction,
    ParallelMLP,
    WideLinear,
    fm_pairwise_bruteforce,
)
from rankcourse.schema import FeatureSchema


@pytest.fixture(autouse=True)
def _one_thread():
    """These tensors are tiny: intra-op threads only add overhead (and spin when the cores are busy)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- embedding
def test_field_embedding_reads_each_field_from_its_offset_in_one_table():
    schema = FeatureSchema.from_vocab_sizes(0, [3, 5, 2])
    emb = FieldEmbedding(schema, 4)
    assert emb.weight.shape == (10, 4)
    sparse = torch.tensor([[2, 0, 1], [0, 4, 0]])
    out = emb(sparse)
    assert out.shape == (2, 3, 4)
    assert torch.equal(out[0, 0], emb.weight[2])
    assert torch.equal(out[0, 1], emb.weight[3 + 0])
    assert torch.equal(out[1, 1], emb.weight[3 + 4])
    assert torch.equal(out[0, 2], emb.weight[8 + 1])


def test_field_embedding_rejects_wrong_number_of_fields():
    emb = FieldEmbedding(FeatureSchema.from_vocab_sizes(0, [3, 5]), 4)
    with pytest.raises(ValueError, match=r"\(batch, 2\)"):
        emb(torch.zeros(4, 3, dtype=torch.long))


# --------------------------------------------------------------------------- MLP
def test_mlp_default_has_no_batchnorm_and_takes_a_training_batch_of_one():
    mlp = MLP(6, (8, 4), dropout=0.1, out_dim=1).train()
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in mlp.modules())
    assert mlp(torch.randn(1, 6)).shape == (1, 1)
    assert mlp.out_dim == 1


def test_mlp_options_give_the_documented_widths():
    assert MLP(6, ()).out_dim == 6
    assert MLP(6, (8, 4)).out_dim == 4
    res = MLP(6, (6, 8), residual=True, layer_norm=True, activation="gelu")
    assert res(torch.randn(3, 6)).shape == (3, 8)
    bn = MLP(6, (8,), batch_norm=True)
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in bn.modules())


def test_mlp_rejects_bad_arguments_with_their_names():
    with pytest.raises(ValueError, match="swish2"):
        MLP(4, (3,), activation="swish2")
    with pytest.raises(ValueError, match=r"hidden\[1\]"):
        MLP(4, (3, 0))
    with pytest.raises(ValueError, match="dropout"):
        MLP(4, (3,), dropout=1.0)


# --------------------------------------------------------------------------- FM
def test_fm_square_of_sum_identity_equals_bruteforce_pairwise_sum():
    v = torch.randn(7, 6, 5, generator=_gen(), dtype=torch.float64)
    fast = FMInteraction()(v)
    assert fast.shape == (7,)
    torch.testing.assert_close(fast, fm_pairwise_bruteforce(v), rtol=1e-12, atol=1e-12)
    # and the brute force itself on a two-field case: just <v1, v2>
    two = v[:, :2]
    torch.testing.assert_close(fm_pairwise_bruteforce(two), (two[:, 0] * two[:, 1]).sum(1))


# --------------------------------------------------------------------------- cross networks
def _rand_like_(module: torch.nn.Module, seed: int = 0) -> None:
    g = _gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5)


def test_crossnet_matches_dcn_formula():
    d, n_layers = 5, 3
    net = CrossNet(d, n_layers).double()
    _rand_like_(net)  # nonzero biases too
    x0 = torch.randn(4, d, generator=_gen(1), dtype=torch.float64)
    expected = []
    for row in x0:
        x = row.clone()
        for l in range(n_layers):
            w, b = net.weight[l], net.bias[l]
            x = row * sum(w[i] * x[i] for i in range(d)) + b + x
        expected.append(x)
    torch.testing.assert_close(net(x0), torch.stack(expected))


def test_crossnet_v2_matches_formula_with_bias_inside_the_hadamard_product():
    d, n_layers = 5, 2
    net = CrossNetV2(d, n_layers).double()
    _rand_like_(net)
    x0 = torch.randn(4, d, generator=_gen(1), dtype=torch.float64)
    x = x0
    for layer in net.layers:
        W, b = layer.weight, layer.bias
        x = x0 * (x @ W.T + b) + x
    torch.testing.assert_close(net(x0), x)
    # the bias-outside variant (torch-rechub) is a different function
    x = x0
    for layer in net.layers:
        x = x0 * (x @ layer.weight.T) + layer.bias + x
    assert not torch.allclose(net(x0), x)


def test_crossnet_mix_matches_low_rank_mixture_formula():
    d, n_layers, rank, n_experts = 6, 2, 3, 4
    net = CrossNetMix(d, n_layers, rank, n_experts).double()
    _rand_like_(net)
    x0 = torch.randn(3, d, generator=_gen(1), dtype=torch.float64)
    x = x0
    for l in range(n_layers):
        gates = torch.softmax(x @ net.gate_weight[l] + net.gate_bias[l], dim=1)  # (B, E)
        mixed = torch.zeros_like(x)
        for i in range(n_experts):
            U, V, C = net.U[l, i], net.V[l, i], net.C[l, i]
            expert = x0 * (torch.tanh(torch.tanh(x @ V) @ C.T) @ U.T + net.bias[l])
            mixed = mixed + gates[:, i : i + 1] * expert
        x = mixed + x
    torch.testing.assert_close(net(x0), x)


@pytest.mark.parametrize("cls", [CrossNet, CrossNetV2, lambda d, n: CrossNetMix(d, n, rank=2, n_experts=3)])
def test_cross_layers_keep_a_batch_of_one_as_1_by_dim(cls):
    net = cls(5, 2)
    assert net(torch.randn(1, 5)).shape == (1, 5)
    assert net(torch.randn(7, 5)).shape == (7, 5)


def _finite_difference(values: list[torch.Tensor], order: int) -> torch.Tensor:
    """Forward difference of ``order`` at t=0 from samples at t = 0, h, 2h, ..."""
    return sum((-1) ** (order - i) * math.comb(order, i) * values[i] for i in range(order + 1))


@pytest.mark.parametrize("n_layers", [1, 2, 3])
@pytest.mark.parametrize("kind", ["v1", "v2"])
def test_cross_network_of_L_layers_is_a_polynomial_of_degree_L_plus_1(kind, n_layers):
    d, h = 4, 0.5
    net = (CrossNet(d, n_layers) if kind == "v1" else CrossNetV2(d, n_layers)).double()
    _rand_like_(net, seed=n_layers)
    with torch.no_grad():  # zero biases: then x_L(t * u) is a polynomial in t with no lower cut-off
        for name, p in net.named_parameters():
            if "bias" in name:
                p.zero_()
    u = torch.randn(1, d, generator=_gen(7), dtype=torch.float64)
    with torch.no_grad():
        values = [net(j * h * u)[0] for j in range(n_layers + 3)]
    scale = max(v.abs().max() for v in values)
    top = _finite_difference(values, n_layers + 1)
    beyond = _finite_difference(values, n_layers + 2)
    assert beyond.abs().max() < 1e-10 * scale, "degree exceeds L + 1"
    # the (L+1)-th difference is (L+1)! h^(L+1) times the leading coefficient, which we know in closed form
    lead = top / (math.factorial(n_layers + 1) * h ** (n_layers + 1))
    c = u[0].clone()
    with torch.no_grad():
        for l in range(n_layers):  # top-degree part of x_{l+1} = u ⊙ (map_l of the top part of x_l)
            c = u[0] * (net.weight[l] @ c) if kind == "v1" else u[0] * (net.layers[l].weight @ c)
    torch.testing.assert_close(lead, c, rtol=1e-7, atol=1e-9)
    assert c.abs().max() > 1e-3, "degree-(L+1) coefficient vanished: degree would be lower"


# --------------------------------------------------------------------------- CIN
def test_cin_layers_match_the_xdeepfm_formula_and_pool_to_out_dim():
    m, D = 3, 4
    cin = CIN(m, D, layer_sizes=(4, 3), split_half=True).double()
    assert cin.out_dim == 4 // 2 + 3
    x0 = torch.randn(2, m, D, generator=_gen(), dtype=torch.float64)
    # layer 1: X1_h = sum_ij W[h, i*m + j] x0_i ⊙ x0_j
    W1 = cin.weights[0]
    X1 = torch.zeros(2, 4, D, dtype=torch.float64)
    for hh in range(4):
        for i in range(m):
            for j in range(m):
                X1[:, hh] += W1[hh, i * m + j] * x0[:, i] * x0[:, j]
    nxt, out1 = X1[:, :2], X1[:, 2:]
    W2 = cin.weights[1]
    X2 = torch.zeros(2, 3, D, dtype=torch.float64)
    for hh in range(3):
        for i in range(2):
            for j in range(m):
                X2[:, hh] += W2[hh, i * m + j] * nxt[:, i] * x0[:, j]
    expected = torch.cat([out1.sum(2), X2.sum(2)], dim=1)
    torch.testing.assert_close(cin(x0), expected)


def test_cin_split_half_needs_even_inner_layers():
    with pytest.raises(ValueError, match="layer 0 has 3"):
        CIN(3, 4, layer_sizes=(3, 4), split_half=True)
    assert CIN(3, 4, layer_sizes=(3, 5), split_half=False).out_dim == 8


# --------------------------------------------------------------------------- experts and gates
def test_expert_gate_rows_sum_to_one_and_depend_on_the_input():
    gate = ExpertGate(5, 4)
    x = torch.randn(6, 5, generator=_gen())
    g = gate(x)
    assert g.shape == (6, 4)
    torch.testing.assert_close(g.sum(1), torch.ones(6))
    assert (g > 0).all()
    assert not torch.allclose(g[0], g[1])
    multi = ExpertGate(5, 4, n_gates=3)(x)
    assert multi.shape == (6, 3, 4)
    torch.testing.assert_close(multi.sum(-1), torch.ones(6, 3))


def test_parallel_mlp_equals_separate_mlps_with_the_same_weights():
    n, in_dim = 3, 5
    pm = ParallelMLP(n, in_dim, (4, 6), out_dim=2)
    x = torch.randn(7, in_dim, generator=_gen())
    xs = torch.randn(7, n, in_dim, generator=_gen(1))
    shared, per_copy = pm(x), pm(xs)
    assert shared.shape == per_copy.shape == (7, n, 2)
    for c in range(n):
        for inp, out in ((x, shared), (xs[:, c], per_copy)):
            h = torch.relu(inp @ pm.weights[0][c] + pm.biases[0][c])
            h = torch.relu(h @ pm.weights[1][c] + pm.biases[1][c])
            h = h @ pm.weights[2][c] + pm.biases[2][c]
            torch.testing.assert_close(out[:, c], h)


# --------------------------------------------------------------------------- wide part
def _wide_schema() -> FeatureSchema:
    return FeatureSchema.from_vocab_sizes(2, [4, 5, 6])


def test_cross_product_hashing_is_exact_when_the_pair_fits_and_in_range_otherwise():
    schema = _wide_schema()
    hashing = CrossProductHashing(schema, [("C1", "C2"), ("C2", "C3")], n_buckets=25)
    assert hashing.sizes == (20, 25)
    all_pairs = torch.tensor([[a, b, c] for a in range(4) for b in range(5) for c in range(6)])
    buckets = hashing(all_pairs)
    assert buckets.shape == (len(all_pairs), 2)
    assert torch.equal(buckets[:, 0], all_pairs[:, 0] * 5 + all_pairs[:, 1])  # exact: one bucket per combination
    assert buckets[:, 1].min() >= 0 and buckets[:, 1].max() < 25
    assert len(set(buckets[:, 1].tolist())) > 12  # spread over the buckets, not a few
    again = CrossProductHashing(schema, [("C1", "C2"), ("C2", "C3")], n_buckets=25)
    assert torch.equal(again(all_pairs), buckets)  # deterministic
    with pytest.raises(KeyError, match="C9"):
        CrossProductHashing(schema, [("C1", "C9")])


def test_wide_gradient_wrt_its_weights_is_residual_times_phi():
    schema = _wide_schema()
    wide = WideLinear(schema, cross_pairs=[("C1", "C2"), ("C2", "C3")], n_buckets=25).double()
    g = _gen(3)
    with torch.no_grad():
        for p in wide.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    B = 9
    dense = torch.randn(B, 2, generator=g, dtype=torch.float64)
    sparse = torch.stack([torch.randint(0, v, (B,), generator=g) for v in schema.vocab_sizes], dim=1)
    y = torch.randint(0, 2, (B,), generator=g).double()

    # phi(x) by hand: a 1 at each active id (at its field's offset) and at each active cross bucket
    buckets = wide.crosses(sparse)
    n_sparse = schema.total_vocab + sum(wide.crosses.sizes)
    assert wide.n_sparse_features == n_sparse
    phi = torch.zeros(B, n_sparse, dtype=torch.float64)
    cross_start = [schema.total_vocab, schema.total_vocab + wide.crosses.sizes[0]]
    for b in range(B):
        for f in range(schema.n_fields):
            phi[b, schema.offsets[f] + sparse[b, f]] = 1.0
        for p in range(2):
            phi[b, cross_start[p] + buckets[b, p]] = 1.0
    torch.testing.assert_close(wide.phi(dense, sparse), torch.cat([phi, dense], 1))

    z = wide(dense, sparse)
    torch.testing.assert_close(z, phi @ wide.weight[:, 0] + dense @ wide.dense_weight + wide.bias)
    F.binary_cross_entropy_with_logits(z, y).backward()
    r = (torch.sigmoid(z) - y).detach() / B  # dL/dz of the mean BCE
    torch.testing.assert_close(wide.weight.grad[:, 0], r @ phi)
    torch.testing.assert_close(wide.dense_weight.grad, r @ dense)
    torch.testing.assert_close(wide.bias.grad, r.sum())
    untouched = phi.sum(0) == 0
    assert untouched.any() and (wide.weight.grad[untouched] == 0).all()  # inactive features get no gradient


# --------------------------------------------------------------------------- second pass: mixture and batch norm
def _cross_mix_per_expert(layer, x0):
    """The per-expert form of Wang et al. (2021), eq. 3-4: each expert's (B, d) output, then the gated sum."""
    g, x = layer.activation, x0
    for l in range(layer.n_layers):
        v = g(torch.einsum("bd,edr->ber", x, layer.V[l]))
        v = g(torch.einsum("bet,est->bes", v, layer.C[l]))
        u = torch.einsum("bes,eds->bed", v, layer.U[l])
        experts = x0.unsqueeze(1) * (u + layer.bias[l])
        x = torch.einsum("be,bed->bd", layer.gates(x, l), experts) + x
    return x


@pytest.mark.parametrize("activation", ["tanh", "identity"])
def test_cross_mix_with_two_products_equals_the_per_expert_form(activation):
    from rankcourse.layers import CrossNetMix

    torch.manual_seed(0)
    layer = CrossNetMix(12, n_layers=3, rank=4, n_experts=3, activation=activation).double()
    with torch.no_grad():
        layer.bias.normal_()
        layer.gate_bias.normal_()
    x0 = torch.randn(7, 12, dtype=torch.float64, requires_grad=True)
    fast, slow = layer(x0), _cross_mix_per_expert(layer, x0)
    torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad(fast.square().sum(), [x0, layer.U, layer.C, layer.gate_weight])
    ref = torch.autograd.grad(slow.square().sum(), [x0, layer.U, layer.C, layer.gate_weight])
    for a, b in zip(grads, ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_parallel_mlp_batch_norm_normalises_each_copy_like_its_own_mlp():
    from rankcourse.layers import ParallelMLP

    torch.manual_seed(0)
    par = ParallelMLP(3, 5, (4,), out_dim=2, batch_norm=True).double().train()
    x = torch.randn(9, 5, dtype=torch.float64)
    out = par(x)
    for c in range(3):
        bn = torch.nn.BatchNorm1d(4).double().train()
        h = torch.relu(bn(x @ par.weights[0][c] + par.biases[0][c]))
        torch.testing.assert_close(out[:, c], h @ par.weights[1][c] + par.biases[1][c])
    assert ParallelMLP(3, 5, (4,)).norms is None
