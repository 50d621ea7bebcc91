"""Live changes of the task graph, for the dashboard's event streams (one per open page).

The head calls :meth:`GraphFeed.note` with each batch of task events it applies; while
no page listens that is all it does. Otherwise the ids of the tasks the events touch
gather for ``flush_s``; then the feed turns them into nodes once (task_graph) and
offers the same encoded change to every listener. It keeps this rule: the head never
waits for a browser. A listener's queue is bounded: a page that reads too slowly loses
what it has not read and is told to load the whole graph again (``reset``). When more
than ``max_changed`` tasks change at once, listeners are told to reload (``reload``)
rather than sent every node: the page then asks ``/api/graph``, which summarises.

No aiohttp here: the stream that writes a listener's changes is dashboard_graph.py.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Callable

from .task_graph import changed_nodes
from .task_table import TaskTable

#: seconds task ids gather before their nodes go out (one change per this, at most)
FLUSH_S = 0.25
#: changes a listener keeps unread before it is reset
QUEUE_CAPACITY = 64
#: tasks one change carries at most; past it listeners are told to reload
MAX_CHANGED = 500
#: pages that may listen at once
MAX_LISTENERS = 16

#: an item of a listener's queue: (event name, its data as JSON text)
Item = tuple[str, str]


class TooManyListeners(Exception):
    """MAX_LISTENERS pages listen already."""


class Listener:
    """One page's unread changes (bounded) and the wake-up of the stream that sends them."""

    def __init__(self, capacity: int = QUEUE_CAPACITY):
        self.capacity = capacity
        self.queue: collections.deque[Item] = collections.deque()
        self.resets = 0  #: times its unread changes were dropped
        self.closed = False
        self._wake = asyncio.Event()

    def offer(self, item: Item) -> None:
        """Queue a change; when the queue is full, drop it all for one ``reset``."""
        if len(self.queue) >= self.capacity:
            self.queue.clear()
            self.resets += 1
            item = ("reset", json.dumps({"reason": "the page read too slowly"}))
        self.queue.append(item)
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def next(self, timeout: float) -> Item | None:
        """The next change; None after ``timeout`` seconds without one, or once closed."""
        if not self.queue and not self.closed:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                return None
        if self.closed or not self.queue:
            return None
        return self.queue.popleft()


class GraphFeed:
    """The task table's changes, gathered and offered to every listening page."""

    def __init__(
        self,
        table: TaskTable,
        flush_s: float = FLUSH_S,
        max_changed: int = MAX_CHANGED,
        max_listeners: int = MAX_LISTENERS,
        call_later: Callable[[float, Callable[[], None]], asyncio.TimerHandle] | None = None,
    ):
        self.table = table
        self.flush_s = flush_s
        self.max_changed = max_changed
        self.max_listeners = max_listeners
        self.listeners: set[Listener] = set()
        self._call_later = call_later
        self._changed: dict[bytes, None] = {}  #: task ids touched since the last flush
        self._overflow = 0  #: events of tasks past max_changed
        self._timer: asyncio.TimerHandle | None = None

    def listen(self, capacity: int = QUEUE_CAPACITY) -> Listener:
        """A new listener. TooManyListeners when max_listeners already listen."""
        if len(self.listeners) >= self.max_listeners:
            raise TooManyListeners(
                f"{self.max_listeners} pages already follow the task graph; close one"
            )
        listener = Listener(capacity)
        self.listeners.add(listener)
        return listener

    def leave(self, listener: Listener) -> None:
        listener.close()
        self.listeners.discard(listener)

    def note(self, events: list) -> None:
        """The head applied these task events (the loop's thread). Cheap: ids only."""
        if not self.listeners:
            return
        changed = self._changed
        room = self.max_changed - len(changed)
        for event in events:
            if event[0] not in changed:
                if room <= 0:
                    self._overflow += 1
                    continue
                changed[event[0]] = None
                room -= 1
        if self._timer is None:
            call_later = self._call_later or asyncio.get_running_loop().call_later
            self._timer = call_later(self.flush_s, self.flush)

    def flush(self) -> None:
        """Offer what changed since the last flush to every listener."""
        self._timer = None
        if self._overflow:
            item = ("reload", json.dumps({"changed_more_than": self.max_changed}))
        else:
            nodes = changed_nodes(self.table, self._changed)
            item = ("changes", json.dumps({"nodes": nodes}))
        self._changed = {}
        self._overflow = 0
        for listener in self.listeners:
            listener.offer(item)

    def close(self) -> None:
        """Close every listener (their streams end) and stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for listener in list(self.listeners):
            self.leave(listener)
