"""The cap on lease requests one client may have waiting at a node (pure, no I/O).

A client asks for leases as it has tasks to run (runtime/task_submitter.py keeps
at most 16 requests per kind of task), so a real client stays far below
``Config.max_pending_leases_per_client``. A client past it, by a bug or on
purpose, gets a refusal naming the setting instead of growing the node's queue
without bound; the node and its other clients go on as before. Reusing the id
of a request that still waits is refused too (the first would never be answered).
"""

from __future__ import annotations

from ..config import CONFIG, env_setting
from ..protocol.messages import ErrorReply


def lease_refusal(
    requests: dict, conn: object, request_id: int, cap: int | None = None
) -> ErrorReply | None:
    """The refusal of request ``request_id`` of ``conn``, or None to queue it.

    ``requests``: the node's waiting requests, keyed ``(connection, request id)``.
    Counting one client's is a scan, done only when all clients together have
    ``cap`` waiting (no single one can have more)."""
    cap = CONFIG.max_pending_leases_per_client if cap is None else cap
    if (conn, request_id) in requests:
        return ErrorReply("ValueError", f"lease request {request_id} is already waiting")
    if len(requests) < cap or sum(1 for key in requests if key[0] is conn) < cap:
        return None
    return ErrorReply(
        "TaskUnschedulableError",
        f"this client already has {cap} lease requests waiting at the node, the limit "
        f"({env_setting('max_pending_leases_per_client')}, read by the node); raise it if "
        "a real program needs more",
    )
