"""``minray up`` on two SSH hosts: two network namespaces, each running its own sshd
(OpenSSH, started by this test on the namespace's address), with its own home and
session root. The launcher runs in the first; it starts the head there and a node
on the second over ssh, hands the token over ssh's standard input, waits for both
nodes; then ``exec``, ``submit`` and ``down``.

Needs root, iproute2 and openssh-server (``.ci/run`` installs it); elsewhere it
skips with the reason. Every process, namespace and file is this test's own.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap

import psutil
import pytest

from .netns_hosts import Host, two_hosts, why_not

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _why_not() -> str | None:
    if why_not() is not None:
        return why_not()
    if not os.path.exists(SSHD) or shutil.which("ssh") is None or not shutil.which("ssh-keygen"):
        return "needs openssh-server and openssh-client (apt install openssh-server)"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")


def _keygen(path: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True, timeout=30
    )


def _start_sshd(host: Host, authorized: str) -> subprocess.Popen:
    """An sshd of this host's namespace whose sessions see the host's home and root."""
    key = os.path.join(host.dir, "host_key")
    _keygen(key)
    env = {**host.session_env(), "PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin"}
    config = os.path.join(host.dir, "sshd_config")
    with open(config, "w") as f:
        f.write(
            textwrap.dedent(f"""\
            ListenAddress {host.address}:22
            HostKey {key}
            AuthorizedKeysFile {authorized}
            PidFile {host.dir}/sshd.pid
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            LogLevel ERROR
            SetEnv {" ".join(f"{k}={v}" for k, v in env.items())}
            """)
        )
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    log = open(os.path.join(host.dir, "sshd.log"), "w")
    process = subprocess.Popen(
        ["ip", "netns", "exec", host.name, SSHD, "-D", "-e", "-f", config],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    return process


def _minray_processes(homes: set[str]) -> list[psutil.Process]:
    """The processes whose HOME is one of these hosts' (ours, wherever they run)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("HOME") in homes and "minray" in " ".join(
                process.cmdline() + [process.name()]
            ):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


SCRIPT = textwrap.dedent("""
    import sys
    import time
    import minray

    minray.init()  # MINRAY_ADDRESS, set by minray submit, names the cluster
    nodes = {n["NodeManagerAddress"] for n in minray.nodes() if n["Alive"]}
    factor = int(sys.argv[1])

    @minray.remote(scheduling_strategy="SPREAD")
    def where(i):
        time.sleep(0.05)  # (tasks that take a moment: a no-op burst may end on one node
        # before a lease on the other is granted)
        return minray.get_runtime_context().get_node_id(), i * factor

    results = minray.get([where.remote(i) for i in range(20)])
    print("nodes", sorted(nodes), "used", len({node for node, _ in results}),
          "sum", sum(v for _, v in results))
""")


def _cluster_file(path, a: Host, workers: list[str], key: str) -> str:
    path.write_text(
        textwrap.dedent(f"""\
        cluster_name: lab
        provider:
          type: ssh
          head_ip: {a.address}
          worker_ips: [{", ".join(workers)}]
        auth:
          ssh_user: root
          ssh_private_key: {key}
          ssh_options: [UserKnownHostsFile={a.dir}/known_hosts]
        python: {sys.executable}
        setup_commands:
          - echo set up on $MINRAY_NODE_IP > ~/setup_ran
        """)
    )
    return str(path)


def _ssh_hosts(a: Host, b: Host) -> tuple[str, list[subprocess.Popen]]:
    """A client key both hosts' sshd accept, and the two sshd processes."""
    client_key = os.path.join(a.dir, "client_key")
    _keygen(client_key)
    authorized = os.path.join(a.dir, "authorized_keys")
    shutil.copy(client_key + ".pub", authorized)
    return client_key, [_start_sshd(host, authorized) for host in (a, b)]


def _stop(daemons: list[subprocess.Popen]) -> None:
    for daemon in daemons:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)


def test_minray_up_starts_a_cluster_on_two_ssh_hosts_and_down_stops_it(tmp_path):
    with two_hosts("up", subnet=1) as (a, b):
        client_key, daemons = _ssh_hosts(a, b)
        cluster = _cluster_file(tmp_path / "cluster.yaml", a, [b.address], client_key)
        script = tmp_path / "spread.py"
        script.write_text(SCRIPT)
        launcher = Host(a.name, a.address, str(tmp_path / "launcher"))  # its own home
        try:
            up = launcher.minray("up", cluster, "--wait-timeout", "60", check=False)
            assert up.returncode == 0, up.stdout + up.stderr
            print(up.stdout)
            assert "2 node(s) alive" in up.stdout
            assert f"ssh -L 8265:127.0.0.1:8265 root@{a.address}" in up.stdout

            for host in (a, b):  # setup ran, and the token is the head's, private
                with open(os.path.join(host.home, "setup_ran")) as f:
                    assert f.read().strip() == f"set up on {host.address}"
            token_file = os.path.join(b.home, ".minray", "auth_token")
            assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
            with open(token_file) as f, open(os.path.join(a.home, ".minray", "auth_token")) as g:
                assert f.read().strip() == g.read().strip()

            status = launcher.minray("exec", cluster, "minray status")
            assert "2 node(s) alive" in status.stdout, status.stdout + status.stderr

            run = launcher.minray("submit", cluster, str(script), "3", check=False)
            assert run.returncode == 0, run.stdout + run.stderr
            assert f"nodes ['{a.address}', '{b.address}'] used 2 sum 570" in run.stdout

            failing = launcher.minray("exec", cluster, "exit 7", check=False)
            assert failing.returncode == 7
        finally:
            down = launcher.minray("down", cluster, check=False)
            _stop(daemons)
        assert down.returncode == 0, down.stdout + down.stderr
        assert "stopped" in down.stdout
        left = _minray_processes({a.home, b.home})
        assert not left, f"minray processes left running after down: {left}"


def test_minray_up_names_an_unreachable_host_and_says_what_still_runs(tmp_path):
    with two_hosts("uq", subnet=2) as (a, b):
        client_key, daemons = _ssh_hosts(a, b)
        nobody = a.address.rsplit(".", 1)[0] + ".9"  # on the hosts' network, not answering
        cluster = _cluster_file(tmp_path / "cluster.yaml", a, [b.address, nobody], client_key)
        launcher = Host(a.name, a.address, str(tmp_path / "launcher"))
        try:
            up = launcher.minray("up", cluster, "--wait-timeout", "30", check=False)
            assert up.returncode == 1
            assert f"worker {nobody}: exit status 255 (ssh could not reach the host" in up.stderr
            assert f"Still running: the head on {a.address}, a node on {b.address}" in up.stderr
            assert "minray down CLUSTER.yaml" in up.stderr
        finally:
            down = launcher.minray("down", cluster, check=False)
            _stop(daemons)
        assert f"{nobody}" in down.stdout and down.returncode == 1  # it says which failed
        left = _minray_processes({a.home, b.home})
        assert not left, f"minray processes left running after down: {left}"
