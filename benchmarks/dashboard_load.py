"""The dashboard and the state API under load: 10,000 finished tasks and 500 actors.

    python benchmarks/dashboard_load.py [--tasks 10000] [--actors 500] [--repeat 5]

Starts an embedded cluster with its dashboard, runs ``--tasks`` no-op tasks to the
end and creates ``--actors`` actors (``num_cpus=0``, each called once), then times
every dashboard page and JSON endpoint (HTTP with the token, the median and the
worst of ``--repeat`` requests) and ``minray list tasks|actors`` (the state API
functions the CLI calls), and reads the head's memory (RSS of the node process
that serves the head) and its task table (rows kept, dropped). Target (issue #13):
every answer < 500 ms; the task table within its bound.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import psutil  # noqa: E402

import minray  # noqa: E402
from minray.util import state  # noqa: E402


def _get(host: str, port: int, token: str, path: str) -> tuple[int, int]:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        headers = {"Host": f"{host}:{port}", "Authorization": f"Bearer {token}"}
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, len(response.read())
    finally:
        conn.close()


def _timed(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


@minray.remote
def noop(i: int) -> int:
    return i


@minray.remote(num_cpus=0)
class Holder:
    def ping(self) -> int:
        return os.getpid()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--actors", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    minray.init(num_cpus=2, include_dashboard=True, dashboard_port=0)
    session = minray.api._state.session_dir
    with open(os.path.join(session, "dashboard_url")) as f:
        host, port = f.read().strip().rsplit(":", 1)
    with open(os.path.join(session, "token"), "rb") as f:
        token = f.read().hex()
    start = time.perf_counter()
    assert sum(minray.get([noop.remote(i) for i in range(args.tasks)])) == sum(range(args.tasks))
    tasks_s = time.perf_counter() - start
    start = time.perf_counter()
    actors = [Holder.remote() for _ in range(args.actors)]
    minray.get([a.ping.remote() for a in actors])
    actors_s = time.perf_counter() - start
    print(f"load: {args.tasks:,} tasks in {tasks_s:.1f} s, {args.actors} actors in "
          f"{actors_s:.1f} s")  # fmt: skip
    time.sleep(2.0)  # the last task events reach the head

    status, _ = _get(host, int(port), token, "/api")
    assert status == 200, f"the dashboard refused the token ({status})"
    routes = json.loads(_raw(host, int(port), token, "/api"))["routes"]
    rows = []
    for path in ["/", *[r for r in routes if r.startswith("/api/") and "{" not in r], "/metrics"]:
        if path.endswith(("/events", "/stream")):
            continue  # live streams never end: not a page
        status, size = _get(host, int(port), token, path)
        median, worst = _timed(lambda p=path: _get(host, int(port), token, p), args.repeat)
        rows.append((f"GET {path}", status, size, median, worst))
    for name, fn in (
        ("minray list tasks", lambda: state.list_tasks(limit=100)),
        ("minray list actors", lambda: state.list_actors(limit=100)),
        ("minray summary tasks", state.summarize_tasks),
    ):
        median, worst = _timed(fn, args.repeat)
        rows.append((name, 200, 0, median, worst))

    print(f"\n{'request':40} {'status':>6} {'bytes':>10} {'median ms':>10} {'worst ms':>9}")
    for name, status, size, median, worst in rows:
        flag = "" if worst < 500 else "   over 500 ms"
        print(f"{name:40} {status:>6} {size:>10,} {median:>10.1f} {worst:>9.1f}{flag}")
    node = _head_process(session)
    table = json.loads(_raw(host, int(port), token, "/api/tasks?limit=1"))
    print(f"\nhead (node process {node.pid}): RSS {node.memory_info().rss / 2**20:.0f} MiB; "
          f"task table {table['total']:,} attempts kept, {table['dropped']:,} dropped")  # fmt: skip
    minray.shutdown()


def _raw(host: str, port: int, token: str, path: str) -> bytes:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", path, headers={"Host": f"{host}:{port}",
                                           "Authorization": f"Bearer {token}"})  # fmt: skip
        return conn.getresponse().read()
    finally:
        conn.close()


def _head_process(session: str) -> psutil.Process:
    """The node process of this session (the embedded cluster's head)."""
    for process in psutil.Process().children():
        try:
            if any(session in arg for arg in process.cmdline()) or "minray::head" in process.name():
                return process
        except psutil.Error:
            continue
    return psutil.Process().children()[0]


if __name__ == "__main__":
    main()
