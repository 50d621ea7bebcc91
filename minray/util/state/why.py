"""``minray why TASK_ID``: a plain answer to "why is my task still pending?" (not in Ray).

It reads the task's latest attempt from the head's task table and explains its
state from what the cluster knows now:

* waiting for its arguments: which ones, and the state of the tasks that make
  them (an object id starts with the id of the task that creates it);
* waiting for a node: no live node can ever fit what it asks for (infeasible,
  with what the nodes have); or its placement group is not placed (with why);
  or every node that could run it is busy (what is free on each, and how many
  tasks asking for the same resources were queued before it); or a node has
  room and a worker is being started for it;
* submitted, running, finished or failed: where, since when, and the error.
"""

from __future__ import annotations

import time

from ...ids import TASK_ID_SIZE
from ...runtime.scheduler import to_units
from .api import get_placement_group, get_task, list_nodes, list_tasks


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
    if task.state == "PENDING_ARGS_AVAIL":
        cluster = _Cluster(address, timeout)
        return f"{head}: it waits for its arguments.\n" + _arguments(task, cluster)
    if task.state == "PENDING_NODE_ASSIGNMENT":
        cluster = _Cluster(address, timeout)
        return f"{head}: it waits for a node to run it.\n" + _placement(task, cluster)
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


class _Cluster:
    """What the head knows now, asked once however many tasks are explained."""

    def __init__(self, address, timeout: float):
        self.address, self.timeout = address, timeout
        self._tasks: dict | None = None
        self._nodes: list | None = None
        self._groups: dict = {}

    def tasks(self) -> dict:
        if self._tasks is None:
            rows = list_tasks(self.address, limit=10**9, timeout=self.timeout, detail=True)
            self._tasks = {t.task_id: t for t in rows}  # (the latest attempt of each)
        return self._tasks

    def nodes(self) -> list:
        if self._nodes is None:
            nodes = list_nodes(self.address, timeout=self.timeout, detail=True)
            self._nodes = [n for n in nodes if n.state == "ALIVE"]
        return self._nodes

    def group(self, group_id: str):
        if group_id not in self._groups:
            self._groups[group_id] = get_placement_group(group_id, self.address, self.timeout)
        return self._groups[group_id]


def pending_reasons(tasks: list, address=None, timeout: float = 30) -> dict:
    """{task id: a one-line reason} for the pending ones among ``tasks`` (TaskState rows),
    for ``minray list tasks``."""
    cluster = _Cluster(address, timeout)
    reasons = {}
    for task in tasks:
        if task.state == "PENDING_ARGS_AVAIL":
            reasons[task.task_id] = "args: " + _arguments(task, cluster).strip().split("\n")[0]
        elif task.state == "PENDING_NODE_ASSIGNMENT":
            reasons[task.task_id] = _placement(task, cluster).strip()
    return reasons


def _arguments(task, cluster: _Cluster) -> str:
    waiting = list(task.waiting_for or [])
    if not waiting:
        return "  (which arguments is not known: the owner did not say)"
    rows = cluster.tasks()
    lines = []
    for object_id in waiting:
        maker = rows.get(object_id[: TASK_ID_SIZE * 2])
        if maker is None:
            lines.append(f"  - object {object_id}: made by a task the head does not know")
        else:
            lines.append(f"  - object {object_id}: made by {maker.name}, which is {maker.state}")
    return "\n".join(lines)


def _placement(task, cluster: _Cluster) -> str:
    need = {k: v for k, v in (task.required_resources or {}).items() if v > 0}
    groups = {name.rsplit("_", 1)[1] for name in need if "_group_" in name}
    for group_id in groups:
        group = cluster.group(group_id)
        if group is None:
            return f"  It asks for placement group {group_id}, which the head does not know."
        if group.state != "CREATED":
            return f"  It waits for placement group {group_id}, which is {group.state}."
    plain = {k: v for k, v in need.items() if "_group_" not in k}
    nodes = cluster.nodes()
    ever = [n for n in nodes if fits(need, n.resources_total)]
    if not ever:
        totals = "; ".join(f"{n.node_ip}: {_short(n.resources_total)}" for n in nodes)
        return (
            f"  Infeasible: no live node can ever fit {_short(plain or need)} (the nodes have "
            f"{totals}). It runs once a node with these resources joins."
        )
    if any(fits(need, n.resources_available or {}) for n in ever):
        return "  A node has room for it now: a worker is being started or leased for it."
    earlier = [
        t for t in cluster.tasks().values()
        if t.state == "PENDING_NODE_ASSIGNMENT"
        and t.required_resources == task.required_resources and t.task_id != task.task_id
        and (t.creation_time_ms or 0) <= (task.creation_time_ms or 0)
    ]  # fmt: skip
    free = "; ".join(f"{n.node_ip}: {_short(n.resources_available or {})} free" for n in ever)
    return (
        f"  Resources busy: it asks for {_short(plain or need)}, and every node that could run "
        f"it is using them ({free}). {len(earlier)} task(s) asking for the same were queued "
        "before it."
    )


def fits(need: dict, have: dict) -> bool:
    """Whether ``have`` holds every resource amount of ``need`` (in the scheduler's units)."""
    return all(to_units(have.get(name, 0)) >= to_units(amount) for name, amount in need.items())


def _short(resources: dict) -> str:
    shown = {k: v for k, v in resources.items() if k in ("CPU", "GPU") or not _internal(k)}
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(shown.items())) + "}"


def _internal(name: str) -> bool:
    return (
        name.startswith("node:") or "_group_" in name or name in ("memory", "object_store_memory")
    )


def _when(ms: int | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ms / 1000)) if ms else "?"
