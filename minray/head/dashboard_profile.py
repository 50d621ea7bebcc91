"""The dashboard's profiling routes: a process's stacks now, and a flame graph of what it
runs for a few seconds, for an actor or a worker (or a driver, by its worker id).

* ``GET /api/actors/{actor_id}/stack``, ``GET /api/workers/{worker_id}/stack``:
  JSON, each thread's frames and the same as text (``"text"``);
* ``POST /api/actors/{actor_id}/profile?duration=S[&rate=HZ][&format=F]``, and the
  same under ``/api/workers/{worker_id}``: samples the process's stacks ``rate``
  times a second (100) for ``duration`` seconds (0.1 to 60) and answers with a
  flame graph as SVG (head/flamegraph.py), or ``format=folded`` (the folded text
  speedscope and flamegraph.pl read) or ``format=json``. POST, as it makes the
  process do something: the dashboard's Origin check applies.

The head finds the process (head/profile_service.py). Errors are JSON with the
status of what went wrong: a malformed id or duration 400, no such actor or
worker 404, a dead actor or exited worker 410, an actor not yet started or a
profile already running 409, a process that does not answer in time 504.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..protocol.messages import (
    BAD_REQUEST,
    GONE,
    NO_ANSWER,
    NOT_FOUND,
    NOT_NOW,
    ErrorReply,
    GetStacks,
    Profile,
    ProfileProcess,
    Stacks,
)
from ..runtime.stacks import DEFAULT_RATE_HZ, folded_text, format_dump, from_rows, profile_problem
from .flamegraph import render_svg

if TYPE_CHECKING:
    from aiohttp import web

    from .service import HeadService

#: HTTP status of each ErrorReply name (any other: 502, the cluster failed to answer)
STATUS = {BAD_REQUEST: 400, NOT_FOUND: 404, NOT_NOW: 409, GONE: 410, NO_ANSWER: 504}
FORMATS = ("svg", "folded", "json")


def stacks_json(reply: Stacks) -> dict:
    """A Stacks reply as the dashboard's JSON: threads with named fields, and the text."""
    threads = [(name, ident, [tuple(f) for f in frames]) for name, ident, frames in reply.threads]
    return {
        "pid": reply.pid,
        "node_id": reply.node_id.hex(),
        "worker_id": reply.worker_id.hex(),
        "threads": [
            {
                "name": name,
                "id": ident,
                "frames": [{"file": f, "line": n, "function": fn} for f, n, fn in frames],
            }
            for name, ident, frames in threads
        ],
        "text": format_dump(threads),
    }


def profile_title(reply: Profile, what: str) -> tuple[str, str]:
    """The flame graph's title and subtitle."""
    return (
        f"{what}: process {reply.pid}",
        f"{reply.samples} samples in {reply.seconds:.2f} s, node {reply.node_id.hex()[:12]}, "
        f"worker {reply.worker_id.hex()[:12]} (every thread but the sampler's)",
    )


def parse_id(text: str, what: str) -> bytes:
    """The bytes of a hex id from the path, or ValueError saying what was wrong."""
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if not value:
        raise ValueError(f"{what} must be a hex id as /api/{what}s lists it, got {text!r}")
    return value


def parse_profile_query(query: Mapping) -> tuple[float, int, str]:
    """``(duration, rate, format)`` from the query string, or ValueError saying what to send."""
    try:
        duration = float(query.get("duration", "5"))
    except ValueError:
        given = query["duration"]
        raise ValueError(f"duration must be a number of seconds, got {given!r}") from None
    try:
        rate = int(query.get("rate", str(DEFAULT_RATE_HZ)))
    except ValueError:
        given = query["rate"]
        raise ValueError(f"rate must be a whole number (samples a second), not {given!r}") from None
    problem = profile_problem(duration, rate)
    if problem:
        raise ValueError(problem)
    form = query.get("format", "svg")
    if form not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {form!r}")
    return duration, rate, form


def profile_routes(head: HeadService) -> list:
    """The stack and profile routes of actors and workers."""
    from aiohttp import web

    def error(status: int, message: str) -> web.Response:
        return web.json_response({"error": message, "status": status}, status=status)

    def failed(reply: ErrorReply) -> web.Response:
        return error(STATUS.get(reply.error, 502), reply.message)

    def target(request: web.Request, kind: str) -> tuple[bytes, bytes]:
        """``(worker_id, actor_id)`` named by the path."""
        value = parse_id(request.match_info["id"], kind)
        return (b"", value) if kind == "actor" else (value, b"")

    def stack(kind: str):
        async def handler(request: web.Request) -> web.Response:
            try:
                worker_id, actor_id = target(request, kind)
            except ValueError as e:
                return error(400, str(e))
            reply = await head.handle_GetStacks(None, GetStacks(b"", worker_id, actor_id))
            if isinstance(reply, ErrorReply):
                return failed(reply)
            return web.json_response(stacks_json(reply))

        return handler

    def profile(kind: str):
        async def handler(request: web.Request) -> web.Response:
            try:
                worker_id, actor_id = target(request, kind)
                duration, rate, form = parse_profile_query(request.query)
            except ValueError as e:
                return error(400, str(e))
            ask = ProfileProcess(b"", worker_id, actor_id, duration, rate)
            reply = await head.handle_ProfileProcess(None, ask)
            if isinstance(reply, ErrorReply):
                return failed(reply)
            counts = from_rows(reply.stacks)
            if form == "folded":
                return web.Response(text=folded_text(counts), content_type="text/plain")
            if form == "json":
                return web.json_response(
                    {"pid": reply.pid, "node_id": reply.node_id.hex(),
                     "worker_id": reply.worker_id.hex(), "samples": reply.samples,
                     "seconds": reply.seconds, "stacks": reply.stacks}
                )  # fmt: skip
            title, subtitle = profile_title(reply, f"{kind} {request.match_info['id'][:12]}")
            svg = render_svg(counts, title, subtitle)
            return web.Response(text=svg, content_type="image/svg+xml")

        return handler

    return [
        ("GET", "/api/actors/{id}/stack", stack("actor")),
        ("GET", "/api/workers/{id}/stack", stack("worker")),
        ("POST", "/api/actors/{id}/profile", profile("actor")),
        ("POST", "/api/workers/{id}/profile", profile("worker")),
    ]
