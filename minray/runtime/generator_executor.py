"""The worker's side of generator tasks: run the generator, report each value as it comes.

A task or actor call with ``PushTask.generator`` set (``[back-pressure, skip]``)
is a generator call. The thread that runs it iterates what the function
returned and, for each value, stores it as object ``i + 2`` of the task (inline,
or a shared segment its owner owns, like any result) and sends it to the owner
as a ``GeneratorItem`` on the connection the task came by, ahead of the task's
reply. The first ``skip`` values are not reported: the owner has them from an
earlier run of the task. The reply itself carries one value, None, or the
error the generator raised.

Back-pressure: each report is then a request; the owner's answer says how many
items the caller has taken. After reporting item ``i``, the worker waits while
``i + 1 - taken >= back-pressure`` (``taken`` as last heard: it only grows, so
the worker never runs ahead of the limit). Async generators wait without
blocking their event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from typing import TYPE_CHECKING, Any

from .. import ids
from ..protocol.connection import Answer, Connection
from ..protocol.messages import GeneratorItem, PushActorTask, PushTask
from .generator_state import FIRST_ITEM_INDEX
from .task_interrupt import interruptible
from .task_outputs import store_output

if TYPE_CHECKING:
    from .core_worker import CoreWorker

#: ``taken`` when the caller dropped its generator: never wait again
_NOBODY_WAITS = 1 << 62


class _Reporter:
    """Sends one generator call's values to its owner (the thread that runs it)."""

    def __init__(self, worker: CoreWorker, msg: PushTask | PushActorTask, conn: Connection):
        self.worker = worker
        self.msg = msg
        self.conn = conn
        self.backpressure, self.skip = msg.generator
        self.taken = 0  #: items the caller has taken, as last heard

    def report(self, index: int, value: Any) -> concurrent.futures.Future | None:
        """Store and send one value; returns the answer to wait for, if the limit is reached."""
        if index < self.skip:
            return None  # the owner has it from an earlier run
        msg = self.msg
        object_id = ids.object_id_for(msg.task_id, index + FIRST_ITEM_INDEX)
        what = f"a value yielded by {msg.name}"
        stored = store_output(self.worker, object_id, value, msg.caller, what, "the yielded value")
        item = GeneratorItem(msg.task_id, index, stored.kind, stored.payload, stored.refs)
        if self.backpressure == -1:
            self.conn.send_threadsafe(item)
            return None
        answered: concurrent.futures.Future = concurrent.futures.Future()
        self.conn.request_then(item, lambda answer: self._answered(answer, answered), True)
        if index + 1 - self.taken >= self.backpressure:
            return answered
        return None

    def _answered(self, answer: Answer, answered: concurrent.futures.Future) -> None:
        """Loop thread: the owner answered a report (or the connection is gone)."""
        if answer.exception() is not None:
            self.taken = _NOBODY_WAITS  # the owner is gone: nobody will take anything
        else:
            consumed = answer.result().consumed
            self.taken = _NOBODY_WAITS if consumed < 0 else max(self.taken, consumed)
        if not answered.done():
            answered.set_result(None)


@interruptible  # the generator's code runs from here; reporting a value is deferred
def run_generator(worker: CoreWorker, msg, conn: Connection, result: Any) -> None:
    """Iterate what a generator call returned, reporting each value; None at the end."""
    reporter = _Reporter(worker, msg, conn)
    for index, value in enumerate(_iterate(msg, result)):
        wait = reporter.report(index, value)
        if wait is not None:
            wait.result()


async def run_generator_async(worker: CoreWorker, msg, conn: Connection, result: Any) -> None:
    """The same for an async actor: async generators too, waiting without blocking the loop."""
    if inspect.isawaitable(result) and not inspect.isasyncgen(result):
        result = await result
    if not inspect.isasyncgen(result):
        run_generator(worker, msg, conn, result)  # a sync generator blocks the loop, as in Ray
        return
    reporter = _Reporter(worker, msg, conn)
    index = 0
    async for value in result:
        wait = reporter.report(index, value)
        if wait is not None:
            await asyncio.wrap_future(wait)
        index += 1


def _iterate(msg, result: Any):
    if isinstance(result, (str, bytes)) or not hasattr(result, "__iter__"):
        raise TypeError(
            f"{msg.name} was called as a generator (num_returns='streaming' or 'dynamic') "
            f"but returned {type(result).__name__}, not a generator; use yield, or another "
            "num_returns."
        )
    return iter(result)
