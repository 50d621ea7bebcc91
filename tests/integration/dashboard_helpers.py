"""A dashboard served by an embedded cluster, and plain HTTP requests to it."""

from __future__ import annotations

import http.client
import json
import os
from dataclasses import dataclass

import pytest

from ..conftest import _start


@dataclass
class Dashboard:
    host: str
    port: int
    token: str  #: hex, as a user types it
    session_dir: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        headers: dict | None = None,
        body: bytes | str | None = None,
        token: bool = True,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """``(status, headers, body)``; the token as a Bearer header unless ``token=False``,
        and ``Host`` the dashboard's own unless ``headers`` say otherwise."""
        sent = {"Host": f"{self.host}:{self.port}"}
        if token:
            sent["Authorization"] = f"Bearer {self.token}"
        sent.update(headers or {})
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def json(self, path: str, **kwargs):
        status, _, body = self.request("GET", path, **kwargs)
        assert status == 200, (path, status, body)
        return json.loads(body)


@pytest.fixture
def dashboard():
    """An embedded 1-CPU cluster serving its dashboard on a free port (checked for leaks)."""
    for session_dir in _start(num_cpus=1, include_dashboard=True, dashboard_port=0):
        with open(os.path.join(session_dir, "dashboard_url")) as f:
            host, port = f.read().strip().rsplit(":", 1)
        with open(os.path.join(session_dir, "token"), "rb") as f:
            token = f.read().hex()
        yield Dashboard(host, int(port), token, session_dir)
