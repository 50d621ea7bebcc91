"""A browser that follows the task graph but stops reading: its stream is ended, and the
head's loop answers others all the while (head/dashboard_graph.py, in this process,
with a small socket buffer on the browser's side and a short write timeout)."""

from __future__ import annotations

import asyncio
import socket
import time

from aiohttp import web

from minray.head import dashboard_graph
from minray.head.dashboard_auth import add_routes, new_app
from minray.head.task_table import TaskTable

TOKEN = bytes(range(32))


class Head:
    """What the graph's routes use of the head."""

    def __init__(self):
        self.tasks = TaskTable()
        self.task_listeners: list = []


def changes(head: Head, batch: int) -> None:
    """500 new tasks with long names: a change of about 0.5 MB for every listener."""
    events = [[(batch * 1000 + n).to_bytes(24, "little"), 0, "RUNNING", 1.0,
               ["x" * 800, "NORMAL_TASK", b"j" * 4, b"", {}, ()]] for n in range(500)]  # fmt: skip
    head.tasks.add(events)
    for listener in head.task_listeners:
        listener(events)


async def follow_without_reading(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    request = (
        f"GET /api/graph/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {TOKEN.hex()}\r\n\r\n"
    )
    await asyncio.get_running_loop().sock_sendall(sock, request.encode())
    return sock


async def graph_answers(port: int) -> float:
    """Seconds /api/graph takes to answer, read to its end."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /api/graph?max_nodes=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {TOKEN.hex()}\r\nConnection: close\r\n\r\n".encode()
    )
    body = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    await writer.wait_closed()
    assert body.startswith(b"HTTP/1.1 200"), body[:100]
    return time.monotonic() - started


async def test_a_page_that_stops_reading_is_let_go_and_never_holds_up_the_head(monkeypatch):
    monkeypatch.setattr(dashboard_graph, "WRITE_TIMEOUT_S", 0.5)
    head = Head()
    app = new_app(TOKEN, "127.0.0.1", 1 << 20)
    add_routes(app, dashboard_graph.graph_routes(head))  # type: ignore[arg-type]
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    (feed_note,) = head.task_listeners
    feed = feed_note.__self__
    sock = await follow_without_reading(port)
    try:
        for _ in range(100):  # its stream opens (the feed has a listener)
            if feed.listeners:
                break
            await asyncio.sleep(0.05)
        assert len(feed.listeners) == 1
        slowest = 0.0
        for batch in range(60):  # ~30 MB offered; the page reads none of it
            changes(head, batch)
            await asyncio.sleep(0.3)  # (a flush every 0.25 s)
            slowest = max(slowest, await graph_answers(port))
            if not feed.listeners:
                break
        assert not feed.listeners, "the page that did not read still has its stream"
        assert slowest < 2.0, f"the head took {slowest:.1f} s to answer while a page stalled"
    finally:
        sock.close()
        await runner.cleanup()
