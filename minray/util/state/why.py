"""``minray why TASK_ID``: a plain answer to "why is my task still pending?" (not in Ray).

It reads the task's latest attempt from the head's task table. A pending task
carries the reason recorded where the decision was made (``pending_reason``):
its owner says which arguments it waits for (their owner, and where the task
making each runs); the node that keeps its lease request says whether it is
infeasible (with what the nodes have), waits for busy resources (who holds them,
its position in the node's queue), for a worker process to start, or for its
placement group (see node/pending_reasons.py and runtime/pending_reasons.py).

Only what cannot be recorded is looked up here, now: the current state of the
tasks making the arguments it waits for, and of the placement group it waits
for. A finished, failed or running task is explained from its own row.
"""

from __future__ import annotations

import time

from ...ids import TASK_ID_SIZE
from .api import get_placement_group, get_task, list_tasks

PENDING = ("PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT")
#: said when a pending task has no reason yet
NOT_YET = (
    "no reason recorded yet: reasons reach the head about once a second, and a task "
    "that waits less is granted before it is told one"
)


def why(task_id: str, address: str | None = None, timeout: float = 30) -> str:
    """Why the task (hex id, or an ObjectRef it returns) is in the state it is."""
    attempts = get_task(task_id, address, timeout)
    if not attempts:
        return (
            f"No task {task_id if isinstance(task_id, str) else task_id.task_id().hex()} is "
            "known to the head. Task events reach it about once a second: try again in a "
            "moment; or the task ran long ago and left the table (it keeps 20,000)."
        )
    task = attempts[-1]
    head = f"Task {task.name} ({task.task_id}, attempt {task.attempt_number}) is {task.state}"
    if task.state in PENDING:
        waits = "its arguments" if task.state == "PENDING_ARGS_AVAIL" else "a node to run it"
        now = _now(task, address, timeout)
        return f"{head}: it waits for {waits}.\n  {task.pending_reason or NOT_YET}{now}"
    where = f"node {task.node_id or '?'}, worker pid {task.worker_pid or '?'}"
    if task.state == "SUBMITTED_TO_WORKER":
        return (
            f"{head}: it was sent to a worker ({where}), which has not started it yet "
            "(an actor runs its calls in order: earlier calls come first)."
        )
    if task.state == "RUNNING":
        return f"{head}: it runs on {where} since {_when(task.start_time_ms)}."
    if task.state == "FAILED":
        error = task.error_message or "the task raised an exception (see its ObjectRef)"
        return f"{head} ({task.error_type}) at {_when(task.end_time_ms)}: {error}"
    return f"{head}: it finished at {_when(task.end_time_ms)} on {where}."


def pending_reasons(tasks: list, address=None, timeout: float = 30) -> dict:
    """{task id: its recorded reason} for the pending ones among ``tasks`` (TaskState rows
    with ``detail``), for ``minray list tasks``; ``address`` and ``timeout`` are unused
    (kept for callers of the earlier version, which asked the head)."""
    return {task.task_id: task.pending_reason or NOT_YET for task in tasks if task.state in PENDING}


def _now(task, address, timeout: float) -> str:
    """What the head knows now of what the task waits on (not recordable beforehand)."""
    if task.state == "PENDING_ARGS_AVAIL":
        return _makers(task, address, timeout)
    group = _group_of(task.required_resources or {})
    if not group:
        return ""
    found = get_placement_group(group, address, timeout)
    state = found.state if found is not None else "not known to the head (removed?)"
    return f"\n  Its placement group {group} is {state} now."


def _makers(task, address, timeout: float) -> str:
    waiting = list(task.waiting_for or [])
    if not waiting:
        return ""
    rows = {t.task_id: t for t in list_tasks(address, limit=10**9, timeout=timeout)}
    lines = []
    for object_id in waiting:
        maker = rows.get(object_id[: TASK_ID_SIZE * 2])  # (an object id starts with its task's)
        if maker is None:
            lines.append(f"  - object {object_id}: made by a task the head does not know")
        else:
            lines.append(f"  - object {object_id}: made by {maker.name}, which is {maker.state}")
    return "\n" + "\n".join(lines)


def _group_of(resources: dict) -> str:
    for name in resources:
        if "_group_" in name:
            return name.rsplit("_", 1)[1]
    return ""


def _when(ms: int | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ms / 1000)) if ms else "?"
