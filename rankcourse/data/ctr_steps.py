"""The steps of :func:`rankcourse.data.make_ctr_data`: fields, roles, the truth's tables, the rows.

Each step is a function of the previous steps' results and of its own random stream, so that
switching one logit part off leaves every other part unchanged (see :mod:`rankcourse.data.ctr`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..schema import FeatureSchema, SparseField
from ._shared import check_int, check_scale, sigmoid, solve_intercept
from .ctr_truth import ROW_BLOCK, CTRTruth, PlantedCross, _value_id

__all__ = ["criteo_vocab_sizes"]

# Interaction parts draw their fields among those with at most this many ids (unless named
# explicitly): an interaction between two 100k-id fields is mostly unlearnable noise.
_INTERACTION_VOCAB_LIMIT = 10_000


def criteo_vocab_sizes(n_fields: int = 26, smallest: int = 10, largest: int = 100_000) -> tuple[int, ...]:
    """Vocabulary sizes spaced geometrically from ``smallest`` to ``largest`` (Criteo-like)."""
    if n_fields < 1 or smallest < 1 or largest < smallest:
        raise ValueError(f"need n_fields >= 1 and 1 <= smallest <= largest, got {n_fields}, {smallest}, {largest}")
    return tuple(int(v) for v in np.round(np.geomspace(smallest, largest, n_fields)))


# ----------------------------------------------------------------------------- helpers
def _zipf_probs(vocab: int, exponent: float) -> np.ndarray:
    p = np.arange(1, vocab + 1, dtype=np.float64) ** (-exponent)
    return p / p.sum()


def _negbin_pmf(mean: float, dispersion: float) -> np.ndarray:
    """pmf of a negative-binomial count with this mean and dispersion r (variance mean + mean^2/r),
    on 0..K where the tail beyond K is far below 1e-12 (renormalised)."""
    q = mean / (mean + dispersion)  # the "failure" probability
    sd = math.sqrt(mean + mean * mean / dispersion)
    kmax = int(mean + 60 * sd + 100)
    k = np.arange(kmax, dtype=np.float64)
    # log pmf(k+1) - log pmf(k) = log(k + r) - log(k + 1) + log q
    steps = np.log(k[:-1] + dispersion) - np.log(k[:-1] + 1) + math.log(q)
    logpmf = dispersion * math.log(1 - q) + np.concatenate([[0.0], np.cumsum(steps)])
    pmf = np.exp(logpmf)
    return pmf / pmf.sum()


def _log1p_moments(pmf: np.ndarray) -> tuple[float, float]:
    """Exact mean and std of log(1 + n) for a count n with this pmf."""
    v = np.log1p(np.arange(len(pmf), dtype=np.float64))
    m = float(pmf @ v)
    return m, float(math.sqrt(pmf @ (v - m) ** 2))


def _center(table: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Subtract the Zipf-weighted mean so the looked-up value has mean zero over rows."""
    return table - np.tensordot(probs, table, axes=(0, 0))


def _second_moment(table: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """E[v v^T] of a looked-up row v = table[id], id ~ probs: ``(rank, rank)``."""
    return (table * probs[:, None]).T @ table


def _choose(rng: np.random.Generator, pool: Sequence[str], k: int) -> tuple[str, ...]:
    idx = rng.choice(len(pool), size=k, replace=False)
    return tuple(pool[i] for i in sorted(idx))


def _resolve_names(role: str, spec: Any, pool: Sequence[str], default: int, rng: np.random.Generator,
                   known: Sequence[str]) -> tuple[str, ...]:
    """A role given as None (default count), an int (count drawn from ``pool``) or explicit names."""
    if spec is None:
        return _choose(rng, pool, min(default, len(pool)))
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        if spec < 0 or spec > len(pool):
            raise ValueError(f"{role}={spec}: must be between 0 and {len(pool)} (the eligible fields {list(pool)})")
        return _choose(rng, pool, int(spec))
    if isinstance(spec, str):
        raise TypeError(f"{role} must be an int or a sequence of field names, got the string {spec!r}")
    names = tuple(spec)
    for n in names:
        if n not in known:
            raise KeyError(f"{role}: unknown field {n!r}; the fields are {list(known)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{role}: repeated field names in {names}")
    return names


# ----------------------------------------------------------------------------- the generator's steps
@dataclass
class _Fields:
    """Step 1: the fields, their value frequencies and the dense count distributions."""

    schema: FeatureSchema
    names: list[str]
    dnames: list[str]
    vocab_of: dict[str, int]
    probs: dict[str, np.ndarray]
    vnames: dict[str, tuple[str, ...]]
    dmeans: np.ndarray
    ddisp: np.ndarray
    dense_pmfs: list[np.ndarray]
    moments: np.ndarray

    def label(self, f: str, i: int) -> str:
        return self.vnames[f][i] if f in self.vnames else str(i)


@dataclass
class _Roles:
    """Step 2: which fields play which part in the logit."""

    noise: tuple[str, ...]
    active: list[str]
    eligible: list[str]
    inf_dense: tuple[str, ...]
    noise_dense: tuple[str, ...]
    pw: tuple[str, ...]
    dxc_pairs: tuple[tuple[str, str], ...]
    third_triples: tuple[tuple[str, ...], ...]
    planted: list[PlantedCross]

    def check_active(self, role: str, used: Sequence[str]) -> None:
        for u in used:
            if u in self.noise or u in self.noise_dense:
                raise ValueError(f"{role}: field {u!r} is a noise field; noise fields must have no effect")


def _make_fields(teach: dict | None, n_dense: int | None, vocab_sizes: Sequence[int] | None,
                 field_names: Sequence[str] | None, dense_names: Sequence[str] | None,
                 value_names: Mapping[str, Sequence[str]] | None,
                 zipf_exponent: float | Sequence[float] | None) -> _Fields:
    """Names, vocabularies, Zipf frequencies and dense count distributions (no randomness)."""
    if teach is not None:
        fields = teach["fields"]
        vocab = list(vocab_sizes) if vocab_sizes is not None else [f[1] for f in fields]
        names = list(field_names) if field_names is not None else [f[0] for f in fields]
        expo = zipf_exponent if zipf_exponent is not None else [f[2] for f in fields]
        dnames = list(dense_names) if dense_names is not None else (
            list(teach["dense_names"]) if n_dense is None else [f"I{i + 1}" for i in range(n_dense)])
    else:
        vocab = list(vocab_sizes) if vocab_sizes is not None else list(criteo_vocab_sizes())
        names = list(field_names) if field_names is not None else [f"C{i + 1}" for i in range(len(vocab))]
        expo = zipf_exponent if zipf_exponent is not None else 1.1
        nd = 13 if n_dense is None else n_dense
        dnames = list(dense_names) if dense_names is not None else [f"I{i + 1}" for i in range(check_int("n_dense", nd, 0))]
    if n_dense is not None and len(dnames) != check_int("n_dense", n_dense, 0):
        raise ValueError(f"n_dense={n_dense} but dense_names has {len(dnames)} names: {dnames}")
    if len(names) != len(vocab):
        raise ValueError(f"field_names has {len(names)} names but vocab_sizes has {len(vocab)} sizes")
    for n_, v in zip(names, vocab):
        check_int(f"vocab size of field {n_!r}", v, 1)
    vocab = [int(v) for v in vocab]
    vnames: dict[str, Sequence[str]] = {}
    if teach is not None:  # keep the value names of every preset field still there with its vocabulary
        vnames = {f[0]: f[3] for f in teach["fields"] if f[3] is not None and f[0] in names
                  and vocab[names.index(f[0])] == f[1]}
    expos = [float(expo)] * len(vocab) if np.ndim(expo) == 0 else [float(e) for e in expo]
    if len(expos) != len(vocab):
        raise ValueError(f"zipf_exponent has {len(expos)} values for {len(vocab)} categorical fields")
    for n_, e in zip(names, expos):
        if not (math.isfinite(e) and e >= 0):
            raise ValueError(f"zipf_exponent of field {n_!r} must be finite and >= 0, got {e!r}")
    schema = FeatureSchema(dense=tuple(dnames), sparse=tuple(SparseField(n_, v) for n_, v in zip(names, vocab)))
    if value_names is not None:
        for k, vals in value_names.items():
            if k not in names:
                raise KeyError(f"value_names: unknown categorical field {k!r}; the fields are {names}")
            vals = tuple(str(x) for x in vals)
            if len(vals) != vocab[names.index(k)]:
                raise ValueError(f"value_names[{k!r}] has {len(vals)} names for a vocabulary of {vocab[names.index(k)]}")
            vnames[k] = vals
    vnames = {k: tuple(v) for k, v in vnames.items()}

    vocab_of = dict(zip(names, vocab))
    probs = {n_: _zipf_probs(v, e) for n_, v, e in zip(names, vocab, expos)}

    nd = len(dnames)
    if teach is not None and dense_names is None and n_dense is None:
        dmeans, ddisp = np.array(teach["dense_means"]), np.array(teach["dense_dispersions"])
    else:
        dmeans = np.geomspace(0.3, 300.0, nd) if nd else np.zeros(0)
        ddisp = np.array([(0.5, 1.0, 2.0)[j % 3] for j in range(nd)])
    dense_pmfs = [_negbin_pmf(float(m), float(r)) for m, r in zip(dmeans, ddisp)]
    moments = np.array([_log1p_moments(pmf) for pmf in dense_pmfs]).reshape(nd, 2)
    return _Fields(schema, names, dnames, vocab_of, probs, vnames, dmeans, ddisp, dense_pmfs, moments)


def _draw_roles(fields: _Fields, specs: dict[str, Any], streams: Mapping[str, np.random.Generator],
                cross_scale: float, min_cross_frequency: float) -> _Roles:
    """Noise fields, informative dense fields, FM fields, then the interaction roles."""
    names, dnames, vocab_of = fields.names, fields.dnames, fields.vocab_of
    nd = len(dnames)
    noise = _resolve_names("noise_fields", specs["noise_fields"],
                           names, len(names) // 6, streams["noise_fields"], names)
    active = [n_ for n_ in names if n_ not in noise]
    eligible = [n_ for n_ in active if vocab_of[n_] <= _INTERACTION_VOCAB_LIMIT]
    inf_dense = _resolve_names("informative_dense",
                               specs["informative_dense"],
                               dnames, math.ceil(0.6 * nd), streams["informative_dense"], dnames)
    noise_dense = tuple(d for d in dnames if d not in inf_dense)

    roles = _Roles(noise, active, eligible, inf_dense, noise_dense, (), (), (), [])
    pw = _resolve_names("pairwise_fields", specs["pairwise_fields"],
                        eligible, 8 if len(eligible) >= 2 else 0, streams["pairwise_roles"], names)
    roles.check_active("pairwise_fields", pw)
    if len(pw) == 1:
        raise ValueError(f"pairwise_fields needs at least 2 fields (or none), got {pw}")
    roles.pw = pw
    roles.dxc_pairs = _dense_x_cat_roles(specs["dense_x_cat_pairs"], fields, roles, streams["dense_x_cat_roles"])
    roles.third_triples = _third_order_roles(specs["third_order_fields"], fields, roles, streams["third_order_roles"])
    roles.planted = _cross_roles(specs["cross_pairs"], fields, roles, streams["cross_roles"], cross_scale,
                                 min_cross_frequency)
    return roles


def _dense_x_cat_roles(spec: Any, fields: _Fields, roles: _Roles,
                       rng: np.random.Generator) -> tuple[tuple[str, str], ...]:
    """The (dense field, categorical field) pairs of the dense-by-categorical slopes."""
    names, dnames = fields.names, fields.dnames
    inf_dense, eligible, check_active = roles.inf_dense, roles.eligible, roles.check_active
    if spec is None or (isinstance(spec, (int, np.integer)) and not isinstance(spec, bool)):
        k = min(3, len(inf_dense), len(eligible)) if spec is None else int(spec)
        if k < 0 or (k > 0 and (not inf_dense or not eligible)) or k > len(inf_dense) * len(eligible):
            raise ValueError(f"dense_x_cat_pairs={spec}: cannot draw that many pairs from informative dense fields "
                             f"{list(inf_dense)} and categorical fields {eligible}")
        combos = [(d, f) for d in inf_dense for f in eligible]
        dxc_pairs = tuple(combos[i] for i in sorted(rng.choice(len(combos), size=k, replace=False)))
    else:
        dxc_pairs = tuple((str(d), str(f)) for d, f in spec)
        for d, f in dxc_pairs:
            if d not in dnames:
                raise KeyError(f"dense_x_cat_pairs: unknown dense field {d!r}; the dense fields are {dnames}")
            if f not in names:
                raise KeyError(f"dense_x_cat_pairs: unknown categorical field {f!r}; the fields are {names}")
            check_active("dense_x_cat_pairs", (d, f))
        if len(set(dxc_pairs)) != len(dxc_pairs):
            raise ValueError(f"dense_x_cat_pairs: repeated pair in {dxc_pairs}")
    return dxc_pairs


def _third_order_roles(spec: Any, fields: _Fields, roles: _Roles,
                       rng: np.random.Generator) -> tuple[tuple[str, ...], ...]:
    """The field triples of the third-order term (every second drawn triple has a dense member)."""
    names, dnames = fields.names, fields.dnames
    inf_dense, eligible, check_active = roles.inf_dense, roles.eligible, roles.check_active
    if spec is None or (isinstance(spec, (int, np.integer)) and not isinstance(spec, bool)):
        k = (2 if len(eligible) >= 3 else 0) if spec is None else int(spec)
        if k < 0 or (k > 0 and len(eligible) < 3):
            raise ValueError(f"third_order_fields={spec}: need at least 3 eligible categorical fields, have {eligible}")
        triples: list[tuple[str, str, str]] = []
        for t in range(k):
            for _ in range(1000):
                if t % 2 == 1 and inf_dense:  # every second drawn triple has a dense member
                    a, b = (eligible[i] for i in rng.choice(len(eligible), 2, replace=False))
                    cand = (a, b, inf_dense[int(rng.integers(len(inf_dense)))])
                else:
                    cand = tuple(eligible[i] for i in rng.choice(len(eligible), 3, replace=False))
                if frozenset(cand) not in {frozenset(x) for x in triples}:
                    triples.append(cand)  # type: ignore[arg-type]
                    break
            else:
                if spec is None:  # the default asks for at most 2; keep what can be drawn
                    break
                raise ValueError(f"third_order_fields={spec}: could not draw {k} distinct triples from {eligible}")
        third_triples = tuple(triples)
    else:
        third_triples = tuple(tuple(str(x) for x in t) for t in spec)  # type: ignore[misc]
        for t in third_triples:
            if len(t) != 3 or len(set(t)) != 3:
                raise ValueError(f"third_order_fields: each entry must be 3 distinct field names, got {t}")
            for x in t:
                if x not in names and x not in dnames:
                    raise KeyError(f"third_order_fields: unknown field {x!r}; the fields are {dnames + names}")
            check_active("third_order_fields", t)
        if len({frozenset(t) for t in third_triples}) != len(third_triples):
            raise ValueError(f"third_order_fields: repeated triple in {third_triples}")
    return third_triples


def _cross_roles(spec: Any, fields: _Fields, roles: _Roles, rng: np.random.Generator,
                 cross_scale: float, min_cross_frequency: float) -> list[PlantedCross]:
    """The planted crosses: drawn among frequent value pairs, or as given."""
    names, probs, label = fields.names, fields.probs, fields.label
    vnames, vocab_of, active, check_active = fields.vnames, fields.vocab_of, roles.active, roles.check_active
    scales = {"crosses": cross_scale}
    planted: list[PlantedCross] = []
    if spec is None or (isinstance(spec, (int, np.integer)) and not isinstance(spec, bool)):
        k = 4 if spec is None else int(spec)
        if k < 0:
            raise ValueError(f"cross_pairs must be >= 0, got {spec}")
        pairs = [(a, b) for i, a in enumerate(active) for b in active[i + 1:]]
        order = rng.permutation(len(pairs))
        used_pairs: set[tuple[str, str]] = set()
        for pi in order:
            if len(planted) == k:
                break
            a, b = pairs[pi]
            top_a, top_b = probs[a][:50], probs[b][:50]
            joint = top_a[:, None] * top_b[None, :]
            ok = np.argwhere(joint >= min_cross_frequency)
            if len(ok) == 0 or (a, b) in used_pairs:
                continue
            ia, ib = ok[int(rng.integers(len(ok)))]
            used_pairs.add((a, b))
            planted.append(PlantedCross(a, int(ia), b, int(ib), scales["crosses"], float(joint[ia, ib]),
                                        label(a, ia), label(b, ib)))
        if len(planted) < k and spec is not None:
            raise ValueError(f"cross_pairs={k}: only {len(planted)} field pairs have values with joint frequency "
                             f">= min_cross_frequency={min_cross_frequency}")
        planted.sort(key=lambda c: (names.index(c.field_a), names.index(c.field_b)))
    else:
        for c in spec:
            if len(c) not in (4, 5):
                raise ValueError(f"cross_pairs: each cross is (field_a, value_a, field_b, value_b[, weight]), got {c!r}")
            a, va, b, vb = c[:4]
            w = check_scale("cross weight", abs(c[4])) * np.sign(c[4]) if len(c) == 5 else scales["crosses"]
            if a == b:
                raise ValueError(f"cross_pairs: a cross needs two different fields, got {a!r} twice")
            ia, ib = _value_id(a, va, vnames, vocab_of), _value_id(b, vb, vnames, vocab_of)
            check_active("cross_pairs", (a, b))
            planted.append(PlantedCross(a, ia, b, ib, float(w) if scales["crosses"] > 0 else 0.0,
                                        float(probs[a][ia] * probs[b][ib]), label(a, ia), label(b, ib)))
    return planted


def _make_truth(fields: _Fields, roles: _Roles, scales: dict[str, float], pairwise_rank: int,
                third_order_rank: int, streams: Mapping[str, np.random.Generator]) -> CTRTruth:
    """Step 3: the tables of every logit part, each scaled to its population standard deviation;
    the intercept is solved later, on the drawn rows."""
    names, dnames, vocab_of, probs = fields.names, fields.dnames, fields.vocab_of, fields.probs
    active, noise, inf_dense, pw = roles.active, roles.noise, roles.inf_dense, roles.pw
    dxc_pairs, third_triples = roles.dxc_pairs, roles.third_triples
    nd = len(dnames)
    main_tabs: dict[str, np.ndarray] = {}
    rng = streams["main"]
    share = rng.dirichlet(np.ones(len(active))) if active else np.zeros(0)
    raw = {n_: rng.standard_normal(vocab_of[n_]) for n_ in active}
    for n_, sh in zip(active, share):
        t = _center(raw[n_], probs[n_])
        var = float(probs[n_] @ t ** 2)
        main_tabs[n_] = t * (scales["main"] * math.sqrt(sh / var) if var > 0 else 0.0)
    for n_ in noise:
        main_tabs[n_] = np.zeros(vocab_of[n_])
    main_tabs = {n_: main_tabs[n_] for n_ in names}

    dense_coef = np.zeros(nd)
    g = streams["dense"].standard_normal(len(inf_dense))
    if len(inf_dense) and scales["dense"] > 0:
        g *= scales["dense"] / np.linalg.norm(g)
        for d, c in zip(inf_dense, g):
            dense_coef[dnames.index(d)] = c

    rng = streams["pairwise"]
    pw_vecs = {n_: _center(rng.standard_normal((vocab_of[n_], pairwise_rank)), probs[n_]) for n_ in pw}
    var = sum(float(np.sum(_second_moment(pw_vecs[f], probs[f]) * _second_moment(pw_vecs[h], probs[h])))
              for i, f in enumerate(pw) for h in pw[i + 1:])
    # <c v_f, c v_g> = c^2 <v_f, v_g>: the term's std scales with c^2.
    c = math.sqrt(scales["pairwise"] / math.sqrt(var)) if var > 0 else 0.0
    pw_vecs = {n_: v * c for n_, v in pw_vecs.items()}

    rng = streams["dense_x_cat"]
    slopes = [_center(rng.standard_normal(vocab_of[f]), probs[f]) for _, f in dxc_pairs]
    var = sum(float(probs[f] @ s_ ** 2) for (_, f), s_ in zip(dxc_pairs, slopes))  # E[x_j^2] = 1
    c = scales["dense_x_cat"] / math.sqrt(var) if var > 0 else 0.0
    slopes = [s_ * c for s_ in slopes]

    rng = streams["third_order"]
    factors: list[dict[str, np.ndarray]] = []
    var = 0.0
    for t in third_triples:
        fac, prod = {}, np.ones((third_order_rank, third_order_rank))
        for x in t:
            if x in dnames:
                fac[x] = rng.standard_normal(third_order_rank)
                prod = prod * np.outer(fac[x], fac[x])  # E[x_j^2] = 1
            else:
                fac[x] = _center(rng.standard_normal((vocab_of[x], third_order_rank)), probs[x])
                prod = prod * _second_moment(fac[x], probs[x])
        factors.append(fac)
        var += float(prod.sum())  # Var sum_k prod_m z_mk = sum_{k,l} prod_m E[z_mk z_ml]
    # Each factor times c scales the product by c^3.
    c = (scales["third_order"] / math.sqrt(var)) ** (1 / 3) if var > 0 else 0.0
    factors = [{k_: v * c for k_, v in fac.items()} for fac in factors]

    return CTRTruth(
        schema=fields.schema, intercept=0.0, scales=scales, value_probs=probs, value_names=fields.vnames,
        dense_center=fields.moments[:, 0].copy(), dense_scale=fields.moments[:, 1].copy(),
        dense_params=np.stack([fields.dmeans, fields.ddisp], 1).reshape(nd, 2),
        main_effects=main_tabs, dense_coef=dense_coef, crosses=tuple(roles.planted), pairwise_fields=tuple(pw),
        pairwise_vectors=pw_vecs, dense_x_cat_pairs=dxc_pairs, dense_x_cat_slopes=tuple(slopes),
        third_order_fields=third_triples, third_order_factors=tuple(factors), noise_fields=tuple(noise),
        noise_dense=roles.noise_dense,
    )


def _draw_rows(truth: CTRTruth, fields: _Fields, n_samples: int, rate: float, features: np.random.SeedSequence,
               label_rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps 4 and 5: features, the logit parts' sum, the intercept that gives ``rate``, the labels.
    Returns ``dense, sparse, labels, true probabilities``; sets ``truth.intercept``."""
    dense, sparse = _draw_features(fields.schema, fields.probs, fields.dense_pmfs, n_samples, features)
    z = truth.logit(dense, sparse)
    truth.intercept = solve_intercept(z, rate)
    p = sigmoid(z + truth.intercept)
    labels = (label_rng.random(n_samples) < p).astype(np.float32)
    return dense, sparse, labels, p


def _draw_features(schema: FeatureSchema, probs: Mapping[str, np.ndarray], dense_pmfs: Sequence[np.ndarray],
                   n: int, seq: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    """Zipf ids and log1p negative-binomial counts, both by inverse-CDF sampling of a uniform.

    (Inverse-CDF sampling of the tabulated count pmf is several times faster than numpy's
    gamma-Poisson negative_binomial.) Each field has its own generator and rows are produced in
    blocks: the result does not depend on the block size, and the column writes stay in cache (a
    column-at-a-time write over 500k rows is several times slower).
    """
    gens = [np.random.default_rng(c) for c in seq.spawn(schema.n_fields + schema.n_dense)]
    cdfs = [np.cumsum(probs[f.name]) for f in schema.sparse] + [np.cumsum(p) for p in dense_pmfs]
    for cdf in cdfs:
        cdf[-1] = 1.0  # uniforms are < 1, so the last value is never exceeded
    sparse = np.empty((n, schema.n_fields), dtype=np.int64)
    dense = np.empty((n, schema.n_dense), dtype=np.float32)
    nf = schema.n_fields
    for a in range(0, n, ROW_BLOCK):
        m = min(ROW_BLOCK, n - a)
        for j in range(nf):
            sparse[a:a + m, j] = np.searchsorted(cdfs[j], gens[j].random(m), side="right")
        for j in range(schema.n_dense):
            counts = np.searchsorted(cdfs[nf + j], gens[nf + j].random(m), side="right")
            dense[a:a + m, j] = np.log1p(counts)
    return dense, sparse
