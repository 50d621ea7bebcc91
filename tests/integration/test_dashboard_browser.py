"""The dashboard in a real browser (headless Chromium, driven by Playwright), as a user
sees it: log in with the token, read a failed task's exception and traceback, watch
the task graph of a program with a chain of tasks, an actor and a failing task grow,
see its runs on the timeline and click the failed one, click "Stack" and "Profile" on
the actor, follow a worker's log, see the objects.

Skipped, with the reason, where Playwright or Chromium is missing (``.ci/run`` installs
both). ``MINRAY_SCREENSHOT_DIR=docs/images`` also saves its screenshots there (the
ones the docs show); otherwise they go to the test's temporary directory."""

from __future__ import annotations

import os
import shutil

import pytest

import minray

from .cluster_helpers import wait_until
from .dashboard_helpers import dashboard  # noqa: F401 - a fixture

CHROMIUM = os.environ.get("MINRAY_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium, or set MINRAY_CHROMIUM)",
)

#: milliseconds the page may take to show what the head knows (it refreshes every 2 s)
WAIT_MS = 20_000


@minray.remote
def add(a, b):
    return a + b


@minray.remote(num_cpus=0)
class Counter:
    def __init__(self):
        self.total = 0

    def incr(self, by: int) -> int:
        self.total += by
        return self.total


def run_the_program() -> tuple[minray.ObjectRef, object]:
    """A put, a chain of three tasks, an actor called with the chain's end, and a task
    that adds an int to a string: 6 tasks and 1 object. Returns the chain's end and the
    actor (alive while its handle is held)."""
    end = add.remote(add.remote(add.remote(minray.put(1), 1), 1), 1)
    counter = Counter.remote()
    assert minray.get(counter.incr.remote(end)) == 4
    with pytest.raises(TypeError):
        minray.get(add.remote(end, "one"))
    return end, counter


def screenshot(page, tmp_path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes().startswith(b"\x89PNG")
    wanted = os.environ.get("MINRAY_SCREENSHOT_DIR")
    if wanted:
        shutil.copyfile(path, os.path.join(wanted, name))


def test_a_user_logs_in_reads_the_traceback_and_watches_the_task_graph(dashboard, tmp_path):  # noqa: F811
    end, counter = run_the_program()

    def all_told() -> bool:  # every task's events reached the head, the failure's text too
        tasks = dashboard.json("/api/tasks")["tasks"]
        done = [t for t in tasks if t["state"] in ("FINISHED", "FAILED")]
        return len(done) == 6 and any(t["exception_type"] for t in done)

    assert wait_until(all_told, timeout=20)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(WAIT_MS)
            page.goto(dashboard.url + "/")
            assert page.url.endswith("/login")
            page.fill("#token", "0" * 64)
            page.click("button[type=submit]")
            assert "not this cluster's token" in page.content()
            page.fill("#token", dashboard.token)
            page.click("button[type=submit]")
            page.wait_for_url(dashboard.url + "/")

            failure = page.locator("#failures details").first
            failure.wait_for()
            assert "TypeError" in failure.locator("summary").inner_text()
            failure.locator("summary").click()
            traceback = failure.locator("pre").inner_text()
            assert "return a + b" in traceback
            assert "unsupported operand type(s) for +: 'int' and 'str'" in traceback
            page.wait_for_selector("#tasks td.FAILED")
            screenshot(page, tmp_path, "dashboard-overview.png")

            page.click("text=Task graph")
            page.wait_for_url(dashboard.url + "/graph")
            page.wait_for_selector('#status[data-nodes="7"]')
            nodes = page.locator("#nodes g.node")
            assert nodes.count() == 7
            assert page.locator('#nodes g.node[data-kind="task"]').count() == 6
            assert page.locator('#nodes g.node[data-kind="object"]').count() == 1
            assert page.locator('#nodes g.node[data-state="FAILED"]').count() == 1
            assert page.locator('#nodes g.node[data-state="FINISHED"]').count() == 5
            assert page.locator("#edges path.edge").count() == 6  # 5 objects and 1 actor call
            page.locator('#nodes g.node[data-state="FAILED"]').click()
            page.wait_for_function(
                "document.getElementById('detail').textContent.includes('unsupported operand')"
            )
            assert "TypeError" in page.inner_text("#detail")

            assert minray.get(add.remote(end, 10)) == 14  # the graph grows while it is open
            page.wait_for_selector('#status[data-nodes="8"]')
            assert page.locator('#nodes g.node[data-kind="task"]').count() == 7
            screenshot(page, tmp_path, "task-graph.png")

            page.click("text=Timeline")  # a bar per run, on its worker's row
            page.wait_for_url(dashboard.url + "/timeline")
            canvas = page.locator('#timeline[data-done="7"]')
            canvas.wait_for()
            assert canvas.get_attribute("data-bars") == "7"
            assert canvas.get_attribute("data-mode") == "slices"
            bars = page.evaluate("timelineBars()")
            assert sorted(b["state"] for b in bars) == ["FAILED"] + ["FINISHED"] * 6
            (failed,) = [b for b in bars if b["state"] == "FAILED"]
            box = canvas.bounding_box()
            page.mouse.click(box["x"] + failed["x"] + failed["w"] / 2,
                             box["y"] + failed["y"] + failed["h"] / 2)  # fmt: skip
            page.wait_for_function(
                "document.getElementById('detail').textContent.includes('unsupported operand')"
            )
            detail = page.inner_text("#detail")
            assert detail.startswith("add (NORMAL_TASK), attempt 0: FAILED")
            assert "TypeError" in detail
            assert page.inner_text("#tip").startswith("add (FAILED)")  # the hover's text
            # the traceback below gave the page a scroll bar and narrowed the canvas: the
            # bars were redrawn to fit, so point at where the failed bar is drawn now
            drawn = "new Promise(done => requestAnimationFrame(() => done(timelineBars())))"
            (failed,) = [b for b in page.evaluate(drawn) if b["state"] == "FAILED"]
            box = canvas.bounding_box()
            pointer = failed["x"] + failed["w"] / 2
            page.mouse.move(box["x"] + pointer, box["y"] + failed["y"] + failed["h"] / 2)
            # the browser reports the pointer in whole pixels: keep the x the page was given
            page.evaluate("canvas.addEventListener('wheel', e => { window.wheelX = where(e)[0]; })")
            shown = page.evaluate("viewT[1] - viewT[0]")
            page.mouse.wheel(0, -1200)  # zoom in around the pointer: the bar stays under it
            page.wait_for_function(f"viewT[1] - viewT[0] < {shown / 10}")
            (zoomed,) = [b for b in page.evaluate(drawn) if b["state"] == "FAILED"]
            at, magnified = page.evaluate("[wheelX, viewT[1] - viewT[0]]")
            magnified = shown / magnified
            assert abs(at - pointer) <= 1
            # what was d pixels from the pointer is now d times the zoom from it
            assert zoomed["x"] - at == pytest.approx((failed["x"] - at) * magnified, abs=0.5)
            assert zoomed["w"] > failed["w"]
            screenshot(page, tmp_path, "timeline.png")
            shown = page.evaluate("viewT[1] - viewT[0]")
            page.click("#zoom-in")
            # (view times are milliseconds since the epoch, about 1.8e12: a double holds
            # them to 0.00024 ms, more than approx's default relative 1e-6 of a 100 ms span)
            assert page.evaluate("viewT[1] - viewT[0]") == pytest.approx(shown / 2, abs=1e-3)
            page.click("#fit")
            page.click("text=its row on the overview")  # the task's own row
            page.wait_for_selector("#task-rows td.FAILED")
            assert "unsupported operand" in page.inner_text("#task-error")

            page.goto(dashboard.url + "/timeline?max_slices=3")  # past 3 runs: a summary
            canvas = page.locator('#timeline[data-mode="summary"]')
            canvas.wait_for()
            assert "Summarised: 7 runs" in page.inner_text("#summary-note")
            slot = [b for b in page.evaluate("timelineBars()") if b["failed"]][0]
            box = canvas.bounding_box()
            for _ in range(6):  # clicking a slot zooms to it, until its runs come one by one
                page.mouse.click(box["x"] + slot["x"] + slot["w"] / 2,
                                 box["y"] + slot["y"] + slot["h"] / 2)  # fmt: skip
                try:
                    page.wait_for_selector('#timeline[data-mode="slices"]', timeout=2000)
                    break
                except sync_api.TimeoutError:
                    slots = [b for b in page.evaluate("timelineBars()") if b["failed"]]
                    slot = slots[0] if slots else slot
            assert any(b["state"] == "FAILED" for b in page.evaluate("timelineBars()"))
            assert not page.is_visible("#summary-note")
            page.goto(dashboard.url + "/#task=" + "ab" * 24)  # a task the head does not know
            page.wait_for_selector("#task-rows td:text('(none)')")

            page.goto(dashboard.url + "/")  # Stack and Profile on the actor's row
            actor = f'[data-actor-id="{counter._actor_id.hex()}"]'
            page.click(f"button.stack{actor}")
            page.wait_for_selector("#profile-result pre")
            assert "MainThread" in page.inner_text("#profile-result pre")
            page.fill("#profile-seconds", "1")
            page.click(f"button.profile{actor}")
            flame = page.locator("#profile-result svg.flamegraph")
            flame.wait_for()
            assert flame.locator("rect").count() >= 2  # all, and at least one thread

            ran = [t for t in dashboard.json("/api/tasks")["tasks"] if t["name"] == "add"]
            page.click(f'button.logs[data-worker-id="{ran[0]["worker_id"]}"]')
            page.wait_for_function(
                "document.getElementById('log-status').textContent.includes('following')"
            )
            assert page.locator("#objects tr").count() >= 2  # the chain's end, still held
        finally:
            browser.close()
