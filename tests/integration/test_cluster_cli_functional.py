"""``minray start --head``, ``minray start --address``, ``minray status`` and ``minray stop``
as a user types them, each test in its own session root and home directory."""

from __future__ import annotations

import json
import os
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

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def env(tmp_path):
    """A fresh session root (short: Unix socket paths are limited) and home directory."""
    root = tempfile.mkdtemp(prefix="mr", dir="/tmp")
    env = dict(os.environ, HOME=str(tmp_path), MINRAY_SESSION_ROOT=root)
    env.pop("MINRAY_AUTH_TOKEN", None)
    env["MINRAY_HEARTBEAT_INTERVAL_S"] = "0.2"
    yield env
    minray(env, "stop", "--force", check=False)
    leftover = [  # (a node's title replaces its command line: its environment names the root)
        p
        for p in psutil.process_iter(["cmdline", "environ"])
        if root in " ".join(p.info["cmdline"] or ())
        or (p.info["environ"] or {}).get("MINRAY_SESSION_ROOT") == root
    ]
    shutil.rmtree(root, ignore_errors=True)
    assert not leftover, f"processes left running: {leftover}"


def minray(env, *args, check=True, timeout=60) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [sys.executable, "-m", "minray.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def segments() -> set[str]:
    return {name for name in os.listdir("/dev/shm") if name.startswith("minray_")}


def test_start_a_head_join_a_node_run_a_driver_then_stop_everything(env, tmp_path):
    before = segments()
    port = free_port()
    head = minray(env, "start", "--head", "--port", str(port), "--num-cpus", "1",
                  "--dashboard-port", "0")  # fmt: skip
    address = f"127.0.0.1:{port}"
    assert f"Started the minray head at {address}" in head.stdout
    assert f"minray start --address={address}" in head.stdout
    token_file = tmp_path / ".minray" / "auth_token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    node = minray(env, "start", "--address", address, "--num-cpus", "2", "--resources", '{"a": 1}')
    assert "joined the cluster" in node.stdout

    status = minray(env, "status")
    assert "2 node(s) alive, 0 dead" in status.stdout
    assert "CPU 0/2" in status.stdout
    assert "spilled to disk" in status.stdout  # each node's object store line
    titles = {p.info["cmdline"][0] for p in psutil.process_iter(["cmdline", "environ"])
              if p.info["cmdline"] and (p.info["environ"] or {}).get("MINRAY_SESSION_ROOT")
              == env["MINRAY_SESSION_ROOT"]}  # fmt: skip
    assert {"minray::head", "minray::node", "minray::zygote"} <= titles, titles
    dashboard = minray(env, "dashboard")
    assert f"token: {token_file.read_text().strip()}" in dashboard.stdout
    assert "Dashboard:" in head.stdout and "`minray dashboard` prints" in head.stdout

    driver = textwrap.dedent("""
        import minray
        minray.init(address="auto")
        @minray.remote
        def add(a, b):
            return a + b
        print("total", minray.cluster_resources()["CPU"], minray.get(add.remote(1, 2)))
        minray.shutdown()
    """)
    ran = subprocess.run(
        [sys.executable, "-c", driver],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "total 3.0 3" in ran.stdout, ran.stderr

    stopped = minray(env, "stop")
    assert "Stopped 2 minray node(s)" in stopped.stdout
    assert segments() <= before
    again = minray(env, "stop")
    assert "nothing to stop" in again.stdout


def test_a_port_in_use_is_refused_with_what_to_do(env):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        out = minray(env, "start", "--head", "--port", str(port), check=False)
    assert out.returncode == 1
    assert "Address already in use" in out.stderr and "--port" in out.stderr


def test_a_node_with_a_wrong_token_is_refused_and_says_where_tokens_come_from(env):
    port = free_port()
    minray(env, "start", "--head", "--port", str(port), "--num-cpus", "1")
    out = minray(env, "start", "--address", f"127.0.0.1:{port}", "--token", "ab" * 32, check=False)
    assert out.returncode == 1
    assert "token" in out.stderr and "MINRAY_AUTH_TOKEN" in out.stderr
    assert "1 node(s) alive" in minray(env, "status").stdout


def test_status_and_joining_without_a_cluster_say_so(env):
    out = minray(env, "status", check=False)
    assert out.returncode == 1 and "no running minray cluster" in out.stderr
    out = minray(env, "start", "--address", "127.0.0.1:1", "--token", "ab" * 32, check=False)
    assert out.returncode == 1 and "could not reach a minray head" in out.stderr


def test_a_dashboard_port_in_use_is_refused_with_what_to_do(env):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        out = minray(env, "start", "--head", "--port", str(free_port()), "--dashboard-port",
                     str(taken), check=False)  # fmt: skip
    assert out.returncode == 1
    assert f"127.0.0.1:{taken}" in out.stderr and "--dashboard-port" in out.stderr
    assert "No minray dashboard is running" in minray(env, "dashboard", check=False).stderr


def run_driver(env, code: str) -> str:
    ran = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def crash_the_head(env) -> dict:
    """SIGKILL the recorded head and everything under it; its record."""
    started = os.path.join(env["MINRAY_SESSION_ROOT"], "started")
    records = []
    for name in os.listdir(started):
        with open(os.path.join(started, name)) as f:
            records.append(json.load(f))
    head = next(r for r in records if r["role"] == "head" and psutil.pid_exists(r["pid"]))
    tree = [psutil.Process(head["pid"]), *psutil.Process(head["pid"]).children(recursive=True)]
    for proc in tree:  # the head's machine crashes, as far as minray can tell
        proc.kill()
    psutil.wait_procs(tree, timeout=10)
    return head


def test_a_head_started_again_after_a_crash_takes_its_tables_back_and_its_node_returns(env):
    port = free_port()
    head_args = ["start", "--head", "--port", str(port), "--num-cpus", "1",
                 "--include-dashboard", "false"]  # fmt: skip
    minray(env, *head_args)
    minray(env, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1")
    run_driver(
        env,
        """
        import minray
        from minray.experimental import internal_kv
        minray.init(address="auto")
        internal_kv._internal_kv_put(b"setting", b"kept")
        minray.shutdown()
    """,
    )
    head = crash_the_head(env)

    again = minray(env, *head_args)
    assert f"Recovered the tables of the head (pid {head['pid']})" in again.stdout
    assert "1 member node(s)" in again.stdout and "1 KV key(s)" in again.stdout
    deadline = time.monotonic() + 30
    while "2 node(s) alive, 1 dead" not in minray(env, "status").stdout:
        assert time.monotonic() < deadline, "the node did not reconnect"
        time.sleep(0.2)
    out = run_driver(
        env,
        """
        import minray
        from minray.experimental import internal_kv
        minray.init(address="auto")
        print("value", internal_kv._internal_kv_get(b"setting"))
        minray.shutdown()
    """,
    )
    assert "value b'kept'" in out
    assert not os.path.exists(head["session_dir"] + "/head.sqlite3")  # taken, then removed

    crash_the_head(env)
    fresh = minray(env, *head_args, "--fresh")
    assert "Recovered" not in fresh.stdout
    out = run_driver(
        env,
        """
        import minray
        from minray.experimental import internal_kv
        minray.init(address="auto")
        print("value", internal_kv._internal_kv_get(b"setting"))
        minray.shutdown()
    """,
    )
    assert "value None" in out


def test_a_blocking_head_prints_at_once_and_sigterm_stops_it_cleanly(env):
    before = segments()
    port = free_port()
    command = [sys.executable, "-m", "minray.cli", "start", "--head", "--block",
               "--port", str(port), "--num-cpus", "1", "--include-dashboard", "false"]  # fmt: skip
    env = {k: v for k, v in env.items() if k != "PYTHONUNBUFFERED"}  # as in a pod or a job
    head = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert "Started the minray head" in head.stdout.readline()
        assert "1 node(s) alive" in minray(env, "status").stdout
        head.send_signal(signal.SIGTERM)
        assert head.wait(30) == 0  # the node was told to stop and exited within 15 s
    finally:
        if head.poll() is None:
            head.kill()
            head.wait()
        head.stdout.close()
    assert segments() <= before
    assert "no running minray cluster" in minray(env, "status", check=False).stderr
