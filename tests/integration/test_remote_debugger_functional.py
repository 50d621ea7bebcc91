"""Remote breakpoints: a script's task pauses at breakpoint(); ``minray debug`` attaches.

Each test runs a small script in a subprocess (its own embedded cluster, under
this run's session root) and ``minray debug`` in another, with stdin piped, as
a student would in two terminals. The script waits for a line on its stdin
before it shuts down, so the cluster can be inspected after the task resumed.
Every wait has a deadline; every process started is gone at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import psutil
import pytest

from minray.debugger.cli import breakpoints
from minray.protocol import blocking
from minray.protocol.framing import ProtocolError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEADLINE_S = 30.0
ENV = {k: v for k, v in os.environ.items() if k not in ("MINRAY_ADDRESS", "RAY_ADDRESS")}
ENV["PYTHONPATH"] = ROOT
ENV.pop("PYTHONBREAKPOINT", None)

HEADER = """\
import sys
import minray

minray.init(num_cpus=1)
"""
FOOTER = """
print("ready to stop", flush=True)
sys.stdin.readline()
minray.shutdown()
"""


class Output:
    """A pipe read on a thread, so the test can wait for some text with a deadline."""

    def __init__(self, pipe) -> None:
        self.text = ""
        self._pipe = pipe
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while data := os.read(self._pipe.fileno(), 65536):
            self.text += data.decode(errors="replace")

    def close(self) -> None:
        """After the process ended: the rest of its output, then the pipe closed."""
        self._thread.join(timeout=10)
        self._pipe.close()

    def wait_for(self, text: str, timeout: float = DEADLINE_S) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text:
            assert time.monotonic() < deadline, f"{text!r} did not come; got:\n{self.text}"
            time.sleep(0.05)


class Script:
    """A driver script in a subprocess (stdin, stdout and stderr piped)."""

    def __init__(self, body: str, directory: str, options: dict) -> None:
        """``options``: ``extra_env``; ``compat`` (run it with python -m minray.compat);
        ``whole`` (the body is the whole script: no HEADER and FOOTER)."""
        self.path = os.path.join(directory, "paused_script.py")
        body = textwrap.dedent(body)
        with open(self.path, "w") as f:
            f.write(body if options.get("whole") else HEADER + body + FOOTER)
        extra_env, compat = options.get("extra_env"), options.get("compat")
        runner = ["-m", "minray.compat"] if compat else []
        self.proc = subprocess.Popen(
            [sys.executable, *runner, self.path], cwd=directory, env={**ENV, **(extra_env or {})},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        self.out = Output(self.proc.stdout)
        self.err = Output(self.proc.stderr)

    def line_of(self, text: str) -> int:
        with open(self.path) as f:
            return next(i for i, line in enumerate(f, 1) if text in line)

    def finish(self) -> None:
        """Let it shut down; then nothing it started may be left running."""
        started = _descendants(self.proc.pid)
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write(b"\n")
                self.proc.stdin.close()
            self.proc.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        if not self.proc.stdin.closed:  # (it had ended already)
            self.proc.stdin.close()
        self.out.close()
        self.err.close()
        gone, alive = psutil.wait_procs(started, timeout=10)
        for p in alive:  # (reported below; not left behind)
            p.kill()
        assert not alive, f"processes outlived the script: {alive}"


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.fixture
def run_script():
    directory = tempfile.mkdtemp(prefix="minray-debug-test-")
    scripts: list[Script] = []

    def start(body: str, **options) -> Script:
        scripts.append(Script(body, directory, options))
        return scripts[-1]

    yield start
    for script in scripts:
        script.finish()
    for name in os.listdir(directory):
        os.unlink(os.path.join(directory, name))
    os.rmdir(directory)


def minray_debug(*args: str, stdin: str = "", env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "minray.cli", "debug", *args], input=stdin, cwd=ROOT,
        env={**ENV, **(env or {})},
        capture_output=True, text=True, timeout=DEADLINE_S,
    )  # fmt: skip


class Attached:
    """``minray debug N`` (or, with no index, ``minray debug`` and its prompt) in a
    subprocess, talked to line by line."""

    def __init__(self, index: int | None, *args: str, env: dict | None = None) -> None:
        chosen = [] if index is None else [str(index)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "minray.cli", "debug", *chosen, *args], cwd=ROOT,
            env={**ENV, **(env or {})},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.out = Output(self.proc.stdout)
        self.err = Output(self.proc.stderr)

    def send(self, line: str) -> None:
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def close(self, timeout: float = DEADLINE_S) -> int:
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.out.close()
            self.err.close()


TASK_WITH_BREAKPOINT = """
@minray.remote(max_retries=0)
def scale(x):
    some_local = x * 7
    breakpoint()
    return some_local + 1

try:
    print("result", minray.get(scale.remote(6)), flush=True)
except Exception as e:
    print("failed", type(e).__name__, flush=True)
"""


def test_minray_debug_lists_a_paused_task_attaches_and_continue_finishes_it(run_script):
    script = run_script(TASK_WITH_BREAKPOINT)
    listing = minray_debug("--wait", "20")  # (stdin empty: lists, then quits at the prompt)
    assert listing.returncode == 0, listing.stderr
    assert "Active breakpoints:" in listing.stdout
    row = listing.stdout.splitlines()[2]
    line = script.line_of("return some_local + 1")
    assert row.split()[0] == "0" and "scale" in row and f"paused_script.py:{line}" in row
    assert "result" not in script.out.text  # still paused

    session = Attached(0)
    session.send('p ("local", some_local)')
    session.out.wait_for("('local', 42)")
    session.send("c")
    assert session.close() == 0, session.err.text
    script.out.wait_for("result 43")
    assert "the session ended" in session.err.text

    # the entry went with the session, while the cluster still runs
    after = minray_debug()
    assert after.returncode == 0, after.stderr
    assert "No active breakpoints" in after.stdout


def test_stepping_out_of_the_task_ends_the_session_and_the_task_finishes(run_script):
    script = run_script(TASK_WITH_BREAKPOINT)
    assert minray_debug("--wait", "20").returncode == 0
    session = Attached(0)
    session.send("n")
    session.out.wait_for("--Return--")
    session.send("n")  # out of scale(): into minray's frames, which pdb does not step through
    session.out.wait_for("the task goes on")
    script.out.wait_for("result 43")
    assert session.close() == 0, session.err.text


def test_a_client_without_the_cluster_token_is_refused_and_the_task_stays_paused(run_script):
    script = run_script(TASK_WITH_BREAKPOINT)
    assert minray_debug("--wait", "20").returncode == 0
    for bad in (minray_debug("7"), minray_debug(stdin="x\n")):
        assert bad.returncode == 2 and "give an index from 0 to 0" in bad.stderr, bad.stderr
    (found,), token = breakpoints(None)
    host, port = found[1].address.rsplit(":", 1)
    with pytest.raises((ProtocolError, ConnectionError)):
        blocking.dial(f"tcp:{host}:{port}", b"not the token" * 3, 10)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(b"c\nc\n")  # no handshake: read as a frame header, never as commands
        assert _read_to_end(raw)[:4] == b"\x00\x00\x00\x24"  # the hello frame, then closed
    time.sleep(0.5)
    assert "result" not in script.out.text
    assert "refused a client" in script.out.text + script.err.text
    assert len(breakpoints(None)[0]) == 1

    session = Attached(0)
    session.send("c")
    assert session.close() == 0, session.err.text
    script.out.wait_for("result 43")


def _read_to_end(sock: socket.socket) -> bytes:
    got = b""
    try:
        while data := sock.recv(4096):  # (the socket's timeout bounds each wait)
            got += data
    except ConnectionResetError:
        pass
    return got


def test_cancel_of_a_paused_task_cancels_it_and_removes_its_entry(run_script):
    script = run_script(
        """
        import os

        @minray.remote(max_retries=0)
        def scale(x):
            breakpoint()
            return x

        @minray.remote
        def worker_pid():
            return os.getpid()

        ref = scale.remote(6)
        sys.stdin.readline()  # the test says when
        minray.cancel(ref)
        try:
            minray.get(ref, timeout=20)
        except minray.exceptions.TaskCancelledError:
            print("cancelled", flush=True)
        print("next task ran in", minray.get(worker_pid.remote(), timeout=20), flush=True)
        """
    )
    assert "scale" in minray_debug("--wait", "20").stdout
    (found,), _ = breakpoints(None)
    script.proc.stdin.write(b"\n")
    script.proc.stdin.flush()
    script.out.wait_for("cancelled")
    script.out.wait_for(f"next task ran in {found[1].pid}")  # the worker lived on
    assert "No active breakpoints" in minray_debug().stdout


def test_without_a_breakpoint_minray_debug_says_so_and_exits_0(run_script):
    script = run_script("print('idle', flush=True)\n")
    script.out.wait_for("ready to stop")
    done = minray_debug()
    assert done.returncode == 0, done.stderr
    assert "No active breakpoints" in done.stdout


def test_an_actor_method_pauses_and_a_second_attach_finds_it_after_a_detach(run_script):
    script = run_script(
        """
        @minray.remote
        class Counter:
            def __init__(self):
                self.count = 10

            def add(self, n):
                total = self.count + n
                breakpoint()
                self.count = total
                return total

        counter = Counter.remote()
        print("result", minray.get(counter.add.remote(5)), flush=True)
        """
    )
    listing = minray_debug("--wait", "20")
    assert "Counter.add" in listing.stdout, listing.stdout + listing.stderr
    first = Attached(0)
    first.send('p ("total", total)')
    first.out.wait_for("('total', 15)")
    assert first.close() == 0  # end of input: detached, the call stays paused
    assert "still paused" in first.err.text
    assert "result" not in script.out.text

    second = Attached(None)  # picked at the prompt this time
    second.send("0")
    second.send('p ("count", self.count)')
    second.out.wait_for("('count', 10)")
    second.send("c")
    assert second.close() == 0, second.err.text
    script.out.wait_for("result 15")


def test_post_mortem_pauses_a_failing_task_before_its_error_goes_back(run_script):
    script = run_script(
        """
        @minray.remote(max_retries=0)
        def divide(x):
            denominator = x - 3
            return x / denominator

        try:
            minray.get(divide.remote(3))
        except ZeroDivisionError as e:
            print("failed", type(e).__name__, flush=True)
        """,
        extra_env={"RAY_DEBUG_POST_MORTEM": "1"},
    )
    listing = minray_debug("--wait", "20")
    assert "divide (post-mortem)" in listing.stdout, listing.stdout + listing.stderr
    session = Attached(0)
    session.send('p ("denominator", denominator)')
    session.out.wait_for("('denominator', 0)")
    session.send("c")
    assert session.close() == 0, session.err.text
    script.out.wait_for("failed RayTaskError(ZeroDivisionError)")


def test_a_worker_killed_while_paused_leaves_no_entry(run_script):
    script = run_script(TASK_WITH_BREAKPOINT)
    assert minray_debug("--wait", "20").returncode == 0
    (found,), _ = breakpoints(None)
    os.kill(found[1].pid, signal.SIGKILL)  # our script's worker
    script.out.wait_for("failed WorkerCrashedError")
    deadline = time.monotonic() + 10
    while breakpoints(None)[0]:
        assert time.monotonic() < deadline, "the dead worker's entry was not removed"
        time.sleep(0.1)


def test_breakpoint_in_the_driver_is_the_local_pdb(run_script):
    script = run_script(
        """
        driver_local = 5 * 5
        breakpoint()
        print("after", driver_local, flush=True)
        """
    )
    script.proc.stdin.write(b'p ("in the driver", driver_local)\nc\n')
    script.proc.stdin.flush()
    script.out.wait_for("('in the driver', 25)")
    script.out.wait_for("after 25")
    assert "No active breakpoints" in minray_debug().stdout


def test_ray_util_pdb_set_trace_in_a_ray_program_under_minray_compat(run_script):
    script = run_script(
        """
        import ray

        @ray.remote
        def ray_task():
            ray_local = "from ray"
            ray.util.pdb.set_trace()
            return ray_local.upper()

        print("result", ray.get(ray_task.remote()), flush=True)
        """,
        compat=True,
    )
    listing = minray_debug("--wait", "20")
    assert "ray_task" in listing.stdout, listing.stdout + listing.stderr
    session = Attached(0)
    session.send("p ray_local")
    session.out.wait_for("'from ray'")
    session.send("c")
    assert session.close() == 0, session.err.text
    script.out.wait_for("result FROM RAY")


def test_a_task_on_another_node_is_debugged_through_the_heads_address(run_script, monkeypatch):
    script = run_script(
        """
        import sys
        import minray
        from minray.cluster_utils import Cluster

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        member = cluster.add_node(num_cpus=1)
        cluster.connect()
        print("head", cluster.address, cluster.token.hex(), member.node_id, flush=True)

        @minray.remote(max_retries=0)
        def elsewhere():
            where = minray.get_runtime_context().get_node_id()
            breakpoint()
            return where

        print("result", minray.get(elsewhere.remote()) == member.node_id, flush=True)
        print("ready to stop", flush=True)
        sys.stdin.readline()
        cluster.shutdown()
        """,
        whole=True,
    )
    script.out.wait_for("head ")
    line = next(t for t in script.out.text.splitlines() if t.startswith("head "))
    _, address, token, member_id = line.split()
    wrong = minray_debug("--address", address, env={"MINRAY_AUTH_TOKEN": "00" * 32})
    assert wrong.returncode == 1 and "token" in wrong.stderr, wrong.stderr

    with_token = {"MINRAY_AUTH_TOKEN": token}
    listing = minray_debug("--address", address, "--wait", "20", env=with_token)
    assert "elsewhere" in listing.stdout, listing.stdout + listing.stderr
    monkeypatch.setenv("MINRAY_AUTH_TOKEN", token)
    (found,), _ = breakpoints(address)
    assert found[1].node_id == member_id  # registered by the member node's worker

    session = Attached(0, "--address", address, env=with_token)
    session.send("c")
    assert session.close() == 0, session.err.text
    script.out.wait_for("result True")
    assert "No active breakpoints" in minray_debug("--address", address, env=with_token).stdout
