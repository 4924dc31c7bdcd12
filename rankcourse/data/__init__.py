"""Datasets: the tensor-resident container and the synthetic generators with known truth."""

from .ctr import make_ctr_data
from .ctr_steps import criteo_vocab_sizes
from .ctr_truth import PART_NAMES, CTRTruth, PlantedCross
from .synthetic import SyntheticDataset
from .multitask import ClickConversionTruth, MMoETruth, make_click_conversion, make_mmoe_regression
from .sequences import BehaviourTruth, make_behaviour_data
from .tabular import TASK_TYPES, TabularData

__all__ = [
    "TabularData",
    "TASK_TYPES",
    "make_ctr_data",
    "SyntheticDataset",
    "CTRTruth",
    "PlantedCross",
    "PART_NAMES",
    "criteo_vocab_sizes",
    "make_mmoe_regression",
    "MMoETruth",
    "make_click_conversion",
    "ClickConversionTruth",
    "make_behaviour_data",
    "BehaviourTruth",
]
