"""The rows the state API returns, with Ray's class and column names.

Each row is a dataclass that also reads like a dict (``row["state"]``,
``row.get("pid")``, ``row.asdict()``), as Ray's ``StateSchema`` rows do.
Columns marked ``detail`` appear only with ``detail=True`` (and in ``get_*``).
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any


def _detail(default: Any = None) -> Any:
    return field(default=default, metadata={"detail": True})


class StateSchema:
    """Dict-like access to a row, and which of its columns are for ``detail`` only."""

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def asdict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def list_columns(cls, detail: bool = True) -> list[str]:
        return [f.name for f in fields(cls) if detail or not f.metadata.get("detail")]

    @classmethod
    def from_row(cls, row: dict, detail: bool):
        """The row as this class; columns for ``detail`` only are left at None without it."""
        kept = cls.list_columns(detail)
        values = {}
        for f in fields(cls):
            if f.name in kept and f.name in row:
                values[f.name] = row[f.name]
            elif f.default is MISSING:
                values[f.name] = None
        return cls(**values)


@dataclass
class ActorState(StateSchema):
    actor_id: str
    class_name: str
    state: str  #: PENDING_CREATION, ALIVE, RESTARTING or DEAD
    job_id: str
    name: str
    node_id: str | None
    pid: int | None
    ray_namespace: str
    is_detached: bool | None = _detail()
    num_restarts: int | None = _detail()
    death_cause: dict | None = _detail()
    #: why an actor pending creation waits: its creation task's reason (not in Ray)
    pending_reason: str | None = _detail()


@dataclass
class NodeState(StateSchema):
    node_id: str
    node_ip: str
    is_head_node: bool
    state: str  #: ALIVE or DEAD
    state_message: str | None
    node_name: str
    resources_total: dict
    resources_available: dict | None = _detail()
    labels: dict | None = _detail()


@dataclass
class PlacementGroupState(StateSchema):
    placement_group_id: str
    name: str
    state: str  #: PENDING, CREATED, RESCHEDULING or REMOVED
    ray_namespace: str | None = _detail()
    is_detached: bool | None = _detail()
    strategy: str | None = _detail()
    bundles: list | None = _detail()


@dataclass
class JobState(StateSchema):
    job_id: str
    type: str  #: DRIVER: every driver that connects is a job (no job submission yet)
    status: str  #: RUNNING or SUCCEEDED (its driver disconnected)
    entrypoint: str
    start_time: int  #: milliseconds since the epoch
    end_time: int | None
    driver_info: dict | None = _detail()
    ray_namespace: str | None = _detail()


@dataclass
class ObjectState(StateSchema):
    """One process's reference to an object (an object several processes hold has a
    row from each, as in Ray); ``object_size`` in bytes, -1 where only the owner knows."""

    object_id: str
    object_size: int
    task_status: str  #: of the task making it, at its owner: NIL, PENDING_..., FINISHED, FAILED
    attempt_number: int
    reference_type: str  #: LOCAL_REFERENCE, USED_BY_PENDING_TASK, CAPTURED_IN_OBJECT, ...
    call_site: str
    type: str  #: DRIVER or WORKER
    pid: int
    ip: str
    #: times its owner rebuilt it from lineage (0: never); None in a borrower's row
    reconstructions: int | None
    node_id: str | None = _detail()  #: the node of the referencing process
    owner: str | None = _detail()  #: the owner's address
    stored_on_node: str | None = _detail()  #: where a shared-memory value lives (owner only)


@dataclass
class WorkerState(StateSchema):
    worker_id: str
    is_alive: bool
    worker_type: str  #: WORKER or DRIVER
    node_id: str
    ip: str
    pid: int | None
    actor_id: str | None = _detail()
    busy: bool | None = _detail()


@dataclass
class TaskState(StateSchema):
    task_id: str
    attempt_number: int
    name: str
    state: str  #: PENDING_ARGS_AVAIL ... SUBMITTED_TO_WORKER, RUNNING, FINISHED, FAILED
    job_id: str
    actor_id: str | None
    type: str  #: NORMAL_TASK, ACTOR_CREATION_TASK or ACTOR_TASK
    func_or_class_name: str
    node_id: str | None
    worker_id: str | None
    worker_pid: int | None
    error_type: str | None
    #: why this attempt ran: RETRY (the one before failed) or RECONSTRUCTION (a result of
    #: the task was lost and is rebuilt); None for a task's first attempt
    attempt_reason: str | None
    error_message: str | None = _detail()
    required_resources: dict | None = _detail()
    waiting_for: list | None = _detail()  #: objects a task pending its arguments waits for
    #: why a pending task waits, recorded where that was decided (not in Ray)
    pending_reason: str | None = _detail()
    events: list | None = _detail()
    creation_time_ms: int | None = _detail()
    start_time_ms: int | None = _detail()
    end_time_ms: int | None = _detail()
