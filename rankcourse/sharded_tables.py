"""Old path of :mod:`rankcourse.scale.sharded_tables`, kept so that old imports keep working.

``import rankcourse.sharded_tables`` gives the very same module object (so private names and
monkeypatching behave as before); new code imports ``rankcourse.scale.sharded_tables``.
"""

import sys

from .scale import sharded_tables as _moved

sys.modules[__name__] = _moved
