"""Concurrency groups of an actor: which group a call runs in, and what runs each group.

As in Ray 2.x, ``@remote(concurrency_groups={"io": 2, "compute": 4})`` gives an
actor named groups besides its *default group*, whose size is ``max_concurrency``
(1 for a sync actor, 1000 for an async one). A method joins a group with
``@method(concurrency_group="io")``; one call picks another group with
``actor.m.options(concurrency_group="compute").remote()``. A group runs at most
its size of calls at once, and a busy group never holds up another:

* sync and threaded actors: each named group is a pool of that many threads
  (``ThreadGroup``); the default group runs as without groups (the main thread,
  or the pool of ``max_concurrency`` threads);
* async actors: each named group is an event loop of its own, on a thread of its
  own, running at most that many calls at once (``LoopGroup``); the default
  group is the main thread's loop. A sync method in a group runs on that
  group's thread and blocks only that group (as in Ray).

Names are checked where they are given: the option's shape at ``@remote`` and
``.options()`` (``check_concurrency_groups``), each method's group when the
actor is created (``check_method_groups``), a call's group at
``.options(concurrency_group=...)``. The worker checks once more and fails a call
whose group it does not know with the same message (Ray's worker crashes instead).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Mapping
from typing import Any

#: the default group's name in a call: the call names no group
DEFAULT = ""


def check_concurrency_groups(value: Any) -> None:
    """The ``concurrency_groups`` option: None, or a dict of group name -> max concurrency."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise TypeError(
            "The type of keyword 'concurrency_groups' must be dict (group name -> the calls "
            f"the group may run at once), but received type {type(value)}"
        )
    for name, size in value.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"Concurrency group names must be non-empty str, got {name!r}.")
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(
                f"The max concurrency of concurrency group {name!r} must be int, but received "
                f"type {type(size)}"
            )
        if size < 1:
            raise ValueError(
                f"The max concurrency of concurrency group {name!r} must be at least 1 (the "
                f"calls the group may run at once), got {size}."
            )


def check_group_name(value: Any) -> None:
    """``@method(concurrency_group=...)`` and ``.options(concurrency_group=...)``: a name."""
    if not isinstance(value, str) or not value:
        raise TypeError(
            f"concurrency_group must be the name of one of the actor's concurrency groups "
            f"(a non-empty str), got {value!r}."
        )


def unknown_group_message(class_name: str, group: str, groups: Mapping | tuple) -> str:
    """What a caller is told when a method or a call names a group the actor lacks."""
    return (
        f"The concurrency group {group!r} is not defined for actor {class_name}, whose groups "
        f"are {sorted(groups)} (methods that name none run in the default group). Define it "
        "with @minray.remote(concurrency_groups={...}) or "
        "Cls.options(concurrency_groups={...})."
    )


def check_method_groups(class_name: str, method_groups: Mapping, groups: Mapping) -> None:
    """At creation: every ``@method(concurrency_group=...)`` names one of the actor's groups."""
    for method, group in sorted(method_groups.items()):
        if group not in groups:
            raise ValueError(
                f"{class_name}.{method}: " + unknown_group_message(class_name, group, groups)
            )


def group_of(method: str, requested: str, method_groups: Mapping) -> str:
    """The group a call runs in: the one the call asked for, else its method's, else the
    default (``DEFAULT``)."""
    return requested or method_groups.get(method, DEFAULT)


class ThreadGroup:
    """A named group of a sync or threaded actor: ``size`` threads of its own."""

    def __init__(self, name: str, size: int, class_name: str):
        self.name = name
        self._pool = concurrent.futures.ThreadPoolExecutor(
            size, thread_name_prefix=f"{class_name}.{name}"
        )

    def submit(self, function: Callable, *args: Any) -> concurrent.futures.Future:
        """Run ``function(*args)`` on one of the group's threads."""
        return self._pool.submit(function, *args)

    def stop(self, wait: bool = False) -> None:
        """Stop taking calls (queued ones are dropped); ``wait``: until running ones end."""
        self._pool.shutdown(wait=wait, cancel_futures=True)


class LoopGroup:
    """A named group of an async actor: an event loop on a thread of its own, running at
    most ``size`` calls at once (the caller takes ``semaphore`` around each call)."""

    def __init__(self, name: str, size: int, class_name: str):
        self.name = name
        self.loop = asyncio.new_event_loop()
        self.semaphore = asyncio.Semaphore(size)  # bound to self.loop at its first use
        self._thread = threading.Thread(target=self._run, name=f"{class_name}.{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def submit(self, coroutine_function: Callable, *args: Any) -> concurrent.futures.Future:
        """Run ``coroutine_function(*args)`` as a task on the group's loop."""
        return asyncio.run_coroutine_threadsafe(coroutine_function(*args), self.loop)

    def stop(self, wait: bool = False) -> None:
        """Stop the loop (calls still running on it are dropped); ``wait``: until closed."""
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:  # closed already
            pass
        if wait:
            self._thread.join()


def make_groups(sizes: Mapping, is_async: bool, class_name: str) -> dict:
    """The executors of an actor's named groups, by name."""
    kind = LoopGroup if is_async else ThreadGroup
    return {name: kind(name, size, class_name) for name, size in sizes.items()}
