"""What becomes of a task that ran, or never will, at its owner: its results made
errors, its arguments let go, and errors nobody will see reported (Ray's "Unhandled
error"). Shared by the task and actor submitters and the debug-mode runner."""

from __future__ import annotations

import logging
import pickle
from typing import TYPE_CHECKING

from ..exceptions import RayError
from ..protocol.messages import ValueKind

if TYPE_CHECKING:
    from .core_worker import CoreWorker
    from .task_spec import TaskSpec

logger = logging.getLogger("minray")


def report_unhandled_error(payload: bytes) -> None:
    """Log a task error that no caller will ever see (Ray's "Unhandled error")."""
    try:
        text = str(pickle.loads(payload))
    except Exception as e:
        text = f"(the error could not be read: {e})"
    logger.error("Unhandled error (suppress with 'MINRAY_IGNORE_UNHANDLED_ERRORS=1'): %s", text)


def pickled_error(error: BaseException) -> bytes:
    try:
        return pickle.dumps(error)
    except Exception:
        return pickle.dumps(RayError(f"{type(error).__name__}: {error}"))


def store_error(worker: CoreWorker, spec: TaskSpec, error: BaseException) -> None:
    """Make every result of the task raise ``error`` at get()."""
    entries = [[ValueKind.ERROR, pickled_error(error), []]] * spec.num_returns
    worker.store_returns(spec.return_ids, entries, worker.address)


def release_arguments(worker: CoreWorker, spec: TaskSpec) -> None:
    """The task is done with its arguments: drop the counts that kept them alive."""
    worker.update_refs(worker.refs.remove_submitted, spec.argument_ref_ids())
    for value in spec.fetched:
        worker.release_holds(value.refs)
    spec.fetched = ()
