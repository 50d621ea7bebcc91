"""runtime/concurrency_groups.py: checking groups, which group a call runs in, the executors."""

from __future__ import annotations

import asyncio
import re
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minray.runtime.concurrency_groups import (
    DEFAULT,
    LoopGroup,
    ThreadGroup,
    check_concurrency_groups,
    check_group_name,
    check_method_groups,
    group_of,
    make_groups,
    unknown_group_message,
)

names = st.text(min_size=1, max_size=8)
sizes = st.integers(min_value=1, max_value=10**6)

# --- checking ------------------------------------------------------------------------------


@given(st.dictionaries(names, sizes))
def test_any_dict_of_names_to_positive_sizes_is_accepted(groups):
    check_concurrency_groups(groups)


def test_no_groups_is_accepted():
    check_concurrency_groups(None)


@given(names, st.integers(max_value=0))
def test_a_size_below_one_is_a_value_error_naming_the_group(name, size):
    with pytest.raises(ValueError, match=re.escape(f"group {name!r} must be at least 1")):
        check_concurrency_groups({name: size})


@pytest.mark.parametrize("size", [1.5, "2", True, None], ids=repr)
def test_a_size_that_is_not_an_int_is_a_type_error(size):
    with pytest.raises(TypeError, match="group 'io' must be int"):
        check_concurrency_groups({"io": size})


@pytest.mark.parametrize("name", ["", 3, None], ids=repr)
def test_a_group_name_must_be_a_non_empty_string(name):
    with pytest.raises(TypeError, match="names must be non-empty str"):
        check_concurrency_groups({name: 1})
    with pytest.raises(TypeError, match="concurrency_group must be the name"):
        check_group_name(name)


def test_methods_naming_defined_groups_pass():
    check_method_groups("A", {"f": "io", "g": "compute"}, {"io": 1, "compute": 2})


def test_a_method_naming_an_undefined_group_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"^A\.g: The concurrency group 'gpu' is not defined"):
        check_method_groups("A", {"f": "io", "g": "gpu"}, {"io": 1})


def test_the_unknown_group_message_lists_the_groups_there_are():
    message = unknown_group_message("A", "x", {"b": 1, "a": 2})
    assert "'x' is not defined for actor A" in message
    assert "['a', 'b']" in message
    assert "concurrency_groups=" in message


# --- which group a call runs in -------------------------------------------------------------


@given(method=names, requested=names, method_groups=st.dictionaries(names, names))
def test_a_group_the_call_asks_for_wins(method, requested, method_groups):
    assert group_of(method, requested, method_groups) == requested


@given(method=names, method_groups=st.dictionaries(names, names))
def test_without_a_request_a_call_runs_in_its_methods_group_or_the_default(method, method_groups):
    expected = method_groups.get(method, DEFAULT)
    assert group_of(method, "", method_groups) == expected


# --- executors -------------------------------------------------------------------------------


def test_a_thread_group_runs_up_to_its_size_at_once_on_threads_named_after_it():
    group = ThreadGroup("io", 2, "A")
    both_in = threading.Barrier(2, timeout=5)

    def meet():
        both_in.wait()  # both calls must be running at once to pass
        return threading.current_thread().name

    try:
        calls = [group.submit(meet), group.submit(meet)]
        names = [call.result(timeout=5) for call in calls]
    except threading.BrokenBarrierError:
        pytest.fail("the group did not run two calls at once")
    finally:
        group.stop(wait=True)
    assert all(name.startswith("A.io") for name in names)


def test_a_loop_group_runs_coroutines_on_its_own_loop_and_thread():
    group = LoopGroup("io", 1, "A")

    async def where():
        async with group.semaphore:
            return asyncio.get_running_loop(), threading.current_thread().name

    try:
        loop, thread_name = group.submit(where).result(timeout=5)
    finally:
        group.stop(wait=True)
    assert loop is group.loop
    assert thread_name == "A.io"


def test_a_loop_group_limits_calls_to_its_size():
    group = LoopGroup("io", 2, "A")
    running = 0
    most = 0

    async def call():
        nonlocal running, most
        async with group.semaphore:
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.01)
            running -= 1

    try:
        for done in [group.submit(call) for _ in range(6)]:
            done.result(timeout=5)
    finally:
        group.stop(wait=True)
    assert most == 2


def test_make_groups_makes_loops_for_async_actors_and_thread_pools_otherwise():
    loops = make_groups({"a": 1}, True, "A")
    pools = make_groups({"a": 1}, False, "A")
    try:
        assert isinstance(loops["a"], LoopGroup)
        assert isinstance(pools["a"], ThreadGroup)
    finally:
        loops["a"].stop(wait=True)
        pools["a"].stop(wait=True)
