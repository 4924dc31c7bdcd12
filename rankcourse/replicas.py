"""Old path of :mod:`rankcourse.scale.replicas`, kept so that old imports keep working.

``import rankcourse.replicas`` gives the very same module object (so private names and
monkeypatching behave as before); new code imports ``rankcourse.scale.replicas``.
"""

import sys

from .scale import replicas as _moved

sys.modules[__name__] = _moved
