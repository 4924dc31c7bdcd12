"""Self-checks for the code exercises of Chapter 2 (Wide & Deep).

* :func:`check_cross_ids` -- the index of a cross-product feature: each pair of ids of two fields
  must get its own index in ``[0, V_a * V_b)`` (what :class:`~rankcourse.layers.CrossProductHashing`
  does before any hashing).
* :func:`check_shared_bucket_fraction` -- the expected share of cross cells that share their hash
  bucket with at least one other cell, when ``n_cells`` cells are hashed into ``n_buckets`` buckets.
* :func:`check_ftrl_step` -- one FTRL-Proximal update of the weights and the two per-coordinate
  accumulators (McMahan et al. 2013, Algorithm 1), the optimiser of the wide part.

Each check runs the student's function on small cases, compares it with a reference computed here,
and raises ``AssertionError`` with a message that says what is wrong.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable

import numpy as np
import torch

from ._seeding import numpy_rng, torch_generator

__all__ = ["check_cross_ids", "check_ftrl_step", "check_shared_bucket_fraction", "reference_cross_ids",
           "reference_ftrl_step", "reference_ftrl_weight", "reference_shared_bucket_fraction"]


# --------------------------------------------------------------------------- helpers
def _as_array(value: Any, what: str, dtype: Any = np.float64) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise AssertionError(f"{what} could not be read as a numeric array ({err}); return a tensor or an array") from None


def reference_cross_ids(ids_a: torch.Tensor, ids_b: torch.Tensor, vocab_a: int, vocab_b: int) -> torch.Tensor:
    """The exact combination index ``id_a * vocab_b + id_b`` (``vocab_a`` is not needed, only for the range)."""
    return ids_a.long() * vocab_b + ids_b.long()


# --------------------------------------------------------------------------- cross-product ids
def _cross_cases(seed: int | None) -> list[tuple[str, int, int]]:
    if seed is None:
        return [("3 x 4 vocabularies", 3, 4), ("4 x 3 vocabularies", 4, 3), ("taste x city (8 x 12)", 8, 12),
                ("a field with one value (1 x 5)", 1, 5)]
    rng = numpy_rng(2, seed)
    a, b = (int(x) for x in rng.choice(np.arange(2, 13), size=2, replace=False))
    c, d = (int(x) for x in rng.choice(np.arange(2, 13), size=2, replace=False))
    return [(f"{a} x {b} vocabularies", a, b), (f"{b} x {a} vocabularies", b, a), (f"{c} x {d} vocabularies", c, d),
            (f"a field with one value (1 x {d})", 1, d)]


def check_cross_ids(cross_ids: Callable[..., Any], *, seed: int | None = None) -> None:
    """Check ``cross_ids(ids_a, ids_b, vocab_a, vocab_b) -> int64 (batch,)``.

    The function gets two ``int64 (batch,)`` tensors of ids of two fields with vocabularies
    ``vocab_a`` and ``vocab_b``, and must return one index per row such that every one of the
    ``vocab_a * vocab_b`` combinations gets a different index in ``[0, vocab_a * vocab_b)``.
    Any such one-to-one numbering passes; ``id_a * vocab_b + id_b`` is the usual one. ``seed``
    (for grading) draws other vocabulary sizes.
    """
    if not callable(cross_ids):
        raise AssertionError(f"cross_ids must be a function, got {type(cross_ids).__name__}")
    for name, va, vb in _cross_cases(seed):
        grid = list(itertools.product(range(va), range(vb)))
        a = torch.tensor([g[0] for g in grid], dtype=torch.long)
        b = torch.tensor([g[1] for g in grid], dtype=torch.long)
        out = cross_ids(a.clone(), b.clone(), va, vb)
        arr = _as_array(out, f"cross_ids(...) on case {name!r}")
        if arr.shape != (len(grid),):
            raise AssertionError(f"cross_ids returned shape {arr.shape} on case {name!r}; expected ({len(grid)},): "
                                 "one index per row")
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise AssertionError(f"cross_ids returned non-integer values on case {name!r} (e.g. {arr[:4]}); "
                                 "an index must be a whole number")
        arr = arr.astype(np.int64)
        an, bn = a.numpy(), b.numpy()
        if va > 1 and vb > 1 and (np.array_equal(arr, an + bn) or np.array_equal(arr, an * bn)):
            raise AssertionError(f"cross_ids looks like a sum or product of the two ids on case {name!r}: that is symmetric "
                                 "and gives (id_a=1, id_b=0) and (id_a=0, id_b=1) the same index, so two different "
                                 "combinations would share one weight. Give the first id a stride: id_a * vocab_b + id_b.")
        if va > 1 and va != vb and np.array_equal(arr, an * va + bn):
            raise AssertionError(f"cross_ids computes id_a * vocab_a + id_b on case {name!r}: the stride must be vocab_b, "
                                 "the size of the SECOND field, or different pairs collide (or run past the range)")
        seen: dict[int, tuple[int, int]] = {}
        for (ia, ib), k in zip(grid, arr.tolist()):
            if k in seen:
                ja, jb = seen[k]
                raise AssertionError(f"cross_ids gives the pairs (id_a={ja}, id_b={jb}) and (id_a={ia}, id_b={ib}) the same "
                                     f"index {k} on case {name!r}: two different combinations would share one weight")
            seen[k] = (ia, ib)
        if arr.min() < 0 or arr.max() >= va * vb:
            bad = int(arr.max()) if arr.max() >= va * vb else int(arr.min())
            raise AssertionError(f"cross_ids returned index {bad} on case {name!r}; indices must lie in "
                                 f"[0, vocab_a * vocab_b) = [0, {va * vb}) so that the pair needs only {va * vb} weights")
    # Batch of one, and ids given in an order that is not a grid.
    a = torch.tensor([2], dtype=torch.long)
    b = torch.tensor([3], dtype=torch.long)
    arr = _as_array(cross_ids(a, b, 3, 4), "cross_ids on a batch of one")
    if arr.shape != (1,):
        raise AssertionError(f"cross_ids returned shape {arr.shape} for a batch of one; expected (1,)")
    print("check_cross_ids: all cases pass (every combination gets its own index in [0, V_a * V_b)).")


# --------------------------------------------------------------------------- hash collisions
def reference_shared_bucket_fraction(n_cells: int, n_buckets: int) -> float:
    """Expected share of ``n_cells`` cells, hashed uniformly and independently into ``n_buckets``
    buckets, whose bucket holds at least one other cell: ``1 - (1 - 1 / n_buckets) ** (n_cells - 1)``.

    A given cell is alone when each of the other ``n_cells - 1`` cells misses its bucket, each with
    probability ``1 - 1 / n_buckets``; the expectation of the share is that probability's complement.
    """
    return 1.0 - (1.0 - 1.0 / n_buckets) ** (n_cells - 1)


def _bucket_wrong_answers(n: int, m: int) -> list[tuple[float, str]]:
    return [
        ((1 - 1 / m) ** (n - 1), "is the share of cells that are ALONE in their bucket: the question asks "
                                 "for its complement"),
        (1 - (1 - 1 / m) ** n, "counts the cell itself among the others: a cell shares its bucket when one "
                               "of the OTHER n - 1 cells lands there"),
        (n / m, "is the load factor n / m, the mean number of cells per bucket: it is not a share (it exceeds "
                "1 when there are more cells than buckets)"),
        (n * (n - 1) / (2 * m), "is the expected number of colliding PAIRS, n (n - 1) / (2 m), not the share "
                                "of cells that collide"),
        (1 - math.exp(-(n - 1) / m), "is the Poisson approximation 1 - exp(-(n - 1) / m): close for many "
                                     "buckets, but the exact answer is 1 - (1 - 1/m)^(n - 1)"),
        (1 - math.exp(-n / m), "is the Poisson approximation 1 - exp(-n / m): close for many buckets, but "
                               "the exact answer is 1 - (1 - 1/m)^(n - 1)"),
    ]


def _bucket_cases(seed: int | None = None) -> list[tuple[int, int]]:
    """(n_cells, n_buckets): few cells in many buckets, more cells than buckets, the same cells in
    many buckets, one cell, one bucket, as many cells as buckets."""
    if seed is None:
        return [(10, 100), (96, 8), (96, 1000), (1, 50), (5, 1), (200, 200)]
    rng = numpy_rng(23, seed)
    few, some = int(rng.integers(5, 21)), int(rng.integers(50, 201))
    many, scarce, plenty = int(rng.integers(50, 151)), int(rng.integers(4, 17)), int(rng.integers(500, 2001))
    alone, crowd, square = int(rng.integers(10, 101)), int(rng.integers(2, 11)), int(rng.integers(100, 301))
    return [(few, some), (many, scarce), (many, plenty), (1, alone), (crowd, 1), (square, square)]


def check_shared_bucket_fraction(fraction_fn: Callable[[int, int], Any], *, seed: int | None = None) -> None:
    """Check ``fraction_fn(n_cells, n_buckets) -> float``, the expected share of cells that share.

    Compares with :func:`reference_shared_bucket_fraction` on small and large cases (one cell, one
    bucket, more cells than buckets, the chapter's 96 cells in 8 buckets), names the usual slips, and
    confirms the reference by simulation. Prints one line when everything passes. ``seed`` (for
    grading) draws hidden cases with the same roles.
    """
    if not callable(fraction_fn):
        raise AssertionError(f"check_shared_bucket_fraction needs a function, got {type(fraction_fn).__name__}")
    name = getattr(fraction_fn, "__name__", "your function")
    cases = _bucket_cases(seed)
    for n, m in cases:
        case = f"n_cells = {n}, n_buckets = {m}"
        try:
            raw = fraction_fn(n, m)
        except NotImplementedError:
            raise AssertionError(f"{name} is not written yet (it raised NotImplementedError)") from None
        try:
            out = float(raw)
        except (TypeError, ValueError):
            raise AssertionError(f"{name} returned {type(raw).__name__} on case '{case}'; expected one number "
                                 "between 0 and 1") from None
        ref = reference_shared_bucket_fraction(n, m)
        if math.isclose(out, ref, rel_tol=1e-9, abs_tol=1e-12):
            continue
        for wrong, message in _bucket_wrong_answers(n, m):
            if math.isclose(out, wrong, rel_tol=1e-9) and not math.isclose(wrong, ref, rel_tol=1e-9):
                raise AssertionError(f"{name} on case '{case}' returned {out:.6g}, which {message}.")
        raise AssertionError(f"{name} returned {out:.6g} on case '{case}', expected {ref:.6g}")
    gen = np.random.default_rng(0)
    buckets = gen.integers(0, 100, size=(4000, 30))  # 4000 draws of 30 cells in 100 buckets
    counts = np.stack([np.bincount(row, minlength=100)[row] for row in buckets])
    simulated = float((counts > 1).mean())
    if abs(simulated - reference_shared_bucket_fraction(30, 100)) > 0.01:  # internal consistency
        raise AssertionError("the simulation disagrees with the reference: please report this")
    print(f"check_shared_bucket_fraction: all {len(cases)} cases pass (a simulation of 30 cells in 100 "
          f"buckets gives {simulated:.3f}).")


# --------------------------------------------------------------------------- one FTRL-Proximal step
_HYPER = dict(alpha=0.5, beta=1.0, l1=0.3, l2=0.2)


def _ftrl_cases(seed: int | None = None) -> list[tuple[str, dict[str, torch.Tensor], dict[str, float]]]:
    gen = torch_generator(5, seed)
    n = 40
    z = 2.0 * torch.randn(n, generator=gen, dtype=torch.float64)
    acc = torch.rand(n, generator=gen, dtype=torch.float64) * 3
    w = reference_ftrl_weight(z, acc, **_HYPER)  # weights consistent with their accumulators
    g = torch.randn(n, generator=gen, dtype=torch.float64)
    g[::7] = 0.0  # coordinates absent from the batch
    first = {k: torch.zeros(5, dtype=torch.float64) for k in ("w", "z", "n")}
    first["g"] = torch.tensor([0.5, -2.0, 0.1, 0.0, 3.0], dtype=torch.float64)
    if seed is not None:
        first["g"] = 2.0 * torch.randn(5, generator=gen, dtype=torch.float64) * (torch.arange(5) != 3)
    return [
        ("40 coordinates with history, some with gradient 0", {"w": w, "z": z, "n": acc, "g": g}, _HYPER),
        ("the first step from w = z = n = 0", first, _HYPER),
        ("no regularisation (l1 = l2 = 0)", {"w": w, "z": z, "n": acc, "g": g},
         dict(alpha=0.5, beta=1.0, l1=0.0, l2=0.0)),
    ]


def reference_ftrl_weight(z: torch.Tensor, n: torch.Tensor, alpha: float, beta: float, l1: float,
                          l2: float) -> torch.Tensor:
    """The closed-form FTRL-Proximal weight (McMahan et al. 2013, Algorithm 1), element-wise."""
    w = -(z - torch.sign(z) * l1) / ((beta + n.sqrt()) / alpha + l2)
    return torch.where(z.abs() > l1, w, torch.zeros_like(w))


def reference_ftrl_step(w: torch.Tensor, z: torch.Tensor, n: torch.Tensor, g: torch.Tensor, alpha: float,
                        beta: float, l1: float, l2: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One FTRL-Proximal update: returns new ``(w, z, n)`` after gradient ``g`` (all the same shape)."""
    sigma = ((n + g * g).sqrt() - n.sqrt()) / alpha
    z_new = z + g - sigma * w
    n_new = n + g * g
    return reference_ftrl_weight(z_new, n_new, alpha, beta, l1, l2), z_new, n_new


def _ftrl_mistakes(w, z, n, g, alpha, beta, l1, l2) -> list[tuple[str, tuple[torch.Tensor, ...]]]:
    n_new = n + g * g
    sigma = (n_new.sqrt() - n.sqrt()) / alpha
    z_new = z + g - sigma * w

    def weight(zz, nn, **over):
        h = dict(alpha=alpha, beta=beta, l1=l1, l2=l2) | over
        return reference_ftrl_weight(zz, nn, **h)

    z_no_sigma = z + g
    z_full_sigma = z + g - (n_new.sqrt() / alpha) * w
    z_plus = z + g + sigma * w
    w_plain = -(z_new - torch.sign(z_new) * l1) / ((beta + n_new.sqrt()) / alpha + l2)
    return [
        ("z was updated without the term - sigma * w: z accumulates g - sigma * w, which keeps the new "
         "weight near the old one", (weight(z_no_sigma, n_new), z_no_sigma, n_new)),
        ("sigma must be the INCREASE of 1/eta, (sqrt(n + g^2) - sqrt(n)) / alpha; you used sqrt(n + g^2) "
         "/ alpha", (weight(z_full_sigma, n_new), z_full_sigma, n_new)),
        ("the sign of sigma * w is flipped: z += g - sigma * w", (weight(z_plus, n_new), z_plus, n_new)),
        ("n was not updated: add g^2 to it", (weight(z_new, n), z_new, n)),
        ("the new weight was computed from the OLD accumulators; update z and n first, then apply the "
         "closed form", (weight(z, n), z_new, n_new)),
        ("the weight has the wrong sign: w = -(z - sign(z) l1) / ((beta + sqrt(n)) / alpha + l2)",
         (-weight(z_new, n_new), z_new, n_new)),
        ("no weight is ever exactly zero: where |z| <= l1 the minimiser is w = 0 (that is where the "
         "sparsity comes from)", (w_plain, z_new, n_new)),
        ("l2 is missing from the denominator", (weight(z_new, n_new, l2=0.0), z_new, n_new)),
        ("l1 was not subtracted from |z|: w = -(z - sign(z) l1) / (...)",
         (torch.where(z_new.abs() > l1, -z_new / ((beta + n_new.sqrt()) / alpha + l2), torch.zeros_like(z_new)),
          z_new, n_new)),
    ]


def check_ftrl_step(ftrl_step: Callable[..., Any], *, seed: int | None = None) -> None:
    """Check ``ftrl_step(w, z, n, g, alpha, beta, l1, l2) -> (w_new, z_new, n_new)``.

    ``w, z, n, g``: float64 tensors of one shape (weights, the two accumulators, the gradient).
    Compares the three outputs with :func:`reference_ftrl_step` on three cases and names the usual
    slips. The inputs must not be changed in place. Prints one line when every case passes.
    ``seed`` (for grading) draws hidden cases with the same roles.
    """
    if not callable(ftrl_step):
        raise AssertionError(f"ftrl_step must be a function, got {type(ftrl_step).__name__}")
    for name, t, h in _ftrl_cases(seed):
        inputs = {k: v.clone() for k, v in t.items()}
        try:
            out = ftrl_step(inputs["w"], inputs["z"], inputs["n"], inputs["g"], h["alpha"], h["beta"],
                            h["l1"], h["l2"])
        except NotImplementedError:
            raise AssertionError("ftrl_step is not written yet (it raised NotImplementedError)") from None
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            raise AssertionError(f"ftrl_step must return three tensors (w, z, n); got "
                                 f"{type(out).__name__} on case {name!r}")
        got = [_as_array(o, what) for o, what in zip(out, ("w", "z", "n"))]
        for what, arr in zip("wzn", got):
            if arr.shape != tuple(t["w"].shape):
                raise AssertionError(f"the new {what} has shape {arr.shape} on case {name!r}; expected "
                                     f"{tuple(t['w'].shape)}, one value per coordinate")
        for k in t:
            if not torch.equal(inputs[k], t[k]):
                raise AssertionError(f"ftrl_step changed its input {k} in place on case {name!r}; return new "
                                     "tensors instead (z = z + ..., not z += ...)")
        ref = [r.numpy() for r in reference_ftrl_step(t["w"], t["z"], t["n"], t["g"], **h)]
        if all(np.allclose(a, b, rtol=1e-10, atol=1e-12) for a, b in zip(got, ref)):
            continue
        for why, cand in _ftrl_mistakes(t["w"], t["z"], t["n"], t["g"], **h):
            cand = [c.numpy() for c in cand]
            if (not all(np.allclose(c, r, rtol=1e-10, atol=1e-12) for c, r in zip(cand, ref))
                    and all(np.allclose(a, c, rtol=1e-10, atol=1e-12) for a, c in zip(got, cand))):
                raise AssertionError(f"ftrl_step is wrong on case {name!r}: {why}.")
        for what, a, b in zip("wzn", got, ref):
            if not np.allclose(a, b, rtol=1e-10, atol=1e-12):
                i = int(np.abs(a - b).argmax())
                raise AssertionError(f"the new {what} is wrong on case {name!r}: coordinate {i} is {a[i]:.6g}, "
                                     f"expected {b[i]:.6g} (Algorithm 1 of McMahan et al. 2013)")
    print(f"check_ftrl_step: all {len(_ftrl_cases())} cases pass (z, n and the closed-form weight).")
