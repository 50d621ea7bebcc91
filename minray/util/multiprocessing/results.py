"""What Pool's async calls return: ``AsyncResult`` and the ``imap`` iterators, filled
by the dispatcher thread and read by the caller's thread."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterable
from multiprocessing import TimeoutError
from typing import Any

logger = logging.getLogger("minray.util.multiprocessing")


# --- results ------------------------------------------------------------------------------


class _Job:
    """Work the dispatcher hands out in chunks (dispatcher-thread side of a result)."""

    func: Callable
    mode: int

    def next_chunk(self) -> tuple[int, list] | None:
        """(index of the first item, items) of the next chunk, or None when all are out."""
        raise NotImplementedError

    def deliver(self, start: int, values: list, errors: dict | None) -> None:
        raise NotImplementedError

    def fail(self, start: int, count: int, exc: BaseException) -> None:
        """The whole chunk failed (e.g. its actor died)."""
        raise NotImplementedError

    def abort(self, exc: BaseException) -> None:
        """The pool was terminated: no more chunks; outstanding results raise ``exc``."""
        raise NotImplementedError

    def abort_chunk(self, start: int, count: int, exc: BaseException) -> None:
        """The pool was terminated while this chunk ran (no callbacks are called)."""
        self.fail(start, count, exc)


def _run_callback(callback: Callable, value: Any) -> None:
    try:
        callback(value)
    except Exception:
        logger.exception("A Pool callback raised an exception (ignored).")


class AsyncResult(_Job):
    """The result of ``apply_async``/``map_async``/``starmap_async`` (stdlib's ApplyResult)."""

    def __init__(
        self,
        func: Callable,
        mode: int,
        items: list,
        chunksize: int,
        callback: Callable | None = None,
        error_callback: Callable | None = None,
        single: bool = False,
    ):
        self.func = func
        self.mode = mode
        self._items = items
        self._chunksize = chunksize
        self._callback = callback
        self._error_callback = error_callback
        self._single = single
        self._event = threading.Event()
        self._next_start = 0
        self._chunks_left = -(-len(items) // chunksize) if items else 0
        self._values: list | None = [None] * len(items)
        self._error: BaseException | None = None
        self._error_index = -1
        self._success: bool | None = None
        self._value: Any = None
        if not items:
            self._finish(callbacks=True)

    # caller side
    def ready(self) -> bool:
        return self._event.is_set()

    def successful(self) -> bool:
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return bool(self._success)

    def wait(self, timeout: float | None = None) -> None:
        self._event.wait(timeout)

    def get(self, timeout: float | None = None) -> Any:
        self.wait(timeout)
        if not self.ready():
            raise TimeoutError
        if self._success:
            return self._value
        raise self._value

    # dispatcher side
    def next_chunk(self):
        start = self._next_start
        if self._items is None or start >= len(self._items):
            return None
        self._next_start = start + self._chunksize
        return start, self._items[start : self._next_start]

    def _note_error(self, index: int, exc: BaseException) -> None:
        if self._error is None or index < self._error_index:
            self._error, self._error_index = exc, index

    def deliver(self, start, values, errors):
        if self._event.is_set():
            return
        if errors:
            offset = min(errors)
            self._note_error(start + offset, errors[offset])
        elif self._error is None:
            self._values[start : start + len(values)] = values
        self._chunk_done()

    def fail(self, start, count, exc):
        if self._event.is_set():
            return
        self._note_error(start, exc)
        self._chunk_done()

    def abort(self, exc):
        if self._event.is_set():
            return
        self._note_error(self._next_start, exc)
        self._finish(callbacks=False)

    def abort_chunk(self, start, count, exc):
        self.abort(exc)

    def _chunk_done(self) -> None:
        self._chunks_left -= 1
        if self._chunks_left == 0:
            self._finish(callbacks=True)

    def _finish(self, callbacks: bool) -> None:
        if self._error is None:
            self._success = True
            self._value = self._values[0] if self._single else self._values
            callback = self._callback
        else:
            self._success = False
            self._value = self._error
            callback = self._error_callback
        self._items = self._values = self._error = None
        self._callback = self._error_callback = None
        self.func = None
        if callbacks and callback is not None:
            _run_callback(callback, self._value)
        self._event.set()


#: names the stdlib uses for the same classes
ApplyResult = MapResult = AsyncResult


class _IMapBase(_Job):
    """An iterator over results as they come (imap / imap_unordered); pulls items lazily."""

    def __init__(self, func: Callable, mode: int, iterable: Iterable, chunksize: int):
        self.func = func
        self.mode = mode
        self._iterator = iter(iterable)
        self._chunksize = chunksize
        self._cond = threading.Condition()
        self._next_start = 0  # dispatcher: index of the next item to pull
        self._exhausted = False
        self._length: int | None = None  # known once the input is exhausted

    # caller side
    def __iter__(self):
        return self

    def __next__(self):
        return self.next()

    def next(self, timeout: float | None = None) -> Any:
        with self._cond:
            if not self._cond.wait_for(self._has_next, timeout):
                raise TimeoutError
            ok, value = self._take()
        if ok:
            return value
        raise value

    def _has_next(self) -> bool:
        raise NotImplementedError

    def _take(self) -> tuple[bool, Any]:
        """The next outcome; raises StopIteration at the end (called with the lock held)."""
        raise NotImplementedError

    def _store(self, index: int, outcome: tuple[bool, Any]) -> None:
        raise NotImplementedError

    # dispatcher side
    def next_chunk(self):
        if self._exhausted:
            return None
        start = self._next_start
        items = []
        iterator = self._iterator
        try:
            for _ in range(self._chunksize):
                items.append(next(iterator))
        except StopIteration:
            self._end(start + len(items))
        except Exception as exc:  # the input iterable itself raised: report it in its place
            index = start + len(items)
            with self._cond:
                self._store(index, (False, exc))
            self._end(index + 1)
        if not items:
            return None
        self._next_start = start + len(items)
        return start, items

    def _end(self, length: int) -> None:
        self._exhausted = True
        self._iterator = None
        with self._cond:
            self._length = length
            self._cond.notify_all()

    def deliver(self, start, values, errors):
        with self._cond:
            for offset, value in enumerate(values):
                if errors and offset in errors:
                    self._store(start + offset, (False, errors[offset]))
                else:
                    self._store(start + offset, (True, value))
            self._cond.notify_all()

    def fail(self, start, count, exc):
        with self._cond:
            for index in range(start, start + count):
                self._store(index, (False, exc))
            self._cond.notify_all()

    def abort(self, exc):
        if not self._exhausted:
            with self._cond:
                self._store(self._next_start, (False, exc))
            self._end(self._next_start + 1)


class IMapIterator(_IMapBase):
    """``imap``: results in input order."""

    def __init__(self, *args):
        super().__init__(*args)
        self._outcomes: dict[int, tuple[bool, Any]] = {}
        self._index = 0  # caller: the next index to yield

    def _has_next(self):
        return self._index in self._outcomes or (
            self._length is not None and self._index >= self._length
        )

    def _take(self):
        outcome = self._outcomes.pop(self._index, None)
        if outcome is None:
            raise StopIteration
        self._index += 1
        return outcome

    def _store(self, index, outcome):
        if self._length is None or index < self._length:
            self._outcomes[index] = outcome


class IMapUnorderedIterator(_IMapBase):
    """``imap_unordered``: results in the order they complete."""

    def __init__(self, *args):
        super().__init__(*args)
        self._outcomes: collections.deque = collections.deque()
        self._yielded = 0

    def _has_next(self):
        return bool(self._outcomes) or (self._length is not None and self._yielded >= self._length)

    def _take(self):
        if not self._outcomes:
            raise StopIteration
        self._yielded += 1
        return self._outcomes.popleft()

    def _store(self, index, outcome):
        self._outcomes.append(outcome)
