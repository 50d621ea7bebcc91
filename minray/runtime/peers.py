"""A CoreWorker's connections to other CoreWorkers (owners, workers, actors).

A mixin of :class:`~minray.runtime.core_worker.CoreWorker`. A connection is dialed
once per address and kept (``_peer_conns``); connections others opened to us are
kept apart (``_accepted_conns``). When a peer goes, the references it borrowed
from us are dropped (``refs.peer_died``).
"""

from __future__ import annotations

import asyncio

from ..protocol.connection import Connection, connect


class PeerConnections:
    """Dialing, caching and forgetting connections to other CoreWorkers."""

    async def peer(self, address: str) -> Connection:
        conn = self._peer_conns.get(address)
        if conn is not None:
            return conn
        fut = self._dialing.get(address)
        if fut is None:
            fut = self._dialing[address] = self.loop.create_task(self._dial(address))
        try:
            return await asyncio.shield(fut)
        finally:
            if fut.done():
                self._dialing.pop(address, None)

    def close_peers(self, prefixes: tuple) -> None:
        """Loop thread: close connections to processes whose address starts so (a dead
        node's: what waits on them fails over)."""
        if prefixes:
            for address, conn in list(self._peer_conns.items()):
                if address.startswith(prefixes):
                    conn.close()

    def cached_peer(self, address: str) -> Connection | None:
        return self._peer_conns.get(address)

    async def _dial(self, address: str) -> Connection:
        conn = await connect(address, self, self.token, self.config.max_frame_bytes)
        conn.info["peer"] = address
        conn.close_callbacks.append(self._peer_closed)
        self._peer_conns[address] = conn
        return conn

    def _accepted(self, conn: Connection) -> None:
        self._accepted_conns.add(conn)
        conn.close_callbacks.append(self._peer_closed)

    def _peer_closed(self, conn: Connection) -> None:
        self._accepted_conns.discard(conn)
        address = conn.info.get("peer")
        if address is None or not self.alive:
            return
        if self._peer_conns.get(address) is conn:
            del self._peer_conns[address]
        self.update_refs(self.refs.peer_died, address)
