"""The task graph: tasks and the objects passed between them, from the head's task table
(pure; the dashboard's ``/api/graph`` and its live stream are built from it).

A node is a task (its latest attempt), or an object that a task takes and that no task
in the table made: a ``put``'s, or one whose maker has left the table. An object's id
starts with the id of the task that made it (ids.py), so an edge goes from that task
to each task that takes the object; an actor's creation task also has an edge to each
call on the actor. What a task takes travels as ids in its first event (``args``,
runtime/task_events.py), never values.

Past ``max_nodes`` nodes the graph is summarised: one group per function (its kind and
name) with how many of its tasks are in each state, and one edge per pair of groups
with how many objects (or calls) went along it. The page draws either (dashboard_graph).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..ids import TASK_ID_SIZE
from .task_table import TaskAttempt, TaskTable

#: hex digits of a task id: an object id's first ones name the task that made it
TASK_ID_HEX = TASK_ID_SIZE * 2
#: the graph's nodes (tasks and objects) drawn one by one at most, by default
MAX_NODES = 300
#: the states a task node can be in, in the order they happen (the page's legend)
STATES = (
    "PENDING_ARGS_AVAIL",
    "PENDING_NODE_ASSIGNMENT",
    "SUBMITTED_TO_WORKER",
    "RUNNING",
    "FINISHED",
    "FAILED",
)


def task_node(record: TaskAttempt) -> dict:
    """A task's node: what the page shows of it and the ids of the objects it takes."""
    info = record.info
    return {
        "id": record.task_id.hex(),
        "kind": "task",
        "name": info.get("name", ""),
        "type": info.get("type", "NORMAL_TASK"),
        "state": record.state,
        "attempt": record.attempt,
        "actor_id": info.get("actor_id") or None,
        "node_id": info.get("node_id") or None,
        "error": info.get("exception_type") or info.get("error_type") or None,
        "args": info.get("args") or [],
    }


def object_node(object_id: str) -> dict:
    """The node of an object no task in the graph made (a ``put``'s, or an evicted task's)."""
    return {"id": object_id, "kind": "object", "name": "object", "type": "OBJECT", "state": ""}


def edges(tasks: list[dict]) -> tuple[list[dict], list[dict]]:
    """``(object nodes, edges)`` of task nodes: an edge from the maker of each object a
    task takes (or from the object's own node), and from an actor's creation to its calls."""
    known = {task["id"] for task in tasks}
    creations = {
        task["actor_id"]: task["id"]
        for task in tasks
        if task["type"] == "ACTOR_CREATION_TASK" and task["actor_id"]
    }
    objects: dict[str, dict] = {}
    found: list[dict] = []
    for task in tasks:
        for object_id in task["args"]:
            maker = object_id[:TASK_ID_HEX]
            if maker not in known or maker == task["id"]:
                maker = object_id
                if object_id not in objects:
                    objects[object_id] = object_node(object_id)
            found.append({"from": maker, "to": task["id"], "object": object_id, "kind": "data"})
        if task["type"] == "ACTOR_TASK":
            creation = creations.get(task["actor_id"])
            if creation is not None:
                found.append({"from": creation, "to": task["id"], "object": None, "kind": "actor"})
    return list(objects.values()), found


def group_of(node: dict) -> str:
    """The summary group a node belongs to: its kind and function (all objects: one)."""
    return "OBJECT:objects" if node["kind"] == "object" else f"{node['type']}:{node['name']}"


def summarize(nodes: Iterable[dict], found: Iterable[dict]) -> tuple[list[dict], list[dict]]:
    """``(groups, group edges)``: a group per function with its count per state, and an
    edge per pair of groups with how many edges of the graph it stands for."""
    groups: dict[str, dict] = {}
    where: dict[str, str] = {}
    for node in nodes:
        key = where[node["id"]] = group_of(node)
        group = groups.get(key)
        if group is None:
            group = groups[key] = {
                "id": key,
                "kind": "group",
                "name": node["name"] if node["kind"] == "task" else "objects",
                "type": node["type"],
                "count": 0,
                "states": {},
            }
        group["count"] += 1
        if node["state"]:
            group["states"][node["state"]] = group["states"].get(node["state"], 0) + 1
    counts: dict[tuple[str, str, str], int] = {}
    for edge in found:
        key = (where[edge["from"]], where[edge["to"]], edge["kind"])
        counts[key] = counts.get(key, 0) + 1
    group_edges = [
        {"from": a, "to": b, "kind": kind, "count": n} for (a, b, kind), n in counts.items()
    ]
    return list(groups.values()), group_edges


def build(table: TaskTable, max_nodes: int = MAX_NODES) -> dict:
    """The graph of every task the table holds: drawn node by node (``mode`` "tasks"), or
    summarised by function when it has more than ``max_nodes`` nodes (``mode`` "summary")."""
    tasks = [task_node(record) for record in table.latest_attempts()]
    objects, found = edges(tasks)
    nodes = tasks + objects
    shape = {"tasks": len(tasks), "objects": len(objects), "dropped": table.dropped}
    if len(nodes) <= max_nodes:
        return {"mode": "tasks", "nodes": nodes, "edges": found, **shape}
    groups, group_edges = summarize(nodes, found)
    return {"mode": "summary", "nodes": groups, "edges": group_edges, **shape}


def changed_nodes(table: TaskTable, task_ids: Iterable[bytes]) -> list[dict]:
    """The nodes of tasks that changed (new, or in a new state), as the table has them now."""
    found = (table.latest(task_id) for task_id in task_ids)
    return [task_node(record) for record in found if record is not None]
