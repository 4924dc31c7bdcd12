"""rankcourse: the helper package of the course on deep ranking models.

Rooms, with imports running one way::

    schema  <-  data        (TabularData, synthetic generators with known truth)
    schema  <-  layers  <-  models   (all models return logits)
    losses, task_weighting, gradcheck, metrics, group_metrics, runtime   (stand alone)
    training  (uses data, losses, metrics, runtime)  ;  plots (uses metrics)
    exercises (self-checks for the chapters' code exercises)

Import what you need from the rooms, e.g. ``from rankcourse.models import DeepFM``. The names
below are the ones almost every notebook uses.
"""

from .data import TabularData, make_click_conversion, make_ctr_data, make_mmoe_regression
from .schema import FeatureSchema, SparseField

__version__ = "0.1.0"

__all__ = [
    "FeatureSchema",
    "SparseField",
    "TabularData",
    "make_ctr_data",
    "make_mmoe_regression",
    "make_click_conversion",
    "__version__",
]
