"""The job API's wire format: job statuses and the submit request, as Ray's REST API has them.

Shared by the head (head/job_routes.py checks each request with
:func:`parse_submit_request`) and the client (``minray.job_submission``), so a field
is named in one place. Pure: no I/O.

The body of ``POST /api/jobs/`` is Ray's ``JobSubmitRequest`` as JSON: ``entrypoint``
(a shell command), and optionally ``submission_id``, ``runtime_env``, ``metadata``
and the ``entrypoint_*`` resources. minray runs every entrypoint on the head machine
and reserves nothing for it, so non-zero ``entrypoint_*`` resources are refused
with a message saying so, rather than accepted and ignored. Its ``runtime_env`` is
checked as ``init``'s (``pip`` and ``conda`` refused with what to do), with
``working_dir`` and ``py_modules`` as the ``gcs://`` uris of packages uploaded to
the head first; it applies to the entrypoint's process and, through
``minray.init`` and ``RUNTIME_ENV_VARIABLE``, to its tasks and actors.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import string
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..runtime_env.packaging import is_package_uri, package_name
from ..runtime_env.validate import check as check_runtime_env


class JobStatus(str, Enum):
    """Where a submitted job is (Ray's values)."""

    #: accepted; its entrypoint has not started yet
    PENDING = "PENDING"
    #: its entrypoint's process runs
    RUNNING = "RUNNING"
    #: stopped on request (``stop_job``, ``minray job stop``, or the head shutting down)
    STOPPED = "STOPPED"
    #: its entrypoint exited with status 0
    SUCCEEDED = "SUCCEEDED"
    #: its entrypoint exited non-zero, was killed by a signal, or could not start
    FAILED = "FAILED"

    def __str__(self) -> str:
        return self.value

    def is_terminal(self) -> bool:
        """Whether the status can change no more (STOPPED, SUCCEEDED, FAILED)."""
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.STOPPED, JobStatus.SUCCEEDED, JobStatus.FAILED})

#: Ray's ``JobErrorType`` values that minray reports
ENTRYPOINT_START_ERROR = "JOB_ENTRYPOINT_COMMAND_START_ERROR"
ENTRYPOINT_ERROR = "JOB_ENTRYPOINT_COMMAND_ERROR"
SETUP_FAILURE = "RUNTIME_ENV_SETUP_FAILURE"

#: a submission id names the job's log file, so it is kept to these characters
SUBMISSION_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_ID_ALPHABET = string.ascii_letters + string.digits

#: how a submitted job's runtime_env reaches its driver's ``minray.init`` (set by the head)
RUNTIME_ENV_VARIABLE = "MINRAY_JOB_RUNTIME_ENV"
_RESOURCE_FIELDS = (
    "entrypoint_num_cpus",
    "entrypoint_num_gpus",
    "entrypoint_memory",
    "entrypoint_resources",
    "entrypoint_label_selector",
)
_KNOWN_FIELDS = frozenset(
    {"entrypoint", "submission_id", "job_id", "runtime_env", "metadata", *_RESOURCE_FIELDS}
)


@dataclass(frozen=True)
class SubmitRequest:
    """A checked ``POST /api/jobs/`` body."""

    entrypoint: str
    submission_id: str | None = None
    runtime_env: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


def new_submission_id() -> str:
    """A fresh id in Ray's format (``raysubmit_`` and 16 letters or digits)."""
    return "raysubmit_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def check_submission_id(value: Any) -> str:
    """``value`` if it can name a job; ValueError saying what is allowed otherwise."""
    if not isinstance(value, str) or not SUBMISSION_ID_PATTERN.fullmatch(value):
        raise ValueError(
            f"submission_id {value!r} is not allowed: use 1 to 128 letters, digits, '_', "
            "'-' or '.', starting with a letter or digit (or leave it out for a fresh one)"
        )
    return value


def parse_submit_request(body: Any) -> SubmitRequest:
    """Check a submit body; ValueError naming the first field that is wrong and why."""
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object with at least 'entrypoint'")
    unknown = sorted(set(body) - _KNOWN_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown fields {unknown}; a job takes {sorted(_KNOWN_FIELDS)} "
            "(Ray's JobSubmitRequest)"
        )
    entrypoint = body.get("entrypoint")
    if not isinstance(entrypoint, str) or not entrypoint.strip():
        raise ValueError(
            "entrypoint must be a non-empty string: the shell command that runs the job, "
            "e.g. 'python script.py'"
        )
    submission_id = body.get("submission_id") or body.get("job_id")  # job_id: Ray's old name
    if submission_id is not None:
        check_submission_id(submission_id)
    for name in _RESOURCE_FIELDS:
        value = body.get(name)
        if value not in (None, 0, 0.0, {}):
            raise ValueError(
                f"{name}={value!r}: minray runs every job's entrypoint on the head machine "
                "and reserves no resources for it; leave it out (the job's tasks and "
                "actors ask for their own resources)"
            )
    return SubmitRequest(
        entrypoint,
        submission_id,
        _runtime_env(body.get("runtime_env")),
        _metadata(body.get("metadata")),
    )


def _runtime_env(value: Any) -> dict[str, Any]:
    """A job's runtime_env: checked as ``init``'s is (runtime_env/validate.py), with its
    packages given as the ``gcs://`` uris of packages uploaded to the head (the clients
    upload a local ``working_dir`` or ``py_modules`` first, as Ray's do)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"runtime_env must be a JSON object, got {type(value).__name__}")
    try:
        check_runtime_env(value)
    except TypeError as e:
        raise ValueError(str(e)) from None
    uris = [value["working_dir"]] if value.get("working_dir") else []
    uris += list(value.get("py_modules") or [])
    for uri in uris:
        if not is_package_uri(uri):
            raise ValueError(
                f"runtime_env package {uri!r} is not the gcs:// uri of a package uploaded to "
                "this cluster: a job's working_dir and py_modules are uploaded first "
                "(JobSubmissionClient.submit_job and `minray job submit --working-dir` do it "
                "for a local directory)"
            )
    return {k: v for k, v in value.items() if v}


def package_names(runtime_env: dict[str, Any]) -> list[str]:
    """The names of the packages a checked runtime_env uses (working_dir first)."""
    uris = [runtime_env["working_dir"]] if runtime_env.get("working_dir") else []
    return [package_name(u) for u in uris + list(runtime_env.get("py_modules") or [])]


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError("metadata must be a JSON object of strings to strings")
    return dict(value)


def with_submitted_job_env(own: dict | None) -> dict | None:
    """``own`` (``init``'s runtime_env) over the runtime_env of the job this process runs
    as, when it is a submitted job's entrypoint (the head sets it): key by key, and
    ``env_vars`` name by name, as Ray merges a job's runtime_env with init's."""
    raw = os.environ.get(RUNTIME_ENV_VARIABLE)
    if not raw:
        return own
    try:
        job = json.loads(raw)
        if not isinstance(job, dict):
            raise ValueError
    except ValueError:
        raise ValueError(
            f"{RUNTIME_ENV_VARIABLE} is not a runtime_env as JSON: {raw[:200]!r} (the head "
            "sets it for a submitted job; unset it to run this script on its own)"
        ) from None
    if not job:
        return own
    merged = {**job, **(own or {})}
    env_vars = {**(job.get("env_vars") or {}), **((own or {}).get("env_vars") or {})}
    if env_vars:
        merged["env_vars"] = env_vars
    return merged
