"""Storing a value a task returned or yielded: serialized, kept for its owner, and the
refs nested in it granted to the owner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import serialization

if TYPE_CHECKING:
    from .core_worker import CoreWorker


def store_output(
    worker: CoreWorker, object_id: bytes, value: Any, caller: str, what: str, label: str
):
    """Serialize and store ``value`` as ``object_id`` for the owner at ``caller``; returns
    the stored value (kind, payload, refs). If it cannot be pickled: TypeError saying
    "Could not serialize <what>", naming the part that failed inside ``label``."""
    try:
        s = serialization.serialize(value)
    except Exception as e:
        raise TypeError(
            f"Could not serialize {what}: " + serialization.describe_unpicklable(value, label)
        ) from e
    stored = worker.store_serialized(object_id, s, caller)
    worker.grant(s.refs, caller)
    return stored
