"""Connection.send_threadsafe, DEFERRED replies and closing, over real unix sockets.

The client and the server run on the test's event loop; plain threads play the
part of a worker's main thread sending frames straight to the socket.
"""

import asyncio
import os
import shutil
import tempfile
import threading
import time

import pytest

from minray.protocol import framing
from minray.protocol.connection import DEFERRED, connect, serve
from minray.protocol.messages import (
    ClusterInfo,
    CreateObject,
    GetClusterInfo,
    GetObject,
    ObjectReply,
    ValueKind,
)

TOKEN = b"k" * 32
MAX_FRAME = 32 * 1024 * 1024
BIG = 8 * 1024 * 1024  #: far above a unix socket's send buffer (at most a few hundred KiB)
NODES = [{"node_id": b"\x02" * 4, "resources": {"CPU": 1.0}}]


def payload(sender: int, seq: int) -> bytes:
    """Bytes of a varying size that say who sent them and in which order."""
    return bytes([sender]) * (seq * 37 % 6000) + seq.to_bytes(4, "big")


def note(sender: int, seq: int) -> CreateObject:
    """A one-way message carrying (sender, seq): owner=sender, size=seq."""
    return CreateObject(payload(sender, seq), seq, f"s{sender}")


class Recorder:
    """The server's handler: records one-way messages, answers requests later."""

    def __init__(self):
        self.received = []  #: (owner, size, object_id) of each CreateObject, in order
        self.threads = []
        self.deferred = []  #: (Reply, GetObject) not answered yet
        self.answer_after = 0  #: answer the GetObject requests once this many wait

    def handle_CreateObject(self, conn, msg):
        self.received.append((msg.owner, msg.size, msg.object_id))

    def handle_GetClusterInfo(self, conn, msg):
        reply = conn.reply_later()

        def answer():
            time.sleep(0.02)
            reply.send(ClusterInfo(NODES))

        self._start(answer)
        return DEFERRED

    def handle_GetObject(self, conn, msg):
        self.deferred.append((conn.reply_later(), msg))
        if len(self.deferred) >= self.answer_after:
            waiting, self.deferred = self.deferred, []

            def answer():  # in reverse order, so matching by request id matters
                for reply, request in reversed(waiting):
                    reply.send(ObjectReply(ValueKind.INLINE, request.object_id, []))

            self._start(answer)
        return DEFERRED

    def _start(self, target):
        thread = threading.Thread(target=target, daemon=True)
        self.threads.append(thread)
        thread.start()


class ClientHandler:
    """Handles nothing: a one-way message arriving here breaks the protocol."""


class Pair:
    """A server and one client connected to it over a unix socket in a short directory.

    On exit everything is closed, and no file descriptor or thread may outlive it.
    """

    def __init__(self):
        self.handler = Recorder()
        self.accepted = []

    async def __aenter__(self):
        self.fds_before = set(os.listdir("/proc/self/fd"))
        self.threads_before = set(threading.enumerate())
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.dir = tempfile.mkdtemp(prefix="mrc", dir=shm)
        address = "unix:" + os.path.join(self.dir, "s")
        self.server = await serve(
            address, self.handler, TOKEN, MAX_FRAME, on_connect=self.accepted.append
        )
        self.client = await connect(address, ClientHandler(), TOKEN, MAX_FRAME)
        await wait_for(lambda: self.accepted and self.accepted[0].ready.done())
        self.peer = self.accepted[0]
        return self

    async def __aexit__(self, exc_type, exc, tb):
        self.client.close()
        for conn in self.accepted:
            conn.close()
        self.server.close()
        await self.server.wait_closed()
        await asyncio.sleep(0.02)  # closed transports release their sockets
        shutil.rmtree(self.dir, ignore_errors=True)
        for thread in self.handler.threads:
            thread.join(5)
        deadline = time.monotonic() + 2
        while set(threading.enumerate()) - self.threads_before and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if exc_type is None:
            assert not set(threading.enumerate()) - self.threads_before, "threads leaked"
            assert set(os.listdir("/proc/self/fd")) == self.fds_before, "fds leaked"
            assert self.client._fd == -1
            assert all(conn._fd == -1 for conn in self.accepted)

    def received_from(self, owner: str) -> list:
        return [(size, data) for who, size, data in self.handler.received if who == owner]


async def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.002)


async def join_threads(threads, timeout: float = 5.0) -> None:
    """Wait for plain threads without blocking the loop (it must keep flushing)."""
    await wait_for(lambda: not any(t.is_alive() for t in threads), timeout)


class Sender(threading.Thread):
    """A plain thread running ``body``; keeps the exception it raised, if any."""

    def __init__(self, body):
        super().__init__(daemon=True)
        self.body = body
        self.error = None

    def run(self):
        try:
            self.body()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e


# --- a. many senders at once -------------------------------------------------------------


async def test_threads_and_the_loop_sending_at_once_keep_frames_whole_and_in_order():
    threads_count, per_thread, per_loop = 3, 400, 400
    async with Pair() as pair:
        conn = pair.client
        start = threading.Barrier(threads_count)

        def send_all(sender):
            start.wait(5)
            for seq in range(per_thread):
                conn.send_threadsafe(note(sender, seq))

        senders = [Sender(lambda s=s: send_all(s)) for s in range(1, threads_count + 1)]
        for thread in senders:
            thread.start()
        for seq in range(per_loop):  # the loop thread sends meanwhile, sender 0
            conn.send(note(0, seq))
            if seq % 8 == 0:
                await asyncio.sleep(0)
        await join_threads(senders)
        assert [t.error for t in senders] == [None] * threads_count

        total = threads_count * per_thread + per_loop
        await wait_for(lambda: len(pair.handler.received) >= total or pair.peer.closed)
        assert not pair.peer.closed, pair.peer.close_reason
        assert not conn.closed, conn.close_reason
        assert len(pair.handler.received) == total
        for sender in range(threads_count + 1):
            count = per_loop if sender == 0 else per_thread
            expected = [(seq, payload(sender, seq)) for seq in range(count)]
            assert pair.received_from(f"s{sender}") == expected, f"sender {sender}"


# --- b. a frame bigger than the socket buffer ------------------------------------------


async def test_big_frame_is_handed_to_the_loop_and_the_next_frame_waits_behind_it():
    big = CreateObject(os.urandom(BIG), 0, "big")
    small = CreateObject(b"after", 1, "small")
    frame_size = len(framing.encode(big))
    async with Pair() as pair:
        conn = pair.client
        seen = {}
        big_sent, go_on = threading.Event(), threading.Event()

        def send_both():
            conn.send_threadsafe(big)
            seen["after_big"] = [len(part) for part in conn._out]
            big_sent.set()
            go_on.wait(5)
            conn.send_threadsafe(small)
            seen["after_small"] = [len(part) for part in conn._out]

        # The loop stays blocked while the thread sends, so nobody reads and the socket
        # fills up; in between, the peer reads what it can straight from its socket, so
        # the small frame would fit if it were (wrongly) written before the queued rest.
        sender = Sender(send_both)
        sender.start()
        assert big_sent.wait(5)
        drained = drain_into(pair.peer)
        go_on.set()
        sender.join(5)
        assert sender.error is None
        assert drained > 0
        # part of the big frame went straight out, the rest waits for the loop...
        assert len(seen["after_big"]) == 1
        assert 0 < seen["after_big"][0] < frame_size
        # ...and the small frame queued behind it instead of jumping the queue
        assert seen["after_small"] == [seen["after_big"][0], len(framing.encode(small))]

        await wait_for(lambda: len(pair.handler.received) >= 2 or pair.peer.closed)
        assert not pair.peer.closed, pair.peer.close_reason
        assert pair.handler.received == [("big", 0, big.object_id), ("small", 1, b"after")]
        assert conn._out == []


def drain_into(conn) -> int:
    """Loop thread: read what waits in ``conn``'s socket and hand it to ``conn``."""
    fd = conn._transport.get_extra_info("socket").fileno()  # non-blocking, like the socket
    total = 0
    while True:
        try:
            data = os.read(fd, 1 << 20)
        except BlockingIOError:
            return total
        if not data:
            return total
        total += len(data)
        conn.data_received(data)


async def test_big_frames_from_a_thread_while_the_loop_runs_arrive_intact_and_in_order():
    bigs = [os.urandom(BIG - i * 100_003) for i in range(3)]
    async with Pair() as pair:
        conn = pair.client

        def send_all():
            for i, data in enumerate(bigs):
                conn.send_threadsafe(CreateObject(data, 2 * i, "t"))
                conn.send_threadsafe(CreateObject(b"small%d" % i, 2 * i + 1, "t"))

        sender = Sender(send_all)
        sender.start()
        await join_threads([sender])
        assert sender.error is None
        await wait_for(lambda: len(pair.handler.received) >= 6 or pair.peer.closed)
        assert not pair.peer.closed, pair.peer.close_reason
        expected = []
        for i, data in enumerate(bigs):
            expected += [(2 * i, data), (2 * i + 1, b"small%d" % i)]
        assert pair.received_from("t") == expected


# --- c. DEFERRED replies from another thread ----------------------------------------------


async def test_deferred_reply_sent_from_another_thread_answers_the_request():
    async with Pair() as pair:
        reply = await asyncio.wait_for(pair.client.request(GetClusterInfo()), 5)
        assert reply == ClusterInfo(NODES)
        assert len(pair.handler.threads) == 1


async def test_deferred_replies_answered_out_of_order_reach_their_own_requests():
    async with Pair() as pair:
        pair.handler.answer_after = 8
        requests = [pair.client.request(GetObject(b"object-%d" % i, "reader")) for i in range(8)]
        replies = await asyncio.wait_for(asyncio.gather(*requests), 5)
        assert [r.payload for r in replies] == [b"object-%d" % i for i in range(8)]
        # and the connection still serves ordinary deferred requests afterwards
        reply = await asyncio.wait_for(pair.client.request(GetClusterInfo()), 5)
        assert reply == ClusterInfo(NODES)


async def test_reply_to_a_one_way_message_sends_nothing():
    async with Pair() as pair:
        pair.handler.answer_after = 1
        # no request id: the handler's Reply must not send (the client would see a
        # one-way ObjectReply it cannot handle and drop the connection)
        pair.client.send(GetObject(b"one-way", "reader"))
        await wait_for(lambda: pair.handler.threads)
        await join_threads(pair.handler.threads)
        reply = await asyncio.wait_for(pair.client.request(GetClusterInfo()), 5)
        assert reply == ClusterInfo(NODES)
        assert not pair.client.closed, pair.client.close_reason


# --- d. closing -----------------------------------------------------------------------------


async def test_send_threadsafe_after_close_does_nothing_and_the_dup_is_closed():
    async with Pair() as pair:
        conn = pair.client
        conn.send_threadsafe(note(7, 0))
        await wait_for(lambda: pair.handler.received)
        fd = conn._fd
        assert fd >= 0
        os.fstat(fd)  # open
        conn.close()
        assert conn._fd == -1
        with pytest.raises(OSError):  # nothing ran since close() that could reuse the number
            os.fstat(fd)

        sender = Sender(lambda: [conn.send_threadsafe(note(7, seq)) for seq in range(1, 50)])
        sender.start()
        await join_threads([sender])
        assert sender.error is None
        conn.send_threadsafe(note(7, 50))  # from the loop thread too
        assert conn._out == []
        await wait_for(lambda: pair.peer.closed)
        assert pair.received_from("s7") == [(0, payload(7, 0))]


async def test_send_threadsafe_to_a_vanished_peer_raises_nothing():
    async with Pair() as pair:
        conn = pair.client
        # the peer stops reading; the client's loop has not noticed yet (it is blocked)
        pair.peer._transport.get_extra_info("socket").shutdown(0)  # SHUT_RD
        sender = Sender(lambda: conn.send_threadsafe(note(8, 0)))
        sender.start()
        sender.join(5)
        assert sender.error is None
        assert pair.handler.received == []
