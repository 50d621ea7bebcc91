"""``minray job ...``: submit, watch and stop jobs from a terminal, as ``ray job ...``.

``minray job submit [--address URL] [--working-dir DIR] [--submission-id ID]
[--runtime-env-json JSON] [--no-wait] -- python script.py`` runs the command on the
head machine as a job (in a copy of DIR, uploaded by the client);
without ``--no-wait`` it prints the job's output as it comes and exits 1 if the
job FAILED (as Ray's). ``status``, ``logs [--follow]``, ``stop [--no-wait]``,
``list`` and ``delete`` take a submission id. Every command is a thin wrapper of
:class:`minray.job_submission.JobSubmissionClient`, which finds the dashboard and
the token (``--address``, ``MINRAY_ADDRESS``, else the head running here).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import time

from .job_submission import JobStatus, JobSubmissionClient

#: seconds ``minray job stop`` waits for the job to end (the head's SIGKILL comes sooner)
STOP_WAIT_S = 60.0


def add_command(commands) -> None:
    job = commands.add_parser("job", help="submit, watch and stop jobs (as `ray job`)")
    verbs = job.add_subparsers(dest="job_command", metavar="COMMAND")

    def verb(name: str, help: str, takes_id: bool = True) -> argparse.ArgumentParser:
        parser = verbs.add_parser(name, help=help)
        parser.add_argument(
            "--address",
            default=None,
            help="the dashboard, http://HOST:PORT (default: MINRAY_ADDRESS, else the head "
            "running on this machine)",
        )
        parser.add_argument("--headers", default=None, help="JSON of HTTP headers to send")
        if takes_id:
            parser.add_argument("job_id", metavar="JOB_ID", help="the job's submission id")
        return parser

    submit = verb("submit", "run a command on the head machine as a job", takes_id=False)
    submit.add_argument("--submission-id", default=None, help="the job's id (default: new)")
    submit.add_argument("--runtime-env-json", default=None, help="runtime_env as JSON")
    submit.add_argument("--metadata-json", default=None, help="metadata as a JSON object")
    submit.add_argument(
        "--working-dir", default=None, help="a local directory the job runs in (uploaded)"
    )
    submit.add_argument("--no-wait", action="store_true", help="do not follow the job's logs")
    submit.add_argument("entrypoint", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    verb("status", "print a job's status")
    logs = verb("logs", "print a job's output")
    logs.add_argument("-f", "--follow", action="store_true", help="follow until the job ends")
    stop = verb("stop", "stop a job (SIGTERM to its processes, then SIGKILL)")
    stop.add_argument("--no-wait", action="store_true", help="do not wait for it to end")
    verb("list", "list the jobs", takes_id=False)
    verb("delete", "forget a finished job")


def run(args) -> int:
    if not args.job_command:
        print("usage: minray job {submit,status,logs,stop,list,delete} ...", file=sys.stderr)
        return 2
    try:
        if args.job_command == "submit":
            _check_submit(args)
        client = JobSubmissionClient(args.address, headers=_json_arg(args.headers, "--headers"))
        return _COMMANDS[args.job_command](client, args)
    except (ValueError, ConnectionError, RuntimeError) as e:
        print(f"minray job {args.job_command}: {e}", file=sys.stderr)
        return 1


def _check_submit(args) -> None:
    """Refuse a submit that cannot work before asking the head anything."""
    if args.entrypoint[:1] == ["--"]:
        args.entrypoint = args.entrypoint[1:]
    if not args.entrypoint:
        raise ValueError(
            "give the command to run after --, e.g. `minray job submit -- python x.py`"
        )


def _submit(client: JobSubmissionClient, args) -> int:
    runtime_env = _json_arg(args.runtime_env_json, "--runtime-env-json") or {}
    if args.working_dir:  # zipped and uploaded by the client, as Ray's --working-dir
        runtime_env["working_dir"] = args.working_dir
    job_id = client.submit_job(
        entrypoint=shlex.join(args.entrypoint),
        submission_id=args.submission_id,
        runtime_env=runtime_env,
        metadata=_json_arg(args.metadata_json, "--metadata-json"),
    )
    print(f"Job '{job_id}' submitted successfully (dashboard {client.get_address()})")
    print(f"  minray job logs {job_id}\n  minray job status {job_id}\n  minray job stop {job_id}")
    if args.no_wait:
        return 0
    print("Tailing logs until the job exits (disable with --no-wait):", flush=True)
    status = asyncio.run(_follow(client, job_id))
    return 1 if status is JobStatus.FAILED else 0


async def _follow(client: JobSubmissionClient, job_id: str) -> JobStatus:
    async for text in client.tail_job_logs(job_id):
        print(text, end="", flush=True)
    return _print_status(client, job_id)


def _print_status(client: JobSubmissionClient, job_id: str) -> JobStatus:
    info = client.get_job_info(job_id)
    if info.status is JobStatus.SUCCEEDED:
        print(f"Job '{job_id}' succeeded")
    elif info.status is JobStatus.STOPPED:
        print(f"Job '{job_id}' was stopped")
    elif info.status is JobStatus.FAILED:
        print(f"Job '{job_id}' failed\nStatus message: {info.message}")
    else:
        print(f"Status for job '{job_id}': {info.status}\nStatus message: {info.message}")
    return info.status


def _status(client: JobSubmissionClient, args) -> int:
    _print_status(client, args.job_id)
    return 0


def _logs(client: JobSubmissionClient, args) -> int:
    if args.follow:
        asyncio.run(_print_chunks(client, args.job_id))
    else:
        print(client.get_job_logs(args.job_id), end="")
    return 0


async def _print_chunks(client: JobSubmissionClient, job_id: str) -> None:
    async for text in client.tail_job_logs(job_id):
        print(text, end="", flush=True)


def _stop(client: JobSubmissionClient, args) -> int:
    print(f"Attempting to stop job '{args.job_id}'")
    client.stop_job(args.job_id)
    if args.no_wait:
        return 0
    deadline = time.monotonic() + STOP_WAIT_S
    while not client.get_job_status(args.job_id).is_terminal():
        if time.monotonic() > deadline:
            raise RuntimeError(f"job '{args.job_id}' has not ended after {STOP_WAIT_S:.0f}s")
        time.sleep(0.2)
    _print_status(client, args.job_id)
    return 0


def _list(client: JobSubmissionClient, args) -> int:
    rows = client.list_jobs()
    print(f"{'SUBMISSION ID':<30} {'JOB ID':<10} {'STATUS':<10} ENTRYPOINT")
    for job in rows:
        sid, jid = job.submission_id or "-", job.job_id or "-"
        print(f"{sid:<30} {jid:<10} {job.status.value:<10} {job.entrypoint}")
    return 0


def _delete(client: JobSubmissionClient, args) -> int:
    client.delete_job(args.job_id)
    print(f"Job '{args.job_id}' deleted successfully")
    return 0


def _json_arg(text: str | None, flag: str) -> dict | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as e:
        raise ValueError(f"{flag} is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{flag} must be a JSON object, got {type(value).__name__}")
    return value


_COMMANDS = {"submit": _submit, "status": _status, "logs": _logs, "stop": _stop,
             "list": _list, "delete": _delete}  # fmt: skip
