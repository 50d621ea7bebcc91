"""A job's runtime_env: its working_dir and py_modules uploaded by the client over Ray's
package paths, unpacked on the head, the entrypoint's directory and its tasks' too."""

from __future__ import annotations

import dataclasses
import json
import sys
import textwrap

import pytest

from minray.job_submission import JobStatus
from minray.job_submission import client as client_module

from .test_cluster_cli_functional import env, free_port  # noqa: F401 - env: a fixture
from .test_cluster_cli_functional import minray as minray_cli
from .test_jobs_functional import client_of, head, wait_for_end  # noqa: F401 - head: a fixture

MAIN = textwrap.dedent("""
    import os
    import minray
    import helper
    import shapes
    minray.init()
    @minray.remote
    def work():
        import helper
        return helper.double(int(open("data.txt").read()))
    print("driver", helper.double(1), shapes.SIDES, os.path.exists("data.txt"))
    print("task", minray.get(work.remote()))
""")


def project(tmp_path):
    """A working dir (a script, a module of its own, a data file, a big file to leave out)
    and a py_module beside it."""
    work = tmp_path / "project"
    work.mkdir()
    (work / "main.py").write_text(MAIN)
    (work / "helper.py").write_text("def double(x):\n    return 2 * x\n")
    (work / "data.txt").write_text("21\n")
    (work / "big.bin").write_bytes(b"\0" * 3_000_000)
    module = tmp_path / "shapes"
    module.mkdir()
    (module / "__init__.py").write_text("SIDES = 4\n")
    return work, module


def test_a_jobs_working_dir_and_py_modules_reach_its_entrypoint_and_tasks(head, tmp_path):  # noqa: F811
    _, dash = head
    work, module = project(tmp_path)
    client = client_of(dash)
    job_id = client.submit_job(
        entrypoint=f"{sys.executable} main.py",
        runtime_env={"working_dir": str(work), "py_modules": [str(module)],
                     "excludes": ["*.bin"]},
    )  # fmt: skip
    assert wait_for_end(client, job_id) is JobStatus.SUCCEEDED, client.get_job_logs(job_id)
    logs = client.get_job_logs(job_id)
    assert "driver 2 4 True" in logs and "task 42" in logs
    runtime_env = client.get_job_info(job_id).runtime_env
    assert runtime_env["working_dir"].startswith("gcs://_ray_pkg_")
    name = runtime_env["working_dir"].removeprefix("gcs://")
    status, _, _ = dash.request("GET", f"/api/packages/gcs/{name}")
    assert status == 200  # uploaded once; the same directory again is not sent again
    again = client.submit_job(entrypoint="cat data.txt", runtime_env={"working_dir": str(work),
                              "excludes": ["*.bin"]})  # fmt: skip
    assert wait_for_end(client, again) is JobStatus.SUCCEEDED
    assert client.get_job_info(again).runtime_env["working_dir"] == runtime_env["working_dir"]


def test_packages_are_checked_and_a_job_needs_its_packages_uploaded(head, tmp_path, monkeypatch):  # noqa: F811
    _, dash = head
    status, _, body = dash.request("GET", "/api/packages/gcs/_ray_pkg_" + "0" * 16 + ".zip")
    assert status == 404 and b"does not exist" in body
    status, _, body = dash.request("PUT", "/api/packages/gcs/../../etc.zip", body=b"x")
    assert status in (400, 404)
    status, _, body = dash.request(
        "PUT", "/api/packages/s3/_ray_pkg_" + "0" * 16 + ".zip", body=b"x"
    )
    assert status == 400 and b"only gcs://" in body
    missing = json.dumps({"entrypoint": "true", "runtime_env": {
        "working_dir": "gcs://_ray_pkg_" + "1" * 16 + ".zip"}})  # fmt: skip
    status, _, body = dash.request("POST", "/api/jobs/", body=missing)
    assert status == 400 and b"has no runtime_env package" in body
    local = json.dumps({"entrypoint": "true", "runtime_env": {"working_dir": "/tmp"}})
    status, _, body = dash.request("POST", "/api/jobs/", body=local)
    assert status == 400 and b"uploaded first" in body
    work, _ = project(tmp_path)
    client = client_of(dash)
    small = dataclasses.replace(client_module.CONFIG, runtime_env_max_bytes=1000)
    monkeypatch.setattr(client_module, "CONFIG", small)
    with pytest.raises(ValueError, match="over the limit .*excludes"):
        client.submit_job(entrypoint="true", runtime_env={"working_dir": str(work)})


def test_the_cli_uploads_the_working_dir(env, tmp_path):  # noqa: F811
    minray_cli(env, "start", "--head", "--port", str(free_port()), "--num-cpus", "1",
               "--dashboard-port", "0")  # fmt: skip
    work, _ = project(tmp_path)
    (work / "main.py").write_text(
        "import helper\nprint('cli', helper.double(open('data.txt').read().strip()))\n"
    )
    ran = minray_cli(env, "job", "submit", "--working-dir", str(work), "--runtime-env-json",
                     '{"excludes": ["*.bin"]}', "--", sys.executable, "main.py")  # fmt: skip
    assert "cli 2121" in ran.stdout
    minray_cli(env, "stop")
