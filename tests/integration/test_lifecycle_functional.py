"""Start, stop, output forwarding, and cleanup after crashes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

import minray
from minray import api

from ..conftest import assert_cleaned_up, runtime_processes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_driver(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_init_then_shutdown_leaves_nothing_behind():
    minray.init(num_cpus=1)
    assert minray.is_initialized()
    session_dir = api._state.session_dir
    processes = runtime_processes()
    assert len(processes) >= 2  # node and zygote at least
    minray.shutdown()
    assert not minray.is_initialized()
    assert_cleaned_up(processes, session_dir)
    minray.shutdown()  # idempotent


def test_init_is_usable_as_a_context_manager():
    with minray.init(num_cpus=1) as context:
        assert context["session_dir"]
        assert minray.is_initialized()
    assert not minray.is_initialized()


def test_get_auto_initializes_a_cluster():
    @minray.remote
    def one():
        return 1

    try:
        assert minray.get(one.remote()) == 1
        assert minray.is_initialized()
    finally:
        minray.shutdown()


def test_print_and_logging_in_tasks_reach_the_driver_with_a_prefix():
    result = run_driver("""
        import logging, minray
        minray.init(num_cpus=1)

        @minray.remote
        def chatty():
            print("hello from the task")
            logging.getLogger("user").warning("a warning from the task")
            import os
            return os.getpid()

        pid = minray.get(chatty.remote())
        import time; time.sleep(0.5)
        print("PID", pid)
        minray.shutdown()
    """)
    assert result.returncode == 0, result.stderr
    pid = result.stdout.split("PID ")[1].split()[0]
    assert f"(chatty pid={pid})\x1b[0m hello from the task" in result.stdout
    assert f"(chatty pid={pid})" in result.stderr and "a warning from the task" in result.stderr


@pytest.mark.timeout(60)
def test_a_killed_driver_takes_its_node_workers_and_segments_with_it():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
        import sys, time, numpy as np, minray
        from minray import api
        minray.init(num_cpus=1)
        ref = minray.put(np.ones(1_000_000))
        print(api._state.session_dir, flush=True)
        time.sleep(60)
    """),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    session_dir = proc.stdout.readline().strip()
    driver = psutil.Process(proc.pid)
    runtime = [p for p in driver.children(recursive=True)]
    assert runtime, "the driver started no node process"
    tag = os.path.basename(session_dir)[-6:]
    assert any(name.startswith("minray_" + tag) for name in os.listdir("/dev/shm"))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert_cleaned_up(runtime, session_dir)


def test_a_connection_without_the_token_is_refused_and_the_node_keeps_serving(cluster):
    path = os.path.join(api._state.session_dir, "node.sock")
    for payload in (b"\x00\x00\x00\x05hello", b"GET / HTTP/1.1\r\n\r\n", os.urandom(200)):
        with socket.socket(socket.AF_UNIX) as raw:
            raw.connect(path)
            raw.settimeout(5)
            raw.recv(64)  # the server's challenge
            raw.sendall(payload)
            try:
                rest = raw.recv(64)
            except ConnectionResetError:
                rest = b""
            assert rest == b"", "the node must close an unauthenticated connection"

    @minray.remote
    def still_works():
        return "ok"

    assert minray.get(still_works.remote(), timeout=10) == "ok"


def test_shutdown_with_tasks_running_stops_them_quickly():
    minray.init(num_cpus=1)

    @minray.remote
    def forever():
        time.sleep(600)

    ref = forever.remote()
    time.sleep(0.3)
    processes = runtime_processes()
    session_dir = api._state.session_dir
    start = time.perf_counter()
    minray.shutdown()
    assert time.perf_counter() - start < 3
    assert_cleaned_up(processes, session_dir)
    del ref


def test_shutdown_wakes_a_thread_waiting_in_get_with_a_system_error():
    import threading

    minray.init(num_cpus=1)

    @minray.remote
    def slow():
        time.sleep(30)

    ref = slow.remote()
    outcome = []

    def waiter():
        try:
            minray.get(ref)
        except minray.exceptions.RaySystemError as error:
            outcome.append(str(error))

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.5)
    processes, session_dir = runtime_processes(), api._state.session_dir
    minray.shutdown()
    thread.join(10)
    assert not thread.is_alive() and "shut down" in outcome[0]
    assert_cleaned_up(processes, session_dir)


def test_refs_from_an_earlier_session_are_refused_with_a_clear_error():
    minray.init(num_cpus=1)
    old = minray.put(1)
    minray.shutdown()
    try:
        minray.init(num_cpus=1)
        with pytest.raises(ValueError, match="owner is unknown"):
            minray.get(old)
        with pytest.raises(ValueError, match="owner is unknown"):
            minray.wait([old])
        assert minray.get(minray.put(2)) == 2
    finally:
        minray.shutdown()


def test_the_last_lines_of_worker_output_reach_the_driver_before_shutdown():
    for _ in range(3):
        result = run_driver("""
            import sys, minray
            minray.init(num_cpus=1)

            @minray.remote
            def hello(i):
                print("hello from task", i)
                if i == 2:
                    sys.stdout.write("a last line without newline")
                    sys.stdout.flush()
                return i

            print(minray.get([hello.remote(i) for i in range(3)]))
            minray.shutdown()
        """)
        assert result.returncode == 0, result.stderr
        for i in range(3):
            assert f"hello from task {i}" in result.stdout
        assert "a last line without newline" in result.stdout


def test_after_the_node_dies_new_tasks_fail_instead_of_hanging():
    minray.init(num_cpus=1)
    try:

        @minray.remote
        def one():
            return 1

        assert minray.get(one.remote()) == 1
        processes = runtime_processes()
        api._state.node_process.kill()
        api._state.node_process.wait()
        time.sleep(0.3)
        with pytest.raises(minray.exceptions.RaySystemError, match="node process exited"):
            minray.get(one.remote(), timeout=10)
    finally:
        minray.shutdown()
    deadline = time.time() + 5
    while any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes):
        assert time.time() < deadline, "workers outlived their node"
        time.sleep(0.05)
