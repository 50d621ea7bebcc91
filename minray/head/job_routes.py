"""The job API on the dashboard's port, at Ray's REST paths, so Ray's own
``JobSubmissionClient`` and ``minray.job_submission`` both work against a minray head:

* ``GET /api/version``: what Ray's client asks first;
* ``POST /api/jobs/``: submit (Ray's ``JobSubmitRequest`` body, head/job_schema.py);
* ``GET /api/jobs/``: every job: the submitted ones, then the drivers that connected
  on their own (type ``DRIVER``), as Ray's ``JobDetails``;
* ``GET /api/jobs/{id}``, ``GET /api/jobs/{id}/logs``, ``POST /api/jobs/{id}/stop``,
  ``DELETE /api/jobs/{id}``, and ``GET /api/jobs/{id}/logs/tail`` (a WebSocket that
  sends the log as it grows and closes when the job has finished: code 1000, or
  1001 when the head stops first).

``{id}`` is a submission id, or the hex job id of a driver (only looked at, as in Ray).
Every route goes through the dashboard's token, Host and Origin checks
(head/dashboard_auth.py). The processes are run by head/job_manager.py; a head that
does not listen for drivers over TCP (an embedded cluster) answers 503 to a submit.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from .dashboard_auth import error_response
from .job_schema import package_names, parse_submit_request
from .submitted_jobs import JobNotFound

if TYPE_CHECKING:
    from aiohttp import web

    from .job_table import JobRecord
    from .service import HeadService

logger = logging.getLogger("minray.head")

#: the Ray release whose job API this serves (Ray's client checks it is new enough)
RAY_API_VERSION = "2.60.0"
#: Ray's job REST API version (its dashboard/modules/version.py)
JOB_API_VERSION = "4"


def job_routes(head: HeadService) -> list:
    """The job API's ``(method, path, handler)`` routes."""
    from aiohttp import WSCloseCode, web

    def manager():
        if head.job_manager is None:
            raise _Refused(
                503,
                "this cluster runs no jobs: jobs need a head that listens for drivers "
                "(`minray start --head`, or minray.cluster_utils.Cluster)",
            )
        return head.job_manager

    async def version(request: web.Request) -> web.Response:
        from .. import __version__

        session = os.path.basename(head.session_dir) if head.session_dir else ""
        return web.json_response({"version": JOB_API_VERSION, "ray_version": RAY_API_VERSION,
                                  "ray_commit": "", "session_name": session,
                                  "minray_version": __version__})  # fmt: skip

    async def submit(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return error_response(
                400, "the request body is not JSON (Content-Type: application/json)"
            )
        try:
            wanted = parse_submit_request(body)
            missing = [n for n in package_names(wanted.runtime_env) if not _kept(head, n)]
            if missing:
                raise ValueError(
                    f"this cluster has no runtime_env package {', '.join(missing)}: upload it "
                    "first (PUT /api/packages/gcs/NAME; the job clients do it for you)"
                )
            job = manager().submit(wanted)
        except _Refused as e:
            return error_response(e.status, e.message)
        except ValueError as e:
            return error_response(400, str(e))
        except RuntimeError as e:
            return error_response(503, str(e))
        return web.json_response({"job_id": job.submission_id, "submission_id": job.submission_id})

    async def list_jobs(request: web.Request) -> web.Response:
        return web.json_response(all_details(head))

    async def info(request: web.Request) -> web.Response:
        found = find_details(head, request.match_info["id"])
        if found is None:
            return _unknown(request)
        return web.json_response(found)

    async def logs(request: web.Request) -> web.Response:
        try:
            text = await _submitted(head, request).read_logs(request.match_info["id"])
        except _Refused as e:
            return error_response(e.status, e.message)
        return web.json_response({"logs": text})

    async def tail(request: web.Request) -> web.StreamResponse:
        try:
            chunks = _submitted(head, request).follow_logs(request.match_info["id"])
        except _Refused as e:
            return error_response(e.status, e.message)
        ws = web.WebSocketResponse(heartbeat=30, timeout=5)
        await ws.prepare(request)

        async def pump() -> None:
            async for text in chunks:
                await ws.send_str(text)

        sender = asyncio.ensure_future(pump())
        closed = asyncio.ensure_future(ws.receive())  # the client closing (or saying anything)
        try:
            await asyncio.wait({sender, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, closed):
                task.cancel()
            await asyncio.gather(sender, closed, return_exceptions=True)
            await chunks.aclose()
        if sender.done() and not sender.cancelled() and sender.exception() is not None:
            logger.debug(
                "the log tail of %s stopped: %r", request.match_info["id"], sender.exception()
            )
        job = (
            head.job_manager.table.jobs.get(request.match_info["id"]) if head.job_manager else None
        )
        ended = job is None or job.status.is_terminal()  # (else the head is stopping)
        await ws.close(code=WSCloseCode.OK if ended else WSCloseCode.GOING_AWAY)
        return ws

    async def stop(request: web.Request) -> web.Response:
        try:
            stopped = _submitted(head, request).stop(request.match_info["id"])
        except _Refused as e:
            return error_response(e.status, e.message)
        return web.json_response({"stopped": stopped})

    async def delete(request: web.Request) -> web.Response:
        try:
            _submitted(head, request).delete(request.match_info["id"])
        except _Refused as e:
            return error_response(e.status, e.message)
        except ValueError as e:
            return error_response(400, str(e))
        return web.json_response({"deleted": True})

    return [
        ("GET", "/api/version", version),
        ("POST", "/api/jobs/", submit),
        ("GET", "/api/jobs/", list_jobs),
        ("GET", "/api/jobs/{id}", info),
        ("GET", "/api/jobs/{id}/logs", logs),
        ("GET", "/api/jobs/{id}/logs/tail", tail),
        ("POST", "/api/jobs/{id}/stop", stop),
        ("DELETE", "/api/jobs/{id}", delete),
    ]


class _Refused(Exception):
    """A request the job API answers with an error (status and message)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _submitted(head: HeadService, request: web.Request):
    """The job manager, when ``{id}`` names a submitted job; else _Refused (404 unknown,
    400 a driver's job: only submitted jobs have logs here and can be stopped or deleted)."""
    job_id = request.match_info["id"]
    manager = head.job_manager
    if manager is not None and job_id in manager.table.jobs:
        return manager
    if _driver(head, job_id) is not None:
        raise _Refused(
            400,
            f"{job_id} is a driver's job (a script that called minray.init itself): only "
            "submitted jobs have their logs here and can be stopped or deleted",
        )
    raise _Refused(404, _unknown_text(job_id))


def _kept(head: HeadService, name: str) -> bool:
    return head.packages is not None and head.packages.has(name)


def _unknown(request: web.Request) -> web.Response:
    return error_response(404, _unknown_text(request.match_info["id"]))


def _unknown_text(job_id: str) -> str:
    return f"{JobNotFound(job_id)} (`minray job list` shows the jobs this head keeps)"


def all_details(head: HeadService) -> list[dict[str, Any]]:
    """Every job as Ray's JobDetails: the submitted ones, each with its driver when it has
    connected, then the drivers that were not submitted."""
    drivers_of = _drivers_by_submission(head)
    out = []
    if head.job_manager is not None:
        for job in head.job_manager.table.jobs.values():
            out.append(_linked(job.details(), drivers_of.get(job.submission_id)))
    linked = {record.job_id for record in drivers_of.values()}
    for record in head.jobs.jobs.values():
        if record.job_id not in linked:
            out.append(driver_details(record))
    return out


def find_details(head: HeadService, job_id: str) -> dict[str, Any] | None:
    if head.job_manager is not None and job_id in head.job_manager.table.jobs:
        job = head.job_manager.table.jobs[job_id]
        return _linked(job.details(), _drivers_by_submission(head).get(job_id))
    record = _driver(head, job_id)
    return None if record is None else driver_details(record)


def driver_details(record: JobRecord) -> dict[str, Any]:
    """A driver's job (from the head's job table) as Ray's JobDetails of type DRIVER."""
    return {
        "type": "DRIVER",
        "job_id": record.job_id.hex(),
        "submission_id": None,
        "driver_info": _driver_info(record),
        "status": "SUCCEEDED" if record.is_dead else "RUNNING",
        "entrypoint": record.info.get("entrypoint", ""),
        "message": None,
        "error_type": None,
        "start_time": int(record.start_time * 1000),
        "end_time": int(record.end_time * 1000) if record.is_dead else None,
        "metadata": {},
        "runtime_env": {},
        "driver_agent_http_address": None,
        "driver_node_id": record.node_id.hex(),
        "driver_exit_code": None,
    }


def _driver_info(record: JobRecord) -> dict[str, str]:
    return {"id": record.job_id.hex(), "node_ip_address": str(record.info.get("address", "")),
            "pid": str(record.info.get("pid", ""))}  # fmt: skip


def _linked(details: dict[str, Any], driver: JobRecord | None) -> dict[str, Any]:
    if driver is not None:
        details["job_id"] = driver.job_id.hex()
        details["driver_info"] = _driver_info(driver)
    return details


def _drivers_by_submission(head: HeadService) -> dict[str, JobRecord]:
    """The newest driver each submitted job started (its environment names the job)."""
    out = {}
    for record in head.jobs.jobs.values():
        submission_id = record.info.get("submission_id")
        if submission_id:
            out[submission_id] = record
    return out


def _driver(head: HeadService, job_id: str) -> JobRecord | None:
    try:
        key = bytes.fromhex(job_id)
    except ValueError:
        return None
    return head.jobs.jobs.get(key)
