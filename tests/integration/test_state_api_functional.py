"""minray.util.state and `minray list`: what runs where, from a driver, from a terminal
next to a running script, and across the nodes of a cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

import minray
from minray.util import state
from minray.util.placement_group import placement_group
from minray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from .cluster_helpers import two_node_cluster, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@minray.remote(num_cpus=0)
class Counter:
    def ping(self) -> int:
        return os.getpid()


def test_actors_are_listed_filtered_fetched_and_summarized(cluster, minray_log):
    kept = Counter.options(name="kept").remote()
    doomed = Counter.remote()
    pid = minray.get(kept.ping.remote())
    minray.get(doomed.ping.remote())
    minray.kill(doomed)
    assert wait_until(lambda: len(state.list_actors(filters=[("state", "=", "DEAD")])) == 1)

    alive = state.list_actors(filters=[("state", "=", "ALIVE")])
    assert [(a.class_name, a.name, a.pid) for a in alive] == [("Counter", "kept", pid)]
    assert alive[0]["job_id"] == minray.get_runtime_context().get_job_id()
    assert alive[0].num_restarts is None  # a detail column
    actor = state.get_actor(alive[0].actor_id)
    assert actor.state == "ALIVE" and actor.num_restarts == 0 and actor.is_detached is False
    dead = state.list_actors(filters=[("state", "!=", "ALIVE")], detail=True)[0]
    assert "kill" in dead.death_cause["message"]
    assert state.summarize_actors()["cluster"]["summary"]["Counter"]["state_counts"] == {
        "ALIVE": 1,
        "DEAD": 1,
    }
    assert len(state.list_actors(limit=1)) == 1 and "Limit last 1 entries" in minray_log.text
    with pytest.raises(ValueError, match="'colour' is not a column of ActorState"):
        state.list_actors(filters=[("colour", "=", "red")])
    assert state.get_actor("ab" * 16) is None


def test_nodes_jobs_workers_and_placement_groups_are_listed(cluster):
    group = placement_group([{"CPU": 1}], name="g")
    assert group.wait(10)
    (node,) = state.list_nodes()
    assert node.is_head_node and node.state == "ALIVE" and node.resources_total["CPU"] >= 1
    (job,) = state.list_jobs(detail=True)
    assert job.status == "RUNNING" and job.driver_info["pid"] == os.getpid()
    assert job.job_id == minray.get_runtime_context().get_job_id()
    drivers = state.list_workers(filters=[("worker_type", "=", "DRIVER")])
    assert [d.pid for d in drivers] == [os.getpid()]
    (listed,) = state.list_placement_groups(detail=True)
    assert (listed.name, listed.state, listed.strategy) == ("g", "CREATED", "PACK")
    assert listed.bundles[0]["node_id"] == node.node_id
    assert state.get_placement_group(group.id.hex()).state == "CREATED"
    assert state.get_node(node.node_id).resources_available is not None


def test_minray_list_in_a_terminal_sees_a_running_scripts_embedded_cluster(tmp_path):
    script = tmp_path / "teacher.py"
    script.write_text(
        "import time, minray\n"
        "minray.init(num_cpus=1)\n"
        "@minray.remote(num_cpus=0)\n"
        "class Teacher:\n"
        "    def ping(self):\n"
        "        return 1\n"
        "t = Teacher.options(name='teacher').remote()\n"
        "minray.get(t.ping.remote())\n"
        "@minray.remote(num_gpus=4)\n"
        "def big():\n"
        "    return 1\n"
        "waiting = big.remote()\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MINRAY_ADDRESS", "RAY_ADDRESS")}
    running = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    try:
        assert running.stdout.readline().strip() == "ready"
        listed = subprocess.run(
            [sys.executable, "-m", "minray.cli", "list", "actors", "--format", "json",
             "--filter", "name=teacher"],
            capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
        )  # fmt: skip
        rows = json.loads(listed.stdout)
        assert [(r["class_name"], r["state"]) for r in rows] == [("Teacher", "ALIVE")], listed
        table = subprocess.run(
            [sys.executable, "-m", "minray.cli", "list", "actors", "--filter", "colour=red"],
            capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
        )  # fmt: skip
        assert table.returncode == 1 and "not a column of ActorState" in table.stderr
        for _ in range(50):  # `minray status` too, with the reason the task waits
            status = subprocess.run(
                [sys.executable, "-m", "minray.cli", "status"],
                capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
            )  # fmt: skip
            if "Infeasible" in status.stdout:
                break
            time.sleep(0.2)
        assert status.returncode == 0, status.stderr
        assert "the embedded one of a running script): 1 node(s) alive" in status.stdout
        assert "{'CPU': 1.0, 'GPU': 4.0} x 1" in status.stdout
        assert "Infeasible: no node can ever fit {CPU: 1, GPU: 4}" in status.stdout
    finally:
        running.terminate()
        running.wait(timeout=30)
        running.stdout.close()


@pytest.fixture
def two_nodes(monkeypatch):
    monkeypatch.setenv("MINRAY_HEARTBEAT_INTERVAL_S", "0.2")
    yield from two_node_cluster(
        {"num_cpus": 2, "resources": {"far": 2}, "node_ip_address": "127.0.0.2"}
    )


@minray.remote(resources={"far": 1}, num_cpus=0)
def make_actor_there():
    counter = Counter.options(name="made-there", lifetime="detached").remote()
    minray.get(counter.ping.remote())
    return counter


def test_the_state_api_covers_every_node(two_nodes):
    cluster, node = two_nodes
    here = Counter.options(name="hosted-there", resources={"far": 1}).remote()
    minray.get(here.ping.remote())
    there = minray.get(make_actor_there.remote())  # its record is kept by the other node
    minray.get(there.ping.remote())
    by_name = {a.name: a for a in state.list_actors()}
    assert by_name["hosted-there"].node_id == node.node_id
    assert by_name["made-there"].node_id == node.node_id
    assert {n.node_ip for n in state.list_nodes()} == {"127.0.0.1", "127.0.0.2"}
    nodes_with_workers = {w.node_id for w in state.list_workers()}
    assert nodes_with_workers == {cluster.head_node.node_id, node.node_id}
    minray.kill(there)
    made_there = by_name["made-there"].actor_id
    assert wait_until(lambda: state.get_actor(made_there).state == "DEAD")


# --- tasks ------------------------------------------------------------------------------------


@minray.remote(max_retries=0)
def fails():
    raise ValueError("on purpose")


@minray.remote(max_retries=1)
def crashes_once(marker: str):
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return "second attempt"


@minray.remote(resources={"nowhere": 1})
def never_runs():
    return 1


def test_tasks_are_listed_with_their_states_attempts_and_errors(cluster, tmp_path, minray_log):
    counter = Counter.remote()
    assert minray.get(counter.ping.remote())
    with pytest.raises(ValueError):
        minray.get(fails.remote())
    retried = crashes_once.remote(str(tmp_path / "crashed"))
    assert minray.get(retried) == "second attempt"
    pending = never_runs.remote()

    def tasks(**wanted):
        rows = state.list_tasks(detail=True, limit=1000)
        return [t for t in rows if all(t[k] == v for k, v in wanted.items())]

    def all_told() -> bool:  # owners and workers each send their events once a second
        ran = {(t.name, t.attempt_number) for t in tasks() if t.start_time_ms}
        # (not "fails": the worker that ran it may be the one crashes_once killed before
        # it sent its events; what a crashed process had not sent is lost, as in Ray)
        wanted = {("crashes_once", 1), ("Counter.ping", 0)}
        return wanted <= ran and len(tasks(name="never_runs")) == 1

    assert wait_until(all_told)
    (failed,) = tasks(name="fails")
    assert failed.state == "FAILED" and failed.error_type == "TASK_EXECUTION_EXCEPTION"
    assert failed.job_id == minray.get_runtime_context().get_job_id()
    assert [e["state"] for e in failed.events][-1] == "FAILED"
    attempts = sorted(tasks(name="crashes_once"), key=lambda t: t.attempt_number)
    assert [(t.attempt_number, t.state) for t in attempts] == [(0, "FAILED"), (1, "FINISHED")]
    assert attempts[0].error_type == "WORKER_DIED" and attempts[1].worker_pid
    assert [t.attempt_reason for t in attempts] == [None, "RETRY"]  # (not a reconstruction)
    (waiting,) = tasks(name="never_runs")
    assert waiting.state == "PENDING_NODE_ASSIGNMENT" and waiting.required_resources == {
        "CPU": 1.0,
        "nowhere": 1.0,
    }
    (call,) = tasks(name="Counter.ping")
    assert call.type == "ACTOR_TASK" and call.state == "FINISHED" and call.actor_id
    assert tasks(type="ACTOR_CREATION_TASK")[0].state == "FINISHED"

    assert [t.attempt_number for t in state.get_task(retried)] == [0, 1]
    summary = state.summarize_tasks()["cluster"]
    assert summary["summary"]["fails"]["state_counts"] == {"FAILED": 1}
    assert summary["summary"]["crashes_once"]["state_counts"] == {"FINISHED": 1}  # its latest
    assert summary["total_actor_tasks"] == 1 and summary["total_actor_scheduled"] == 1
    assert state.list_tasks(filters=[("state", "=", "PENDING_NODE_ASSIGNMENT")])[0].name == (
        "never_runs"
    )
    # a limit without filters: the head sends only the oldest rows, and says how many it has
    everything = state.list_tasks(limit=1000)
    first = state.list_tasks(limit=2)
    assert [t.task_id for t in first] == [t.task_id for t in everything[:2]]
    assert f"Limit last 2 entries (Total {len(everything)})" in minray_log.text
    del pending


@minray.remote(num_cpus=0)
class Leaving:
    def ping(self) -> int:
        return os.getpid()


def test_an_actor_that_goes_out_of_scope_still_tells_where_its_calls_ran(cluster):
    leaving = Leaving.remote()
    pid = minray.get(leaving.ping.remote())
    del leaving  # its worker ends at once, before its next batch of task events was due

    def ran() -> list:
        return [t for t in state.list_tasks(detail=True) if t.name == "Leaving.ping"]

    assert wait_until(lambda: ran() and ran()[0].start_time_ms)
    assert ran()[0].worker_pid == pid


def test_task_events_can_be_turned_off(tmp_path):
    script = tmp_path / "quiet.py"
    script.write_text(
        "import time, minray\n"
        "from minray.util import state\n"
        "minray.init(num_cpus=1)\n"
        "@minray.remote\n"
        "def f():\n"
        "    return 1\n"
        "minray.get([f.remote() for _ in range(3)])\n"
        "time.sleep(1.5)\n"
        "print('tasks', len(state.list_tasks()))\n"
    )
    env = dict(os.environ, MINRAY_TASK_EVENTS="0")
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env
    )
    assert "tasks 0" in out.stdout, out.stderr


def test_the_timeline_shows_each_run_on_its_workers_row(cluster, tmp_path):
    from minray.task_timeline import timeline

    @minray.remote
    def nap(seconds: float) -> int:
        import time

        time.sleep(seconds)
        return os.getpid()

    pids = set(minray.get([nap.remote(0.2) for _ in range(4)]))

    def naps() -> list[dict]:
        return [e for e in timeline() if e["name"] == "nap"]

    assert wait_until(lambda: len(naps()) == 4)
    for event in naps():
        assert event["ph"] == "X" and 190_000 <= event["dur"] < 5_000_000
        assert int(event["tid"].rsplit("pid ", 1)[1].rstrip(")")) in pids
    path = tmp_path / "trace.json"
    out = subprocess.run(
        [sys.executable, "-m", "minray.cli", "timeline", "--output", str(path)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in ("MINRAY_ADDRESS", "RAY_ADDRESS")},
    )  # fmt: skip
    assert "chrome://tracing" in out.stdout, out.stderr
    assert sum(e["name"] == "nap" for e in json.loads(path.read_text())) == 4


# --- why is my task pending -------------------------------------------------------------------


@pytest.mark.parametrize("cluster", [{"num_cpus": 1}], indirect=True)
def test_why_says_what_a_pending_task_waits_for(cluster, tmp_path):
    from minray.util.placement_group import remove_placement_group

    @minray.remote
    def hold(path: str) -> int:
        import time

        deadline = time.monotonic() + 30
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        return 1

    @minray.remote
    def use(value: int) -> int:
        return value + 1

    release = tmp_path / "release"
    held = hold.remote(str(release))  # the only CPU
    queued = use.remote(1)  # waits for the CPU
    after = use.remote(held)  # waits for held's value
    infeasible = never_runs.remote()
    group = placement_group([{"CPU": 8}])  # can never be placed on one CPU
    in_group = use.options(scheduling_strategy=PlacementGroupSchedulingStrategy(group)).remote(0)

    def explained(ref) -> str:
        return state.why(ref.task_id().hex())

    assert wait_until(lambda: "RUNNING" in explained(held))
    assert wait_until(lambda: "Resources busy" in explained(queued))
    assert "in use by task hold (worker pid" in explained(queued)
    assert "position 1 of 1 in the node's queue for CPU" in explained(queued)
    assert wait_until(lambda: "waits for its arguments" in explained(after))
    assert "Waiting for 1 argument(s)" in explained(after)
    assert "made by hold, which is RUNNING" in explained(after)
    assert wait_until(lambda: "Infeasible" in explained(infeasible))
    assert "fit {CPU: 1, nowhere: 1}" in explained(infeasible)
    assert wait_until(lambda: "Waiting for placement group" in explained(in_group))
    assert "PENDING" in explained(in_group)
    reasons = state.pending_reasons(state.list_tasks(detail=True, limit=1000))
    assert reasons[queued.task_id().hex()].startswith("Resources busy")
    assert reasons[after.task_id().hex()].startswith("Waiting for 1 argument(s)")
    assert reasons[infeasible.task_id().hex()].startswith("Infeasible")
    listed = subprocess.run(
        [sys.executable, "-m", "minray.cli", "list", "tasks", "--filter",
         "state=PENDING_NODE_ASSIGNMENT"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in ("MINRAY_ADDRESS", "RAY_ADDRESS")},
    )  # fmt: skip
    assert "REASON" in listed.stdout and "Infeasible" in listed.stdout, listed.stderr
    assert "Resources busy" in listed.stdout

    release.write_text("")
    assert minray.get([held, queued, after]) == [1, 2, 2]
    assert wait_until(lambda: "finished at" in explained(after))
    out = subprocess.run(
        [sys.executable, "-m", "minray.cli", "why", infeasible.task_id().hex()],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in ("MINRAY_ADDRESS", "RAY_ADDRESS")},
    )  # fmt: skip
    assert "Infeasible" in out.stdout, out.stderr
    assert "is known to the head" in state.why("ab" * 24)
    remove_placement_group(group)


# --- logs -------------------------------------------------------------------------------------


@minray.remote
def shout(word: str) -> str:
    import sys

    print(f"out: {word}")
    print(f"err: {word}", file=sys.stderr)
    return minray.get_runtime_context().get_task_id()


@minray.remote(num_cpus=0)
class Speaker:
    def say(self, word: str) -> None:
        print(f"actor says {word}", flush=True)


def test_logs_are_found_by_task_and_actor_and_followed(cluster):
    ref = shout.remote("hello")
    task_id = minray.get(ref)
    assert wait_until(lambda: (state.get_task(task_id) or [None])[-1] is not None
                      and state.get_task(task_id)[-1].worker_id)  # fmt: skip
    assert wait_until(lambda: "out: hello" in "".join(state.get_log(task_id=task_id)))
    assert "err: hello" in "".join(state.get_log(task_id=task_id, suffix="err"))
    assert "out: hello" not in "".join(state.get_log(task_id=task_id, suffix="err"))

    speaker = Speaker.remote()
    minray.get(speaker.say.remote("one"))
    actor_id = speaker._actor_id.hex()
    creation = [("actor_id", "=", actor_id), ("type", "=", "ACTOR_CREATION_TASK")]
    assert wait_until(lambda: any(t.worker_id for t in state.list_tasks(filters=creation)))
    assert wait_until(lambda: "actor says one" in "".join(state.get_log(actor_id=actor_id)))
    followed = state.get_log(actor_id=actor_id, follow=True, tail=0, follow_for_s=3)
    assert next(followed) == ""
    minray.get(speaker.say.remote("two"))
    later = "".join(followed)
    assert "actor says two" in later and "actor says one" not in later
    with pytest.raises(ValueError, match="exactly one"):
        list(state.get_log())
    with pytest.raises(ValueError, match="has not run yet"):
        list(state.get_log(task_id="ab" * 24))


def test_minray_logs_in_a_terminal_reads_another_nodes_worker(two_nodes):
    cluster, node = two_nodes
    far = shout.options(resources={"far": 1})
    task_id = minray.get(far.remote("far away"))
    assert wait_until(lambda: (state.get_task(task_id) or [None])[-1] is not None
                      and state.get_task(task_id)[-1].node_id == node.node_id)  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "minray.cli", "logs", "--task-id", task_id, "--err",
         "--address", cluster.address],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "MINRAY_AUTH_TOKEN": cluster.token.hex()},
    )  # fmt: skip
    assert "err: far away" in out.stdout, out.stderr
