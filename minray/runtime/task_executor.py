"""The worker's side of a task: take pushed tasks, run them on the main thread, reply.

The loop thread queues each PushTask; the main thread runs it: load the
function (cached by id), rebuild the arguments (top-level refs arrive as
values), call it, and turn the result into return entries — inline when small,
a shared-memory segment owned by the caller when large. An exception becomes a
RayTaskError carrying the remote traceback, minus minray's own frames.
"""

from __future__ import annotations

import inspect
import os
import pickle
import queue
import sys
import traceback
from typing import TYPE_CHECKING, Any

from .. import ids, serialization
from ..debugger import remote_pdb
from ..exceptions import RayError, RayTaskError, TaskCancelledError, UnserializableException
from ..proctitle import set_title
from ..protocol.connection import DEFERRED, Connection
from ..protocol.messages import (
    TASK_NOT_STARTED,
    CancelTask,
    ExitActor,
    FreeObjects,
    PushActorTask,
    PushTask,
    TaskReply,
    ValueKind,
)
from ..runtime_env.setup import WorkerEnvs
from .actor_executor import EXIT, HostedActor
from .actor_exit import ActorExit, exit_message
from .generator_executor import run_generator
from .held_tasks import HeldTasks
from .lost_objects import ARGUMENT_LOST, LocationLost
from .task_context import TaskContext
from .task_events import raised
from .task_interrupt import TaskInterrupts, interruptible
from .task_outputs import store_output
from .task_spec import ArgPlaceholder

if TYPE_CHECKING:
    from .core_worker import CoreWorker

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: a line a worker writes to its log files when it starts a task with a new name
LOG_MARKER = "\x1e"
#: seconds a worker waits for its next task before its title says minray::IDLE
IDLE_TITLE_AFTER_S = 0.05


class TaskExecutor:
    def __init__(self, worker: CoreWorker):
        self.worker = worker
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._functions: dict[bytes, Any] = {}
        #: function blobs that came with a task handed back unstarted (loaded when needed)
        self._function_blobs: dict[bytes, bytes] = {}
        #: plain tasks pushed behind the running one (pipelining), until the main thread starts them
        self.held = HeldTasks(worker, self._hand_back)
        self._log_name = ""
        self.running = 0  #: tasks or actor calls running now
        #: cancelling the task on the main thread
        self.interrupts = TaskInterrupts(
            lambda delay, fn: worker.call_soon(_call_later, worker, delay, fn)
        )
        self.actor: HostedActor | None = None  #: set once this worker hosts an actor
        self.creating: HostedActor | None = None  #: the actor whose __init__ runs now
        self.creation_pushed = b""  #: the actor whose creation task reached this worker
        self.exit_callers: set[bytes] = set()  #: calls that called exit_actor()
        #: generator calls not finished: the connection their values go back on
        self.generator_conns: dict[bytes, Connection] = {}
        self.envs = WorkerEnvs(worker)  #: runtime_env packages (runtime_env/setup.py)
        self._left_env: tuple | None = None  #: what the running task's runtime_env changed

    # --- loop thread --------------------------------------------------------------------------

    def on_push(self, conn: Connection, msg: PushTask | PushActorTask) -> object:
        conn.info.setdefault("peer", msg.caller)
        actor = self.actor
        if type(msg) is PushActorTask and (actor is None or actor.actor_id != msg.actor_id):
            raise ValueError(f"this worker does not host actor {msg.actor_id.hex()}")
        self.worker.take_grants(msg.arg_refs, msg.caller)
        if type(msg) is PushActorTask and actor.exited is not None:
            return actor.refuse(msg)  # exiting: nothing more runs
        if msg.generator is not None:
            self.generator_conns[msg.task_id] = conn
        if type(msg) is PushTask and msg.actor is None:  # (an actor's creation: not cancelled)
            self.interrupts.pushed(msg.task_id)
        elif type(msg) is PushTask:
            self.creation_pushed = msg.actor["actor_id"]
        reply = conn.reply_later()  # the thread that runs the call sends the reply itself
        if type(msg) is PushTask and msg.actor is None:
            self.held.hold(msg, reply)  # (until the main thread takes it, or it goes back)
        if type(msg) is not PushActorTask or not actor.dispatch(msg, reply):
            self._tasks.put((msg, reply))  # the main thread runs it
        return DEFERRED

    def _hand_back(self, msg: PushTask, reply) -> None:
        """Loop thread: a held task goes back to its owner unstarted (held_tasks.py)."""
        self.interrupts.finished(msg.task_id)
        self.generator_conns.pop(msg.task_id, None)
        if msg.function_blob is not None and msg.function_id not in self._functions:
            self._function_blobs[msg.function_id] = msg.function_blob  # later tasks lack it
        self.worker.release_holds(msg.arg_refs)
        reply.send(TaskReply(msg.task_id, [], TASK_NOT_STARTED))

    def on_cancel(self, msg: CancelTask) -> None:
        """Loop thread: the owner cancels a task or actor call pushed here; ``recursive``:
        what it submitted from here first (while this process lives to tell them)."""
        if self.held.give_back(msg.task_id):
            return  # it never started: its owner fails it as cancelled
        here = self.actor is None and self.interrupts.has(msg.task_id)
        if here and not msg.force:  # marked before the scan below: what it submits from
            self.interrupts.cancel(msg.task_id, msg.recursive)  # now on is cancelled too
        sent = self.worker.cancel_children(msg.task_id, msg.force) if msg.recursive else []
        if self.actor is not None:
            self.actor.cancel(msg.task_id)
        elif not here:
            return  # finished already
        elif msg.force:  # as in Ray: the worker exits (and what it owns dies with it)
            self.worker.exit_once_sent(sent)
        else:
            self.interrupts.interrupt()

    def on_exit_actor(self, msg: ExitActor) -> None:
        """Loop thread: the node ends the actor gracefully (its handles are all gone)."""
        if self.actor is not None and self.actor.actor_id == msg.actor_id:
            self.actor.begin_exit(msg.reason, tell_node=False)

    def stop(self) -> None:
        self._tasks.put(None)
        if self.actor is not None:
            self.actor.stop()

    # --- main thread --------------------------------------------------------------------------

    def run_forever(self) -> None:
        self.interrupts.install()
        while True:
            try:
                item = self._tasks.get_nowait()
            except queue.Empty:
                item = self._next_or_idle()
            if item is None:
                return
            if item is EXIT:  # the actor exits: this ends the process
                self.actor.finish()
                return
            msg, reply = item
            if type(msg) is PushTask and msg.actor is None and not self.held.take(reply):
                continue  # handed back to its owner while it waited
            reply.send(self.execute(msg))
            if self.actor is not None and self.actor.mode == "async":
                self.actor.run_loop()  # the main thread is the async actor's event loop now
                if self.actor.exited is not None:
                    self.actor.finish()
                return

    def _next_or_idle(self) -> Any:
        """The next item, waiting for it; titled minray::IDLE (ps) if none comes soon (under
        load the next task comes within microseconds: no title written twice per task)."""
        try:
            return self._tasks.get(timeout=IDLE_TITLE_AFTER_S)
        except queue.Empty:
            if self.actor is None:
                set_title("IDLE")
            return self._tasks.get()

    def execute(self, msg: PushTask | PushActorTask) -> TaskReply:
        """Run a task, an actor's creation or an actor call (on the calling thread)."""
        if type(msg) is PushActorTask:
            refused = self.actor.refuse(msg)
            if refused is not None:
                return refused
            return self._run(msg, self.actor.call, self.actor.context(msg))
        gpu_ids = msg.gpu_ids
        context = TaskContext(
            msg.task_id, msg.name, gpu_ids, msg.job_id, msg.namespace, msg.placement, msg.env_vars
        )
        if msg.actor is not None:
            _apply_env(msg.env_vars, gpu_ids)  # for the actor's whole life
            return self._run(msg, self._create_actor, context)
        saved_env = _apply_env(msg.env_vars, gpu_ids)
        try:
            return self._run(msg, self._call_function, context)
        finally:
            _restore_env(saved_env)
            if self._left_env is not None:
                self.envs.leave(self._left_env)
                self._left_env = None
            self.interrupts.finished(msg.task_id)

    def _run(self, msg, call, context: TaskContext) -> TaskReply:
        with self.call_scope(msg, context):
            try:
                if type(msg) is PushTask:  # on the main thread: cancel() may interrupt it
                    result = self.interrupts.run(msg.task_id, self._call, msg, call)
                else:
                    result = self._call(msg, call)
            except BaseException as e:  # noqa: B036 - everything a task raises goes to its caller
                return self.reply(msg, error=e)
            return self.reply(msg, result)

    @interruptible  # (it only calls: the task's code, or a builtin given as the task)
    def _call(self, msg: PushTask | PushActorTask, call) -> Any:
        result = call(msg)
        if msg.generator is not None:  # report each value as it comes; None at the end
            conn = self.generator_conns[msg.task_id]
            result = run_generator(self.worker, msg, conn, result)
        elif msg.num_returns > 1 and inspect.isgenerator(result):
            result = _collect(result)  # its code runs now, where a cancel can interrupt it
        return result

    def call_scope(self, msg: PushTask | PushActorTask, context: TaskContext) -> _CallScope:
        """What surrounds every task or actor call: its context, log name, and argument holds."""
        return _CallScope(self, msg, context)

    def reply(
        self, msg: PushTask | PushActorTask, result: Any = None, error: BaseException | None = None
    ) -> TaskReply:
        """The reply for a call that returned ``result`` or raised ``error``."""
        exit_detail = self._exit_detail(msg, error)
        if exit_detail is not None:  # the actor ends: this call fails, whatever it returned
            error = self.actor.begin_exit(exit_message(exit_detail))
            return TaskReply(msg.task_id, self._error_entries(msg, error), True)
        if type(error) is _ArgumentLost:
            lost = [[ValueKind.ERROR, pickle.dumps(error.lost), []]] * max(msg.num_returns, 1)
            return TaskReply(msg.task_id, lost, ARGUMENT_LOST)
        if error is None:
            try:
                return TaskReply(msg.task_id, self._returns(msg, result), False)
            except BaseException as e:  # noqa: B036 - e.g. an unpicklable result
                error = e
        remote_pdb.post_mortem_if_enabled(error)  # MINRAY_DEBUG_POST_MORTEM=1: paused here
        if isinstance(error, SystemExit):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)  # as in Ray: the worker exits and the task counts as crashed
        elif isinstance(error, KeyboardInterrupt):
            error = task_error(msg.name, TaskCancelledError(msg.task_id.hex()), self.worker.node_ip)
        else:
            error = task_error(msg.name, error, self.worker.node_ip)
        attempt = msg.attempt if type(msg) is PushTask else 0  # (an actor call's: always 0)
        self.worker.task_events.record(msg.task_id, attempt, "FAILED", raised(error))
        return TaskReply(msg.task_id, self._error_entries(msg, error), True)

    def _exit_detail(self, msg: PushTask | PushActorTask, error: BaseException | None):
        """How this actor call ended the actor on purpose, or None if it did not."""
        if self.actor is None or type(msg) is not PushActorTask:
            return None
        if msg.task_id in self.exit_callers:  # even if it caught the exception, as in Ray
            self.exit_callers.discard(msg.task_id)
            return f"exit_actor() was called in {msg.name}"
        if isinstance(error, ActorExit):
            return error.reason
        if isinstance(error, SystemExit):
            return f"sys.exit({error.code!r}) was called in {msg.name}"
        return None

    @interruptible
    def _call_function(self, msg: PushTask) -> Any:
        if msg.runtime_env is not None:  # before the function: it may import from them
            self._left_env = self.envs.enter(msg.runtime_env)
        function = self._function(msg.function_id, msg.function_blob)
        try:
            args, kwargs = self._arguments(msg)
        except LocationLost as e:  # the owner rebuilds it and sends the task again
            raise _ArgumentLost(e) from None
        return function(*args, **kwargs)

    def _create_actor(self, msg: PushTask) -> None:
        if msg.runtime_env is not None:  # for the actor's whole life
            self.envs.enter(msg.runtime_env)
        self.actor = HostedActor.create(self, msg)

    def _mark_log(self, name: str) -> None:
        if name != self._log_name:
            self._log_name = name
            for stream in (sys.stdout, sys.stderr):
                stream.write(f"{LOG_MARKER}{name}\n")
                stream.flush()

    def _function(self, function_id: bytes, blob: bytes | None):
        function = self._functions.get(function_id)
        if function is None:
            if blob is None:
                blob = self._function_blobs.pop(function_id, None)
            if blob is None:
                raise RayError("the function of this task was never sent to this worker")
            function = self._functions[function_id] = pickle.loads(blob)
        return function

    def _arguments(self, msg: PushTask) -> tuple[list, dict]:
        args, kwargs = pickle.loads(msg.args_blob)
        if not msg.resolved_args:
            return args, kwargs
        values = {}
        for index, kind, payload in msg.resolved_args:
            if kind == ValueKind.INLINE:
                values[index] = serialization.from_inline(payload)
            else:
                values[index] = serialization.read_segment(self.worker.objects.map_shared(payload))
        args = [values[a.index] if type(a) is ArgPlaceholder else a for a in args]
        kwargs = {k: values[v.index] if type(v) is ArgPlaceholder else v for k, v in kwargs.items()}
        return args, kwargs

    def _returns(self, msg: PushTask | PushActorTask, result: Any) -> list:
        n = msg.num_returns
        if n == 0:
            return []
        if n == 1 and type(result) in serialization.SCALARS:  # (the common small result)
            pickled = pickle.dumps(result, protocol=5)
            if len(pickled) <= self.worker.config.max_inline_bytes:
                return [[ValueKind.INLINE, [pickled], []]]
        if n == 1 and not inspect.isgenerator(result):
            values = [result]
        else:
            try:
                values = list(result)
            except TypeError as e:
                raise TypeError(
                    f"Task {msg.name} has num_returns={n} but returned "
                    f"{type(result).__name__}, which is not a sequence"
                ) from e
            if len(values) != n:
                raise ValueError(f"Task returned {len(values)} objects, but num_returns={n}.")
        entries: list = []
        inline = 0
        try:
            for i, value in enumerate(values):
                entries.append(self._return_entry(msg, i, value))
                if entries[-1][0] == ValueKind.INLINE:
                    inline += sum(len(part) for part in entries[-1][1])
            if inline > self.worker.config.max_frame_bytes // 2:
                raise ValueError(
                    f"The {n} return values of task {msg.name} take {inline:,} bytes inline, "
                    "more than a reply may carry; return fewer, larger objects (numpy arrays "
                    "and bytes over 100 KiB go to shared memory)."
                )
        except BaseException:
            shared = [
                msg.task_id + (i + 1).to_bytes(4, "little")
                for i, entry in enumerate(entries)
                if entry[0] == ValueKind.SHARED
            ]
            if shared:  # the task fails as a whole: drop the results already stored
                self.worker.call_soon(self.worker.node.send, FreeObjects(shared))
            raise
        return entries

    def _return_entry(self, msg: PushTask, index: int, value: Any) -> list:
        object_id = ids.object_id_for(msg.task_id, index + 1)
        what = f"the return value of task {msg.name}"
        stored = store_output(self.worker, object_id, value, msg.caller, what, "the return value")
        return [stored.kind, stored.payload, stored.refs]

    def _error_entries(self, msg: PushTask, error: BaseException) -> list:
        payload = _pickle_error(error)
        return [[ValueKind.ERROR, payload, []] for _ in range(max(msg.num_returns, 1))]


@interruptible  # (it only runs the task's code: a generator collected for num_returns=N,
#  in _call, inside the task's window)
def _collect(result: Any) -> list:
    return list(result)


class _ArgumentLost(Exception):
    """An argument's shared-memory copy could not be read (its node died)."""

    def __init__(self, lost: LocationLost):
        super().__init__(str(lost))
        self.lost = lost


class _CallScope:
    """The ``with`` block of TaskExecutor.call_scope (a class: this runs for every call)."""

    __slots__ = ("executor", "msg", "context", "token")

    def __init__(self, executor: TaskExecutor, msg: PushTask | PushActorTask, context: TaskContext):
        self.executor = executor
        self.msg = msg
        self.context = context

    def __enter__(self) -> None:
        executor, msg = self.executor, self.msg
        worker = executor.worker
        if type(msg) is PushTask:  # (where: the batch's source; what: the owner tells)
            worker.task_events.record(msg.task_id, msg.attempt, "RUNNING")
        else:  # an actor call: its owner tells only of its end, so say what it is
            told = (msg.name, "ACTOR_TASK", executor.actor.job_id, msg.actor_id, {}, ())
            worker.task_events.record(msg.task_id, 0, "RUNNING", told)
        self.token = worker.set_task_context(self.context)
        executor.running += 1
        if executor.actor is not None:
            executor._mark_log(executor.actor.log_name)
        else:  # a task, or an actor's creation: the process's title too (ps: minray::name)
            name = msg.actor["class_name"] if msg.actor is not None else msg.name
            executor._mark_log(name)
            set_title(name)

    def __exit__(self, *exc_info) -> None:
        executor = self.executor
        executor.running -= 1
        if self.msg.generator is not None:
            executor.generator_conns.pop(self.msg.task_id, None)
        executor.worker.reset_task_context(self.token)
        executor.worker.release_holds(self.msg.arg_refs)


def _call_later(worker: CoreWorker, delay: float, fn) -> None:
    worker.loop.call_later(delay, fn)


def _apply_env(env_vars: dict | None, gpu_ids: list) -> dict:
    if not env_vars and not gpu_ids:  # (most tasks: nothing to set, nothing to restore)
        return _NOTHING_SAVED
    changes = dict(env_vars or {})
    if gpu_ids:
        changes["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpu_ids)
    saved = {}
    for key, value in changes.items():
        saved[key] = os.environ.get(key)
        os.environ[key] = str(value)
    return saved


#: what _apply_env saved when it changed nothing (shared: never written to)
_NOTHING_SAVED: dict = {}


def _restore_env(saved: dict) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def task_error(name: str, error: BaseException, ip: str) -> RayTaskError:
    """Wrap what a task raised, with its traceback minus minray's own frames (``ip``: the
    address of the node it ran on)."""
    te = traceback.TracebackException.from_exception(error)
    _drop_runtime_frames(te, set())
    lines = list(te.format())
    if lines and lines[0].startswith("Traceback"):
        lines = lines[1:]
    cause = error.cause if isinstance(error, RayTaskError) else error
    return RayTaskError(name, "".join(lines).rstrip(), cause, pid=os.getpid(), ip=ip)


def _drop_runtime_frames(te: traceback.TracebackException, seen: set) -> None:
    """Remove minray's own frames from a traceback and the exceptions chained to it."""
    if id(te) in seen:
        return
    seen.add(id(te))
    te.stack = traceback.StackSummary.from_list(
        [f for f in te.stack if not f.filename.startswith(_PACKAGE_DIR)]
    )
    for chained in (te.__cause__, te.__context__):
        if chained is not None:
            _drop_runtime_frames(chained, seen)


def _pickle_error(error: BaseException) -> bytes:
    try:
        payload = serialization.dumps(error)
    except Exception as e:
        if isinstance(error, RayTaskError):
            cause = error.cause
            error.cause = RayError(
                f"Exception {type(cause).__module__}.{type(cause).__qualname__} isn't "
                f"serializable: {type(e).__name__}: {e}\n{error.traceback_str}"
            )
            print(
                f"minray: the exception of task {error.function_name} could not be "
                f"pickled ({e}); its caller gets a RayTaskError instead.",
                file=sys.stderr,
            )
            return serialization.dumps(error)
        return serialization.dumps(RayError(f"{type(error).__name__}: {error}"))
    try:  # the caller must be able to rebuild it; say so here, where the text is known
        pickle.loads(payload)
    except Exception as e:
        return serialization.dumps(
            UnserializableException(
                "Failed to deserialize exception. Its class cannot be re-created from its pickle "
                f"({type(e).__name__}: {e}); give it an __init__ whose arguments are in self.args "
                f"or a __reduce__ method.\nOriginal exception:\n{error}"
            )
        )
    return payload
