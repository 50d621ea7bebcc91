"""Several real nodes on one machine (cluster_utils.Cluster): joining over TCP, nodes(),
a node's death (left, crashed, hung), the head's death, and bad peers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

import minray
from minray.cluster_utils import Cluster
from minray.exceptions import RaySystemError
from minray.head.query import query_head
from minray.node import launcher
from minray.protocol.messages import GetClusterInfo
from minray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from .cluster_helpers import process_tree, segments_of


def assert_gone(processes: list[psutil.Process], nodes, timeout: float = 10) -> None:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    alive = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"processes outlived their node: {alive}"
    for node in nodes:
        assert not os.path.exists(node.session_dir), f"{node.session_dir} left behind"
        assert not segments_of(node), "shared-memory segments left behind"


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def head_view(cluster) -> dict[str, dict]:
    nodes = query_head(cluster.address, cluster.token, GetClusterInfo()).nodes
    return {n["NodeID"]: n for n in nodes}


def death_reason(cluster, node, timeout: float) -> str:
    """Wait until the head sees ``node`` dead; why it says it died."""
    view = wait_for(
        lambda: (v := head_view(cluster)) and not v[node.node_id]["Alive"] and v, timeout, "death"
    )
    assert view[cluster.head_node.node_id]["Alive"]
    return view[node.node_id]["DeathReasonMessage"]


@pytest.fixture
def cluster(monkeypatch):
    """A head (1 CPU) and nothing else yet; fast heartbeats so deaths show quickly."""
    monkeypatch.setenv("MINRAY_HEARTBEAT_INTERVAL_S", "0.2")
    monkeypatch.setenv("MINRAY_NODE_DEATH_TIMEOUT_S", "1.5")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    started = list(cluster.list_all_nodes())
    processes = process_tree(cluster.head_node)
    yield cluster, started, processes
    for node in cluster.list_all_nodes():
        processes += process_tree(node)
    cluster.shutdown()
    assert_gone(processes, started)


def test_nodes_join_and_the_driver_sees_all_of_them_in_rays_shape(cluster):
    cluster, started, processes = cluster
    first = cluster.add_node(num_cpus=2, resources={"ssd": 1})
    second = cluster.add_node(num_cpus=1)
    started += [first, second]
    cluster.wait_for_nodes(timeout=10)
    cluster.connect()
    nodes = {n["NodeID"]: n for n in minray.nodes()}
    assert set(nodes) == {cluster.head_node.node_id, first.node_id, second.node_id}
    for node in nodes.values():
        assert node["Alive"] is node["alive"] is True
        assert node["NodeManagerAddress"] == "127.0.0.1"
        assert len(node["NodeID"]) == 56
    assert nodes[first.node_id]["Resources"]["ssd"] == 1.0
    assert "node:__internal_head__" not in nodes[first.node_id]["Resources"]
    assert nodes[cluster.head_node.node_id]["Resources"]["node:__internal_head__"] == 1.0
    total = minray.cluster_resources()
    assert total["CPU"] == 4.0 and total["ssd"] == 1.0

    @minray.remote
    def where():
        return minray.get_runtime_context().get_node_id()

    assert minray.get(where.remote()) == cluster.head_node.node_id  # the driver's node


def test_a_driver_that_connected_leaves_the_cluster_running_at_shutdown(cluster):
    cluster, started, processes = cluster
    cluster.connect()
    assert minray.get(minray.put("kept")) == "kept"
    minray.shutdown()
    cluster._connected = False
    assert cluster.head_node.alive()
    assert os.path.exists(cluster.head_node.session_dir)
    assert cluster.head_node.node_id in head_view(cluster)


@pytest.mark.parametrize("graceful", [True, False], ids=["leaves", "crashes"])
def test_a_removed_node_is_marked_dead_at_once_and_leaves_nothing(cluster, graceful):
    cluster, started, processes = cluster
    node = cluster.add_node(num_cpus=1)
    node_procs = process_tree(node)
    cluster.remove_node(node, allow_graceful=graceful)
    reason = death_reason(cluster, node, 5)
    assert ("stopped" in reason) if graceful else ("connection" in reason)
    assert_gone(node_procs, [node])


def test_a_hung_node_is_declared_dead_by_the_heartbeat_timeout_then_stops_itself(cluster):
    cluster, started, processes = cluster
    node = cluster.add_node(num_cpus=1)
    started.append(node)
    node_procs = process_tree(node)
    os.kill(node.pid, signal.SIGSTOP)  # its TCP connection stays open: only silence tells
    try:
        stopped_at = time.monotonic()
        assert "no heartbeat" in death_reason(cluster, node, 10)
        assert time.monotonic() - stopped_at < 6
    finally:
        os.kill(node.pid, signal.SIGCONT)
    # the head dropped it: it notices, and stops cleanly by itself
    wait_for(lambda: not node.alive(), 15, "the dead node to stop")
    cluster.worker_nodes.remove(node)
    assert_gone(node_procs, [node])


def test_nodes_stop_cleanly_when_the_head_dies_and_does_not_come_back(cluster, monkeypatch):
    cluster, started, processes = cluster
    monkeypatch.setenv("MINRAY_HEAD_RECONNECT_TIMEOUT_S", "1")  # (default: 60 s)
    node = cluster.add_node(num_cpus=1)
    started.append(node)
    node_procs = process_tree(node)
    head = cluster.head_node
    cluster.remove_node(head, allow_graceful=False)
    wait_for(lambda: not node.alive(), 10, "the node to notice the head is gone")
    cluster.worker_nodes.remove(node)
    assert_gone(node_procs, [node])


def test_a_node_with_another_token_cannot_join(cluster):
    cluster, started, processes = cluster
    session_dir = launcher.new_session_dir()
    launcher.write_session_files(session_dir, b"x" * 32)
    settings = {
        "session_dir": session_dir,
        "node_id": "ab" * 28,
        "resources": {"CPU": 1.0},
        "object_store_memory": 2**26,
        "embedded": False,
        "parent_pid": os.getpid(),
        "head_address": f"tcp:{cluster.address}",
    }
    try:
        with pytest.raises(RaySystemError, match="could not join the cluster.*token"):
            launcher.spawn_node(settings)
    finally:
        shutil.rmtree(session_dir)
    assert "ab" * 28 not in head_view(cluster)


def test_garbage_on_the_head_port_is_dropped_and_the_cluster_carries_on(cluster):
    cluster, started, processes = cluster
    host, port = cluster.address.split(":")
    for garbage in (b"GET / HTTP/1.1\r\n\r\n", os.urandom(4096), b"\x00\x00\x00\x05hello"):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(garbage)
            sock.settimeout(5)
            try:
                while sock.recv(4096):
                    pass
            except (ConnectionResetError, TimeoutError):
                pass
    assert head_view(cluster)[cluster.head_node.node_id]["Alive"]
    node = cluster.add_node(num_cpus=1)
    started.append(node)
    assert head_view(cluster)[node.node_id]["Alive"]


def test_a_ray_program_under_compat_connects_through_ray_address(cluster, tmp_path):
    cluster, started, processes = cluster
    node = cluster.add_node(num_cpus=1)
    started.append(node)
    script = tmp_path / "ray_program.py"
    script.write_text(
        "import ray\n"
        "ray.init()\n"
        "from ray.util.placement_group import placement_group\n"
        "print('nodes', len(ray.nodes()), placement_group([{'CPU': 1}]).wait(10))\n"
    )
    env = dict(os.environ, RAY_ADDRESS=cluster.address, MINRAY_AUTH_TOKEN=cluster.token.hex())
    env.pop("MINRAY_ADDRESS", None)
    out = subprocess.run(
        [sys.executable, "-m", "minray.compat", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    assert "nodes 2 True" in out.stdout, out.stderr


def test_status_shows_pending_and_infeasible_demands(cluster, monkeypatch, capsys):
    from minray import cluster_cli

    cluster, started, processes = cluster
    node = cluster.add_node(num_cpus=1)
    started.append(node)
    cluster.connect()

    @minray.remote(resources={"nowhere": 1})
    def never():
        return 1

    ref = never.remote()
    monkeypatch.setenv("MINRAY_AUTH_TOKEN", cluster.token.hex())
    out = ""
    deadline = time.monotonic() + 10
    while "Infeasible: no node can ever fit" not in out and time.monotonic() < deadline:
        cluster_cli.status(cluster.address)
        out = capsys.readouterr().out
        time.sleep(0.1)
    assert "'nowhere': 1.0" in out and "x 1" in out and "Infeasible: no node can ever fit" in out
    assert "2 node(s) alive" in out
    del ref


def test_each_driver_is_a_job_of_its_own_in_the_head_job_table(cluster, monkeypatch, capsys):
    from minray import cluster_cli
    from minray.protocol.messages import GetJobs

    cluster, started, processes = cluster
    node = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.2")
    started.append(node)
    cluster.connect()

    @minray.remote
    def job_of_task():
        return minray.get_runtime_context().get_job_id()

    @minray.remote(num_cpus=0)
    class JobOfActor:
        def job(self):
            return minray.get_runtime_context().get_job_id(), minray.get(job_of_task.remote())

    mine = minray.get_runtime_context().get_job_id()
    actor = JobOfActor.options(resources={"node:127.0.0.2": 0.01}).remote()
    assert minray.get(job_of_task.remote()) == mine
    assert minray.get(actor.job.remote()) == (mine, mine)

    other = subprocess.run(
        [sys.executable, "-c", (
            "import minray\n"
            f"minray.init(address={cluster.address!r}, _token={cluster.token!r})\n"
            "@minray.remote\n"
            "def job():\n"
            "    return minray.get_runtime_context().get_job_id()\n"
            "print('jobs', minray.get_runtime_context().get_job_id(), minray.get(job.remote()))\n"
        )],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    words = next(line for line in other.stdout.splitlines() if line.startswith("jobs")).split()
    assert words[1] == words[2] != mine, other.stderr

    def jobs() -> dict:
        return {j["JobID"]: j for j in query_head(cluster.address, cluster.token, GetJobs()).jobs}

    wait_for(lambda: jobs()[words[1]]["IsDead"], 10, "the other driver's job to end")
    table = jobs()
    assert not table[mine]["IsDead"] and table[mine]["DriverPid"] == os.getpid()
    assert table[words[1]]["EndTime"] >= table[words[1]]["StartTime"] > 0
    monkeypatch.setenv("MINRAY_AUTH_TOKEN", cluster.token.hex())
    cluster_cli.status(cluster.address)
    out = capsys.readouterr().out
    assert "Jobs running: 1" in out and f"{mine}  pid {os.getpid()}" in out


# --- connecting a driver: bad input ---------------------------------------------------------


@pytest.mark.parametrize("address", ["localhost", "127.0.0.1:", ":6380", "127.0.0.1:99999"])
def test_a_malformed_address_names_the_accepted_forms(address):
    with pytest.raises(ValueError, match="HOST:PORT.*auto"):
        minray.init(address=address, _token=b"t" * 32)
    assert not minray.is_initialized()


def test_an_unreachable_address_fails_within_seconds_naming_it():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
        minray.init(address=f"127.0.0.1:{port}", _token=b"t" * 32)
    assert time.monotonic() - started < 10
    assert not minray.is_initialized()


def test_a_wrong_token_is_refused(cluster):
    cluster, started, processes = cluster
    with pytest.raises(ConnectionError, match="token"):
        minray.init(address=cluster.address, _token=b"w" * 32)
    assert not minray.is_initialized()


def test_without_any_token_the_error_lists_the_sources_tried(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("MINRAY_AUTH_TOKEN", raising=False)
    with pytest.raises(ConnectionError, match="MINRAY_AUTH_TOKEN.*auth_token"):
        minray.init(address="127.0.0.1:1")
    monkeypatch.setenv("MINRAY_AUTH_TOKEN", "not hex")
    with pytest.raises(ValueError, match="MINRAY_AUTH_TOKEN.*not hex digits"):
        minray.init(address="127.0.0.1:1")


def test_resources_cannot_be_given_when_connecting():
    with pytest.raises(ValueError, match="num_cpus must not be provided"):
        minray.init(address="127.0.0.1:6380", num_cpus=2)


def test_a_driver_exits_when_the_head_it_connected_to_dies(cluster, tmp_path):
    cluster, started, processes = cluster
    script = tmp_path / "driver.py"
    script.write_text(
        "import sys, time, minray\n"
        "minray.init(address=sys.argv[1], _token=bytes.fromhex(sys.argv[2]))\n"
        "print('connected', flush=True)\n"
        "time.sleep(60)\n"
        "print('still running')\n"
    )
    driver = subprocess.Popen(
        [sys.executable, str(script), cluster.address, cluster.token.hex()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert driver.stdout.readline().strip() == "connected"
        cluster.remove_node(cluster.head_node, allow_graceful=False)
        out, err = driver.communicate(timeout=15)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 1
    assert "still running" not in out
    assert "the cluster's head died" in err


def test_a_task_on_a_hung_node_fails_over_once_the_node_is_declared_dead(cluster, tmp_path):
    cluster, started, processes = cluster
    node = cluster.add_node(num_cpus=1)
    started.append(node)
    cluster.connect()
    marker = tmp_path / "started"

    @minray.remote(max_retries=1)
    def slow_once(path):
        if not os.path.exists(path):
            open(path, "w").close()
            time.sleep(30)  # the first run hangs with its node
        return minray.get_runtime_context().get_node_id()

    prefer = NodeAffinitySchedulingStrategy(node.node_id, soft=True)
    ref = slow_once.options(scheduling_strategy=prefer).remote(str(marker))
    wait_for(marker.exists, 20, "the task to start on the node")
    tree = process_tree(node)
    for proc in tree:  # the whole machine hangs: its connections stay open, nobody answers
        proc.suspend()
    try:
        assert minray.get(ref, timeout=20) == cluster.head_node.node_id
    finally:
        for proc in tree:
            proc.resume()
    wait_for(lambda: not node.alive(), 15, "the dead node to stop")
    cluster.worker_nodes.remove(node)
    assert_gone(tree, [node])


def test_the_head_node_never_declares_itself_dead_however_long_it_runs(cluster):
    """The head's own node sends no heartbeat; past the death timeout (1.5 s here) it
    must still be alive, and an actor call running through that time must answer."""
    cluster, _, _ = cluster
    cluster.connect()

    @minray.remote(num_cpus=0)
    class Slow:
        def wait(self, seconds: float) -> str:
            time.sleep(seconds)
            return "done"

    slow = Slow.remote()
    assert minray.get(slow.wait.remote(0), timeout=10) == "done"
    assert minray.get(slow.wait.remote(3.5), timeout=15) == "done"
    assert minray.get(slow.wait.remote(0), timeout=10) == "done"
