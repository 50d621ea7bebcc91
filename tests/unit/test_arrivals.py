"""Arrival notices across threads: MemoryStore callbacks and object_reader._Countdown."""

import collections
import contextlib
import sys
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minray.protocol.messages import ValueKind
from minray.runtime.memory_store import MemoryStore, StoredValue
from minray.runtime.object_reader import _Countdown

VALUE = StoredValue(ValueKind.INLINE, [b"v"], [])
ERROR = StoredValue(ValueKind.ERROR, b"pickled error", [])


@contextlib.contextmanager
def frequent_thread_switches():
    """Make the interpreter switch threads often, so races show up within few rounds."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def run_threads(*bodies, timeout: float = 10.0) -> None:
    """Run each body in its own thread; re-raise the first exception one raised."""
    errors = []

    def guarded(body):
        try:
            body()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(body,), daemon=True) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if errors:
        raise errors[0]


# --- MemoryStore.add_callback / remove_callback ------------------------------------------


@pytest.mark.parametrize("adders", [1, 2])
def test_add_callback_racing_put_calls_every_callback_exactly_once(adders):
    # Rounds of a batch each: the threads start a round together and walk the same ids,
    # so adds and puts of one id often overlap (without the store's lock, some callbacks
    # get lost in nearly every run of this test).
    rounds, batch = 100, 500
    store = MemoryStore()
    ids = [[b"obj-%d-%d" % (r, i) for i in range(batch)] for r in range(rounds)]
    fired = []  # (adder, object_id), appended on whichever thread calls the callback
    callbacks = [lambda oid, a=a: fired.append((a, oid)) for a in range(adders)]
    start = threading.Barrier(adders + 1)

    def adder(a):
        for round_ids in ids:
            start.wait(5)
            for oid in round_ids:
                store.add_callback(oid, callbacks[a])

    def putter():
        for round_ids in ids:
            start.wait(5)
            for oid in round_ids:
                store.put(oid, VALUE)

    with frequent_thread_switches():
        run_threads(putter, *[lambda a=a: adder(a) for a in range(adders)])

    counts = collections.Counter(fired)
    every = [(a, oid) for a in range(adders) for round_ids in ids for oid in round_ids]
    missing = [key for key in every if counts[key] == 0]
    assert not missing, f"{len(missing)} callbacks never fired, e.g. {missing[:3]}"
    assert max(counts.values()) == 1, "a callback fired twice"
    assert len(fired) == len(every)
    assert store._callbacks == {}, "callbacks were left behind for values that arrived"


def test_add_callback_for_a_value_already_there_calls_it_now_on_the_calling_thread():
    store = MemoryStore()
    store.put(b"a", VALUE)
    called = []
    run_threads(
        lambda: store.add_callback(b"a", lambda oid: called.append((oid, threading.get_ident())))
    )
    assert len(called) == 1
    assert called[0][0] == b"a"
    assert called[0][1] != threading.get_ident()
    assert store._callbacks == {}


def test_callback_added_from_another_thread_is_called_by_put_once():
    store = MemoryStore()
    called = []
    run_threads(lambda: store.add_callback(b"a", called.append))
    assert called == []
    store.put(b"a", VALUE)
    assert called == [b"a"]
    store.put(b"a", VALUE)  # a second put finds no callback left
    assert called == [b"a"]


def test_removed_callback_is_not_called_by_put():
    store = MemoryStore()
    kept, removed = [], []
    store.add_callback(b"a", kept.append)
    store.add_callback(b"a", removed.append)
    run_threads(lambda: store.remove_callback(b"a", removed.append))
    store.put(b"a", VALUE)
    assert kept == [b"a"]
    assert removed == []


def test_removing_the_last_callback_forgets_the_object():
    store = MemoryStore()
    called = []
    store.add_callback(b"a", called.append)
    run_threads(lambda: store.remove_callback(b"a", called.append))
    assert store._callbacks == {}
    store.put(b"a", VALUE)
    assert called == []


def test_remove_callback_that_is_unknown_or_already_called_does_nothing():
    store = MemoryStore()
    called = []
    store.remove_callback(b"never", called.append)
    store.add_callback(b"a", called.append)
    store.put(b"a", VALUE)
    store.remove_callback(b"a", called.append)
    store.remove_callback(b"a", called.append)
    store.add_callback(b"b", called.append)
    store.remove_callback(b"b", lambda oid: None)  # a different callback: b's stays
    store.put(b"b", VALUE)
    assert called == [b"a", b"b"]


def test_remove_callback_racing_put_either_removes_it_or_lets_it_fire_once():
    rounds, batch = 40, 500
    store = MemoryStore()
    ids = [[b"obj-%d-%d" % (r, i) for i in range(batch)] for r in range(rounds)]
    fired = []
    start = threading.Barrier(2)
    for round_ids in ids:
        for oid in round_ids:
            store.add_callback(oid, fired.append)

    def remover():
        for round_ids in ids:
            start.wait(5)
            for oid in round_ids:
                store.remove_callback(oid, fired.append)

    def putter():
        for round_ids in ids:
            start.wait(5)
            for oid in round_ids:
                store.put(oid, VALUE)

    with frequent_thread_switches():
        run_threads(remover, putter)
    assert max(collections.Counter(fired).values(), default=0) <= 1
    assert store._callbacks == {}


# --- _Countdown --------------------------------------------------------------------------


def arrive_later(countdown: _Countdown, values, delay: float = 0.02) -> threading.Thread:
    def body():
        time.sleep(delay)
        for value in values:
            countdown.arrived(value)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    "arrivals, left",
    [([VALUE] * 5, 0), ([VALUE, ERROR], 3), ([VALUE, None], 3)],
    ids=["all-arrived", "early-on-error", "early-on-none"],
)
def test_countdown_wakes_from_another_thread(arrivals, left):
    """After all arrivals, or early on an error (or a missing value)."""
    countdown = _Countdown(5)
    thread = arrive_later(countdown, arrivals)
    assert countdown.wait(5) is True
    thread.join(5)
    assert countdown.left == left
    assert not countdown.stopped


def test_countdown_does_not_wake_before_the_last_arrival():
    countdown = _Countdown(3)
    countdown.arrived(VALUE)
    countdown.arrived(VALUE)
    assert countdown.wait(0.01) is False
    countdown.arrived(VALUE)
    assert countdown.wait(0) is True


def test_countdown_counts_arrivals_from_many_threads():
    threads_count, each = 8, 250
    countdown = _Countdown(threads_count * each)
    with frequent_thread_switches():
        threads = [arrive_later(countdown, [VALUE] * each, delay=0) for _ in range(threads_count)]
        assert countdown.wait(5) is True
        for thread in threads:
            thread.join(5)
    assert countdown.left == 0


def test_countdown_wait_times_out():
    countdown = _Countdown(2)
    countdown.arrived(VALUE)
    started = time.monotonic()
    assert countdown.wait(0.05) is False
    assert time.monotonic() - started >= 0.04
    assert countdown.left == 1


def test_countdown_stop_wakes_the_waiter():
    countdown = _Countdown(3)
    thread = threading.Thread(target=lambda: (time.sleep(0.02), countdown.stop()), daemon=True)
    thread.start()
    assert countdown.wait(None) is True  # would sleep forever without the stop
    thread.join(5)
    assert countdown.stopped
    assert countdown.left == 3


@pytest.mark.parametrize("timeout", [None, -1, 5])
def test_countdown_woken_before_wait_returns_at_once(timeout):
    countdown = _Countdown(1)
    countdown.arrived(VALUE)
    started = time.monotonic()
    assert countdown.wait(timeout) is True
    assert time.monotonic() - started < 1


def test_arrivals_and_stops_after_waking_do_not_raise():
    countdown = _Countdown(1)
    thread = arrive_later(countdown, [VALUE])
    assert countdown.wait(5) is True
    thread.join(5)
    # late arrivals (objects whose callbacks were not removed yet) and a stop
    run_threads(
        lambda: [countdown.arrived(VALUE) for _ in range(3)],
        lambda: countdown.arrived(ERROR),
        lambda: countdown.arrived(None),
        countdown.stop,
    )
    assert countdown.left == -5
    assert countdown.stopped


def test_many_wake_reasons_at_once_wake_exactly_once():
    countdown = _Countdown(2)
    with frequent_thread_switches():
        run_threads(
            lambda: countdown.arrived(VALUE),
            lambda: countdown.arrived(VALUE),
            lambda: countdown.arrived(ERROR),
            countdown.stop,
        )
    assert countdown.wait(0) is True
    assert countdown.wait(0) is False, "woken once: the lock was released only once"


# --- one callback held alone, several in a list -------------------------------------------


@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["add", "remove"]), st.integers(0, 2), st.integers(0, 2)),
        max_size=12,
    )
)
def test_callbacks_added_and_removed_are_called_as_a_list_would_be(ops):
    """An object's first callback is kept alone and later ones in a list: whatever the
    order of adds and removes, put calls what a plain list of callbacks would."""
    store = MemoryStore()
    ids = [b"obj-%d" % i for i in range(3)]
    calls: list = []
    callbacks = [lambda oid, n=n: calls.append((oid, n)) for n in range(3)]
    expected: dict = {oid: [] for oid in ids}
    for op, which, n in ops:
        oid, callback = ids[which], callbacks[n]
        if op == "add":
            store.add_callback(oid, callback)
            expected[oid].append(n)
        else:
            store.remove_callback(oid, callback)
            if n in expected[oid]:
                expected[oid].remove(n)
    for oid in ids:
        store.put(oid, VALUE)
    assert calls == [(oid, n) for oid in ids for n in expected[oid]]
    assert store._callbacks == {}
