"""rankcourse: the helper package of the course on deep ranking models.

The main road, in the order the course walks it (``a <- b``: ``b`` imports ``a``)::

    schema  <-  data      (TabularData, synthetic generators with known truth, behaviour histories)
    schema, data  <-  datasets     (real logs: Census-Income shipped in the package, Criteo, Avazu, MovieLens)
    schema  <-  layers  <-  models      (every model returns logits; sequence models read history columns)
    losses, task_weighting      (per-task losses on logits; learnt task weights)
    data, inference, scores  <-  engine  <-  training      (fit: one epoch loop, built from named pieces)
    scores  <-  metrics  <-  plots      (AUC with one rule for a one-class split, log loss, calibration)
    data  <-  inference   (model device, schema checks, batched forward, predict / predict_proba)

Side roads (``rankcourse/scale/``: training beyond one model in one process, on the same engine)::

    models, engine, training  <-  scale.replicas        (many small multi-task models at once)
    engine, training  <-  scale.distributed  <-  scale.ddp_job   (data-parallel fit under torchrun)
    models, training, scale.distributed  <-  scale.sharded_tables   (optional: TorchRec tables)

Helpers that import no other room: checks (one integer rule), scores, gradcheck, group_metrics,
ftrl, runtime, glue (myst-nb's glue with plain numbers). Drawings: diagrams (model drawings).

Above everything:

    experiments   (the chapters' bookkeeping)
    exercises     (self-checks for the chapters' code exercises; hidden cases from a seed)
    grade         (the instructors' grading command, ``python -m rankcourse.grade``)
    serving       (a saved model scoring one request of N candidates: bundles, request scorer,
                   shared-user-side engines, export to onnxruntime, an HTTP endpoint)

The old paths ``rankcourse.replicas``, ``rankcourse.distributed``, ``rankcourse.ddp_job`` and
``rankcourse.sharded_tables`` still work.

Import what you need from the rooms, e.g. ``from rankcourse.models import DeepFM``. The names
below are the ones almost every notebook uses.
"""

from .data import TabularData, make_click_conversion, make_ctr_data, make_mmoe_regression
from .schema import FeatureSchema, SparseField

__version__ = "0.2.0"

__all__ = [
    "FeatureSchema",
    "SparseField",
    "TabularData",
    "make_ctr_data",
    "make_mmoe_regression",
    "make_click_conversion",
    "__version__",
]
