"""The head's submitted jobs: one record per ``POST /api/jobs/``, and its status changes.

A pure state machine with no clock and no I/O (head/job_manager.py runs the
processes and calls it): every change takes ``now`` (seconds since the epoch).

    PENDING --started--> RUNNING --exited 0----------------> SUCCEEDED
       |                    |----exited non-zero / signal--> FAILED
       |--start failed--> FAILED
       |--stop--> STOPPED   '----stop, then exited---------> STOPPED

A stop asked of a RUNNING job only marks it (the process must still end); the exit
that follows is then STOPPED whatever its code. At most ``max_jobs`` records are
kept: a new job pushes out the oldest finished one, and when every record is a
live job a new one is refused.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any

from .job_schema import ENTRYPOINT_ERROR, ENTRYPOINT_START_ERROR, JobStatus, SubmitRequest

_MESSAGES = {
    JobStatus.PENDING: "Job has not started yet.",
    JobStatus.RUNNING: "Job is currently running.",
    JobStatus.SUCCEEDED: "Job finished successfully.",
    JobStatus.STOPPED: "Job was intentionally stopped.",
}


class JobNotFound(KeyError):
    """No job has this submission id (or it was deleted, or pushed out by newer ones)."""

    def __str__(self) -> str:
        return f"Job {self.args[0]} does not exist"


@dataclass
class SubmittedJob:
    submission_id: str
    entrypoint: str
    runtime_env: dict[str, Any]
    metadata: dict[str, str]
    log_path: str
    status: JobStatus = JobStatus.PENDING
    message: str = _MESSAGES[JobStatus.PENDING]
    error_type: str | None = None
    start_time: float = 0.0
    end_time: float = 0.0  #: 0 until it is terminal
    pid: int | None = None  #: the entrypoint's process (and process group), once started
    driver_exit_code: int | None = None
    stop_requested: bool = False
    driver_node_id: str | None = None

    def details(self) -> dict[str, Any]:
        """The job as Ray's ``JobDetails`` (times in milliseconds since the epoch)."""
        return {
            "type": "SUBMISSION",
            "job_id": None,
            "submission_id": self.submission_id,
            "driver_info": None,
            "status": self.status.value,
            "entrypoint": self.entrypoint,
            "message": self.message,
            "error_type": self.error_type,
            "start_time": int(self.start_time * 1000),
            "end_time": int(self.end_time * 1000) if self.end_time else None,
            "metadata": self.metadata,
            "runtime_env": self.runtime_env,
            "driver_agent_http_address": None,
            "driver_node_id": self.driver_node_id,
            "driver_exit_code": self.driver_exit_code,
        }


@dataclass
class SubmittedJobs:
    """Submitted jobs by submission id, oldest first."""

    max_jobs: int = 1000
    jobs: dict[str, SubmittedJob] = field(default_factory=dict)

    # --- queries ---------------------------------------------------------------------------

    def get(self, submission_id: str) -> SubmittedJob:
        job = self.jobs.get(submission_id)
        if job is None:
            raise JobNotFound(submission_id)
        return job

    def live(self) -> list[SubmittedJob]:
        """Jobs not yet terminal."""
        return [job for job in self.jobs.values() if not job.status.is_terminal()]

    # --- changes ---------------------------------------------------------------------------

    def add(self, request: SubmitRequest, submission_id: str, log_path: str, now: float):
        """A new PENDING job; ValueError when the id is taken or the table is full of live
        jobs."""
        if submission_id in self.jobs:
            raise ValueError(
                f"Job with submission_id {submission_id} already exists. "
                "Please use a different submission_id."
            )
        if len(self.jobs) >= self.max_jobs:
            finished = [job for job in self.jobs.values() if job.status.is_terminal()]
            if not finished:
                raise ValueError(
                    f"{len(self.jobs)} jobs are running or waiting to, the most this head "
                    "keeps (max_jobs, environment variable MINRAY_MAX_JOBS); stop one or "
                    "wait for one to finish"
                )
            del self.jobs[finished[0].submission_id]
        job = SubmittedJob(
            submission_id,
            request.entrypoint,
            request.runtime_env,
            request.metadata,
            log_path,
            start_time=now,
        )
        self.jobs[submission_id] = job
        return job

    def started(self, submission_id: str, pid: int, node_id: str | None = None) -> None:
        job = self.get(submission_id)
        if job.status is JobStatus.PENDING:
            job.pid, job.driver_node_id = pid, node_id
            self._set(job, JobStatus.RUNNING, _MESSAGES[JobStatus.RUNNING])

    def start_failed(
        self, submission_id: str, reason: str, now: float, error_type: str = ENTRYPOINT_START_ERROR
    ) -> None:
        """The entrypoint could not start (``error_type``: Ray's name for why)."""
        job = self.get(submission_id)
        if not job.status.is_terminal():
            job.error_type = error_type
            self._finish(
                job, JobStatus.FAILED, f"Job entrypoint command failed to start: {reason}", now
            )

    def exited(self, submission_id: str, returncode: int, now: float, log_tail: str = "") -> None:
        """The entrypoint's process ended with ``returncode`` (negative: killed by that signal)."""
        job = self.get(submission_id)
        if job.status.is_terminal():
            return
        job.driver_exit_code = returncode
        if job.stop_requested:
            self._finish(job, JobStatus.STOPPED, _MESSAGES[JobStatus.STOPPED], now)
        elif returncode == 0:
            self._finish(job, JobStatus.SUCCEEDED, _MESSAGES[JobStatus.SUCCEEDED], now)
        else:
            job.error_type = ENTRYPOINT_ERROR
            self._finish(job, JobStatus.FAILED, failure_message(returncode, log_tail), now)

    def request_stop(self, submission_id: str, now: float) -> bool:
        """Stop a job: True if it was live (a PENDING one is STOPPED at once, a RUNNING one
        once its process has ended), False if it had already finished."""
        job = self.get(submission_id)
        if job.status.is_terminal():
            return False
        job.stop_requested = True
        if job.status is JobStatus.PENDING:
            self._finish(job, JobStatus.STOPPED, _MESSAGES[JobStatus.STOPPED], now)
        return True

    def delete(self, submission_id: str) -> None:
        """Forget a finished job; ValueError if it is still live."""
        job = self.get(submission_id)
        if not job.status.is_terminal():
            raise ValueError(
                f"Attempted to delete job with submission_id {submission_id}, but it is in "
                f"a non-terminal state ({job.status.value}); stop it first"
            )
        del self.jobs[submission_id]

    def _finish(self, job: SubmittedJob, status: JobStatus, message: str, now: float) -> None:
        self._set(job, status, message)
        job.end_time = now

    @staticmethod
    def _set(job: SubmittedJob, status: JobStatus, message: str) -> None:
        job.status, job.message = status, message


def failure_message(returncode: int, log_tail: str) -> str:
    """Why a job FAILED: its exit code or the signal that killed it, and its last output."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        what = f"Job entrypoint command was killed by {name}"
    else:
        what = f"Job entrypoint command failed with exit code {returncode}"
    if not log_tail.strip():
        return f"{what}. No logs available."
    return f"{what}, last available logs (truncated to 20,000 chars):\n{log_tail[-20_000:]}"
