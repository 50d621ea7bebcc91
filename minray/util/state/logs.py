"""``get_log`` and ``minray logs``: a worker's output, found by task, actor or worker id.

A task's worker (and node) comes from the head's task table (its RUNNING
event), an actor's from its creation task, a worker's from the workers list.
The bytes are read by the node that ran it (``GetLog``, passed on by the
head), so logs of any node can be read from anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from ...protocol.messages import GetLog
from .api import get_task, list_tasks, list_workers
from .client import ask

#: bytes asked for per line of ``tail`` (the last lines are cut from what comes back)
_BYTES_PER_LINE = 512
_CHUNK = 1 << 20


def get_log(
    address: str | None = None,
    node_id: str | None = None,
    actor_id: str | None = None,
    task_id: str | None = None,
    worker_id: str | None = None,
    follow: bool = False,
    tail: int = 1000,
    timeout: float = 30,
    suffix: str = "out",
    poll_s: float = 0.5,
    follow_for_s: float | None = None,
) -> Iterator[str]:
    """The worker's ``suffix`` ("out" or "err") log: its last ``tail`` lines (-1: all),
    then, with ``follow``, what it writes next (for ``follow_for_s`` seconds, or until
    interrupted)."""
    node, worker = find_worker(address, node_id, actor_id, task_id, worker_id, timeout)
    if tail < 0:
        offset = 0
    else:
        offset = -max(1, tail) * _BYTES_PER_LINE
    chunk = ask(GetLog(node, worker, suffix, offset, _CHUNK), address, timeout)
    text = chunk.data.decode(errors="replace")
    if tail >= 0:
        lines = text.splitlines(keepends=True)
        text = "".join(lines[-tail:]) if tail else ""
    yield text
    offset = chunk.offset
    deadline = None if follow_for_s is None else time.monotonic() + follow_for_s
    while follow and (deadline is None or time.monotonic() < deadline):
        time.sleep(poll_s)
        chunk = ask(GetLog(node, worker, suffix, offset, _CHUNK), address, timeout)
        if chunk.data:
            offset = chunk.offset
            yield chunk.data.decode(errors="replace")


def find_worker(address, node_id, actor_id, task_id, worker_id, timeout) -> tuple[bytes, bytes]:
    """(node id, worker id) of the worker that ran the task or actor, or of the worker."""
    given = [x for x in (actor_id, task_id, worker_id) if x]
    if len(given) != 1:
        raise ValueError("name exactly one of actor_id, task_id or worker_id")
    if task_id:
        attempts = get_task(task_id, address, timeout) or []
        ran = [a for a in attempts if a.worker_id]
        if not ran:
            raise ValueError(f"task {task_id} has not run yet (or is not known to the head)")
        node_id, worker_id = ran[-1].node_id, ran[-1].worker_id
    elif actor_id:
        creation = [("actor_id", "=", actor_id), ("type", "=", "ACTOR_CREATION_TASK")]
        created = list_tasks(address, creation, 10**9, timeout)
        ran = [t for t in created if t.worker_id]
        if not ran:
            raise ValueError(f"actor {actor_id} has not started yet (or is not known)")
        node_id, worker_id = ran[-1].node_id, ran[-1].worker_id
    elif node_id is None:
        rows = list_workers(address, [("worker_id", "=", worker_id)], 1, timeout)
        if not rows:
            raise ValueError(f"no live worker {worker_id}: give its node_id too")
        node_id = rows[0].node_id
    return bytes.fromhex(node_id), bytes.fromhex(worker_id)
