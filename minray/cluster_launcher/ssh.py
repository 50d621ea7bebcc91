"""Scripts run on the cluster's hosts with the system's ``ssh`` client.

The system client, not a Python SSH library: it is what users already have set
up (``~/.ssh/config``, their agent, known hosts, jump hosts all apply), and it
adds no dependency. A script goes to ``bash -s`` on the host through ssh's
standard input, so what it carries (the cluster token, above all) never
appears on a command line that ``ps`` would show, here or there.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterable

from .config import ClusterConfig

#: seconds ssh may take to connect before a host counts as unreachable
CONNECT_TIMEOUT_S = 10


def ssh_argv(config: ClusterConfig, host: str, tty: bool = False) -> list[str]:
    """The ssh command line that reaches ``host`` as the configured user."""
    argv = [
        "ssh",
        "-o", "BatchMode=yes",  # never prompt: a missing key is an error, not a hang
        "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}",
        "-o", "StrictHostKeyChecking=accept-new",  # a new host is learnt, a changed one refused
    ]  # fmt: skip
    if config.ssh_private_key:
        argv += ["-i", config.ssh_private_key, "-o", "IdentitiesOnly=yes"]
    if config.ssh_port:
        argv += ["-p", str(config.ssh_port)]
    for option in config.ssh_options:
        argv += ["-o", option]
    if tty:
        argv.append("-t")
    argv.append(f"{config.ssh_user}@{host}")
    return argv


def script(lines: Iterable[str], env: dict[str, str], secret: str | None = None) -> str:
    """A bash script: stop at the first failing command, ``env`` exported, and ``secret``
    (the token) written to ``~/.minray/auth_token`` (mode 0600) first, if given."""
    out = ["set -e"]
    out += [f"export {name}={shlex.quote(value)}" for name, value in sorted(env.items())]
    if secret is not None:
        out += [
            "(umask 077 && mkdir -p ~/.minray && chmod 700 ~/.minray",
            " cat > ~/.minray/auth_token.new <<'MINRAY_TOKEN_END'",
            secret,
            "MINRAY_TOKEN_END",
            " mv ~/.minray/auth_token.new ~/.minray/auth_token)",
        ]
    out += list(lines)
    return "\n".join(out) + "\n"


def run(
    config: ClusterConfig, host: str, text: str, timeout: float, capture: bool = True
) -> subprocess.CompletedProcess:
    """Run the script ``text`` on ``host``; raises TimeoutError naming the host."""
    argv = ssh_argv(config, host) + ["bash", "-s"]
    try:
        return subprocess.run(
            argv,
            input=text,
            text=True,
            capture_output=capture,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{host}: no answer over ssh within {timeout:.0f} s") from None
    except FileNotFoundError:
        raise RuntimeError(
            "minray up needs the `ssh` command (OpenSSH client): install it "
            "(Debian/Ubuntu: apt install openssh-client)"
        ) from None
