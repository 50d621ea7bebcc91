"""Running submitted jobs: each entrypoint a child process of the head, in a group of its own.

The head node makes one :class:`JobManager` when it serves drivers over TCP; the
dashboard's job routes (head/job_routes.py) call it, and it records every change
in a :class:`~minray.head.submitted_jobs.SubmittedJobs` table. The rules it keeps:

* the head never waits on a job: the entrypoint runs as an asyncio subprocess
  (``/bin/sh -c ENTRYPOINT``, as Ray runs it), watched by a task of its own;
* each entrypoint leads a new session (``start_new_session``), so the job is its
  process group: a stop sends SIGTERM to the whole group, then SIGKILL after
  ``job_stop_wait_s``; when the entrypoint ends, whatever it left running in its
  group is killed too; :meth:`JobManager.close` (the head stopping) stops every job,
  and should the head be killed outright, Linux kills the entrypoint's process
  (``PR_SET_PDEATHSIG``);
* the entrypoint finds the cluster through ``MINRAY_ADDRESS`` (and ``RAY_ADDRESS``
  for Ray programs under ``minray.compat``) and ``MINRAY_AUTH_TOKEN`` in its
  environment, so ``minray.init()`` in it connects to this cluster;
* its stdout and stderr go to ``<session>/logs/job-driver-<submission_id>.log``;
* its runtime_env's ``working_dir`` (its current directory) and ``py_modules`` (on
  ``PYTHONPATH``, after the working_dir) are unpacked from the head's packages
  into ``<session>/runtime_resources/``, where the head node's workers find them.
"""

from __future__ import annotations

import asyncio
import codecs
import ctypes
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable

from ..config import CONFIG
from ..exceptions import RuntimeEnvSetupError
from ..runtime_env.setup import unpacked
from .job_schema import (
    RUNTIME_ENV_VARIABLE,
    SETUP_FAILURE,
    SubmitRequest,
    new_submission_id,
    package_names,
)
from .packages import PackageStore
from .submitted_jobs import SubmittedJob, SubmittedJobs

logger = logging.getLogger("minray.head")

#: the most of a job's log ``GET /api/jobs/{id}/logs`` returns (its end)
MAX_LOG_BYTES = 32 * 1024 * 1024
#: how often a followed log is read for more, and a stopped job checked on (seconds)
FOLLOW_INTERVAL_S = 0.2
_CHUNK = 64 * 1024


class JobManager:
    """The head's submitted jobs and their processes."""

    def __init__(
        self,
        session_dir: str,
        head_address: str,
        token: bytes,
        node_id: str,
        packages: PackageStore | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.table = SubmittedJobs(CONFIG.max_jobs)
        self.log_dir = os.path.join(session_dir, "logs")
        #: where runtime_env packages are unpacked on this machine (the workers' folder too)
        self.resources_dir = os.path.join(session_dir, "runtime_resources")
        self.packages = packages
        self._env = {
            "MINRAY_ADDRESS": head_address,
            "RAY_ADDRESS": head_address,
            "MINRAY_AUTH_TOKEN": token.hex(),
        }
        self._node_id = node_id
        self._clock = clock
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._watchers: set[asyncio.Task] = set()
        self._closed = False

    # --- requests ----------------------------------------------------------------------------

    def submit(self, request: SubmitRequest) -> SubmittedJob:
        """Record a job and start its entrypoint soon; ValueError for a taken submission id
        or a full table, RuntimeError once the head is stopping."""
        if self._closed:
            raise RuntimeError("the head is stopping; it takes no new jobs")
        submission_id = request.submission_id or new_submission_id()
        log_path = os.path.join(self.log_dir, f"job-driver-{submission_id}.log")
        job = self.table.add(request, submission_id, log_path, self._clock())
        watcher = asyncio.get_running_loop().create_task(self._run(job))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return job

    def stop(self, submission_id: str) -> bool:
        """Ask a job to stop (SIGTERM to its group now, SIGKILL after the grace period);
        False if it had already finished. JobNotFound for an unknown id."""
        live = self.table.request_stop(submission_id, self._clock())
        proc = self._procs.get(submission_id)
        if live and proc is not None and proc.returncode is None:
            _signal_group(proc.pid, signal.SIGTERM)
            loop = asyncio.get_running_loop()
            loop.call_later(CONFIG.job_stop_wait_s, _kill_if_running, proc)
        return live

    def delete(self, submission_id: str) -> None:
        """Forget a finished job (its log file stays); ValueError while it is live,
        JobNotFound for an unknown id."""
        self.table.delete(submission_id)

    async def read_logs(self, submission_id: str) -> str:
        """The job's output so far (its last MAX_LOG_BYTES). JobNotFound for an unknown id."""
        path = self.table.get(submission_id).log_path
        return await asyncio.to_thread(_read_tail, path, MAX_LOG_BYTES)

    async def follow_logs(self, submission_id: str) -> AsyncIterator[str]:
        """The job's output, chunk by chunk as it is written, until the job has finished
        (or is deleted, or the head stops) and all of it was read. JobNotFound for an
        unknown id."""
        job = self.table.get(submission_id)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        offset = 0
        while True:
            gone = self._closed or self.table.jobs.get(submission_id) is not job
            done = job.status.is_terminal() or gone
            chunk, offset = await asyncio.to_thread(_read_from, job.log_path, offset, _CHUNK)
            if chunk:
                text = decoder.decode(chunk)
                if text:
                    yield text
                continue
            if done:
                rest = decoder.decode(b"", final=True)
                if rest:
                    yield rest
                return
            await asyncio.sleep(FOLLOW_INTERVAL_S)

    def stop_accepting(self) -> None:
        """The head is stopping: take no new job, and end every log being followed (at
        what was written so far), so that no request waits on a job."""
        self._closed = True

    async def close(self) -> None:
        """Stop every job (SIGTERM, then SIGKILL after the grace period) and wait for
        their watchers: no entrypoint outlives the head."""
        self._closed = True
        for submission_id, proc in list(self._procs.items()):
            self.table.request_stop(submission_id, self._clock())
            _signal_group(proc.pid, signal.SIGTERM)
        for job in self.table.live():  # PENDING ones
            self.table.request_stop(job.submission_id, self._clock())
        if self._watchers:
            _, slow = await asyncio.wait(set(self._watchers), timeout=CONFIG.job_stop_wait_s)
            for proc in list(self._procs.values()):
                _signal_group(proc.pid, signal.SIGKILL)
            if slow:
                await asyncio.wait(slow, timeout=5.0)

    # --- one job -------------------------------------------------------------------------------

    async def _run(self, job: SubmittedJob) -> None:
        """Start the entrypoint, wait for it, and record how it ended."""
        submission_id = job.submission_id
        env = {**os.environ, **job.runtime_env.get("env_vars", {}), **self._env}
        env["MINRAY_JOB_SUBMISSION_ID"] = submission_id
        env[RUNTIME_ENV_VARIABLE] = json.dumps(job.runtime_env)
        if job.stop_requested:  # stopped before it could start
            return
        try:
            folders = await asyncio.to_thread(self._unpack, package_names(job.runtime_env))
        except (RuntimeEnvSetupError, OSError) as e:
            reason = f"its runtime_env could not be set up: {e}"
            self.table.start_failed(submission_id, reason, self._clock(), SETUP_FAILURE)
            return
        if folders:  # the working_dir (first) and py_modules: on the import path
            env["PYTHONPATH"] = os.pathsep.join([*folders, env.get("PYTHONPATH", "")]).rstrip(
                os.pathsep
            )
        cwd = folders[0] if job.runtime_env.get("working_dir") else None
        try:
            os.makedirs(self.log_dir, exist_ok=True)
            with open(job.log_path, "wb") as log:  # (a deleted job's log is replaced)
                proc = await asyncio.create_subprocess_shell(
                    job.entrypoint,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                    preexec_fn=_DIE_WITH_HEAD,
                    cwd=cwd,
                )
        except (OSError, ValueError) as e:
            logger.warning("job %s could not start: %s", submission_id, e)
            self.table.start_failed(submission_id, str(e), self._clock())
            return
        self._procs[submission_id] = proc
        if job.stop_requested:  # stopped while it was starting
            _signal_group(proc.pid, signal.SIGTERM)
            asyncio.get_running_loop().call_later(CONFIG.job_stop_wait_s, _kill_if_running, proc)
        else:
            self.table.started(submission_id, proc.pid, self._node_id)
        try:
            returncode = await proc.wait()
        finally:
            _signal_group(proc.pid, signal.SIGKILL)  # what it left behind in its group
            self._procs.pop(submission_id, None)
        tail = ""
        if returncode != 0 and not job.stop_requested:
            tail = await asyncio.to_thread(_read_tail, job.log_path, 20_000)
        if self.table.jobs.get(submission_id) is job:
            self.table.exited(submission_id, returncode, self._clock(), tail)

    def _unpack(self, names: list[str]) -> list[str]:
        """The folders where the packages ``names`` are unpacked on this machine (once
        per machine, shared with the workers of the head node)."""
        return [unpacked(self.resources_dir, name, self._package) for name in names]

    def _package(self, name: str) -> bytes:
        data = self.packages.get(name) if self.packages is not None else None
        if data is None:
            raise RuntimeEnvSetupError(f"the head has no runtime_env package {name}")
        return data


def _die_with_head_function() -> Callable[[], None] | None:
    """What the entrypoint's process runs before its command: ask Linux to SIGKILL it
    if the head dies without stopping it (``PR_SET_PDEATHSIG``; a command that ``sh``
    runs alone keeps it). Prepared here, so the forked child only makes one call."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    set_parent_death_signal = 1  # PR_SET_PDEATHSIG

    def die_with_head() -> None:
        prctl(set_parent_death_signal, signal.SIGKILL)

    return die_with_head


_DIE_WITH_HEAD = _die_with_head_function()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group ``pid`` leads; nothing if it is gone."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_if_running(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        _signal_group(proc.pid, signal.SIGKILL)


def _read_tail(path: str, limit: int) -> str:
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _read_from(path: str, offset: int, limit: int) -> tuple[bytes, int]:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(limit)
    except FileNotFoundError:
        return b"", offset
    return data, offset + len(data)
