"""The head's submitted-job table: status changes, stops, deletes and its bound (pure)."""

from __future__ import annotations

import pytest

from minray.head.job_schema import JobStatus, SubmitRequest
from minray.head.submitted_jobs import JobNotFound, SubmittedJobs, failure_message


def table_with(*ids: str, max_jobs: int = 10) -> SubmittedJobs:
    table = SubmittedJobs(max_jobs)
    for i, sid in enumerate(ids):
        table.add(SubmitRequest("python x.py"), sid, f"/logs/{sid}.log", now=float(i))
    return table


def test_a_job_goes_from_pending_to_running_to_succeeded():
    table = table_with("a")
    assert table.get("a").status is JobStatus.PENDING
    table.started("a", pid=123, node_id="n1")
    job = table.get("a")
    assert (job.status, job.pid, job.driver_node_id) == (JobStatus.RUNNING, 123, "n1")
    table.exited("a", 0, now=5.0)
    assert job.status is JobStatus.SUCCEEDED and job.driver_exit_code == 0
    details = job.details()
    assert details["status"] == "SUCCEEDED" and details["end_time"] == 5000
    assert details["type"] == "SUBMISSION" and details["submission_id"] == "a"


def test_a_non_zero_exit_or_a_signal_is_failed_with_the_reason():
    table = table_with("code", "signal")
    for sid in ("code", "signal"):
        table.started(sid, pid=1)
    table.exited("code", 3, now=1.0, log_tail="Traceback: boom\n")
    table.exited("signal", -9, now=1.0)
    code, killed = table.get("code"), table.get("signal")
    assert code.status is JobStatus.FAILED and code.error_type == "JOB_ENTRYPOINT_COMMAND_ERROR"
    assert "exit code 3" in code.message and "boom" in code.message
    assert killed.status is JobStatus.FAILED and "killed by SIGKILL" in killed.message
    assert "No logs available" in killed.message


def test_a_stopped_running_job_is_stopped_whatever_its_exit_code():
    table = table_with("a")
    table.started("a", pid=1)
    assert table.request_stop("a", now=1.0) is True
    assert table.get("a").status is JobStatus.RUNNING  # until its process has ended
    table.exited("a", -15, now=2.0)
    assert table.get("a").status is JobStatus.STOPPED
    assert table.request_stop("a", now=3.0) is False  # already finished


def test_a_pending_job_stops_at_once_and_never_starts():
    table = table_with("a")
    assert table.request_stop("a", now=1.0) is True
    table.started("a", pid=5)
    job = table.get("a")
    assert job.status is JobStatus.STOPPED and job.pid is None


def test_a_job_that_cannot_start_failed_with_a_start_error():
    table = table_with("a")
    table.start_failed("a", "No such file", now=1.0)
    job = table.get("a")
    assert job.status is JobStatus.FAILED and job.error_type == "JOB_ENTRYPOINT_COMMAND_START_ERROR"
    assert "No such file" in job.message


def test_terminal_statuses_do_not_change():
    table = table_with("a")
    table.started("a", pid=1)
    table.exited("a", 0, now=1.0)
    table.exited("a", 1, now=2.0)
    table.start_failed("a", "late", now=3.0)
    assert table.get("a").status is JobStatus.SUCCEEDED
    assert {s for s in JobStatus if s.is_terminal()} == {
        JobStatus.STOPPED, JobStatus.SUCCEEDED, JobStatus.FAILED
    }  # fmt: skip


def test_a_taken_submission_id_is_refused_as_ray_refuses_it():
    table = table_with("a")
    with pytest.raises(ValueError, match="Job with submission_id a already exists"):
        table.add(SubmitRequest("true"), "a", "/logs/a.log", now=1.0)


def test_only_finished_jobs_can_be_deleted_and_unknown_ids_are_named():
    table = table_with("a", "b")
    with pytest.raises(ValueError, match="non-terminal state"):
        table.delete("a")
    table.request_stop("b", now=1.0)
    table.delete("b")
    with pytest.raises(JobNotFound, match="Job b does not exist"):
        table.get("b")


def test_a_full_table_pushes_out_the_oldest_finished_job_or_refuses_when_all_are_live():
    table = table_with("a", "b", max_jobs=2)
    with pytest.raises(ValueError, match="MINRAY_MAX_JOBS"):
        table.add(SubmitRequest("true"), "c", "/logs/c.log", now=2.0)
    table.request_stop("b", now=2.0)
    table.add(SubmitRequest("true"), "c", "/logs/c.log", now=3.0)
    assert list(table.jobs) == ["a", "c"]


def test_the_failure_message_keeps_only_the_end_of_a_long_log():
    message = failure_message(1, "x" * 30_000 + "END")
    assert message.endswith("END") and len(message) < 20_200
