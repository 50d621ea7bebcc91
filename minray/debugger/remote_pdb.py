"""The pdb of a paused worker, and the ``breakpoint()`` hook that starts it.

A worker process calls :func:`install` once: from then on ``breakpoint()`` in a
task or actor method (unless ``PYTHONBREAKPOINT`` says otherwise, as Python's
own hook reads it) runs :class:`RemotePdb`, a ``pdb.Pdb`` whose stdin and
stdout are a :class:`~minray.debugger.channel.DebugChannel`. The channel
registers the stop in the head's internal KV (registry.py) when pdb first
asks for a line; ``continue`` or ``quit`` ends the session and removes it.

One pdb per thread at a time: a ``breakpoint()`` reached while this thread's
pdb is still attached (stepping with ``next`` over it) goes on in the same
session, as the same client sees it. Nothing here runs in a driver: there,
``breakpoint()`` is Python's local pdb.

Post-mortem (Ray's ``RAY_DEBUG_POST_MORTEM=1``, or ``MINRAY_DEBUG_POST_MORTEM=1``):
a task that raises pauses in :func:`post_mortem` before its error goes back.
The variables are read when the task fails, not at start-up, so a job's
``runtime_env={"env_vars": ...}`` can turn it on, as in Ray.
"""

from __future__ import annotations

import bdb
import itertools
import os
import pdb
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

from ..protocol.messages import KvRequest
from .channel import DebugChannel
from .registry import NAMESPACE, Breakpoint, entry_key

if TYPE_CHECKING:
    from ..runtime.core_worker import CoreWorker

#: the environment variables that turn post-mortem debugging on ("1")
POST_MORTEM_VARIABLES = ("MINRAY_DEBUG_POST_MORTEM", "RAY_DEBUG_POST_MORTEM")
#: modules pdb does not stop in (Bdb's skip patterns)
SKIP = ["minray", "minray.*", "asyncio", "asyncio.*"]
#: seconds to write or remove a breakpoint entry at the head
KV_TIMEOUT_S = 10.0

_worker: CoreWorker | None = None
_serial = itertools.count()
_active = threading.local()  #: .pdb: this thread's RemotePdb while its session is open


def install(worker: CoreWorker) -> None:
    """Make ``breakpoint()`` in this worker process pause in a remote pdb."""
    global _worker
    _worker = worker
    sys.breakpointhook = _breakpointhook


def in_worker() -> bool:
    """Whether this process is a worker with the remote debugger installed."""
    return _worker is not None


def post_mortem_enabled() -> bool:
    return any(os.environ.get(name, "0") == "1" for name in POST_MORTEM_VARIABLES)


def set_trace(frame: FrameType | None = None) -> None:
    """Pause the calling task at ``frame`` (default: the caller's) until a client continues."""
    frame = frame or sys._getframe(1)
    debugger = getattr(_active, "pdb", None) or RemotePdb(_require_worker())
    debugger.set_trace(frame)


def post_mortem_if_enabled(error: BaseException) -> None:
    """Post-mortem, when turned on, for an exception a task's code raised."""
    if not (post_mortem_enabled() and in_worker() and isinstance(error, Exception)):
        return
    if error.__traceback__ is None or isinstance(error, bdb.BdbQuit):
        return  # made by minray, not raised; or quit in a breakpoint's session already
    post_mortem(error.__traceback__)


def post_mortem(tb: TracebackType) -> None:
    """Pause in a pdb at the frame that raised, until a client continues or quits."""
    debugger = RemotePdb(_require_worker(), post_mortem=True)
    debugger.reset()
    try:
        debugger.interaction(None, tb)
    finally:
        debugger.session_over()


class RemotePdb(pdb.Pdb):
    """``pdb.Pdb`` over a token-authenticated socket (see the module doc)."""

    def __init__(self, worker: CoreWorker, post_mortem: bool = False) -> None:
        self.worker = worker
        self.post_mortem = post_mortem
        self.channel = DebugChannel(worker.node_ip, worker.token, self._register, self._unregister)
        # skip: stepping never stops inside minray's own frames or asyncio's
        super().__init__(stdin=self.channel, stdout=self.channel, skip=SKIP, nosigint=True)
        self._key: bytes | None = None

    def set_trace(self, frame: FrameType | None = None) -> None:
        _active.pdb = self
        super().set_trace(frame)

    def do_continue(self, arg: str):
        done = super().do_continue(arg)
        self.session_over()
        return done

    do_c = do_cont = do_continue

    def do_quit(self, arg: str):
        done = super().do_quit(arg)  # the task then fails with bdb.BdbQuit, as under pdb
        self.session_over()
        return done

    do_q = do_exit = do_quit

    def _cmdloop(self) -> None:
        """pdb's command loop without pdb's habit of taking a KeyboardInterrupt as "drop
        this command": here it is ``cancel(ref)`` of the paused task (no one types Ctrl-C
        into a worker), so the session ends and the task gets it. ``_cmdloop`` is pdb's
        own step for this (Python 3.2 to 3.13)."""
        try:
            self.cmdloop()
        except KeyboardInterrupt:
            self.set_continue()
            self.session_over()
            raise

    def dispatch_return(self, frame: FrameType, arg):
        """Stepping out of the task's own code ends the session (the task goes on), rather
        than stepping on, unseen, through minray's frames into the next task."""
        trace = super().dispatch_return(frame, arg)
        caller = frame.f_back
        leaving = caller is None or self._is_skipped(caller)
        if self.channel.address is not None and leaving and not self._is_skipped(frame):
            self.message("--the task's code returned: the task goes on--")
            self.set_continue()
            self.session_over()
        return trace

    def _is_skipped(self, frame: FrameType) -> bool:
        return self.is_skipped_module(frame.f_globals.get("__name__", ""))

    def session_over(self) -> None:
        """Detach the client and remove the entry; a later stop in this pdb opens a new one."""
        if getattr(_active, "pdb", None) is self:
            _active.pdb = None
        self.channel.end()

    # --- the channel's callbacks --------------------------------------------------------

    def _register(self, address: str) -> None:
        worker = self.worker
        frame, line = self.stack[self.curindex] if self.stack else (self.curframe, 0)
        task = worker.current_task
        entry = Breakpoint(
            task=task.name if task is not None else "(no task)",
            task_id=task.task_id.hex() if task is not None else "",
            file=frame.f_code.co_filename,
            line=line or frame.f_lineno,
            function=frame.f_code.co_name,
            pid=os.getpid(),
            node_ip=worker.node_ip,
            node_id=worker.node_id.hex(),
            address=address,
            time=time.time(),
            post_mortem=self.post_mortem,
        )
        self._key = entry_key(worker.node_id, worker.worker_id, next(_serial))
        put = KvRequest("put", NAMESPACE, self._key, entry.to_bytes(), True)
        worker.call_node(put, KV_TIMEOUT_S)

    def _unregister(self) -> None:
        key, self._key = self._key, None
        if key is not None:
            self.worker.call_node(KvRequest("del", NAMESPACE, key, None, False), KV_TIMEOUT_S)


def _breakpointhook(*args, **kwargs) -> None:
    if os.environ.get("PYTHONBREAKPOINT"):  # the user's choice (0: breakpoint() does nothing)
        return sys.__breakpointhook__(*args, **kwargs)
    set_trace(sys._getframe(1))


def _require_worker() -> CoreWorker:
    if _worker is None:
        raise RuntimeError(
            "the remote debugger runs in minray worker processes only; in a driver, "
            "breakpoint() and pdb.set_trace() are Python's own pdb"
        )
    return _worker
