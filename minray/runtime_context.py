"""``minray.get_runtime_context()``: ids of the job, node, worker and task running now."""

from __future__ import annotations

import logging

from . import api

logger = logging.getLogger("minray")


class RuntimeContext:
    """A view of the current process's place in the cluster."""

    def __init__(self, worker):
        self._worker = worker

    def get_job_id(self) -> str:
        """The id of the job (one per driver) this code runs for."""
        return self._worker.current_job_id().hex()

    def get_node_id(self) -> str:
        return self._worker.node_id.hex()

    def get_worker_id(self) -> str:
        return self._worker.worker_id.hex()

    def get_task_id(self) -> str | None:
        task = self._worker.current_task
        if task is None:
            logger.warning(
                "This method is only available when the process is a worker. Current mode: %s",
                self._worker.mode,
            )
            return None
        return task.task_id.hex()

    def get_task_name(self) -> str | None:
        task = self._worker.current_task
        return task.name if task is not None else None

    def _actor(self):
        executor = self._worker.executor
        return executor.actor if executor is not None else None

    def get_actor_id(self) -> str | None:
        """The id of the actor this code runs in (None in the driver and in tasks)."""
        actor = self._actor()
        return actor.actor_id.hex() if actor is not None else None

    def get_actor_name(self) -> str | None:
        actor = self._actor()
        return (actor.name or None) if actor is not None else None

    @property
    def was_current_actor_reconstructed(self) -> bool:
        """True in an actor that was restarted after its worker died."""
        actor = self._actor()
        if actor is None:
            raise AssertionError("This method should only be called inside an actor.")
        return actor.restarted

    def is_canceled(self) -> bool:
        """Whether the running task (or sync actor call) was cancelled by its caller."""
        task = self._worker.current_task
        actor = self._actor()
        if task is None:
            raise RuntimeError("This method is only available in a task or an actor method.")
        if actor is not None:
            if actor.mode == "async":
                raise RuntimeError("is_canceled() is not supported in async actors.")
            return task.task_id in actor.cancelled
        return self._worker.executor.interrupts.was_cancelled(task.task_id)

    def get_placement_group_id(self) -> str | None:
        """The id of the placement group this task or actor runs in (None if none)."""
        task = self._worker.current_task
        placement = task.placement if task is not None else None
        return placement[0].hex() if placement else None

    @property
    def current_placement_group_id(self) -> str | None:
        """Deprecated in Ray: use :meth:`get_placement_group_id`."""
        return self.get_placement_group_id()

    @property
    def should_capture_child_tasks_in_placement_group(self) -> bool:
        """Whether tasks and actors started here run in this one's placement group
        (``placement_group_capture_child_tasks=True``); True in the driver, as in Ray."""
        task = self._worker.current_task
        if task is None:
            return True
        return bool(task.placement and task.placement[2])

    @property
    def namespace(self) -> str:
        return api._auto_init().current_namespace()

    def get_accelerator_ids(self) -> dict[str, list[str]]:
        """The accelerator ids this task or actor may use, as strings: ``{"GPU": ["0"]}``
        (empty lists in the driver and in tasks that asked for no GPU)."""
        task = self._worker.current_task
        return {"GPU": [str(g) for g in task.gpu_ids] if task is not None else []}

    def get_assigned_resources(self) -> dict:
        task = self._worker.current_task
        if task is None:
            raise AssertionError("get_assigned_resources() is only available in a task.")
        return {"GPU": float(len(task.gpu_ids))} if task.gpu_ids else {}


def get_runtime_context() -> RuntimeContext:
    return RuntimeContext(api._auto_init())
