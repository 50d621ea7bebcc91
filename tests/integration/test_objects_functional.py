"""Objects: put/get, zero-copy shared memory, reference counting, wait, asyncio."""

from __future__ import annotations

import asyncio
import gc
import os
import pickle
import threading
import time

import pytest

import minray
from minray import api
from tests.conftest import _start as _start_cluster
from tests.conftest import session_segments

np = pytest.importorskip("numpy")


@minray.remote
def sleep_then(seconds, value=None):
    time.sleep(seconds)
    return value if value is not None else seconds


def test_put_then_get_returns_an_equal_copy(cluster):
    value = {"a": [1, 2, 3], "b": "text"}
    ref = minray.put(value)
    value["a"].append(4)
    assert minray.get(ref) == {"a": [1, 2, 3], "b": "text"}


def test_object_refs_are_hashable_picklable_and_print_their_hex(cluster):
    ref = minray.put(1)
    assert len(ref.hex()) == 56
    assert repr(ref) == f"ObjectRef({ref.hex()})"
    assert {ref: 1}[minray.ObjectRef(ref.binary())] == 1
    clone = pickle.loads(pickle.dumps(ref))
    assert clone == ref and hash(clone) == hash(ref)
    assert minray.get(clone) == 1


def test_a_large_array_is_read_zero_copy_and_read_only(cluster):
    array = np.arange(5_000_000, dtype=np.float64)
    ref = minray.put(array)
    got = minray.get(ref)
    assert not got.flags.writeable
    assert np.array_equal(got, array)
    with pytest.raises(ValueError, match="read-only"):
        got[0] = 1
    assert len(session_segments(api._state.session_dir)) == 1


@pytest.mark.timeout(120)
def test_get_of_a_big_array_takes_about_as_long_as_a_small_one(cluster):
    big = minray.put(np.ones(2**27 // 2))  # 512 MiB
    small = minray.put(np.ones(128))
    minray.get(big), minray.get(small)

    def best_of(ref):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            minray.get(ref)
            times.append(time.perf_counter() - start)
        return min(times)

    assert best_of(big) < 0.05, "get of 512 MiB should map, not copy"
    assert best_of(big) < best_of(small) + 0.02


def _segments_now():
    return len(session_segments(api._state.session_dir))


def _shm_bytes():
    tag_names = session_segments(api._state.session_dir)
    return sum(os.stat(os.path.join("/dev/shm", name)).st_size for name in tag_names)


def _live_bytes():
    return minray.nodes()[0]["ObjectStoreUsedBytes"]


def _wait_for_no_live_objects(timeout=5.0):
    deadline = time.time() + timeout
    while _live_bytes() and time.time() < deadline:
        time.sleep(0.05)
    return _live_bytes()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cluster", [{"object_store_memory": 400 * 2**20}], indirect=True)
def test_dropping_refs_frees_shared_memory_so_a_put_loop_stays_bounded(cluster):
    peak = 0
    for i in range(40):
        ref = minray.put(np.full(50 * 2**20 // 8, i, dtype=np.float64))  # 50 MiB
        assert minray.get(ref)[0] == i
        del ref
        peak = max(peak, _segments_now())
    assert peak <= 3
    assert _wait_for_no_live_objects() == 0
    pool_limit = 400 * 2**20 // 4  # freed segments kept for reuse
    assert _shm_bytes() <= pool_limit


def test_task_results_in_shared_memory_are_freed_with_their_refs(cluster):
    @minray.remote
    def big():
        return np.ones(1_000_000)

    ref = big.remote()
    assert minray.get(ref).sum() == 1_000_000
    assert _live_bytes() > 8_000_000
    del ref
    gc.collect()
    assert _wait_for_no_live_objects() == 0


def test_small_values_leave_the_owners_store_with_their_last_ref(cluster):
    from minray import object_ref

    store = object_ref.current_worker.store  # the driver's memory store (internals)
    before = len(store)

    def use_and_drop(n):
        for i in range(n):
            assert minray.get(echo.remote(i)) == i  # the result ref is dropped right here
            assert minray.get(minray.put(b"x" * i)) == b"x" * i

    use_and_drop(100)
    threads = [threading.Thread(target=use_and_drop, args=(50,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kept = [echo.remote(i) for i in range(10)]
    assert minray.get(kept) == list(range(10))
    deadline = time.time() + 5
    while len(store) != before + 10 and time.time() < deadline:
        time.sleep(0.01)
    assert len(store) == before + 10  # only what is still referenced
    del kept
    while len(store) != before and time.time() < deadline:
        time.sleep(0.01)
    assert len(store) == before


def test_an_array_still_in_use_keeps_its_segment_from_being_reused(cluster):
    ref = minray.put(np.full(2_000_000, 1.0))
    first = minray.get(ref)
    del ref  # the object is freed, but ``first`` still maps its memory
    gc.collect()
    assert _wait_for_no_live_objects() == 0
    for value in (2.0, 3.0, 4.0):
        again = minray.put(np.full(2_000_000, value))
        assert minray.get(again)[0] == value
        del again
    assert first.min() == first.max() == 1.0


def test_a_freed_segment_is_reused_for_the_next_object_of_its_size(cluster):
    sizes = []
    for value in range(5):
        ref = minray.put(np.full(2_000_000, float(value)))
        assert minray.get(ref)[-1] == value
        del ref
        gc.collect()
        _wait_for_no_live_objects()
        sizes.append(_segments_now())
    assert max(sizes) == 1, "one segment, reused each time"


def test_a_ref_held_by_a_pending_task_keeps_its_object_alive(cluster):
    @minray.remote
    def total(array):
        return float(array.sum())

    ref = minray.put(np.ones(500_000))
    result = total.remote(ref)
    del ref
    gc.collect()
    assert minray.get(result) == 500_000.0


def test_a_nested_ref_stays_alive_while_a_task_borrows_it(cluster):
    @minray.remote
    def hold(items):
        time.sleep(0.5)
        return float(minray.get(items[0]).sum())

    inner = minray.put(np.ones(400_000))
    result = hold.remote([inner])
    del inner
    gc.collect()
    assert minray.get(result) == 400_000.0


def test_wait_returns_ready_refs_first_in_input_order(cluster):
    refs = [sleep_then.remote(2), sleep_then.remote(0.01), sleep_then.remote(0.02)]
    ready, not_ready = minray.wait(refs, num_returns=2, timeout=10)
    assert ready == [refs[1], refs[2]]
    assert not_ready == [refs[0]]


def test_wait_stops_at_the_first_ready_refs_and_keeps_the_rest_in_order(cluster):
    slow, slower = sleep_then.remote(3), sleep_then.remote(3)
    a, b, c = minray.put("a"), minray.put("b"), minray.put("c")
    refs = [slow, a, b, slower, c]
    assert minray.wait(refs, num_returns=2) == ([a, b], [slow, slower, c])
    assert minray.wait(refs, num_returns=3, timeout=0) == ([a, b, c], [slow, slower])
    with pytest.raises(ValueError, match="unique"):
        minray.wait([a, minray.ObjectRef(a.binary())])
    with pytest.raises(TypeError, match="list containing <class 'str'>"):
        minray.wait([a, "b"])


def test_wait_with_a_timeout_returns_what_is_ready_at_the_deadline(cluster):
    refs = [sleep_then.remote(3), sleep_then.remote(0.01)]
    start = time.perf_counter()
    ready, not_ready = minray.wait(refs, num_returns=2, timeout=1.0)
    elapsed = time.perf_counter() - start
    assert ready == [refs[1]] and not_ready == [refs[0]]
    assert 0.9 < elapsed < 2.5


def test_wait_with_zero_timeout_polls(cluster):
    slow = sleep_then.remote(3)
    done = minray.put(1)
    start = time.perf_counter()
    assert minray.wait([slow, done], num_returns=1, timeout=0) == ([done], [slow])
    assert minray.wait([slow], num_returns=1, timeout=0) == ([], [slow])
    assert time.perf_counter() - start < 0.5


def test_wait_counts_failed_tasks_as_ready(cluster):
    @minray.remote
    def fails():
        raise ValueError("x")

    ref = fails.remote()
    assert minray.wait([ref], timeout=10) == ([ref], [])


def test_get_with_a_timeout_raises_get_timeout_error(cluster):
    ref = sleep_then.remote(3)
    start = time.perf_counter()
    with pytest.raises(minray.exceptions.GetTimeoutError) as info:
        minray.get(ref, timeout=0.3)
    assert isinstance(info.value, TimeoutError)
    assert time.perf_counter() - start < 1.5
    with pytest.raises(minray.exceptions.GetTimeoutError):
        minray.get(ref, timeout=0)


def test_refs_are_awaitable_in_a_user_event_loop(cluster):
    async def main():
        one = await sleep_then.remote(0.05, 1)
        many = await asyncio.gather(*[sleep_then.remote(0.01, i) for i in range(1, 6)])
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(sleep_then.remote(3), 0.2)
        return one, many

    assert asyncio.run(main()) == (1, [1, 2, 3, 4, 5])


def test_future_gives_a_concurrent_future(cluster):
    future = sleep_then.remote(0.05, 7).future()
    assert future.result(timeout=10) == 7


def test_awaiting_a_failed_task_raises_its_error(cluster):
    @minray.remote
    def fails():
        raise KeyError("k")

    async def main():
        with pytest.raises(KeyError):
            await fails.remote()

    asyncio.run(main())


@minray.remote
def echo(items):
    return items


@minray.remote
def relay(items):
    return minray.get(echo.remote(items))


@pytest.mark.parametrize("hop", [echo, relay], ids=["one_hop", "two_hops"])
def test_a_ref_that_travels_back_to_its_owner_is_still_freed(cluster, hop):
    inner = minray.put(np.ones(200_000))
    back = minray.get(hop.remote([inner]))
    assert back[0] == inner
    assert float(minray.get(back[0]).sum()) == 200_000.0
    del inner, back
    gc.collect()
    assert _wait_for_no_live_objects() == 0


def test_a_ref_put_by_a_task_and_returned_lives_until_the_caller_drops_it(cluster):
    @minray.remote
    def make():
        return [minray.put(np.ones(300_000))]

    (inner,) = minray.get(make.remote())
    time.sleep(0.3)
    assert float(minray.get(inner).sum()) == 300_000.0
    del inner
    gc.collect()
    assert _wait_for_no_live_objects() == 0


def test_get_of_an_object_whose_owner_died_raises_owner_died_error(cluster):
    import signal

    @minray.remote(max_retries=0)
    def make():
        return [minray.put("owned by a worker")], os.getpid()

    (inner,), pid = minray.get(make.remote())
    assert minray.get(inner) == "owned by a worker"
    os.kill(pid, signal.SIGKILL)
    start = time.perf_counter()
    deadline = time.time() + 5
    while True:
        try:
            minray.get(inner, timeout=5)
        except minray.exceptions.OwnerDiedError as error:
            assert "owner" in str(error)
            break
        assert time.time() < deadline, "get kept succeeding after the owner died"
        time.sleep(0.05)
    assert time.perf_counter() - start < 6


def test_idle_workers_that_own_objects_are_kept_and_the_others_stopped(monkeypatch):
    monkeypatch.setenv("MINRAY_IDLE_WORKER_TIMEOUT_S", "0.3")
    gen = _start_cluster(num_cpus=1)
    next(gen)
    try:

        @minray.remote
        def inner(i):
            time.sleep(0.3)
            return [minray.put(f"value {i}")]

        @minray.remote
        def outer():
            return minray.get([inner.remote(i) for i in range(3)])

        refs = [nested[0] for nested in minray.get(outer.remote())]
        assert minray.nodes()[0]["Workers"] > 1  # blocked gets made the pool grow
        time.sleep(2)  # several trimming rounds
        assert minray.get(refs) == ["value 0", "value 1", "value 2"]
        del refs
        gc.collect()
        deadline = time.time() + 10
        while minray.nodes()[0]["Workers"] > 1 and time.time() < deadline:
            time.sleep(0.1)
        assert minray.nodes()[0]["Workers"] == 1, "idle workers that own nothing exit"
    finally:
        next(gen, None)


def test_an_interrupted_put_gives_its_room_back(cluster, monkeypatch):
    from minray import serialization

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(serialization, "write_segment", interrupted)
    with pytest.raises(KeyboardInterrupt):
        minray.put(np.ones(1_000_000))
    monkeypatch.undo()
    assert _wait_for_no_live_objects() == 0
    assert minray.get(minray.put(np.ones(1_000_000))).sum() == 1_000_000


def test_wait_one_at_a_time_over_many_own_refs_returns_each_once(cluster):
    @minray.remote
    def value(i):
        return i

    not_ready = [value.remote(i) for i in range(300)]
    seen = []
    while not_ready:
        ready, not_ready = minray.wait(not_ready)
        assert len(ready) == 1
        seen.append(minray.get(ready[0]))
    assert sorted(seen) == list(range(300))


def test_wait_for_several_own_refs_with_a_timeout_returns_what_is_ready(cluster):
    @minray.remote
    def sleep(seconds):
        time.sleep(seconds)
        return seconds

    refs = [sleep.remote(0), sleep.remote(0), sleep.remote(30)]
    ready, not_ready = minray.wait(refs, num_returns=3, timeout=1.0)
    assert set(ready) == set(refs[:2]) and not_ready == [refs[2]]
