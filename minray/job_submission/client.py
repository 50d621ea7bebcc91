"""``JobSubmissionClient``: submit, watch and stop jobs through a head's dashboard.

The same calls and answers as Ray's ``ray.job_submission.JobSubmissionClient``,
over the same REST paths (head/job_routes.py), so either client works against
either head. Plain HTTP with the standard library (``urllib``), and the log tail
over a WebSocket with aiohttp, as Ray's. Every request carries ``Authorization:
Bearer <token>`` (where the token comes from: job_submission/address.py).

Errors, as Ray's client: ``ConnectionError`` when nothing answers at the address,
``RuntimeError("Request failed with status code N: ...")`` when the head refuses a
request (an unknown job id, a submission id in use, a missing token).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

from ..config import CONFIG
from ..head.job_schema import JobStatus
from ..runtime_env.packaging import is_package_uri, package, package_name
from .address import dashboard_address, find_token
from .models import JobDetails

#: seconds one request may take
REQUEST_TIMEOUT_S = 30.0


class JobSubmissionClient:
    """A client of the job API of the dashboard at ``address`` (see address.py for the
    forms it takes and the default)."""

    def __init__(
        self,
        address: str | None = None,
        create_cluster_if_needed: bool = False,
        cookies: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        verify: bool | str = True,
    ):
        if create_cluster_if_needed:
            raise ValueError(
                "create_cluster_if_needed=True is not supported: start the cluster first "
                "(`minray start --head`) and give its dashboard's address"
            )
        self._address, session_dir = dashboard_address(address)
        self._headers = dict(headers or {})
        if cookies:
            self._headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        if not any(k.lower() == "authorization" for k in self._headers):
            token = find_token(session_dir)
            if token is not None:
                self._headers["Authorization"] = f"Bearer {token.hex()}"
        self._default_metadata = dict(metadata or {})
        self._server_version = self._check_connection()

    def get_address(self) -> str:
        return self._address

    # --- the calls --------------------------------------------------------------------------

    def submit_job(
        self,
        *,
        entrypoint: str,
        job_id: str | None = None,
        runtime_env: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        submission_id: str | None = None,
        entrypoint_num_cpus: float | None = None,
        entrypoint_num_gpus: float | None = None,
        entrypoint_memory: int | None = None,
        entrypoint_resources: dict[str, float] | None = None,
    ) -> str:
        """Start ``entrypoint`` (a shell command) on the head machine; returns the
        submission id. It runs with ``MINRAY_ADDRESS`` set, so ``minray.init()`` in it
        joins this cluster. A local ``working_dir`` or ``py_modules`` entry of
        ``runtime_env`` is zipped and uploaded first (once: packages are named by their
        content), and the job runs in its copy of the working_dir."""
        body = {
            "entrypoint": entrypoint,
            "submission_id": submission_id or job_id,
            "runtime_env": self._upload_packages(runtime_env) if runtime_env else None,
            "metadata": {**(metadata or {}), **self._default_metadata} or None,
            "entrypoint_num_cpus": entrypoint_num_cpus,
            "entrypoint_num_gpus": entrypoint_num_gpus,
            "entrypoint_memory": entrypoint_memory,
            "entrypoint_resources": entrypoint_resources,
        }
        sent = {k: v for k, v in body.items() if v is not None}
        return self._request("POST", "/api/jobs/", sent)["submission_id"]

    def stop_job(self, job_id: str) -> bool:
        """Ask a job to stop (SIGTERM, then SIGKILL); True if it was still running."""
        return bool(self._request("POST", f"/api/jobs/{_quoted(job_id)}/stop")["stopped"])

    def delete_job(self, job_id: str) -> bool:
        """Forget a finished job (its log file stays); RuntimeError if it still runs."""
        return bool(self._request("DELETE", f"/api/jobs/{_quoted(job_id)}")["deleted"])

    def get_job_info(self, job_id: str) -> JobDetails:
        return JobDetails.from_json(self._request("GET", f"/api/jobs/{_quoted(job_id)}"))

    def list_jobs(self) -> list[JobDetails]:
        return [JobDetails.from_json(row) for row in self._request("GET", "/api/jobs/")]

    def get_job_status(self, job_id: str) -> JobStatus:
        return self.get_job_info(job_id).status

    def get_job_logs(self, job_id: str) -> str:
        """Everything the job's entrypoint has printed so far (stdout and stderr)."""
        return self._request("GET", f"/api/jobs/{_quoted(job_id)}/logs")["logs"]

    async def tail_job_logs(self, job_id: str) -> AsyncIterator[str]:
        """The job's output as it is printed, chunk by chunk, until the job has ended."""
        import aiohttp

        url = f"{self._address}/api/jobs/{_quoted(job_id)}/logs/tail"
        async with aiohttp.ClientSession(headers=self._headers) as session:
            try:
                ws = await session.ws_connect(url)
            except aiohttp.WSServerHandshakeError as e:
                detail = await self._describe_refusal(session, job_id)
                raise RuntimeError(
                    f"Request failed with status code {e.status}: {detail}"
                ) from None
            except aiohttp.ClientConnectionError as e:
                raise ConnectionError(f"Failed to connect to the dashboard at {url}: {e}") from None
            async with ws:
                while True:
                    msg = await ws.receive()
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        yield msg.data
                    elif msg.type == aiohttp.WSMsgType.ERROR:
                        raise RuntimeError(
                            f"the log stream of job {job_id} broke: {ws.exception()}"
                        )
                    elif ws.close_code == aiohttp.WSCloseCode.GOING_AWAY:
                        raise RuntimeError(
                            f"the dashboard at {self._address} stopped before job {job_id} "
                            "ended (the head is stopping)"
                        )
                    else:  # closed: the job has ended and all of its log was sent
                        return

    # --- runtime_env packages -----------------------------------------------------------------

    def _upload_packages(self, runtime_env: dict[str, Any]) -> dict[str, Any]:
        """``runtime_env`` with its local working_dir and py_modules replaced by the uris of
        their packages, uploaded to the head if it does not have them yet."""
        env = dict(runtime_env)
        excludes = list(env.get("excludes") or [])
        working_dir = env.get("working_dir")
        if isinstance(working_dir, str) and not is_package_uri(working_dir):
            env["working_dir"] = self._upload(working_dir, excludes, "runtime_env['working_dir']")
        if isinstance(env.get("py_modules"), list):
            env["py_modules"] = [
                m if not isinstance(m, str) or is_package_uri(m)
                else self._upload(m, excludes, "runtime_env['py_modules'] entry", module=True)
                for m in env["py_modules"]
            ]  # fmt: skip
        return env

    def _upload(self, path: str, excludes: list[str], what: str, module: bool = False) -> str:
        path = os.path.abspath(os.path.expanduser(path))
        under = os.path.basename(path.rstrip(os.sep)) if module and os.path.isdir(path) else ""
        uri, data = package(path, excludes, CONFIG.runtime_env_max_bytes, what, under)
        where = f"/api/packages/gcs/{package_name(uri)}"
        try:
            self._request("GET", where)
        except RuntimeError as e:
            if "status code 404" not in str(e):
                raise
            self._request("PUT", where, data=data)
        return uri

    # --- HTTP ---------------------------------------------------------------------------------

    def _check_connection(self) -> dict:
        """What ``GET /api/version`` answers; ConnectionError if nothing answers there,
        RuntimeError if what answers has no job API."""
        try:
            return self._request("GET", "/api/version")
        except RuntimeError as e:
            if "status code 404" in str(e):
                raise RuntimeError(
                    f"{self._address} answers but serves no job API (Version check returned "
                    "404): is it a minray or Ray dashboard?"
                ) from None
            raise

    def _request(
        self, method: str, path: str, body: dict | None = None, data: bytes | None = None
    ) -> Any:
        """The JSON answer to a request with JSON ``body`` or raw ``data`` (a package)."""
        headers = {**self._headers, "Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif data is not None:
            headers["Content-Type"] = "application/octet-stream"
        request = urllib.request.Request(
            self._address + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", errors="replace")
            raise RuntimeError(
                f"Request failed with status code {e.code}: {_reason(text)}."
            ) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ConnectionError(
                f"Failed to connect to the minray dashboard at {self._address} ({reason}): is "
                "the cluster running, and is this its dashboard's address? `minray dashboard` "
                "prints it"
            ) from None

    async def _describe_refusal(self, session, job_id: str) -> str:
        """Why the dashboard refused the log tail's handshake (asked again over HTTP)."""
        async with session.get(f"{self._address}/api/jobs/{_quoted(job_id)}/logs") as r:
            return _reason(await r.text())


def _quoted(job_id: str) -> str:
    from urllib.parse import quote

    if not isinstance(job_id, str) or not job_id:
        raise ValueError(f"a job id must be a non-empty string, got {job_id!r}")
    return quote(job_id, safe="")


def _reason(text: str) -> str:
    """The ``error`` of a JSON error answer, else the answer's text."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(parsed, dict) and "error" in parsed:
        return str(parsed["error"])
    return text.strip()
