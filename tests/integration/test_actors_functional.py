"""Actors: creation, calls and their order, handles, concurrency, names, lifetime, failures."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

import minray
from minray.exceptions import (
    ActorAlreadyExistsError,
    ActorDiedError,
    ActorUnavailableError,
    GetTimeoutError,
    RayActorError,
    RayTaskError,
    TaskCancelledError,
)
from minray.util import list_named_actors


@minray.remote
class Counter:
    def __init__(self, start=0):
        self.n = start

    def incr(self, by=1):
        self.n += by
        return self.n

    def get(self):
        return self.n

    def pid(self):
        return os.getpid()

    def fail(self):
        raise ValueError("method failed")

    def crash(self):
        os._exit(1)

    def context(self):
        ctx = minray.get_runtime_context()
        return ctx.get_actor_id(), ctx.was_current_actor_reconstructed, ctx.get_actor_name()


@minray.remote
def slow_value(value, delay):
    time.sleep(delay)
    return value


# --- definition and handles -------------------------------------------------------------------


def test_a_handle_calls_methods_and_keeps_state(cluster):
    counter = Counter.remote(10)
    assert minray.get(counter.incr.remote()) == 11
    assert minray.get([counter.incr.remote(2) for _ in range(3)]) == [13, 15, 17]


def test_handle_repr_names_the_class_and_the_actor_id(cluster):
    counter = Counter.remote()
    actor_id = minray.get(counter.context.remote())[0]
    assert repr(counter) == str(counter) == f"Actor(Counter, {actor_id})"
    assert len(actor_id) == 32


def test_instantiating_or_calling_directly_says_what_to_do(cluster):
    with pytest.raises(TypeError, match=r"Counter\.remote\(\)"):
        Counter()
    counter = Counter.remote()
    with pytest.raises(TypeError, match=r"object\.incr\.remote\(\)"):
        counter.incr()


def test_a_missing_method_raises_attribute_error_on_the_caller(cluster):
    counter = Counter.remote()
    with pytest.raises(AttributeError, match="'ActorHandle' object has no attribute 'nope'"):
        counter.nope.remote()


def test_constructor_and_method_arguments_are_checked_on_the_caller(cluster):
    with pytest.raises(TypeError, match="Counter.remote"):
        Counter.remote(1, 2, 3)
    with pytest.raises(TypeError):
        Counter.remote().incr.remote(1, 2, 3)


def test_unpicklable_constructor_argument_is_named(cluster):
    lock = threading.Lock()
    with pytest.raises(TypeError, match=r"Counter.__init__.*argument 0.*lock"):
        Counter.remote(lock)


def test_unpicklable_return_value_names_the_method(cluster):
    @minray.remote
    class Leaky:
        def lock(self):
            return threading.Lock()

    with pytest.raises(TypeError, match=r"Leaky\.lock.*lock"):
        minray.get(Leaky.remote().lock.remote())


def test_method_num_returns_from_decorator_and_options(cluster):
    @minray.remote
    class Pair:
        @minray.method(num_returns=2)
        def two(self):
            return 1, 2

        def three(self):
            return 1, 2, 3

    pair = Pair.remote()
    first, second = pair.two.remote()
    assert minray.get([first, second]) == [1, 2]
    assert minray.get(pair.three.options(num_returns=3).remote()) == [1, 2, 3]


def test_handles_compare_equal_by_actor_and_survive_pickling(cluster):
    import pickle

    counter = Counter.remote()
    copy = pickle.loads(pickle.dumps(counter))
    assert copy == counter and hash(copy) == hash(counter)


# --- order and concurrency ------------------------------------------------------------------------


@minray.remote
class Recorder:
    def __init__(self):
        self.seen = []

    def add(self, value):
        self.seen.append(value)

    def get(self):
        return self.seen


def test_calls_from_one_caller_run_in_submission_order_despite_slow_arguments(cluster):
    log = Recorder.remote()
    log.add.remote(slow_value.remote("first", 0.5))
    log.add.remote("second")
    log.add.remote(slow_value.remote("third", 0.1))
    assert minray.get(log.get.remote()) == ["first", "second", "third"]


def test_calls_pushed_by_the_calling_thread_keep_each_callers_order(cluster):
    recorder = Recorder.remote()
    minray.get(recorder.get.remote())  # connected and idle: the next call skips the loop thread
    recorder.add.remote("a")
    recorder.add.remote(slow_value.remote("b", 0.3))  # waits on the loop thread for its argument
    recorder.add.remote("c")  # must not overtake "b"
    assert minray.get(recorder.get.remote()) == ["a", "b", "c"]

    def caller(name):
        for i in range(100):
            ref = recorder.add.remote((name, i))
            if i % 3 == 0:  # idle again now and then: the next call is pushed directly
                minray.get(ref)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seen = minray.get(recorder.get.remote())[3:]
    assert len(seen) == 400
    for n in range(4):
        assert [i for name, i in seen if name == n] == list(range(100))


def test_a_sync_actor_counts_exactly_with_many_callers(cluster):
    counter = Counter.remote()

    @minray.remote
    def hammer(counter, n):
        return minray.get([counter.incr.remote() for _ in range(n)])

    results = minray.get([hammer.remote(counter, 50) for _ in range(4)])
    seen = sorted(v for batch in results for v in batch)
    assert seen == list(range(1, 201))
    for batch in results:
        assert batch == sorted(batch)


def test_an_async_actor_runs_calls_concurrently_up_to_max_concurrency(cluster):
    @minray.remote
    class Sleeper:
        async def sleep(self, seconds):
            await asyncio.sleep(seconds)
            return seconds

    sleeper = Sleeper.remote()
    minray.get(sleeper.sleep.remote(0))
    start = time.monotonic()
    minray.get([sleeper.sleep.remote(0.5) for _ in range(40)])
    assert time.monotonic() - start < 2.0
    capped = Sleeper.options(max_concurrency=2).remote()
    minray.get(capped.sleep.remote(0))
    start = time.monotonic()
    minray.get([capped.sleep.remote(0.3) for _ in range(4)])
    assert time.monotonic() - start >= 0.55


def test_an_async_actor_awaits_other_refs(cluster):
    @minray.remote
    class Waiter:
        async def total(self, refs):
            values = await asyncio.gather(*refs)
            return sum(values)

    refs = [slow_value.remote(i, 0.05) for i in range(5)]
    assert minray.get(Waiter.remote().total.remote(refs)) == 10


def test_a_threaded_actor_runs_calls_on_a_pool_of_threads(cluster):
    @minray.remote(max_concurrency=4)
    class Pool:
        def sleep(self, seconds):
            time.sleep(seconds)
            return threading.current_thread().name

    pool = Pool.remote()
    minray.get(pool.sleep.remote(0))
    start = time.monotonic()
    names = minray.get([pool.sleep.remote(0.4) for _ in range(4)])
    assert time.monotonic() - start < 1.2
    assert "MainThread" not in names


def test_the_runtime_context_knows_the_actor(cluster):
    counter = Counter.options(name="ctx").remote()
    actor_id, reconstructed, name = minray.get(counter.context.remote())
    assert actor_id == counter._actor_id.hex()
    assert reconstructed is False
    assert name == "ctx"
    assert minray.get_runtime_context().get_actor_id() is None


# --- handles passed around (the parameter-server pattern) -----------------------------------------


def test_handles_pass_to_tasks_and_come_back_from_them(cluster):
    counter = Counter.remote()

    @minray.remote
    def bump(handle):
        return minray.get(handle.incr.remote())

    @minray.remote
    def make():
        return Counter.remote(100)

    assert minray.get(bump.remote(counter)) == 1
    assert minray.get(bump.remote([counter][0])) == 2
    made = minray.get(make.remote())
    assert minray.get(made.incr.remote()) == 101


def test_an_actor_calls_another_actor_through_a_handle(cluster):
    @minray.remote
    class Forwarder:
        def __init__(self, target):
            self.target = target

        def forward(self):
            return minray.get(self.target.incr.remote(5))

    counter = Counter.remote()
    assert minray.get(Forwarder.remote(counter).forward.remote()) == 5


# --- names and namespaces -----------------------------------------------------------------------


def test_named_actors_are_found_and_names_are_unique(cluster):
    counter = Counter.options(name="counter").remote()
    assert minray.get_actor("counter") == counter
    with pytest.raises(ActorAlreadyExistsError, match="already taken") as info:
        Counter.options(name="counter").remote()
    assert isinstance(info.value, ValueError)
    same = Counter.options(name="counter", get_if_exists=True).remote()
    assert same == counter
    assert list_named_actors() == ["counter"]


def test_tasks_and_actors_look_names_up_in_the_drivers_namespace(cluster):
    keep = Counter.options(name="shared_counter").remote()  # noqa: F841 - alive while held

    @minray.remote
    def bump_by_name():
        return minray.get(minray.get_actor("shared_counter").incr.remote())

    @minray.remote
    class Caller:
        def bump(self):
            namespace = minray.get_runtime_context().namespace
            return namespace, minray.get(minray.get_actor("shared_counter").incr.remote())

    first = minray.get(bump_by_name.remote())
    namespace, second = minray.get(Caller.remote().bump.remote())
    assert (first, second) == (1, 2)
    assert namespace == minray.get_runtime_context().namespace


def test_get_actor_of_a_missing_name_raises_value_error(cluster):
    with pytest.raises(ValueError, match="Failed to look up actor with name 'ghost'"):
        minray.get_actor("ghost")
    with pytest.raises(ValueError, match="non-empty"):
        minray.get_actor("")


def test_namespaces_separate_names(cluster):
    counter = Counter.options(name="shared", namespace="other").remote()
    with pytest.raises(ValueError):
        minray.get_actor("shared")
    assert minray.get_actor("shared", namespace="other") == counter
    assert {"name": "shared", "namespace": "other"} in list_named_actors(all_namespaces=True)


@pytest.mark.parametrize("cluster", [{"namespace": "course"}], indirect=True)
def test_init_namespace_is_the_default_for_names(cluster):
    counter = Counter.options(name="c").remote()
    assert list_named_actors(all_namespaces=True) == [{"name": "c", "namespace": "course"}]
    assert minray.get_actor("c") == counter


def test_bad_actor_options_are_refused_with_rays_messages(cluster):
    with pytest.raises(ValueError, match="Actor name cannot be an empty string"):
        Counter.options(name="")
    with pytest.raises(ValueError, match="Invalid option keyword num_returns for actors"):
        Counter.options(num_returns=2)
    with pytest.raises(ValueError, match="get_if_exists"):
        Counter.options(get_if_exists=True)
    with pytest.raises(ValueError, match="lifetime"):
        Counter.options(lifetime="forever")


# --- lifetime -------------------------------------------------------------------------------------


def _wait_dead(handle, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            minray.get(handle.get.remote(), timeout=2)
        except RayActorError:
            return True
        time.sleep(0.05)
    return False


def test_an_actor_exits_when_its_last_handle_is_gone(cluster):
    counter = Counter.options(name="scoped").remote()
    pid = minray.get(counter.pid.remote())
    pending = counter.incr.remote()
    del counter
    assert minray.get(pending) == 1  # calls already submitted still finish
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.05)
    assert not _pid_alive(pid)
    with pytest.raises(ValueError):
        minray.get_actor("scoped")


def test_a_borrowed_handle_keeps_the_actor_alive(cluster):
    @minray.remote
    class Holder:
        def __init__(self, handles):
            self.handles = handles

        def call(self):
            return minray.get(self.handles[0].incr.remote())

    counter = Counter.remote()
    holder = Holder.remote([counter])
    del counter
    time.sleep(0.5)
    assert minray.get(holder.call.remote()) == 1


def test_a_detached_actor_outlives_its_handles(cluster):
    Counter.options(name="kept", lifetime="detached").remote()
    time.sleep(0.3)
    assert minray.get(minray.get_actor("kept").incr.remote()) == 1


def _pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# --- kill, exit, failures -----------------------------------------------------------------------


def test_kill_fails_pending_and_later_calls(cluster):
    @minray.remote
    class Slow:
        def sleep(self):
            time.sleep(30)

        def get(self):
            return 1

    slow = Slow.remote()
    running = slow.sleep.remote()
    time.sleep(0.3)
    minray.kill(slow)
    with pytest.raises(ActorDiedError, match="minray.kill"):
        minray.get(running, timeout=10)
    with pytest.raises(ActorDiedError):
        minray.get(slow.get.remote(), timeout=10)
    minray.kill(slow)  # killing a dead actor is fine
    with pytest.raises(ValueError, match="only supported for actors"):
        minray.kill(slow_value)


def test_exit_actor_ends_the_actor_and_fails_later_calls(cluster):
    @minray.remote
    class Quitter:
        def quit(self):
            minray.actor.exit_actor()

        def get(self):
            return 1

    quitter = Quitter.remote()
    with pytest.raises(ActorDiedError, match="exit_actor"):
        minray.get(quitter.quit.remote())
    with pytest.raises(ActorDiedError):
        minray.get(quitter.get.remote(), timeout=10)
    with pytest.raises(TypeError, match="non-actor"):
        minray.actor.exit_actor()


def test_ray_terminate_lets_queued_calls_finish(cluster):
    counter = Counter.remote()
    refs = [counter.incr.remote() for _ in range(5)]
    end = counter.__ray_terminate__.remote()
    assert minray.get(refs) == [1, 2, 3, 4, 5]
    with pytest.raises(ActorDiedError):
        minray.get(end)


def test_a_failing_method_fails_only_that_call(cluster):
    counter = Counter.remote()
    with pytest.raises(ValueError, match="method failed") as info:
        minray.get(counter.fail.remote())
    assert isinstance(info.value, RayTaskError)
    assert minray.get(counter.incr.remote()) == 1


def test_a_failing_constructor_fails_every_call_with_its_traceback(cluster):
    @minray.remote
    class Broken:
        def __init__(self):
            raise RuntimeError("constructor broke")

        def get(self):
            return 1

    broken = Broken.remote()
    for _ in range(2):
        with pytest.raises(ActorDiedError, match="creation task") as info:
            minray.get(broken.get.remote(), timeout=10)
        assert "constructor broke" in str(info.value)
        assert "raise RuntimeError" in str(info.value)


def test_a_crashed_actor_fails_pending_and_later_calls(cluster):
    counter = Counter.remote()
    minray.get(counter.incr.remote())
    with pytest.raises(ActorDiedError, match="died unexpectedly"):
        minray.get(counter.crash.remote(), timeout=10)
    with pytest.raises(ActorDiedError):
        minray.get(counter.incr.remote(), timeout=10)


def test_a_restartable_actor_restarts_with_fresh_state(cluster):
    counter = Counter.options(max_restarts=1).remote()
    assert minray.get(counter.incr.remote()) == 1
    with pytest.raises(ActorUnavailableError):
        minray.get(counter.crash.remote(), timeout=10)
    assert minray.get(counter.incr.remote(), timeout=10) == 1
    assert minray.get(counter.context.remote())[1] is True
    with pytest.raises(ActorDiedError):  # no restarts left
        minray.get(counter.crash.remote(), timeout=10)


def test_max_task_retries_retries_the_call_in_flight_after_a_restart(cluster, tmp_path):
    marker = tmp_path / "crashed-once"

    @minray.remote(max_restarts=1, max_task_retries=1)
    class Flaky:
        def work(self, path):
            if not os.path.exists(path):
                open(path, "w").close()
                os._exit(1)
            return "done"

    assert minray.get(Flaky.remote().work.remote(str(marker)), timeout=20) == "done"


def test_kill_with_no_restart_false_restarts_the_actor(cluster):
    counter = Counter.options(max_restarts=1).remote()
    minray.get(counter.incr.remote())
    minray.kill(counter, no_restart=False)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            assert minray.get(counter.get.remote(), timeout=5) == 0
            break
        except ActorUnavailableError:
            time.sleep(0.05)


# --- resources ---------------------------------------------------------------------------


def test_default_actors_hold_no_cpu_while_they_live(cluster):
    counters = [Counter.remote() for _ in range(6)]
    minray.get([c.incr.remote() for c in counters])
    assert minray.available_resources()["CPU"] == 2.0


def test_actors_with_explicit_cpus_hold_them_and_wait_for_them(cluster):
    first, second = Counter.options(num_cpus=1).remote(), Counter.options(num_cpus=1).remote()
    minray.get([first.incr.remote(), second.incr.remote()])
    assert "CPU" not in minray.available_resources()
    third = Counter.options(num_cpus=1).remote()
    with pytest.raises(GetTimeoutError):
        minray.get(third.incr.remote(), timeout=0.5)
    minray.kill(first)
    assert minray.get(third.incr.remote(), timeout=10) == 2  # the timed-out call ran too


@pytest.mark.parametrize("cluster", [{"num_gpus": 2}], indirect=True)
def test_gpu_actors_see_their_gpu_ids(cluster):
    @minray.remote(num_gpus=1)
    class Gpu:
        def ids(self):
            return minray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES")

    first, second = Gpu.remote(), Gpu.remote()
    ids_a, env_a = minray.get(first.ids.remote())
    ids_b, env_b = minray.get(second.ids.remote())
    assert sorted(ids_a + ids_b) == [0, 1]
    assert env_a == str(ids_a[0]) and env_b == str(ids_b[0])


def test_an_infeasible_actor_warns_and_stays_pending(cluster, minray_log):
    actor = Counter.options(num_cpus=64).remote()
    with pytest.raises(GetTimeoutError):
        minray.get(actor.incr.remote(), timeout=1)
    assert "cannot be scheduled" in minray_log.text
    assert "Counter" in minray_log.text


# --- cancel -------------------------------------------------------------------------------------


def test_cancel_a_queued_actor_call(cluster):
    @minray.remote
    class Busy:
        def sleep(self, seconds):
            time.sleep(seconds)
            return seconds

    busy = Busy.remote()
    minray.get(busy.sleep.remote(0))
    first = busy.sleep.remote(1)
    second = busy.sleep.remote(0)
    minray.cancel(second)
    with pytest.raises(TaskCancelledError):
        minray.get(second, timeout=10)
    assert minray.get(first) == 1
    with pytest.raises(ValueError, match="force=True is not supported for actor tasks"):
        minray.cancel(busy.sleep.remote(0), force=True)


def test_cancel_a_running_async_actor_call(cluster):
    @minray.remote
    class Sleeper:
        async def sleep(self):
            await asyncio.sleep(30)

    sleeper = Sleeper.remote()
    ref = sleeper.sleep.remote()
    time.sleep(0.5)
    minray.cancel(ref)
    with pytest.raises(TaskCancelledError):
        minray.get(ref, timeout=10)


def test_cancel_a_queued_task_and_a_running_task(cluster_1cpu):
    blocker = slow_value.remote("blocker", 1.0)
    queued = slow_value.remote("queued", 0)
    minray.cancel(queued)
    with pytest.raises(TaskCancelledError):
        minray.get(queued, timeout=10)

    @minray.remote
    def spin():
        while True:
            time.sleep(0.05)

    assert minray.get(blocker) == "blocker"
    running = spin.remote()
    time.sleep(0.5)
    minray.cancel(running)
    with pytest.raises(TaskCancelledError):
        minray.get(running, timeout=10)
    forced = spin.remote()
    time.sleep(0.5)
    minray.cancel(forced, force=True)
    with pytest.raises(TaskCancelledError):
        minray.get(forced, timeout=10)
    with pytest.raises(TypeError, match="only supported for object refs"):
        minray.cancel(slow_value)


@minray.remote
def spin_forever():
    while True:
        time.sleep(0.05)


@minray.remote(num_cpus=0)
def cancel_borrowed(refs: list) -> str:
    minray.cancel(refs[0])  # a ref this task borrowed: its owner (the driver) is asked
    return "asked"


def test_cancel_of_a_borrowed_ref_reaches_its_owner(cluster):
    running = spin_forever.remote()
    time.sleep(0.5)
    assert minray.get(cancel_borrowed.remote([running]), timeout=10) == "asked"
    with pytest.raises(TaskCancelledError):
        minray.get(running, timeout=10)


def test_blocking_get_in_an_async_actor_warns_once(cluster, capfd):
    @minray.remote
    class Blocking:
        async def fetch(self, refs):
            return minray.get(refs[0]) + minray.get(refs[1])

    refs = [slow_value.remote(1, 0.2), slow_value.remote(2, 0.2)]
    assert minray.get(Blocking.remote().fetch.remote(refs)) == 3
    time.sleep(0.3)  # output of workers reaches the driver on the next log poll
    err = capfd.readouterr().err
    assert err.count("blocks the actor's event loop") == 1


def test_calls_made_while_the_first_connection_is_set_up_all_succeed(cluster):
    @minray.remote
    def call_many(counter, n):
        return len(minray.get([counter.get.remote() for _ in range(n)]))

    counter = Counter.remote()
    for _ in range(3):
        assert minray.get([call_many.remote(counter, 1000) for _ in range(4)]) == [1000] * 4


def test_max_pending_calls_refuses_calls_beyond_the_limit(cluster):
    from minray.exceptions import PendingCallsLimitExceeded

    @minray.remote(max_pending_calls=2)
    class Slow:
        def sleep(self, seconds):
            time.sleep(seconds)

    slow = Slow.remote()
    refs = [slow.sleep.remote(0.5), slow.sleep.remote(0)]
    with pytest.raises(PendingCallsLimitExceeded, match="max_pending_calls"):
        slow.sleep.remote(0)
    minray.get(refs)
    minray.get(slow.sleep.remote(0))


# --- regressions found in review -------------------------------------------------------------


def test_killing_actors_still_waiting_for_cpus_does_not_block_later_work(cluster):
    busy = [slow_value.remote(i, 1.0) for i in range(2)]
    waiting = [Counter.options(num_cpus=1).remote() for _ in range(6)]
    time.sleep(0.2)
    for actor in waiting:
        minray.kill(actor)
    minray.get(busy)
    assert minray.get(slow_value.remote("after", 0), timeout=10) == "after"
    assert minray.get(Counter.remote().incr.remote(), timeout=10) == 1


def test_a_constructor_argument_that_failed_fails_every_call(cluster):
    @minray.remote
    def broken():
        raise ValueError("upstream failed")

    actor = Counter.remote(broken.remote())
    with pytest.raises(ActorDiedError, match="upstream failed"):
        minray.get(actor.incr.remote(), timeout=10)
    assert _cpus_back_to(2.0)


def _cpus_back_to(expected: float, timeout: float = 5.0) -> bool:
    """Resources come back asynchronously (a lease is returned after its last reply)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if minray.available_resources().get("CPU") == expected:
            return True
        time.sleep(0.02)
    return False


class _FailsToUnpickle:
    def __reduce__(self):
        return _raise_on_load, ()


def _raise_on_load():
    raise RuntimeError("cannot be rebuilt here")


def test_a_constructor_argument_that_cannot_be_unpickled_fails_every_call(cluster):
    actor = Counter.remote(_FailsToUnpickle())
    with pytest.raises(ActorDiedError, match="cannot be rebuilt here"):
        minray.get(actor.incr.remote(), timeout=10)


def test_a_detached_restartable_actor_restarts_after_its_handle_is_dropped(cluster):
    Counter.options(name="phoenix", lifetime="detached", max_restarts=-1).remote()
    handle = minray.get_actor("phoenix")
    assert minray.get(handle.incr.remote()) == 1
    with pytest.raises(ActorUnavailableError):
        minray.get(handle.crash.remote(), timeout=10)
    assert minray.get(handle.incr.remote(), timeout=10) == 1


def test_the_first_call_after_an_idle_actor_restarted_succeeds(cluster):
    counter = Counter.options(max_restarts=1).remote()
    minray.get(counter.incr.remote())
    minray.kill(counter, no_restart=False)
    time.sleep(1.0)
    assert minray.get(counter.get.remote(), timeout=10) == 0


@pytest.mark.parametrize("kind", ["async", "threaded"])
def test_ray_terminate_lets_earlier_calls_of_concurrent_actors_finish(cluster, kind):
    if kind == "async":

        @minray.remote
        class Worker:
            async def sleep(self, seconds):
                await asyncio.sleep(seconds)
                return seconds

    else:

        @minray.remote(max_concurrency=2)
        class Worker:
            def sleep(self, seconds):
                time.sleep(seconds)
                return seconds

    worker = Worker.remote()
    minray.get(worker.sleep.remote(0))
    earlier = worker.sleep.remote(0.5)
    end = worker.__ray_terminate__.remote()
    assert minray.get(earlier, timeout=10) == 0.5
    with pytest.raises(ActorDiedError):
        minray.get(end, timeout=10)


def test_sys_exit_in_an_actor_is_an_intended_exit_not_a_crash(cluster):
    @minray.remote(max_restarts=-1, max_task_retries=-1)
    class Leaver:
        def leave(self):
            raise SystemExit(0)

        def get(self):
            return 1

    leaver = Leaver.remote()
    with pytest.raises(ActorDiedError, match="sys.exit"):
        minray.get(leaver.leave.remote(), timeout=10)
    with pytest.raises(ActorDiedError):
        minray.get(leaver.get.remote(), timeout=10)


def test_a_call_cancelled_while_queued_in_an_async_actor_never_runs(cluster):
    @minray.remote(max_concurrency=1)
    class Slow:
        def __init__(self):
            self.ran = []

        async def work(self, tag, seconds):
            self.ran.append(tag)
            await asyncio.sleep(seconds)

        async def log(self):
            return self.ran

    slow = Slow.remote()
    first = slow.work.remote("first", 1.0)
    second = slow.work.remote("second", 0)
    time.sleep(0.3)
    minray.cancel(second)
    minray.get(first)
    with pytest.raises(TaskCancelledError):
        minray.get(second, timeout=10)
    assert minray.get(slow.log.remote()) == ["first"]


def test_an_actors_resources_are_free_right_after_its_handles_go_or_it_is_killed(cluster):
    """The node frees what an ending actor held at once, not when its worker has exited
    (which may take a while: __ray_shutdown__, atexit handlers)."""

    @minray.remote(num_cpus=1)
    class Holder:
        def ping(self) -> int:
            return 1

    total = minray.cluster_resources()["CPU"]
    for end in ("out of scope", "killed"):
        holder = Holder.remote()
        assert minray.get(holder.ping.remote(), timeout=30) == 1
        assert minray.available_resources()["CPU"] == total - 1
        if end == "killed":
            minray.kill(holder)
        del holder
        assert minray.available_resources()["CPU"] == total, end
