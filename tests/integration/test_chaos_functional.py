"""``minray chaos kill-worker | kill-node | kill-actor`` against a running cluster: the kill
happens where the process runs, the workload recovers, and the command refuses
clearly without the cluster token or with bad arguments."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import psutil
import pytest

import minray
from minray.cluster_utils import Cluster
from minray.head.query import query_head
from minray.protocol.connection import RemoteError
from minray.protocol.messages import KillNode, KillWorker
from minray.util.state import list_actors, list_workers

from .cluster_helpers import segments_of, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KILLED = re.compile(r"^\d\d:\d\d:\d\d killed (.+) \(pid (\d+)\) on (\S+), node ([0-9a-f]{12})$")


def chaos(*args, env=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "minray.cli", "chaos", *args],
        env=env or os.environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def kills(out: subprocess.CompletedProcess) -> list[tuple[str, int, str, str]]:
    """``(what, pid, ip, node)`` of each "killed" line."""
    found = [KILLED.match(line) for line in out.stdout.splitlines()]
    return [(m[1], int(m[2]), m[3], m[4]) for m in found if m]


@pytest.fixture
def two_nodes():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    node = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    cluster.connect()
    nodes = cluster.list_all_nodes()
    yield cluster, node
    cluster.shutdown()
    for n in nodes:
        assert not segments_of(n), f"segments of {n} left behind"


def _on_cluster(cluster: Cluster) -> tuple[str, ...]:
    return ("--address", cluster.address, "--token", cluster.token.hex())


@minray.remote(max_retries=5)
def _square(i: int) -> int:
    time.sleep(0.3)
    return i * i


# --- kill-worker and kill-node under a workload ---------------------------------------


def test_kill_worker_under_running_tasks_retries_them_and_the_results_are_right(two_nodes):
    cluster, _ = two_nodes
    refs = [_square.remote(i) for i in range(60)]  # 4.5 s of work on 4 CPUs
    time.sleep(0.5)  # the first tasks run
    out = chaos("kill-worker", "--every", "0.3", "--count", "3", *_on_cluster(cluster))
    assert out.returncode == 0, out.stdout + out.stderr
    killed = kills(out)
    assert len(killed) == 3, out.stdout
    assert all(what == "task _square" and ip == "127.0.0.1" for what, _, ip, _ in killed)
    assert minray.get(refs, timeout=120) == [i * i for i in range(60)]
    assert all(not psutil.pid_exists(pid) or _zombie(pid) for _, pid, _, _ in killed)


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _busy_on(node) -> int:
    workers = list_workers(filters=[("node_id", "=", node.node_id)], detail=True)
    return sum(1 for w in workers if w.busy and w.worker_type == "WORKER")


def test_kill_node_crashes_a_node_that_is_not_the_head_and_its_tasks_run_elsewhere(
    two_nodes, minray_log
):
    cluster, node = two_nodes
    refs = [_square.remote(i) for i in range(24)]
    assert wait_until(lambda: _busy_on(node) > 0, 15), "no task ran on the second node"
    out = chaos("kill-node", *_on_cluster(cluster))
    assert out.returncode == 0, out.stdout + out.stderr
    ((what, pid, _, node_id),) = kills(out)
    assert (pid, node_id) == (node.pid, node.node_id[:12]) and what.startswith("node with")
    assert wait_until(lambda: node.process.poll() is not None, 10), "the node did not exit"
    assert wait_until(lambda: node.node_id not in cluster.alive_node_ids(), 10)
    assert not segments_of(node)
    assert minray.get(refs, timeout=120) == [i * i for i in range(24)]
    assert "failed because its worker died; retrying" in minray_log.text
    again = chaos("kill-node", *_on_cluster(cluster))
    assert again.returncode == 1
    assert "nothing to kill: the cluster has no live node besides the head" in again.stdout


def test_kill_worker_with_nothing_running_says_so_and_fails(two_nodes):
    cluster, _ = two_nodes
    out = chaos("kill-worker", *_on_cluster(cluster))
    assert out.returncode == 1
    assert "nothing to kill: no worker runs a task or hosts an actor now" in out.stdout


# --- kill-actor -------------------------------------------------------------------------


@minray.remote(max_restarts=1)
class _Counter:
    def __init__(self):
        self.n = 0

    def pid(self) -> int:
        return os.getpid()

    def add(self) -> int:
        self.n += 1
        return self.n


def _actor_pid_changes(actor, before: int) -> bool:
    try:
        return minray.get(actor.pid.remote(), timeout=5) != before
    except (minray.exceptions.RayActorError, minray.exceptions.GetTimeoutError):
        return False


def test_kill_actor_by_name_kills_its_worker_and_a_restartable_actor_restarts(two_nodes):
    cluster, _ = two_nodes
    counter = _Counter.options(name="counter").remote()
    before = minray.get(counter.pid.remote())
    assert minray.get(counter.add.remote()) == 1
    out = chaos("kill-actor", "--name", "counter", *_on_cluster(cluster))
    assert out.returncode == 0, out.stdout + out.stderr
    ((what, pid, _, _),) = kills(out)
    assert pid == before and what.startswith("actor _Counter (name counter)")
    assert wait_until(lambda: _actor_pid_changes(counter, before), 30), "no restart"
    assert minray.get(counter.add.remote()) == 1  # a new instance
    (row,) = list_actors(filters=[("name", "=", "counter")], detail=True)
    assert row.num_restarts == 1 and row.state == "ALIVE"


def test_kill_actor_picks_actors_that_are_not_detached_unless_one_is_named(two_nodes):
    cluster, _ = two_nodes
    detached = _Counter.options(name="kept", lifetime="detached").remote()
    minray.get(detached.pid.remote())
    out = chaos("kill-actor", *_on_cluster(cluster))
    assert out.returncode == 1
    assert "no live actor that is not detached (name one with --name)" in out.stdout
    plain = _Counter.remote()
    before = minray.get(plain.pid.remote())
    out = chaos("kill-actor", *_on_cluster(cluster))
    assert [k[1] for k in kills(out)] == [before], out.stdout + out.stderr
    missing = chaos("kill-actor", "--name", "nobody", *_on_cluster(cluster))
    assert "nothing to kill: no live actor is named 'nobody'" in missing.stdout
    minray.kill(detached)


# --- what a node refuses, and what the command refuses ------------------------------------


def test_a_node_kills_only_its_busy_workers_and_the_head_does_not_crash(two_nodes):
    cluster, _ = two_nodes
    head_id = bytes.fromhex(cluster.head_node.node_id)
    with pytest.raises(RemoteError, match="is not a worker of node"):
        query_head(cluster.address, cluster.token, KillWorker(head_id, os.getpid()))
    with pytest.raises(RemoteError, match="this node is the head"):
        query_head(cluster.address, cluster.token, KillNode(head_id))
    with pytest.raises(RemoteError, match="is not alive"):
        query_head(cluster.address, cluster.token, KillNode(b"\x01" * 28))
    assert cluster.head_node.alive


def test_chaos_without_the_token_or_with_a_wrong_one_is_refused(two_nodes, tmp_path):
    cluster, _ = two_nodes
    stranger = dict(os.environ, HOME=str(tmp_path), MINRAY_SESSION_ROOT=str(tmp_path))
    stranger.pop("MINRAY_AUTH_TOKEN", None)
    out = chaos("kill-worker", "--address", cluster.address, env=stranger)
    assert out.returncode == 1
    assert "no token for the minray cluster" in out.stderr and "--token" in out.stderr
    out = chaos("kill-worker", "--address", cluster.address, "--token", "ab" * 32)
    assert out.returncode == 1 and "the token given is not the cluster's" in out.stderr


def test_ctrl_c_stops_a_repeated_run_cleanly(two_nodes):
    cluster, _ = two_nodes
    run = subprocess.Popen(
        [sys.executable, "-m", "minray.cli", "chaos", "kill-worker", "--every", "30",
         "--count", "5", *_on_cluster(cluster)],
        cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        # (a suite started in the background by a shell inherits SIGINT ignored, and
        # Python then keeps it ignored: give the CLI the default, as a terminal would)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        assert "nothing to kill" in run.stdout.readline()  # then it waits 30 s
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=20)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 130
    assert "minray chaos: stopped after 0 kill(s)" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["kill-worker", "--count", "0"], "--count must be at least 1"),
        (["kill-worker", "--every", "-1"], "--every must be a positive number"),
        (["kill-node", "--name", "x"], "--name picks an actor: it goes with kill-actor"),
    ],
)
def test_bad_arguments_are_refused_with_what_to_do(args, message):
    out = chaos(*args)
    assert out.returncode == 1 and message in out.stderr


# --- the walk-through of docs/fault-tolerance.md, as a user types it -----------------------


MAP_REDUCE = textwrap.dedent(
    """
    import time
    import minray

    minray.init(address="auto")

    @minray.remote(max_retries=5)
    def count_words(chunk):
        time.sleep(0.5)
        counts = {}
        for word in chunk.split():
            counts[word] = counts.get(word, 0) + 1
        return counts

    @minray.remote
    def merge(*partials):
        total = {}
        for counts in partials:
            for word, n in counts.items():
                total[word] = total.get(word, 0) + n
        return total

    text = "the quick brown fox jumps over the lazy dog " * 1000
    partials = [count_words.remote(text) for _ in range(60)]
    print("submitted", flush=True)
    total = minray.get(merge.remote(*partials))
    print("the:", total["the"])
    """
)


@pytest.fixture
def cli_env(tmp_path):
    """A session root and home of their own, for `minray start`; stopped by pid after."""
    root = tempfile.mkdtemp(prefix="mr", dir="/tmp")  # short: Unix socket paths are limited
    env = dict(os.environ, HOME=str(tmp_path), MINRAY_SESSION_ROOT=root)
    env.pop("MINRAY_AUTH_TOKEN", None)
    yield env
    subprocess.run([sys.executable, "-m", "minray.cli", "stop", "--force"], env=env, cwd=ROOT,
                   capture_output=True, timeout=60)  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_walk_through_kill_workers_under_a_map_reduce_on_a_started_cluster(cli_env):
    def cli(*args):
        out = subprocess.run([sys.executable, "-m", "minray.cli", *args], env=cli_env,
                             cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        return out

    port = _free_port()
    cli("start", "--head", "--port", str(port), "--num-cpus", "2", "--include-dashboard", "false")
    cli("start", f"--address=127.0.0.1:{port}", "--num-cpus", "2")
    driver = subprocess.Popen(
        [sys.executable, "-c", MAP_REDUCE], env=cli_env, cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert driver.stdout.readline().strip() == "submitted"
        time.sleep(1)
        out = chaos("kill-worker", "--every", "1", "--count", "3", env=cli_env)
        assert len(kills(out)) == 3, out.stdout + out.stderr
        stdout, stderr = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert "the: 120000" in stdout, stderr
    assert "failed because its worker died; retrying" in stderr
    failed = cli("list", "tasks", "--filter", "state=FAILED").stdout
    # (a kill can land between two tasks of a lease: then no task attempt failed)
    assert 1 <= failed.count("WORKER_DIED") <= 3, failed

    node = kills(chaos("kill-node", env=cli_env))
    assert len(node) == 1 and node[0][0] == "node with 2 worker(s)", node
    assert wait_until(lambda: "1 node(s) alive, 1 dead" in cli("status").stdout, 15)
    assert "Stopped 1 minray node(s)" in cli("stop").stdout  # the head; and the crashed one:
    root = cli_env["MINRAY_SESSION_ROOT"]
    sessions = [os.path.join(root, n) for n in os.listdir(root) if n.startswith("session-")]
    assert len(sessions) == 2 and all(os.listdir(s) == ["logs"] for s in sessions), sessions
    tags = tuple(f"minray_{os.path.basename(s)[-6:]}" for s in sessions)
    assert not [name for name in os.listdir("/dev/shm") if name.startswith(tags)]
