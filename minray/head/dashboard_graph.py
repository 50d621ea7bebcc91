"""The dashboard's live task graph: its page, its JSON, and its stream of changes.

* ``/graph``: the page (dashboard_graph_page.py) that draws the graph and follows it;
* ``/api/graph?max_nodes=N``: the graph of every task the head holds (task_graph.py),
  summarised by function past N nodes (300 by default);
* ``/api/graph/events``: server-sent events (``text/event-stream``): ``hello`` when it
  opens (load the graph now), then ``changes`` (the nodes of tasks that are new or in
  a new state, every quarter second at most), ``reload`` (too much changed: load the
  graph again), ``reset`` (this page read too slowly and lost changes: load it again),
  and a comment line every PING_S seconds so a vanished browser is noticed.

The head never waits for a browser (graph_feed.py): each stream has a bounded queue;
a write that does not finish within WRITE_TIMEOUT_S ends the stream, and every stream
ends after STREAM_S (the browser's EventSource opens a new one, which says ``hello``).
The routes go through the dashboard's token, Host and Origin checks like every other.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from .graph_feed import GraphFeed, TooManyListeners
from .task_graph import MAX_NODES, STATES, build

if TYPE_CHECKING:
    from aiohttp import web

    from .service import HeadService

#: seconds between keep-alive comments on a quiet stream
PING_S = 15.0
#: seconds a write to a browser may take before its stream is ended
WRITE_TIMEOUT_S = 10.0
#: seconds a stream lasts; the browser then opens a new one
STREAM_S = 300.0
#: what ``max_nodes`` may ask for
MAX_NODES_LIMIT = 5000


def graph_routes(head: HeadService) -> list:
    """The graph's routes; the feed they share listens to the head's task events."""
    from aiohttp import web

    from .dashboard_graph_page import GRAPH_PAGE

    feed = GraphFeed(head.tasks)
    head.task_listeners.append(feed.note)

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=GRAPH_PAGE, content_type="text/html")

    async def graph(request: web.Request) -> web.Response:
        max_nodes = max_nodes_of(request.query.get("max_nodes"))
        if max_nodes is None:
            raise web.HTTPBadRequest(
                text=f"max_nodes must be a whole number from 1 to {MAX_NODES_LIMIT}"
            )
        return web.json_response({**build(head.tasks, max_nodes), "states": STATES})

    async def events(request: web.Request) -> web.StreamResponse:
        try:
            listener = feed.listen()
        except TooManyListeners as e:
            body = json.dumps({"error": str(e), "status": 503})
            return web.Response(status=503, text=body, content_type="application/json")
        try:
            return await stream(request, listener)
        finally:
            feed.leave(listener)

    return [
        ("GET", "/graph", page),
        ("GET", "/api/graph", graph),
        ("GET", "/api/graph/events", events),
    ]


def max_nodes_of(text: str | None) -> int | None:
    """``max_nodes`` from the query (MAX_NODES when absent); None when it is not valid."""
    if text is None:
        return MAX_NODES
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        return None
    value = int(text)
    return value if 1 <= value <= MAX_NODES_LIMIT else None


def sse(name: str, data: str) -> bytes:
    """One server-sent event (``data``: JSON text, which has no newline)."""
    return f"event: {name}\ndata: {data}\n\n".encode()


async def stream(request: web.Request, listener) -> web.StreamResponse:
    """Write the listener's changes to the browser until it leaves, reads too slowly, the
    feed closes, or STREAM_S pass."""
    from aiohttp import web

    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_S
    data = b"retry: 2000\n\n" + sse("hello", json.dumps({"states": STATES}))
    try:
        while True:
            await asyncio.wait_for(response.write(data), WRITE_TIMEOUT_S)
            if listener.closed or loop.time() >= deadline:
                break
            item = await listener.next(min(PING_S, max(deadline - loop.time(), 0.0)))
            data = b": ping\n\n" if item is None else sse(*item)
    except asyncio.TimeoutError:  # a browser that does not read: let it go
        if request.transport is not None:
            request.transport.abort()
    except ConnectionError:  # it left
        pass
    return response
