"""The session root on a shared machine: per user, private, never shadowing the package.

The second-user test needs root (CI runs as root) to create that user; elsewhere it
skips with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest

import minray
from minray.config import CONFIG

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYSTEM_PYTHON = "/usr/bin/python3"


def test_a_script_run_from_the_session_roots_parent_imports_minray_itself(cluster):
    """With the root named ``minray`` in the temp directory, ``import minray`` there found
    the root (an empty namespace package) and ``minray.init`` was missing."""
    parent = os.path.dirname(CONFIG.session_root)
    assert os.path.isdir(CONFIG.session_root)  # the running cluster made it
    script = os.path.join(parent, f"minray_from_tmp_{uuid.uuid4().hex[:8]}.py")
    with open(script, "w") as f:
        f.write(
            "import minray\n"
            "minray.init(num_cpus=1)\n"
            "print('sum', minray.get(minray.put(20)) + 22)\n"
            "minray.shutdown()\n"
        )
    try:
        out = subprocess.run(
            [sys.executable, script], cwd=parent, capture_output=True, text=True, timeout=60
        )
    finally:
        os.unlink(script)
    assert "sum 42" in out.stdout, out.stderr


def test_the_session_root_is_private_to_its_user(cluster):
    info = os.stat(CONFIG.session_root)
    assert info.st_uid == os.getuid() and info.st_mode & 0o777 == 0o700
    session = minray.get_runtime_context()._worker.session_dir
    assert os.path.dirname(session) == CONFIG.session_root


# --- a second user on the same machine -------------------------------------------------------


@pytest.fixture
def other_user():
    """A Unix user made for this test (and removed after it)."""
    if os.getuid() != 0:
        pytest.skip("needs root to create a second Unix user (CI runs as root)")
    if shutil.which("useradd") is None or shutil.which("runuser") is None:
        pytest.skip("needs useradd and runuser to act as a second user")
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"needs {SYSTEM_PYTHON}, a Python any user may run")
    name = f"mr{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)


def as_user(user: str, code: str) -> subprocess.CompletedProcess:
    """Run Python ``code`` as ``user`` (the system Python: the project venv may be private)."""
    return subprocess.run(
        ["runuser", "-u", user, "--", SYSTEM_PYTHON, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )


def test_another_user_can_read_nothing_connect_nowhere_and_plant_nothing(cluster, other_user):
    worker = minray.get_runtime_context()._worker
    session = worker.session_dir
    probe = f"""
import os, socket
results = []
for path in [{os.path.join(session, "token")!r}, {os.path.join(session, "logs")!r}]:
    try:
        open(path, "rb").read() if path.endswith("token") else os.listdir(path)
        results.append("read " + path)
    except PermissionError:
        results.append("denied")
s = socket.socket(socket.AF_UNIX)
try:
    s.connect({os.path.join(session, "node.sock")!r})
    results.append("connected")
except PermissionError:
    results.append("denied")
try:
    open(os.path.join({CONFIG.session_root!r}, "current_cluster.planted"), "w")
    results.append("planted")
except PermissionError:
    results.append("denied")
print(results)
"""
    out = as_user(other_user, probe)
    assert out.stdout.strip() == str(["denied"] * 4), out.stdout + out.stderr


def test_a_root_made_by_another_user_first_is_refused_with_the_reason(other_user, monkeypatch):
    planted = os.path.join(tempfile.gettempdir(), f"minray-planted-{uuid.uuid4().hex[:8]}")
    made = as_user(other_user, f"import os; os.mkdir({planted!r}); os.chmod({planted!r}, 0o777)")
    assert made.returncode == 0, made.stderr
    try:
        monkeypatch.setenv("MINRAY_SESSION_ROOT", planted)
        code = "import minray; minray.init(num_cpus=1)"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
        )
        assert out.returncode != 0
        assert "will not use the session root" in out.stderr and other_user in out.stderr
        assert not os.listdir(planted)  # nothing of ours went there
    finally:
        shutil.rmtree(planted, ignore_errors=True)
