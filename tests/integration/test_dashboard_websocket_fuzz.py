"""Random WebSocket handshakes and frames at the dashboard's WebSocket (the job log tail,
``/api/jobs/{id}/logs/tail``), issue #16's fuzzed listeners: an upgrade without the token
or from another site is refused before it happens; after a good upgrade, any frames
(wrong opcodes, lying lengths, unmasked, truncated, huge) only end that connection. The
head stays up, answers the next request, keeps the job running, and keeps no fd."""

from __future__ import annotations

import base64
import os
import socket
import struct
import time

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minray.cluster_utils import Cluster
from minray.job_submission import JobSubmissionClient

from .cluster_helpers import wait_until
from .dashboard_helpers import Dashboard


@pytest.fixture
def head_with_job(tmp_path):
    """A head serving its dashboard, running one job that prints a line a second."""
    cluster = Cluster()
    try:
        node = cluster.add_node(num_cpus=1, include_dashboard=True, dashboard_port=0)
        with open(os.path.join(node.session_dir, "dashboard_url")) as f:
            host, port = f.read().strip().rsplit(":", 1)
        dash = Dashboard(host, int(port), cluster.token.hex(), node.session_dir)
        client = JobSubmissionClient(dash.url, headers={"Authorization": f"Bearer {dash.token}"})
        loop = "for i in $(seq 1 300); do echo line $i; sleep 1; done"
        job = client.submit_job(entrypoint=f"sh -c '{loop}'")
        assert wait_until(lambda: client.get_job_status(job) == "RUNNING", 30)
        yield dash, client, job, node
        client.stop_job(job)
    finally:
        cluster.shutdown()


def _upgrade(dash: Dashboard, path: str, headers: dict[str, str]) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    sent = {
        "Host": f"{dash.host}:{dash.port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
        "Authorization": f"Bearer {dash.token}",
    }
    sent.update(headers)
    lines = [f"GET {path} HTTP/1.1", *(f"{k}: {v}" for k, v in sent.items() if v is not None)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogatepass")


def _exchange(dash: Dashboard, first: bytes, then: bytes = b"", wait: float = 0.5) -> bytes:
    """Send ``first`` (a handshake), then ``then`` (frames); what came back, then close."""
    with socket.create_connection((dash.host, dash.port), timeout=5) as sock:
        answer = b""
        try:
            sock.sendall(first)
            sock.settimeout(2.0)
            answer = sock.recv(4096)
            if then and answer.startswith(b"HTTP/1.1 101"):
                sock.sendall(then)
                sock.settimeout(wait)
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    answer += chunk
        except (TimeoutError, ConnectionError):
            pass
        return answer


@st.composite
def frames(draw) -> bytes:
    """One or more WebSocket frames, well formed or not, or raw bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(min_size=1, max_size=300))
    out = b""
    for _ in range(draw(st.integers(1, 3))):
        fin = draw(st.booleans())
        opcode = draw(st.sampled_from([0, 1, 2, 8, 9, 10, 3, 7, 11, 15]))
        masked = draw(st.booleans())
        payload = draw(st.binary(max_size=200))
        told = draw(st.sampled_from(["true", "true", "short", "long", "huge"]))
        length = {"true": len(payload), "short": max(0, len(payload) - 5),
                  "long": len(payload) + 50, "huge": 2**62}[told]  # fmt: skip
        head = bytes([(0x80 if fin else 0) | opcode])
        bit = 0x80 if masked else 0
        if length < 126:
            head += bytes([bit | length])
        elif length < 2**16:
            head += bytes([bit | 126]) + struct.pack("!H", length)
        else:
            head += bytes([bit | 127]) + struct.pack("!Q", length)
        if masked:
            mask = draw(st.binary(min_size=4, max_size=4))
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            head += mask
        out += head + payload
    return out


@pytest.mark.timeout(300)
def test_random_websocket_handshakes_and_frames_never_hurt_the_dashboard(head_with_job):
    dash, client, job, node = head_with_job
    path = f"/api/jobs/{job}/logs/tail"
    head_process = psutil.Process(node.pid)

    def open_connections() -> int:
        return sum(
            1
            for c in head_process.net_connections("tcp")
            if c.laddr and c.laddr.port == dash.port and c.status != psutil.CONN_LISTEN
        )

    # the token and the Origin are checked before any upgrade
    assert _exchange(dash, _upgrade(dash, path, {"Authorization": None}))[:12] == b"HTTP/1.1 401"
    evil = _upgrade(dash, path, {"Origin": "http://evil.example"})
    assert _exchange(dash, evil)[:12] == b"HTTP/1.1 403"
    good = _exchange(dash, _upgrade(dash, path, {}), b"", 0)
    assert good.startswith(b"HTTP/1.1 101"), good[:200]

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.dictionaries(
            st.sampled_from(["Sec-WebSocket-Version", "Sec-WebSocket-Key", "Upgrade",
                             "Connection", "Origin", "Sec-WebSocket-Extensions"]),
            st.one_of(st.none(), st.sampled_from(["13", "8", "", "websocket", "Upgrade",
                                                  f"http://{dash.host}:{dash.port}",
                                                  "permessage-deflate; x=1"]),
                      st.text(max_size=30)),
            max_size=3,
        ),
        frames(),
    )  # fmt: skip
    def one(headers: dict, sent: bytes) -> None:
        answer = _exchange(dash, _upgrade(dash, path, headers), sent)
        assert not answer or answer.startswith(b"HTTP/1."), answer[:100]
        upgraded.append(answer.startswith(b"HTTP/1.1 101"))

    upgraded: list[bool] = []
    one()
    assert sum(upgraded) >= 10, f"only {sum(upgraded)} of {len(upgraded)} upgrades: no frames sent"
    assert dash.request("GET", "/api/version")[0] == 200  # still up, still answering
    assert client.get_job_status(job) == "RUNNING"  # and the job runs on
    assert wait_until(lambda: open_connections() == 0, 30), head_process.net_connections("tcp")
