"""Ray's exception names, with the same bases, so ``except`` clauses carry over.

::

    RayError(Exception)
     ├ RayTaskError            a task raised; get() raises "RayTaskError(X)", also an X
     ├ GetTimeoutError         get()/wait deadline passed (also a TimeoutError)
     ├ RayActorError
     │   ├ ActorDiedError      the actor is gone for good
     │   └ ActorUnavailableError  the actor is restarting or unreachable right now
     ├ ActorAlreadyExistsError (also a ValueError)
     ├ WorkerCrashedError      the worker process died while running the task
     ├ TaskCancelledError      minray.cancel() stopped the task
     ├ ObjectStoreFullError    no room in shared memory, even after spilling to disk
     ├ OutOfDiskError          spilling to disk failed: the disk is full
     ├ OutOfMemoryError · RaySystemError · NodeDiedError
     ├ TaskUnschedulableError · UnserializableException
     └ ObjectLostError         the object's value cannot be had any more
         ├ OwnerDiedError      the process that owned it has exited
         └ ObjectFreedError    it was freed explicitly
"""

from __future__ import annotations

from typing import Any


class RayError(Exception):
    """Root of every error minray raises on purpose."""


class RaySystemError(RayError):
    """The runtime itself failed or is not running (e.g. used before init)."""

    def __init__(self, client_exc: Any = "", traceback_str: str | None = None):
        super().__init__(client_exc)
        self.client_exc = client_exc
        self.traceback_str = traceback_str

    def __reduce__(self):
        return type(self), (self.client_exc, self.traceback_str)

    def __str__(self) -> str:
        text = f"System error: {self.client_exc}"
        if self.traceback_str:
            text += f"\ntraceback: {self.traceback_str}"
        return text


class RuntimeEnvSetupError(RayError):
    """A task's runtime_env could not be set up on its worker (as Ray's)."""

    def __init__(self, error_message: str = ""):
        super().__init__(error_message)
        self.error_message = error_message

    def __reduce__(self):
        return type(self), (self.error_message,)


class RayTaskError(RayError):
    """A task raised an exception; ``cause`` is that exception.

    ``get`` raises an instance of a class named ``RayTaskError(<Cause>)`` that
    derives from both this class and the cause's class, so ``except ValueError``
    catches a task's ValueError. Its message is the remote traceback.
    """

    def __init__(
        self,
        function_name: str = "",
        traceback_str: str = "",
        cause: BaseException | None = None,
        proctitle: str | None = None,
        pid: int | None = None,
        ip: str | None = None,
    ):
        self.function_name = function_name
        self.traceback_str = traceback_str
        self.cause = cause
        self.proctitle = proctitle or f"minray::{function_name}()"
        self.pid = pid
        self.ip = ip
        super().__init__(cause)

    def __reduce__(self):
        return RayTaskError, (
            self.function_name,
            self.traceback_str,
            self.cause,
            self.proctitle,
            self.pid,
            self.ip,
        )

    def __str__(self) -> str:
        header = f"\x1b[36m{self.proctitle}\x1b[39m (pid={self.pid}, ip={self.ip})"
        return f"{header}\n{self.traceback_str}".rstrip()

    def __getattr__(self, name: str) -> Any:
        cause = self.__dict__.get("cause")
        if cause is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(cause, name)

    def as_instanceof_cause(self) -> RayTaskError:
        """Return an equivalent error that is also an instance of the cause's class."""
        cause_cls = type(self.cause)
        if self.cause is None or issubclass(cause_cls, RayTaskError):
            return self
        try:
            dual = _dual_class(cause_cls)
            err = dual.__new__(dual)
            Exception.__init__(err, self.cause)
            err.__dict__.update(self.__dict__)
            return err
        except TypeError:  # a cause class that cannot be subclassed or built this way
            return self


_dual_classes: dict[type, type] = {}


def _dual_class(cause_cls: type) -> type:
    cls = _dual_classes.get(cause_cls)
    if cls is None:

        def __init__(self, cause):  # used only if someone re-creates it
            RayTaskError.__init__(self, cause=cause)

        def __repr__(self):
            return f"RayTaskError({cause_cls.__name__})({self.cause!r})"

        cls = type(
            f"RayTaskError({cause_cls.__name__})",
            (RayTaskError, cause_cls),
            {
                "__init__": __init__,
                "__repr__": __repr__,
                "__str__": RayTaskError.__str__,
                "__getattr__": RayTaskError.__getattr__,
                "__module__": __name__,
            },
        )
        _dual_classes[cause_cls] = cls
    return cls


class GetTimeoutError(RayError, TimeoutError):
    """``get``/``wait`` with a timeout reached it before the objects were ready."""


class RayActorError(RayError):
    """An actor call could not complete because of the actor; base of the two below."""

    def __init__(
        self,
        actor_id: str | None = None,
        error_msg: str = "The actor died.",
        actor_init_failed: bool = False,
        preempted: bool = False,
    ):
        super().__init__(error_msg)
        self.actor_id = actor_id
        self.error_msg = error_msg
        self.actor_init_failed = actor_init_failed
        self.preempted = preempted

    def __reduce__(self):
        return type(self), (self.actor_id, self.error_msg, self.actor_init_failed, self.preempted)

    def __str__(self) -> str:
        return self.error_msg


class ActorDiedError(RayActorError):
    """The actor is permanently dead: killed, crashed with no restarts left, or init failed."""


class ActorUnavailableError(RayActorError):
    """The actor is restarting or unreachable now; the call may or may not have run."""


class AsyncioActorExit(RayError):
    """Raised by ``exit_actor()`` inside an async actor to end it."""


class PendingCallsLimitExceeded(RayError):
    """An actor handle has more pending calls than its ``max_pending_calls``."""


class ActorAlreadyExistsError(ValueError, RayError):
    """An actor with this name already exists in the namespace."""


class WorkerCrashedError(RayError):
    """The worker process died while running the task, and no retries were left."""

    def __init__(self, message: str | None = None):
        super().__init__(
            message
            or "The worker died unexpectedly while executing this task. Check the worker's "
            "output above (or its log in the session directory) for the reason."
        )


class TaskCancelledError(RayError):
    """The task was cancelled with ``minray.cancel``."""

    def __init__(self, task_id: Any = None, error_message: str | None = None):
        super().__init__(error_message or "")
        self.task_id = task_id
        self.error_message = error_message

    def __reduce__(self):
        return type(self), (self.task_id, self.error_message)

    def __str__(self) -> str:
        if self.error_message:
            return self.error_message
        return f"Task: {self.task_id} was cancelled." if self.task_id else ""


class ObjectStoreFullError(RayError):
    """The shared-memory object store has no room for the object, even after spilling
    every object nobody is reading to disk (the message says what holds the store)."""


class OutOfDiskError(RayError):
    """The store needed to spill objects to disk and the disk is full; unlike
    ObjectStoreFullError, freeing disk space (or another spill directory) is the cure."""


class OutOfMemoryError(RayError):
    """The machine ran out of memory while running the task."""


class NodeDiedError(RayError):
    """The node running the task or holding the object died."""


class TaskUnschedulableError(RayError):
    """The task can never be scheduled (e.g. it asks for resources no node has)."""


class UnserializableException(RayError):
    """A task's exception could be pickled but not re-created on the caller."""


class ObjectLostError(RayError):
    """The object's value is gone and cannot be recovered."""

    def __init__(self, object_ref_hex: str = "", reason: str = ""):
        self.object_ref_hex = object_ref_hex
        self.reason = reason
        super().__init__(f"Failed to retrieve object {object_ref_hex}. {reason}".strip())

    def __reduce__(self):
        return type(self), (self.object_ref_hex, self.reason)


class OwnerDiedError(ObjectLostError):
    """The process that owned the object (the one whose ``.remote()`` or ``put`` made the
    ref) has exited, and the value went with it. Unlike a plain ObjectLostError, it says
    which process that was, where known: ``owner_address``, ``owner_pid``, ``owner_ip``
    (its node), ``owner_kind`` ("worker" or "driver") and ``owner_log``."""

    def __init__(
        self,
        object_ref_hex: str = "",
        reason: str = "",
        owner_address: str = "",
        owner_pid: int | None = None,
        owner_ip: str = "",
        owner_kind: str = "",
        owner_log: str = "",
    ):
        self.owner_address = owner_address
        self.owner_pid = owner_pid
        self.owner_ip = owner_ip
        self.owner_kind = owner_kind
        self.owner_log = owner_log
        super().__init__(object_ref_hex, reason or self._explain())

    def _explain(self) -> str:
        who = f"the {self.owner_kind or 'process'}"
        if self.owner_pid is not None:
            who += f" with pid {self.owner_pid}"
        if self.owner_ip:
            who += f" on the node at {self.owner_ip}"
        if self.owner_address:
            who += f" (listening at {self.owner_address})"
        text = (
            f"The object's owner has exited: {who}, whose .remote() or minray.put() "
            "created this ObjectRef. An object lives only as long as its owner: keep that "
            "process alive while others use the object, or pass the value, not the ref."
        )
        if self.owner_log:
            text += f" Why it exited may be in its log {self.owner_log}"
            text += f" on {self.owner_ip}." if self.owner_ip else "."
        return text

    def __reduce__(self):
        return type(self), (
            self.object_ref_hex,
            self.reason,
            self.owner_address,
            self.owner_pid,
            self.owner_ip,
            self.owner_kind,
            self.owner_log,
        )


class ObjectFreedError(ObjectLostError):
    """The object was freed explicitly and cannot be read."""


class ObjectReconstructionFailedError(ObjectLostError):
    """Every copy of the object was lost, and running its task again could not rebuild it."""


class ObjectReconstructionFailedMaxAttemptsExceededError(ObjectReconstructionFailedError):
    """The object was lost, and its task has no retries left (``max_retries``)."""


class ObjectReconstructionFailedLineageEvictedError(ObjectReconstructionFailedError):
    """The object was lost, and its task was no longer kept (lineage over its byte budget)."""


__all__ = [
    "RayError",
    "RuntimeEnvSetupError",
    "RaySystemError",
    "RayTaskError",
    "GetTimeoutError",
    "RayActorError",
    "ActorDiedError",
    "ActorUnavailableError",
    "ActorAlreadyExistsError",
    "AsyncioActorExit",
    "PendingCallsLimitExceeded",
    "WorkerCrashedError",
    "TaskCancelledError",
    "ObjectStoreFullError",
    "OutOfDiskError",
    "OutOfMemoryError",
    "NodeDiedError",
    "TaskUnschedulableError",
    "UnserializableException",
    "ObjectLostError",
    "OwnerDiedError",
    "ObjectFreedError",
    "ObjectReconstructionFailedError",
    "ObjectReconstructionFailedMaxAttemptsExceededError",
    "ObjectReconstructionFailedLineageEvictedError",
]


def error_from_reply(name: str, message: str) -> Exception:
    """The exception a node's ``ErrorReply(name, message)`` stands for (RaySystemError
    when ``name`` is not one of these classes)."""
    cls = globals().get(name)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(message)
        except TypeError:
            pass
    return RaySystemError(f"{name}: {message}")
