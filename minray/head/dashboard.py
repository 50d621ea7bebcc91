"""The dashboard: the head's tables as JSON over HTTP, and a page that shows them.

Served by the head's process with aiohttp, on the node's event loop, at
``http://127.0.0.1:8265`` by default (``minray start --head`` starts it;
``minray.init(include_dashboard=True)`` for an embedded cluster). Read-only but for
profiling and jobs:

* ``/api/nodes``, ``/api/jobs``, ``/api/placement_groups``: the head's tables;
* ``/api/actors``, ``/api/workers``: asked of every live node, as the state API does;
* ``/api/tasks?limit=N``: the newest task attempts from the task table (``&task_id=ID``:
  that task's attempts);
* ``/api/actors/{id}/stack``, ``POST /api/actors/{id}/profile?duration=S`` (and the
  same for workers): stacks and flame graphs (dashboard_profile.py);
* ``/api``: the list of routes; ``/metrics``: Prometheus' text (dashboard_metrics.py);
* ``/graph``, ``/api/graph``, ``/api/graph/events``: the live task graph (dashboard_graph.py);
* ``/api/objects``, ``/api/logs/{node}/{worker}``, ``/api/timeline``: objects, a worker's
  log (followed by the page) and the timeline's Chrome trace (dashboard_views.py);
* ``/timeline``, ``/api/timeline/slices``: the timeline drawn in a page (dashboard_timeline.py);
* ``/api/version`` and ``/api/jobs/...``: Ray's job REST API (job_routes.py), which
  submits and stops jobs; the jobs that still run are stopped when the dashboard stops;
  ``/api/packages/...``: their runtime_env uploads (package_routes.py);
* ``/``: a page that refreshes these every two seconds (dashboard_page.py).

Every route needs the cluster token and passes the Host/Origin checks of
dashboard_auth.py; a module that serves more (the job API) adds its routes with
``dashboard_auth.add_routes`` from a function listed in :data:`ROUTE_SETS`.
It binds 127.0.0.1 unless told otherwise (``--dashboard-host``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..config import CONFIG
from ..protocol.messages import GetStates
from .dashboard_auth import add_routes, new_app
from .dashboard_graph import graph_routes
from .dashboard_metrics import metrics_routes
from .dashboard_profile import profile_routes
from .dashboard_timeline import timeline_routes
from .dashboard_views import view_routes
from .job_routes import job_routes
from .package_routes import PREFIX, package_routes

if TYPE_CHECKING:
    from aiohttp import web

    from .service import HeadService

logger = logging.getLogger("minray.head")


async def start_dashboard(
    head: HeadService,
    token: bytes,
    host: str,
    port: int,
    extra_names: Iterable[str] = (),
) -> tuple[web.AppRunner, str]:
    """Serve the dashboard; returns the runner (``await runner.cleanup()`` to stop) and
    the ``HOST:PORT`` it listens on. OSError when the port is taken. ``extra_names``:
    more names its Host header may carry (this machine's, when it binds every address)."""
    from aiohttp import web  # only when asked for: it is not needed to run tasks

    packages = (PREFIX, CONFIG.runtime_env_max_bytes, "MINRAY_RUNTIME_ENV_MAX_BYTES")
    app = new_app(token, host, CONFIG.dashboard_max_body_bytes, extra_names, [packages])
    for routes in ROUTE_SETS:
        add_routes(app, routes(head))

    async def index(request: web.Request) -> web.Response:
        paths = sorted({r.resource.canonical for r in app.router.routes() if r.resource})
        return web.json_response({"routes": paths})

    add_routes(app, [("GET", "/api", index)])
    if head.job_manager is not None:
        jobs = head.job_manager

        async def end_log_tails(app: web.Application) -> None:
            jobs.stop_accepting()  # (before aiohttp waits for the open requests)

        async def stop_jobs(app: web.Application) -> None:
            await jobs.close()  # jobs are reached through the dashboard: they end with it

        app.on_shutdown.append(end_log_tails)
        app.on_cleanup.append(stop_jobs)
    # (shutdown_timeout: what is still answering when the head stops, such as the task
    # graph's event streams, is cancelled after a second rather than awaited for a minute)
    runner = web.AppRunner(
        app, access_log=None, handler_cancellation=True, keepalive_timeout=30, shutdown_timeout=1.0
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, f"{host}:{bound}"


def api_routes(head: HeadService) -> list:
    """The page and the read-only JSON API."""
    from aiohttp import web

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
        task_id = request.query.get("task_id", "")
        try:
            wanted = bytes.fromhex(task_id)
        except ValueError:
            raise web.HTTPBadRequest(text="task_id must be a task's id in hex") from None
        if wanted:
            rows = head.tasks.rows(wanted)
            total, rows = len(rows), rows[-limit:] if limit > 0 else []
        else:  # (only the rows sent are described: the table holds up to 20,000)
            total, rows = len(head.tasks.attempts), head.tasks.newest(limit)
        return web.json_response({"tasks": rows, "total": total, "dropped": head.tasks.dropped})

    def rows_of(kind: str):
        async def handler(request: web.Request) -> web.Response:
            states = await head.handle_GetStates(None, GetStates(kind, False))  # bounded wait
            return web.json_response({kind: states.rows, "missing": states.missing})

        return handler

    return [
        ("GET", "/", page),
        ("GET", "/api/nodes", nodes),
        ("GET", "/api/jobs", jobs),
        ("GET", "/api/placement_groups", groups),
        ("GET", "/api/tasks", tasks),
        ("GET", "/api/actors", rows_of("actors")),
        ("GET", "/api/workers", rows_of("workers")),
    ]


#: what the dashboard serves: functions of the head that return (method, path, handler)
#: routes; a module that serves more of the dashboard adds its function here
ROUTE_SETS: tuple[Callable[[HeadService], list], ...] = (
    api_routes,
    metrics_routes,
    profile_routes,
    job_routes,
    package_routes,
    graph_routes,
    view_routes,
    timeline_routes,
)
