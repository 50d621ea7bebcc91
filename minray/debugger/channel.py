"""pdb's stdin and stdout in a paused worker: a socket that ``minray debug`` attaches to.

A channel is in one of three states:

* CLOSED: no socket. What pdb writes is kept (the last :data:`PENDING_LIMIT`
  bytes) for the client that attaches next.
* LISTENING: pdb wants a line. The channel listens on ``HOST:0`` (the node's
  address, 127.0.0.1 by default), registers the breakpoint (the ``register``
  callback, given the ``HOST:PORT``), and blocks in ``accept``. A client must
  pass the cluster-token handshake of protocol/framing.py within
  :data:`HANDSHAKE_TIMEOUT_S`, or it is closed and the next one awaited.
* ATTACHED: one client; lines come from it, output goes to it. If it goes away
  the channel listens again (the task stays paused until someone types
  ``continue``), with the same socket and entry.

``end()`` closes everything and calls ``unregister``: the session is over
(``continue``, ``quit``, or the process exits). A later stop in the same pdb
(a breakpoint set with ``b``) listens again on a new port.
"""

from __future__ import annotations

import atexit
import socket
import sys
from collections.abc import Callable

from ..protocol.blocking import answer_handshake
from ..protocol.framing import ProtocolError
from ..runtime.task_interrupt import interruptible

#: seconds an attaching client has to prove it holds the cluster token
HANDSHAKE_TIMEOUT_S = 10.0
#: bytes of pdb output kept while no client is attached
PENDING_LIMIT = 64 * 1024
#: the longest command line read from a client
MAX_LINE = 64 * 1024


class DebugChannel:
    """A file-like pair (``readline``; ``write``/``flush``) for ``pdb.Pdb(stdin=, stdout=)``."""

    def __init__(
        self,
        host: str,
        token: bytes,
        register: Callable[[str], None],
        unregister: Callable[[], None],
    ) -> None:
        self.host = host
        self.token = token
        self._register = register
        self._unregister = unregister
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self._reader = None
        self._pending = bytearray()

    @property
    def address(self) -> str | None:
        """``HOST:PORT`` while listening or attached, else None."""
        if self._listener is None:
            return None
        host, port = self._listener.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    # --- what pdb calls ----------------------------------------------------------------

    @interruptible  # cancel(ref) of the paused task lands here (see remote_pdb._cmdloop)
    def readline(self) -> str:
        """The next command line from the attached client (waiting for one if none is)."""
        while True:
            if self._client is None:
                self._attach()
            try:
                data = self._reader.readline(MAX_LINE)
            except OSError:
                data = b""
            if data:
                return data.decode(errors="replace")
            self._drop_client()  # it went away: the task stays paused for the next one

    def write(self, text: str) -> int:
        self._send(text.encode(errors="replace"))
        return len(text)

    def flush(self) -> None:
        pass  # writes go out at once

    def end(self) -> None:
        """The session is over: remove the entry, then close the listener and the client
        (in this order, so a client that sees the end finds the entry gone)."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            atexit.unregister(self.end)
            try:
                self._unregister()
            except Exception as e:  # noqa: BLE001 - the cluster may be stopping
                print(f"minray debugger: could not remove the entry: {e}", file=sys.stderr)
        self._drop_client()

    # --- states -------------------------------------------------------------------------

    def _listen(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._listener = socket.create_server((self.host, 0), family=family, backlog=4)
        try:
            self._register(self.address)
        except BaseException:  # (no entry: nobody could find this session) the task fails
            self._listener.close()
            self._listener = None
            raise
        atexit.register(self.end)  # the entry goes with the process (a kill: its node)
        print(
            f"minray debugger: paused, waiting on {self.address}; attach with `minray debug`",
            file=sys.stderr,
        )

    @interruptible
    def _attach(self) -> None:
        if self._listener is None:
            self._listen()
        while True:  # until a client holds the token (the task is paused meanwhile)
            client, peer = self._listener.accept()
            client.settimeout(HANDSHAKE_TIMEOUT_S)
            try:
                client = answer_handshake(client, self.token)  # (TLS-wrapped if TLS is on)
            except (ProtocolError, OSError) as e:  # ConnectionError, TimeoutError are OSErrors
                print(f"minray debugger: refused a client from {peer[0]}: {e}", file=sys.stderr)
                client.close()
                continue
            client.settimeout(None)
            self._client, self._reader = client, client.makefile("rb")
            pending, self._pending = bytes(self._pending), bytearray()
            self._send(pending)
            return

    def _send(self, data: bytes) -> None:
        if self._client is not None:
            try:
                self._client.sendall(data)
                return
            except OSError:
                self._drop_client()
        self._pending += data
        del self._pending[: max(0, len(self._pending) - PENDING_LIMIT)]

    def _drop_client(self) -> None:
        if self._client is None:
            return
        self._reader.close()
        try:
            self._client.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._client.close()
        self._client = self._reader = None
