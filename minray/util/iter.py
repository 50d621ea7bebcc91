"""Parallel iterators (Ray 1.x ``ray.util.iter``): lazy, sharded streams, one actor per shard.

A ``ParallelIterator`` is a list of shards (their steps: iter_steps.py). Each
shard is an actor (``ParallelIteratorWorker``) that owns a source (a range, a list, or a
function returning an iterable) and produces its items on demand. Nothing is
computed when you write ``it.for_each(f).filter(g).batch(4)``: each call only
returns a new ParallelIterator whose shards carry a longer chain of *steps*
(``Iterator -> Iterator`` functions). The chain is sent to a shard actor when
someone starts reading that shard, and the actor applies it to its source, so
transformations run in parallel where the data is.

Reading happens through a ``LocalIterator``, which is also lazy: it holds a
picklable *base* (something that, when called, returns an iterable) plus its
own local steps, and builds the real iterator on first use. That is why
ParallelIterators and their shards can be passed to tasks and actors::

    @ray.remote
    def train(shard):
        for batch in shard: ...

    it = ray.util.iter.from_range(100, num_shards=2).batch(4)
    ray.get([train.remote(shard) for shard in it.shards()])

Readers fetch items in batches (``par_iter_next_batch``): the first request
asks for one item and each next one for twice as many (up to
``_MAX_BATCH``), one request ahead of the consumer. A shard answers early once
it has spent ``_BATCH_SECONDS`` producing, so slow functions still stream.
With ``repeat=True`` a shard cycles over its source forever; ``take(n)`` then
stops after ``n`` items and the actor does little more work than asked.

Order, as in Ray: ``gather_sync`` takes one item from each shard in turn
(``from_range(4, 2)`` gives 0, 2, 1, 3); ``gather_async`` yields items as
shards deliver them. Each shard should be read by one consumer at a time, and
starting to read a shard again restarts its chain from the source.
"""

from __future__ import annotations

import collections
import functools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import minray

from .iter_steps import (
    _for_each_step,
    apply_batch,
    apply_filter,
    apply_flatten,
    apply_shuffle,
    apply_steps,
    round_robin,
    source_items,
    take_batch,
)

#: Most items a shard returns per request.
_MAX_BATCH = 256
#: A shard answers a request once it has spent this long producing items.
_BATCH_SECONDS = 0.05

# --- the shard actor ------------------------------------------------------------------------


class ParallelIteratorWorker:
    """A shard: owns a source and runs the step chain it is given over it.

    Used as an actor (``minray.remote(ParallelIteratorWorker)``); subclasses
    passed to ``from_actors`` must call this ``__init__``.
    """

    def __init__(self, item_generator: Any, repeat: bool):
        self.item_generator = item_generator
        self.repeat = repeat
        self.local_it: Iterator | None = None
        self.slices: dict[int, collections.deque] = {}
        self.position = 0  # items of local_it handed out to slices so far

    def par_iter_init(self, transforms: list) -> None:
        """(Re)start this shard: a fresh iterator over the source with ``transforms`` applied."""
        self.local_it = apply_steps(source_items(self.item_generator, self.repeat), transforms)
        self.slices = {}
        self.position = 0

    def par_iter_next(self) -> Any:
        """The next item; raises StopIteration at the end (as Ray's worker)."""
        return next(self._started())

    def par_iter_next_batch(self, max_items: int) -> tuple[list, bool]:
        """Up to ``max_items`` next items and whether the shard is exhausted."""
        return take_batch(self._started(), max_items, _BATCH_SECONDS)

    def par_iter_slice_batch(self, step: int, start: int, max_items: int) -> tuple[list, bool]:
        """Like ``par_iter_next_batch``, over only the items at positions ``start + k * step``."""
        items = self._started()
        wanted = self.slices.setdefault(start, collections.deque())
        deadline = time.monotonic() + _BATCH_SECONDS
        exhausted = False
        while len(wanted) < max_items and not (wanted and time.monotonic() > deadline):
            item = next(items, _END)
            if item is _END:
                exhausted = True
                break
            self.slices.setdefault(self.position % step, collections.deque()).append(item)
            self.position += 1
        batch = [wanted.popleft() for _ in range(min(max_items, len(wanted)))]
        return batch, exhausted and not wanted

    def _started(self) -> Iterator:
        if self.local_it is None:
            raise RuntimeError("par_iter_init() must be called before reading a shard")
        return self.local_it


_END = object()

# --- reading shards from anywhere (driver, tasks, other actors) ---------------------------


def _read_batches(submit: Callable[[int], Any]) -> Iterator:
    """Items from a shard, fetched in growing batches; the first request goes out now."""
    return _batches_from(submit(1), submit)


def _batches_from(pending: Any, submit: Callable[[int], Any]) -> Iterator:
    size = 1
    while True:
        items, exhausted = minray.get(pending)
        if exhausted:
            yield from items
            return
        size = min(size * 2, _MAX_BATCH)
        pending = submit(size)  # fetch ahead while the consumer works on these items
        yield from items


def _next_batch_caller(actor: Any) -> Callable[[int], Any]:
    return lambda size: actor.par_iter_next_batch.remote(size)


def _start_shards(groups: Iterable[_ShardGroup]) -> list:
    """Start every shard of ``groups`` (in parallel); returns their actors in shard order."""
    starts, actors = [], []
    for group in groups:
        for actor in group.actors:
            starts.append(actor.par_iter_init.remote(list(group.transforms)))
            actors.append(actor)
    minray.get(starts)
    return actors


class _ShardGroup(NamedTuple):
    """Shard actors that share one step chain (a union has several groups)."""

    actors: tuple
    transforms: tuple


class _OneShard:
    """Base of a shard's LocalIterator: starts the shard, then streams its items."""

    def __init__(self, actor: Any, transforms: tuple):
        self.actor = actor
        self.transforms = transforms

    def __call__(self) -> Iterator:
        minray.get(self.actor.par_iter_init.remote(list(self.transforms)))
        return _read_batches(_next_batch_caller(self.actor))


class _AcrossShards:
    """Base of ``batch_across_shards``: rows of one item from each shard in turn."""

    def __init__(self, groups: tuple):
        self.groups = groups

    def __call__(self) -> Iterator[list]:
        actors = _start_shards(self.groups)
        return round_robin([_read_batches(_next_batch_caller(a)) for a in actors])


class _AsyncGather:
    """Base of ``gather_async``: items in the order shards deliver them."""

    def __init__(self, groups: tuple, queue_depth: int):
        self.groups = groups
        self.queue_depth = queue_depth

    def __call__(self) -> Iterator:
        return self._gather(_start_shards(self.groups))

    def _gather(self, actors: list) -> Iterator:
        sizes = [1] * len(actors)
        in_flight: dict = {}  # ref -> shard index
        for _ in range(self.queue_depth):
            for shard, actor in enumerate(actors):
                in_flight[actor.par_iter_next_batch.remote(1)] = shard
        exhausted: set[int] = set()
        while in_flight:
            minray.wait(list(in_flight), num_returns=1)
            ready, _ = minray.wait(list(in_flight), num_returns=len(in_flight), timeout=0)
            for ref in ready:
                shard = in_flight.pop(ref)
                items, done = minray.get(ref)
                if done:
                    exhausted.add(shard)
                elif shard not in exhausted:
                    sizes[shard] = min(sizes[shard] * 2, _MAX_BATCH)
                    in_flight[actors[shard].par_iter_next_batch.remote(sizes[shard])] = shard
                yield from items


class _Repartitioned:
    """Source of a repartitioned shard: every ``num_partitions``-th item of each parent shard."""

    def __init__(self, parents: list, num_partitions: int, index: int):
        self.parents = parents
        self.num_partitions = num_partitions
        self.index = index

    def __call__(self) -> Iterator:
        def caller(actor: Any) -> Callable[[int], Any]:
            step, start = self.num_partitions, self.index
            return lambda size: actor.par_iter_slice_batch.remote(step, start, size)

        readers = [_read_batches(caller(actor)) for actor in self.parents]
        return apply_flatten(round_robin(readers))


# --- LocalIterator ------------------------------------------------------------------------


class _Steps:
    """The steps both kinds of iterator chain lazily; each subclass defines ``_then``.

    On a ParallelIterator the steps run in the shard actors; on a LocalIterator, where
    it is read.
    """

    name: str

    def _then(self, step: Callable, suffix: str):
        raise NotImplementedError

    def for_each(self, fn: Callable, max_concurrent: int = 1, resources: dict | None = None):
        """Apply ``fn`` to each item.

        With ``max_concurrent`` other than 1, ``fn`` runs as tasks (options
        ``resources``, e.g. ``{"num_cpus": 0.5}``), that many at a time (0: no
        limit), still yielding results in order.
        """
        return self._then(_for_each_step(fn, max_concurrent, resources), ".for_each()")

    def filter(self, fn: Callable):
        """Keep the items for which ``fn`` is true."""
        return self._then(functools.partial(apply_filter, fn=fn), ".filter()")

    def batch(self, n: int):
        """Group items into lists of ``n`` (the last one may be shorter)."""
        return self._then(functools.partial(apply_batch, n=_positive(n, "n")), f".batch({n})")

    def flatten(self):
        """Turn an iterator of lists into an iterator of their items."""
        return self._then(apply_flatten, ".flatten()")

    def combine(self, fn: Callable):
        """``for_each(fn).flatten()``: ``fn`` returns a list of items for each item."""
        it = self.for_each(fn).flatten()
        it.name = self.name + ".combine()"
        return it


class LocalIterator(_Steps):
    """An iterator over one stream of items; its transformations run in this process.

    Picklable until (and, restarting from its base, even after) you start
    iterating; read each one from one process at a time.
    """

    def __init__(
        self,
        base_iterator: Callable[[], Iterable],
        local_transforms: list | None = None,
        name: str | None = None,
    ):
        self.base_iterator = base_iterator
        self.local_transforms = list(local_transforms or [])
        self.name = name or "unknown"
        self.built_iterator: Iterator | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "built_iterator": None}  # a running generator cannot travel

    def _build_once(self) -> Iterator:
        if self.built_iterator is None:
            self.built_iterator = apply_steps(self.base_iterator(), self.local_transforms)
        return self.built_iterator

    def __iter__(self) -> Iterator:
        return self._build_once()

    def __next__(self) -> Any:
        return next(self._build_once())

    def __repr__(self) -> str:
        return f"LocalIterator[{self.name}]"

    def _then(self, step: Callable, suffix: str) -> LocalIterator:
        return LocalIterator(self.base_iterator, [*self.local_transforms, step], self.name + suffix)

    def shuffle(self, shuffle_buffer_size: int, seed: int | None = None) -> LocalIterator:
        """Shuffle through a buffer of ``shuffle_buffer_size`` items (reproducible with a seed)."""
        size = _positive(shuffle_buffer_size, "shuffle_buffer_size")
        step = functools.partial(apply_shuffle, buffer_size=size, seed=seed)
        return self._then(step, f".shuffle(shuffle_buffer_size={size}, seed={seed})")

    def take(self, n: int) -> list:
        """Up to the next ``n`` items."""
        out: list = []
        if n <= 0:
            return out
        for item in self:
            out.append(item)
            if len(out) >= n:
                break
        return out

    def show(self, n: int = 20) -> None:
        """Print up to the next ``n`` items."""
        for item in self.take(n):
            print(item)


def _positive(value: int, what: str) -> int:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"'{what}' must be a positive integer, got {value!r}")
    return value


# --- ParallelIterator -----------------------------------------------------------------------


class ParallelIterator(_Steps):
    """A sharded, lazy stream of items; each shard is an actor.

    Transformations (``for_each``, ``filter``, ``batch``, ...) run inside the
    shard actors. Read it with ``gather_sync()``, ``gather_async()``,
    ``take(n)``, or shard by shard (``shards()``, ``get_shard(i)``). Picklable:
    pass it, or its shards, to tasks and actors.
    """

    def __init__(self, actor_sets: list, name: str, parent_iterators: list):
        self.actor_sets: list[_ShardGroup] = list(actor_sets)
        self.name = name
        self.parent_iterators = parent_iterators  # keeps a repartition's source shards alive

    def __iter__(self):
        raise TypeError(
            "You must use it.gather_sync() or it.gather_async() to iterate over the results "
            "of a ParallelIterator."
        )

    def __repr__(self) -> str:
        return f"ParallelIterator[{self.name}]"

    def _then(self, step: Callable, suffix: str) -> ParallelIterator:
        groups = [_ShardGroup(g.actors, (*g.transforms, step)) for g in self.actor_sets]
        return ParallelIterator(groups, self.name + suffix, self.parent_iterators)

    def local_shuffle(self, shuffle_buffer_size: int, seed: int | None = None) -> ParallelIterator:
        """Shuffle each shard on its own through a buffer of ``shuffle_buffer_size`` items."""
        size = _positive(shuffle_buffer_size, "shuffle_buffer_size")
        step = functools.partial(apply_shuffle, buffer_size=size, seed=seed)
        return self._then(step, f".local_shuffle(shuffle_buffer_size={size}, seed={seed})")

    def repartition(self, num_partitions: int) -> ParallelIterator:
        """The same items over ``num_partitions`` new shards, dealt round-robin.

        New shard ``j`` reads the items at positions ``j, j + num_partitions, ...``
        of every current shard. The current shards start now.
        """
        _positive(num_partitions, "num_partitions")
        parents = _start_shards(self.actor_sets)
        worker_cls = minray.remote(ParallelIteratorWorker)
        actors = tuple(
            worker_cls.remote(_Repartitioned(parents, num_partitions, j), False)
            for j in range(num_partitions)
        )
        name = f"{self.name}.repartition[num_partitions={num_partitions}]"
        return ParallelIterator([_ShardGroup(actors, ())], name, [self])

    def union(self, other: ParallelIterator) -> ParallelIterator:
        """An iterator over the shards of both (``num_shards`` adds up)."""
        if not isinstance(other, ParallelIterator):
            raise ValueError(f"other must be of type ParallelIterator, got {type(other)}")
        return ParallelIterator(
            self.actor_sets + other.actor_sets,
            f"ParallelUnion[{self}, {other}]",
            self.parent_iterators + other.parent_iterators,
        )

    def num_shards(self) -> int:
        """The number of shard actors."""
        return sum(len(group.actors) for group in self.actor_sets)

    def shards(self) -> list[LocalIterator]:
        """A LocalIterator for each shard (picklable: hand them to tasks or actors)."""
        return [self.get_shard(i) for i in range(self.num_shards())]

    def get_shard(self, shard_index: int) -> LocalIterator:
        """A LocalIterator over shard ``shard_index``; reading it restarts that shard."""
        index = shard_index
        if isinstance(index, int) and index >= 0:
            for group in self.actor_sets:
                if index < len(group.actors):
                    base = _OneShard(group.actors[index], group.transforms)
                    return LocalIterator(base, name=f"{self.name}.shard[{shard_index}]")
                index -= len(group.actors)
        raise ValueError("Shard index out of range", shard_index, self.num_shards())

    def batch_across_shards(self) -> LocalIterator:
        """Rows with the next item of every shard (shards that ended drop out)."""
        return LocalIterator(
            _AcrossShards(tuple(self.actor_sets)), name=f"{self}.batch_across_shards()"
        )

    def gather_sync(self) -> LocalIterator:
        """A LocalIterator taking one item from each shard in turn."""
        it = self.batch_across_shards().flatten()
        it.name = f"{self}.gather_sync()"
        return it

    def gather_async(self, async_queue_depth: int = 1) -> LocalIterator:
        """A LocalIterator yielding items as the shards deliver them (order not fixed).

        ``async_queue_depth`` is the number of requests kept in flight per shard.
        """
        if async_queue_depth < 1:
            raise ValueError("queue depth must be positive")
        base = _AsyncGather(tuple(self.actor_sets), async_queue_depth)
        return LocalIterator(base, name=f"{self}.gather_async()")

    def take(self, n: int) -> list:
        """The first ``n`` items of ``gather_sync()``."""
        return self.gather_sync().take(n)

    def show(self, n: int = 20) -> None:
        """Print the first ``n`` items of ``gather_sync()``."""
        self.gather_sync().show(n)


# --- constructors ---------------------------------------------------------------------------


def from_items(items: list, num_shards: int = 2, repeat: bool = False) -> ParallelIterator:
    """A ParallelIterator over ``items``, dealt round-robin to ``num_shards`` shards."""
    _positive(num_shards, "num_shards")
    shards: list[list] = [[] for _ in range(num_shards)]
    for i, item in enumerate(items):
        shards[i % num_shards].append(item)
    kind = type(items[0]).__name__ if items else "None"
    suffix = ", repeat=True" if repeat else ""
    name = f"from_items[{kind}, {len(items)}, shards={num_shards}{suffix}]"
    return from_iterators(shards, repeat=repeat, name=name)


def from_range(n: int, num_shards: int = 2, repeat: bool = False) -> ParallelIterator:
    """A ParallelIterator over ``range(n)``, cut into ``num_shards`` consecutive pieces."""
    _positive(num_shards, "num_shards")
    size = n // num_shards
    ranges = [
        range(i * size, n if i == num_shards - 1 else (i + 1) * size) for i in range(num_shards)
    ]
    suffix = ", repeat=True" if repeat else ""
    return from_iterators(
        ranges, repeat=repeat, name=f"from_range[{n}, shards={num_shards}{suffix}]"
    )


def from_iterators(
    generators: list, repeat: bool = False, name: str | None = None
) -> ParallelIterator:
    """A ParallelIterator with one shard per element of ``generators``.

    Each element is an iterable, or a function returning one (use a function
    for generators, which cannot be pickled: ``lambda: (x * x for x in range(9))``).
    """
    worker_cls = minray.remote(ParallelIteratorWorker)
    actors = [worker_cls.remote(source, repeat) for source in generators]
    if not name:
        name = f"from_iterators[shards={len(actors)}{', repeat=True' if repeat else ''}]"
    return from_actors(actors, name=name)


def from_actors(actors: list, name: str | None = None) -> ParallelIterator:
    """A ParallelIterator over existing actors of a ParallelIteratorWorker subclass."""
    name = name or f"from_actors[shards={len(actors)}]"
    return ParallelIterator([_ShardGroup(tuple(actors), ())], name, [])


__all__ = [
    "LocalIterator",
    "ParallelIterator",
    "ParallelIteratorWorker",
    "from_actors",
    "from_items",
    "from_iterators",
    "from_range",
]
