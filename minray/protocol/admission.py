"""Admission: what a listener allows a connection that has not proved it holds the token.

A peer that has not finished the handshake (framing.py) is a stranger. A
:class:`Gate`, one per listener, keeps two limits on strangers, so that a
silent or trickling client (slow-loris) cannot hold the listener:

* the **handshake deadline**: a connection has ``handshake_timeout_s`` to finish
  the handshake, or it is dropped (Connection arms the timer);
* the **cap**: at most ``max_handshaking`` connections may be in their handshake
  at once; past it a new connection is closed as soon as it is accepted, and a
  log line (at most one per :data:`LOG_EVERY_S`) names the listener and the
  setting that raises the cap.

Authenticated connections are not counted: they keep working whatever
strangers do. The gate holds counts only; it does no I/O.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from ..config import CONFIG

logger = logging.getLogger(__name__)

#: seconds between two log lines about refused connections of one listener
LOG_EVERY_S = 10.0


@dataclass(frozen=True)
class Limits:
    """The limits of one listener (by default the process's settings)."""

    handshake_timeout_s: float = CONFIG.handshake_timeout_s
    max_handshaking: int = CONFIG.max_handshaking_connections


class Gate:
    """Counts one listener's connections still in their handshake; refuses past the cap."""

    def __init__(self, where: str, limits: Limits | None = None):
        self.where = where
        self.limits = limits or Limits()
        self.handshaking = 0  #: connections accepted whose handshake is not done
        self.refused = 0  #: connections closed at once because of the cap, in all
        self._unlogged = 0  #: refused since the last log line
        self._logged_at = -LOG_EVERY_S

    def admit(self) -> bool:
        """A connection was accepted: count it, or say False (close it) past the cap."""
        if self.handshaking < self.limits.max_handshaking:
            self.handshaking += 1
            return True
        self.refused += 1
        self._unlogged += 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_S:
            logger.warning(
                "listener %s: %d connections are already in their handshake, the cap; "
                "closed %d new connection(s) at once. Authenticated connections are not "
                "affected. If these are real clients, raise max_handshaking_connections "
                "(environment variable MINRAY_MAX_HANDSHAKING_CONNECTIONS).",
                self.where, self.handshaking, self._unlogged,
            )  # fmt: skip
            self._logged_at, self._unlogged = now, 0
        return False

    def leave(self) -> None:
        """An admitted connection finished its handshake, or closed before it did."""
        self.handshaking -= 1


class Refused(asyncio.Protocol):
    """The protocol of a connection refused at the cap: closed as soon as it is made."""

    def connection_made(self, transport) -> None:
        transport.abort()
