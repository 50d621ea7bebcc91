"""A threaded actor's call threads: concurrency up to their size, waiting for earlier
calls, a failing call, and stopping with calls still queued."""

from __future__ import annotations

import threading

from minray.runtime.call_threads import CallThreads


def test_calls_that_wait_on_each_other_each_get_a_thread_up_to_the_size() -> None:
    threads = CallThreads(4, "Actor")
    barrier = threading.Barrier(4, timeout=10)
    done: list[int] = []
    for i in range(4):
        threads.submit(lambda i=i: (barrier.wait(), done.append(i)))
    threads.wait_before(threads.mark())
    assert sorted(done) == [0, 1, 2, 3]
    threads.stop()


def test_wait_before_waits_for_the_calls_before_the_mark_only() -> None:
    threads = CallThreads(2, "Actor")
    release_first, release_second = threading.Event(), threading.Event()
    threads.submit(release_first.wait, 10)
    mark = threads.mark()
    threads.submit(release_second.wait, 10)
    waited = threading.Event()
    waiter = threading.Thread(target=lambda: (threads.wait_before(mark), waited.set()))
    waiter.start()
    assert not waited.wait(0.1)  # the first call still runs
    release_first.set()
    assert waited.wait(10)  # the second still runs: not waited for
    release_second.set()
    waiter.join(10)
    threads.stop()


def test_a_call_that_raises_leaves_its_thread_serving_the_next() -> None:
    threads = CallThreads(1, "Actor")
    ran = threading.Event()
    threads.submit(lambda: 1 / 0)
    threads.submit(ran.set)
    assert ran.wait(10)
    threads.stop()


def test_stop_drops_the_calls_not_started_and_nothing_waits_for_them() -> None:
    threads = CallThreads(1, "Actor")
    release, dropped = threading.Event(), threading.Event()
    threads.submit(release.wait, 10)
    threads.submit(dropped.set)
    threads.stop()
    release.set()
    threads.wait_before(threads.mark())  # (returns: the dropped call counts as ended)
    assert not dropped.is_set()
