"""``ray`` for Python processes started by a program running under minray.compat.

minray.compat puts the directory holding this package on ``PYTHONPATH``, so a
process started from such a program (minray's own workers, through the node
process) that imports ``ray`` lands here: this installs the mapping and hands
over minray itself, so ``ray`` is ``minray`` there as in the program.
"""

import sys

__minray_compat_shim__ = True

import minray  # noqa: E402
from minray import compat as _compat  # noqa: E402

_compat.install()
sys.modules[__name__] = minray
