"""What the main thread is running now: the task or actor call, for the runtime
context, ``get_gpu_ids()`` and log prefixes. A context variable, so each thread
(and each asyncio task of an async actor) has its own."""

from __future__ import annotations

import contextvars


class TaskContext:
    """What the main thread is running right now (for the runtime context and logs)."""

    __slots__ = ("task_id", "name", "gpu_ids", "job_id", "namespace", "placement", "env_vars")

    def __init__(
        self,
        task_id: bytes,
        name: str,
        gpu_ids: list,
        job_id: bytes,
        namespace: str,
        placement: list | None = None,
        env_vars: dict | None = None,
    ):
        self.task_id = task_id
        self.name = name
        self.gpu_ids = gpu_ids
        self.job_id = job_id
        self.namespace = namespace  #: of the job it belongs to
        #: the placement group it runs in, [group id, bundles, capture_child_tasks], or None
        self.placement = placement
        #: its runtime_env's env_vars, which what it submits inherits (as in Ray)
        self.env_vars = env_vars


#: the task or actor call running on this thread (or asyncio task)
_task_context: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
    "minray_task", default=None
)
