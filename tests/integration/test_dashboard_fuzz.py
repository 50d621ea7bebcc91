"""Random bytes, request lines, headers and bodies at the dashboard's port (issue #16's
fuzzed listeners): the head stays up, answers the next good request, and keeps no fd."""

from __future__ import annotations

import socket
import time

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minray import api

from .cluster_helpers import wait_until
from .dashboard_helpers import Dashboard
from .dashboard_helpers import dashboard as _dashboard  # noqa: F401 - a fixture

METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "BREW",
                           "", "G\x00T", "GET GET"])  # fmt: skip
PATHS = st.one_of(
    st.sampled_from(["/", "/api", "/api/tasks?limit=-1", "/metrics", "/login", "*", "//",
                     "/%00", "/api/tasks?limit=1e9", "/../../etc/passwd", "http://x/"]),
    st.text(max_size=60).map(lambda t: "/" + t),
)  # fmt: skip
HEADER_NAMES = st.sampled_from(["Host", "Origin", "Authorization", "Cookie", "Content-Length",
                                "Transfer-Encoding", "Upgrade", "Connection", "Accept",
                                "Content-Type", "X-" + "a" * 300])  # fmt: skip
HEADER_VALUES = st.one_of(
    st.sampled_from(["localhost", "evil.com", "chunked", "websocket", "Upgrade", "-1",
                     "99999999999", "Bearer ", "minray_dashboard=", "null", "text/html"]),
    st.text(max_size=40),
)  # fmt: skip
VERSIONS = st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9", "", "XYZ"])


@st.composite
def requests(draw) -> bytes:
    """A request made of random parts, sometimes with the real token, or raw bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=600))
    line = f"{draw(METHODS)} {draw(PATHS)} {draw(VERSIONS)}\r\n"
    headers = draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=8))
    text = line + "".join(f"{name}: {value}\r\n" for name, value in headers)
    if draw(st.booleans()):
        text += "Authorization: Bearer TOKEN\r\n"
    body = draw(st.binary(max_size=300))
    return text.encode("utf-8", "surrogatepass") + b"\r\n" + body


def send(dash: Dashboard, raw: bytes) -> bytes:
    """Send ``raw``, read what comes back within a second, and close."""
    with socket.create_connection((dash.host, dash.port), timeout=5) as sock:
        try:
            sock.sendall(raw.replace(b"TOKEN", dash.token.encode()))
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(1.0)
            return sock.recv(4096)
        except (TimeoutError, ConnectionError):
            return b""


@pytest.fixture
def dash(_dashboard: Dashboard) -> Dashboard:  # noqa: F811
    return _dashboard


@pytest.mark.timeout(300)
def test_random_requests_never_hurt_the_dashboard(dash):
    node = psutil.Process(api._state.node_process.pid)
    assert dash.request("GET", "/api/nodes")[0] == 200

    def open_connections() -> int:  # the dashboard's, on the node: the fds it could leak
        return sum(
            1
            for c in node.net_connections("tcp")
            if c.laddr and c.laddr.port == dash.port and c.status != psutil.CONN_LISTEN
        )

    assert wait_until(lambda: open_connections() == 0)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(requests())
    def one(raw: bytes) -> None:
        answer = send(dash, raw)
        # (an answer is HTTP; aiohttp echoes the request's version, "HTTP/2.0" included)
        assert not answer or answer.startswith(b"HTTP/"), answer[:100]
        if b"Bearer" not in raw and answer[9:12] == b"200":  # no token: never a 200
            assert raw.split(b" ", 2)[1].startswith(b"/login"), raw[:200]

    one()
    assert dash.request("GET", "/api/nodes")[0] == 200  # still up, still answering
    assert wait_until(lambda: open_connections() == 0), node.net_connections("tcp")


def test_slow_and_vanished_clients_never_block_the_head(dash):
    """Half a request held open, a body promised and never sent, a client gone before the
    answer: the next good request is answered at once all the same."""
    slow = [socket.create_connection((dash.host, dash.port), timeout=5) for _ in range(3)]
    try:
        slow[0].sendall(b"GET /api/nodes HTTP/1.1\r\nHost: loc")
        head = "POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\nx"
        slow[1].sendall(head.encode())
        slow[2].sendall(f"GET /metrics HTTP/1.1\r\nHost: localhost\r\n"
                        f"Authorization: Bearer {dash.token}\r\n\r\n".encode())  # fmt: skip
        slow[2].close()
        started = time.monotonic()
        assert dash.request("GET", "/api/nodes")[0] == 200
        assert dash.json("/api/tasks")["total"] >= 0
        assert time.monotonic() - started < 2.0
    finally:
        for sock in slow:
            sock.close()
