"""Waiting for a task's ObjectRef arguments before the task is pushed (loop thread).

Top-level ref arguments travel as values: the owner of the task looks each one
up (in its own memory store, or by asking the ref's owner) and records the
value in the spec. A ref whose value is an error fails the task without
running it, with Ray's "At least one of the input arguments ..." message.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..exceptions import RayTaskError, UnserializableException
from ..protocol.messages import ValueKind
from .task_spec import TaskSpec

if TYPE_CHECKING:
    from .core_worker import CoreWorker

Ready = Callable[[TaskSpec], None]
Failed = Callable[[TaskSpec, BaseException], None]


def resolve(worker: CoreWorker, spec: TaskSpec, ready: Ready, failed: Failed) -> None:
    """Fill ``spec.resolved``, then call ``ready(spec)`` (or ``failed(spec, error)``)."""
    waiting = []
    for index, object_id, owner in spec.placeholders:
        value = worker.objects.local_value(object_id, owner)
        if value is None:
            waiting.append((index, object_id, owner))
        elif _take_argument(worker, spec, index, object_id, value):
            failed(spec, dependency_error(spec, value.payload))
            return
    if not waiting:
        ready(spec)
        return
    worker.loop.create_task(_resolve_remote(worker, spec, waiting, ready, failed))


async def _resolve_remote(
    worker: CoreWorker, spec: TaskSpec, waiting: list, ready: Ready, failed: Failed
) -> None:
    error_payload = None
    for index, object_id, owner in waiting:
        value = await worker.objects.fetch(object_id, owner)
        if owner != worker.address:
            spec.fetched = spec.fetched or []
            spec.fetched.append(value)
        if _take_argument(worker, spec, index, object_id, value):
            error_payload = error_payload or value.payload
    if error_payload is not None:
        failed(spec, dependency_error(spec, error_payload))
    else:
        ready(spec)


def _take_argument(worker: CoreWorker, spec: TaskSpec, index: int, object_id: bytes, value) -> bool:
    """Record the value of a ref argument; True if that value is an error."""
    spec.resolved = spec.resolved or []  # the shared () until now
    spec.resolved.append([index, value.kind, value.payload])
    if value.refs:
        spec.resolved_refs = spec.resolved_refs or []
        spec.resolved_refs.extend(value.refs)
    if value.kind == ValueKind.ERROR:
        worker.error_seen(object_id)
        return True
    return False


def dependency_error(spec: TaskSpec, error_payload: bytes) -> BaseException:
    """The error a task gets when one of its arguments is an error."""
    try:
        error = pickle.loads(error_payload)
    except Exception as e:
        return UnserializableException(
            f"An argument of task {spec.name} failed with an exception that cannot be "
            f"re-created here: {type(e).__name__}: {e}"
        )
    if isinstance(error, RayTaskError):
        return RayTaskError(
            spec.name,
            "At least one of the input arguments for this task could not be computed:\n"
            + str(error),
            error.cause,
            pid=error.pid,
            ip=error.ip,
        )
    return error
