"""minray.util.iter without a cluster: the step functions, LocalIterator and the shard worker."""

from __future__ import annotations

import pickle

import cloudpickle
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minray.util.iter import LocalIterator, ParallelIteratorWorker
from minray.util.iter_steps import (
    apply_batch,
    apply_filter,
    apply_flatten,
    apply_for_each,
    apply_shuffle,
    apply_steps,
    round_robin,
    source_items,
    take_batch,
)


def local(items) -> LocalIterator:
    return LocalIterator(lambda: items, name="test")


def test_steps_map_filter_batch_and_flatten():
    assert list(apply_for_each(iter([1, 2]), fn=lambda x: x * 10)) == [10, 20]
    assert list(apply_filter(iter(range(6)), fn=lambda x: x % 2)) == [1, 3, 5]
    assert list(apply_batch(iter(range(5)), n=2)) == [[0, 1], [2, 3], [4]]
    assert list(apply_flatten(iter([[1, 2], [], [3]]))) == [1, 2, 3]


@given(st.lists(st.integers()), st.integers(1, 10), st.integers(0, 1000))
def test_shuffle_is_a_permutation_and_reproducible_with_a_seed(items, size, seed):
    once = list(apply_shuffle(iter(items), buffer_size=size, seed=seed))
    assert sorted(once) == sorted(items)
    assert once == list(apply_shuffle(iter(items), buffer_size=size, seed=seed))


def test_shuffle_with_a_buffer_of_one_keeps_the_order():
    assert list(apply_shuffle(iter(range(10)), buffer_size=1, seed=None)) == list(range(10))


def test_steps_are_applied_in_order():
    steps = [lambda it: apply_for_each(it, fn=lambda x: x + 1), lambda it: apply_batch(it, n=3)]
    assert list(apply_steps(range(5), steps)) == [[1, 2, 3], [4, 5]]


def test_source_items_calls_a_function_source_and_repeats_lazily():
    assert list(source_items(lambda: (x for x in range(3)), repeat=False)) == [0, 1, 2]
    forever = source_items(range(2), repeat=True)
    assert [next(forever) for _ in range(5)] == [0, 1, 0, 1, 0]


def test_take_batch_stops_at_max_items_and_reports_exhaustion():
    items = iter(range(5))
    assert take_batch(items, 3) == ([0, 1, 2], False)
    assert take_batch(items, 3) == ([3, 4], True)
    assert take_batch(items, 3) == ([], True)


def test_take_batch_returns_early_once_its_time_is_up():
    batch, exhausted = take_batch(source_items(range(3), repeat=True), 10**9, max_seconds=0)
    assert batch == [0] and not exhausted


def test_round_robin_takes_one_from_each_and_drops_ended_iterators():
    rows = list(round_robin([iter([1, 2, 3]), iter([]), iter(["a"])]))
    assert rows == [[1, "a"], [2], [3]]


def test_local_iterator_chains_lazily():
    seen = []

    def record(x):
        seen.append(x)
        return x

    it = local(range(100)).for_each(record).filter(lambda x: x % 2 == 0).batch(2)
    assert seen == []
    assert next(it) == [0, 2]
    assert seen == [0, 1, 2]
    assert it.take(2) == [[4, 6], [8, 10]]  # continues where next() stopped


def test_local_iterator_flatten_combine_shuffle_and_name():
    it = local([[1, 2], [3]]).flatten()
    assert list(it) == [1, 2, 3]
    assert list(local([1, 2]).combine(lambda x: [x] * x)) == [1, 2, 2]
    assert sorted(local(range(20)).shuffle(5, seed=3)) == list(range(20))
    assert repr(local([]).batch(4).flatten()) == "LocalIterator[test.batch(4).flatten()]"


def test_local_iterator_take_and_show(capsys):
    assert local(range(3)).take(10) == [0, 1, 2]
    assert local(range(3)).take(0) == []
    local(range(30)).show()
    assert capsys.readouterr().out.split() == [str(i) for i in range(20)]
    local(["a", "b"]).show(1)
    assert capsys.readouterr().out == "a\n"


def test_local_iterator_pickles_before_and_after_it_started():
    it = LocalIterator(lambda: range(4)).for_each(lambda x: x * 2)
    assert list(cloudpickle.loads(cloudpickle.dumps(it))) == [0, 2, 4, 6]
    next(it)
    assert list(cloudpickle.loads(cloudpickle.dumps(it))) == [0, 2, 4, 6]  # a copy restarts


def test_batch_and_shuffle_sizes_must_be_positive():
    with pytest.raises(ValueError, match="'n' must be a positive integer, got 0"):
        local([]).batch(0)
    with pytest.raises(ValueError, match="shuffle_buffer_size"):
        local([]).shuffle(-1)


def test_worker_serves_batches_of_its_transformed_source():
    worker = ParallelIteratorWorker(range(10), repeat=False)
    with pytest.raises(RuntimeError, match="par_iter_init"):
        worker.par_iter_next_batch(1)
    worker.par_iter_init([lambda it: apply_filter(it, fn=lambda x: x % 3 == 0)])
    assert worker.par_iter_next() == 0
    assert worker.par_iter_next_batch(2) == ([3, 6], False)
    assert worker.par_iter_next_batch(5) == ([9], True)
    with pytest.raises(StopIteration):
        worker.par_iter_next()


def test_worker_restarts_from_the_source_on_init():
    worker = ParallelIteratorWorker(lambda: iter("ab"), repeat=True)
    worker.par_iter_init([])
    assert worker.par_iter_next_batch(3) == (["a", "b", "a"], False)
    worker.par_iter_init([])
    assert worker.par_iter_next_batch(1) == (["a"], False)


def test_worker_slices_deal_positions_round_robin():
    worker = ParallelIteratorWorker(range(8), repeat=False)
    worker.par_iter_init([])
    assert worker.par_iter_slice_batch(3, 1, 1) == ([1], False)
    assert worker.par_iter_slice_batch(3, 0, 10) == ([0, 3, 6], True)
    assert worker.par_iter_slice_batch(3, 1, 10) == ([4, 7], True)
    assert worker.par_iter_slice_batch(3, 2, 10) == ([2, 5], True)
    assert worker.par_iter_slice_batch(3, 2, 10) == ([], True)


def test_worker_pickles_by_reference():
    assert pickle.loads(pickle.dumps(ParallelIteratorWorker)) is ParallelIteratorWorker
