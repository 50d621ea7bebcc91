"""Starting a node process: its session directory, its token file, the process itself.

Used by ``init()`` (the embedded node), ``cluster_utils.Cluster`` and ``minray
start``. A node runs as ``python -m minray.node.main --settings JSON``; the
launcher waits until it writes ``READY`` on a pipe, or raises with the end of
its log.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time

from .. import ids
from ..config import CONFIG
from ..exceptions import RaySystemError
from ..protocol import framing
from .private_dirs import private_dir, session_root


def new_session_dir(root: str | None = None) -> str:
    """A fresh ``session-<time>-<pid>-<random>`` directory (mode 0700) under the root
    (the user's own, checked: node/private_dirs.py)."""
    root = private_dir(root, "the session root") if root else session_root()
    session_dir = os.path.join(
        root, f"session-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{os.urandom(3).hex()}"
    )
    os.mkdir(session_dir, 0o700)
    return session_dir


def write_session_files(session_dir: str, token: bytes | None = None) -> bytes:
    """Create ``logs/``, ``sockets/`` and the token file (mode 0600; a new token if none)."""
    os.mkdir(os.path.join(session_dir, "logs"), 0o700)
    os.mkdir(os.path.join(session_dir, "sockets"), 0o700)
    token = token or framing.new_token()
    fd = os.open(os.path.join(session_dir, "token"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, token)
    finally:
        os.close(fd)
    return token


def node_settings(
    resources: dict, gpu_ids: list, store_bytes: int, *, embedded: bool, parent_pid: int, **more
) -> dict:
    """The settings of a new node (a fresh id; ``more`` are other NodeSettings fields)."""
    return {
        "node_id": ids.random_unique_id().hex(),
        "resources": resources,
        "gpu_ids": gpu_ids,
        "object_store_memory": store_bytes,
        "embedded": embedded,
        "parent_pid": parent_pid,
        **more,
    }


def start_node(
    settings: dict, token: bytes | None = None, env: dict | None = None
) -> tuple[subprocess.Popen, bytes]:
    """Start a node in a new session directory (set here as ``settings["session_dir"]``),
    with this token (a new one if None) and ``env`` added to its environment; returns
    the process and the token. The directory goes again if the node does not start."""
    session_dir = settings["session_dir"] = new_session_dir()
    try:
        token = write_session_files(session_dir, token)
        return spawn_node(settings, env), token
    except BaseException:  # noqa: B036 - also Ctrl-C: leave nothing behind
        shutil.rmtree(session_dir, ignore_errors=True)
        raise


def spawn_node(settings: dict, env: dict | None = None) -> subprocess.Popen:
    """Start the node process described by ``settings`` (NodeSettings as JSON), with
    ``env`` added to this process's environment, and wait until it listens."""
    session_dir = settings["session_dir"]
    read_end, write_end = os.pipe()
    try:
        with open(os.path.join(session_dir, "logs", "node.log"), "ab") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "minray.node.main",
                    "--settings",
                    json.dumps(settings),
                    "--ready-fd",
                    str(write_end),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env={**os.environ, **env} if env else None,
                pass_fds=(write_end,),
                start_new_session=True,
            )
        os.close(write_end)
        write_end = -1
        try:
            _wait_ready(read_end, process, session_dir)
        except BaseException:
            process.kill()
            process.wait()
            raise
        return process
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def driver_code_paths() -> list[str]:
    """Where the driver finds its own modules (its script's directory, its working
    directory), so workers can import them too when they unpickle functions, as in Ray."""
    paths = [os.getcwd()]
    script = sys.argv[0] if sys.argv else ""
    if script and os.path.isfile(script):
        paths.insert(0, os.path.dirname(os.path.abspath(script)))
    return list(dict.fromkeys(paths))


def _wait_ready(read_end: int, process: subprocess.Popen, session_dir: str) -> None:
    deadline = time.monotonic() + CONFIG.node_start_timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([read_end], [], [], 0.1)
        if ready and os.read(read_end, 64).startswith(b"READY"):
            return
        if process.poll() is not None:
            break
    try:
        with open(os.path.join(session_dir, "logs", "node.log")) as f:
            log = f.read()[-3000:]
    except OSError:
        log = ""
    raise RaySystemError(f"the minray node process did not start. Its log:\n{log}")
