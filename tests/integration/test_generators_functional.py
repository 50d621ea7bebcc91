"""Generator tasks and actor methods: streaming refs, dynamic refs, errors, back-pressure."""

from __future__ import annotations

import asyncio
import os
import pickle
import time

import numpy as np
import pytest

import minray
from minray.exceptions import RayTaskError, TaskCancelledError, WorkerCrashedError


@minray.remote
def count(n, delay=0.0):
    for i in range(n):
        if delay:
            time.sleep(delay)
        yield i


@minray.remote
def fails_after(k):
    yield from range(k)
    raise ValueError("bad value")


def test_a_generator_function_streams_by_default_and_yields_refs_in_order(cluster):
    gen = count.remote(5)
    assert isinstance(gen, minray.ObjectRefGenerator)
    refs = list(gen)
    assert all(isinstance(r, minray.ObjectRef) for r in refs)
    assert minray.get(refs) == [0, 1, 2, 3, 4]


def test_next_hands_out_refs_then_raises_stop_iteration(cluster):
    gen = count.options(num_returns="streaming").remote(2)
    assert minray.get(next(gen)) == 0
    assert minray.get(next(gen)) == 1
    with pytest.raises(StopIteration):
        next(gen)
    with pytest.raises(StopIteration):
        next(gen)
    assert gen.is_finished()


def test_refs_arrive_before_the_task_finishes(cluster):
    gen = count.remote(3, 0.5)
    start = time.monotonic()
    assert minray.get(next(gen)) == 0
    assert time.monotonic() - start < 1.2  # the first value, not the whole task (1.5 s)
    assert not gen.is_finished()


def test_an_exception_in_the_generator_surfaces_in_the_ref_after_the_last_value(cluster):
    gen = fails_after.remote(2)
    first, second, failed = next(gen), next(gen), next(gen)
    assert minray.get([first, second]) == [0, 1]
    with pytest.raises(ValueError, match="bad value") as info:
        minray.get(failed)
    assert isinstance(info.value, RayTaskError)
    with pytest.raises(StopIteration):
        next(gen)


def test_async_for_iterates_a_generator_without_blocking_the_loop(cluster):
    async def main():
        values = []
        async for ref in count.remote(4, 0.05):
            values.append(await ref)
        return values

    assert asyncio.run(main()) == [0, 1, 2, 3]


def test_completed_next_ready_and_is_finished(cluster):
    gen = count.remote(2, 0.3)
    assert not gen.next_ready() and not gen.is_finished()
    ready, _ = minray.wait([gen], timeout=10)
    assert ready == [gen] and gen.next_ready()
    assert minray.wait([gen.completed()], timeout=0)[0] == []
    next(gen), next(gen)
    assert minray.get(gen.completed(), timeout=10) is None
    assert not gen.next_ready()
    assert gen.is_finished()


def test_wait_mixes_generators_and_refs_and_get_returns_a_generator_itself(cluster):
    @minray.remote
    def slow(x):
        time.sleep(x)
        return "slow"

    gen = count.remote(1)
    ref = slow.remote(3)
    ready, not_ready = minray.wait([ref, gen], num_returns=1, timeout=10)
    assert ready == [gen] and not_ready == [ref]
    assert minray.get(gen) is gen
    with pytest.raises(TypeError):
        minray.wait(gen)


def test_a_generator_cannot_be_pickled_or_passed_to_a_task(cluster):
    gen = count.remote(1)
    with pytest.raises(TypeError, match="ObjectRefGenerator"):
        pickle.dumps(gen)
    with pytest.raises(TypeError):
        count.remote(gen)
    list(gen)


def test_large_values_stream_through_shared_memory(cluster):
    @minray.remote
    def arrays():
        for i in range(3):
            yield np.full(300_000, i, dtype=np.int64)

    for i, ref in enumerate(arrays.remote()):
        value = minray.get(ref)
        assert value.shape == (300_000,) and value[0] == i


def test_backpressure_keeps_the_worker_from_running_ahead(cluster):
    @minray.remote(_generator_backpressure_num_objects=1)
    def stamps(n):
        for _ in range(n):
            yield time.monotonic()

    made, took = [], []
    for ref in stamps.remote(3):
        took.append(time.monotonic())
        made.append(minray.get(ref))
        time.sleep(0.4)
    # each value is made only once the caller took the one before it
    assert made[1] >= took[0] and made[2] >= took[1]
    assert made[2] - made[1] > 0.3


def test_dropping_a_generator_frees_its_values_and_lets_a_held_back_task_finish(cluster):
    @minray.remote(_generator_backpressure_num_objects=1)
    def arrays(n):
        for i in range(n):
            yield np.full(300_000, i, dtype=np.int64)

    gen = arrays.remote(5)
    done = gen.completed()
    assert minray.get(next(gen))[0] == 0
    del gen  # the worker waits for the caller: dropping it lets the task run to its end
    assert minray.get(done, timeout=20) is None


def test_a_task_consumes_a_generator_it_started(cluster):
    @minray.remote
    def total(n):
        return sum(minray.get(ref) for ref in count.remote(n))

    assert minray.get(total.remote(5), timeout=20) == 10


def test_backpressure_option_is_checked(cluster):
    with pytest.raises(ValueError):
        count.options(_generator_backpressure_num_objects=0)


def test_cancelling_a_generator_task_ends_it_with_task_cancelled_error(cluster):
    gen = count.remote(100, 0.1)
    assert minray.get(next(gen)) == 0
    minray.cancel(gen)
    with pytest.raises(TaskCancelledError):
        for ref in gen:
            minray.get(ref, timeout=10)
    assert gen.is_finished()


def test_a_worker_dying_mid_stream_is_retried_and_each_value_comes_once(cluster, tmp_path):
    marker = str(tmp_path / "died")

    @minray.remote(max_retries=1)
    def dies_once(n):
        for i in range(n):
            if i == 2 and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)
            yield i

    assert minray.get(list(dies_once.remote(4))) == [0, 1, 2, 3]


def test_a_worker_dying_with_no_retries_left_ends_the_stream_with_its_error(cluster):
    @minray.remote(max_retries=0)
    def dies(n):
        for i in range(n):
            if i == 2:
                os._exit(1)
            yield i

    refs = list(dies.remote(4))
    assert minray.get(refs[:2]) == [0, 1]
    assert len(refs) == 3
    with pytest.raises(WorkerCrashedError):
        minray.get(refs[2])
    with pytest.raises(WorkerCrashedError):
        minray.get(refs[2])


def test_dynamic_returns_one_ref_to_the_refs_of_every_value(cluster):
    with pytest.warns(DeprecationWarning):
        ref = count.options(num_returns="dynamic").remote(3)
    assert isinstance(ref, minray.ObjectRef)
    refs = minray.get(ref)
    assert isinstance(refs, minray.DynamicObjectRefGenerator) and len(refs) == 3
    assert minray.get(list(refs)) == [0, 1, 2]


def test_a_dynamic_generator_that_raises_has_its_error_as_the_last_ref(cluster):
    with pytest.warns(DeprecationWarning):
        ref = fails_after.options(num_returns="dynamic").remote(1)
    refs = list(minray.get(ref))
    assert len(refs) == 2 and minray.get(refs[0]) == 0
    with pytest.raises(ValueError, match="bad value"):
        minray.get(refs[1])


def test_a_dynamic_ref_passes_to_another_task(cluster):
    @minray.remote
    def total(generator):
        return sum(minray.get(list(generator)))

    with pytest.warns(DeprecationWarning):
        ref = count.options(num_returns="dynamic").remote(4)
    assert minray.get(total.remote(ref)) == 6


def test_a_generator_with_a_fixed_num_returns_returns_that_many_refs(cluster):
    assert minray.get(count.options(num_returns=3).remote(3)) == [0, 1, 2]
    assert minray.get(count.options(num_returns=1).remote(1)) == 0
    with pytest.raises(ValueError, match="num_returns"):
        minray.get(count.options(num_returns=2).remote(3))


@minray.remote
class Producer:
    def numbers(self, n):
        yield from range(n)

    @minray.method(num_returns="streaming")
    def tagged(self, n):
        for i in range(n):
            yield f"t{i}"


@minray.remote
class AsyncProducer:
    async def numbers(self, n):
        for i in range(n):
            await asyncio.sleep(0.01)
            yield i

    async def other(self):
        return "other"


def test_a_generator_method_streams_its_values(cluster):
    producer = Producer.remote()
    assert minray.get(list(producer.numbers.remote(3))) == [0, 1, 2]
    assert minray.get(list(producer.tagged.remote(2))) == ["t0", "t1"]
    assert minray.get(producer.numbers.options(num_returns=2).remote(2)) == [0, 1]


def test_a_threaded_actor_streams_from_several_calls_at_once(cluster):
    producer = Producer.options(max_concurrency=4).remote()
    gens = [producer.numbers.remote(5) for _ in range(4)]
    assert [minray.get(list(g)) for g in gens] == [[0, 1, 2, 3, 4]] * 4


def test_an_async_generator_method_streams_while_other_calls_run(cluster):
    producer = AsyncProducer.remote()

    async def main():
        gen = producer.numbers.remote(5)
        first = await gen.__anext__()
        other = await producer.other.remote()
        rest = [ref async for ref in gen]
        return await first, other, rest

    first, other, rest = asyncio.run(main())
    assert (first, other) == (0, "other")
    assert [minray.get(r) for r in rest] == [1, 2, 3, 4]


def test_a_generator_method_of_a_dead_actor_ends_with_its_error(cluster):
    producer = Producer.remote()
    minray.get(list(producer.numbers.remote(1)))
    minray.kill(producer)
    refs = list(producer.numbers.remote(2))
    assert len(refs) == 1
    with pytest.raises(minray.exceptions.ActorDiedError):
        minray.get(refs[0], timeout=10)


def test_iterating_a_generator_after_shutdown_ends_instead_of_waiting_forever(cluster):
    gen = count.remote(100, 0.2)
    minray.shutdown()
    start = time.monotonic()
    try:
        list(gen)  # the task's end (its error ref), or RaySystemError: never a wait for ever
    except minray.exceptions.RaySystemError:
        pass
    assert time.monotonic() - start < 5


def test_a_generator_method_takes_backpressure_from_its_options(cluster):
    @minray.remote
    class Stamps:
        @minray.method(_generator_backpressure_num_objects=1)
        def made(self, n):
            for _ in range(n):
                yield time.monotonic()

    stamps = Stamps.remote()
    for gen in (stamps.made.remote(3), stamps.made.options(num_returns="streaming").remote(3)):
        made, took = [], []
        for ref in gen:
            took.append(time.monotonic())
            made.append(minray.get(ref))
            time.sleep(0.3)
        assert made[2] - made[1] > 0.2 and made[2] >= took[1]
    with pytest.raises(ValueError):
        stamps.made.options(_generator_backpressure_num_objects=0)


@minray.remote(concurrency_groups={"io": 2})
class GroupedGenerators:
    @minray.method(concurrency_group="io")
    async def ticks(self, n: int):
        for i in range(n):
            await asyncio.sleep(0.001)
            yield i

    def doubles(self, n: int):
        for i in range(n):
            yield 2 * i


def test_generator_methods_stream_from_a_concurrency_group(cluster):
    actor = GroupedGenerators.remote()
    assert [minray.get(r) for r in actor.ticks.remote(3)] == [0, 1, 2]
    sent = actor.doubles.options(concurrency_group="io").remote(3)
    assert [minray.get(r) for r in sent] == [0, 2, 4]
