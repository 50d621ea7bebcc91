"""``minray up | down | exec | submit | attach CLUSTER.yaml``: a cluster on SSH hosts.

``up`` runs the head's commands on the head (setup, then ``minray start
--head``), reads the token the head made, gives it to every worker host over
ssh's standard input (into ``~/.minray/auth_token``, mode 0600), runs the
workers' commands on them at the same time, and waits until every node is alive
in the head's ``minray status``. ``down`` runs ``minray stop`` on every host.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from . import ssh
from .config import ClusterConfig

#: seconds one host's setup and start commands may take
COMMAND_TIMEOUT_S = 900
#: how a line of ``minray status`` names a live node (node id, address, state)
_NODE_LINE = re.compile(r"^\s+[0-9a-f]{12}\s+(\S+)\s+(head|alive)\b")
_TOKEN = re.compile(r"^[0-9a-f]{32,128}$")


class LaunchError(RuntimeError):
    """A host could not be set up or started; the message says which and why."""


def _env(config: ClusterConfig, host: str) -> dict[str, str]:
    return {"MINRAY_HEAD_IP": config.head_ip, "MINRAY_NODE_IP": host}


def _checked(config: ClusterConfig, host: str, role: str, text: str, timeout: float) -> str:
    out = ssh.run(config, host, text, timeout)
    if out.returncode != 0:
        detail = (out.stderr.strip() or out.stdout.strip())[-2000:]
        hint = (
            " (ssh could not reach the host or log in: check that it is up and reachable, "
            "auth.ssh_user and auth.ssh_private_key, and that "
            f"`ssh {config.ssh_user}@{host}` works without a password)"
            if out.returncode == 255
            else ""
        )
        raise LaunchError(f"{role} {host}: exit status {out.returncode}{hint}\n{detail}")
    return out.stdout


def up(config: ClusterConfig, wait_timeout: float, out=sys.stdout) -> int:
    """Start (or restart) the cluster; returns 0 once every node is alive. If it fails
    midway, the error says what is still running and how to stop it."""
    running: list[str] = []
    try:
        return _up(config, wait_timeout, out, running)
    except (LaunchError, TimeoutError) as e:
        if not running:
            raise
        raise LaunchError(
            f"{e}\nStill running: {', '.join(running)}. Fix the cause and run `minray up` "
            "again (it restarts them), or stop them with `minray down CLUSTER.yaml`."
        ) from None


def _up(config: ClusterConfig, wait_timeout: float, out, running: list[str]) -> int:
    started = time.monotonic()
    hosts = len(config.worker_ips)
    print(f"minray up: cluster {config.cluster_name!r}: head {config.head_ip}, "
          f"{hosts} worker host(s)", file=out, flush=True)  # fmt: skip
    _checked(config, config.head_ip, "head", _head_script(config), COMMAND_TIMEOUT_S)
    running.append(f"the head on {config.head_ip}")
    print(f"  head started on {config.head_ip} ({config.address})", file=out, flush=True)
    token = _read_token(config)
    if config.worker_ips:
        with ThreadPoolExecutor(max_workers=min(16, hosts)) as pool:
            jobs = {
                host: pool.submit(
                    _checked,
                    config,
                    host,
                    "worker",
                    ssh.script(config.worker_script(), _env(config, host), secret=token),
                    COMMAND_TIMEOUT_S,
                )
                for host in config.worker_ips
            }
            failed = []
            for host, job in jobs.items():
                try:
                    job.result()
                    running.append(f"a node on {host}")
                    print(f"  node started on {host}", file=out, flush=True)
                except (LaunchError, TimeoutError) as e:
                    failed.append(str(e))
            if failed:
                raise LaunchError("some worker hosts did not start:\n" + "\n".join(failed))
    alive = wait_for_nodes(config, wait_timeout)
    print(f"minray up: {len(alive)} node(s) alive after {time.monotonic() - started:.1f} s: "
          f"{', '.join(sorted(alive))}", file=out)  # fmt: skip
    user_host = f"{config.ssh_user}@{config.head_ip}"
    port = config.dashboard_port
    print(
        f"Dashboard (on the head's loopback): ssh -L {port}:127.0.0.1:{port} {user_host}\n"
        f"  then open http://127.0.0.1:{port}; its token: "
        f"minray exec CLUSTER.yaml 'minray dashboard'\n"
        f"Run a script on the cluster: minray submit CLUSTER.yaml script.py "
        f"(it calls minray.init(), which finds the cluster)\n"
        f"Stop it: minray down CLUSTER.yaml",
        file=out,
    )
    return 0


def _head_script(config: ClusterConfig) -> str:
    return ssh.script(config.head_script(), _env(config, config.head_ip))


def _read_token(config: ClusterConfig) -> str:
    text = ssh.script(["cat ~/.minray/auth_token"], {})
    token = _checked(config, config.head_ip, "head", text, 60).strip()
    if not _TOKEN.match(token):
        raise LaunchError(
            f"head {config.head_ip}: ~/.minray/auth_token does not hold a token (hex); did "
            "`minray start --head` run in head_start_minray_commands?"
        )
    return token


def alive_nodes(status_output: str) -> set[str]:
    """The addresses of the live nodes in the output of ``minray status``."""
    return {m[1] for m in map(_NODE_LINE.match, status_output.splitlines()) if m}


def wait_for_nodes(config: ClusterConfig, timeout: float) -> set[str]:
    """Poll ``minray status`` on the head until every host's node is alive."""
    wanted = set(config.hosts())
    deadline = time.monotonic() + timeout
    text = ssh.script([f"minray status --address {shlex.quote(config.address)}"], {})
    alive: set[str] = set()
    while True:
        out = ssh.run(config, config.head_ip, text, 60)
        alive = alive_nodes(out.stdout) if out.returncode == 0 else set()
        if wanted <= alive:
            return alive
        if time.monotonic() > deadline:
            missing = ", ".join(sorted(wanted - alive))
            raise LaunchError(
                f"not every node joined within {timeout:.0f} s: missing {missing}. "
                "See the node's log: minray exec CLUSTER.yaml 'ls ~/..' or ssh there and "
                "look in the session directory printed by `minray start`"
            )
        time.sleep(1.0)


def down(config: ClusterConfig, out=sys.stdout) -> int:
    """``minray stop`` on every worker host, then on the head."""
    text = ssh.script(["minray stop"], {})
    failed = 0
    for group in (config.worker_ips, (config.head_ip,)):
        if not group:
            continue
        with ThreadPoolExecutor(max_workers=min(16, len(group))) as pool:
            answers = {h: pool.submit(ssh.run, config, h, text, 120) for h in group}
        for host, answer in answers.items():
            try:
                result = answer.result()
            except TimeoutError as e:
                print(f"  {e}", file=out)
                failed += 1
                continue
            said = (result.stdout.strip() or result.stderr.strip()).splitlines()
            print(f"  {host}: {said[-1] if said else 'done'}", file=out)
            failed += result.returncode != 0
    print(f"minray down: cluster {config.cluster_name!r} stopped"
          + (f" ({failed} host(s) failed)" if failed else ""), file=out)  # fmt: skip
    return 1 if failed else 0


def exec_on_head(config: ClusterConfig, command: str) -> int:
    """Run a shell command on the head; its output is ours; returns its exit status."""
    text = ssh.script([command], {"MINRAY_ADDRESS": config.address})
    return ssh.run(config, config.head_ip, text, timeout=24 * 3600, capture=False).returncode


def submit(config: ClusterConfig, path: str, args: list[str]) -> int:
    """Copy a script to the head and run it there (with the hosts' ``python``)."""
    try:
        with open(path, "rb") as f:
            body = f.read()
    except OSError as e:
        raise LaunchError(f"cannot read {path}: {e.strerror}") from None
    name = os.path.basename(path)
    folder = f"~/minray_submit/{config.cluster_name}"
    encoded = base64.b64encode(body).decode()
    lines = [
        f"mkdir -p {folder} && cd {folder}",
        f"base64 -d > {shlex.quote(name)} <<'MINRAY_SCRIPT_END'",
        *[encoded[i : i + 76] for i in range(0, len(encoded), 76)],
        "MINRAY_SCRIPT_END",
        " ".join([config.python, shlex.quote(name), *map(shlex.quote, args)]),
    ]
    text = ssh.script(lines, {"MINRAY_ADDRESS": config.address})
    return ssh.run(config, config.head_ip, text, timeout=24 * 3600, capture=False).returncode


def attach_argv(config: ClusterConfig) -> list[str]:
    """The ssh command line of an interactive shell on the head."""
    return ssh.ssh_argv(config, config.head_ip, tty=True)
