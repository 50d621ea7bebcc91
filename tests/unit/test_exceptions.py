"""minray.exceptions: Ray's exception names and bases, pickling, and dual task errors."""

import pickle

import cloudpickle
import pytest

from minray import exceptions
from minray.exceptions import (
    ActorAlreadyExistsError,
    ActorDiedError,
    ActorUnavailableError,
    AsyncioActorExit,
    GetTimeoutError,
    NodeDiedError,
    ObjectFreedError,
    ObjectLostError,
    ObjectStoreFullError,
    OutOfDiskError,
    OutOfMemoryError,
    OwnerDiedError,
    PendingCallsLimitExceeded,
    RayActorError,
    RayError,
    RaySystemError,
    RayTaskError,
    TaskCancelledError,
    TaskUnschedulableError,
    UnserializableException,
    WorkerCrashedError,
)

TRACEBACK = 'Traceback (most recent call last):\n  File "t.py", line 1\nValueError: boom'


def task_error(cause=None, **kwargs):
    cause = ValueError("boom") if cause is None else cause
    return RayTaskError("my_func", TRACEBACK, cause, pid=123, ip="10.0.0.1", **kwargs)


# --- RayTaskError --------------------------------------------------------------------------


def test_task_error_as_instanceof_cause_is_both_a_task_error_and_the_cause_type():
    cause = ValueError("boom")
    dual = task_error(cause).as_instanceof_cause()
    assert isinstance(dual, RayTaskError)
    assert isinstance(dual, ValueError)
    assert type(dual).__name__ == "RayTaskError(ValueError)"
    assert dual.cause is cause
    assert dual.args == (cause,)


def test_dual_error_is_caught_by_an_except_clause_for_the_cause_type():
    with pytest.raises(KeyError):
        raise task_error(KeyError("k")).as_instanceof_cause()
    with pytest.raises(RayError):
        raise task_error(KeyError("k")).as_instanceof_cause()


def test_dual_error_keeps_every_attribute():
    dual = task_error().as_instanceof_cause()
    assert dual.function_name == "my_func"
    assert dual.traceback_str == TRACEBACK
    assert (dual.pid, dual.ip) == (123, "10.0.0.1")
    assert dual.proctitle == "minray::my_func()"


def test_dual_error_str_shows_the_remote_traceback():
    text = str(task_error().as_instanceof_cause())
    assert "minray::my_func()" in text
    assert "pid=123, ip=10.0.0.1" in text
    assert text.endswith("ValueError: boom")
    assert TRACEBACK in text


def test_dual_error_repr_names_the_cause():
    dual = task_error().as_instanceof_cause()
    assert repr(dual) == "RayTaskError(ValueError)(ValueError('boom'))"


def test_dual_classes_are_reused_per_cause_type():
    one = task_error(ValueError("a")).as_instanceof_cause()
    two = task_error(ValueError("b")).as_instanceof_cause()
    other = task_error(KeyError("c")).as_instanceof_cause()
    assert type(one) is type(two)
    assert type(one) is not type(other)


def test_dual_error_of_a_user_exception_forwards_its_attributes():
    class QuotaError(Exception):
        def __init__(self, limit):
            super().__init__(f"over {limit}")
            self.limit = limit

    dual = task_error(QuotaError(5)).as_instanceof_cause()
    assert isinstance(dual, QuotaError)
    assert dual.limit == 5


def test_task_error_forwards_unknown_attributes_to_the_cause():
    err = task_error(OSError(2, "missing"))
    assert err.errno == 2
    with pytest.raises(AttributeError):
        err.no_such_attribute  # noqa: B018
    with pytest.raises(AttributeError):
        RayTaskError("f").anything  # noqa: B018


def test_as_instanceof_cause_without_a_cause_returns_itself():
    err = RayTaskError("f", "tb")
    assert err.as_instanceof_cause() is err


def test_as_instanceof_cause_of_a_task_error_cause_returns_itself():
    err = task_error(RayTaskError("inner", "tb"))
    assert err.as_instanceof_cause() is err


def test_cause_type_that_cannot_be_subclassed_falls_back_to_the_plain_error():
    class Sealed(Exception):
        def __init_subclass__(cls, **kwargs):
            raise TypeError("Sealed cannot be subclassed")

    err = task_error(Sealed("x"))
    assert err.as_instanceof_cause() is err


def test_cause_with_slots_still_gets_a_dual_error():
    class Slotted(Exception):
        __slots__ = ("a",)

    dual = task_error(Slotted()).as_instanceof_cause()
    assert isinstance(dual, RayTaskError)
    assert isinstance(dual, Slotted)


def test_task_error_str_shows_the_traceback_text():
    text = str(task_error())
    assert text.splitlines()[0] == "\x1b[36mminray::my_func()\x1b[39m (pid=123, ip=10.0.0.1)"
    assert text.endswith(TRACEBACK)


def test_task_error_keeps_a_given_proctitle():
    assert task_error(proctitle="minray::Actor.method()").proctitle == "minray::Actor.method()"


def test_pickled_dual_error_comes_back_as_a_task_error_with_its_cause():
    dual = task_error().as_instanceof_cause()
    back = pickle.loads(pickle.dumps(dual))
    assert isinstance(back, RayTaskError)
    assert isinstance(back.cause, ValueError) and back.cause.args == ("boom",)
    assert isinstance(back.as_instanceof_cause(), ValueError)


# --- the hierarchy -------------------------------------------------------------------------


def test_get_timeout_error_is_a_timeout_error():
    assert issubclass(GetTimeoutError, TimeoutError)
    with pytest.raises(TimeoutError):
        raise GetTimeoutError("get timed out")


@pytest.mark.parametrize(
    "cls, bases",
    [
        (ActorDiedError, (RayActorError,)),
        (ActorUnavailableError, (RayActorError,)),
        (ActorAlreadyExistsError, (ValueError, RayError)),
        (OwnerDiedError, (ObjectLostError,)),
        (ObjectFreedError, (ObjectLostError,)),
        (GetTimeoutError, (RayError, TimeoutError)),
    ],
)
def test_exception_bases_match_ray(cls, bases):
    for base in bases:
        assert issubclass(cls, base)


def test_every_exported_class_is_a_ray_error():
    for name in exceptions.__all__:
        cls = getattr(exceptions, name)
        assert issubclass(cls, RayError), name


# --- pickling ----------------------------------------------------------------------------


def instances():
    """One instance of each class in __all__, built with non-default arguments."""
    return [
        RayError("root"),
        RaySystemError("client failed", "traceback text"),
        task_error(proctitle="minray::t()"),
        GetTimeoutError("timed out after 1s"),
        RayActorError("actor-1", "it died", True, True),
        ActorDiedError("actor-2", "killed", False, True),
        ActorUnavailableError("actor-3", "restarting"),
        AsyncioActorExit(),
        PendingCallsLimitExceeded("too many"),
        ActorAlreadyExistsError("name taken"),
        WorkerCrashedError("segfault"),
        TaskCancelledError("task-1", "cancelled by user"),
        ObjectStoreFullError("full"),
        OutOfDiskError("disk full"),
        OutOfMemoryError("oom"),
        NodeDiedError("node gone"),
        TaskUnschedulableError("no GPU"),
        UnserializableException("cannot rebuild"),
        ObjectLostError("abcd", "evicted"),
        OwnerDiedError("abcd"),
        ObjectFreedError("abcd", "freed by user"),
        exceptions.ObjectReconstructionFailedError("abcd", "rebuild failed"),
        exceptions.ObjectReconstructionFailedMaxAttemptsExceededError("abcd", "no retries"),
        exceptions.ObjectReconstructionFailedLineageEvictedError("abcd", "evicted"),
        exceptions.RuntimeEnvSetupError("the working_dir package is gone"),
    ]


def test_instances_cover_every_exported_class():
    assert sorted(type(e).__name__ for e in instances()) == sorted(exceptions.__all__)


def comparable(value):
    if isinstance(value, BaseException):
        return type(value), value.args
    return value


def attributes(err):
    return {k: comparable(v) for k, v in vars(err).items()}


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
@pytest.mark.parametrize("err", instances(), ids=lambda e: type(e).__name__)
def test_every_exception_survives_pickling_with_its_attributes(err, dumps):
    back = pickle.loads(dumps(err))
    assert type(back) is type(err)
    assert attributes(back) == attributes(err)
    assert str(back) == str(err)
    assert [comparable(a) for a in back.args] == [comparable(a) for a in err.args]


@pytest.mark.parametrize("name", exceptions.__all__)
def test_every_exception_can_be_made_without_arguments_and_pickled(name):
    cls = getattr(exceptions, name)
    err = cls()
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert str(back) == str(err)


# --- messages -----------------------------------------------------------------------------


def test_default_messages_explain_what_happened():
    assert "died unexpectedly" in str(WorkerCrashedError())
    assert "owner has exited" in str(OwnerDiedError("ab12"))
    assert "ab12" in str(OwnerDiedError("ab12"))
    assert str(ObjectLostError("ab12", "gone")) == "Failed to retrieve object ab12. gone"
    assert str(RayActorError()) == "The actor died."
    assert str(RaySystemError("x", "tb")) == "System error: x\ntraceback: tb"


def test_owner_died_error_names_the_owner_it_knows_and_survives_pickling():
    error = OwnerDiedError(
        "ab12",
        owner_address="tcp:10.0.0.2:4000",
        owner_pid=321,
        owner_ip="10.0.0.2",
        owner_kind="worker",
        owner_log="/s/worker-1.err",
    )
    text = str(error)
    for part in (
        "ab12",
        "owner has exited",
        "worker with pid 321",
        "10.0.0.2",
        "tcp:10.0.0.2:4000",
        "/s/worker-1.err on 10.0.0.2",
    ):
        assert part in text
    back = pickle.loads(pickle.dumps(error))
    assert (back.owner_pid, back.owner_ip, str(back)) == (321, "10.0.0.2", text)
    assert "pid" not in str(OwnerDiedError("ab12", owner_address="unix:/s/sockets/x"))


def test_task_cancelled_error_message():
    assert str(TaskCancelledError("t1")) == "Task: t1 was cancelled."
    assert str(TaskCancelledError("t1", "custom")) == "custom"
    assert str(TaskCancelledError()) == ""
