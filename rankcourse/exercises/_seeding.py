"""Hidden cases for the graded run of a check.

Every check that takes ``seed`` runs its fixed public cases when ``seed`` is None (what a student
sees in the notebook) and, given the instructor's secret seed, cases with the same roles (the
same edge cases: a batch of one, extreme values, an empty history...) but new random values, so
that an answer written to return the public cases' results fails. ``salt`` keeps the streams of
two checks (or two parts of one check) apart.
"""

from __future__ import annotations

import numpy as np
import torch

_MIX = 1_000_003  # a prime: seeds s and s + 1 give unrelated streams after mixing with the salt


def case_seed(public: int, seed: int | None, salt: int = 0) -> int:
    """The random seed of a check's cases: ``public`` for the public cases, else one drawn from ``seed``."""
    if seed is None:
        return public
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    return int((int(seed) * _MIX + 7919 * (salt + public) + 1) % (2**62))


def torch_generator(public: int, seed: int | None, salt: int = 0) -> torch.Generator:
    """A ``torch.Generator`` for the cases (see :func:`case_seed`)."""
    return torch.Generator().manual_seed(case_seed(public, seed, salt))


def numpy_rng(public: int, seed: int | None, salt: int = 0) -> np.random.Generator:
    """A NumPy generator for the cases (see :func:`case_seed`)."""
    return np.random.default_rng(case_seed(public, seed, salt))


def hidden_size(public: int, seed: int | None, spread: int = 3, salt: int = 0) -> int:
    """``public`` for the public cases; otherwise a size drawn in ``[public, public + spread]``."""
    if seed is None:
        return public
    return public + int(numpy_rng(public, seed, salt + 101).integers(0, spread + 1))
