"""Old path of :mod:`rankcourse.scale.distributed`, kept so that old imports keep working.

``import rankcourse.distributed`` gives the very same module object (so private names and
monkeypatching behave as before); new code imports ``rankcourse.scale.distributed``.
"""

import sys

from .scale import distributed as _moved

sys.modules[__name__] = _moved
