"""The dashboard: the head's tables as JSON over HTTP, and a page that shows them.

Served by the head's process with aiohttp, on the node's event loop, at
``http://127.0.0.1:8265`` by default (``minray start --head`` starts it;
``minray.init(include_dashboard=True)`` for an embedded cluster). Read-only:

* ``/api/nodes``, ``/api/jobs``, ``/api/placement_groups``: the head's tables;
* ``/api/actors``, ``/api/workers``: asked of every live node, as the state API does;
* ``/api/tasks?limit=N``: the newest task attempts from the task table;
* ``/``: a page that refreshes these every two seconds (dashboard_page.py).

It binds 127.0.0.1 unless told otherwise (``--dashboard-host``): what it shows
(task names, errors, command lines) is for the cluster's user, not the network.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..protocol.messages import GetStates

if TYPE_CHECKING:
    from aiohttp import web

    from .service import HeadService

logger = logging.getLogger("minray.head")

DEFAULT_PORT = 8265


def dashboard_settings(include: bool | None, host: str, port: int | None) -> dict:
    """The node settings for ``init(include_dashboard=..., dashboard_port=...)``: an embedded
    cluster serves a dashboard only when asked (it would slow start-up for nothing)."""
    if include is False or (include is None and port is None):
        return {}
    return {"dashboard_host": host, "dashboard_port": DEFAULT_PORT if port is None else port}


async def start_dashboard(head: HeadService, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Serve the dashboard; returns the runner (``await runner.cleanup()`` to stop) and
    the ``HOST:PORT`` it listens on. OSError when the port is taken."""
    from aiohttp import web  # only when asked for: it is not needed to run tasks

    from .dashboard_page import PAGE

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def nodes(request: web.Request) -> web.Response:
        return web.json_response(head.nodes_info())

    async def jobs(request: web.Request) -> web.Response:
        return web.json_response(head.jobs.describe())

    async def groups(request: web.Request) -> web.Response:
        return web.json_response([g.describe() for g in head.groups.values()])

    async def tasks(request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "1000"))
        except ValueError:
            raise web.HTTPBadRequest(text="limit must be a whole number") from None
        rows = head.tasks.rows()
        return web.json_response({"tasks": rows[-limit:] if limit > 0 else [],
                                  "total": len(rows), "dropped": head.tasks.dropped})  # fmt: skip

    def rows_of(kind: str):
        async def handler(request: web.Request) -> web.Response:
            states = await head.handle_GetStates(None, GetStates(kind, False))
            return web.json_response({kind: states.rows, "missing": states.missing})

        return handler

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/api/nodes", nodes)
    app.router.add_get("/api/jobs", jobs)
    app.router.add_get("/api/placement_groups", groups)
    app.router.add_get("/api/tasks", tasks)
    app.router.add_get("/api/actors", rows_of("actors"))
    app.router.add_get("/api/workers", rows_of("workers"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, f"{host}:{bound}"
