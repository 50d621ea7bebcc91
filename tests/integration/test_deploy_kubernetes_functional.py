"""The pods of ``deploy/kubernetes/`` run as processes on this machine: each container's
command, probes and init container run by ``sh`` with the environment the kubelet would
give them (tests/deploy_files.py), each "pod" with its own address on loopback, home and
session root. Only what a cluster would provide is swapped: the Service's name for the
head's address, and free ports for 6380 and 8265 (other tests share this machine).

No Kubernetes here: what this does not cover (the image, the Service's routing, the
kubelet running the probes) is in docs/deploy.md, with the commands to try it on kind.
"""

from __future__ import annotations

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

from tests.deploy_files import ROOT, deployment, fake_minray, pod_environment

TOKEN = "cd" * 32
HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"
LIMITS = {"cpu": "1", "memory": "256Mi"}  # small pods: this machine is shared


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class Pods:
    """The "pods" of one test: their folders, processes, and the swaps named above."""

    def __init__(self, bin_dir: str):
        self.bin_dir = bin_dir
        self.node_port, self.dashboard_port = free_port(HEAD_IP), free_port("0.0.0.0")
        self.roots: list[str] = []
        self.processes: list[subprocess.Popen] = []

    def localize(self, command: list[str]) -> list[str]:
        swaps = {"minray-head:6380": f"{HEAD_IP}:{self.node_port}", ":6380": f":{self.node_port}",
                 "--port=6380": f"--port={self.node_port}",
                 "--dashboard-port=8265": f"--dashboard-port={self.dashboard_port}"}  # fmt: skip
        out = []
        for part in command:
            for old, new in swaps.items():
                part = part.replace(old, new)
            out.append(part)
        return out

    def environment(self, container: dict, pod_ip: str) -> dict:
        root = tempfile.mkdtemp(prefix="mrk", dir="/tmp")  # short: Unix socket paths
        self.roots.append(root)
        os.makedirs(os.path.join(root, "home"))
        env = {k: self.localize([v])[0] for k, v in pod_environment(container, pod_ip, TOKEN,
               LIMITS).items()}  # fmt: skip
        return {**env, "PATH": f"{self.bin_dir}:/usr/bin:/bin", "HOME": f"{root}/home",
                "MINRAY_SESSION_ROOT": root, "MINRAY_HEARTBEAT_INTERVAL_S": "0.2"}  # fmt: skip

    def start(self, container: dict, env: dict) -> subprocess.Popen:
        command = self.localize(container["command"] + container["args"])
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        self.processes.append(process)
        return process

    def run(self, command: list[str], env: dict) -> subprocess.CompletedProcess:
        return subprocess.run(self.localize(command), env=env, capture_output=True, text=True,
                              timeout=60)  # fmt: skip

    def leftovers(self) -> list[psutil.Process]:
        out = []
        for p in psutil.process_iter(["environ"]):
            if (p.info["environ"] or {}).get("MINRAY_SESSION_ROOT") in self.roots:
                out.append(p)
        return out

    def close(self) -> list[psutil.Process]:
        """Kill whatever is still running; return what was (a clean test leaves nothing)."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stdout.close()
        deadline = time.monotonic() + 5
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.1)
        left = self.leftovers()
        for p in left:
            p.kill()
        for root in self.roots:
            shutil.rmtree(root, ignore_errors=True)
        return left


@pytest.fixture
def pods(tmp_path):
    fake_minray(str(tmp_path))
    pods = Pods(str(tmp_path))
    yield pods
    left = pods.close()
    assert not left, f"processes left running: {left}"


def wait_until(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
        time.sleep(0.3)


def probes_pass(pods: Pods, container: dict, env: dict) -> bool:
    return all(
        pods.run(container[probe]["exec"]["command"], env).returncode == 0
        for probe in ("readinessProbe", "livenessProbe")
    )


def segments() -> set[str]:
    return {name for name in os.listdir("/dev/shm") if name.startswith("minray_")}


@pytest.mark.timeout(150)
def test_the_head_and_worker_pods_form_a_cluster_that_runs_a_driver_and_stop_on_sigterm(pods):
    before = segments()
    head_spec = deployment("minray-head")["spec"]["template"]["spec"]
    worker_spec = deployment("minray-worker")["spec"]["template"]["spec"]
    (head_container,) = head_spec["containers"]
    (wait_container,) = worker_spec["initContainers"]
    (worker_container,) = worker_spec["containers"]

    head_env = pods.environment(head_container, HEAD_IP)
    head = pods.start(head_container, head_env)
    assert "Started the minray head" in head.stdout.readline()
    wait_until(lambda: probes_pass(pods, head_container, head_env), 30, "the head's probes")

    worker_env = pods.environment(worker_container, WORKER_IP)
    waited = pods.run(wait_container["command"] + wait_container["args"], worker_env)
    assert waited.returncode == 0, waited.stderr
    not_yet = pods.run(worker_container["readinessProbe"]["exec"]["command"], worker_env)
    assert not_yet.returncode == 1  # the head does not list this pod's node yet
    worker = pods.start(worker_container, worker_env)
    wait_until(lambda: probes_pass(pods, worker_container, worker_env), 30, "the worker ready")

    driver = textwrap.dedent("""
        import minray
        minray.init()  # MINRAY_ADDRESS, set in the pod, names the head
        import time
        @minray.remote(num_cpus=1)
        def where():
            time.sleep(0.2)  # one CPU a pod: the second task at once goes to the other pod
            return minray.get_runtime_context().get_node_id()
        nodes = set(minray.get([where.remote() for _ in range(6)]))
        print("nodes", len(minray.nodes()), "used", len(nodes), minray.cluster_resources()["CPU"])
    """)  # as `kubectl exec -i deploy/minray-head -- python - < script.py`
    ran = subprocess.run([sys.executable, "-c", driver], env={**head_env, "PYTHONPATH": ROOT},
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "nodes 2 used 2 2.0" in ran.stdout, ran.stdout + ran.stderr

    worker.send_signal(signal.SIGTERM)  # the pod deleted, or the Deployment scaled down
    assert worker.wait(30) == 0
    wait_until(lambda: not probes_pass(pods, worker_container, worker_env), 15, "worker gone")
    head.send_signal(signal.SIGTERM)
    assert head.wait(30) == 0
    assert pods.run(head_container["livenessProbe"]["exec"]["command"], head_env).returncode
    wait_until(lambda: not pods.leftovers(), 10, "every process of the pods exiting")
    assert segments() <= before


def test_the_files_the_dockerfile_copies_are_enough_to_build_minray_and_its_command(tmp_path):
    """What ``pip install /src`` in the Dockerfile needs, offline: setuptools reads the
    project's metadata and finds its packages from only the files the COPY lines name
    (all that the Dockerfile's .dockerignore lets through)."""
    with open(os.path.join(ROOT, "deploy", "kubernetes", "Dockerfile")) as f:
        copies = [line.split()[1:-1] for line in f if line.startswith("COPY ")]
    with open(os.path.join(ROOT, "deploy", "kubernetes", "Dockerfile.dockerignore")) as f:
        allowed = {line[1:].rstrip("/\n") for line in f if line.startswith("!")}
    sources = [source for sources in copies for source in sources]
    assert set(sources) == allowed == {"pyproject.toml", "README.md", "minray"}
    src = tmp_path / "src"
    src.mkdir()
    for source in sources:
        copy = shutil.copytree if os.path.isdir(os.path.join(ROOT, source)) else shutil.copy
        copy(os.path.join(ROOT, source), src / source)
    (tmp_path / "info").mkdir()
    built = subprocess.run(  # egg_info: the metadata step of a build, no wheel package needed
        [sys.executable, "-c", "from setuptools import setup; setup()", "egg_info",
         "--egg-base", str(tmp_path / "info")],
        cwd=str(src), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (info,) = (tmp_path / "info").iterdir()
    assert "minray = minray.cli:main" in (info / "entry_points.txt").read_text()
    files = (info / "SOURCES.txt").read_text().split()
    assert "minray/cli.py" in files and "minray/node/daemon.py" in files
    with open(os.path.join(ROOT, "README.md")) as f:
        assert f.readline() in (info / "PKG-INFO").read_text()  # the README, its description
