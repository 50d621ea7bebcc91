"""``minray dashboard``: where the dashboards of this machine's clusters are, and the
token to log in with.

Every node that serves a dashboard writes its ``HOST:PORT`` to its session
directory (``dashboard_url``), next to the cluster's token (``token``, mode 0600).
This command reads them for every session of this user that still answers: a
cluster started with ``minray start --head`` and the embedded cluster of a
running ``init(include_dashboard=True)`` alike.
"""

from __future__ import annotations

import os
import socket
import sys

from .head.dashboard_address import dashboard_url
from .head.query import parse_host_port
from .node.private_dirs import session_root


def add_command(commands) -> None:
    commands.add_parser(
        "dashboard", help="print the URL of each running dashboard and its login token"
    )


def run(args) -> int:
    found = running_dashboards(session_root())
    if not found:
        print(
            "No minray dashboard is running on this machine for this user. Start one with "
            "`minray start --head`, or minray.init(include_dashboard=True).",
            file=sys.stderr,
        )
        return 1
    for session_dir, where, token in found:
        print(f"Dashboard: http://{where}   (session {session_dir})")
        print(f"  token: {token}")
        print(f"  log in at http://{where}/login with the token, or send the header")
        print("  'Authorization: Bearer <token>' (curl -H, Prometheus' bearer_token).")
    return 0


def running_dashboards(root: str) -> list[tuple[str, str, str]]:
    """``(session dir, HOST:PORT, hex token)`` of each session under ``root`` whose
    dashboard accepts connections, newest first."""
    out = []
    for name in sorted(os.listdir(root), reverse=True):
        session_dir = os.path.join(root, name)
        where = dashboard_url(session_dir)
        try:
            with open(os.path.join(session_dir, "token"), "rb") as f:
                token = f.read()
        except OSError:
            continue
        if where is not None and _answers(where):
            out.append((session_dir, where, token.hex()))
    return out


def _answers(where: str) -> bool:
    try:
        host, port = parse_host_port(where)
    except ValueError:
        return False
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False
