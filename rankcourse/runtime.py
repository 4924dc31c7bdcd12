"""Where the course runs: the default device, seeding, and the "small" / "large" course size.

The notebooks run in two sizes. ``small`` fits a laptop or CI runner (two CPU cores, a few seconds a
cell); ``large`` is meant for a GPU (Colab or better) and uses Criteo-sized data. The size is read
from the environment variable ``RANKCOURSE_SIZE`` so one notebook serves both::

    n_samples = pick(small=50_000, large=2_000_000)
"""

from __future__ import annotations

import os
import random
from typing import TypeVar

import numpy as np
import torch

__all__ = ["default_device", "seed_everything", "course_size", "pick", "SIZES", "SIZE_ENV_VAR"]

SIZE_ENV_VAR = "RANKCOURSE_SIZE"
SIZES = ("small", "large")

T = TypeVar("T")


def default_device() -> torch.device:
    """``cuda`` when a CUDA device is visible, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device).

    This makes model initialisation and dropout repeatable. It does not make every CUDA kernel
    deterministic (embedding backward on the GPU adds with atomics, so sums can differ in the last
    bits); runs on the CPU repeat exactly.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must lie in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def course_size() -> str:
    """The course size: ``$RANKCOURSE_SIZE`` if set, else ``"large"`` with CUDA and ``"small"`` without."""
    value = os.environ.get(SIZE_ENV_VAR)
    if value is None or value.strip() == "":
        return "large" if torch.cuda.is_available() else "small"
    size = value.strip().lower()
    if size not in SIZES:
        raise ValueError(f"{SIZE_ENV_VAR} must be one of {SIZES}, got {value!r}")
    return size


def pick(small: T, large: T) -> T:
    """``small`` or ``large``, whichever matches :func:`course_size`."""
    return small if course_size() == "small" else large
