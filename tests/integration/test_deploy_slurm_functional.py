"""``deploy/slurm/minray.sbatch`` run by a real Slurm on this machine: ``slurmctld`` and
``slurmd`` (Debian's ``slurm-wlm``) started by the test as root, with a generated
``slurm.conf`` (one node of 2 CPUs, one partition, ``auth/none`` so that no munge daemon
is needed), on free ports; ``sbatch --wait`` the script with a driver that runs tasks.
Skipped, with the reason, where Slurm is not installed or its daemons cannot start.

A one-machine Slurm has one node, so the job's cluster is the head alone: the srun step
that starts the other nodes is run by ``test_deploy_slurm_steps_functional.py`` (a stand-in srun).
"""

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

from tests.conftest import session_segments
from tests.deploy_files import ROOT, SLURM_SCRIPT, fake_minray

DAEMONS = ("/usr/sbin/slurmctld", "/usr/sbin/slurmd")


def why_not() -> str | None:
    if sys.platform != "linux" or os.geteuid() != 0:
        return "needs root on Linux to start slurmctld and slurmd"
    missing = [p for p in (*DAEMONS, shutil.which("sbatch")) if not p or not os.path.exists(p)]
    if missing:
        return "needs Slurm (apt-get install slurm-wlm): slurmctld, slurmd and sbatch"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def slurm_conf(folder: str, host: str) -> str:
    return textwrap.dedent(f"""\
        ClusterName=minraytest
        SlurmctldHost={host}(127.0.0.1)
        AuthType=auth/none
        CredType=cred/none
        SlurmctldPort={free_port()}
        SlurmdPort={free_port()}
        StateSaveLocation={folder}/state
        SlurmdSpoolDir={folder}/spool
        SlurmctldPidFile={folder}/slurmctld.pid
        SlurmdPidFile={folder}/slurmd.pid
        SlurmctldLogFile={folder}/slurmctld.log
        SlurmdLogFile={folder}/slurmd.log
        ProctrackType=proctrack/linuxproc
        TaskPlugin=task/none
        SelectType=select/cons_tres
        SelectTypeParameters=CR_CPU
        MpiDefault=none
        SlurmUser=root
        SlurmdUser=root
        ReturnToService=2
        JobAcctGatherType=jobacct_gather/none
        AccountingStorageType=accounting_storage/none
        NodeName={host} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
        PartitionName=test Nodes={host} Default=YES MaxTime=10 State=UP
    """)


@pytest.fixture
def slurm():
    """A running one-node Slurm; yields the environment its commands need."""
    reason = why_not()
    if reason:
        pytest.skip(reason)
    folder = tempfile.mkdtemp(prefix="slurm", dir="/tmp")
    os.makedirs(f"{folder}/state")
    os.makedirs(f"{folder}/spool")
    host = socket.gethostname()
    conf = os.path.join(folder, "slurm.conf")
    with open(conf, "w") as f:
        f.write(slurm_conf(folder, host))
    env = dict(os.environ, SLURM_CONF=conf)
    daemons = [
        subprocess.Popen([DAEMONS[0], "-D", "-f", conf], stdout=subprocess.DEVNULL,
                         stderr=subprocess.STDOUT, env=env),
        subprocess.Popen([DAEMONS[1], "-D", "-f", conf, "-N", host], stdout=subprocess.DEVNULL,
                         stderr=subprocess.STDOUT, env=env),
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        state = ""
        while time.monotonic() < deadline and state != "idle":
            time.sleep(0.5)
            if any(d.poll() is not None for d in daemons):
                break
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True,
                                 text=True, timeout=10)  # fmt: skip
            state = out.stdout.strip()
        if state != "idle":
            logs = "".join(open(f"{folder}/{n}.log").read()[-500:] for n in ("slurmctld", "slurmd")
                           if os.path.exists(f"{folder}/{n}.log"))  # fmt: skip
            pytest.skip(f"the Slurm daemons did not start (node state {state!r}): {logs}")
        yield env, folder
    finally:
        subprocess.run(["scancel", "--user=root"], env=env, capture_output=True, timeout=30)
        stop_job_steps(conf)
        for daemon in daemons:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
        for daemon in daemons:
            try:
                daemon.wait(15)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        shutil.rmtree(folder, ignore_errors=True)


def stop_job_steps(conf: str) -> None:
    """End the job steps of this test's Slurm, if any outlived scancel (at most 15 s)."""

    def steps():
        return [p for p in psutil.process_iter(["name", "environ"]) if p.info["name"] ==
                "slurmstepd" and (p.info["environ"] or {}).get("SLURM_CONF") == conf]  # fmt: skip

    deadline = time.monotonic() + 15
    while steps() and time.monotonic() < deadline:
        time.sleep(0.2)
    for step in steps():
        step.kill()


def job_processes() -> list[psutil.Process]:
    """Processes of a minray.sbatch job: their session root is a job folder."""
    out = []
    for p in psutil.process_iter(["environ", "name"]):
        root = (p.info["environ"] or {}).get("MINRAY_SESSION_ROOT", "")
        if "/minray-job" in root or p.info["name"] == "slurmstepd":
            out.append(p)
    return out


@pytest.mark.timeout(180)
def test_sbatch_starts_a_cluster_runs_the_script_against_it_and_leaves_nothing(slurm, tmp_path):
    env, folder = slurm
    fake_minray(str(tmp_path))  # `minray` on the job's PATH: this checkout's
    driver = tmp_path / "driver.py"
    driver.write_text(
        textwrap.dedent("""
        import os, minray
        minray.init()  # MINRAY_ADDRESS, set by minray.sbatch
        @minray.remote
        def square(x):
            return x * x
        print("sum", sum(minray.get([square.remote(i) for i in range(10)])),
              "cpus", minray.cluster_resources()["CPU"],
              "token", len(os.environ["MINRAY_AUTH_TOKEN"]))
    """)
    )
    output = tmp_path / "job.out"
    port, dashboard = free_port(), free_port()
    env = {**env, "PATH": f"{tmp_path}:{env['PATH']}", "PYTHONPATH": ROOT,
           "MINRAY_HEAD_IP": "127.0.0.1", "MINRAY_PORT": str(port),
           "MINRAY_DASHBOARD_PORT": str(dashboard)}  # fmt: skip
    job = subprocess.run(
        ["sbatch", "--wait", "--nodes=1", "--cpus-per-task=2", f"--output={output}",
         SLURM_SCRIPT, sys.executable, str(driver)],
        env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    log = output.read_text() if output.exists() else ""
    job_id = job.stdout.split()[-1] if job.stdout else "?"
    assert job.returncode == 0, job.stdout + job.stderr + log
    assert f"cluster at 127.0.0.1:{port} with 1 node(s)" in log, log
    assert "sum 285 cpus 2.0 token 64" in log, log
    assert "Stopped 1 minray node(s)" in log, log
    deadline = time.monotonic() + 15
    while job_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not job_processes(), f"left running after the job: {job_processes()}"
    assert not [p for p in os.listdir("/tmp") if p.startswith(f"minray-job{job_id}.")], "left"
    session_dir = re.search(r"its logs: (\S+)/logs", log).group(1)  # printed by minray stop
    assert not session_segments(session_dir), "shared-memory segments left behind"


@pytest.mark.timeout(60)
def test_sbatch_without_a_command_says_how_to_use_it(slurm, tmp_path):
    env, _ = slurm
    output = tmp_path / "job.out"
    job = subprocess.run(["sbatch", "--wait", "--nodes=1", f"--output={output}", SLURM_SCRIPT],
                         env=env, cwd=str(tmp_path), capture_output=True, text=True,
                         timeout=50)  # fmt: skip
    assert job.returncode != 0
    assert "usage: sbatch [--nodes=N] minray.sbatch COMMAND" in output.read_text()
