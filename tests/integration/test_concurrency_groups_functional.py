"""Actor concurrency groups and allow_out_of_order_execution, as in Ray 2.x.

Every wait here is bounded: calls that must run at the same time meet at a
barrier with a timeout, and calls held back wait on an event or a gate that
the test opens, never on a fixed sleep.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import minray
from minray.exceptions import ActorDiedError, GetTimeoutError, RayTaskError, TaskCancelledError
from minray.util import ActorPool

WAIT_S = 20  #: the longest any call here should take (a hang fails instead of blocking)


@minray.remote(concurrency_groups={"io": 2, "compute": 1})
class Threads:
    """A sync actor: its default group is the main thread; io has 2 threads, compute 1."""

    def __init__(self):
        self.release = threading.Event()
        self.io_barrier = threading.Barrier(2, timeout=WAIT_S)
        self.default_barrier = threading.Barrier(2, timeout=WAIT_S)

    def busy(self):
        return self.release.wait(timeout=WAIT_S)

    def where(self):
        return (
            threading.current_thread().name,
            threading.current_thread() is threading.main_thread(),
        )

    def meet_in_default(self):
        self.default_barrier.wait()
        return threading.current_thread().name

    @minray.method(concurrency_group="io")
    def meet(self):
        self.io_barrier.wait()  # BrokenBarrierError unless both io calls run at once
        return threading.current_thread().name

    @minray.method(concurrency_group="io")
    def io_where(self):
        return threading.current_thread().name

    @minray.method(concurrency_group="compute")
    def unblock(self):
        self.release.set()
        return threading.current_thread().name


def test_two_io_calls_run_at_once_while_the_default_group_of_one_is_busy(cluster):
    actor = Threads.remote()
    busy = actor.busy.remote()
    names = minray.get([actor.meet.remote(), actor.meet.remote()], timeout=WAIT_S)
    assert len(set(names)) == 2
    assert all(name.startswith("Threads.io") for name in names)
    assert minray.wait([busy], timeout=0)[0] == []  # the default group is still busy
    assert minray.get(actor.unblock.remote(), timeout=WAIT_S).startswith("Threads.compute")
    assert minray.get(busy, timeout=WAIT_S) is True


def test_a_sync_actors_default_group_runs_on_the_main_thread(cluster):
    actor = Threads.remote()
    assert minray.get(actor.where.remote(), timeout=WAIT_S) == ("MainThread", True)


def test_options_send_one_call_to_another_group(cluster):
    actor = Threads.remote()
    assert minray.get(actor.io_where.remote(), timeout=WAIT_S).startswith("Threads.io")
    moved = actor.io_where.options(concurrency_group="compute").remote()
    assert minray.get(moved, timeout=WAIT_S).startswith("Threads.compute")
    in_group = actor.where.options(concurrency_group="io").remote()
    name, on_main = minray.get(in_group, timeout=WAIT_S)
    assert name.startswith("Threads.io") and not on_main


def test_max_concurrency_sizes_the_default_group(cluster):
    actor = Threads.options(max_concurrency=2).remote()
    names = minray.get([actor.meet_in_default.remote() for _ in range(2)], timeout=WAIT_S)
    assert len(set(names)) == 2
    assert not any(name.startswith("Threads.io") for name in names)


def test_a_group_runs_no_more_calls_at_once_than_its_size(cluster):
    @minray.remote(concurrency_groups={"one": 1, "two": 2})
    class Counting:
        def __init__(self):
            self.lock = threading.Lock()
            self.running = {"one": 0, "two": 0}
            self.most = {"one": 0, "two": 0}

        def _count(self, group):
            with self.lock:
                self.running[group] += 1
                self.most[group] = max(self.most[group], self.running[group])
            time.sleep(0.02)
            with self.lock:
                self.running[group] -= 1

        @minray.method(concurrency_group="one")
        def in_one(self):
            self._count("one")

        @minray.method(concurrency_group="two")
        def in_two(self):
            self._count("two")

        def most_at_once(self):
            return self.most

    actor = Counting.remote()
    minray.get(
        [actor.in_one.remote() for _ in range(4)] + [actor.in_two.remote() for _ in range(6)]
    )
    most = minray.get(actor.most_at_once.remote(), timeout=WAIT_S)
    assert most["one"] == 1
    assert most["two"] <= 2


@minray.remote(concurrency_groups={"io": 2, "compute": 4})
class Loops:
    """An async actor: each group is an event loop on a thread of its own."""

    def __init__(self):
        self.default_loop = asyncio.get_event_loop()
        self.release = threading.Event()

    @minray.method(concurrency_group="io")
    async def f1(self):
        return threading.current_thread().ident, id(asyncio.get_running_loop())

    @minray.method(concurrency_group="io")
    def f2(self):
        return threading.current_thread().ident, id(asyncio.get_event_loop())

    @minray.method(concurrency_group="compute")
    def f3(self):
        return threading.current_thread().ident, id(asyncio.get_event_loop())

    async def f5(self):
        return asyncio.get_running_loop() is self.default_loop

    def block_the_default_loop(self):
        return self.release.wait(timeout=WAIT_S)  # a sync method blocks its loop

    @minray.method(concurrency_group="io")
    def unblock(self):
        self.release.set()

    @minray.method(concurrency_group="io")
    async def sleep_forever(self):
        self.sleeping = True
        await asyncio.sleep(3600)

    async def is_sleeping(self):
        return getattr(self, "sleeping", False)


def test_each_group_of_an_async_actor_has_its_own_loop_and_thread(cluster):
    actor = Loops.remote()
    f1, f2, f3 = minray.get([actor.f1.remote(), actor.f2.remote(), actor.f3.remote()])
    assert f1 == f2  # same group: same thread, same loop, async or not
    assert f1[0] != f3[0] and f1[1] != f3[1]
    assert minray.get(actor.f5.remote(), timeout=WAIT_S) is True  # default group: default loop
    moved = minray.get(actor.f2.options(concurrency_group="compute").remote(), timeout=WAIT_S)
    assert moved == f3


def test_a_blocked_default_loop_does_not_block_other_groups(cluster):
    actor = Loops.remote()
    blocked = actor.block_the_default_loop.remote()
    assert minray.get(actor.f1.remote(), timeout=WAIT_S)
    minray.get(actor.unblock.remote(), timeout=WAIT_S)
    assert minray.get(blocked, timeout=WAIT_S) is True


def test_async_calls_in_a_group_wait_for_each_other_on_its_loop(cluster):
    @minray.remote(concurrency_groups={"batch": 3})
    class Batcher:
        def __init__(self):
            self.items = []
            self.full = None

        @minray.method(concurrency_group="batch")
        def start(self):
            self.full = asyncio.Event()

        @minray.method(concurrency_group="batch")
        async def add(self, x):
            self.items.append(x)
            if len(self.items) == 3:
                self.full.set()
            await asyncio.wait_for(self.full.wait(), WAIT_S)
            return sorted(self.items)

    actor = Batcher.remote()
    minray.get(actor.start.remote(), timeout=WAIT_S)
    refs = [actor.add.remote(i) for i in range(3)]
    assert minray.get(refs, timeout=WAIT_S) == [[0, 1, 2]] * 3


def test_cancel_reaches_a_running_call_on_a_groups_loop(cluster):
    actor = Loops.remote()
    ref = actor.sleep_forever.remote()
    deadline = time.monotonic() + WAIT_S
    while not minray.get(actor.is_sleeping.remote()) and time.monotonic() < deadline:
        time.sleep(0.01)  # until it runs (bounded)
    minray.cancel(ref)
    with pytest.raises((TaskCancelledError, RayTaskError)) as caught:
        minray.get(ref, timeout=WAIT_S)
    assert isinstance(caught.value, TaskCancelledError)
    assert minray.get(actor.f5.remote(), timeout=WAIT_S) is True  # the actor lives on


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_exit_actor_in_a_group_ends_the_actor(cluster, kind):
    if kind == "sync":

        @minray.remote(concurrency_groups={"io": 1})
        class Exits:
            @minray.method(concurrency_group="io")
            def leave(self):
                minray.actor.exit_actor()

            def ping(self):
                return "pong"

    else:

        @minray.remote(concurrency_groups={"io": 1})
        class Exits:
            @minray.method(concurrency_group="io")
            async def leave(self):
                minray.actor.exit_actor()

            async def ping(self):
                return "pong"

    actor = Exits.remote()
    assert minray.get(actor.ping.remote(), timeout=WAIT_S) == "pong"
    with pytest.raises(ActorDiedError, match="exit_actor"):
        minray.get(actor.leave.remote(), timeout=WAIT_S)
    with pytest.raises(ActorDiedError):
        minray.get(actor.ping.remote(), timeout=WAIT_S)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_ray_terminate_lets_earlier_group_calls_finish_even_queued_ones(cluster, kind):
    if kind == "sync":

        @minray.remote(concurrency_groups={"one": 1})
        class OneAtATime:
            @minray.method(concurrency_group="one")
            def through(self, gate, value):
                assert minray.get(gate.wait.remote())
                return value

    else:

        @minray.remote(concurrency_groups={"one": 1})
        class OneAtATime:
            @minray.method(concurrency_group="one")
            async def through(self, gate, value):
                assert await gate.wait.remote()
                return value

    gate = Gate.remote()
    actor = OneAtATime.remote()
    first = actor.through.remote(gate, 1)
    second = actor.through.remote(gate, 2)  # queued behind the first in its group
    deadline = time.monotonic() + WAIT_S
    while minray.get(gate.waiting.remote()) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)  # until the first call runs (bounded)
    end = actor.__ray_terminate__.remote()
    minray.get(gate.open.remote())
    assert minray.get([first, second], timeout=WAIT_S) == [1, 2]
    with pytest.raises(ActorDiedError):
        minray.get(end, timeout=WAIT_S)


# --- bad input ---------------------------------------------------------------------------------


def test_a_method_in_an_undefined_group_fails_at_creation(cluster):
    @minray.remote(concurrency_groups={"io": 1})
    class Wrong:
        @minray.method(concurrency_group="gpu")
        def f(self):
            pass

    with pytest.raises(ValueError, match=r"Wrong\.f: The concurrency group 'gpu' is not defined"):
        Wrong.remote()
    Wrong.options(concurrency_groups={"gpu": 1}).remote()  # defined here: fine


def test_options_naming_an_undefined_group_fail_at_once(cluster):
    actor = Threads.remote()
    with pytest.raises(ValueError, match=r"'nope' is not defined for actor Threads"):
        actor.where.options(concurrency_group="nope")
    with pytest.raises(TypeError, match="concurrency_group must be the name"):
        actor.where.options(concurrency_group=3)


def test_bad_concurrency_groups_are_refused_at_decoration():
    with pytest.raises(ValueError, match="group 'io' must be at least 1"):

        @minray.remote(concurrency_groups={"io": 0})
        class Empty:
            pass

    with pytest.raises(TypeError, match="'concurrency_groups' must be dict"):

        @minray.remote(concurrency_groups=["io"])
        class Listed:
            pass

    with pytest.raises(TypeError, match="concurrency_group must be the name"):
        minray.method(concurrency_group="")


def test_concurrency_groups_on_a_function_are_an_invalid_option():
    with pytest.raises(ValueError, match="Invalid option keyword concurrency_groups for remote"):

        @minray.remote(concurrency_groups={"io": 1})
        def f():
            pass

    @minray.remote
    def g():
        pass

    with pytest.raises(ValueError, match="Invalid option keyword concurrency_groups for remote"):
        g.options(concurrency_groups={"io": 1})


# --- handles, ActorPool --------------------------------------------------------------------------


def test_handles_passed_to_a_task_or_found_by_name_keep_the_actors_groups(cluster):
    @minray.remote
    def call_in_io(actor):
        return minray.get(actor.where.options(concurrency_group="io").remote())

    actor = Threads.options(name="threads").remote()
    name, on_main = minray.get(call_in_io.remote(actor), timeout=WAIT_S)
    assert name.startswith("Threads.io") and not on_main
    found = minray.get_actor("threads")
    name, _ = minray.get(found.where.options(concurrency_group="io").remote(), timeout=WAIT_S)
    assert name.startswith("Threads.io")


def test_actor_pool_works_with_actors_that_use_groups(cluster):
    pool = ActorPool([Threads.remote(), Threads.remote()])
    names = list(pool.map(lambda a, _: a.io_where.remote(), range(4)))
    assert all(name.startswith("Threads.io") for name in names)
    moved = list(
        pool.map_unordered(
            lambda a, _: a.io_where.options(concurrency_group="compute").remote(), range(4)
        )
    )
    assert all(name.startswith("Threads.compute") for name in moved)


# --- allow_out_of_order_execution -----------------------------------------------------------------


@minray.remote
class Gate:
    def __init__(self):
        self.opened = False
        self.waiters = 0

    def open(self):
        self.opened = True

    def waiting(self):
        return self.waiters

    async def wait(self):
        self.waiters += 1
        deadline = time.monotonic() + WAIT_S
        while not self.opened and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self.opened


@minray.remote
def through(gate, value):
    """``value`` once the gate opens: an argument that is late until the test says so."""
    assert minray.get(gate.wait.remote()), "the gate never opened"
    return value


@minray.remote
class Adder:
    def __init__(self):
        self.total = 0

    def add(self, x):
        self.total += x
        return self.total


def test_out_of_order_a_call_with_a_late_argument_does_not_block_later_calls(cluster):
    gate = Gate.remote()
    adder = Adder.options(allow_out_of_order_execution=True).remote()
    first = adder.add.remote(through.remote(gate, 1))
    second = adder.add.remote(2)
    assert minray.get(second, timeout=WAIT_S) == 2  # ran while the first waited
    minray.get(gate.open.remote())
    assert minray.get(first, timeout=WAIT_S) == 3


def test_in_order_by_default_a_late_argument_holds_later_calls_back(cluster):
    gate = Gate.remote()
    adder = Adder.remote()
    first = adder.add.remote(through.remote(gate, 1))
    second = adder.add.remote(2)
    with pytest.raises(GetTimeoutError):
        minray.get(second, timeout=0.3)
    minray.get(gate.open.remote())
    assert minray.get([first, second], timeout=WAIT_S) == [1, 3]


def test_out_of_order_ray_terminate_still_waits_for_the_calls_before_it(cluster):
    gate = Gate.remote()
    adder = Adder.options(allow_out_of_order_execution=True).remote()
    assert minray.get(adder.add.remote(0), timeout=WAIT_S) == 0  # connected: calls go at once
    first = adder.add.remote(through.remote(gate, 1))
    end = adder.__ray_terminate__.remote()
    minray.get(gate.open.remote())
    assert minray.get(first, timeout=WAIT_S) == 1
    with pytest.raises(ActorDiedError):
        minray.get(end, timeout=WAIT_S)
