"""``ray.util.state``: what runs where, across every node of the cluster.

``list_*`` take Ray's ``filters=[(column, "=" or "!=", value)]``, ``limit``
(default 100) and ``detail``; ``get_*`` return one row (all columns) or None;
``summarize_actors`` counts actors by class and state. Nodes, placement groups
and jobs come from the head's tables; actors and workers from every live node,
through the head (a node that does not answer in time is named in the error,
or skipped with ``raise_on_missing_output=False``).
"""

from __future__ import annotations

import logging
from typing import Any

from ...protocol.messages import GetClusterInfo, GetJobs, GetPlacementGroups, GetStates, GetTasks
from .client import RayStateApiException, ask
from .common import (
    ActorState,
    JobState,
    NodeState,
    ObjectState,
    PlacementGroupState,
    StateSchema,
    TaskState,
    WorkerState,
)

logger = logging.getLogger("minray")

DEFAULT_LIMIT = 100
DEFAULT_TIMEOUT = 30
Filters = list[tuple[str, str, Any]] | None


def list_actors(
    address=None,
    filters: Filters = None,
    limit=DEFAULT_LIMIT,
    timeout=DEFAULT_TIMEOUT,
    detail=False,
    raise_on_missing_output=True,
    _explain=False,
) -> list[ActorState]:
    """The actors of the cluster (the dead ones too), oldest first."""
    rows = _node_rows("actors", address, timeout, raise_on_missing_output)
    return _select(ActorState, rows, filters, limit, detail)


def list_workers(
    address=None,
    filters: Filters = None,
    limit=DEFAULT_LIMIT,
    timeout=DEFAULT_TIMEOUT,
    detail=False,
    raise_on_missing_output=True,
    _explain=False,
) -> list[WorkerState]:
    """The worker processes and connected drivers of every live node."""
    rows = _node_rows("workers", address, timeout, raise_on_missing_output)
    return _select(WorkerState, rows, filters, limit, detail)


def list_nodes(
    address=None,
    filters: Filters = None,
    limit=DEFAULT_LIMIT,
    timeout=DEFAULT_TIMEOUT,
    detail=False,
    raise_on_missing_output=True,
    _explain=False,
) -> list[NodeState]:
    """Every node that joined the cluster, alive or dead."""
    nodes = ask(GetClusterInfo(), address, timeout).nodes
    return _select(NodeState, [_node_row(n) for n in nodes], filters, limit, detail)


def list_placement_groups(
    address=None,
    filters: Filters = None,
    limit=DEFAULT_LIMIT,
    timeout=DEFAULT_TIMEOUT,
    detail=False,
    raise_on_missing_output=True,
    _explain=False,
) -> list[PlacementGroupState]:
    """Every placement group (removed ones too, the last thousand)."""
    groups = ask(GetPlacementGroups(b"", "", ""), address, timeout).groups
    return _select(PlacementGroupState, [_group_row(g) for g in groups], filters, limit, detail)


def list_jobs(
    address=None,
    filters: Filters = None,
    limit=DEFAULT_LIMIT,
    timeout=DEFAULT_TIMEOUT,
    detail=False,
    raise_on_missing_output=True,
    _explain=False,
) -> list[JobState]:
    """Every job: in minray, each driver that connected to the cluster."""
    jobs = ask(GetJobs(), address, timeout).jobs
    return _select(JobState, [_job_row(j) for j in jobs], filters, limit, detail)


def list_objects(
    address=None,
    filters: Filters = None,
    limit=DEFAULT_LIMIT,
    timeout=DEFAULT_TIMEOUT,
    detail=False,
    raise_on_missing_output=True,
    _explain=False,
) -> list[ObjectState]:
    """The objects every process of the cluster references: a row per process and object."""
    rows = _node_rows("objects", address, timeout, raise_on_missing_output)
    return _select(ObjectState, rows, filters, limit, detail)


def get_objects(id: str, address=None, timeout=DEFAULT_TIMEOUT, _explain=False) -> list:
    """The rows of one object (by hex id): one per process that references it."""
    rows = _node_rows("objects", address, timeout, True)
    return [ObjectState.from_row(r, True) for r in rows if r["object_id"] == id.lower()]


def list_tasks(
    address=None,
    filters: Filters = None,
    limit=DEFAULT_LIMIT,
    timeout=DEFAULT_TIMEOUT,
    detail=False,
    raise_on_missing_output=True,
    _explain=False,
) -> list[TaskState]:
    """Task attempts and actor calls, oldest first, from the head's task table (the
    latest 20,000; events lost on the way are counted and reported)."""
    # (without filters the head sends only the rows kept, and says how many it holds)
    reply = ask(GetTasks(b"", 0 if filters else max(limit, 0)), address, timeout)
    _report_dropped(reply.dropped)
    if reply.total > len(reply.rows):
        _warn_limit(limit, reply.total)
    return _select(TaskState, reply.rows, filters, limit, detail)


def get_task(id, address=None, timeout=DEFAULT_TIMEOUT, _explain=False) -> list[TaskState] | None:
    """The attempts of a task (by id, or by an ObjectRef it returned), or None."""
    task_id = id if isinstance(id, str) else id.task_id().hex()
    try:
        wanted = bytes.fromhex(task_id)
    except ValueError:
        raise ValueError(f"{task_id!r} is not a task id (hex digits)") from None
    rows = ask(GetTasks(wanted), address, timeout).rows
    return [TaskState.from_row(row, True) for row in rows] or None


def summarize_tasks(address=None, timeout=DEFAULT_TIMEOUT, raise_on_missing_output=True,
                    _explain=False) -> dict:  # fmt: skip
    """Tasks counted by function (or method) and state, in Ray's shape (the head counts
    each task's latest attempt: the rows do not travel)."""
    reply = ask(GetTasks(b"", 0, True), address, timeout)
    summary: dict[str, dict] = {}
    by_type: dict[str, int] = {}
    for row in reply.rows:
        entry = summary.setdefault(
            row["func_or_class_name"],
            {"func_or_class_name": row["func_or_class_name"], "type": row["type"],
             "state_counts": {}},
        )  # fmt: skip
        counts = entry["state_counts"]
        counts[row["state"]] = counts.get(row["state"], 0) + row["count"]
        by_type[row["type"]] = by_type.get(row["type"], 0) + row["count"]
    actor_tasks = by_type.get("ACTOR_TASK", 0)
    return {
        "cluster": {
            "summary": summary,
            "total_tasks": sum(by_type.values()) - actor_tasks,
            "total_actor_tasks": actor_tasks,
            "total_actor_scheduled": by_type.get("ACTOR_CREATION_TASK", 0),
            "summary_by": "func_name",
        }
    }


def get_actor(id: str, address=None, timeout=DEFAULT_TIMEOUT, _explain=False) -> ActorState | None:
    return _one(list_actors(address, [("actor_id", "=", id)], 1, timeout, detail=True))


def get_node(id: str, address=None, timeout=DEFAULT_TIMEOUT, _explain=False) -> NodeState | None:
    return _one(list_nodes(address, [("node_id", "=", id)], 1, timeout, detail=True))


def get_worker(
    id: str, address=None, timeout=DEFAULT_TIMEOUT, _explain=False
) -> WorkerState | None:
    return _one(list_workers(address, [("worker_id", "=", id)], 1, timeout, detail=True))


def get_placement_group(id: str, address=None, timeout=DEFAULT_TIMEOUT, _explain=False):
    found = list_placement_groups(address, [("placement_group_id", "=", id)], 1, timeout, True)
    return _one(found)


def summarize_actors(
    address=None, timeout=DEFAULT_TIMEOUT, raise_on_missing_output=True, _explain=False
) -> dict:
    """Actors counted by class and state, in Ray's shape."""
    actors = list_actors(address, None, 10**9, timeout, False, raise_on_missing_output)
    summary: dict[str, dict] = {}
    for actor in actors:
        entry = summary.setdefault(
            actor.class_name, {"class_name": actor.class_name, "state_counts": {}}
        )
        entry["state_counts"][actor.state] = entry["state_counts"].get(actor.state, 0) + 1
    return {"cluster": {"summary": summary, "total_actors": len(actors), "summary_by": "class"}}


# --- internals ------------------------------------------------------------------------------


def _node_rows(kind: str, address, timeout: float, raise_on_missing: bool) -> list[dict]:
    reply = ask(GetStates(kind, False), address, timeout)
    if reply.missing:
        message = (
            f"{len(reply.missing)} node(s) did not answer in time, so their {kind} are missing: "
            f"{', '.join(reply.missing)}. Pass raise_on_missing_output=False to list the rest."
        )
        if raise_on_missing:
            raise RayStateApiException(message)
        logger.warning(message)
    return reply.rows


def _report_dropped(dropped: int) -> None:
    if dropped:
        logger.warning(
            "%d task events were dropped (a process's buffer was full, or the head's table "
            "let go of old tasks): the task list is incomplete.",
            dropped,
        )


def _select(cls: type[StateSchema], rows: list[dict], filters: Filters, limit: int, detail: bool):
    columns = cls.list_columns(detail=True)
    for item in filters or []:
        if not (isinstance(item, (tuple, list)) and len(item) == 3):
            raise ValueError(f"a filter is (column, '=' or '!=', value); got {item!r}")
        column, op, _ = item
        if column not in columns:
            raise ValueError(
                f"{column!r} is not a column of {cls.__name__}; use one of {', '.join(columns)}"
            )
        if op not in ("=", "!="):
            raise ValueError(f"filter operator {op!r} is not supported; use '=' or '!='")
    kept = [row for row in rows if all(_matches(row.get(c), op, v) for c, op, v in filters or [])]
    if len(kept) > limit:
        _warn_limit(limit, len(kept))
        kept = kept[:limit]
    return [cls.from_row(row, detail) for row in kept]


def _warn_limit(limit: int, total: int) -> None:
    logger.warning(
        "Limit last %d entries (Total %d). Use `filters` to reduce the amount of data to "
        "return or set a higher `limit` to see all data.",
        limit,
        total,
    )


def _matches(value: Any, op: str, wanted: Any) -> bool:
    same = str(value).lower() == str(wanted).lower()
    return same if op == "=" else not same


def _one(rows: list):
    return rows[0] if rows else None


def _node_row(node: dict) -> dict:
    return {
        "node_id": node["NodeID"],
        "node_ip": node["NodeManagerAddress"],
        "is_head_node": bool(node.get("IsHead")),
        "state": "ALIVE" if node["Alive"] else "DEAD",
        "state_message": node.get("DeathReasonMessage") or None,
        "node_name": node.get("NodeName", node["NodeManagerAddress"]),
        "resources_total": dict(node["Resources"]),
        "resources_available": dict(node.get("AvailableResources") or {}),
        "labels": {},
    }


def _group_row(group: dict) -> dict:
    nodes = group.get("bundles_to_node_id") or []
    bundles = [
        {"bundle_id": i, "node_id": nodes[i] if i < len(nodes) else None, "unit_resources": b}
        for i, b in enumerate(group["bundles"])
    ]
    return {
        "placement_group_id": group["placement_group_id"],
        "name": group["name"],
        "state": group["state"],
        "ray_namespace": group["namespace"],
        "is_detached": group["is_detached"],
        "strategy": group["strategy"],
        "bundles": bundles,
    }


def _job_row(job: dict) -> dict:
    return {
        "job_id": job["JobID"],
        "type": "DRIVER",
        "status": "SUCCEEDED" if job["IsDead"] else "RUNNING",
        "entrypoint": job["Entrypoint"],
        "start_time": job["StartTime"],
        "end_time": job["EndTime"] or None,
        "driver_info": {
            "node_ip_address": job["DriverIPAddress"],
            "pid": job["DriverPid"],
            "node_id": job["DriverNodeID"],
        },
        "ray_namespace": job["Namespace"],
    }
