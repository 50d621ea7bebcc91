"""Hosting an actor in a worker: its instance, and how its calls run.

A worker hosts at most one actor, for good. Its calls arrive in each caller's
submission order (see actor_submitter.py) and run

* **sync** (the default): one at a time, on the main thread, in arrival order;
* **threaded** (``max_concurrency > 1``, no ``async def`` methods): on a pool
  of ``max_concurrency`` threads;
* **async** (any ``async def`` method): as coroutines on one event loop, which
  the main thread runs, at most ``max_concurrency`` (default 1000) at once.
  Sync methods of an async actor run on that loop too, and block it (as in Ray).

Concurrency groups (``concurrency_groups={"io": 2}``) add executors beside
these, one per named group (concurrency_groups.py): calls of a group's methods
go there, the rest run as above, in the *default group*.

``exit_actor()``, ``__ray_terminate__`` and the node's ``ExitActor`` (all
handles gone) end the actor on purpose: the node learns it first, the call that
asked gets ActorDiedError, calls running now end, then the main thread runs
``__ray_shutdown__`` and the atexit handlers and the process exits (actor_exit.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import queue
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from ..exceptions import ActorDiedError, AsyncioActorExit, TaskCancelledError
from ..protocol.connection import Reply
from ..protocol.messages import ActorExiting, ActorStarted, PushActorTask, PushTask, TaskReply
from .actor_exit import ActorExit, construct, exit_message, exit_process, run_exit_hooks
from .call_threads import CallThreads
from .concurrency_groups import LoopGroup, group_of, make_groups, unknown_group_message
from .generator_executor import run_generator_async
from .task_context import TaskContext

if TYPE_CHECKING:
    from .task_executor import TaskExecutor

#: methods every actor has (Ray's names)
TERMINATE = "__ray_terminate__"
READY = "__ray_ready__"
EXIT_DELAY_S = 0.05  #: time for the last replies to leave before the process exits
#: put in TaskExecutor's queue to wake the main thread when the actor exits
EXIT = object()


class HostedActor:
    def __init__(self, executor: TaskExecutor, instance: Any, msg: PushTask, mode: str):
        info = msg.actor
        self.executor = executor
        self.worker = executor.worker
        self.instance = instance
        self.actor_id: bytes = info["actor_id"]
        self.class_name: str = info["class_name"]
        self.name: str = info["name"]
        self.namespace: str = info["namespace"]
        self.placement: list | None = info.get("placement")  #: the group it was created in
        self.restarted: bool = info.get("restarted", False)
        self.gpu_ids = msg.gpu_ids
        self.job_id = msg.job_id
        self.env_vars = msg.env_vars  #: its runtime_env's, set for its whole life
        self.mode = mode
        self.max_concurrency = info["max_concurrency"]
        self.log_name = self.class_name
        self.cancelled: set[bytes] = set()
        self.exited: ActorDiedError | None = None  #: set once the actor exits on purpose
        self._finishing = False
        self._exit_lock = threading.Lock()  #: threaded calls may exit at once
        self._running: dict[bytes, asyncio.Task] = {}
        self._pool: CallThreads | None = None  #: a threaded actor's threads
        self.loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None
        #: the named concurrency groups' executors, and which methods run in which
        self.method_groups: dict[str, str] = info.get("method_groups") or {}
        self.groups = make_groups(
            info.get("concurrency_groups") or {}, mode == "async", self.class_name
        )
        self._group_calls: set[concurrent.futures.Future] = set()  #: calls in groups now
        #: __ray_terminate__ calls: the group calls that came before them, to wait for
        self._before_terminate: dict[bytes, list] = {}
        if mode == "threaded":
            self._pool = CallThreads(self.max_concurrency, self.class_name)
        elif mode == "async":
            self.loop = asyncio.new_event_loop()

    @classmethod
    def create(cls, executor: TaskExecutor, msg: PushTask):
        """Load the class and arguments, run ``__init__``; tell the node how it went first."""
        info = msg.actor
        worker = executor.worker
        if info["is_async"]:
            mode = "async"
        elif info["max_concurrency"] > 1:
            mode = "threaded"
        else:
            mode = "sync"
        hosted = None
        try:
            user_class = executor._function(msg.function_id, msg.function_blob)
            args, kwargs = executor._arguments(msg)
            hosted = cls(executor, None, msg, mode)
            if mode == "async":  # __init__ may create asyncio objects: give it the actor's loop
                asyncio.set_event_loop(hosted.loop)
            executor.creating = hosted  # for exit_actor() in __init__
            hosted.instance = construct(user_class, args, kwargs, hosted._keep)
        except BaseException as e:  # noqa: B036 - the caller sees it as ActorDiedError
            from .task_executor import _pickle_error, task_error

            executor.creating = None
            if msg.task_id in executor.exit_callers:  # exit_actor() in __init__: on purpose
                executor.exit_callers.discard(msg.task_id)
                executor.actor = hosted
                raise hosted.begin_exit(
                    exit_message(f"exit_actor() was called in {info['class_name']}.__init__")
                ) from None

            error = task_error(f"{info['class_name']}.__init__", e, executor.worker.node_ip)
            print(f"Exception raised in creation task: {error}", file=sys.stderr, flush=True)
            worker.call_node(ActorStarted(info["actor_id"], worker.address, _pickle_error(error)))
            raise
        executor.creating = None
        custom_repr = type(hosted.instance).__repr__ is not object.__repr__
        if custom_repr:
            try:
                hosted.log_name = repr(hosted.instance)
            except Exception:
                pass
        executor.actor = hosted  # before the node tells callers where it is
        worker.call_node(ActorStarted(hosted.actor_id, worker.address, None))
        return hosted

    def _keep(self, instance: Any) -> None:
        self.instance = instance

    def refuse(self, msg: PushActorTask) -> TaskReply | None:
        """The reply for a call that must not run (the actor exited, or it was cancelled)."""
        if self.exited is not None:
            error = self.exited
        elif msg.task_id in self.cancelled:
            error = TaskCancelledError(msg.task_id.hex())
        else:
            return None
        self.worker.release_holds(msg.arg_refs)
        self.executor.generator_conns.pop(msg.task_id, None)
        return TaskReply(msg.task_id, self.executor._error_entries(msg, error), True)

    def context(self, msg: PushActorTask) -> TaskContext:
        return TaskContext(
            msg.task_id, msg.name, self.gpu_ids, self.job_id, self.namespace, self.placement,
            self.env_vars,
        )  # fmt: skip

    # --- sync and threaded calls --------------------------------------------------------------

    def call(self, msg: PushActorTask) -> Any:
        """Run one call on this thread; returns the method's result."""
        if msg.method == TERMINATE:
            concurrent.futures.wait(self._before_terminate.pop(msg.task_id, ()))
            raise ActorExit(f"{TERMINATE} was called")
        if msg.method == READY:
            return True
        method = getattr(self.instance, msg.method)
        args, kwargs = self.executor._arguments(msg)
        return method(*args, **kwargs)

    def dispatch(self, msg: PushActorTask, reply: Reply) -> bool:
        """Loop thread: start a call that does not run on the main thread's queue (a call of
        a threaded or async actor, or of a named concurrency group); False: queue it there."""
        if self.groups and self._dispatch_to_group(msg, reply):
            return True
        if self.mode == "sync":
            return False
        if self.mode == "threaded":
            earlier = self._pool.mark() if msg.method == TERMINATE else None
            self._pool.submit(self._run_threaded, msg, reply, earlier)
        else:
            self.loop.call_soon_threadsafe(self._start_async, msg, reply)
        return True

    def _dispatch_to_group(self, msg: PushActorTask, reply: Reply) -> bool:
        """Start a call of a named group; False for a call of the default group."""
        if msg.method == TERMINATE:  # default group; it waits for the group calls before it
            self._before_terminate[msg.task_id] = list(self._group_calls)
            return False
        name = group_of(msg.method, msg.concurrency_group, self.method_groups)
        if not name:
            return False
        group = self.groups.get(name)
        if group is None:  # (callers check names; a stale handle may not know them)
            self.worker.release_holds(msg.arg_refs)
            error = ValueError(unknown_group_message(self.class_name, name, self.groups))
            reply.send(self.executor.reply(msg, error=error))
            return True
        if isinstance(group, LoopGroup):
            done = group.submit(self._run_async, msg, reply, group.semaphore)
        else:
            done = group.submit(self._run_threaded, msg, reply, None)
        self._group_calls.add(done)
        done.add_done_callback(self._group_calls.discard)
        return True

    def _run_threaded(self, msg: PushActorTask, reply: Reply, earlier: int | None) -> None:
        if earlier is not None:  # __ray_terminate__ lets the calls before it finish
            self._pool.wait_before(earlier)
        reply.post(self.executor.execute(msg))  # up to max_concurrency threads reply at once

    # --- async calls ------------------------------------------------------------------------------

    def run_loop(self) -> None:
        """Main thread: run the async actor's event loop until the worker stops."""
        asyncio.set_event_loop(self.loop)
        self._semaphore = asyncio.Semaphore(self.max_concurrency)
        self.loop.run_forever()

    def _start_async(self, msg: PushActorTask, reply: Reply) -> None:
        self.loop.create_task(self._run_async(msg, reply))

    async def _run_async(
        self, msg: PushActorTask, reply: Reply, semaphore: asyncio.Semaphore | None = None
    ) -> None:
        """Run one call on this thread's loop (the default group's, or a named group's)."""
        if semaphore is None:
            if self._semaphore is None:
                self._semaphore = asyncio.Semaphore(self.max_concurrency)
            semaphore = self._semaphore
        if msg.method == TERMINATE:  # let the calls that came before it finish
            earlier = self._tasks_on_this_loop()
            in_groups = self._before_terminate.pop(msg.task_id, ())
            earlier += [asyncio.wrap_future(done) for done in in_groups]
            await asyncio.gather(*earlier, return_exceptions=True)
        async with semaphore:
            task = asyncio.current_task()
            self._running[msg.task_id] = task
            try:
                result = await self._execute_async(msg)
            finally:
                self._running.pop(msg.task_id, None)
        reply.send(result)

    async def _execute_async(self, msg: PushActorTask) -> TaskReply:
        executor = self.executor
        refused = self.refuse(msg)
        if refused is not None:
            return refused
        with executor.call_scope(msg, self.context(msg)):
            try:
                result = self.call(msg)
                if msg.generator is not None:  # each value reported as it comes; None at the end
                    conn = executor.generator_conns[msg.task_id]
                    result = await run_generator_async(self.worker, msg, conn, result)
                elif inspect.isawaitable(result):
                    result = await result
            except AsyncioActorExit:  # exit_actor(): reply() sees this call asked for it
                return executor.reply(msg, error=ActorExit())
            except asyncio.CancelledError:
                return executor.reply(msg, error=KeyboardInterrupt())
            except BaseException as e:  # noqa: B036 - everything a call raises goes to its caller
                return executor.reply(msg, error=e)
            return executor.reply(msg, result)

    def cancel(self, task_id: bytes) -> None:
        """Loop thread: a caller cancelled one of its calls."""
        self.cancelled.add(task_id)
        task = self._running.get(task_id)
        if task is not None:
            task.get_loop().call_soon_threadsafe(task.cancel)

    def _tasks_on_this_loop(self) -> list:
        """The calls running on the current loop, but the current one."""
        me = asyncio.current_task()
        return [
            t for t in list(self._running.values()) if t is not me and t.get_loop() is me.get_loop()
        ]

    # --- ending ----------------------------------------------------------------------------

    def begin_exit(self, message: str, tell_node: bool = True) -> ActorDiedError:
        """The actor ends on purpose (any thread): later calls are refused with ``message``;
        the main thread then finishes (see ``finish``). ``tell_node``: False when the node
        asked (ExitActor, on the loop thread, which must not wait on the node)."""
        with self._exit_lock:
            if self.exited is not None:
                return self.exited
            self.exited = ActorDiedError(self.actor_id.hex(), message)
        if tell_node:
            self.worker.call_node(ActorExiting(self.actor_id, message))
        if self.mode == "async":
            self.loop.call_soon_threadsafe(self._stop_loop_when_idle)
        else:
            self.executor._tasks.put(EXIT)  # after the calls queued before the exit
        return self.exited

    def _stop_loop_when_idle(self) -> None:
        async def stop() -> None:
            await asyncio.gather(*self._tasks_on_this_loop(), return_exceptions=True)
            self.loop.stop()

        self.loop.create_task(stop())

    def finish(self) -> None:
        """Main thread, once exiting: refuse what is queued, let running calls end, run
        ``__ray_shutdown__`` and the atexit handlers once, then end the process."""
        if self._finishing:
            return
        self._finishing = True
        self._refuse_queued()
        if self._pool is not None:
            self._pool.wait_before(self._pool.mark())
            self._pool.stop()
        concurrent.futures.wait(list(self._group_calls))
        for group in self.groups.values():
            group.stop()
        run_exit_hooks(self.instance, self.class_name, self.loop)
        self._refuse_queued()
        worker = self.worker
        if worker.node is not None and not worker.node.closed:  # (its calls' RUNNING events)
            worker.loop.call_soon_threadsafe(worker.task_events.flush, worker.node.send)
        time.sleep(EXIT_DELAY_S)  # the last replies and task events leave
        exit_process()

    def _refuse_queued(self) -> None:
        while True:
            try:
                item = self.executor._tasks.get_nowait()
            except queue.Empty:
                return
            if item is not None and item is not EXIT and type(item[0]) is PushActorTask:
                item[1].send(self.refuse(item[0]))

    def stop(self) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._pool is not None:
            self._pool.stop()
        for group in self.groups.values():
            group.stop()
