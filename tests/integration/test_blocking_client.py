"""The blocking client (protocol/blocking.py) against the event-loop listener, over a real
unix socket: the same handshake, a request and its reply, a raw byte stream after a
frame (Connection.take_over), and a wrong token refused before anything is decoded."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading

import pytest

from minray.protocol import blocking, framing
from minray.protocol.connection import DEFERRED, RemoteError, serve
from minray.protocol.messages import ClusterInfo, GetClusterInfo, Ok, SendObject

TOKEN = b"t" * 32
STREAM = bytes(range(256)) * 40_000  #: ~10 MB, far above a socket's buffer


class Handler:
    def handle_GetClusterInfo(self, conn, msg):
        return ClusterInfo([{"NodeID": "n"}])

    def handle_SendObject(self, conn, msg):
        if msg.size > len(STREAM):
            raise LookupError("no such object here")
        fd = conn.take_over()

        def stream():
            with os.fdopen(fd, "wb", closefd=True) as f:
                os.set_blocking(fd, True)
                f.write(framing.encode(Ok(), -1))
                f.write(STREAM[: msg.size])
            conn.call_soon_threadsafe(conn.close)

        threading.Thread(target=stream).start()
        return DEFERRED


@pytest.fixture
def listener():
    folder = tempfile.mkdtemp(prefix="mr-blocking-")
    path = os.path.join(folder, "s.sock")
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    server = None
    accepted = []

    def run():
        nonlocal server
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(
            serve(f"unix:{path}", Handler(), TOKEN, 1 << 20, on_connect=accepted.append)
        )
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(5)
    yield f"unix:{path}"

    async def stop():
        server.close()
        for conn in accepted:
            conn.close()
        await asyncio.sleep(0.05)  # the transports finish closing

    asyncio.run_coroutine_threadsafe(stop(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()
    shutil.rmtree(folder)


def test_a_request_and_its_reply(listener):
    sock = blocking.dial(listener, TOKEN, 5)
    try:
        assert blocking.request(sock, GetClusterInfo()).nodes == [{"NodeID": "n"}]
    finally:
        sock.close()


def test_a_raw_stream_after_the_reply_fills_the_buffer_exactly(listener):
    sock = blocking.dial(listener, TOKEN, 5)
    try:
        assert type(blocking.request(sock, SendObject(b"o", "seg", len(STREAM), b"n"))) is Ok
        into = bytearray(len(STREAM))
        blocking.recv_into_exactly(sock, memoryview(into), chunk=1 << 16)
        assert into == STREAM
        assert sock.recv(1) == b""  # and then the connection closes
    finally:
        sock.close()


def test_an_error_reply_raises_and_a_short_stream_is_an_error(listener):
    sock = blocking.dial(listener, TOKEN, 5)
    try:
        with pytest.raises(RemoteError, match="no such object"):
            blocking.request(sock, SendObject(b"o", "seg", len(STREAM) + 1, b"n"))
    finally:
        sock.close()
    sock = blocking.dial(listener, TOKEN, 5)
    try:
        blocking.request(sock, SendObject(b"o", "seg", 1000, b"n"))
        with pytest.raises(ConnectionError, match="after 1,000 of 2,000 bytes"):
            blocking.recv_into_exactly(sock, memoryview(bytearray(2000)))
    finally:
        sock.close()


def test_a_wrong_token_is_refused(listener):
    with pytest.raises((framing.ProtocolError, ConnectionError)):
        sock = blocking.dial(listener, b"w" * 32, 5)
        try:  # the server closes on the bad answer: the proof never comes
            blocking.request(sock, GetClusterInfo())
        finally:
            sock.close()


@pytest.mark.skipif(not blocking.CAN_SPLICE, reason="splice is Linux-only (Python 3.10+)")
def test_splice_moves_a_stream_into_a_file_exactly_and_a_short_one_is_an_error(tmp_path):
    import socket

    payload = os.urandom(3 * (1 << 20) + 12345)  # several pipe-fuls, and an odd tail
    sender, receiver = socket.socketpair()
    receiver.settimeout(10)  # non-blocking underneath, as the transfer sockets are
    writer = threading.Thread(target=lambda: (sender.sendall(payload), sender.close()))
    writer.start()
    path = tmp_path / "copy"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        blocking.splice_into(receiver, fd, len(payload), 10)
        with pytest.raises(ConnectionError, match="closed the connection after 0 of 10"):
            blocking.splice_into(receiver, fd, 10, 10)  # nothing more comes
    finally:
        os.close(fd)
        writer.join()
        receiver.close()
    assert path.read_bytes() == payload
