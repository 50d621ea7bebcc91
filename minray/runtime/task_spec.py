"""What the owner knows about one task it submitted, from submit to result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ArgPlaceholder:
    """Stands in the pickled arguments for a top-level ObjectRef; the worker swaps in its value."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def __reduce__(self):
        return ArgPlaceholder, (self.index,)


#: ends the scheduling key of tasks that must not run again (max_retries=0)
NOT_RETRIABLE = ("max_retries", 0)


@dataclass(slots=True)
class TaskSpec:
    task_id: bytes
    name: str
    function_id: bytes
    function_blob: bytes
    args_blob: bytes
    #: top-level ref arguments: [(placeholder index, object_id, owner), ...]
    placeholders: list
    #: refs nested inside the pickled arguments, [[object_id, owner], ...]
    nested_refs: list
    num_returns: int
    return_ids: tuple
    resources: dict
    max_retries: int
    retry_exceptions: Any  #: False, True, or a tuple of exception classes
    env_vars: Any
    # the next three stay the shared empty tuple until a ref argument needs them (a
    # million queued tasks with no ref arguments then cost a million fewer lists)
    #: [[index, kind, payload], ...] once the placeholders' values are known
    resolved: list | tuple = ()
    #: refs nested in resolved values (granted to the worker with nested_refs)
    resolved_refs: list | tuple = ()
    #: values fetched from other owners whose holds are released at the end
    fetched: list | tuple = ()
    attempts: int = 0
    #: why its latest attempt runs: "" (the first), "RETRY" (the last one failed) or
    #: "RECONSTRUCTION" (a result was lost: runtime/reconstruction.py)
    attempt_reason: str = ""
    oom_kills: int = 0  #: times the memory monitor killed it (retried on their own budget)
    argument_losses: int = 0  #: times a worker could not read a lost argument's copy
    cancelled: bool = False
    #: the task or actor call of this process that submitted it (b"": driver code); what
    #: cancel(recursive=True) of that one follows
    parent: bytes = b""
    #: an actor's creation task: what its worker needs to host it (see actor_executor.py)
    actor: dict | None = None
    actor_resources: dict | None = None  #: (None for tasks: one dict fewer per task)
    #: None (DEFAULT), "SPREAD", or ("affinity", node id hex, soft)
    strategy: Any = None
    #: the namespace of the job that submitted it (get_actor in the task looks there)
    namespace: str = ""
    #: the placement group it runs in: [group id, bundles, capture_child_tasks], or None
    placement: Any = None
    #: a generator task's GeneratorCall (runtime/generator_streams.py), else None
    generator: Any = None
    #: its runtime_env packages, {"working_dir": uri, "py_modules": [uri]}, or None
    runtime_env: Any = None
    #: (attempt, reason) its last PENDING_NODE_ASSIGNMENT event told (pending_reasons.py)
    pending_reason: Any = None

    # What only an actor call carries (ActorTaskSpec's fields): for any other task these
    # class-level values, so a million queued tasks do not each hold seven more slots.
    actor_id = b""
    method = ""
    lifetime_refs = ()
    ready = False
    concurrency_group = ""
    out_of_order = False
    told = None

    @property
    def scheduling_key(self) -> tuple:
        if self.actor is not None:  # an actor's worker is its own: never shared
            return ("actor", self.actor["actor_id"])
        key = tuple(sorted(self.resources.items()))
        if self.max_retries == 0:  # its leases are the memory monitor's last choice
            key += (NOT_RETRIABLE,)
        return key if self.strategy is None else (key, self.strategy)

    def argument_ref_ids(self) -> list | tuple:
        if not (self.placeholders or self.nested_refs or self.lifetime_refs):
            return ()  # (most tasks: no ref arguments)
        return (
            [oid for _, oid, _ in self.placeholders]
            + [oid for oid, _ in self.nested_refs]
            + [oid for oid, _ in self.lifetime_refs]
        )


@dataclass(slots=True)
class ActorTaskSpec(TaskSpec):
    """An actor call: a TaskSpec with what only actor calls carry."""

    actor_id: bytes = b""  #: the actor called
    method: str = ""
    #: the handle's lifetime ref, counted while the call is pending
    lifetime_refs: list | tuple = ()
    #: all top-level ref arguments have values (calls are pushed in order once ready)
    ready: bool = False
    #: the concurrency group it asked for ("": its method's, or the default)
    concurrency_group: str = ""
    #: a call to an actor with allow_out_of_order_execution: pushed once ready
    out_of_order: bool = False
    #: its task-event info (task_events.task_info), kept for its last event
    told: Any = None
