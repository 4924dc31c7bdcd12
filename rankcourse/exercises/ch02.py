"""Self-checks for the code exercises of Chapter 2 (Wide & Deep).

* :func:`check_cross_ids` -- the index of a cross-product feature: each pair of ids of two fields
  must get its own index in ``[0, V_a * V_b)`` (what :class:`~rankcourse.layers.CrossProductHashing`
  does before any hashing).
* :func:`check_wide_gradient` -- the gradient of the mean log loss of a linear model over
  ``phi(x)`` with respect to its weights and bias: ``mean_i (p_i - y_i) phi(x_i)`` and
  ``mean_i (p_i - y_i)`` (Cheng et al. 2016, the wide part).

Each check runs the student's function on small cases, compares it with a reference computed here,
and raises ``AssertionError`` with a message that says what is wrong.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["check_cross_ids", "check_wide_gradient", "reference_cross_ids", "reference_wide_gradient"]


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


def reference_wide_gradient(phi: torch.Tensor, w: torch.Tensor, b: torch.Tensor | float,
                            y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of ``mean_i BCE(sigmoid(phi_i . w + b), y_i)`` wrt ``w`` ``(n_features,)`` and ``b`` ``()``."""
    z = phi @ w + b
    r = torch.sigmoid(z) - y  # dloss/dz of each row
    return phi.T @ r / phi.shape[0], r.mean()


# --------------------------------------------------------------------------- cross-product ids
def check_cross_ids(cross_ids: Callable[..., Any]) -> None:
    """Check ``cross_ids(ids_a, ids_b, vocab_a, vocab_b) -> int64 (batch,)``.

    The function gets two ``int64 (batch,)`` tensors of ids of two fields with vocabularies
    ``vocab_a`` and ``vocab_b``, and must return one index per row such that every one of the
    ``vocab_a * vocab_b`` combinations gets a different index in ``[0, vocab_a * vocab_b)``.
    Any such one-to-one numbering passes; ``id_a * vocab_b + id_b`` is the usual one.
    """
    if not callable(cross_ids):
        raise AssertionError(f"cross_ids must be a function, got {type(cross_ids).__name__}")
    cases = [("3 x 4 vocabularies", 3, 4), ("4 x 3 vocabularies", 4, 3), ("taste x city (8 x 12)", 8, 12),
             ("a field with one value (1 x 5)", 1, 5)]
    for name, va, vb in cases:
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


# --------------------------------------------------------------------------- the wide gradient
def _wide_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(2)
    cases = []
    # A wide feature vector: one-hot blocks of three fields (sizes 3, 4, 2), a cross block, two dense values.
    n_rows, blocks = 6, (3, 4, 2, 12)
    cols = []
    for size in blocks:
        hot = torch.randint(0, size, (n_rows,), generator=gen)
        cols.append(torch.nn.functional.one_hot(hot, size).double())
    cols.append(torch.randn(n_rows, 2, generator=gen, dtype=torch.float64))
    phi = torch.cat(cols, 1)
    w = torch.randn(phi.shape[1], generator=gen, dtype=torch.float64) * 0.5
    y = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    cases.append(("six rows, one-hot ids + a cross block + dense values", phi, w, torch.tensor(0.3, dtype=torch.float64), y))
    cases.append(("a batch of one", phi[:1].clone(), w.clone(), torch.tensor(-0.2, dtype=torch.float64), y[:1].clone()))
    # Extreme logits: p saturates at 0 or 1; the gradient must stay finite.
    big = torch.zeros_like(w)
    big[0], big[3] = 800.0, -800.0
    cases.append(("extreme logits (|z| up to 800)", phi, big, torch.tensor(0.0, dtype=torch.float64), y))
    return cases


def check_wide_gradient(wide_gradient: Callable[..., Any]) -> None:
    """Check ``wide_gradient(phi, w, b, y) -> (grad_w, grad_b)``.

    ``phi``: float64 ``(batch, n_features)`` feature vectors; ``w``: ``(n_features,)``; ``b``: a
    0-d tensor; ``y``: ``(batch,)`` labels in {0, 1}. The loss is the MEAN log loss over the batch of
    ``p = sigmoid(phi @ w + b)``. Expected: ``grad_w (n_features,)`` and a scalar ``grad_b``.
    """
    if not callable(wide_gradient):
        raise AssertionError(f"wide_gradient must be a function, got {type(wide_gradient).__name__}")
    for name, phi, w, b, y in _wide_cases():
        out = wide_gradient(phi.clone(), w.clone(), b.clone(), y.clone())
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise AssertionError(f"wide_gradient must return a pair (grad_w, grad_b); got {type(out).__name__} on case {name!r}")
        gw = _as_array(out[0], "grad_w")
        gb = _as_array(out[1], "grad_b")
        ref_w, ref_b = (t.numpy() for t in reference_wide_gradient(phi, w, b, y))
        n_rows = phi.shape[0]
        if gw.shape != ref_w.shape:
            extra = " — did you forget to sum (or average) over the rows of the batch?" if gw.shape == (n_rows, phi.shape[1]) else ""
            raise AssertionError(f"grad_w has shape {gw.shape} on case {name!r}; expected {ref_w.shape}, one entry per "
                                 f"feature{extra}")
        if gb.size != 1:
            raise AssertionError(f"grad_b has shape {gb.shape} on case {name!r}; expected a scalar (the bias is one number)")
        gb = float(gb.reshape(()))
        if not (np.all(np.isfinite(gw)) and np.isfinite(gb)):
            raise AssertionError(f"the gradient contains NaN or inf on case {name!r}: compute p with a stable sigmoid "
                                 "(torch.sigmoid), not from exp(z) / (1 + exp(z))")
        scale = max(np.abs(ref_w).max(), 1e-12)
        err = float(np.abs(gw - ref_w).max())
        if err > 1e-8 * max(1.0, scale):
            z = (phi @ w + b).numpy()
            yv = y.numpy()
            phin = phi.numpy()
            p = 1 / (1 + np.exp(-np.clip(z, -500, 500)))
            diagnoses = [(-ref_w, "the sign is flipped: d(log loss)/dz = p - y, not y - p"),
                         (phin.T @ (z - yv) / n_rows, "it looks like you used the logit z instead of the probability p = sigmoid(z)"),
                         (phin.T @ (p - yv), f"it is {n_rows} times too large: the loss is the MEAN over the batch, "
                                            f"so divide by B = {n_rows}")]
            for cand, why in diagnoses:
                if "times too large" in why and n_rows == 1:
                    continue  # with one row the sum and the mean agree
                if np.abs(gw - cand).max() <= 1e-8 * max(1.0, np.abs(cand).max()):
                    raise AssertionError(f"grad_w is wrong on case {name!r}: {why}.")
            i = int(np.abs(gw - ref_w).argmax())
            raise AssertionError(f"grad_w differs from mean_i (p_i - y_i) phi(x_i) by up to {err:.3g} on case {name!r} "
                                 f"(feature {i}: got {gw[i]:.6g}, expected {ref_w[i]:.6g})")
        if abs(gb - float(ref_b)) > 1e-8:
            why = ""
            if abs(gb + float(ref_b)) <= 1e-8:
                why = " — the sign is flipped (p - y, not y - p)"
            elif n_rows > 1 and abs(gb - n_rows * float(ref_b)) <= 1e-8:
                why = f" — it is {n_rows} times too large: average over the batch"
            raise AssertionError(f"grad_b is {gb:.6g} on case {name!r}; expected mean(p - y) = {float(ref_b):.6g}{why}")
    print("check_wide_gradient: all cases pass (grad_w = mean (p - y) phi(x), grad_b = mean (p - y)).")
