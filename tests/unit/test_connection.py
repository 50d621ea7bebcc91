"""minray.protocol.connection over a real unix socket on loopback, plus a fake transport."""

import asyncio
import contextlib
import os
import struct
import tempfile

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minray.protocol import framing
from minray.protocol.connection import (
    Connection,
    ConnectionLost,
    RemoteError,
    connect,
    parse_address,
    serve,
)
from minray.protocol.messages import CancelLeaseRequest, ClusterInfo, GetClusterInfo, MsgType, Ok

TOKEN = b"t" * 32
MAX_FRAME = 1 << 20
NODES = [{"node_id": b"\x01" * 4, "resources": {"CPU": 2.0}}]
HELLO_SIZE = 4 + len(framing.MAGIC) + framing.NONCE_SIZE
PROOF_SIZE = 4 + framing.DIGEST_SIZE


class InfoHandler:
    def __init__(self):
        self.calls = 0

    def handle_GetClusterInfo(self, conn, msg):
        self.calls += 1
        return ClusterInfo(NODES)


class ClientHandler:
    """A client handles nothing; replies are matched to requests by the connection."""


class Server:
    """A server on a unix socket that records its accepted connections."""

    def __init__(self, path):
        self.address = "unix:" + str(path)
        self.path = str(path)
        self.handler = InfoHandler()
        self.accepted = []
        self.server = None

    async def __aenter__(self):
        self.server = await serve(
            self.address, self.handler, TOKEN, MAX_FRAME, on_connect=self.accepted.append
        )
        return self

    async def __aexit__(self, *exc):
        for conn in self.accepted:
            conn.close()
        self.server.close()
        await self.server.wait_closed()
        await asyncio.sleep(0.01)  # let closed transports release their sockets


async def ask_info(address, token=TOKEN):
    conn = await connect(address, ClientHandler(), token, MAX_FRAME)
    try:
        return await asyncio.wait_for(conn.request(GetClusterInfo()), 5)
    finally:
        conn.close()


class RawClient:
    """A client speaking bytes directly, to misbehave."""

    def __init__(self, path):
        self.path = path

    async def __aenter__(self):
        self.reader, self.writer = await asyncio.open_unix_connection(self.path)
        return self

    async def __aexit__(self, *exc):
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()

    async def handshake(self, token=TOKEN):
        hello = await asyncio.wait_for(self.reader.readexactly(HELLO_SIZE), 5)
        self.writer.write(
            framing.frame(framing.client_answer(token, hello[4:], framing.new_nonce()))
        )
        await asyncio.wait_for(self.reader.readexactly(PROOF_SIZE), 5)

    async def read_until_closed(self):
        """Read everything the server sends until it closes the connection."""
        with contextlib.suppress(ConnectionError):
            return await asyncio.wait_for(self.reader.read(), 5)
        return b""


# --- over a real socket -----------------------------------------------------------------


async def test_request_gets_the_handlers_reply(tmp_path):
    async with Server(tmp_path / "s") as server:
        conn = await connect(server.address, ClientHandler(), TOKEN, MAX_FRAME)
        first = await asyncio.wait_for(conn.request(GetClusterInfo()), 5)
        second = await asyncio.wait_for(conn.request(GetClusterInfo()), 5)
        conn.close()
    assert first == ClusterInfo(NODES) == second
    assert server.handler.calls == 2


async def test_concurrent_requests_are_matched_to_their_replies(tmp_path):
    async with Server(tmp_path / "s") as server:
        conn = await connect(server.address, ClientHandler(), TOKEN, MAX_FRAME)
        replies = await asyncio.wait_for(
            asyncio.gather(*[conn.request(GetClusterInfo()) for _ in range(20)]), 5
        )
        conn.close()
    assert replies == [ClusterInfo(NODES)] * 20


async def test_unhandled_request_closes_the_connection_and_fails_the_request(tmp_path):
    async with Server(tmp_path / "s") as server:
        conn = await connect(server.address, ClientHandler(), TOKEN, MAX_FRAME)
        with pytest.raises(ConnectionLost):
            await asyncio.wait_for(conn.request(Ok()), 5)
        assert server.accepted[0].closed
        assert "not accepted here" in server.accepted[0].close_reason
        assert await ask_info(server.address) == ClusterInfo(NODES)


async def test_handler_exception_becomes_a_remote_error(tmp_path):
    class Failing(InfoHandler):
        def handle_GetClusterInfo(self, conn, msg):
            raise KeyError("no such node")

    path = str(tmp_path / "s")
    server = await serve("unix:" + path, Failing(), TOKEN, MAX_FRAME)
    try:
        conn = await connect("unix:" + path, ClientHandler(), TOKEN, MAX_FRAME)
        with pytest.raises(RemoteError) as info:
            await asyncio.wait_for(conn.request(GetClusterInfo()), 5)
        assert info.value.error == "KeyError"
        # the connection survives a failed request
        with pytest.raises(RemoteError):
            await asyncio.wait_for(conn.request(GetClusterInfo()), 5)
        conn.close()
    finally:
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)


async def test_async_handler_reply_is_sent_when_ready(tmp_path):
    class Slow(InfoHandler):
        async def handle_GetClusterInfo(self, conn, msg):
            await asyncio.sleep(0.01)
            return ClusterInfo(["later"])

    path = str(tmp_path / "s")
    accepted = []
    server = await serve("unix:" + path, Slow(), TOKEN, MAX_FRAME, on_connect=accepted.append)
    try:
        reply = await ask_info("unix:" + path)
    finally:
        for conn in accepted:
            conn.close()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)
    assert reply == ClusterInfo(["later"])


async def test_client_with_the_wrong_token_is_refused_and_the_server_keeps_serving(tmp_path):
    async with Server(tmp_path / "s") as server:
        with pytest.raises(ConnectionLost):
            await asyncio.wait_for(
                connect(server.address, ClientHandler(), b"wrong" * 8, MAX_FRAME), 5
            )
        assert server.accepted[0].closed
        assert "authentication failed" in server.accepted[0].close_reason
        assert await ask_info(server.address) == ClusterInfo(NODES)
        assert server.handler.calls == 1


async def test_requests_on_a_closed_connection_fail_with_connection_lost(tmp_path):
    async with Server(tmp_path / "s") as server:
        conn = await connect(server.address, ClientHandler(), TOKEN, MAX_FRAME)
        conn.close()
        with pytest.raises(ConnectionLost):
            await conn.request(GetClusterInfo())


async def test_pending_request_fails_when_the_server_goes_away(tmp_path):
    class Never(InfoHandler):
        def handle_GetClusterInfo(self, conn, msg):
            return asyncio.get_running_loop().create_future()

    path = str(tmp_path / "s")
    accepted = []
    server = await serve("unix:" + path, Never(), TOKEN, MAX_FRAME, on_connect=accepted.append)
    conn = await connect("unix:" + path, ClientHandler(), TOKEN, MAX_FRAME)
    pending = conn.request(GetClusterInfo())
    await asyncio.sleep(0.01)
    for server_conn in accepted:
        server_conn.close()
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(pending, 5)
    conn.close()
    server.close()
    await server.wait_closed()
    await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff\xff\xff\xff",  # a frame header far above the handshake limit
        framing.frame(b"x" * 64),  # an answer of the right size with a wrong MAC
        framing.frame(b"short"),  # a malformed answer
        framing.frame(framing.MAGIC + b"\x00" * 32),  # echoing a hello
    ],
    ids=["oversize-header", "wrong-mac", "short-answer", "echoed-hello"],
)
async def test_garbage_instead_of_the_handshake_closes_only_that_connection(tmp_path, garbage):
    async with Server(tmp_path / "s") as server:
        async with RawClient(server.path) as raw:
            await raw.reader.readexactly(HELLO_SIZE)
            raw.writer.write(garbage)
            assert await raw.read_until_closed() == b""
        assert server.accepted[0].close_reason.startswith("protocol error")
        assert await ask_info(server.address) == ClusterInfo(NODES)


@pytest.mark.parametrize(
    "garbage",
    [
        framing.frame(b"\xc1"),  # not msgpack
        framing.frame(msgpack.packb([999, 1])),  # unknown message type
        framing.frame(msgpack.packb([int(MsgType.GET_CLUSTER_INFO), 1, "extra"])),
        struct.pack(">I", MAX_FRAME + 1),  # above the frame limit
    ],
    ids=["not-msgpack", "unknown-type", "extra-field", "oversize-header"],
)
async def test_garbage_after_the_handshake_closes_only_that_connection(tmp_path, garbage):
    async with Server(tmp_path / "s") as server:
        async with RawClient(server.path) as raw:
            await raw.handshake()
            raw.writer.write(garbage)
            assert await raw.read_until_closed() == b""
        assert server.accepted[0].close_reason.startswith("protocol error")
        assert await ask_info(server.address) == ClusterInfo(NODES)
        assert server.handler.calls == 1


async def test_raw_client_that_follows_the_protocol_gets_a_reply(tmp_path):
    async with Server(tmp_path / "s") as server:
        async with RawClient(server.path) as raw:
            await raw.handshake()
            raw.writer.write(framing.encode(GetClusterInfo(), 5))
            header = await asyncio.wait_for(raw.reader.readexactly(4), 5)
            body = await raw.reader.readexactly(struct.unpack(">I", header)[0])
    assert framing.decode(body) == (ClusterInfo(NODES), -5)


BAD_FRAME = framing.frame(b"\xc1")  # always refused once authenticated


async def _garbage_scenario(path, garbage, after_handshake):
    async with Server(path) as server:
        async with RawClient(server.path) as raw:
            if after_handshake:
                await raw.handshake()
                # whatever the garbage was, the bad frame after it must close the connection
                raw.writer.write(garbage + BAD_FRAME)
            else:
                await raw.reader.readexactly(HELLO_SIZE)
                raw.writer.write(framing.frame(garbage))
            await raw.read_until_closed()
        assert server.accepted[0].closed
        assert await ask_info(server.address) == ClusterInfo(NODES)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage=st.binary(max_size=300), after_handshake=st.booleans())
def test_server_survives_arbitrary_garbage_from_a_client(garbage, after_handshake):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s")
        if after_handshake:
            garbage = framing.frame(garbage)
        asyncio.run(_garbage_scenario(path, garbage, after_handshake))


async def test_request_id_too_large_to_answer_is_a_protocol_error(tmp_path):
    async with Server(tmp_path / "s") as server:
        async with RawClient(server.path) as raw:
            await raw.handshake()
            raw.writer.write(
                framing.frame(msgpack.packb([int(MsgType.GET_CLUSTER_INFO), 2**64 - 1]))
            )
            await raw.read_until_closed()
        assert server.accepted[0].closed
        assert server.accepted[0].close_reason.startswith("protocol error")


# --- with a fake transport (no sockets) ----------------------------------------------------


class FakeTransport:
    def __init__(self):
        self.written = []
        self.batches = []
        self.aborted = False
        self.closed = False

    def write(self, data):
        self.written.append(bytes(data))

    def writelines(self, chunks):
        batch = [bytes(c) for c in chunks]
        self.batches.append(batch)
        self.written.extend(batch)

    def get_extra_info(self, name, default=None):
        return default  # no real socket: send_threadsafe queues for the loop

    def get_write_buffer_size(self):
        return 0

    def abort(self):
        self.aborted = True

    def close(self):
        self.closed = True


class Recorder:
    def __init__(self):
        self.infos = []

    def handle_ClusterInfo(self, conn, msg):
        self.infos.append(msg)


def client_after_hello():
    """A client Connection that has answered a hello; returns it and the expected proof."""
    conn = Connection(Recorder(), TOKEN, server=False, max_frame=MAX_FRAME)
    transport = FakeTransport()
    conn.connection_made(transport)
    server_nonce = framing.new_nonce()
    conn.data_received(framing.frame(framing.server_hello(server_nonce)))
    answer = transport.written[0][4:]
    proof = framing.server_check(TOKEN, server_nonce, answer)
    return conn, framing.frame(proof)


BIG_PUSH = framing.encode(ClusterInfo([{"text": "x" * 500}]))


async def test_client_accepts_a_large_message_arriving_after_the_proof():
    conn, proof = client_after_hello()
    conn.data_received(proof)
    conn.data_received(BIG_PUSH)
    assert conn.ready.done() and not conn.closed
    assert len(conn.handler.infos) == 1


async def test_client_accepts_a_large_message_in_the_same_read_as_the_proof():
    conn, proof = client_after_hello()
    conn.data_received(proof + BIG_PUSH)
    assert not conn.closed, conn.close_reason
    assert len(conn.handler.infos) == 1


async def test_client_with_a_forged_proof_aborts():
    conn, proof = client_after_hello()
    conn.data_received(framing.frame(b"\x00" * framing.DIGEST_SIZE))
    assert conn.closed and conn._transport.aborted
    with pytest.raises(ConnectionLost):
        await conn.ready


async def test_server_decodes_nothing_before_the_handshake():
    handler = InfoHandler()
    conn = Connection(handler, TOKEN, server=True, max_frame=MAX_FRAME)
    transport = FakeTransport()
    conn.connection_made(transport)
    assert transport.written[0][4:].startswith(framing.MAGIC)
    conn.data_received(framing.encode(GetClusterInfo(), 1))
    assert conn.closed and transport.aborted
    assert handler.calls == 0


async def test_sends_in_one_tick_leave_in_one_writelines_call():
    conn, proof = client_after_hello()
    conn.data_received(proof)
    transport = conn._transport
    conn.send(Ok())
    conn.send(Ok(), 3)
    assert transport.batches == []  # nothing written until the loop runs
    await asyncio.sleep(0)
    assert transport.batches == [[framing.encode(Ok()), framing.encode(Ok(), 3)]]
    conn.close()


# --- addresses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address, parsed",
    [
        ("unix:/tmp/x.sock", ("unix", "/tmp/x.sock")),
        ("tcp:127.0.0.1:6379", ("tcp", ("127.0.0.1", 6379))),
        ("tcp:[::1]:80", ("tcp", ("[::1]", 80))),
    ],
)
def test_parse_address_understands_unix_and_tcp(address, parsed):
    assert parse_address(address) == parsed


@pytest.mark.parametrize("address", ["", "unix:", "tcp:host", "tcp::80", "tcp:h:port", "udp:x:1"])
def test_parse_address_rejects_malformed_addresses(address):
    with pytest.raises(ValueError, match="bad address"):
        parse_address(address)


class OneWayHandler:
    def handle_CancelLeaseRequest(self, conn, msg):
        return None  # a one-way message: nothing to answer


async def test_a_one_way_message_sent_as_a_request_gets_an_error_not_a_closed_connection(
    tmp_path,
):
    address = "unix:" + str(tmp_path / "s")
    server = await serve(address, OneWayHandler(), TOKEN, MAX_FRAME)
    conn = await connect(address, object(), TOKEN, MAX_FRAME)
    try:
        with pytest.raises(RemoteError, match="has no reply: send it without a request id"):
            await asyncio.wait_for(conn.request(CancelLeaseRequest(1)), 5)
        assert not conn.closed
    finally:
        conn.close()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)
