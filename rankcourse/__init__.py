"""rankcourse: the helper package of the course on deep ranking models.

Rooms, with imports running one way (``a <- b``: ``b`` imports ``a``)::

    schema  <-  data      (TabularData, synthetic generators with known truth, behaviour histories)
    schema, data  <-  datasets     (real logs: Census-Income shipped in data/, Criteo, Avazu, MovieLens)
    schema  <-  layers  <-  models      (every model returns logits; sequence models read history columns)
    losses, task_weighting, gradcheck, group_metrics, ftrl, runtime, glue      (import no other room)
    data  <-  inference   (model device, schema checks, batched forward, predictions)
    inference  <-  metrics  <-  plots
    data, inference, losses, runtime  <-  training      (fit, built from named pieces)
    layers, models, losses, training  <-  replicas      (many small multi-task models at once)
    data, models, training  <-  distributed  <-  ddp_job      (data-parallel fit under torchrun)
    models, training, distributed  <-  sharded_tables      (optional: TorchRec sharded tables)
    data, layers, models, metrics, training, ftrl, gradcheck  <-  experiments  (chapters' bookkeeping)
    exercises   (self-checks for the chapters' code exercises; import the rooms above)

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
