"""What a generator task returns: ObjectRefGenerator (streaming) and DynamicObjectRefGenerator.

``f.remote()`` of a generator function (``num_returns="streaming"``, Ray's
default for generators) returns an :class:`ObjectRefGenerator` at once; it
hands out one ObjectRef per value the task yields, as the worker yields them:
``for ref in gen``, ``next(gen)``, ``async for ref in gen``. If the task fails
(the generator raises, its worker dies and no retry is left, it is cancelled),
the ref after the last value raises that error at ``get``, then iteration stops.
``gen.completed()`` is a ref that is ready when the task ended (None, or its
error). A generator is not thread-safe and cannot be passed to other tasks.

``num_returns="dynamic"`` returns one ObjectRef whose value, once the task
ended, is a :class:`DynamicObjectRefGenerator` of the refs (picklable: pass it
or its ref to other tasks).

``wait_any`` is ``minray.wait`` for lists that hold generators too: a generator
is ready when ``next(gen)`` would not block.
"""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any

from .exceptions import RaySystemError
from .object_ref import ObjectRef
from .runtime.generator_state import Next

if TYPE_CHECKING:
    from .runtime.core_worker import CoreWorker
    from .runtime.generator_streams import OwnedStream

#: how often a thread blocked in next() checks that minray still runs
_ALIVE_CHECK_S = 0.5
#: how long wait() blocks on plain refs before it looks at its generators again
_MIXED_WAIT_SLICE_S = 0.01


class ObjectRefGenerator:
    """The ObjectRefs of a streaming generator task, in the order its values were yielded."""

    def __init__(self, stream: OwnedStream, worker: CoreWorker):
        self._stream = stream
        self._worker = worker
        self._generator_ref = stream.completed  # (Ray's name for it)

    # --- sync iteration ---------------------------------------------------------------------

    def __iter__(self) -> ObjectRefGenerator:
        return self

    def __next__(self) -> ObjectRef:
        """The ref of the next yielded value, waiting for the task to yield it."""
        return self._next_sync(None)

    def _next_sync(self, timeout_s: float | None = None) -> ObjectRef:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            what, ref = self._stream.take()
            if what is Next.STOP:
                raise StopIteration
            if what is not Next.WAIT:
                return ref
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError("the generator task has not yielded its next value yet")
            if not self._worker.alive:
                raise RaySystemError("minray was shut down while next() waited for a generator")
            with self._worker.objects._blocked_in_get():  # a task here lends its CPU meanwhile
                self._stream.wait(_ALIVE_CHECK_S if left is None else min(left, _ALIVE_CHECK_S))

    # --- async iteration --------------------------------------------------------------------

    def __aiter__(self) -> ObjectRefGenerator:
        return self

    async def __anext__(self) -> ObjectRef:
        """``async for``: the next ref, waiting without blocking the event loop."""
        loop = asyncio.get_running_loop()
        while True:
            what, ref = self._stream.take()
            if what is Next.STOP:
                raise StopAsyncIteration
            if what is not Next.WAIT:
                return ref
            if not self._worker.alive:
                raise RaySystemError("minray was shut down while a generator was awaited")
            ready = loop.create_future()

            def wake(ready: asyncio.Future = ready) -> None:
                loop.call_soon_threadsafe(_set_once, ready)

            self._stream.when_ready(wake)
            try:  # (woken, or a look at whether minray still runs)
                await asyncio.wait_for(ready, _ALIVE_CHECK_S)
            except asyncio.TimeoutError:
                pass

    # --- without blocking ---------------------------------------------------------------------

    def completed(self) -> ObjectRef:
        """A ref that is ready when the task ended: None, or the task's error."""
        return self._stream.completed

    def next_ready(self) -> bool:
        """Whether ``next(gen)`` returns a ref now (False once it would raise StopIteration)."""
        return self._stream.peek() in (Next.ITEM, Next.ERROR)

    def is_finished(self) -> bool:
        """Whether everything was handed out: ``next(gen)`` raises StopIteration."""
        return self._stream.peek() is Next.STOP

    # --- what Python generators have and this one does not, as in Ray -----------------------

    def send(self, value: Any):
        raise NotImplementedError("`gen.send` is not supported.")

    def throw(self, *args: Any):
        raise NotImplementedError("`gen.throw` is not supported.")

    def close(self):
        raise NotImplementedError("`gen.close` is not supported.")

    def __reduce__(self):
        raise TypeError(
            "You cannot return or pass a generator to other task. Serializing a "
            "ObjectRefGenerator is not allowed."
        )

    def __del__(self) -> None:
        try:
            self._stream.close()  # items never taken are freed; the task is not cancelled
        except Exception:  # interpreter shutdown
            pass


def _set_once(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


class DynamicObjectRefGenerator:
    """The value of a ``num_returns="dynamic"`` task's ref: the refs of what it yielded.

    Iterating hands each ref out once (as Ray's does); ``len()`` counts those left.
    """

    def __init__(self, refs: list):
        self._refs = list(refs)

    def __iter__(self):
        while self._refs:
            yield self._refs.pop(0)

    def __len__(self) -> int:
        return len(self._refs)


def generator_result(worker: CoreWorker, stream: OwnedStream) -> ObjectRefGenerator | ObjectRef:
    """What ``.remote()`` of a generator call returns: its ObjectRefGenerator, or for
    ``num_returns="dynamic"`` the one ref whose value will be a DynamicObjectRefGenerator."""
    if stream.dynamic_ref is not None:
        warnings.warn(
            'num_returns="dynamic" is deprecated in Ray 2.x; use the streaming generator '
            '(num_returns="streaming", the default for generator functions) instead.',
            DeprecationWarning,
            stacklevel=3,
        )
        return stream.dynamic_ref
    return ObjectRefGenerator(stream, worker)


def wait_any(worker: CoreWorker, refs: list, num_returns: int, timeout: float | None):
    """``minray.wait`` over a list that holds generators (arguments already checked:
    waiting.py)."""
    generators = [r for r in refs if isinstance(r, ObjectRefGenerator)]
    plain = [r for r in refs if not isinstance(r, ObjectRefGenerator)]
    deadline = None if timeout is None else time.monotonic() + timeout
    changed = threading.Event()
    while True:
        changed.clear()
        for generator in generators:
            generator._stream.when_ready(changed.set)
        ready = {id(g) for g in generators if g._stream.peek() is not Next.WAIT}
        if plain:
            ready.update(id(r) for r in worker.objects.wait(plain, len(plain), 0)[0])
        left = None if deadline is None else deadline - time.monotonic()
        if len(ready) >= num_returns or (left is not None and left <= 0):
            break
        if plain:  # block on the refs a moment, then look at the generators again
            need = min(num_returns - len(ready), len(plain))
            slice_s = _MIXED_WAIT_SLICE_S if left is None else min(left, _MIXED_WAIT_SLICE_S)
            if not changed.is_set():
                worker.objects.wait(plain, max(need, 1), slice_s)
        else:
            changed.wait(left)
    chosen = [r for r in refs if id(r) in ready][:num_returns]
    chosen_ids = {id(r) for r in chosen}
    return chosen, [r for r in refs if id(r) not in chosen_ids]
