"""Admission: what a listener allows a connection that has not proved it holds the token.

A peer that has not finished the handshake (framing.py) is a stranger. A
:class:`Gate`, one per listener, keeps two limits on strangers, so that a
silent or trickling client (slow-loris) cannot hold the listener:

* the **handshake deadline**: a connection has ``handshake_timeout_s`` to finish
  the handshake, or it is dropped (Connection arms the timer);
* the **cap**: at most ``max_handshaking`` connections may be in their handshake
  at once; a new connection past it closes the *oldest* of them, with a log line
  (at most one per :data:`LOG_EVERY_S`) naming the listener and the setting that
  raises the cap. Dropping the oldest, not the newest, lets a real client in even
  while strangers keep the cap full: its handshake takes milliseconds, so to shut
  it out an attacker must open ``max_handshaking`` connections within that time.

Authenticated connections are not counted: they keep working whatever
strangers do. The gate does no I/O of its own: it asks a dropped connection to
abort.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

from ..config import CONFIG, env_setting

logger = logging.getLogger(__name__)

#: seconds between two log lines of one listener about one kind of dropped connection
LOG_EVERY_S = 10.0


@dataclass(frozen=True)
class Limits:
    """The limits of one listener (by default the process's settings)."""

    handshake_timeout_s: float = CONFIG.handshake_timeout_s
    max_handshaking: int = CONFIG.max_handshaking_connections


class Stranger(Protocol):
    """What the gate needs of a connection in its handshake."""

    def abort(self, reason: str, log: bool = True) -> None: ...


class Gate:
    """One listener's connections still in their handshake; drops the oldest past the cap."""

    def __init__(self, where: str, limits: Limits | None = None):
        self.where = where
        self.limits = limits or Limits()
        #: connections accepted whose handshake is not done, oldest first
        self.handshaking: dict[Stranger, None] = {}
        self.dropped = 0  #: connections closed because of the cap, in all
        self.timed_out = 0  #: connections closed at the handshake deadline, in all
        #: per kind of drop: when it was last logged, and how many since
        self._logged_at = dict.fromkeys(("cap", "deadline", "failed"), -LOG_EVERY_S)
        self._unlogged = dict.fromkeys(("cap", "deadline", "failed"), 0)

    def admit(self, conn: Stranger) -> None:
        """A connection was accepted: count it; past the cap, close the oldest stranger."""
        self.handshaking[conn] = None
        while len(self.handshaking) > self.limits.max_handshaking:
            oldest = next(iter(self.handshaking))
            del self.handshaking[oldest]
            self.dropped += 1
            self._log(
                "cap",
                f"{self.limits.max_handshaking} connections are in their handshake, the cap; "
                "closed the oldest ({count} since the last such line). Authenticated "
                "connections are not affected. If these are real clients, raise "
                f"{env_setting('max_handshaking_connections')}.",
            )
            oldest.abort("dropped at the cap on connections in their handshake", log=False)

    def expire(self, conn: Stranger) -> None:
        """``conn`` did not finish its handshake in time: close it (logged once per burst)."""
        self.handshaking.pop(conn, None)
        self.timed_out += 1
        timeout = self.limits.handshake_timeout_s
        self._log(
            "deadline",
            f"closed a connection that did not finish its handshake within {timeout:g} s "
            "({count} since the last such line); the limit is "
            f"{env_setting('handshake_timeout_s')}.",
        )
        conn.abort(f"the handshake did not finish within {timeout:g} s", log=False)

    def fail(self, conn: Stranger, reason: str) -> None:
        """``conn`` broke the handshake: close it (logged once per burst, so that strangers
        cannot flood the log, which a worker forwards to its driver's console)."""
        self.handshaking.pop(conn, None)
        self._log("failed", f"closed a connection that failed the handshake: {reason} "
                  "({count} since the last such line)")  # fmt: skip
        conn.abort(reason, log=False)

    def leave(self, conn: Stranger) -> None:
        """An admitted connection finished its handshake, or closed before it did."""
        self.handshaking.pop(conn, None)

    def _log(self, kind: str, message: str) -> None:
        """Log ``message`` (its ``{count}``: drops of this kind since the last line) unless
        one of this kind was logged in the last LOG_EVERY_S."""
        self._unlogged[kind] += 1
        now = time.monotonic()
        if now - self._logged_at[kind] >= LOG_EVERY_S:
            count = self._unlogged[kind]
            logger.warning("listener %s: %s", self.where, message.format(count=count))
            self._logged_at[kind], self._unlogged[kind] = now, 0
