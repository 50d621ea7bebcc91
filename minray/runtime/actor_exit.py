"""How an actor ends on purpose: ``exit_actor()``, ``__ray_terminate__``, its handles gone.

As in Ray 2.x:

* ``exit_actor()`` marks the running call (or ``__init__``) as the one that ends
  the actor and raises; whatever the method does after it (even if it catches
  the exception), its caller gets ActorDiedError, and so do calls queued behind it;
* the actor's ``__ray_shutdown__`` method, if it has one, runs once (an
  exception in it is logged, not raised), then the ``atexit`` handlers run
  once, then the process exits. ``minray.kill`` runs neither: it SIGKILLs.
"""

from __future__ import annotations

import atexit
import inspect
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from ..exceptions import AsyncioActorExit

if TYPE_CHECKING:
    from .core_worker import CoreWorker

logger = logging.getLogger("minray")

SHUTDOWN = "__ray_shutdown__"  #: Ray's name for an actor's graceful-exit hook


class ActorExit(SystemExit):
    """``exit_actor()`` in a sync or threaded actor; ``except Exception`` does not catch it."""

    def __init__(self, reason: str = "exit_actor() was called"):
        super().__init__(0)
        self.reason = reason


def exit_message(detail: str) -> str:
    """What callers of an actor that exited on purpose are told (``detail``: how it exited)."""
    return (
        f"The actor is dead because it exited on purpose: {detail} [INTENDED_USER_EXIT]. "
        "Calls made to it after that fail; create a new actor to go on."
    )


def exit_current_actor(worker: CoreWorker | None) -> None:
    """``exit_actor()``: the running call (or ``__init__``) ends the actor; raise to stop it."""
    executor = getattr(worker, "executor", None)
    hosted = getattr(executor, "actor", None) or getattr(executor, "creating", None)
    if hosted is None:
        raise TypeError(
            "exit_actor API is called on a non-actor worker, which is not supported. "
            "Call it from inside an actor method (or __init__); to end an actor from "
            "outside, use minray.kill(handle) or handle.__ray_terminate__.remote()."
        )
    context = worker.current_task
    executor.exit_callers.add(context.task_id if context is not None else b"")
    if hosted.mode == "async":
        raise AsyncioActorExit()
    raise ActorExit()


def construct(cls: type, args: list, kwargs: dict, keep) -> Any:
    """``cls(*args, **kwargs)``, handing the new instance to ``keep`` before ``__init__``
    runs, so ``__ray_shutdown__`` can run even if ``__init__`` calls exit_actor()."""
    plain = type(cls).__call__ is type.__call__ and cls.__init__ is not object.__init__
    if not plain:  # a metaclass of its own, or no __init__: nothing to run it early for
        return cls(*args, **kwargs)
    new = cls.__new__
    instance = new(cls) if new is object.__new__ else new(cls, *args, **kwargs)
    if isinstance(instance, cls):
        keep(instance)
        instance.__init__(*args, **kwargs)
    return instance


def run_exit_hooks(instance: Any, class_name: str, loop=None) -> None:
    """``__ray_shutdown__`` (errors logged), then the atexit handlers; each at most once."""
    method = getattr(type(instance), SHUTDOWN, None) if instance is not None else None
    if method is not None:
        try:
            result = getattr(instance, SHUTDOWN)()
            if inspect.isawaitable(result) and loop is not None:
                loop.run_until_complete(result)
        except BaseException:  # noqa: B036 - logged, as in Ray; the actor still exits
            logger.exception(
                "Error during actor %s method of %s (the actor exits anyway)", SHUTDOWN, class_name
            )
    atexit._run_exitfuncs()  # the process then ends with os._exit: they never run twice


def exit_process() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(0)
