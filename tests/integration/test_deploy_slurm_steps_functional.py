"""``deploy/slurm/minray.sbatch`` with three nodes in its allocation, which a one-machine
Slurm cannot give: the script runs under bash as Slurm would run it, with the job's
variables set, a stand-in ``scontrol`` that lists three hosts and a stand-in ``srun``
that runs the step's command once per task, here (as srun runs it once per node). So the
script's own logic runs for real: the head, the srun step of nodes joining it, the
user's command across the three nodes, and everything stopped at the end.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from tests.conftest import session_segments
from tests.deploy_files import ROOT, SLURM_SCRIPT, fake_minray
from tests.integration.test_cluster_cli_functional import free_port

FAKE_SRUN = """#!/bin/bash
# stand-in srun: the command once per task, here
tasks=1
while [[ $1 == -* ]]; do
    case $1 in --ntasks=*) tasks=${1#*=};; esac
    echo "srun option $1" >> "$SRUN_LOG"
    shift
done
for i in $(seq "$tasks"); do SLURM_PROCID=$((i - 1)) "$@" & done
wait
"""
FAKE_SCONTROL = """#!/bin/bash
[ "$1 $2 $3" = "show hostnames n[1-3]" ] && printf 'n1\\nn2\\nn3\\n'
"""


def job_processes(job_id: str) -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["environ"])
        if f"/minray-job{job_id}." in (p.info["environ"] or {}).get("MINRAY_SESSION_ROOT", "")
    ]


@pytest.mark.timeout(150)
def test_the_script_starts_a_node_per_other_host_runs_the_command_and_stops_all(tmp_path):
    fake_minray(str(tmp_path))
    for name, text in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL)):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    driver = tmp_path / "driver.py"
    driver.write_text(
        textwrap.dedent("""
        import time, minray
        minray.init()
        @minray.remote(num_cpus=1)
        def where():
            time.sleep(0.3)  # one CPU a node: six at once cover the three nodes
            return minray.get_runtime_context().get_node_id()
        print("alive", sum(n["Alive"] for n in minray.nodes()),
              "used", len(set(minray.get([where.remote() for _ in range(6)]))))
    """)
    )
    job_id = str(900000 + os.getpid() % 100000)
    port = free_port()
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "PYTHONPATH": ROOT,
           "SLURM_JOB_ID": job_id, "SLURM_JOB_NODELIST": "n[1-3]", "SLURM_CPUS_ON_NODE": "1",
           "SRUN_LOG": str(tmp_path / "srun.log"), "MINRAY_HEAD_IP": "127.0.0.1",
           "MINRAY_PORT": str(port), "MINRAY_DASHBOARD_PORT": str(free_port())}  # fmt: skip
    env.pop("MINRAY_SESSION_ROOT", None)
    env.pop("MINRAY_AUTH_TOKEN", None)
    try:
        job = subprocess.run(["bash", SLURM_SCRIPT, sys.executable, str(driver)], env=env,
                             cwd=str(tmp_path), capture_output=True, text=True,
                             timeout=120)  # fmt: skip
        log = job.stdout + job.stderr
        assert job.returncode == 0, log
        assert f"cluster at 127.0.0.1:{port} with 3 node(s)" in log, log
        assert "alive 3 used 3" in log, log
        options = (tmp_path / "srun.log").read_text()
        assert "--ntasks=2" in options and "--exclude=n1" in options, options
        assert not re.search(r"[0-9a-f]{64}", log + options), "a token was shown"
        deadline = time.monotonic() + 20
        while job_processes(job_id) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not job_processes(job_id), "nodes left running after the job"
        assert not [d for d in os.listdir("/tmp") if d.startswith(f"minray-job{job_id}.")]
        for session_dir in re.findall(r"its logs: (\S+)/logs", log):
            assert not session_segments(session_dir), "shared-memory segments left behind"
    finally:
        for p in job_processes(job_id):
            p.kill()
