"""Where the state API asks: this driver's node, a head by address, or a running script.

* In a process with ``minray.init()`` done: its own node (which asks the head).
* With ``address`` (``HOST:PORT`` or ``"auto"``), ``MINRAY_ADDRESS``, or a head
  started on this machine: the head, over TCP, with the cluster token found as
  ``init(address=...)`` finds it.
* Otherwise (``minray list`` in a terminal while a script runs): the newest live
  embedded session under this user's session root, over its Unix socket, with
  the session's token (readable by this user only).
"""

from __future__ import annotations

import asyncio
import os

from ... import api
from ...config import CONFIG
from ...head.query import query_head
from ...node.cluster_address import connection_target, read_current_cluster
from ...node.private_dirs import session_root
from ...protocol.connection import connect
from ...protocol.messages import Message


class RayStateApiException(Exception):
    """The state API could not get the data (Ray's name)."""


def ask(msg: Message, address: str | None, timeout: float) -> Message:
    """The reply to ``msg`` from the cluster ``address`` names (see the module doc)."""
    return ask_with_token(msg, address, timeout)[0]


def ask_with_token(msg: Message, address: str | None, timeout: float) -> tuple[Message, bytes]:
    """The reply to ``msg`` and the token of the cluster that gave it (for connections
    to its processes, as ``minray debug`` opens)."""
    if address is None and api.is_initialized():
        worker = api._auto_init()
        return worker.call_node(msg, timeout), worker.token
    address = address or os.environ.get("MINRAY_ADDRESS") or os.environ.get("RAY_ADDRESS")
    if not address and read_current_cluster() is not None:
        address = "auto"  # a head started on this machine
    if address:
        target, token = connection_target(address, None)
        return query_head(target, token, msg, timeout), token
    for session in _live_sessions():
        try:
            return asyncio.run(_ask_session(session, msg, timeout))
        except (OSError, ConnectionError, asyncio.TimeoutError):
            continue  # gone since we looked
    raise RayStateApiException(
        "no running minray cluster was found: start one (minray.init() in a script, or "
        "`minray start --head`), or pass --address HOST:PORT"
    )


def _live_sessions() -> list[str]:
    """Session directories with a node socket, newest first."""
    root = session_root()
    found = []
    for name in os.listdir(root):
        session = os.path.join(root, name)
        if name.startswith("session-") and os.path.exists(os.path.join(session, "node.sock")):
            found.append(session)
    return sorted(found, key=os.path.getmtime, reverse=True)


async def _ask_session(session: str, msg: Message, timeout: float) -> tuple[Message, bytes]:
    with open(os.path.join(session, "token"), "rb") as f:
        token = f.read()
    address = f"unix:{os.path.join(session, 'node.sock')}"
    conn = await asyncio.wait_for(
        connect(address, object(), token, CONFIG.max_frame_bytes), timeout
    )
    try:
        return await asyncio.wait_for(conn.request(msg), timeout), token
    finally:
        conn.close()
