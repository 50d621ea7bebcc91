"""The dashboard's timeline: which worker ran what, when, drawn in the page.

* ``/timeline``: the page (dashboard_timeline_page.py) that draws it on a canvas, a
  row per worker grouped by node, and loads it again every two seconds;
* ``/api/timeline/slices?start_ms=A&end_ms=B&max_slices=N``: its data (timeline_view.py):
  the runs that overlap the window from A to B (milliseconds since the epoch; both or
  neither, by default every run), one by one, or summarised past N runs (5,000 by
  default), with each node's address and whether it is the head.

The Chrome trace to download stays at ``/api/timeline`` (dashboard_views.py). The routes
go through the dashboard's token, Host and Origin checks like every other.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .dashboard_auth import error_response
from .timeline_view import MAX_SLICES, MAX_SLICES_LIMIT, view

#: the latest time a window may name (milliseconds since the epoch: year 33658)
LATEST_MS = 1e15

if TYPE_CHECKING:
    from aiohttp import web

    from .service import HeadService


def timeline_routes(head: HeadService) -> list:
    """The timeline's page and its data."""
    from aiohttp import web

    from .dashboard_timeline_page import TIMELINE_PAGE

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=TIMELINE_PAGE, content_type="text/html")

    async def slices(request: web.Request) -> web.Response:
        try:
            window, max_slices = parse_query(request.query)
        except ValueError as e:
            return error_response(400, str(e))
        answer = view(head.tasks, time.time() * 1000, window, max_slices)
        answer["nodes"] = {
            n["NodeID"]: {"address": n.get("NodeManagerAddress", ""), "head": bool(n.get("IsHead"))}
            for n in head.nodes_info()
        }
        return web.json_response(answer)

    return [
        ("GET", "/timeline", page),
        ("GET", "/api/timeline/slices", slices),
    ]


def parse_query(query: Mapping[str, str]) -> tuple[tuple[float, float] | None, int]:
    """``(window, max_slices)`` from the query of ``/api/timeline/slices``; ValueError that
    says what is wrong with it."""
    text = query.get("max_slices")
    max_slices = MAX_SLICES
    if text is not None:
        if not (text.isascii() and text.isdigit() and len(text) <= 6):
            raise ValueError(f"max_slices must be a whole number from 1 to {MAX_SLICES_LIMIT}")
        max_slices = int(text)
        if not 1 <= max_slices <= MAX_SLICES_LIMIT:
            raise ValueError(f"max_slices must be a whole number from 1 to {MAX_SLICES_LIMIT}")
    start, end = query.get("start_ms"), query.get("end_ms")
    if start is None and end is None:
        return None, max_slices
    if start is None or end is None:
        raise ValueError("give both start_ms and end_ms (a window), or neither (every run)")
    try:
        window = (float(start), float(end))
    except ValueError:
        raise ValueError(
            "start_ms and end_ms are milliseconds since the epoch, such as 1765000000000.5"
        ) from None
    if not all(math.isfinite(t) and 0 <= t <= LATEST_MS for t in window):
        raise ValueError(f"start_ms and end_ms are milliseconds from 0 to {LATEST_MS:.0e}")
    if window[1] <= window[0]:
        raise ValueError("the window must end after it starts: start_ms < end_ms")
    return window, max_slices
