"""Old path of :mod:`rankcourse.scale.ddp_job`: ``torchrun ... -m rankcourse.ddp_job`` still runs the
job, and ``import rankcourse.ddp_job`` gives the very same module object."""

import sys

from .scale import ddp_job as _moved

if __name__ == "__main__":
    _moved.main()
else:
    sys.modules[__name__] = _moved
