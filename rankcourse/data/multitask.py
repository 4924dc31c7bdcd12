r"""Synthetic multi-task data with a controllable task relationship.

* :func:`make_mmoe_regression` -- the synthetic experiment of Ma et al. 2018 ("Modeling Task
  Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts", KDD, section 3.2):
  two regression tasks whose *task correlation* is the cosine of their weight vectors.
* :func:`make_click_conversion` -- two binary tasks (click, conversion) on Criteo-like features whose
  true logits have a chosen Pearson correlation.

The MMoE data
-------------
Draw orthonormal :math:`u_1, u_2 \in \mathbb{R}^d` and set

.. math::

    w_1 = c\,u_1, \qquad w_2 = c\,(\rho\,u_1 + \sqrt{1-\rho^2}\,u_2), \qquad
    \cos(w_1, w_2) = \rho,

    x \sim N(0, I_d), \qquad
    y_k = w_k^\top x + \sum_{i=1}^{m} \sin(\alpha_i\, w_k^\top x + \beta_i) + \varepsilon_k,
    \quad \varepsilon_k \sim N(0, \sigma^2).

The paper gives neither :math:`\alpha` nor :math:`\beta`. A public re-implementation used
:math:`\alpha_i = i, \beta_i = i^2`; with :math:`\alpha_i = i` the labels are so high-frequency that
mixture models lose to Shared-Bottom, the opposite of the paper. The default here is
:math:`\alpha_i = 0.5\,i`, :math:`\beta_i = i^2` (both are parameters). Labels are standardised with the
*training* split's mean and standard deviation (applied to all splits), so losses read in units of
label variance. Since :math:`x` is standard normal, :math:`w_1^\top x` and :math:`w_2^\top x` have
Pearson correlation exactly :math:`\rho` in the population; the labels' correlation is lower
because of the sine terms (``truth.label_correlation`` reports it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..schema import FeatureSchema
from ._shared import check_int, check_scale, check_split, sigmoid, solve_intercept, split_rows
from .ctr import make_ctr_data
from .ctr_truth import CTRTruth
from .synthetic import SyntheticDataset

__all__ = ["make_mmoe_regression", "MMoETruth", "make_click_conversion", "ClickConversionTruth"]


def _check_correlation(correlation: Any) -> float:
    try:
        rho = float(correlation)
    except (TypeError, ValueError):
        raise TypeError(f"correlation must be a number, got {correlation!r}") from None
    if not -1.0 <= rho <= 1.0:
        raise ValueError(f"correlation must lie in [-1, 1], got {correlation!r}")
    return rho


# ----------------------------------------------------------------------------- MMoE regression
@dataclass
class MMoETruth:
    """The planted regression functions of :func:`make_mmoe_regression`.

    Attributes:
        correlation: :math:`\\rho = \\cos(w_1, w_2)`.
        u: ``(2, dim)`` the orthonormal :math:`u_1, u_2`.
        w: ``(2, dim)`` the task weight vectors :math:`w_1, w_2`.
        alpha, beta: ``(m,)`` the sine frequencies and phases.
        noise_std: :math:`\\sigma` of the label noise (before standardisation).
        label_mean, label_std: ``(2,)`` training-split statistics used to standardise every split
            (0 and 1 when ``standardize=False``).
        label_correlation: Pearson correlation of the two (noisy) training labels.
    """

    correlation: float
    u: np.ndarray
    w: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    noise_std: float
    label_mean: np.ndarray
    label_std: np.ndarray
    label_correlation: float = float("nan")

    def raw_targets(self, x: Any) -> np.ndarray:
        """Noise-free, unstandardised :math:`w_k^\\top x + \\sum_i \\sin(\\alpha_i w_k^\\top x + \\beta_i)`: ``(n, 2)``."""
        x = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.w.shape[1]:
            raise ValueError(f"x must have shape (n, {self.w.shape[1]}), got {x.shape}")
        lin = x @ self.w.T  # (n, 2)
        out = lin.copy()
        for a, b in zip(self.alpha, self.beta):
            out += np.sin(a * lin + b)
        return out

    def targets(self, x: Any) -> np.ndarray:
        """Noise-free targets on the label scale (standardised like the labels): ``(n, 2)``."""
        return (self.raw_targets(x) - self.label_mean) / self.label_std


def make_mmoe_regression(
    correlation: float,
    n_samples: int = 100_000,
    *,
    dim: int = 100,
    m: int = 10,
    alpha: Sequence[float] | None = None,
    beta: Sequence[float] | None = None,
    c: float = 1.0,
    noise_std: float = 0.1,
    standardize: bool = True,
    seed: int = 0,
    split: Sequence[float] = (0.8, 0.1, 0.1),
) -> SyntheticDataset:
    """The MMoE paper's two-task regression data (see the module docstring for the formula).

    Args:
        correlation: :math:`\\rho = \\cos(w_1, w_2)` in ``[-1, 1]`` (the paper uses 0.5 .. 1).
        n_samples: rows in all splits together.
        dim: input dimension :math:`d` (>= 2; the paper uses 100).
        m: number of sine terms.
        alpha, beta: ``m`` frequencies and phases; default :math:`\\alpha_i = 0.5 i`, :math:`\\beta_i = i^2`.
        c: scale of the weight vectors.
        noise_std: :math:`\\sigma` of :math:`\\varepsilon_k` (the paper's N(0, 0.01) is std 0.1).
        standardize: standardise labels (and targets) with the training split's mean/std.
        seed: everything is deterministic given the seed.
        split: ``(train, valid, test)`` fractions.

    Returns:
        A :class:`SyntheticDataset`: dense fields ``x1..x{dim}``, no categorical fields (``sparse``
        has shape ``(n, 0)``), two ``"regression"`` tasks ``task1, task2``; ``true_prob`` holds the
        noise-free targets on the label scale; ``truth`` is an :class:`MMoETruth`.
    """
    rho = _check_correlation(correlation)
    n_samples = check_int("n_samples", n_samples, 3)
    dim = check_int("dim", dim, 2)
    m = check_int("m", m, 0)
    seed = check_int("seed", seed, 0)
    fractions = check_split(split)
    noise_std = check_scale("noise_std", noise_std)
    c = check_scale("c", c)
    if c == 0:
        raise ValueError("c must be > 0 (c = 0 makes both tasks pure noise)")
    alpha_ = 0.5 * np.arange(1, m + 1, dtype=np.float64) if alpha is None else np.asarray(alpha, dtype=np.float64)
    beta_ = np.arange(1, m + 1, dtype=np.float64) ** 2 if beta is None else np.asarray(beta, dtype=np.float64)
    for name, arr in (("alpha", alpha_), ("beta", beta_)):
        if arr.shape != (m,):
            raise ValueError(f"{name} must have m={m} values, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got {arr.tolist()}")

    rng_w, rng_x, rng_e = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    q, _ = np.linalg.qr(rng_w.standard_normal((dim, 2)))
    u = q.T.copy()  # (2, dim), orthonormal rows
    w = np.stack([c * u[0], c * (rho * u[0] + math.sqrt(max(0.0, 1.0 - rho * rho)) * u[1])])
    truth = MMoETruth(rho, u, w, alpha_, beta_, noise_std, np.zeros(2), np.ones(2))

    x = rng_x.standard_normal((n_samples, dim))
    f = truth.raw_targets(x)
    y = f + noise_std * rng_e.standard_normal((n_samples, 2))
    n_train = int(round(fractions[0] * n_samples))
    if standardize:
        if n_train < 2:
            raise ValueError(f"n_samples={n_samples} leaves {n_train} training row(s); need 2 to standardise")
        truth.label_mean = y[:n_train].mean(0)
        truth.label_std = y[:n_train].std(0)
    truth.label_correlation = float(np.corrcoef(y[:n_train].T)[0, 1]) if n_train >= 2 else float("nan")
    y = (y - truth.label_mean) / truth.label_std
    f = (f - truth.label_mean) / truth.label_std

    schema = FeatureSchema(dense=tuple(f"x{i + 1}" for i in range(dim)), sparse=())
    params = dict(correlation=rho, n_samples=n_samples, dim=dim, m=m, c=c, noise_std=noise_std,
                  standardize=standardize, seed=seed, split=fractions)
    parts = split_rows(schema, x.astype(np.float32), np.zeros((n_samples, 0), np.int64), y.astype(np.float32),
                       f.astype(np.float32), ("task1", "task2"), ("regression", "regression"), fractions)
    return SyntheticDataset(*parts, truth=truth, params=params)


# ----------------------------------------------------------------------------- click + conversion
@dataclass
class ClickConversionTruth:
    """The planted click and conversion models of :func:`make_click_conversion`.

    The true logits are

    .. math::

        z_{click} = b_c + \\sigma\\,(\\sqrt{|\\rho|}\\,S + \\sqrt{1-|\\rho|}\\,T_c), \\qquad
        z_{conv}  = b_v + \\sigma\\,(\\mathrm{sign}(\\rho)\\sqrt{|\\rho|}\\,S + \\sqrt{1-|\\rho|}\\,T_v),

    where :math:`S, T_c, T_v` are three independent Criteo-like logits (:class:`CTRTruth` models over the
    same features), centred, scaled to unit variance and made mutually uncorrelated on the generated
    rows (Gram-Schmidt; the coefficients are stored so the same functions apply to new rows). Hence
    the two true logits have Pearson correlation exactly :math:`\\rho` on the generated rows.

    Attributes:
        components: ``(S, T_c, T_v)`` as :class:`CTRTruth` (their own intercepts are 0).
        mixing: ``(3, 3)`` lower-triangular map from the centred raw component logits to the
            orthonormal ``S, T_c, T_v``; ``means`` ``(3,)`` the raw means subtracted first.
        correlation, logit_std: :math:`\\rho` and :math:`\\sigma`.
        click_intercept, conversion_intercept: :math:`b_c, b_v`.
        post_click: if True the ``conversion`` task is "clicked and converted" with probability
            :math:`\\sigma(z_{click})\\,\\sigma(z_{conv})` (conversions happen only after clicks, as in
            ESMM); otherwise it is an independent task with probability :math:`\\sigma(z_{conv})`.
    """

    components: tuple[CTRTruth, CTRTruth, CTRTruth]
    means: np.ndarray
    mixing: np.ndarray
    correlation: float
    logit_std: float
    click_intercept: float = 0.0
    conversion_intercept: float = 0.0
    post_click: bool = False

    def factors(self, dense: Any, sparse: Any) -> np.ndarray:
        """``(n, 3)`` the orthonormalised shared and task-specific parts ``S, T_c, T_v``."""
        raw = np.stack([t.logit(dense, sparse) for t in self.components], 1)
        return (raw - self.means) @ self.mixing.T

    def logits(self, dense: Any, sparse: Any) -> np.ndarray:
        """``(n, 2)`` true click and conversion logits (for ``post_click`` the second is the
        conversion-given-click logit)."""
        f = self.factors(dense, sparse)
        r = abs(self.correlation)
        shared, own = math.sqrt(r), math.sqrt(1.0 - r)
        zc = self.click_intercept + self.logit_std * (shared * f[:, 0] + own * f[:, 1])
        zv = self.conversion_intercept + self.logit_std * (math.copysign(shared, self.correlation) * f[:, 0] + own * f[:, 2])
        return np.stack([zc, zv], 1)

    def probs(self, dense: Any, sparse: Any) -> np.ndarray:
        """``(n, 2)`` the true probabilities of the two tasks' labels."""
        p = sigmoid(self.logits(dense, sparse))
        if self.post_click:
            p[:, 1] = p[:, 0] * p[:, 1]
        return p


def make_click_conversion(
    correlation: float,
    n_samples: int = 200_000,
    *,
    click_rate: float = 0.2,
    conversion_rate: float = 0.1,
    logit_std: float = 1.5,
    post_click: bool = False,
    seed: int = 0,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    **ctr_kwargs: Any,
) -> SyntheticDataset:
    """Two binary tasks, ``click`` and ``conversion``, whose true logits have correlation ``correlation``.

    The features are those of :func:`make_ctr_data` (same ``seed`` and ``ctr_kwargs``: e.g.
    ``preset="teaching"``, ``vocab_sizes=...``, or part scales); three independent planted models
    over them are mixed as described in :class:`ClickConversionTruth`.

    Args:
        correlation: Pearson correlation of the two true logits on the generated rows, in ``[-1, 1]``.
        n_samples: rows in all splits together.
        click_rate: mean true click probability (solved intercept).
        conversion_rate: mean true probability of the conversion task; with ``post_click`` it is
            the mean conversion-given-click probability (the mean of the second task's label is then
            lower: about ``click_rate * conversion_rate``, plus the effect of the correlation).
        logit_std: standard deviation of each task's logit (before the intercept).
        post_click: conversions only after clicks (see :class:`ClickConversionTruth`).
        seed: everything is deterministic given the seed.
        split: ``(train, valid, test)`` fractions.
        **ctr_kwargs: structure and scale arguments passed to :func:`make_ctr_data`
            (not ``n_samples``, ``seed``, ``split``, ``positive_rate``).

    Returns:
        A :class:`SyntheticDataset` with tasks ``("click", "conversion")``, both ``"binary"``, and
        ``truth`` a :class:`ClickConversionTruth`.
    """
    rho = _check_correlation(correlation)
    seed = check_int("seed", seed, 0)
    fractions = check_split(split)
    logit_std = check_scale("logit_std", logit_std)
    rates = {}
    for name, v in (("click_rate", click_rate), ("conversion_rate", conversion_rate)):
        try:
            rates[name] = float(v)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a number, got {v!r}") from None
        if not 0.0 < rates[name] < 1.0:
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {v!r}")
    for bad in ("n_samples", "seed", "split", "positive_rate"):
        if bad in ctr_kwargs:
            raise TypeError(f"make_click_conversion: {bad!r} cannot be passed through ctr_kwargs")

    # Three planted models over the same features: same seed (so the same fields, roles and
    # features), different parameter streams (the component's seed offsets only the tables).
    base = make_ctr_data(n_samples, seed=seed, split=fractions, **ctr_kwargs)
    comps = [base.truth]
    for k in (1, 2):
        other = make_ctr_data(1000, seed=_component_seed(seed, k), split=fractions,
                              **_same_roles(base.truth, ctr_kwargs))
        comps.append(other.truth)
    for t in comps:
        t.intercept = 0.0

    splits = base.splits
    dense = np.concatenate([d.dense.numpy() for d in splits])
    sparse = np.concatenate([d.sparse.numpy() for d in splits])
    raw = np.stack([t.logit(dense, sparse) for t in comps], 1)
    means = raw.mean(0)
    cov = np.cov(raw - means, rowvar=False, bias=True)
    if np.linalg.matrix_rank(cov) < 3:
        raise ValueError("the component logits are linearly dependent (are all part scales 0?); "
                         "make_click_conversion needs a non-degenerate planted model")
    # Cholesky whitening: L^{-1} (raw - mean) has identity covariance and stays lower-triangular,
    # i.e. S is the first component standardised, T_c the second made uncorrelated with S, ...
    mixing = np.linalg.inv(np.linalg.cholesky(cov))
    truth = ClickConversionTruth(tuple(comps), means, mixing, rho, logit_std, post_click=bool(post_click))  # type: ignore[arg-type]
    z = truth.logits(dense, sparse)  # intercepts still 0
    truth.click_intercept = solve_intercept(z[:, 0], rates["click_rate"])
    truth.conversion_intercept = solve_intercept(z[:, 1], rates["conversion_rate"])
    z = z + np.array([truth.click_intercept, truth.conversion_intercept])
    p = sigmoid(z)
    if post_click:
        p[:, 1] = p[:, 0] * p[:, 1]

    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))  # components use [seed, 1], [seed, 2]
    u = rng.random((len(dense), 2))
    click = u[:, 0] < p[:, 0]
    if post_click:
        # P(conv | click) = p_conv_given_click, so the joint has probability p[:, 1] = p_c * p_v.
        p_given = sigmoid(z[:, 1])
        conv = click & (u[:, 1] < p_given)
    else:
        conv = u[:, 1] < p[:, 1]
    labels = np.stack([click, conv], 1).astype(np.float32)
    params = dict(base.params, correlation=rho, click_rate=rates["click_rate"],
                  conversion_rate=rates["conversion_rate"], logit_std=logit_std, post_click=bool(post_click))
    parts = split_rows(base.schema, dense, sparse, labels, p.astype(np.float32), ("click", "conversion"),
                       ("binary", "binary"), fractions)
    return SyntheticDataset(*parts, truth=truth, params=params)


def _component_seed(seed: int, k: int) -> int:
    """A seed for the k-th component model, derived from (but different from) ``seed``."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


def _same_roles(truth: CTRTruth, ctr_kwargs: dict[str, Any]) -> dict[str, Any]:
    """make_ctr_data arguments that reproduce ``truth``'s fields and roles (with new parameters).

    The planted crosses are left to each component's own draw (unless given in ``ctr_kwargs``), so
    click and conversion can have different memorable crosses.
    """
    kw = dict(ctr_kwargs)
    kw.update(
        noise_fields=truth.noise_fields,
        informative_dense=tuple(d for d in truth.schema.dense if d not in truth.noise_dense),
        pairwise_fields=truth.pairwise_fields,
        dense_x_cat_pairs=truth.dense_x_cat_pairs,
        third_order_fields=truth.third_order_fields,
    )
    return kw
