"""The dashboard's task graph under load: ``/api/graph`` and the ``/graph`` page.

    python benchmarks/dashboard_graph.py [--tasks 300,2000,10000] [--screenshots DIR]

For each size, a fresh embedded cluster (2 CPUs, dashboard on) runs that many tasks
as a map and a tree of reductions (every task but the first layer takes two results),
then it prints how long ``/api/graph`` takes (median of 5; drawn node by node up to
300 nodes, summarised past that) and its size, and, where Playwright and Chromium are
installed, how long the page takes from opening to drawing every node (or the
summary), and how long a new task takes to appear on an open page (``--screenshots``:
a picture of each page, ``task-graph-<tasks>.png``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import time

import minray

CHROMIUM = os.environ.get("MINRAY_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@minray.remote
def one(i: int) -> int:
    return i


@minray.remote
def both(a: int, b: int) -> int:
    return a + b


def run_tasks(count: int) -> None:
    """About ``count`` tasks: a map of half of them, then pairwise sums down to one."""
    layer = [one.remote(i) for i in range(max(count // 2, 1))]
    made = len(layer)
    while len(layer) > 1 and made < count:
        layer = [both.remote(a, b) for a, b in zip(layer[::2], layer[1::2])] + layer[
            len(layer) // 2 * 2 :
        ]
        made += len(layer)
    minray.get(layer)


def get(host: str, port: int, token: str, path: str) -> tuple[float, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        started = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        body = conn.getresponse().read()
        return time.perf_counter() - started, body
    finally:
        conn.close()


def measure(count: int, screenshots: str | None = None) -> dict:
    context = minray.init(num_cpus=2, include_dashboard=True, dashboard_port=0)
    try:
        host, port = context["webui_url"].rsplit(":", 1)
        session_dir = context["session_dir"]
        with open(os.path.join(session_dir, "token"), "rb") as f:
            token = f.read().hex()
        run_tasks(count)
        deadline = time.monotonic() + 60
        graph: dict = {}
        while time.monotonic() < deadline:  # until every task's events reached the head
            graph = json.loads(get(host, int(port), token, "/api/graph")[1])
            if graph["tasks"] >= count - 1:
                break
            time.sleep(0.5)
        samples, size = [], 0
        for _ in range(5):
            took, body = get(host, int(port), token, "/api/graph")
            samples.append(took)
            size = len(body)
        row = {
            "tasks": graph["tasks"],
            "mode": graph["mode"],
            "api_graph_ms": statistics.median(samples) * 1000,
            "api_graph_kib": size / 1024,
        }
        if os.path.exists(CHROMIUM):
            row.update(page_times(f"http://{host}:{port}", token, graph, screenshots))
        return row
    finally:
        minray.shutdown()


def page_times(url: str, token: str, graph: dict, screenshots: str | None) -> dict:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {}
    drawn = len(graph["nodes"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url + "/login")
            page.fill("#token", token)
            page.click("button[type=submit]")
            page.wait_for_url(url + "/")
            started = time.perf_counter()
            page.goto(url + "/graph")
            page.wait_for_selector(f'#status[data-nodes="{drawn}"]', timeout=60_000)
            opened = time.perf_counter() - started
            started = time.perf_counter()
            minray.get(one.remote(-1))
            if graph["mode"] == "tasks":
                shown = f'#status[data-nodes="{drawn + 1}"]'
            else:
                shown = f'#status[data-tasks="{graph["tasks"] + 1}"]'
            page.wait_for_selector(shown, timeout=60_000)
            if screenshots:
                path = os.path.join(screenshots, f"task-graph-{graph['tasks'] + 1}.png")
                page.screenshot(path=path)
            return {"page_draw_s": opened, "new_task_shown_s": time.perf_counter() - started}
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="300,2000,10000", help="sizes, comma-separated")
    parser.add_argument("--screenshots", help="a folder for a picture of each page")
    args = parser.parse_args()
    for count in (int(n) for n in args.tasks.split(",")):
        row = measure(count, args.screenshots)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))


if __name__ == "__main__":
    main()
