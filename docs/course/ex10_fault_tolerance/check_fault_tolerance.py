"""Checks for exercise 10, fault tolerance: ``make course-check EX=10``."""

import os

import pytest

import minray

pytestmark = pytest.mark.usefixtures("ray_cluster")


def test_a_task_whose_worker_dies_runs_again(answer, tmp_path):
    marker = tmp_path / "crashed"
    try:
        pid = minray.get(answer.crash_once.remote(str(marker)), timeout=60)
    except minray.exceptions.WorkerCrashedError:
        pytest.fail("the task's worker died and the task was not retried: set max_retries")
    assert marker.exists(), "the first run must have crashed"
    assert pid != os.getpid()


def test_an_actor_restarts_and_runs_the_call_again(answer, tmp_path):
    account = answer.Account.remote(str(tmp_path / "balance.json"))
    assert minray.get([account.deposit.remote(10), account.deposit.remote(20)]) == [10, 30]
    try:
        balance = minray.get(account.deposit.remote(5, str(tmp_path / "crashed")), timeout=60)
    except minray.exceptions.RayActorError as error:
        pytest.fail(
            f"{type(error).__name__}: the actor died and was not restarted, or the call was "
            "not run again: set max_restarts and max_task_retries"
        )
    assert (tmp_path / "crashed").exists(), "the actor's process must have crashed once"
    assert balance == 35, (
        f"the balance after the restart is {balance}: a restarted actor starts from "
        "__init__ again; load the balance the last process saved"
    )
    assert minray.get(account.deposit.remote(1)) == 36
