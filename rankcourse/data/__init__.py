"""Datasets: the tensor-resident container and the synthetic generators with known truth."""

from .tabular import TASK_TYPES, TabularData

__all__ = ["TabularData", "TASK_TYPES"]
