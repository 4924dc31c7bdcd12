"""Argument checks shared by every module: one rule for an integer argument, one message.

``True`` is an ``int`` in Python, so a bare ``isinstance(value, int)`` lets ``vocab_size=True``
through as 1; these checks refuse ``bool`` everywhere and accept NumPy integers (``np.int64(3)``,
as a NumPy computation hands them out).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_int", "check_positive_int"]


def check_int(value: Any, name: str, low: int = 1, allow_none: bool = False) -> int | None:
    """``value`` as a Python ``int`` if it is an integer (not a ``bool``) ``>= low``.

    Otherwise a ``ValueError`` naming ``name`` and the value. ``None`` passes when ``allow_none``.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
        rule = "a positive int" if low == 1 else f"an int >= {low}"
        raise ValueError(f"{name} must be {rule}{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def check_positive_int(value: Any, name: str, allow_none: bool = False) -> int | None:
    """``check_int(value, name, low=1, allow_none)``: the check of every size and count argument."""
    return check_int(value, name, 1, allow_none)
