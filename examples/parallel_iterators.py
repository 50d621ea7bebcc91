"""Parallel iterators: train on the shards of a lazily sharded dataset (Ray 1.x ``ray.util.iter``).

``from_range(100, num_shards=2)`` makes two shard actors; ``.for_each`` and
``.batch(4)`` only record steps, which run inside the shard actors when a
shard is read. Each shard is a picklable LocalIterator, so a training task can
loop over its batches. ``repeat=True`` streams forever; ``take(n)`` stops.

Run: ``python examples/parallel_iterators.py``
(``ray.util.iter`` is a Ray 1.x API: Ray 2 removed it.)
"""

import minray as ray
import minray.util.iter  # noqa: F401  (makes ray.util.iter available, as in Ray 1.x)


@ray.remote
def train(shard):
    """A worker task: one pass over its shard's batches."""
    steps, seen = 0, 0
    for batch in shard:
        steps += 1
        seen += len(batch)
    return steps, seen


if __name__ == "__main__":
    ray.init()
    it = ray.util.iter.from_range(100, num_shards=2).for_each(lambda x: x * 2).batch(4)
    print(it)
    work = [train.remote(shard) for shard in it.shards()]
    for i, (steps, seen) in enumerate(ray.get(work)):
        print(f"shard {i}: {steps} steps over {seen} items")

    print("gather_sync:", it.flatten().take(6))
    evens = ray.util.iter.from_items(list(range(10)), num_shards=3).filter(lambda x: x % 2 == 0)
    print("gather_async:", sorted(evens.gather_async()))
    print("repartition:", [list(s) for s in ray.util.iter.from_range(8, 2).repartition(3).shards()])

    stream = ray.util.iter.from_range(3, num_shards=1, repeat=True)
    print("repeat=True, first 7:", stream.take(7))
    ray.shutdown()
