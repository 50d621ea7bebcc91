"""Debug mode: ``init(local_mode=True)`` runs tasks and actor calls in the driver.

For the classroom (Ray removed ``local_mode`` in 2.54; students still ask for
it): every ``f.remote()`` and ``actor.m.remote()`` runs right away, on the
calling thread, one at a time, so ``pdb``, ``print`` and coverage see the code
where it runs; the function itself runs (not a copy), so it sees and changes the
module's globals. The API stays the same: ``.remote()`` returns ObjectRefs, the
results are stored for ``get`` as usual (the node still runs, for the object
store and the state API), and errors are the same ``RayTaskError(...)``s,
dependency errors and ``ActorDiedError``s. Arguments and results are still
pickled, so a task cannot change the objects it was passed.

Not in debug mode: generator tasks and methods (refused with a clear error),
retries after a crash (nothing crashes on its own), resources and scheduling
strategies (accepted, ignored), ``exit_actor()``.
"""

from __future__ import annotations

import asyncio
import inspect
import pickle
import threading
from typing import TYPE_CHECKING, Any

from .. import ids
from ..exceptions import ActorDiedError
from ..protocol.messages import ValueKind
from .actor_executor import READY, TERMINATE
from .argument_resolver import dependency_error
from .task_context import TaskContext
from .task_executor import _pickle_error, task_error
from .task_outcomes import release_arguments
from .task_outputs import store_output
from .task_spec import ArgPlaceholder

if TYPE_CHECKING:
    from .core_worker import CoreWorker
    from .task_spec import TaskSpec


class _ArgumentFailed(Exception):
    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


class _LocalActor:
    """An actor's instance in the driver; an async one's calls run on its own loop."""

    def __init__(self, class_name: str, is_async: bool):
        self.class_name = class_name
        self.instance: Any = None
        self.death: str = ""  #: why it is dead, once it is
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        if is_async:
            self.loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self.loop.run_forever, name=f"minray-local-{class_name}", daemon=True
            )
            self._thread.start()

    def run(self, result: Any) -> Any:
        if self.loop is not None and inspect.isawaitable(result):
            return asyncio.run_coroutine_threadsafe(_awaited(result), self.loop).result()
        return result

    def end(self, why: str) -> None:
        self.death = self.death or why
        self.instance = None
        loop, self.loop = self.loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(5)
            if not loop.is_running():
                loop.close()


async def _awaited(awaitable) -> Any:
    return await awaitable


class LocalRunner:
    """Runs the specs that ``task_builder`` makes, in this process, as they come."""

    def __init__(self, worker: CoreWorker):
        self.worker = worker
        self._functions: dict[bytes, Any] = {}
        self._actors: dict[bytes, _LocalActor] = {}

    # --- tasks ----------------------------------------------------------------------------

    def run_task(self, spec: TaskSpec) -> None:
        function = self._function(spec)
        attempts = 0
        while True:
            entries, failed = self._run(spec, spec.name, lambda a, k: function(*a, **k))
            if not (failed and self._retry(spec, entries, attempts)):
                break
            attempts += 1
            spec.attempts += 1
        self._finish(spec, entries)

    def _retry(self, spec: TaskSpec, entries: list, attempts: int) -> bool:
        """An exception is retried as in Ray: with ``retry_exceptions``, within max_retries."""
        if not spec.retry_exceptions or (0 <= spec.max_retries <= attempts):
            return False
        if spec.retry_exceptions is True:
            return True
        try:
            return isinstance(pickle.loads(entries[0][1]).cause, spec.retry_exceptions)
        except Exception:
            return False

    def known(self, function_id: bytes, function: Any) -> None:
        """The caller's own function or class object: run it, not an unpickled copy, so
        it shares the module's globals (as in Ray's local mode)."""
        self._functions[function_id] = function

    def _function(self, spec: TaskSpec) -> Any:
        function = self._functions.get(spec.function_id)
        if function is None:
            function = self._functions[spec.function_id] = pickle.loads(spec.function_blob)
        return function

    # --- actors ---------------------------------------------------------------------------

    def create_actor(self, spec: TaskSpec) -> None:
        info = spec.actor
        actor = self._actors[info["actor_id"]] = _LocalActor(info["class_name"], info["is_async"])
        cls = self._function(spec)

        def construct(args, kwargs):
            actor.instance = cls(*args, **kwargs)

        entries, failed = self._run(spec, spec.name, construct)
        if failed:
            error = pickle.loads(entries[0][1])
            actor.end(f"The actor died because of an error raised in its creation task, {error}")
        release_arguments(self.worker, spec)

    def call_actor(self, spec: TaskSpec) -> None:
        actor = self._actors.get(spec.actor_id)
        if actor is None or actor.instance is None:
            why = actor.death if actor is not None else "it is not in this process"
            error = ActorDiedError(spec.actor_id.hex(), f"The actor is dead: {why}")
            entries = [[ValueKind.ERROR, _pickle_error(error), []]] * max(spec.num_returns, 1)
            self._finish(spec, entries)
            return
        name = f"{actor.class_name}.{spec.method}"
        if spec.method == TERMINATE:
            actor.end(f"{TERMINATE} was called")
            self._finish(spec, [[ValueKind.INLINE, [pickle.dumps(None)], []]][: spec.num_returns])
            return
        if spec.method == READY:
            entries, _ = self._run(spec, name, lambda a, k: True)
        else:
            method = getattr(actor.instance, spec.method)
            entries, _ = self._run(spec, name, lambda a, k: actor.run(method(*a, **k)))
        self._finish(spec, entries)

    def forget_actor(self, actor_id: bytes) -> None:
        """The actor's handles are all gone."""
        actor = self._actors.pop(actor_id, None)
        if actor is not None:
            actor.end("all its handles went out of scope")

    def close(self) -> None:
        """minray is shutting down: the actors go (their event loops with them)."""
        for actor in self._actors.values():
            actor.end("minray was shut down")
        self._actors.clear()

    # --- running one call -------------------------------------------------------------------

    def _run(self, spec: TaskSpec, name: str, call) -> tuple[list, bool]:
        """Run ``call(args, kwargs)`` as task ``spec``; its return entries, and whether it
        failed (the entries are then its error)."""
        worker = self.worker
        context = TaskContext(
            spec.task_id, name, [], spec.task_id[-ids.JOB_ID_SIZE :], spec.namespace,
            spec.placement, spec.env_vars,
        )  # fmt: skip
        try:
            args, kwargs = self._arguments(spec)
        except _ArgumentFailed as e:
            return self._errors(spec, e.error), True
        token = worker.set_task_context(context)
        try:
            result = call(args, kwargs)
            if spec.actor is not None:
                return [], False
            return self._returns(spec, result), False
        except BaseException as e:  # noqa: B036 - everything a task raises goes to its caller
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            return self._errors(spec, task_error(name, e, worker.node_ip)), True
        finally:
            worker.reset_task_context(token)

    def _arguments(self, spec: TaskSpec) -> tuple[list, dict]:
        args, kwargs = pickle.loads(spec.args_blob)
        if not spec.placeholders:
            return args, kwargs
        worker, values = self.worker, {}
        for index, object_id, owner in spec.placeholders:
            stored = worker.run_sync(worker.objects.fetch(object_id, owner))
            try:
                if stored.kind == ValueKind.ERROR:
                    worker.error_seen(object_id)
                    raise _ArgumentFailed(dependency_error(spec, stored.payload))
                values[index] = worker.objects.deserialize(object_id, stored)
            finally:
                worker.objects.release_if_remote(stored, owner)
        args = [values[a.index] if type(a) is ArgPlaceholder else a for a in args]
        kwargs = {k: values[v.index] if type(v) is ArgPlaceholder else v for k, v in kwargs.items()}
        return args, kwargs

    def _returns(self, spec: TaskSpec, result: Any) -> list:
        n = spec.num_returns
        if n == 0:
            return []
        values = [result] if n == 1 else list(result)
        if len(values) != n:
            raise ValueError(f"Task returned {len(values)} objects, but num_returns={n}.")
        entries = []
        for object_id, value in zip(spec.return_ids, values):
            stored = store_output(
                self.worker, object_id, value, self.worker.address,
                f"the return value of task {spec.name}", "the return value",
            )  # fmt: skip
            entries.append([stored.kind, stored.payload, stored.refs])
        return entries

    @staticmethod
    def _errors(spec: TaskSpec, error: BaseException) -> list:
        payload = _pickle_error(error)
        return [[ValueKind.ERROR, payload, []] for _ in range(max(spec.num_returns, 1))]

    def _finish(self, spec: TaskSpec, entries: list) -> None:
        """Store the results for ``get`` (on the loop thread, before anything submitted
        after this can look for them), then let the arguments go."""
        worker = self.worker
        if entries and spec.return_ids:
            worker.run_sync(_call(worker.store_returns, spec.return_ids, entries, worker.address))
        release_arguments(worker, spec)


async def _call(fn, *args) -> None:
    fn(*args)
