"""Where the job client sends its requests, and the token it sends.

The address, in order:

* ``http(s)://HOST:PORT``: that dashboard;
* ``HOST:PORT`` or ``"auto"``: the dashboard of the head with that address (or of the
  head started last on this machine), read from its session directory; a
  ``HOST:PORT`` that is no head's on this machine is taken as a dashboard's;
* none: ``MINRAY_ADDRESS`` as above, else the newest dashboard running on this
  machine for this user (as ``minray dashboard`` lists them).

The token, as ``init(address=...)`` finds it: ``MINRAY_AUTH_TOKEN``, then
``~/.minray/auth_token``, then the token file of the session that serves the
dashboard, when it is on this machine and this user's.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from ..dashboard_cli import running_dashboards
from ..head.dashboard_address import dashboard_url
from ..head.query import parse_host_port
from ..node.cluster_address import configured_token, read_current_cluster
from ..node.private_dirs import session_root

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def dashboard_address(address: str | None) -> tuple[str, str | None]:
    """``(base URL, session directory or None)`` of the dashboard to ask; ValueError for
    a malformed address, ConnectionError when no dashboard can be found."""
    given = address or os.environ.get("MINRAY_ADDRESS") or None
    if given and "://" in given:
        parts = urlsplit(given)
        if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port:
            raise ValueError(
                f"address {given!r}: give the dashboard as http://HOST:PORT (e.g. "
                "http://127.0.0.1:8265, as `minray dashboard` prints it)"
            )
        url = f"{parts.scheme}://{parts.netloc}"
        return url, _session_serving(parts.hostname, parts.port)
    if given in (None, "auto"):
        record = read_current_cluster()
        if record is not None:
            return _of_session(record["session_dir"], record["address"])
        found = running_dashboards(session_root())
        if found:
            return f"http://{found[0][1]}", found[0][0]
        raise ConnectionError(
            "no minray dashboard is running on this machine for this user: start a cluster "
            "with `minray start --head`, or give the dashboard's address "
            "(--address http://HOST:8265, or the MINRAY_ADDRESS environment variable)"
        )
    host, port = parse_host_port(given)
    session = _session_of_head(host, port)
    if session is not None:
        return _of_session(session, given)
    return f"http://{given}", _session_serving(host, port)


def find_token(session_dir: str | None) -> bytes | None:
    """The cluster token to send (see the module doc), or None when none is known."""
    token = configured_token(None)
    if token is not None or session_dir is None:
        return token
    try:
        with open(os.path.join(session_dir, "token"), "rb") as f:
            return f.read()
    except OSError:
        return None


def _of_session(session_dir: str, head: str) -> tuple[str, str]:
    where = dashboard_url(session_dir)
    if where is None:
        raise ConnectionError(
            f"the minray head at {head} serves no dashboard, so no job API (it was started "
            "with --dashboard-port -1?); restart it with a dashboard port"
        )
    return f"http://{where}", session_dir


def _sessions() -> list[str]:
    root = session_root()
    return [os.path.join(root, name) for name in sorted(os.listdir(root), reverse=True)]


def _session_of_head(host: str, port: int) -> str | None:
    """The session directory of the head listening for drivers at ``host:port`` here."""
    for session in _sessions():
        try:
            with open(os.path.join(session, "head_address")) as f:
                theirs = parse_host_port(f.read().strip())
        except (OSError, ValueError):
            continue
        if _same_place(theirs, (host, port)):
            return session
    return None


def _session_serving(host: str, port: int) -> str | None:
    """The session directory whose dashboard listens at ``host:port`` here."""
    for session in _sessions():
        where = dashboard_url(session)
        try:
            theirs = parse_host_port(where) if where else None
        except ValueError:
            continue
        if theirs is not None and _same_place(theirs, (host, port)):
            return session
    return None


def _same_place(a: tuple[str, int], b: tuple[str, int]) -> bool:
    if a[1] != b[1]:
        return False
    return a[0] == b[0] or (a[0] in _LOOPBACK and b[0] in _LOOPBACK)
