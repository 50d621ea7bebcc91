"""Bad input fails early, on the caller, with Ray's exception types.

Spec: /work/shared/design/SEMANTICS.md sections 1 (get), 2 (put), 3 (wait),
5 (remote functions, option validation) and 10 (init).
Decoration-time checks need no cluster; everything that submits or reads
objects uses the ``cluster`` fixture.
"""

from __future__ import annotations

import threading
import time

import pytest

import minray
from minray.exceptions import RaySystemError, RayTaskError


def double(x):
    return x * 2


# --- decoration and options() time ------------------------------------------------------------

BAD_OPTIONS = [
    pytest.param({"not_an_option": 1}, ValueError, "not_an_option", id="unknown-option"),
    pytest.param({"max_concurrency": 2}, ValueError, "max_concurrency", id="actor-only-option"),
    pytest.param({"num_cpus": -1}, ValueError, "negative", id="negative-num_cpus"),
    pytest.param({"num_gpus": -0.5}, ValueError, "negative", id="negative-num_gpus"),
    pytest.param({"num_cpus": "2"}, TypeError, "num_cpus", id="string-num_cpus"),
    pytest.param({"resources": {"CPU": 1}}, ValueError, "num_cpus", id="CPU-in-resources"),
    pytest.param({"max_retries": -2}, ValueError, "max_retries", id="max_retries-below-minus-1"),
    pytest.param({"retry_exceptions": 1}, TypeError, "retry_exceptions", id="int-retry_exceptions"),
    pytest.param({"num_returns": -1}, ValueError, "num_returns", id="negative-num_returns"),
]


@pytest.mark.parametrize(("options", "error", "mentions"), BAD_OPTIONS)
def test_bad_option_is_refused_when_decorating(options, error, mentions):
    with pytest.raises(error) as info:
        minray.remote(**options)(double)
    assert mentions in str(info.value)


@pytest.mark.parametrize(("options", "error", "mentions"), BAD_OPTIONS)
def test_bad_option_is_refused_by_options(options, error, mentions):
    remote_double = minray.remote(double)
    with pytest.raises(error) as info:
        remote_double.options(**options)
    assert mentions in str(info.value)


def test_fractional_cpus_infinite_retries_and_a_retry_list_are_accepted(cluster):
    remote_double = minray.remote(num_cpus=0.5, max_retries=-1, retry_exceptions=[KeyError])(double)
    bound = remote_double.options(num_cpus=0.25, max_retries=0, retry_exceptions=(ValueError,))
    assert minray.get([remote_double.remote(2), bound.remote(3)], timeout=30) == [4, 6]


def test_max_retries_none_is_accepted():
    remote_double = minray.remote(max_retries=None)(double)
    assert callable(remote_double.remote)
    assert callable(minray.remote(double).options(max_retries=None).remote)


def test_remote_with_a_positional_non_function_raises_assertion_error():
    with pytest.raises(AssertionError, match="@minray.remote"):
        minray.remote(1)


def test_num_returns_zero_on_a_function_returning_a_value_is_refused_when_decorating():
    def returns_its_argument(x):
        return x

    with pytest.raises(ValueError, match="num_returns"):
        minray.remote(num_returns=0)(returns_its_argument)


def test_num_returns_zero_on_a_function_returning_a_value_is_refused_by_options():
    @minray.remote
    def returns_its_argument(x):
        return x

    with pytest.raises(ValueError, match="num_returns"):
        returns_its_argument.options(num_returns=0)


def test_num_returns_zero_on_a_function_without_a_return_value_gives_none(cluster):
    @minray.remote(num_returns=0)
    def returns_nothing(x):
        x.append(1)

    assert returns_nothing.remote([]) is None


def test_decorating_an_async_function_is_refused():
    async def coroutine_function(x):
        return x

    with pytest.raises(ValueError, match="async"):
        minray.remote(coroutine_function)


def test_calling_a_remote_function_directly_raises_type_error_pointing_to_remote():
    remote_double = minray.remote(double)
    with pytest.raises(TypeError) as info:
        remote_double(3)
    text = str(info.value)
    assert text.startswith("Remote functions cannot be called directly.")
    assert "double.remote()" in text


# --- .remote() arguments ----------------------------------------------------------------------


def test_too_many_positional_arguments_raise_type_error_on_the_caller(cluster):
    remote_double = minray.remote(double)
    with pytest.raises(TypeError, match="too many positional arguments"):
        remote_double.remote(1, 2)


def test_unexpected_keyword_argument_raises_type_error_on_the_caller(cluster):
    remote_double = minray.remote(double)
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        remote_double.remote(1, z=3)


def test_missing_argument_raises_type_error_on_the_caller(cluster):
    remote_double = minray.remote(double)
    with pytest.raises(TypeError, match="missing a required argument"):
        remote_double.remote()


def test_unpicklable_positional_argument_raises_type_error_naming_it_and_the_lock(cluster):
    remote_double = minray.remote(double)
    with pytest.raises(TypeError) as info:
        remote_double.remote({"settings": 1, "guard": threading.Lock()})
    text = str(info.value)
    assert "argument 0" in text
    assert "'guard'" in text
    assert "_thread.lock" in text


def test_unpicklable_keyword_argument_raises_type_error_naming_it_and_the_lock(cluster):
    remote_double = minray.remote(double)
    with pytest.raises(TypeError) as info:
        remote_double.remote(x={"guard": threading.Lock()})
    text = str(info.value)
    assert "'x'" in text
    assert "'guard'" in text
    assert "_thread.lock" in text


def test_unpicklable_return_value_makes_get_raise_a_type_error_naming_the_return_value(cluster):
    @minray.remote
    def return_a_lock():
        return {"guard": threading.Lock()}

    with pytest.raises(TypeError) as info:
        minray.get(return_a_lock.remote(), timeout=30)
    err = info.value
    assert isinstance(err, RayTaskError)
    text = str(err)
    assert "return value" in text
    assert "_thread.lock" in text


# --- put ---------------------------------------------------------------------------------------


def test_put_of_an_unpicklable_value_raises_type_error(cluster):
    with pytest.raises(TypeError) as info:
        minray.put({"guard": threading.Lock()})
    assert "_thread.lock" in str(info.value)


def test_put_of_an_object_ref_raises_type_error_suggesting_a_list(cluster):
    ref = minray.put(1)
    with pytest.raises(TypeError, match="list"):
        minray.put(ref)
    wrapped = minray.put([ref])
    inner = minray.get(wrapped)[0]
    assert isinstance(inner, minray.ObjectRef)
    assert minray.get(inner) == 1


# --- get ---------------------------------------------------------------------------------------


def test_get_of_a_tuple_of_refs_raises_value_error(cluster):
    a, b = minray.put(1), minray.put(2)
    with pytest.raises(ValueError, match="Invalid type of object refs"):
        minray.get((a, b))


def test_get_of_a_list_containing_a_non_ref_raises_type_error(cluster):
    ref = minray.put(1)
    with pytest.raises(TypeError, match="on the value 1, which is not an"):
        minray.get([ref, 1])


def test_get_of_a_plain_value_raises_value_error(cluster):
    with pytest.raises(ValueError, match="Invalid type of object refs"):
        minray.get(3)


def test_get_with_a_negative_timeout_blocks_like_no_timeout(cluster):
    @minray.remote
    def slow_value():
        time.sleep(0.3)
        return "arrived"

    assert minray.get(slow_value.remote(), timeout=-1) == "arrived"


# --- wait: validation happens in Ray's order --------------------------------------------------


def test_wait_on_a_single_ref_raises_type_error(cluster):
    ref = minray.put(1)
    with pytest.raises(TypeError, match="single"):
        minray.wait(ref)


def test_wait_on_a_tuple_raises_type_error_even_with_a_negative_timeout(cluster):
    ref = minray.put(1)
    with pytest.raises(TypeError, match="tuple"):
        minray.wait((ref,), timeout=-1)


def test_wait_with_negative_timeout_raises_value_error_before_checking_elements(cluster):
    ref = minray.put(1)
    with pytest.raises(ValueError, match="nonnegative"):
        minray.wait([ref, 1], timeout=-1)


def test_wait_on_a_list_containing_a_non_ref_raises_type_error(cluster):
    ref = minray.put(1)
    with pytest.raises(TypeError, match="list containing <class 'int'>"):
        minray.wait([ref, 1])


def test_wait_with_a_non_numeric_timeout_raises_type_error(cluster):
    ref = minray.put(1)
    with pytest.raises(TypeError):
        minray.wait([ref], timeout="1")


def test_wait_on_an_empty_list_returns_two_empty_lists_before_num_returns_checks(cluster):
    assert minray.wait([]) == ([], [])
    assert minray.wait([], num_returns=5) == ([], [])
    assert minray.wait([], num_returns=0) == ([], [])


def test_wait_with_duplicate_refs_raises_value_error_before_num_returns_checks(cluster):
    ref = minray.put(1)
    with pytest.raises(ValueError, match="unique"):
        minray.wait([ref, ref], num_returns=0)


def test_wait_with_zero_num_returns_raises_value_error(cluster):
    ref = minray.put(1)
    with pytest.raises(ValueError, match="Invalid number of objects to return 0"):
        minray.wait([ref], num_returns=0)


def test_wait_with_num_returns_above_the_number_of_refs_raises_value_error(cluster):
    ref = minray.put(1)
    with pytest.raises(ValueError, match="num_returns cannot be greater"):
        minray.wait([ref], num_returns=2)


def test_wait_accepts_a_float_num_returns(cluster):
    ref = minray.put(1)
    assert minray.wait([ref], num_returns=1.0, timeout=10) == ([ref], [])


# --- init ----------------------------------------------------------------------------------


def test_second_init_raises_runtime_error_pointing_to_ignore_reinit_error(cluster):
    with pytest.raises(RuntimeError, match="ignore_reinit_error=True"):
        minray.init(num_cpus=1)
    assert minray.cluster_resources()["CPU"] == 2


def test_second_init_with_ignore_reinit_error_keeps_the_running_cluster(cluster):
    context = minray.init(num_cpus=1, ignore_reinit_error=True)
    assert context.address_info["session_dir"] == cluster
    assert minray.cluster_resources()["CPU"] == 2
    assert minray.get(minray.put("still works")) == "still works"


def test_cluster_state_before_init_raises_ray_system_error():
    minray.shutdown()
    assert not minray.is_initialized()
    for state_call in (minray.nodes, minray.cluster_resources, minray.available_resources):
        with pytest.raises(RaySystemError, match="not been started"):
            state_call()
    assert not minray.is_initialized(), "a state call must not auto-start minray"


def test_arguments_too_large_for_a_message_are_refused_and_the_cluster_keeps_working(cluster):
    @minray.remote
    def count(*items):
        return len(items)

    items = [bytes(25_000) + i.to_bytes(4, "little") for i in range(6_000)]  # ~150 MB in all
    with pytest.raises(ValueError, match="numpy arrays or bytes"):
        count.remote(*items)
    assert minray.get(count.remote(1, 2, 3), timeout=30) == 3
