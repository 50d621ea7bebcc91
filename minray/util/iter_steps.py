"""The steps of parallel iterators: pure ``Iterator -> Iterator`` functions that shard
actors (or a LocalIterator) apply to their items, and the helpers that read items
in batches. No actor state here: each function can be tested alone."""

from __future__ import annotations

import collections
import functools
import random
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import minray

# --- steps: pure Iterator -> Iterator functions, applied in shard actors or locally ---------


def apply_for_each(items: Iterator, fn: Callable) -> Iterator:
    for item in items:
        yield fn(item)


def apply_for_each_in_tasks(
    items: Iterator, fn: Callable, max_concurrent: int, resources: dict | None
) -> Iterator:
    """``fn`` as minray tasks, at most ``max_concurrent`` at once (0: no limit), in order."""
    remote_fn = minray.remote(fn).options(**(resources or {}))
    window: collections.deque = collections.deque()
    for item in items:
        if max_concurrent and len(window) >= max_concurrent:
            yield minray.get(window.popleft())
        window.append(remote_fn.remote(item))
    while window:
        yield minray.get(window.popleft())


def _for_each_step(fn: Callable, max_concurrent: int, resources: dict | None) -> Callable:
    if max_concurrent == 1:
        return functools.partial(apply_for_each, fn=fn)
    if not isinstance(max_concurrent, int) or max_concurrent < 0:
        raise ValueError(f"'max_concurrent' must be a non-negative integer, got {max_concurrent!r}")
    return functools.partial(
        apply_for_each_in_tasks, fn=fn, max_concurrent=max_concurrent, resources=resources
    )


def apply_filter(items: Iterator, fn: Callable) -> Iterator:
    for item in items:
        if fn(item):
            yield item


def apply_batch(items: Iterator, n: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def apply_flatten(items: Iterator) -> Iterator:
    for item in items:
        yield from item


def apply_shuffle(items: Iterator, buffer_size: int, seed: int | None) -> Iterator:
    """Fill a buffer of ``buffer_size`` items and emit a random one each time it is full."""
    rng = random.Random(seed)
    buffer: list = []
    for item in items:
        buffer.append(item)
        if len(buffer) >= buffer_size:
            yield buffer.pop(rng.randrange(len(buffer)))
    while buffer:
        yield buffer.pop(rng.randrange(len(buffer)))


def apply_steps(items: Iterable, steps: Iterable[Callable]) -> Iterator:
    iterator = iter(items)
    for step in steps:
        iterator = step(iterator)
    return iterator


def source_items(source: Any, repeat: bool) -> Iterator:
    """Iterate ``source`` (an iterable, or a function returning one), forever if ``repeat``."""
    while True:
        yield from source() if callable(source) else source
        if not repeat:
            return


def take_batch(items: Iterator, max_items: int, max_seconds: float | None = None):
    """Up to ``max_items`` next items (fewer if ``max_seconds`` pass): ``(items, exhausted)``."""
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= max_items or (deadline is not None and time.monotonic() > deadline):
            return batch, False
    return batch, True


def round_robin(iterators: Iterable[Iterator]) -> Iterator[list]:
    """Rows of one item from each iterator in turn; exhausted iterators drop out."""
    active = list(iterators)
    while active:
        row = []
        for iterator in list(active):
            try:
                row.append(next(iterator))
            except StopIteration:
                active.remove(iterator)
        if row:
            yield row
