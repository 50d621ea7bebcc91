"""``minray job ...`` as a user types it, against a head started with ``minray start --head``:
the dashboard and the token are found on their own."""

from __future__ import annotations

import sys

from .test_cluster_cli_functional import env, free_port  # noqa: F401 - env: a fixture
from .test_cluster_cli_functional import minray as minray_cli

SCRIPT = """
import minray
minray.init()
@minray.remote
def add(a, b):
    return a + b
print("sum", minray.get(add.remote(40, 2)))
"""


def test_submit_follow_status_list_logs_stop_and_delete_from_the_command_line(env, tmp_path):  # noqa: F811
    minray_cli(env, "start", "--head", "--port", str(free_port()), "--num-cpus", "1",
               "--dashboard-port", "0")  # fmt: skip
    script = tmp_path / "add.py"
    script.write_text(SCRIPT)

    ran = minray_cli(
        env, "job", "submit", "--submission-id", "adder", "--", sys.executable, str(script)
    )
    assert "Job 'adder' submitted successfully" in ran.stdout
    assert "sum 42" in ran.stdout and "Job 'adder' succeeded" in ran.stdout
    assert "SUCCEEDED" in minray_cli(env, "job", "list").stdout
    assert "succeeded" in minray_cli(env, "job", "status", "adder").stdout
    assert "sum 42" in minray_cli(env, "job", "logs", "adder").stdout

    failed = minray_cli(env, "job", "submit", "--", "sh", "-c", "echo broken; exit 3", check=False)
    assert failed.returncode == 1 and "failed with exit code 3" in failed.stdout

    minray_cli(env, "job", "submit", "--no-wait", "--submission-id", "nap", "--", "sleep", "60")
    stopped = minray_cli(env, "job", "stop", "nap")
    assert "Job 'nap' was stopped" in stopped.stdout
    assert "deleted" in minray_cli(env, "job", "delete", "nap").stdout

    unknown = minray_cli(env, "job", "status", "nap", check=False)
    assert unknown.returncode == 1 and "Job nap does not exist" in unknown.stderr
    again = minray_cli(env, "job", "submit", "--submission-id", "adder", "--", "true", check=False)
    assert again.returncode == 1 and "already exists" in again.stderr
    empty = minray_cli(env, "job", "submit", check=False)
    assert empty.returncode == 1 and "give the command to run after --" in empty.stderr
    nowhere = minray_cli(env, "job", "list", "--address", "http://127.0.0.1:1", check=False)
    assert nowhere.returncode == 1 and "http://127.0.0.1:1" in nowhere.stderr
    minray_cli(env, "stop")


def test_without_a_cluster_the_job_commands_say_how_to_start_one(env):  # noqa: F811
    out = minray_cli(env, "job", "list", check=False)
    assert out.returncode == 1 and "minray start --head" in out.stderr
