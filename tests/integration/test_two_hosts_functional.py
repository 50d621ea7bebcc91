"""Two "hosts": two Linux network namespaces joined by a veth pair, each with its own
address. The head runs in one (started with the CLI), a node in the other; a driver
beside the head forces tasks onto the remote node, moves a 100 MiB array both ways,
calls an actor across, and sees the node die when it is killed.

Needs root and iproute2 (CI runs as root); elsewhere it skips with the reason. The
namespaces, the veth pair and every process are this test's own and are removed at
the end; traffic stays inside them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from .netns_hosts import ROOT, two_hosts, why_not

pytestmark = pytest.mark.skipif(why_not() is not None, reason=why_not() or "")


@pytest.fixture
def hosts():
    before = {n for n in os.listdir("/dev/shm") if n.startswith("minray_")}
    with two_hosts("mr") as (a, b):
        try:
            yield a, b
        finally:
            pids = a.started_pids() + b.started_pids()
            b.minray("stop", "--force", check=False)
            a.minray("stop", check=False)
    leftover = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    after = {n for n in os.listdir("/dev/shm") if n.startswith("minray_")}
    assert not leftover, f"node processes left running: {leftover}"
    assert after <= before, f"shared-memory segments left behind: {after - before}"


DRIVER = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import minray

    minray.init(address=sys.argv[1])
    here = minray.get_runtime_context().get_node_id()
    nodes = {n["NodeID"]: n for n in minray.nodes() if n["Alive"]}
    assert len(nodes) == 2, nodes
    there = next(i for i in nodes if i != here)
    print("addresses", sorted(n["NodeManagerAddress"] for n in nodes.values()))

    @minray.remote(resources={"remote": 1})
    def where_and_sum(array=None):
        node = minray.get_runtime_context().get_node_id()
        return node, (int(array.sum()) if array is not None else None)

    @minray.remote(resources={"remote": 1})
    def make(n):
        return np.arange(n, dtype=np.uint8)

    @minray.remote(num_cpus=0)
    class Counter:
        def __init__(self):
            self.n = 0
        def add(self, k):
            self.n += k
            return self.n

    @minray.remote(resources={"remote": 1})
    def call_actor(counter):
        return minray.get(counter.add.remote(5)), minray.get_runtime_context().get_node_id()

    @minray.remote(resources={"remote": 1})
    def call_by_name():
        return minray.get(minray.get_actor("counter").add.remote(10))

    assert minray.get(where_and_sum.remote()) == (there, None)
    size = 100 * 1024 * 1024
    sent = np.arange(size, dtype=np.uint8)
    assert minray.get(where_and_sum.remote(minray.put(sent))) == (there, int(sent.sum()))
    back = minray.get(make.remote(size))
    assert back.nbytes == size and np.array_equal(back, sent)
    print("moved 100 MiB both ways")

    counter = Counter.options(name="counter").remote()
    assert minray.get(counter.add.remote(1)) == 1
    assert minray.get(call_actor.remote(counter)) == (6, there)  # a handle passed across
    assert minray.get(call_by_name.remote()) == 16  # looked up by name on the other host
    print("called an actor across")

    @minray.remote(resources={"remote": 1})
    def remember():
        from minray.experimental import internal_kv
        return internal_kv._internal_kv_put("seen_on", minray.get_runtime_context().get_node_id())

    from minray.experimental import internal_kv
    assert minray.get(remember.remote()) is False
    assert internal_kv._internal_kv_get("seen_on") == there.encode()
    print("shared the internal KV")

    print("kill", there, flush=True)
    sys.stdin.readline()  # the test kills the node now
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        alive = {n["NodeID"] for n in minray.nodes() if n["Alive"]}
        if there not in alive:
            break
        time.sleep(0.1)
    assert there not in alive
    dead = next(n for n in minray.nodes() if n["NodeID"] == there)
    print("dead:", dead["DeathReasonMessage"])
    minray.shutdown()
""")


def test_a_head_and_a_node_on_two_hosts(hosts, tmp_path):
    a, b = hosts
    port = "6380"
    head = a.minray(
        "start", "--head", "--node-ip-address", a.address, "--port", port, "--num-cpus", "1"
    )
    address = f"{a.address}:{port}"
    assert f"Started the minray head at {address}" in head.stdout
    assert "WARNING" in head.stdout  # not loopback: anyone who can reach it with the token
    assert "travels unencrypted" in head.stderr and "minray tls init" in head.stderr
    with open(os.path.join(a.home, ".minray", "auth_token")) as f:
        token = f.read().strip()
    joined = b.minray(
        "start", "--address", address, "--token", token, "--num-cpus", "2",
        "--resources", '{"remote": 2}',
    )  # fmt: skip
    assert "joined the cluster" in joined.stdout
    # the node's address defaults to the one it reaches the head from
    status = a.minray("status")
    assert "2 node(s) alive" in status.stdout, status.stdout

    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    driver = subprocess.Popen(
        ["ip", "netns", "exec", a.name, sys.executable, str(script), address],
        env={**a.env(), "MINRAY_AUTH_TOKEN": token},
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = driver.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("kill "):
                break
        assert lines and lines[-1].startswith("kill "), "".join(lines) + driver.stderr.read()
        assert f"addresses ['{a.address}', '{b.address}']" in "".join(lines)
        assert "moved 100 MiB both ways" in "".join(lines)
        assert "called an actor across" in "".join(lines)
        assert "shared the internal KV" in "".join(lines)
        b.minray("stop", "--force")  # SIGKILL, as a crash would
        out, err = driver.communicate("\n", timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 0, out + err
    assert "dead:" in out, out + err


TLS_DRIVER = textwrap.dedent("""
    import sys
    import numpy as np
    import minray

    minray.init(address=sys.argv[1])
    here = minray.get_runtime_context().get_node_id()

    @minray.remote(resources={"remote": 1})
    def where_and_sum(array):
        return minray.get_runtime_context().get_node_id(), int(array.sum())

    @minray.remote(resources={"remote": 1})
    def make(n):
        return np.arange(n, dtype=np.uint8)

    sent = np.arange(64 << 20, dtype=np.uint8)
    there, total = minray.get(where_and_sum.remote(minray.put(sent)))
    assert there != here and total == int(sent.sum())
    assert np.array_equal(minray.get(make.remote(sent.size)), sent)
    print("moved 64 MiB both ways over TLS")
    minray.shutdown()
""")


def test_a_head_and_a_node_on_two_hosts_with_tls(hosts, tmp_path):
    a, b = hosts
    certs = tmp_path / "certs"
    made = subprocess.run(
        [sys.executable, "-m", "minray.cli", "tls", "init", str(certs), "--hosts", a.address,
         b.address],
        env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    for host in (a, b):
        assert f"On {host.address}:" in made.stdout
        host.extra_env = {
            "MINRAY_USE_TLS": "1",
            "MINRAY_TLS_SERVER_CERT": str(certs / host.address / "node.crt"),
            "MINRAY_TLS_SERVER_KEY": str(certs / host.address / "node.key"),
            "MINRAY_TLS_CA_CERT": str(certs / "ca.crt"),
        }
    address = f"{a.address}:6380"
    head = a.minray("start", "--head", "--node-ip-address", a.address, "--num-cpus", "1")
    assert "travels unencrypted" not in head.stderr
    with open(os.path.join(a.home, ".minray", "auth_token")) as f:
        token = f.read().strip()
    b.minray(
        "start", "--address", address, "--token", token, "--num-cpus", "1",
        "--resources", '{"remote": 1}',
    )  # fmt: skip
    assert "2 node(s) alive" in a.minray("status").stdout
    with_tls = {**b.extra_env, "MINRAY_AUTH_TOKEN": token}
    b.extra_env = {"MINRAY_AUTH_TOKEN": token, "MINRAY_HEAD_CONNECT_TIMEOUT_S": "2"}
    refused = b.minray("status", "--address", address, check=False)  # the token, no TLS
    assert refused.returncode == 1 and "MINRAY_USE_TLS=1" in refused.stderr
    b.extra_env = with_tls
    script = tmp_path / "driver.py"
    script.write_text(TLS_DRIVER)
    out = a.run(sys.executable, str(script), address, timeout=120)  # tasks go to host b
    assert out.returncode == 0, out.stdout + out.stderr
    assert "moved 64 MiB both ways over TLS" in out.stdout
