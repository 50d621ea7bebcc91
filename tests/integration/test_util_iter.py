"""minray.util.iter: Ray 1.x parallel iterators, one actor per shard."""

from __future__ import annotations

import os

import pytest

import minray
from minray.exceptions import RayTaskError
from minray.util import iter as par_iter
from minray.util.iter import LocalIterator, ParallelIterator


def test_from_range_cuts_consecutive_shards_and_gather_sync_takes_turns(cluster):
    it = par_iter.from_range(10, num_shards=2)
    assert repr(it) == "ParallelIterator[from_range[10, shards=2]]"
    assert it.num_shards() == 2
    assert [list(shard) for shard in it.shards()] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert list(it.gather_sync()) == [0, 5, 1, 6, 2, 7, 3, 8, 4, 9]
    assert list(par_iter.from_range(5, num_shards=2).get_shard(1)) == [2, 3, 4]  # last is longer


def test_from_items_deals_items_round_robin(cluster):
    it = par_iter.from_items(["a", "b", "c", "d", "e"], num_shards=3)
    assert repr(it) == "ParallelIterator[from_items[str, 5, shards=3]]"
    assert [list(s) for s in it.shards()] == [["a", "d"], ["b", "e"], ["c"]]
    assert it.take(100) == ["a", "b", "c", "d", "e"]


def test_from_iterators_accepts_functions_returning_generators(cluster):
    it = par_iter.from_iterators([lambda: (x * x for x in range(3)), [7, 8]], name="mixed")
    assert repr(it) == "ParallelIterator[mixed]"
    assert list(it.gather_sync()) == [0, 7, 1, 8, 4]
    assert repr(par_iter.from_iterators([[1]])) == "ParallelIterator[from_iterators[shards=1]]"


def test_transformations_run_lazily_in_the_shard_actors(cluster):
    def boom(x):
        raise ZeroDivisionError(f"item {x}")

    failing = par_iter.from_range(4).for_each(boom)  # nothing runs yet
    driver = os.getpid()
    pids = set(par_iter.from_range(4).for_each(lambda x: os.getpid()).take(4))
    assert len(pids) == 2 and driver not in pids
    with pytest.raises(ZeroDivisionError, match="item 0") as info:
        failing.take(1)
    assert isinstance(info.value, RayTaskError)


def test_for_each_filter_batch_flatten_and_combine(cluster):
    it = par_iter.from_range(20, num_shards=2)
    evens = it.filter(lambda x: x % 2 == 0).for_each(lambda x: x * 10)
    assert sorted(evens.gather_sync()) == [x * 10 for x in range(0, 20, 2)]
    batched = it.batch(4)
    assert repr(batched) == "ParallelIterator[from_range[20, shards=2].batch(4)]"
    assert list(batched.get_shard(0)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert sorted(batched.flatten().gather_sync()) == list(range(20))
    assert list(it.combine(lambda x: [x, x]).get_shard(1))[:4] == [10, 10, 11, 11]


def test_for_each_with_max_concurrent_runs_tasks_and_keeps_order(cluster):
    it = par_iter.from_range(12, num_shards=2)
    doubled = it.for_each(lambda x: 2 * x, max_concurrent=3, resources={"num_cpus": 0.5})
    assert list(doubled.gather_sync()) == [2 * x for x in [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]]
    assert list(it.for_each(lambda x: x, max_concurrent=0).get_shard(0)) == list(range(6))
    local = it.get_shard(1).for_each(lambda x: x + 1, max_concurrent=2)
    assert list(local) == list(range(7, 13))
    with pytest.raises(ValueError, match="'max_concurrent' must be a non-negative integer"):
        it.for_each(abs, max_concurrent=-1)


def test_local_shuffle_permutes_each_shard_and_a_seed_repeats_it(cluster):
    it = par_iter.from_range(40, num_shards=2).local_shuffle(shuffle_buffer_size=8, seed=5)
    first = list(it.get_shard(0))
    assert sorted(first) == list(range(20))
    assert first != list(range(20))
    assert list(it.get_shard(0)) == first  # reading a shard again restarts it
    assert sorted(it.gather_sync()) == list(range(40))


def test_repartition_deals_every_shard_round_robin(cluster):
    it = par_iter.from_range(8, num_shards=2).repartition(3)
    assert it.num_shards() == 3
    assert [list(s) for s in it.shards()] == [[0, 4, 3, 7], [1, 5], [2, 6]]
    more = par_iter.from_range(30, num_shards=3).for_each(lambda x: -x).repartition(2)
    assert sorted(more.gather_async()) == sorted(-x for x in range(30))


def test_union_adds_the_shards_of_both(cluster):
    left = par_iter.from_range(4, num_shards=2).for_each(lambda x: x + 100)
    right = par_iter.from_items(["x"], num_shards=1)
    both = left.union(right)
    assert both.num_shards() == 3
    assert list(both.gather_sync()) == [100, 102, "x", 101, 103]
    assert list(both.get_shard(2)) == ["x"]
    with pytest.raises(ValueError, match="other must be of type ParallelIterator"):
        left.union([1, 2])


def test_gather_async_returns_every_item(cluster):
    it = par_iter.from_range(1000, num_shards=2).for_each(lambda x: x + 1)
    assert sorted(it.gather_async()) == list(range(1, 1001))
    assert sorted(it.gather_async(async_queue_depth=3)) == list(range(1, 1001))
    with pytest.raises(ValueError, match="queue depth must be positive"):
        it.gather_async(async_queue_depth=0)


def test_repeat_iterates_forever_and_take_stops(cluster):
    it = par_iter.from_range(3, num_shards=1, repeat=True)
    assert repr(it) == "ParallelIterator[from_range[3, shards=1, repeat=True]]"
    assert it.take(7) == [0, 1, 2, 0, 1, 2, 0]
    forever = par_iter.from_items([1, 2], num_shards=2, repeat=True).for_each(lambda x: x * 2)
    assert forever.take(5) == [2, 4, 2, 4, 2]
    shard = forever.get_shard(1)
    assert [next(shard) for _ in range(3)] == [4, 4, 4]
    assert sum(x for x, _ in zip(forever.gather_async(), range(50))) > 0


def test_take_and_show(cluster, capsys):
    it = par_iter.from_range(30, num_shards=1)
    assert it.take(3) == [0, 1, 2]
    assert it.take(100) == list(range(30))
    it.show()
    assert capsys.readouterr().out.split() == [str(i) for i in range(20)]
    it.show(2)
    assert capsys.readouterr().out == "0\n1\n"


def test_a_parallel_iterator_cannot_be_iterated_directly(cluster):
    with pytest.raises(TypeError, match=r"You must use it.gather_sync\(\) or it.gather_async\(\)"):
        iter(par_iter.from_range(2))


def test_get_shard_out_of_range(cluster):
    it = par_iter.from_range(4, num_shards=2)
    with pytest.raises(ValueError, match="Shard index out of range"):
        it.get_shard(2)
    with pytest.raises(ValueError, match="Shard index out of range"):
        it.get_shard(-1)


def test_constructor_and_step_arguments_are_checked(cluster):
    with pytest.raises(ValueError, match="'num_shards' must be a positive integer"):
        par_iter.from_range(4, num_shards=0)
    it = par_iter.from_range(4)
    with pytest.raises(ValueError, match="'n' must be a positive integer"):
        it.batch(0)
    with pytest.raises(ValueError, match="'num_partitions' must be a positive integer"):
        it.repartition(0)


def test_local_iterator_steps_run_in_the_reader(cluster):
    shard = par_iter.from_range(6, num_shards=1).get_shard(0)
    assert isinstance(shard, LocalIterator)
    local = shard.for_each(lambda x: (x, os.getpid())).filter(lambda p: p[0] % 2).batch(2)
    assert (
        repr(local)
        == "LocalIterator[from_range[6, shards=1].shard[0].for_each().filter().batch(2)]"
    )
    batches = list(local)
    assert [[x for x, _ in b] for b in batches] == [[1, 3], [5]]
    assert {pid for b in batches for _, pid in b} == {os.getpid()}
    assert sorted(par_iter.from_range(6).get_shard(0).shuffle(3, seed=1)) == [0, 1, 2]
    assert list(par_iter.from_items([[1], [2, 3]], 1).get_shard(0).flatten()) == [1, 2, 3]


@minray.remote
def train(shard):
    seen = []
    for batch in shard:
        assert len(batch) <= 4
        seen.extend(batch)
    return seen


@minray.remote
def total(it):
    return sum(it.gather_sync())


@minray.remote
class Trainer:
    def __init__(self, shard):
        self.shard = shard

    def first(self, n):
        return self.shard.take(n)


def test_shards_train_in_tasks(cluster):
    it = par_iter.from_range(100, num_shards=2).batch(4)
    work = [train.remote(shard) for shard in it.shards()]
    assert minray.get(work) == [list(range(50)), list(range(50, 100))]


def test_a_parallel_iterator_travels_to_a_task_and_a_shard_to_an_actor(cluster):
    it = par_iter.from_range(10, num_shards=2).for_each(lambda x: x * 3)
    assert isinstance(it, ParallelIterator)
    assert minray.get(total.remote(it)) == 3 * sum(range(10))
    trainer = Trainer.remote(it.get_shard(1))
    assert minray.get(trainer.first.remote(2)) == [15, 18]
