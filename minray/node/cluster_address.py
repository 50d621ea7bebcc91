"""Finding a running cluster: its head's address, its token, and the node on this machine.

* ``address="auto"`` means the cluster whose head was started last on this
  machine: every head records ``{"address", "session_dir"}`` in
  ``<session root>/current_cluster`` and removes it when it stops.
* The token, in order: the one passed in, ``MINRAY_AUTH_TOKEN``, the file
  ``~/.minray/auth_token`` (hex), then, for a head on this machine, its session
  directory's token file (readable by its own user only).
* A driver talks to the cluster through a node on its own machine: the node
  whose Unix socket exists here and whose address is one of this machine's
  (the head's first).
* How processes reach a node, Unix socket or TCP, is in protocol/reach.py.
"""

from __future__ import annotations

import json
import os
import socket

import psutil

from ..head.query import parse_host_port
from ..protocol.reach import LOOPBACK
from .private_dirs import check_private_dir, session_root

TOKEN_ENV = "MINRAY_AUTH_TOKEN"


def current_cluster_file() -> str:
    return os.path.join(session_root(), "current_cluster")


def user_token_file() -> str:
    return os.path.join(os.path.expanduser("~"), ".minray", "auth_token")


def record_current_cluster(address: str, session_dir: str) -> None:
    """Called by a head once it listens: ``address="auto"`` finds it from now on."""
    path = current_cluster_file()
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump({"address": address, "session_dir": session_dir}, f)
    os.replace(tmp, path)


def forget_current_cluster(session_dir: str) -> None:
    """Called by a head as it stops: remove the record if it is still this head's."""
    record = read_current_cluster()
    if record is not None and record.get("session_dir") == session_dir:
        try:
            os.unlink(current_cluster_file())
        except FileNotFoundError:
            pass


def read_current_cluster() -> dict | None:
    try:
        with open(current_cluster_file()) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def connection_target(address: str, token: bytes | str | None) -> tuple[str, bytes]:
    """``(HOST:PORT, token)`` for ``init(address=...)``; ValueError for a malformed
    address, ConnectionError when nothing says where the cluster or its token is."""
    record = None
    if address == "auto":
        record = read_current_cluster()
        if record is None:
            raise ConnectionError(
                "address 'auto': no running minray cluster was found on this machine "
                f"(no {current_cluster_file()}). Start one with `minray start --head`, or give "
                "the head's address as HOST:PORT."
            )
        address = record["address"]
    parse_host_port(address)
    if record is None:
        found = read_current_cluster()
        record = found if found and found.get("address") == address else None
    return address, _find_token(address, token, record)


def configured_token(given: bytes | str | None, private_file: bool = False) -> bytes | None:
    """The token ``given``, else ``$MINRAY_AUTH_TOKEN``, else ``~/.minray/auth_token``
    (with ``private_file``: refused if other users can read it), else None."""
    if given is not None:
        return _decode(given, "the token given")
    if os.environ.get(TOKEN_ENV):
        return _decode(os.environ[TOKEN_ENV], f"${TOKEN_ENV}")
    path = user_token_file()
    check_private_dir(os.path.dirname(path), "the directory")
    if not os.path.exists(path):
        return None
    if private_file and os.stat(path).st_mode & 0o077:
        raise ValueError(
            f"{path} can be read by other users; make it private (chmod 600 {path}) "
            "and try again: anyone holding the token can run code on the cluster"
        )
    with open(path) as f:
        return _decode(f.read().strip(), path)


def _find_token(address: str, token: bytes | str | None, record: dict | None) -> bytes:
    found = configured_token(token)
    if found is not None:
        return found
    path = user_token_file()
    if record is not None:
        try:
            with open(os.path.join(record["session_dir"], "token"), "rb") as f:
                return f.read()
        except OSError:
            pass
    raise ConnectionError(
        f"no token for the minray cluster at {address}: tried the one given "
        "(init(_token=...) or --token), "
        f"${TOKEN_ENV} and {path}. The head prints its token when it starts; pass it in "
        "one of these ways."
    )


def _decode(token: bytes | str, source: str) -> bytes:
    if isinstance(token, bytes):
        return token
    try:
        return bytes.fromhex(token.strip())
    except ValueError:
        raise ValueError(
            f"the cluster token from {source} is not hex digits; copy it as the head printed it"
        ) from None


def route_ip(host: str) -> str:
    """This machine's address on the route to ``host`` (a joining node's default)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, 9))  # UDP: picks the route, sends nothing
        return s.getsockname()[0]


def local_ips() -> set[str]:
    """The addresses of this machine (in this network namespace)."""
    out = {LOOPBACK}
    for addresses in psutil.net_if_addrs().values():
        out.update(a.address.split("%")[0] for a in addresses if a.family in _INET)
    return out


_INET = (socket.AF_INET, socket.AF_INET6)


def wildcard_names() -> set[str]:
    """The names a server bound to every address may be reached by: this machine's
    addresses and host names."""
    return {*local_ips(), socket.gethostname(), socket.getfqdn()}


def local_node(nodes: list[dict]) -> dict | None:
    """The live node of this machine (its Unix socket exists here and its address is one
    of ours), the head first, if any."""
    candidates = []
    here = local_ips()
    for node in nodes:
        socket_address = node.get("RayletSocketName", "")
        if node.get("Alive") and socket_address.startswith("unix:"):
            ip = node.get("NodeManagerAddress", LOOPBACK)
            if os.path.exists(socket_address[len("unix:") :]) and (ip in here or ip[:4] == "127."):
                candidates.append(node)
    candidates.sort(key=lambda n: not n.get("IsHead"))
    return candidates[0] if candidates else None
