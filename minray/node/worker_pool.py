"""The node's handle on its zygote (node/zygote.py): ask for workers, learn their pids."""

from __future__ import annotations

import asyncio
import socket


class ZygoteClient:
    """The node's handle on the zygote: ask for workers, learn their pids."""

    def __init__(self, pid: int, sock: socket.socket):
        self.pid = pid
        self._sock = sock
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._waiting: dict[str, asyncio.Future] = {}

    async def start(self) -> None:
        self._reader, self._writer = await asyncio.open_unix_connection(sock=self._sock)
        asyncio.get_running_loop().create_task(self._read_replies())

    async def _read_replies(self) -> None:
        while True:
            line = await self._reader.readline()
            if not line:
                break
            worker_hex, pid = line.decode().split()
            fut = self._waiting.pop(worker_hex, None)
            if fut is not None and not fut.done():
                fut.set_result(int(pid))
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(RuntimeError("the zygote exited"))

    def fork(self, worker_id: bytes) -> asyncio.Future:
        """Start a worker; the future resolves to its pid."""
        fut = asyncio.get_running_loop().create_future()
        self._waiting[worker_id.hex()] = fut
        self._writer.write(f"fork {worker_id.hex()}\n".encode())
        return fut

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
