"""minray.protocol.admission: the handshake deadline and the cap on strangers per listener."""

import asyncio
import contextlib
import logging
import os
import time

import pytest

from minray.config import Config
from minray.protocol import framing
from minray.protocol.admission import Gate, Limits
from minray.protocol.connection import ConnectionLost, connect, serve
from minray.protocol.messages import ClusterInfo, GetClusterInfo

TOKEN = b"a" * 32
MAX_FRAME = 1 << 20
HELLO_SIZE = 4 + len(framing.MAGIC) + framing.NONCE_SIZE


class InfoHandler:
    def handle_GetClusterInfo(self, conn, msg):
        return ClusterInfo([])


class Listener:
    """A real unix-socket listener with the given limits, recording accepted connections."""

    def __init__(self, path, limits):
        self.path = str(path)
        self.address = "unix:" + self.path
        self.limits = limits
        self.accepted = []

    async def __aenter__(self):
        self.server = await serve(
            self.address, InfoHandler(), TOKEN, MAX_FRAME, self.accepted.append, limits=self.limits
        )
        return self

    async def __aexit__(self, *exc):
        for conn in self.accepted:
            conn.close()
        self.server.close()
        await self.server.wait_closed()
        await asyncio.sleep(0.01)


async def authenticated_call(address):
    conn = await asyncio.wait_for(connect(address, object(), TOKEN, MAX_FRAME), 5)
    try:
        return await asyncio.wait_for(conn.request(GetClusterInfo()), 5)
    finally:
        conn.close()


async def closed_by_server(reader, within):
    """Read until the server closes; the seconds it took (fails past ``within``)."""
    start = time.monotonic()
    with contextlib.suppress(ConnectionError):
        await asyncio.wait_for(reader.read(), within)
    return time.monotonic() - start


def open_fds():
    return len(os.listdir("/proc/self/fd"))


# --- the gate alone ------------------------------------------------------------------------


class FakeStranger:
    def __init__(self):
        self.aborted = ""

    def abort(self, reason, log=True):
        self.aborted = reason


def test_gate_closes_the_oldest_stranger_past_the_cap():
    gate = Gate("unix:/x", Limits(max_handshaking=2))
    a, b, c = FakeStranger(), FakeStranger(), FakeStranger()
    for conn in (a, b, c):
        gate.admit(conn)
    assert a.aborted and not b.aborted and not c.aborted
    assert list(gate.handshaking) == [b, c] and gate.dropped == 1
    gate.leave(b)
    gate.admit(FakeStranger())
    assert not c.aborted


def test_gate_logs_the_listener_and_the_setting_once_per_burst(caplog):
    gate = Gate("tcp:127.0.0.1:5", Limits(max_handshaking=1))
    with caplog.at_level(logging.WARNING, logger="minray.protocol.admission"):
        for _ in range(6):
            gate.admit(FakeStranger())
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and gate.dropped == 5
    assert "tcp:127.0.0.1:5" in lines[0] and "MINRAY_MAX_HANDSHAKING_CONNECTIONS" in lines[0]


def test_gate_closes_a_stranger_at_its_deadline_naming_the_setting(caplog):
    gate = Gate("unix:/x", Limits(handshake_timeout_s=2))
    conn = FakeStranger()
    gate.admit(conn)
    with caplog.at_level(logging.WARNING, logger="minray.protocol.admission"):
        gate.expire(conn)
    assert "within 2 s" in conn.aborted and not gate.handshaking and gate.timed_out == 1
    assert "MINRAY_HANDSHAKE_TIMEOUT_S" in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    "name",
    [
        "handshake_timeout_s",
        "max_handshaking_connections",
        "max_pending_leases_per_client",
        "task_events_buffer_size",
    ],
)
def test_a_limit_that_is_not_positive_is_refused_naming_its_variable(name):
    with pytest.raises(ValueError, match=f"MINRAY_{name.upper()}"):
        Config(**{name: 0})


# --- over a real socket -----------------------------------------------------------------


async def test_a_silent_client_is_dropped_at_the_handshake_deadline(tmp_path, caplog):
    async with Listener(tmp_path / "s", Limits(handshake_timeout_s=0.3)) as listener:
        reader, writer = await asyncio.open_unix_connection(listener.path)
        with caplog.at_level(logging.WARNING, logger="minray.protocol.admission"):
            took = await closed_by_server(reader, within=5)
        writer.close()
        assert 0.2 < took < 3
        assert "did not finish within 0.3 s" in listener.accepted[0].close_reason
        assert any("MINRAY_HANDSHAKE_TIMEOUT_S" in r.getMessage() for r in caplog.records)
        assert await authenticated_call(listener.address) == ClusterInfo([])


async def test_a_client_trickling_one_byte_at_a_time_is_dropped_at_the_deadline(tmp_path):
    async with Listener(tmp_path / "s", Limits(handshake_timeout_s=0.5)) as listener:
        reader, writer = await asyncio.open_unix_connection(listener.path)
        await reader.readexactly(HELLO_SIZE)
        start = time.monotonic()
        with contextlib.suppress(ConnectionError):
            for _ in range(40):  # a valid-looking length prefix, then one byte per 50 ms
                writer.write(b"\x00" if _ < 3 else b"\x40")
                await writer.drain()
                await asyncio.sleep(0.05)
        took = time.monotonic() - start
        writer.close()
        assert took < 1.5, "the trickling client was not dropped at the deadline"
        assert listener.accepted[0].closed


async def test_an_authenticated_connection_outlives_the_handshake_deadline(tmp_path):
    async with Listener(tmp_path / "s", Limits(handshake_timeout_s=0.2)) as listener:
        conn = await connect(listener.address, object(), TOKEN, MAX_FRAME)
        await asyncio.sleep(0.5)
        assert await asyncio.wait_for(conn.request(GetClusterInfo()), 5) == ClusterInfo([])
        conn.close()


async def test_a_client_of_a_silent_server_gives_up_at_its_handshake_deadline(tmp_path):
    path = str(tmp_path / "silent")
    writers = []
    server = await asyncio.start_unix_server(lambda r, w: writers.append(w), path)
    try:
        start = time.monotonic()
        with pytest.raises(ConnectionLost, match="handshake_timeout_s"):
            await asyncio.wait_for(connect("unix:" + path, object(), TOKEN, MAX_FRAME, 0.3), 5)
        assert time.monotonic() - start < 3
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_strangers_past_the_cap_close_the_oldest_and_leak_nothing(tmp_path, caplog):
    limits = Limits(handshake_timeout_s=30, max_handshaking=4)
    async with Listener(tmp_path / "s", limits) as listener:
        before = open_fds()
        with caplog.at_level(logging.WARNING, logger="minray.protocol.admission"):
            strangers = []
            for _ in range(10):
                strangers.append(await asyncio.open_unix_connection(listener.path))
                await asyncio.wait_for(strangers[-1][0].readexactly(HELLO_SIZE), 5)
            for reader, _ in strangers[:6]:  # the oldest six were closed
                assert await asyncio.wait_for(reader.read(), 5) == b""
        assert [c.closed for c in listener.accepted] == [True] * 6 + [False] * 4
        assert any("max_handshaking_connections" in r.getMessage() for r in caplog.records)
        for _, writer in strangers:
            writer.close()
        deadline = time.monotonic() + 5
        while any(not c.closed for c in listener.accepted) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        assert open_fds() <= before, "the dropped connections left descriptors open"


async def test_a_token_holder_gets_in_while_strangers_fill_the_cap(tmp_path):
    limits = Limits(handshake_timeout_s=30, max_handshaking=3)
    async with Listener(tmp_path / "s", limits) as listener:
        holder = await connect(listener.address, object(), TOKEN, MAX_FRAME)
        strangers = [await asyncio.open_unix_connection(listener.path) for _ in range(3)]
        for reader, _ in strangers:
            await asyncio.wait_for(reader.readexactly(HELLO_SIZE), 5)
        # the cap is full of strangers: a connected token holder is served, and a new one
        # gets in (the oldest stranger makes room)
        assert await asyncio.wait_for(holder.request(GetClusterInfo()), 5) == ClusterInfo([])
        assert await authenticated_call(listener.address) == ClusterInfo([])
        assert await asyncio.wait_for(strangers[0][0].read(), 5) == b""
        for _, writer in strangers:
            writer.close()
        holder.close()


async def test_strangers_failing_the_handshake_are_logged_once_per_burst(tmp_path, caplog):
    async with Listener(tmp_path / "s", Limits()) as listener:
        with caplog.at_level(logging.WARNING):
            for _ in range(5):
                reader, writer = await asyncio.open_unix_connection(listener.path)
                writer.write(framing.frame(b"x" * 64))  # a forged answer
                await closed_by_server(reader, within=5)
                writer.close()
        lines = [r.getMessage() for r in caplog.records if "handshake" in r.getMessage()]
        assert len(lines) == 1 and "authentication failed" in lines[0]
        assert all(c.close_reason.startswith("protocol error") for c in listener.accepted)


def test_each_limit_is_read_from_its_environment_variable(monkeypatch):
    monkeypatch.setenv("MINRAY_HANDSHAKE_TIMEOUT_S", "2.5")
    monkeypatch.setenv("MINRAY_MAX_HANDSHAKING_CONNECTIONS", "7")
    monkeypatch.setenv("MINRAY_MAX_PENDING_LEASES_PER_CLIENT", "9")
    monkeypatch.setenv("MINRAY_TASK_EVENTS_BUFFER_SIZE", "11")
    config = Config.from_env()
    assert (config.handshake_timeout_s, config.max_handshaking_connections) == (2.5, 7)
    assert (config.max_pending_leases_per_client, config.task_events_buffer_size) == (9, 11)
