"""A table of gradient checks: autograd, and an analytic formula when there is one, each compared with
central finite differences (and with each other), asserted as each row is added.

Chapter 4 checks a dozen gradients of its cross layers this way; the table keeps the bookkeeping
(tolerances, rows, the summary) off the page.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..gradcheck import compare_gradients

__all__ = ["GradientCheckTable"]


class GradientCheckTable:
    """Collects gradient checks and asserts each one when it is added.

    Args:
        atol, rtol: tolerances against finite differences (their own error is ~1e-10 to 1e-9
            in float64 with a step of 1e-6).
        exact_atol, exact_rtol: tolerances of the analytic formula against autograd, which
            should agree to rounding.
    """

    def __init__(self, atol: float = 1e-7, rtol: float = 1e-6,
                 exact_atol: float = 1e-12, exact_rtol: float = 1e-10) -> None:
        self.atol, self.rtol, self.exact_atol, self.exact_rtol = atol, rtol, exact_atol, exact_rtol
        self.rows: list[dict[str, Any]] = []

    def add(self, layer: str, quantity: str, numeric: Any, autograd: Any, analytic: Any = None) -> None:
        """Compare and record one gradient; raises AssertionError (naming `layer` and `quantity`) on a mismatch.

        Args:
            layer, quantity: what is checked, for the table (e.g. ``"DCN-V2"``, ``"dL / dW"``).
            numeric: the central-difference gradient.
            autograd: PyTorch's gradient of the same quantity, same shape.
            analytic: the formula's gradient, same shape, or ``None`` when there is no formula.
        """
        row: dict[str, Any] = {"layer": layer, "gradient": quantity}
        checks = [("autograd vs numeric", autograd, numeric, self.atol, self.rtol)]
        if analytic is not None:
            checks += [("analytic vs numeric", analytic, numeric, self.atol, self.rtol),
                       ("analytic vs autograd", analytic, autograd, self.exact_atol, self.exact_rtol)]
        for column, a, b, atol, rtol in checks:
            comparison = compare_gradients(a, b)
            row[column] = comparison.max_abs_error
            try:
                comparison.assert_close(atol=atol, rtol=rtol)
            except AssertionError as err:
                raise AssertionError(f"{layer}, {quantity}, {column}: {err}") from None
        self.rows.append(row)

    def table(self) -> pd.DataFrame:
        """One row per check; the analytic columns are empty where there was no formula."""
        return pd.DataFrame(self.rows)

    def largest_numeric_error(self) -> float:
        """The largest difference of any gradient (autograd or analytic) from finite differences."""
        columns = [c for c in ("autograd vs numeric", "analytic vs numeric") if c in self.table()]
        return float(self.table()[columns].max().max())
