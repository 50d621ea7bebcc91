"""How task failures reach the caller: RayTaskError, propagation, retries, worker death.

Spec: /work/shared/design/SEMANTICS.md sections 1, 5 (Retries), 6 and 7.
Tasks run in other processes, so attempts are counted by appending a line to a
file under ``tmp_path`` on every attempt.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import minray
from minray.exceptions import (
    GetTimeoutError,
    ObjectLostError,
    RayError,
    RayTaskError,
    TaskCancelledError,
    UnserializableException,
    WorkerCrashedError,
)


class InsufficientFundsError(ValueError):
    """An application exception with extra fields (args mirror __init__, so it pickles)."""

    def __init__(self, balance: int, needed: int):
        super().__init__(balance, needed)
        self.balance = balance
        self.needed = needed


class ErrorHoldingALock(Exception):
    """An exception that cannot be pickled: it holds a threading.Lock."""

    def __init__(self, message: str):
        super().__init__(message)
        self.lock = threading.Lock()


class ErrorNeedingTwoArguments(Exception):
    """Pickles fine but cannot be rebuilt: __init__ needs an argument missing from self.args."""

    def __init__(self, code: int, detail: str):
        super().__init__(code)
        self.detail = detail


def record_attempt(path: str) -> None:
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")


def attempts(path) -> int:
    try:
        with open(path) as f:
            return len(f.read().splitlines())
    except FileNotFoundError:
        return 0


@minray.remote
def fail_with_value_error(message):
    raise ValueError(message)  # the line the remote traceback must show


@minray.remote
def fail_with_insufficient_funds():
    raise InsufficientFundsError(10, 25)


@minray.remote
def add_one(x):
    return x + 1


@minray.remote
def sleep_then_return(seconds):
    time.sleep(seconds)
    return "slow"


@minray.remote
def get_failing_child_without_catching():
    return minray.get(fail_with_value_error.remote("child failed"))


@minray.remote
def fail_with_unpicklable_exception():
    raise ErrorHoldingALock("guarded by a lock")


@minray.remote
def fail_with_unrebuildable_exception():
    raise ErrorNeedingTwoArguments(7, "cannot be rebuilt")


@minray.remote
def raise_keyboard_interrupt():
    raise KeyboardInterrupt


@minray.remote
def count_then_exit_process(path):
    record_attempt(path)
    os._exit(1)


@minray.remote
def count_then_sigkill_self(path):
    record_attempt(path)
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)  # never reached: SIGKILL cannot be caught


@minray.remote
def count_then_raise_system_exit(path):
    record_attempt(path)
    raise SystemExit(3)


@minray.remote
def count_then_raise(path, kind):
    record_attempt(path)
    raise {"ValueError": ValueError, "KeyError": KeyError}[kind]("attempt failed")


# --- RayTaskError ----------------------------------------------------------------------------


def test_task_error_is_both_the_original_type_and_a_ray_task_error(cluster):
    with pytest.raises(ValueError) as info:
        minray.get(fail_with_value_error.remote("bad value"))
    err = info.value
    assert isinstance(err, RayTaskError)
    assert isinstance(err, RayError)
    assert type(err).__name__ == "RayTaskError(ValueError)"


def test_task_error_message_names_the_task_and_shows_the_remote_traceback(cluster):
    with pytest.raises(RayTaskError) as info:
        minray.get(fail_with_value_error.remote("bad value 42"))
    text = str(info.value)
    assert "fail_with_value_error" in text.splitlines()[0]
    assert "raise ValueError(message)" in text
    assert "test_errors_functional.py" in text
    assert "ValueError: bad value 42" in text
    assert text.rstrip().endswith("ValueError: bad value 42")
    assert "task_executor.py" not in text, "minray's own frames must be dropped"


def test_task_error_cause_is_the_original_exception(cluster):
    with pytest.raises(ValueError) as info:
        minray.get(fail_with_value_error.remote("original"))
    cause = info.value.cause
    assert type(cause) is ValueError
    assert cause.args == ("original",)


def test_custom_exception_attributes_are_readable_on_the_task_error(cluster):
    with pytest.raises(InsufficientFundsError) as info:
        minray.get(fail_with_insufficient_funds.remote())
    err = info.value
    assert isinstance(err, RayTaskError)
    assert isinstance(err.cause, InsufficientFundsError)
    assert (err.cause.balance, err.cause.needed) == (10, 25)
    assert (err.balance, err.needed) == (10, 25)


# --- propagation -----------------------------------------------------------------------------


def test_task_depending_on_a_failed_task_does_not_run_and_reraises_its_error(cluster, tmp_path):
    marker = tmp_path / "ran"

    @minray.remote
    def mark_as_run(value, path):
        open(path, "w").close()
        return value

    ref = mark_as_run.remote(fail_with_value_error.remote("upstream broke"), str(marker))
    with pytest.raises(ValueError) as info:
        minray.get(ref)
    err = info.value
    assert isinstance(err, RayTaskError)
    text = str(err)
    assert "mark_as_run" in text.splitlines()[0]
    assert "At least one of the input arguments" in text
    assert "ValueError: upstream broke" in text
    assert type(err.cause) is ValueError
    assert not marker.exists(), "the dependent task ran although its argument failed"


def test_task_that_gets_a_failing_child_without_catching_raises_the_childs_type(cluster):
    with pytest.raises(ValueError) as info:
        minray.get(get_failing_child_without_catching.remote())
    err = info.value
    assert isinstance(err, RayTaskError)
    assert type(err.cause) is ValueError, "the cause must not be double-wrapped"
    text = str(err)
    assert "get_failing_child_without_catching" in text
    assert "fail_with_value_error" in text
    assert "ValueError: child failed" in text


def test_get_of_a_list_raises_as_soon_as_one_element_failed(cluster):
    slow = sleep_then_return.remote(5)
    failed = fail_with_value_error.remote("fails fast")
    start = time.monotonic()
    with pytest.raises(ValueError, match="fails fast"):
        minray.get([slow, failed])
    assert time.monotonic() - start < 2, "get waited for the slow sibling"


def test_get_of_a_ref_with_unknown_owner_raises_object_lost_quickly(cluster):
    ref = minray.ObjectRef(b"x" * 28)
    start = time.monotonic()
    with pytest.raises(ObjectLostError):
        minray.get(ref, timeout=10)
    assert time.monotonic() - start < 2


# --- worker death ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dying_task",
    [count_then_exit_process, count_then_sigkill_self],
    ids=["os._exit", "SIGKILL"],
)
def test_worker_death_is_retried_max_retries_times_then_raises_worker_crashed(
    cluster, tmp_path, dying_task
):
    path = tmp_path / "attempts"
    ref = dying_task.options(max_retries=2).remote(str(path))
    with pytest.raises(WorkerCrashedError) as info:
        minray.get(ref, timeout=30)
    assert not isinstance(info.value, RayTaskError)
    assert attempts(path) == 3
    assert len(set(path.read_text().split())) == 3, "every attempt needs a fresh worker"
    # the pool replaced the dead workers: new tasks still run, on both CPUs at once
    assert minray.get([add_one.remote(1), add_one.remote(2)], timeout=30) == [2, 3]


def test_raising_system_exit_kills_the_worker_and_gives_worker_crashed(cluster, tmp_path):
    path = tmp_path / "attempts"
    ref = count_then_raise_system_exit.options(max_retries=0).remote(str(path))
    with pytest.raises(WorkerCrashedError):
        minray.get(ref, timeout=30)
    assert attempts(path) == 1
    assert minray.get(add_one.remote(41), timeout=30) == 42


def test_raising_keyboard_interrupt_gives_a_task_error_wrapping_task_cancelled(cluster):
    with pytest.raises(TaskCancelledError) as info:
        minray.get(raise_keyboard_interrupt.remote(), timeout=30)
    assert isinstance(info.value, RayTaskError)
    assert "raise_keyboard_interrupt" in str(info.value)


# --- application-exception retries ------------------------------------------------------------


def test_application_exceptions_are_not_retried_by_default(cluster, tmp_path):
    path = tmp_path / "attempts"
    with pytest.raises(ValueError):
        minray.get(count_then_raise.remote(str(path), "ValueError"), timeout=30)
    assert attempts(path) == 1


@pytest.mark.parametrize(
    "retry_exceptions, raised, expected_attempts",
    [
        (True, "ValueError", 3),  # any exception: 1 run + max_retries
        ([KeyError], "ValueError", 1),  # not in the list: no retry
        ([KeyError], "KeyError", 3),  # in the list: retried
    ],
)
def test_retry_exceptions_decides_which_application_errors_are_retried(
    cluster, tmp_path, retry_exceptions, raised, expected_attempts
):
    path = tmp_path / "attempts"
    ref = count_then_raise.options(retry_exceptions=retry_exceptions, max_retries=2).remote(
        str(path), raised
    )
    with pytest.raises({"ValueError": ValueError, "KeyError": KeyError}[raised], match="attempt"):
        minray.get(ref, timeout=30)
    assert attempts(path) == expected_attempts


# --- exceptions that cannot travel ------------------------------------------------------------


def test_unpicklable_task_exception_becomes_a_ray_task_error_saying_it_is_not_serializable(
    cluster,
):
    with pytest.raises(RayTaskError) as info:
        minray.get(fail_with_unpicklable_exception.remote(), timeout=30)
    err = info.value
    assert not isinstance(err, ErrorHoldingALock)
    assert isinstance(err.cause, RayError)
    cause_text = str(err.cause)
    assert "isn't serializable" in cause_text
    assert "ErrorHoldingALock" in cause_text
    assert "raise ErrorHoldingALock" in str(err)


def test_exception_that_cannot_be_rebuilt_on_the_caller_raises_unserializable_exception(
    cluster,
):
    with pytest.raises(UnserializableException) as info:
        minray.get(fail_with_unrebuildable_exception.remote(), timeout=30)
    assert not isinstance(info.value, RayTaskError)
    assert not isinstance(info.value, ErrorNeedingTwoArguments)


def test_unserializable_exception_message_shows_the_original_task_error(cluster):
    with pytest.raises(UnserializableException) as info:
        minray.get(fail_with_unrebuildable_exception.remote(), timeout=30)
    text = str(info.value)
    assert "fail_with_unrebuildable_exception" in text
    assert 'raise ErrorNeedingTwoArguments(7, "cannot be rebuilt")' in text


def test_task_depending_on_an_unrebuildable_exception_fails_instead_of_hanging(cluster):
    ref = add_one.remote(fail_with_unrebuildable_exception.remote())
    try:
        minray.get(ref, timeout=3)
    except GetTimeoutError:
        pytest.fail("the dependent task never finished")
    except RayError:
        pass
    else:
        pytest.fail("the dependent task ran although its argument failed")


def test_an_error_nobody_gets_is_logged_when_its_ref_is_dropped(cluster, minray_log):
    import gc

    @minray.remote
    def ignored():
        raise ValueError("nobody looks at me")

    @minray.remote(num_returns=0)
    def fire_and_forget():
        raise KeyError("no ref at all")

    @minray.remote
    def looked_at():
        raise ValueError("this one was seen")

    ref = ignored.remote()
    minray.wait([ref], timeout=10)
    seen = looked_at.remote()
    with pytest.raises(ValueError):
        minray.get(seen)
    del ref, seen
    gc.collect()
    fire_and_forget.remote()
    deadline = time.time() + 10
    while minray_log.text.count("Unhandled error") < 2 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    assert "nobody looks at me" in minray_log.text
    assert "no ref at all" in minray_log.text
    assert "this one was seen" not in minray_log.text
