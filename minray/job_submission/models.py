"""What the job client returns, with Ray's names: ``JobStatus``, ``JobInfo``, ``JobDetails``,
``DriverInfo`` and ``JobType``.

Records built from the head's JSON (head/submitted_jobs.py and head/job_routes.py
write it); fields the head adds later are ignored, so an older client still reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

from ..head.job_schema import JobStatus

__all__ = ["DriverInfo", "JobDetails", "JobInfo", "JobStatus", "JobType"]


class JobType(str, Enum):
    """How a job came to be (Ray's values)."""

    #: submitted through the job API (``submit_job``, ``minray job submit``)
    SUBMISSION = "SUBMISSION"
    #: a script that called ``minray.init`` itself
    DRIVER = "DRIVER"


@dataclass
class DriverInfo:
    """The driver process of a job."""

    id: str  #: its job id (hex)
    node_ip_address: str
    pid: str


@dataclass
class JobInfo:
    """A job's status and what it was submitted with (times: ms since the epoch)."""

    status: JobStatus
    entrypoint: str
    message: str | None = None
    error_type: str | None = None
    start_time: int | None = None
    end_time: int | None = None  #: None until the job is terminal
    metadata: dict[str, str] | None = None
    runtime_env: dict[str, Any] | None = None
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    entrypoint_memory: int | None = None
    entrypoint_resources: dict[str, float] | None = None
    driver_agent_http_address: str | None = None
    driver_node_id: str | None = None
    driver_exit_code: int | None = None  #: the entrypoint's exit status, once it ended


@dataclass
class JobDetails(JobInfo):
    """A job as ``get_job_info`` and ``list_jobs`` return it: its :class:`JobInfo`, its type
    and ids, and its driver."""

    type: JobType = JobType.SUBMISSION
    job_id: str | None = None  #: the job id of its driver, once the driver connected
    submission_id: str | None = None
    driver_info: DriverInfo | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobDetails:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["status"] = JobStatus(values["status"])
        values["type"] = JobType(values.get("type") or "SUBMISSION")
        if values.get("driver_info"):
            values["driver_info"] = DriverInfo(**values["driver_info"])
        return cls(**values)
