"""Two "hosts" on one machine: two Linux network namespaces joined by a veth pair, each
with its own address, home directory and session root (so their records stay apart,
as on two machines). Needs root and iproute2; ``why_not()`` says why not, else None.

Used by the two-host tests (the CLI across hosts, ``minray up`` over SSH). Everything
made here (namespaces, the veth pair, the temporary folder) is removed by
:func:`two_hosts`; the caller stops the processes it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUBNET = "10.251.{}.{}"


def why_not() -> str | None:
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs iproute2 (the `ip` command)"
    return None


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


class Host:
    """One network namespace with its own home and session root."""

    def __init__(self, name: str, address: str, base: str):
        self.name, self.address = name, address
        self.dir = os.path.join(base, name)
        self.home = os.path.join(self.dir, "home")
        self.root = os.path.join(self.dir, "s")  # short: Unix socket paths are limited
        os.makedirs(self.home)
        self.extra_env: dict = {}  #: e.g. the TLS settings of this host

    def env(self) -> dict:
        env = dict(os.environ, HOME=self.home, MINRAY_SESSION_ROOT=self.root)
        env.pop("MINRAY_AUTH_TOKEN", None)
        env.pop("MINRAY_ADDRESS", None)
        env.update(self.session_env())
        env.update(self.extra_env)
        return env

    def session_env(self) -> dict:
        """What every minray process of this host needs set (also over ssh)."""
        return {
            "HOME": self.home,
            "MINRAY_SESSION_ROOT": self.root,
            "MINRAY_HEARTBEAT_INTERVAL_S": "0.2",
            "MINRAY_NODE_DEATH_TIMEOUT_S": "3",
            "PYTHONPATH": ROOT,
        }

    def run(self, *args: str, timeout: float = 90, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *args],
            env=kw.pop("env", None) or self.env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kw,
        )

    def minray(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        out = self.run(sys.executable, "-m", "minray.cli", *args)
        if check:
            assert out.returncode == 0, out.stdout + out.stderr
        return out

    def started_pids(self) -> list[int]:
        folder = os.path.join(self.root, "started")
        pids = []
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            with open(os.path.join(folder, name)) as f:
                pids.append(json.load(f)["pid"])
        return pids


@contextlib.contextmanager
def two_hosts(prefix: str, subnet: int = 0):
    """Yield hosts ``a`` and ``b``, joined; remove their namespaces and files after."""
    tag = f"{os.getpid() % 100000}"
    base = tempfile.mkdtemp(prefix=f"mr{prefix}", dir="/tmp")
    a = Host(f"{prefix}a{tag}", SUBNET.format(subnet, 1), base)
    b = Host(f"{prefix}b{tag}", SUBNET.format(subnet, 2), base)
    veth_a, veth_b = f"{prefix}va{tag}", f"{prefix}vb{tag}"
    created = []
    try:
        for host in (a, b):
            sh("ip", "netns", "add", host.name)
            created.append(host.name)
            sh("ip", "netns", "exec", host.name, "ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", veth_a, "type", "veth", "peer", "name", veth_b)
        for host, veth in ((a, veth_a), (b, veth_b)):
            sh("ip", "link", "set", veth, "netns", host.name)
            ns = ("ip", "netns", "exec", host.name)
            sh(*ns, "ip", "addr", "add", f"{host.address}/24", "dev", veth)
            sh(*ns, "ip", "link", "set", veth, "up")
    except subprocess.CalledProcessError as e:
        for name in created:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"could not set up network namespaces: {e.stderr.decode().strip()}")
    try:
        yield a, b
    finally:
        for name in created:  # the veth pair goes with its namespaces
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
