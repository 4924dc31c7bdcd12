"""Real data sets as seeded train/valid/test :class:`~rankcourse.data.tabular.TabularData` splits.

One module per data set: :mod:`.census` (UCI Census-Income, shipped in the package), :mod:`.criteo`,
:mod:`.avazu` and :mod:`.movielens` (read from files the user downloads). Vocabularies and dense
statistics always come from the training split; id 0 of every categorical field is "rare or unseen
in training", id 1 is "missing". Preprocessed arrays are cached in ``$RANKCOURSE_DATA_DIR`` (default
``~/.cache/rankcourse``), and nothing is written anywhere else.
"""

from ._common import MISSING_ID, OOV_ID, DataFileError, DatasetNotAvailableError, DataSplits, default_cache_dir
from .avazu import load_avazu
from .census import load_census
from .criteo import load_criteo
from .movielens import load_movielens

__all__ = [
    "load_census",
    "load_criteo",
    "load_avazu",
    "load_movielens",
    "DataSplits",
    "DataFileError",
    "DatasetNotAvailableError",
    "OOV_ID",
    "MISSING_ID",
    "default_cache_dir",
]
