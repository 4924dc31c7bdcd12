"""Calling a student's function inside a self-check: any failure becomes an AssertionError that
names the function and the case, so the check reports it like a wrong answer."""

from __future__ import annotations

from typing import Any, Callable


def call_student(fn: Callable, args: tuple, case: str) -> Any:
    """``fn(*args)``; an exception it raises is reported with ``case``."""
    name = getattr(fn, "__name__", "your function")
    try:
        return fn(*args)
    except Exception as err:  # noqa: BLE001 - report any failure with its case
        raise AssertionError(f"{name} raised {type(err).__name__}: {err} on case {case!r}") from err
