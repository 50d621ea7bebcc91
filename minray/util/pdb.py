"""Ray's ``ray.util.pdb`` (``ray.util.rpdb``): breakpoints that work inside tasks.

In a task or actor method, :func:`set_trace` (like ``breakpoint()``) pauses the
call in a remote pdb that ``minray debug`` attaches to (minray/debugger/). In a
driver it is Python's own pdb, in this terminal.
"""

from __future__ import annotations

import pdb as _local_pdb
import sys
from types import TracebackType

from ..debugger import remote_pdb

__all__ = ["post_mortem", "set_trace"]


def set_trace(breakpoint_uuid=None) -> None:
    """Pause here: in a task, until ``minray debug`` attaches and continues; in a driver,
    in the local pdb. ``breakpoint_uuid`` is accepted for Ray's signature and unused."""
    frame = sys._getframe(1)
    if remote_pdb.in_worker():
        remote_pdb.set_trace(frame)
    else:
        _local_pdb.Pdb().set_trace(frame)


def post_mortem(tb: TracebackType | None = None) -> None:
    """Debug the exception being handled (or ``tb``): remotely in a task, locally in a
    driver. ValueError if there is none."""
    tb = tb or sys.exc_info()[2]
    if tb is None:
        raise ValueError("post_mortem() needs a traceback: call it in an except block")
    if remote_pdb.in_worker():
        remote_pdb.post_mortem(tb)
    else:
        _local_pdb.post_mortem(tb)
