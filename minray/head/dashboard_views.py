"""The dashboard's objects, worker logs (with a live tail) and timeline.

* ``GET /api/objects``: the objects every process references (the state API's rows,
  asked of every live node);
* ``GET /api/logs/{node_id}/{worker_id}?stream=out|err&offset=N``: a worker's log from
  byte ``offset`` (negative: that many bytes from the end; default the last 64 KiB),
  at most 256 KiB, read by its node; the answer's ``offset`` is where the next read
  starts, so a page that asks again with it follows the log as it grows;
* ``GET /api/timeline``: the Chrome trace of the task runs the head knows (as
  ``minray timeline``), to download and open in Perfetto.

The page's parts are in :data:`PAGE_PART` (HTML) and :data:`SCRIPT` (JavaScript):
a "Logs" button on each worker row opens its log below, refreshed every two seconds
while it is shown.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from ..protocol.messages import ErrorReply, GetLog, GetStates
from .dashboard_auth import error_response
from .timeline_view import trace

if TYPE_CHECKING:
    from aiohttp import web

    from .service import HeadService

#: the most bytes of a log one request returns
MAX_LOG_BYTES = 256 * 1024
_HEX = re.compile(r"^[0-9a-f]{8,128}$")


def view_routes(head: HeadService) -> list:
    from aiohttp import web

    async def objects(request: web.Request) -> web.Response:
        states = await head.handle_GetStates(None, GetStates("objects", False))
        return web.json_response({"objects": states.rows, "missing": states.missing})

    async def log(request: web.Request) -> web.Response:
        node, worker = request.match_info["node_id"], request.match_info["worker_id"]
        stream = request.query.get("stream", "out")
        if not (_HEX.match(node) and _HEX.match(worker)):
            return error_response(400, "node and worker ids are hex digits")
        if stream not in ("out", "err"):
            return error_response(400, f"stream must be 'out' or 'err', not {stream!r}")
        try:
            offset = int(request.query.get("offset", str(-64 * 1024)))
        except ValueError:
            return error_response(400, "offset must be a whole number of bytes")
        ask = GetLog(bytes.fromhex(node), bytes.fromhex(worker), stream, offset, MAX_LOG_BYTES)
        chunk = await head.handle_GetLog(None, ask)
        if type(chunk) is ErrorReply:
            status = 404 if chunk.error in ("ValueError", "FileNotFoundError") else 502
            return error_response(status, chunk.message)
        return web.json_response(
            {
                "text": chunk.data.decode("utf-8", "replace"),
                "offset": chunk.offset,
                "size": chunk.size,
            }
        )

    async def timeline(request: web.Request) -> web.Response:
        events = trace(head.tasks)
        return web.Response(
            text=json.dumps(events),
            content_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="minray-timeline.json"'},
        )

    return [
        ("GET", "/api/objects", objects),
        ("GET", "/api/logs/{node_id}/{worker_id}", log),
        ("GET", "/api/timeline", timeline),
    ]


PAGE_PART = """
<h2>Objects</h2><table id="objects"></table>
<h2>Logs</h2>
<div><span id="log-status">Choose "Logs" on a worker.</span>
<a id="timeline-link" href="/api/timeline" download="minray-timeline.json">Download the
timeline</a> (open it in https://ui.perfetto.dev or chrome://tracing), or see it drawn on the
<a href="/timeline">Timeline</a> page</div>
<pre id="log-view"></pre>
"""

SCRIPT = """
let logTarget = null, logOffset = -65536, logTimer = null;
function addLogButtons(workers) {
  for (const row of document.querySelectorAll("#workers tr")) {
    const index = row.rowIndex - 1;
    if (index < 0 || index >= workers.length || row.querySelector("button.logs")) continue;
    const w = workers[index];
    const button = document.createElement("button");
    button.type = "button"; button.className = "logs"; button.textContent = "Logs";
    button.dataset.workerId = w.worker_id; button.dataset.nodeId = w.node_id;
    row.lastElementChild.appendChild(button);
  }
}
async function followLog() {
  if (!logTarget) return;
  const [node, worker] = logTarget;
  const r = await fetch(`/api/logs/${node}/${worker}?offset=${logOffset}`);
  const body = await r.json();
  const status = document.getElementById("log-status");
  if (!r.ok) { status.textContent = body.error; return; }
  const view = document.getElementById("log-view");
  if (body.text) {
    view.textContent = (view.textContent + body.text).slice(-200000);
    view.scrollTop = view.scrollHeight;
  }
  logOffset = body.offset;
  status.textContent = `worker ${worker.slice(0, 12)}: ${body.size} bytes (following)`;
}
document.addEventListener("click", event => {
  const button = event.target.closest("button.logs");
  if (!button) return;
  logTarget = [button.dataset.nodeId, button.dataset.workerId];
  logOffset = -65536;
  document.getElementById("log-view").textContent = "";
  clearInterval(logTimer);
  followLog();
  logTimer = setInterval(followLog, 2000);
});
"""
