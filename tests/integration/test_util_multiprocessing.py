"""minray.util.multiprocessing.Pool: the stdlib Pool API on actors, with its results and errors."""

from __future__ import annotations

import itertools
import multiprocessing
import multiprocessing.pool
import os
import pickle
import time

import psutil
import pytest

import minray
from minray.exceptions import RayActorError
from minray.util.multiprocessing import Pool, TimeoutError
from tests.conftest import assert_cleaned_up, runtime_processes


def square(x):
    return x * x


def slow_square(x, delay=0.2):
    time.sleep(delay)
    return x * x


def fails_on_seven(x):
    if x == 7:
        raise ValueError(f"bad item {x}")
    return x


def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


def pid(_=None):
    return os.getpid()


def slow_pid(_=None):
    time.sleep(0.1)
    return os.getpid()


_configured = None


def configure(value):
    global _configured
    _configured = value


def read_configured(_=None):
    return _configured


def failing_initializer():
    raise KeyError("no config")


class NeedsTwoArgs(Exception):
    def __init__(self, a, b):
        super().__init__(a)


def raise_unpicklable(_):
    raise NeedsTwoArgs("a", "b")


def wait_until_gone(pids, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and _not_zombie(p)]
        if not alive:
            return []
        time.sleep(0.05)
    return alive


def _not_zombie(p):
    try:
        return psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# --- the seed and the basic calls ------------------------------------------------------------


def test_the_seed_program_maps_over_one_actor_per_cpu(cluster):
    pool = Pool()
    assert pool.map(square, range(100)) == [x * x for x in range(100)]
    # one process per cluster CPU (2 here), each its own OS process
    pids = set(pool.map(slow_pid, range(8), chunksize=1))
    assert len(pids) == 2 and os.getpid() not in pids
    pool.close()
    pool.join()


def test_map_starmap_apply_give_the_stdlib_results(cluster):
    items = list(range(37))
    pairs = [(x, 2) for x in range(11)]
    squares = [x * x for x in items]
    powers = list(itertools.starmap(pow, pairs))
    with Pool(2) as pool:
        assert pool.map(square, items) == squares
        assert pool.map(square, iter(items), chunksize=5) == squares
        assert pool.map(square, range(37), chunksize=100) == squares
        assert pool.starmap(pow, pairs) == powers
        assert pool.starmap_async(pow, pairs, chunksize=3).get(10) == powers
        assert pool.apply(divmod, (17, 5)) == (3, 2)
        assert pool.apply(int, ("ff",), {"base": 16}) == 255
        assert pool.map(square, []) == [] and pool.starmap(pow, []) == []


def test_lambdas_and_closures_run_in_the_actors(cluster):
    offset = 1000
    with Pool(2) as pool:
        assert pool.map(lambda x: x + offset, range(5)) == [1000, 1001, 1002, 1003, 1004]
        assert pool.apply(lambda a, b=0: a - b, (10,), {"b": 3}) == 7
        assert list(pool.imap(lambda x: -x, range(3))) == [0, -1, -2]


# --- AsyncResult ---------------------------------------------------------------------------


def test_async_results_ready_successful_wait_and_callbacks(cluster):
    seen = []
    with Pool(2) as pool:
        result = pool.apply_async(sleep_then, (0.5, "done"), callback=seen.append)
        with pytest.raises(ValueError, match="not ready"):
            result.successful()
        assert not result.ready()
        result.wait(0.05)
        assert not result.ready()
        assert result.get(timeout=10) == "done"
        assert result.ready() and result.successful()
        assert seen == ["done"]  # the callback ran before get() returned

        mapped = pool.map_async(square, range(10), callback=seen.append)
        mapped.wait()
        assert mapped.ready() and mapped.successful()
        assert mapped.get() == seen[-1] == [x * x for x in range(10)]


def test_get_with_a_timeout_raises_multiprocessing_timeout_error(cluster):
    with Pool(2) as pool:
        result = pool.apply_async(sleep_then, (1.0, "late"))
        with pytest.raises(TimeoutError):
            result.get(timeout=0.1)
        assert TimeoutError is multiprocessing.TimeoutError
        assert result.get(timeout=10) == "late"
        mapped = pool.map_async(slow_square, [1, 2])
        with pytest.raises(multiprocessing.TimeoutError):
            mapped.get(0.01)
        assert mapped.get(10) == [1, 4]


# --- errors ------------------------------------------------------------------------------


def test_an_error_in_the_function_is_raised_with_its_own_type(cluster):
    with Pool(2) as pool:
        with pytest.raises(ValueError, match="bad item 7") as info:
            pool.map(fails_on_seven, range(20), chunksize=3)
        # as the stdlib: the original class, the remote traceback as its cause
        assert type(info.value) is ValueError
        assert isinstance(info.value.__cause__, multiprocessing.pool.RemoteTraceback)
        assert "fails_on_seven" in str(info.value.__cause__)
        with pytest.raises(ValueError):
            pool.starmap(fails_on_seven, [(1,), (7,)])
        with pytest.raises(ValueError):
            pool.apply(fails_on_seven, (7,))
        # the pool keeps working after errors
        assert pool.map(fails_on_seven, range(5)) == [0, 1, 2, 3, 4]


def test_error_callback_receives_the_exception(cluster):
    errors, values = [], []
    with Pool(2) as pool:
        result = pool.apply_async(
            fails_on_seven, (7,), callback=values.append, error_callback=errors.append
        )
        result.wait(10)
        assert result.ready() and not result.successful()
        assert values == [] and type(errors[0]) is ValueError
        with pytest.raises(ValueError):
            result.get()
        mapped = pool.map_async(
            fails_on_seven, range(10), callback=values.append, error_callback=errors.append
        )
        with pytest.raises(ValueError, match="bad item 7"):
            mapped.get(10)
        assert values == [] and len(errors) == 2 and type(errors[1]) is ValueError


def test_an_exception_that_cannot_be_pickled_becomes_maybe_encoding_error(cluster):
    with Pool(2) as pool:
        with pytest.raises(multiprocessing.pool.MaybeEncodingError, match="NeedsTwoArgs"):
            pool.map(raise_unpicklable, range(3))


def test_a_crashed_process_fails_its_work_and_is_replaced(cluster):
    with Pool(1) as pool:
        first = pool.apply(pid)
        with pytest.raises(RayActorError):
            pool.apply(os._exit, (1,))
        assert pool.map(square, range(4)) == [0, 1, 4, 9]
        assert pool.apply(pid) != first


# --- imap ----------------------------------------------------------------------------------


def test_imap_keeps_input_order_and_imap_unordered_yields_as_completed(cluster):
    delays = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    with Pool(2) as pool:
        ordered = list(pool.imap(sleep_then_item, enumerate(delays)))
        assert ordered == list(range(6))
        unordered = list(pool.imap_unordered(sleep_then_item, enumerate(delays)))
        assert sorted(unordered) == list(range(6))
        assert unordered[-1] == 0  # the slow first item completes last
        with_chunks = list(pool.imap(square, range(50), chunksize=7))
        assert with_chunks == [x * x for x in range(50)]
        assert sorted(pool.imap_unordered(square, range(50), chunksize=7)) == with_chunks


def sleep_then_item(pair):
    index, delay = pair
    time.sleep(delay)
    return index


def test_imap_next_timeout_errors_and_lazy_inputs(cluster):
    def numbers():
        yield from range(3)
        raise RuntimeError("input broke")

    with Pool(2) as pool:
        iterator = pool.imap(slow_square, [3])
        with pytest.raises(TimeoutError):
            iterator.next(timeout=0.01)
        assert iterator.next(timeout=10) == 9
        with pytest.raises(StopIteration):
            next(iterator)
        # an item's error is raised in its place; iteration goes on after it
        iterator = pool.imap(fails_on_seven, range(5, 10))
        assert [next(iterator), next(iterator)] == [5, 6]
        with pytest.raises(ValueError):
            next(iterator)
        assert list(iterator) == [8, 9]
        # an error of the input iterable itself is raised where it happened
        iterator = pool.imap(square, numbers())
        assert [next(iterator) for _ in range(3)] == [0, 1, 4]
        with pytest.raises(RuntimeError, match="input broke"):
            next(iterator)
        with pytest.raises(StopIteration):
            next(iterator)


# --- chunking ------------------------------------------------------------------------------


def test_chunksize_is_checked_and_respected(cluster):
    with Pool(2) as pool:
        with pytest.raises(ValueError, match="Chunksize"):
            pool.map(square, range(3), chunksize=0)
        with pytest.raises(ValueError, match="Chunksize"):
            pool.imap(square, range(3), chunksize=0)
        # chunksize=5: items of one chunk run in one process, in order
        pids = pool.map(slow_pid, range(10), chunksize=5)
        assert pids[:5] == [pids[0]] * 5 and pids[5:] == [pids[5]] * 5


def test_a_hundred_thousand_tiny_items_map_quickly(cluster):
    items = range(100_000)
    with Pool(2) as pool:
        started = time.monotonic()
        assert pool.map(lambda x: x + 1, items) == list(range(1, 100_001))
        default_chunks = time.monotonic() - started
        started = time.monotonic()
        assert pool.map(lambda x: x + 1, items, chunksize=200) == list(range(1, 100_001))
        small_chunks = time.monotonic() - started
    assert default_chunks < 20 and small_chunks < 30  # about 0.05 s and 0.2 s here


# --- lifetime ------------------------------------------------------------------------------


def test_close_then_join_finishes_the_work_and_stops_the_processes(cluster):
    pool = Pool(2)
    pids = set(pool.map(slow_pid, range(4), chunksize=1))
    pending = pool.map_async(slow_square, range(6), chunksize=1)
    with pytest.raises(ValueError, match="Pool is still running"):
        pool.join()
    pool.close()
    with pytest.raises(ValueError, match="Pool not running"):
        pool.map(square, range(3))
    with pytest.raises(ValueError, match="Pool not running"):
        pool.apply_async(square, (1,))
    with pytest.raises(ValueError, match="Pool not running"):
        pool.imap(square, range(3))
    pool.join()
    assert pending.get(0) == [x * x for x in range(6)]  # work submitted before close() ran
    assert wait_until_gone(pids) == []


def test_terminate_stops_running_work_at_once(cluster):
    pool = Pool(2)
    pids = set(pool.map(slow_pid, range(4), chunksize=1))
    long_running = pool.apply_async(sleep_then, (30, "never"))
    queued = pool.map_async(slow_square, range(20), chunksize=1)
    started = time.monotonic()
    pool.terminate()
    assert time.monotonic() - started < 10
    with pytest.raises(RuntimeError, match="terminated"):
        long_running.get(5)
    with pytest.raises(RuntimeError, match="terminated"):
        queued.get(5)
    with pytest.raises(ValueError, match="Pool not running"):
        pool.apply(square, (2,))
    pool.join()
    pool.terminate()  # again: nothing to do
    assert wait_until_gone(pids) == []


def test_the_context_manager_terminates_on_exit(cluster):
    with Pool(2) as pool:
        pids = set(pool.map(slow_pid, range(4), chunksize=1))
        assert repr(pool) == "<Pool state=RUN pool_size=2>"
    with pytest.raises(ValueError, match="Pool not running"):
        pool.map(square, range(3))
    assert wait_until_gone(pids) == []
    with pytest.raises(NotImplementedError):
        pickle.dumps(pool)


# --- processes: count, initializer, maxtasksperchild -------------------------------------------


def test_the_number_of_processes_is_checked_against_the_cluster(cluster):
    with pytest.raises(ValueError, match=">0"):
        Pool(0)
    with pytest.raises(ValueError, match="only 2 CPUs"):
        Pool(3)
    with Pool(1) as pool:
        assert len(set(pool.map(slow_pid, range(4), chunksize=1))) == 1


def test_the_initializer_runs_once_in_each_process(cluster):
    with Pool(2, initializer=configure, initargs=("ready",)) as pool:
        assert pool.map(read_configured, range(8), chunksize=1) == ["ready"] * 8
    assert _configured is None  # it ran in the actors, not here
    with pytest.raises(KeyError, match="no config"):
        Pool(2, initializer=failing_initializer)
    with pytest.raises(TypeError):
        Pool(2, initializer="not callable")


def test_maxtasksperchild_replaces_a_process_after_that_many_tasks(cluster):
    with pytest.raises(ValueError):
        Pool(1, maxtasksperchild=0)
    with Pool(1, initializer=configure, initargs=("again",), maxtasksperchild=2) as pool:
        pids = [pool.apply(pid) for _ in range(6)]
        assert pids[0] == pids[1] and pids[2] == pids[3] and pids[4] == pids[5]
        assert len(set(pids)) == 3
        # replacements run the initializer too
        assert pool.map(read_configured, range(6), chunksize=1) == ["again"] * 6


def test_the_pool_starts_minray_when_it_is_not_running():
    assert not minray.is_initialized()
    pool = None
    try:
        pool = Pool(1)
        assert minray.is_initialized()
        assert pool.map(square, range(3)) == [0, 1, 4]
    finally:
        if pool is not None:
            pool.terminate()
        session_dir = minray.api._state.session_dir
        processes = runtime_processes()
        minray.shutdown()
    assert_cleaned_up(processes, session_dir)
