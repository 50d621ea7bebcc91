"""``ActorPool``: spread work over a fixed set of actors, one item per actor at a time.

Ray's ``ray.util.ActorPool``, built only on minray's public API. The pool keeps
two kinds of state: which actors are idle, and which submitted items are still
unfetched (each with its ObjectRef, its submission index and the actor running
it). An item submitted while no actor is idle waits in ``_pending`` and starts
as soon as a result is fetched and its actor comes back.

Results are fetched either in submission order (``get_next``, ``map``) or in
completion order (``get_next_unordered``, ``map_unordered``). Once an item has
been fetched out of order, asking for the next result *in* order is refused
with a ValueError, as in Ray. Timeouts raise the builtin ``TimeoutError``
(not ``GetTimeoutError``); asking for a result when nothing is pending raises
``StopIteration``. An actor whose item failed with ``ActorDiedError`` does not
come back to the pool.

``fn`` may also return a list of ObjectRefs (a method with ``num_returns=2``):
the item's result is then the list of their values, as in Ray, and the item is
ready once all of them are. (Ray's own pool fails with a TypeError for such
items in ``get_next(timeout=...)`` and ``get_next_unordered``; here they work.)
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import minray
from minray.exceptions import ActorDiedError

_TIMEOUT_MESSAGE = "Timed out waiting for result"


class ActorPool:
    """A fixed pool of actors; ``submit``/``map`` run ``fn(actor, value)`` on an idle one.

    ``fn`` must call a method of the actor and return the ObjectRef it gives (or
    the list of refs of a method with several returns)::

        pool = ActorPool([Worker.remote(), Worker.remote()])
        list(pool.map(lambda actor, v: actor.double.remote(v), [1, 2, 3]))  # [2, 4, 6]
    """

    def __init__(self, actors: Iterable[Any]):
        self._idle_actors: list = list(actors)
        # an item's key is its ref, or the tuple of its refs when fn returned a list
        self._ref_to_item: dict = {}  # unfetched item's key -> (submission index, actor)
        self._index_to_ref: dict[int, Any] = {}  # submission index -> its ref (or list)
        self._next_task_index = 0  # index the next submitted item gets
        self._next_return_index = 0  # index get_next returns next
        self._pending: deque = deque()  # (fn, value) waiting for an idle actor

    # --- submitting ---------------------------------------------------------------------

    def submit(self, fn: Callable[[Any, Any], Any], value: Any) -> None:
        """Run ``fn(actor, value)`` on an idle actor now, or as soon as one is free."""
        if not self._idle_actors:
            self._pending.append((fn, value))
            return
        actor = self._idle_actors.pop()
        ref = fn(actor, value)
        self._ref_to_item[_key(ref)] = (self._next_task_index, actor)
        self._index_to_ref[self._next_task_index] = ref
        self._next_task_index += 1

    def map(self, fn: Callable[[Any, Any], Any], values: Iterable[Any]) -> Iterator[Any]:
        """Submit every value now; the returned generator yields results in input order.

        Results of earlier submissions that were never fetched are discarded first.
        """
        self._discard_unfetched()
        for value in values:
            self.submit(fn, value)
        return self._results(self.get_next)

    def map_unordered(self, fn: Callable[[Any, Any], Any], values: Iterable[Any]) -> Iterator[Any]:
        """Like ``map``, but the generator yields results as they complete."""
        self._discard_unfetched()
        for value in values:
            self.submit(fn, value)
        return self._results(self.get_next_unordered)

    def _results(self, get_one: Callable[[], Any]) -> Iterator[Any]:
        while self.has_next():
            yield get_one()

    def _discard_unfetched(self) -> None:
        """Forget every unfetched result and queued submission; their actors become idle."""
        for _, actor in self._ref_to_item.values():
            self._idle_actors.append(actor)
        self._ref_to_item.clear()
        self._index_to_ref.clear()
        self._pending.clear()
        self._next_return_index = self._next_task_index

    # --- fetching -----------------------------------------------------------------------

    def has_next(self) -> bool:
        """Whether any submitted result is still unfetched."""
        return bool(self._ref_to_item)

    def get_next(self, timeout: float | None = None, ignore_if_timedout: bool = False) -> Any:
        """The next result in submission order.

        Raises TimeoutError if it is not ready within ``timeout`` seconds; with
        ``ignore_if_timedout`` the item is dropped from the pool as well.
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        ref = self._index_to_ref.get(self._next_return_index)
        if ref is None:
            raise ValueError("It is not allowed to call get_next() after get_next_unordered().")
        if timeout is not None and self._first_ready([_key(ref)], timeout) is None:
            if not ignore_if_timedout:
                raise TimeoutError(_TIMEOUT_MESSAGE)
            self._forget(_key(ref), actor_is_alive=True)
            raise TimeoutError(f"{_TIMEOUT_MESSAGE}. The task {ref} has been ignored.")
        return self._fetch(_key(ref))

    def get_next_unordered(
        self, timeout: float | None = None, ignore_if_timedout: bool = False
    ) -> Any:
        """Any next result, whichever is ready first.

        Raises TimeoutError if none is ready within ``timeout`` seconds; with
        ``ignore_if_timedout`` the oldest unfetched item is dropped from the pool.
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        ready = self._first_ready(list(self._ref_to_item), timeout)
        if ready is None:
            if not ignore_if_timedout:
                raise TimeoutError(_TIMEOUT_MESSAGE)
            oldest = self._index_to_ref[min(self._index_to_ref)]
            self._forget(_key(oldest), actor_is_alive=True)
            raise TimeoutError(f"{_TIMEOUT_MESSAGE}. The task {oldest} has been ignored.")
        return self._fetch(ready)

    @staticmethod
    def _first_ready(keys: list, timeout: float | None) -> Any | None:
        """The first of these item keys whose refs are all ready within ``timeout``, or None."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ready: set = set()
        while True:
            for key in keys:
                if all(ref in ready for ref in _refs(key)):
                    return key
            waiting = list(dict.fromkeys(r for key in keys for r in _refs(key) if r not in ready))
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = minray.wait(waiting, num_returns=1, timeout=left)
            if not done:
                return None
            ready.update(done)

    def _fetch(self, key: Any) -> Any:
        """Get the item's value(s) and give its actor back (unless the actor died)."""
        try:
            value = minray.get(list(key) if isinstance(key, tuple) else key)
        except ActorDiedError:
            self._forget(key, actor_is_alive=False)
            raise
        except BaseException:
            self._forget(key, actor_is_alive=True)
            raise
        self._forget(key, actor_is_alive=True)
        return value

    def _forget(self, key: Any, actor_is_alive: bool) -> None:
        index, actor = self._ref_to_item.pop(key)
        del self._index_to_ref[index]
        self._next_return_index = max(self._next_return_index, index + 1)
        if actor_is_alive:
            self._return_actor(actor)

    def _return_actor(self, actor: Any) -> None:
        self._idle_actors.append(actor)
        if self._pending:
            self.submit(*self._pending.popleft())

    # --- managing actors ----------------------------------------------------------------

    def has_free(self) -> bool:
        """Whether an actor is idle and no submission is waiting for one."""
        return bool(self._idle_actors) and not self._pending

    def pop_idle(self) -> Any | None:
        """Take an idle actor out of the pool, or return None if none is free."""
        if self.has_free():
            return self._idle_actors.pop()
        return None

    def push(self, actor: Any) -> None:
        """Add an actor to the pool (it then takes a waiting submission, if any)."""
        busy = [item_actor for _, item_actor in self._ref_to_item.values()]
        if actor in self._idle_actors or actor in busy:
            raise ValueError("Actor already belongs to current ActorPool")
        self._return_actor(actor)


def _key(ref: Any) -> Any:
    """An item's dict key: its ref, or the tuple of its refs."""
    return tuple(ref) if isinstance(ref, list) else ref


def _refs(key: Any) -> tuple:
    return key if isinstance(key, tuple) else (key,)


__all__ = ["ActorPool"]
