"""The dashboard and the state API under load: 10,000 finished tasks and 500 actors.

    python benchmarks/dashboard_load.py [--tasks 10000] [--actors 500] [--repeat 20]
        [--overflow 0] [--output results.md]

Starts an embedded cluster with its dashboard, runs ``--tasks`` no-op tasks to the
end and creates ``--actors`` actors (``num_cpus=0``, each called once), then times
every dashboard page and JSON endpoint (HTTP with the token, p50 and p95 of
``--repeat`` requests), ``minray list tasks|actors`` and ``minray summary tasks``
(the state API functions the CLI calls, in this process, and the command itself, a
new Python process each time), and reads the head's memory: the RSS of the node
process that serves the head before and after the load, and its task table (rows
kept, dropped). ``--overflow N`` then runs N more tasks, past the table's bound, and
reads them again. What a task attempt costs the table is measured apart, in this
process, with tracemalloc on a table filled to its bound with events shaped as the
head receives them. Target (issue #13): every answer < 500 ms; the task table
within its bound. ``--output`` also writes the figures as Markdown.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import psutil  # noqa: E402

import minray  # noqa: E402
from minray.head.task_table import TaskTable  # noqa: E402
from minray.util import state  # noqa: E402

#: requests beyond the routes /api lists: what the pages ask with their own queries
EXTRA_PATHS = (
    "/graph",
    "/timeline",
    "/api/tasks?limit=200",
    "/api/timeline/slices?max_slices=50000",
    "/api/graph?max_nodes=5000",
)
CLI = (
    ("minray list tasks", ["list", "tasks", "--limit", "100"]),
    ("minray list actors", ["list", "actors", "--limit", "100"]),
    ("minray summary tasks", ["summary", "tasks"]),
)


class Dashboard:
    """GET requests to the dashboard with the token."""

    def __init__(self, session: str):
        with open(os.path.join(session, "dashboard_url")) as f:
            self.host, port = f.read().strip().rsplit(":", 1)
        self.port = int(port)
        with open(os.path.join(session, "token"), "rb") as f:
            self.token = f.read().hex()

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            headers = {"Host": f"{self.host}:{self.port}", "Authorization": f"Bearer {self.token}"}
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


def timed(fn, repeat: int) -> tuple[float, float]:
    """p50 and p95 of ``repeat`` calls, in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    p95 = statistics.quantiles(times, n=20)[18] if len(times) >= 2 else times[0]
    return statistics.median(times), p95


@minray.remote
def noop(i: int) -> int:
    return i


@minray.remote(num_cpus=0)
class Holder:
    def ping(self) -> int:
        return os.getpid()


def head_rss_mib(session: str) -> float:
    return _head_process(session).memory_info().rss / 2**20


def _head_process(session: str) -> psutil.Process:
    """The node process of this session (the embedded cluster's head)."""
    for process in psutil.Process().children():
        try:
            if any(session in arg for arg in process.cmdline()) or "minray::head" in process.name():
                return process
        except psutil.Error:
            continue
    return psutil.Process().children()[0]


def table_bytes_per_attempt(attempts: int) -> float:
    """Bytes a finished no-op task costs the head's task table: a table filled with
    ``attempts`` tasks' events as the head gets them (decoded apart, one batch each)."""
    node, worker = os.urandom(28).hex(), os.urandom(28).hex()
    tracemalloc.start()
    table = TaskTable(capacity=attempts)
    before = tracemalloc.get_traced_memory()[0]
    source = {"node_id": node, "worker_pid": 1}  # (one per batch: shared by its events)
    for _ in range(attempts):
        task, at = os.urandom(24), time.time()
        info = [b"noop".decode(), "NORMAL_TASK", os.urandom(4), b"", {"CPU": 1.0}, []]
        place = {"node_id": node.encode().decode(), "worker_id": worker.encode().decode()}
        table.add([[task, 0, "PENDING_NODE_ASSIGNMENT", at, info]])
        table.add([[task, 0, "SUBMITTED_TO_WORKER", at, place]])
        table.add([[task, -1, "RUNNING", at, None]], source=source)
        table.add([[task, 0, "FINISHED", at, None]])
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / attempts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--actors", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--cli-repeat", type=int, default=5)
    parser.add_argument("--overflow", type=int, default=0, help="more tasks, past the bound")
    parser.add_argument("--output", default=None, help="also write the figures here (Markdown)")
    args = parser.parse_args()

    bound = TaskTable().capacity
    minray.init(num_cpus=2, include_dashboard=True, dashboard_port=0)
    session = minray.api._state.session_dir
    dash = Dashboard(session)
    minray.get([noop.remote(i) for i in range(20)])  # workers started: the baseline
    time.sleep(1.5)
    memory = [("after start-up (20 tasks)", head_rss_mib(session))]
    start = time.perf_counter()
    assert sum(minray.get([noop.remote(i) for i in range(args.tasks)])) == sum(range(args.tasks))
    tasks_s = time.perf_counter() - start
    time.sleep(1.5)
    memory.append((f"after {args.tasks:,} tasks", head_rss_mib(session)))
    start = time.perf_counter()
    actors = [Holder.remote() for _ in range(args.actors)]
    minray.get([a.ping.remote() for a in actors])
    actors_s = time.perf_counter() - start
    load = f"{args.tasks:,} tasks in {tasks_s:.1f} s, {args.actors} actors in {actors_s:.1f} s"
    print("load:", load, flush=True)
    time.sleep(2.0)  # the last task events reach the head
    memory.append((f"after {args.actors} actors", head_rss_mib(session)))

    status, body = dash.get("/api")
    assert status == 200, f"the dashboard refused the token ({status})"
    routes = json.loads(body)["routes"]
    paths = ["/", *[r for r in routes if r.startswith("/api/") and "{" not in r], "/metrics"]
    rows = []
    for path in [*paths, *EXTRA_PATHS]:
        if path.endswith(("/events", "/stream")):
            continue  # live streams never end: not a page
        status, body = dash.get(path)
        p50, p95 = timed(lambda p=path: dash.get(p), args.repeat)
        rows.append((f"GET {path}", status, len(body), p50, p95))
        print(f"  {rows[-1][0]:45} {p50:8.1f} {p95:8.1f}", flush=True)
    for name, fn in (
        ("state API list_tasks(limit=100)", lambda: state.list_tasks(limit=100)),
        ("state API list_actors(limit=100)", lambda: state.list_actors(limit=100)),
        ("state API summarize_tasks()", state.summarize_tasks),
    ):
        p50, p95 = timed(fn, args.repeat)
        rows.append((name, 200, 0, p50, p95))
    env = {**os.environ, "PYTHONPATH": ROOT}
    for name, argv in CLI:  # the command a user types: a new Python process each time

        def run(argv=argv) -> None:
            done = subprocess.run([sys.executable, "-m", "minray.cli", *argv], env=env,
                                  capture_output=True, timeout=120)  # fmt: skip
            assert done.returncode == 0, done.stderr.decode()[-2000:]

        p50, p95 = timed(run, args.cli_repeat)
        rows.append((f"`{name}` (whole command)", 0, 0, p50, p95))
    baseline = timed(lambda: subprocess.run([sys.executable, "-c", "import minray"], env=env,
                                            timeout=120), args.cli_repeat)  # fmt: skip
    rows.append(("(`python -c 'import minray'` alone)", 0, 0, *baseline))

    table = json.loads(dash.get("/api/tasks?limit=1")[1])
    kept = [(f"after {args.actors} actors", table["total"], table["dropped"])]
    if args.overflow:
        minray.get([noop.remote(i) for i in range(args.overflow)])
        time.sleep(2.0)
        memory.append((f"after {args.overflow:,} more tasks", head_rss_mib(session)))
        table = json.loads(dash.get("/api/tasks?limit=1")[1])
        kept.append((f"after {args.overflow:,} more tasks", table["total"], table["dropped"]))
        for path in (
            "/",
            "/api/tasks",
            "/api/tasks?limit=200",
            "/api/timeline",
            "/api/timeline/slices",
            "/api/graph",
            "/metrics",
        ):
            p50, p95 = timed(lambda p=path: dash.get(p), args.repeat)
            rows.append((f"GET {path} (after {args.overflow:,} more tasks)", 200, 0, p50, p95))
    del actors
    minray.shutdown()
    per_attempt = table_bytes_per_attempt(bound)
    report = render(args, load, rows, memory, kept, bound, per_attempt)
    print(report)
    if args.output:
        with open(args.output, "w") as f:
            f.write(report)


def render(args, load: str, rows: list, memory: list, kept: list, bound: int, per: float) -> str:
    """The figures as Markdown."""
    over = [name for name, _, _, _, p95 in rows if p95 >= 500 and not name.startswith(("`", "("))]
    lines = [
        f"`python benchmarks/dashboard_load.py --tasks {args.tasks} --actors {args.actors} "
        f"--repeat {args.repeat} --overflow {args.overflow}` on {platform.node()} "
        f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"Load: {load}.",
        "",
        "| request | status | bytes | p50 ms | p95 ms |",
        "|---|---|---|---|---|",
    ]
    for name, status, size, p50, p95 in rows:
        flag = " **over 500 ms**" if p95 >= 500 and name in over else ""
        lines.append(f"| {name} | {status or ''} | {size or ''} | {p50:.1f} | {p95:.1f}{flag} |")
    lines += ["", "| head node process | RSS MiB |", "|---|---|"]
    lines += [f"| {when} | {rss:.0f} |" for when, rss in memory]
    lines += ["", "| task table | attempts kept | dropped (lost or evicted) |", "|---|---|---|"]
    lines += [f"| {when} | {total:,} | {dropped:,} |" for when, total, dropped in kept]
    lines += [
        "",
        f"Task table bound: {bound:,} attempts; a finished no-op task costs it "
        f"{per:,.0f} bytes (tracemalloc), so about {bound * per / 2**20:.0f} MiB at the bound "
        "(plus up to 4,000 characters of error text per failed attempt).",
        "",
        "Pages over 500 ms (p95): " + (", ".join(over) if over else "none") + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
