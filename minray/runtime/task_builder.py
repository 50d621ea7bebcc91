"""Turning ``f.remote(*args, **kwargs)`` into a TaskSpec on the caller's thread.

Arguments are pickled at call time (later changes to them do not leak into the
task). Top-level ObjectRefs become placeholders the owner resolves to values;
refs nested deeper travel as refs. An argument too large to travel inline is
put into the object store first, as Ray does.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

from .. import ids, serialization
from ..object_ref import ObjectRef
from .generator_streams import GeneratorCall
from .task_spec import ActorTaskSpec, ArgPlaceholder, TaskSpec

if TYPE_CHECKING:
    from .core_worker import CoreWorker


def submit_task(
    worker: CoreWorker,
    *,
    name: str,
    function_id: bytes,
    function_blob: bytes,
    args: tuple,
    kwargs: dict,
    num_returns: int,
    resources: dict,
    max_retries: int,
    retry_exceptions: Any,
    env_vars: dict | None,
    strategy: Any = None,
    placement: list | None = None,
    generator: GeneratorCall | None = None,
    runtime_env: dict | None = None,
) -> list:
    """Build the task, hand it to the submitter and return its result refs (a generator
    task: ``[its OwnedStream]``, opened before the task can report anything)."""
    if generator is not None and worker.local_runner is not None:
        raise ValueError(LOCAL_GENERATORS)
    placeholders: list = []
    # ``keep`` holds refs of arguments put into the object store until they are counted
    args_blob, nested, keep = _pickle_arguments(
        worker, name, list(args), dict(kwargs), placeholders
    )
    task_id = ids.new_task_id(worker.current_job_id())
    return_ids, refs = _count_new_task(worker, task_id, num_returns, placeholders, nested)
    del keep
    if generator is not None:
        refs = [worker.open_stream(task_id, refs[0], generator)]
    if isinstance(retry_exceptions, list):
        retry_exceptions = tuple(retry_exceptions)
    parent = _parent(worker)
    local = worker.local_runner
    submit = worker.submitter.submit if local is None else local.run_task
    submit(
        TaskSpec(
            task_id=task_id,
            name=name,
            function_id=function_id,
            function_blob=function_blob,
            args_blob=args_blob,
            placeholders=placeholders or (),  # (the shared empty tuple: a million queued
            nested_refs=nested or (),  # tasks then hold two million fewer lists)
            num_returns=num_returns,
            return_ids=return_ids,
            resources=resources,
            max_retries=max_retries,
            retry_exceptions=retry_exceptions,
            env_vars=env_vars,
            strategy=strategy,
            namespace=worker.current_namespace(),
            placement=placement,
            generator=generator,
            parent=parent,
            runtime_env=runtime_env,
        )
    )
    _cancel_if_parent_is_cancelling(worker, parent, task_id)
    return refs


def build_actor_creation(
    worker: CoreWorker,
    *,
    actor_id: bytes,
    class_name: str,
    class_id: bytes,
    class_blob: bytes,
    args: tuple,
    kwargs: dict,
    resources: dict,
    actor_resources: dict,
    actor_info: dict,
    env_vars: dict | None,
    strategy: Any = None,
    runtime_env: dict | None = None,
) -> tuple[TaskSpec, list]:
    """The creation task of an actor (not submitted yet); also returns argument refs to keep."""
    placeholders: list = []
    name = f"{class_name}.__init__"
    args_blob, nested, keep = _pickle_arguments(
        worker, name, list(args), dict(kwargs), placeholders
    )
    spec = TaskSpec(
        task_id=ids.actor_creation_task_id(actor_id, worker.current_job_id()),
        name=name,
        function_id=class_id,
        function_blob=class_blob,
        args_blob=args_blob,
        placeholders=placeholders,
        nested_refs=nested,
        num_returns=0,
        return_ids=(),
        resources=resources,
        max_retries=0,
        retry_exceptions=False,
        env_vars=env_vars,
        actor=actor_info,
        actor_resources=actor_resources,
        namespace=worker.current_namespace(),
        strategy=strategy,
        runtime_env=runtime_env,
    )
    return spec, keep


def submit_actor_creation(worker: CoreWorker, spec: TaskSpec, lifetime_id: bytes) -> None:
    """Count the creation's arguments and submit it; the actor lives while lifetime_id does."""
    with worker._lock:
        worker.refs.add_owned(lifetime_id)
        worker.refs.add_submitted(
            [[oid, owner] for _, oid, owner in spec.placeholders] + spec.nested_refs
        )
    worker.own_actor(spec.actor["actor_id"], lifetime_id, spec)
    if worker.local_runner is not None:
        worker.local_runner.create_actor(spec)
        return
    if spec.actor["detached"]:  # it outlives this process: the node keeps its creation
        worker.keep_creation(spec)
    worker.submitter.submit(spec)


def submit_actor_task(
    worker: CoreWorker,
    *,
    actor_id: bytes,
    method: str,
    name: str,
    args: tuple,
    kwargs: dict,
    num_returns: int,
    max_retries: int,
    lifetime_ref: ObjectRef | None,
    concurrency_group: str = "",
    out_of_order: bool = False,
    generator: GeneratorCall | None = None,
) -> list:
    """Build an actor call, hand it to the actor submitter and return its result refs (a
    generator method: ``[its OwnedStream]``)."""
    if generator is not None and worker.local_runner is not None:
        raise ValueError(LOCAL_GENERATORS)
    placeholders: list = []
    args_blob, nested, keep = _pickle_arguments(
        worker, name, list(args), dict(kwargs), placeholders
    )
    task_id = ids.new_actor_task_id(actor_id)
    lifetime = [[lifetime_ref._id, lifetime_ref._owner]] if lifetime_ref is not None else []
    return_ids, refs = _count_new_task(
        worker, task_id, num_returns, placeholders, nested + lifetime
    )
    del keep
    if generator is not None:
        refs = [worker.open_stream(task_id, refs[0], generator)]
    parent = _parent(worker)
    local = worker.local_runner
    submit = worker.actors.submit if local is None else local.call_actor
    submit(
        ActorTaskSpec(
            task_id=task_id,
            name=name,
            function_id=b"",
            function_blob=b"",
            args_blob=args_blob,
            placeholders=placeholders,
            nested_refs=nested,
            num_returns=num_returns,
            return_ids=return_ids,
            resources={},
            max_retries=max_retries,
            retry_exceptions=False,
            env_vars=None,
            actor_id=actor_id,
            method=method,
            lifetime_refs=lifetime,
            concurrency_group=concurrency_group,
            out_of_order=out_of_order,
            generator=generator,
            parent=parent,
        )
    )
    _cancel_if_parent_is_cancelling(worker, parent, task_id)
    return refs


LOCAL_GENERATORS = (
    "Generator tasks and methods do not run in local_mode (debug mode): start minray without "
    "local_mode=True to use them, or return a list instead of yielding."
)


def _parent(worker: CoreWorker) -> bytes:
    """The task or actor call submitting a new one here (b"" in driver code)."""
    context = worker.current_task
    return context.task_id if context is not None else b""


def _cancel_if_parent_is_cancelling(worker: CoreWorker, parent: bytes, task_id: bytes) -> None:
    """A task submitted by one cancelled recursively whose interrupt has not come yet (it
    may wait while minray's own code runs: see task_interrupt.py) is cancelled too: the
    cancel's scan of what the parent submitted came too early to see it."""
    executor = worker.executor
    if parent and executor is not None and executor.interrupts.cancelling_recursively(parent):
        worker.call_soon(worker.cancel_owned, task_id, False, True)


def _count_new_task(
    worker: CoreWorker, task_id: bytes, num_returns: int, placeholders: list, other_refs: list
) -> tuple[tuple, list]:
    """Own the results of a new task and count the refs it holds until it finishes.

    Returns the result ids and the ObjectRefs to them.
    """
    if num_returns == 1:  # (most tasks)
        return_ids: tuple = (ids.object_id_for(task_id, 1),)
    else:
        return_ids = tuple(ids.object_id_for(task_id, i + 1) for i in range(num_returns))
    refs = worker.refs
    with worker._lock:
        for object_id in return_ids:
            refs.add_owned(object_id)
        if placeholders or other_refs:
            refs.add_submitted([[oid, owner] for _, oid, owner in placeholders] + other_refs)
    address = worker.address
    return return_ids, [ObjectRef(object_id, address) for object_id in return_ids]


#: the pickled arguments of a call without any
_NO_ARGUMENTS = pickle.dumps(([], {}), protocol=5)


def _pickle_arguments(
    worker: CoreWorker, name: str, args: list, kwargs: dict, placeholders: list
) -> tuple[bytes, list, list]:
    def swap(value):
        if isinstance(value, ObjectRef):
            placeholders.append((len(placeholders), value._id, value._owner))
            return ArgPlaceholder(len(placeholders) - 1)
        return value

    if not args and not kwargs:
        return _NO_ARGUMENTS, [], []
    args = [swap(a) for a in args]
    kwargs = {k: swap(v) for k, v in kwargs.items()}
    # out of band first: large buffers are only looked at, not copied, to learn the size
    s = _serialize_arguments(name, args, kwargs, out_of_band=True)
    keep: list = []
    if s.size <= worker.config.max_inline_bytes:
        if s.buffers:  # small buffers travel inside the pickle
            s = _serialize_arguments(name, args, kwargs)
    else:
        threshold = worker.config.max_inline_bytes // 4
        for container, keys in ((args, range(len(args))), (kwargs, list(kwargs))):
            for key in keys:
                if type(container[key]) is ArgPlaceholder:
                    continue
                big = serialization.serialize(container[key])
                if big.size > threshold:
                    keep.append(worker.put_serialized(big))
                    container[key] = swap(keep[-1])
        s = _serialize_arguments(name, args, kwargs)
    limit = worker.config.max_frame_bytes // 2
    if len(s.pickled) > limit:
        raise ValueError(
            f"The arguments of task {name} take {len(s.pickled):,} bytes when pickled, more "
            f"than the {limit:,} a task message may carry. Pass large data as numpy arrays or "
            "bytes (they go to shared memory), or minray.put() it and pass the ObjectRef."
        )
    return s.pickled, s.refs, keep


def _serialize_arguments(
    name: str, args: list, kwargs: dict, out_of_band: bool = False
) -> serialization.Serialized:
    try:
        return serialization.serialize((args, kwargs), out_of_band=out_of_band)
    except Exception as e:
        labelled = [(f"argument {i}", a) for i, a in enumerate(args)]
        labelled += [(f"argument {k!r}", v) for k, v in kwargs.items()]
        for label, value in labelled:
            try:
                serialization.serialize(value)
            except Exception:
                detail = serialization.describe_unpicklable(value, label)
                raise TypeError(
                    f"Could not serialize the arguments of task {name}: {detail}"
                ) from e
        raise TypeError(f"Could not serialize the arguments of task {name}: {e}") from e
