"""Submitting jobs to a minray cluster, as Ray's ``ray.job_submission``.

A job is a shell command (``python script.py``) that the head runs on its machine,
with ``MINRAY_ADDRESS`` set so that ``minray.init()`` in it joins the cluster::

    from minray.job_submission import JobSubmissionClient, JobStatus

    client = JobSubmissionClient("http://127.0.0.1:8265")
    job = client.submit_job(entrypoint="python script.py")
    client.get_job_status(job)   # JobStatus.RUNNING, then SUCCEEDED / FAILED / STOPPED
    print(client.get_job_logs(job))

The client talks to the dashboard's job API (head/job_routes.py), which Ray's own
client can use too; ``minray job ...`` (job_cli.py) is the same from a terminal.
See docs/jobs.md.
"""

from ..head.job_schema import JobStatus
from .client import JobSubmissionClient
from .models import DriverInfo, JobDetails, JobInfo, JobType

__all__ = ["DriverInfo", "JobDetails", "JobInfo", "JobStatus", "JobSubmissionClient", "JobType"]
