"""Jobs: a head (cluster_utils.Cluster) runs submitted entrypoints, reports their status and
output through Ray's job REST API, and stops them, their whole process group included."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
import threading
import time
import urllib.request

import psutil
import pytest

import minray
from minray.cluster_utils import Cluster
from minray.job_submission import JobStatus, JobSubmissionClient, JobType

from .cluster_helpers import wait_until
from .dashboard_helpers import Dashboard, dashboard  # noqa: F401 - a fixture

TASK_SCRIPT = textwrap.dedent("""
    import minray
    minray.init()
    @minray.remote
    def square(x):
        return x * x
    print("squares", minray.get([square.remote(i) for i in range(4)]))
""")

ENV_SCRIPT = textwrap.dedent("""
    import os
    import minray
    minray.init()
    @minray.remote
    def read(name):
        return os.environ.get(name)
    print("task=" + str(minray.get(read.remote("MY_VAR"))))
""")


@pytest.fixture
def head(monkeypatch):
    """A 1-CPU head serving its dashboard on a free port; its jobs get 1 s from SIGTERM to
    SIGKILL. Yields ``(cluster, dashboard)``; checks that nothing of it is left running."""
    monkeypatch.setenv("MINRAY_JOB_STOP_WAIT_S", "1")
    cluster = Cluster()
    try:
        node = cluster.add_node(num_cpus=1, include_dashboard=True, dashboard_port=0)
        with open(os.path.join(node.session_dir, "dashboard_url")) as f:
            host, port = f.read().strip().rsplit(":", 1)
        yield cluster, Dashboard(host, int(port), cluster.token.hex(), node.session_dir)
    finally:
        cluster.shutdown()


def dashboard_of(node) -> str:
    with open(os.path.join(node.session_dir, "dashboard_url")) as f:
        return f"http://{f.read().strip()}"


def client_of(dash: Dashboard) -> JobSubmissionClient:
    return JobSubmissionClient(dash.url, headers={"Authorization": f"Bearer {dash.token}"})


def wait_for_end(client: JobSubmissionClient, job_id: str, timeout: float = 30) -> JobStatus:
    assert wait_until(lambda: client.get_job_status(job_id).is_terminal(), timeout)
    return client.get_job_status(job_id)


def python(script_path) -> str:
    return f"{sys.executable} {script_path}"


def test_a_submitted_script_runs_minray_tasks_and_its_output_is_in_the_logs(head, tmp_path):
    cluster, dash = head
    script = tmp_path / "squares.py"
    script.write_text(TASK_SCRIPT)
    client = client_of(dash)
    job_id = client.submit_job(entrypoint=python(script), metadata={"owner": "me"})
    assert job_id.startswith("raysubmit_")

    async def tail() -> str:
        return "".join([text async for text in client.tail_job_logs(job_id)])

    followed = asyncio.run(tail())  # ends when the job has
    assert "squares [0, 1, 4, 9]" in followed
    info = client.get_job_info(job_id)
    assert info.status is JobStatus.SUCCEEDED and info.driver_exit_code == 0
    assert info.metadata == {"owner": "me"} and info.end_time >= info.start_time > 0
    assert "squares [0, 1, 4, 9]" in client.get_job_logs(job_id)
    assert info.job_id is not None and info.driver_info is not None  # its driver connected
    (listed,) = [j for j in client.list_jobs() if j.submission_id == job_id]
    assert listed.type is JobType.SUBMISSION and listed.job_id == info.job_id


def test_a_failing_script_is_failed_with_its_exit_code_and_last_output(head, tmp_path):
    _, dash = head
    script = tmp_path / "fails.py"
    script.write_text("import sys\nprint('about to fail', flush=True)\nsys.exit(7)\n")
    client = client_of(dash)
    job_id = client.submit_job(entrypoint=python(script), submission_id="fails")
    assert wait_for_end(client, job_id) is JobStatus.FAILED
    info = client.get_job_info("fails")
    assert info.driver_exit_code == 7 and info.error_type == "JOB_ENTRYPOINT_COMMAND_ERROR"
    assert "failed with exit code 7" in info.message and "about to fail" in info.message
    missing = client.submit_job(entrypoint="/no/such/program", submission_id="missing")
    assert wait_for_end(client, missing) is JobStatus.FAILED
    assert "exit code 127" in client.get_job_info(missing).message


def test_stop_ends_the_whole_process_group_even_what_ignores_sigterm(head, tmp_path):
    _, dash = head
    pids = tmp_path / "pids"
    # the shell starts a child that ignores SIGTERM, then waits; both write their pids
    entrypoint = f"sh -c 'trap \"\" TERM; echo $$ >> {pids}; sleep 60' & echo $$ >> {pids}; wait"
    client = client_of(dash)
    job_id = client.submit_job(entrypoint=entrypoint, submission_id="sleeper")
    assert wait_until(lambda: pids.exists() and len(pids.read_text().split()) == 2)
    group = [int(p) for p in pids.read_text().split()]
    assert client.get_job_status(job_id) is JobStatus.RUNNING
    assert client.stop_job(job_id) is True
    assert wait_for_end(client, job_id) is JobStatus.STOPPED
    assert client.get_job_info(job_id).message == "Job was intentionally stopped."
    assert wait_until(lambda: not any(psutil.pid_exists(p) for p in group), 10), group
    assert client.stop_job(job_id) is False  # already stopped
    stubborn = client.submit_job(
        entrypoint="trap '' TERM; echo ready; sleep 60"
    )  # SIGKILL after 1 s
    assert wait_until(lambda: "ready" in client.get_job_logs(stubborn))  # (its trap is set)
    client.stop_job(stubborn)
    assert wait_for_end(client, stubborn, timeout=10) is JobStatus.STOPPED
    assert client.get_job_info(stubborn).driver_exit_code == -9


def test_list_and_delete_and_the_errors_of_each_call(head):
    _, dash = head
    client = client_of(dash)
    done = client.submit_job(entrypoint="echo done", submission_id="done")
    running = client.submit_job(entrypoint="sleep 60", submission_id="running")
    assert wait_for_end(client, done) is JobStatus.SUCCEEDED
    assert {j.submission_id for j in client.list_jobs()} >= {"done", "running"}
    with pytest.raises(RuntimeError, match="status code 400: .*non-terminal state"):
        client.delete_job(running)
    with pytest.raises(RuntimeError, match="status code 400: Job with submission_id done"):
        client.submit_job(entrypoint="true", submission_id="done")
    assert client.delete_job(done) is True
    assert "done" not in {j.submission_id for j in client.list_jobs()}
    for call in (client.get_job_info, client.get_job_logs, client.stop_job, client.delete_job):
        with pytest.raises(RuntimeError, match="status code 404: Job done does not exist"):
            call("done")
    with pytest.raises(RuntimeError, match="submission_id 'a/b' is not allowed"):
        client.submit_job(entrypoint="true", submission_id="a/b")
    client.stop_job(running)
    assert wait_for_end(client, running) is JobStatus.STOPPED


def test_the_job_api_needs_the_token_and_refuses_other_sites(head):
    _, dash = head
    body = json.dumps({"entrypoint": "echo hi"})
    status, _, _ = dash.request("POST", "/api/jobs/", body=body, token=False)
    assert status == 401
    status, _, _ = dash.request("GET", "/api/jobs/", token=False)
    assert status == 401
    wrong = {"Authorization": "Bearer " + "0" * 64}
    status, _, _ = dash.request("POST", "/api/jobs/", body=body, token=False, headers=wrong)
    assert status == 403
    foreign = {"Origin": "http://evil.example"}
    status, _, _ = dash.request("POST", "/api/jobs/", body=body, headers=foreign)
    assert status == 403
    status, _, answer = dash.request("POST", "/api/jobs/", body="{not json")
    assert status == 400 and b"not JSON" in answer
    assert dash.json("/api/jobs/") == []  # nothing was started
    with pytest.raises(RuntimeError, match="status code 401"):
        JobSubmissionClient(dash.url, headers={"Authorization": "Basic x"})
    version = dash.json("/api/version")
    assert version["version"] == "4" and version["ray_version"].startswith("2.")


def test_the_client_finds_the_dashboard_and_token_from_the_heads_address(
    head, monkeypatch, tmp_path
):
    cluster, dash = head
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.minray/auth_token: the session's token
    monkeypatch.delenv("MINRAY_AUTH_TOKEN", raising=False)
    client = JobSubmissionClient(cluster.address)  # HOST:PORT of the head, not the dashboard
    assert client.get_address() == dash.url
    script = tmp_path / "env.py"
    script.write_text(ENV_SCRIPT)
    job_id = client.submit_job(
        entrypoint=f"echo shell=$MY_VAR; {python(script)}",
        runtime_env={"env_vars": {"MY_VAR": "42"}},
    )
    assert wait_for_end(client, job_id) is JobStatus.SUCCEEDED, client.get_job_logs(job_id)
    logs = client.get_job_logs(job_id)
    assert "shell=42" in logs and "task=42" in logs  # the job's tasks have them too
    with pytest.raises(ConnectionError, match="http://127.0.0.1:1"):
        JobSubmissionClient("http://127.0.0.1:1")


def test_jobs_still_running_are_stopped_when_the_head_stops(monkeypatch, tmp_path):
    monkeypatch.setenv("MINRAY_JOB_STOP_WAIT_S", "1")
    pid_file = tmp_path / "pid"
    cluster = Cluster()
    try:
        node = cluster.add_node(num_cpus=1, include_dashboard=True, dashboard_port=0)
        client = JobSubmissionClient(
            dashboard_of(node), headers={"Authorization": f"Bearer {cluster.token.hex()}"}
        )
        job_id = client.submit_job(entrypoint=f"echo $$ > {pid_file}; exec sleep 60")
        assert wait_until(lambda: pid_file.exists() and pid_file.read_text().strip())
        pid = int(pid_file.read_text())
        assert psutil.pid_exists(pid)
        followed: list[str] = []
        follower = threading.Thread(target=follow, args=(client, job_id, followed), daemon=True)
        follower.start()  # a client following the log must not hold the head up
        time.sleep(0.5)
    finally:
        started = time.monotonic()
        cluster.shutdown()
    assert time.monotonic() - started < 8  # (a node that hangs is killed after 10 s)
    assert wait_until(lambda: not psutil.pid_exists(pid), 10)
    follower.join(10)
    assert not follower.is_alive() and followed[-1] == "ended"
    assert "the head is stopping" in followed[-2]  # not taken for the job's end


def follow(client: JobSubmissionClient, job_id: str, out: list) -> None:
    async def run() -> None:
        try:
            async for text in client.tail_job_logs(job_id):
                out.append(text)
        except (RuntimeError, ConnectionError) as e:
            out.append(repr(e))
        out.append("ended")

    asyncio.run(run())


def test_an_embedded_cluster_serves_no_jobs_and_says_why(dashboard):  # noqa: F811
    status, _, body = dashboard.request("POST", "/api/jobs/", body='{"entrypoint": "true"}')
    assert status == 503 and b"minray start --head" in body
    request = urllib.request.Request(
        f"{dashboard.url}/api/jobs/", headers={"Authorization": f"Bearer {dashboard.token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        (driver,) = json.loads(response.read())
    assert driver["type"] == "DRIVER" and driver["status"] == "RUNNING"
    assert driver["job_id"] == minray.get_runtime_context().get_job_id()


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_head_killed_outright_takes_its_jobs_process_with_it(tmp_path):
    pid_file = tmp_path / "pid"
    cluster = Cluster()
    node = cluster.add_node(num_cpus=1, include_dashboard=True, dashboard_port=0)
    others: list[psutil.Process] = []
    try:
        client = JobSubmissionClient(
            dashboard_of(node), headers={"Authorization": f"Bearer {cluster.token.hex()}"}
        )
        client.submit_job(entrypoint=f"echo $$ > {pid_file}; exec sleep 60")
        assert wait_until(lambda: pid_file.exists() and pid_file.read_text().strip())
        pid = int(pid_file.read_text())
        others = [p for p in psutil.Process(node.process.pid).children(recursive=True)
                  if p.pid != pid]  # fmt: skip
        node.process.kill()  # no time to stop anything
        node.process.wait()
        assert wait_until(lambda: gone(pid), 10)
    finally:
        for process in others:  # the zygote and workers, should they outlive their node
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        cluster.shutdown()
