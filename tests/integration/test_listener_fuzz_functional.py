"""Fuzzed listeners: random and mutated frames, sent to every kind of minray listener.

One cluster for the module: a head (127.0.0.1) and a node "on another machine"
(127.0.0.2, reached over TCP), each with a worker hosting an actor. The
listeners under test:

* the head services' TCP listener (in the head node's process),
* the second node's Unix socket and its TCP listener,
* a worker's listener: TCP on the second node, a Unix socket on the head.

Before the handshake a client sends random bytes, frames of wrong and huge
lengths, a forged handshake answer, a well-formed message, and pickles whose
unpickling would create a marker file. After the handshake it sends truncated
msgpack, msgpack of the wrong shape, unknown message types, replies to requests
never made, and real message types with random field values. After each test:
the process is up, has no more file descriptors than before (bounded wait), the
marker file does not exist, and a real minray call through the cluster works.

Also here: slow-loris clients (silent, or one byte at a time) are dropped at the
handshake deadline, and cannot exhaust a listener (the cap on connections in
their handshake) while token holders keep working.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import struct
import tempfile
import time

import msgpack
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minray
from minray import object_ref
from minray.cluster_utils import Cluster
from minray.protocol import framing
from minray.protocol.messages import (
    MESSAGE_CLASSES,
    ErrorReply,
    GetClusterInfo,
    MsgType,
    RequestLease,
)

HANDSHAKE_TIMEOUT_S = 2.0
MAX_HANDSHAKING = 8
MAX_PENDING_LEASES = 20
HELLO_SIZE = 4 + len(framing.MAGIC) + framing.NONCE_SIZE
PROOF_SIZE = 4 + framing.DIGEST_SIZE
FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

#: messages that stop or kill something by design (a token holder may): not fuzzed, so
#: that the cluster under test keeps its nodes, workers and actors
DESTRUCTIVE = {
    MsgType.SHUTDOWN_NODE,
    MsgType.KILL_NODE,
    MsgType.KILL_WORKER,
    MsgType.KILL_ACTOR,
    MsgType.KILL_ACTOR_WORKER,
    MsgType.EXIT_IF_IDLE,
    MsgType.EXIT_ACTOR,
    MsgType.UNREGISTER_NODE,
    MsgType.REGISTER_NODE,
    MsgType.NODE_DIED,
}
FUZZED_TYPES = sorted(int(t) for t in MESSAGE_CLASSES if t not in DESTRUCTIVE)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=40)
)
VALUES = st.recursive(
    SCALARS,
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(st.text(max_size=6) | st.integers(-5, 5), kids, max_size=4)
    ),
    max_leaves=10,
)


class Marker:
    """Unpickling this creates the marker file: proof that a stranger's bytes were loaded."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def fuzz_cluster():
    """The cluster, its listeners ``{name: (address, pid)}``, its token and the marker path."""
    env = {
        "MINRAY_HANDSHAKE_TIMEOUT_S": str(HANDSHAKE_TIMEOUT_S),
        "MINRAY_MAX_HANDSHAKING_CONNECTIONS": str(MAX_HANDSHAKING),
        "MINRAY_MAX_PENDING_LEASES_PER_CLIENT": str(MAX_PENDING_LEASES),
    }
    with pytest.MonkeyPatch.context() as mp, tempfile.TemporaryDirectory() as tmp:
        for key, value in env.items():
            mp.setenv(key, value)
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        try:
            node = cluster.add_node(num_cpus=1, resources={"far": 10}, node_ip_address="127.0.0.2")
            cluster.wait_for_nodes()
            cluster.connect()
            far = Probe.options(num_cpus=0, resources={"far": 1}).remote()
            near = Probe.options(num_cpus=0).remote()
            far_address, far_pid = minray.get(far.where.remote(), timeout=60)
            near_address, near_pid = minray.get(near.where.remote(), timeout=60)
            info = [n for n in minray.nodes() if n["NodeID"] == node.node_id][0]
            listeners = {
                "head": (f"tcp:{cluster.address}", cluster.head_node.pid),
                "node_unix": (f"unix:{os.path.join(node.session_dir, 'node.sock')}", node.pid),
                "node_tcp": (f"tcp:127.0.0.2:{info['NodeManagerPort']}", node.pid),
                "worker_tcp": (far_address, far_pid),
                "worker_unix": (near_address, near_pid),
            }
            assert far_address.startswith("tcp:127.0.0.2:")
            assert near_address.startswith("unix:")
            marker = os.path.join(tmp, "unpickled-from-a-stranger")
            yield cluster, listeners, cluster.token, marker, (far, near)
        finally:
            nodes = cluster.list_all_nodes()
            cluster.shutdown()
            for n in nodes:
                assert not os.path.exists(n.session_dir)


@minray.remote
class Probe:
    def where(self) -> tuple[str, int]:
        return object_ref.current_worker.address, os.getpid()

    def ping(self) -> str:
        return "pong"


@minray.remote
def plus_one(x: int) -> int:
    return x + 1


# --- a raw client ------------------------------------------------------------------------


def raw_connect(address: str) -> socket.socket:
    scheme, _, rest = address.partition(":")
    if scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: object = rest
    else:
        host, _, port = rest.rpartition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        target = (host, int(port))
    sock.settimeout(5)
    sock.connect(target)
    return sock


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {size} bytes")
        data += chunk
    return data


def handshake(sock: socket.socket, token: bytes) -> None:
    hello = read_exactly(sock, HELLO_SIZE)
    answer = framing.client_answer(token, hello[4:], framing.new_nonce())
    sock.sendall(framing.frame(answer))
    read_exactly(sock, PROOF_SIZE)


def read_until_closed(sock: socket.socket, timeout: float = 5) -> bytes:
    """Read until the server closes the connection (within ``timeout``), then close it."""
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except TimeoutError:
        pass
    except OSError:  # reset by the server: closed too
        return data
    finally:
        sock.close()
    raise AssertionError(f"the listener kept the connection open past {timeout} s")


def finish(sock: socket.socket, timeout: float = 5) -> bytes:
    """Stop sending, then read until the server closes (within ``timeout``)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
    return read_until_closed(sock, timeout)


def send_quietly(sock: socket.socket, data: bytes) -> None:
    """Send; the server may already have closed on an earlier part (that is fine)."""
    with contextlib.suppress(OSError):
        sock.sendall(data)


# --- what is checked after each test ---------------------------------------------------------


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def assert_healthy(fuzz_cluster, baseline: dict[str, int]) -> None:
    """Every listener's process is up, holds no more descriptors than ``baseline`` (after
    a bounded wait for closes to land), nothing was unpickled, and real calls work."""
    _, listeners, _, marker, (far, near) = fuzz_cluster
    for name, (_, pid) in listeners.items():
        process = psutil.Process(pid)
        assert process.is_running() and process.status() != psutil.STATUS_ZOMBIE, name
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        grown = {n: fd_count(p) for n, (_, p) in listeners.items() if fd_count(p) > baseline[n]}
        if not grown:
            break
        time.sleep(0.1)
    assert not grown, f"file descriptors leaked: {grown} (before: {baseline})"
    assert not os.path.exists(marker), "a stranger's pickle was unpickled"
    assert minray.get([plus_one.remote(1), plus_one.options(resources={"far": 1}).remote(2)],
                      timeout=60) == [2, 3]  # fmt: skip
    assert minray.get([far.ping.remote(), near.ping.remote()], timeout=60) == ["pong", "pong"]


@pytest.fixture
def healthy_after(fuzz_cluster):
    """Check health after the test, against descriptor counts taken before it."""
    _, listeners, *_ = fuzz_cluster
    baseline = {name: fd_count(pid) for name, (_, pid) in listeners.items()}
    yield
    assert_healthy(fuzz_cluster, baseline)


LISTENERS = ["head", "node_unix", "node_tcp", "worker_tcp", "worker_unix"]


# --- before the handshake ----------------------------------------------------------------------


def stranger_payloads(marker: str) -> st.SearchStrategy[bytes]:
    """What a client that does not hold the token sends after connecting."""
    evil = pickle.dumps(Marker(marker))
    message = framing.encode(GetClusterInfo(), 1)
    return st.one_of(
        st.binary(min_size=1, max_size=300),  # noise
        st.builds(  # a frame whose header says any length, with any body
            lambda size, body: struct.pack(">I", size) + body,
            st.integers(0, 2**32 - 1),
            st.binary(max_size=200),
        ),
        st.binary(min_size=64, max_size=64).map(framing.frame),  # a forged answer
        st.just(framing.frame(evil)),
        st.just(evil),
        st.just(message),  # a well-formed message, before the handshake
        st.just(framing.frame(msgpack.packb([int(MsgType.PUSH_TASK), 1, evil]))),
        st.binary(max_size=framing.HANDSHAKE_MAX).map(lambda b: framing.frame(b) + message),
    )


@pytest.mark.parametrize("listener", LISTENERS)
def test_a_stranger_gets_nothing_but_the_hello_and_breaks_nothing(
    fuzz_cluster, healthy_after, listener
):
    _, listeners, _, marker, _ = fuzz_cluster
    address, _ = listeners[listener]

    @FUZZ
    @given(payload=stranger_payloads(marker))
    def one(payload: bytes) -> None:
        sock = raw_connect(address)
        send_quietly(sock, payload)
        received = finish(sock)
        # the hello (and nothing else: no reply, no proof) is all a stranger ever reads
        assert received[:8] == struct.pack(">I", HELLO_SIZE - 4) + framing.MAGIC
        assert len(received) == HELLO_SIZE, f"a stranger was answered: {received[HELLO_SIZE:]!r}"

    one()


# --- after the handshake -----------------------------------------------------------------------


def wrong_shapes() -> st.SearchStrategy[bytes]:
    """Frame bodies an authenticated client may send by mistake (or malice)."""
    valid = framing.encode(GetClusterInfo(), 7)[4:]
    return st.one_of(
        st.binary(max_size=200),  # not msgpack, or msgpack of anything
        VALUES.map(lambda v: msgpack.packb(v)),  # msgpack, not an array
        st.lists(VALUES, max_size=6).map(msgpack.packb),  # an array of anything
        st.integers(1, len(valid) - 1).map(lambda cut: valid[:cut]),  # truncated msgpack
        st.tuples(
            st.integers(0, 300), st.integers(-(2**60), 2**60), st.lists(VALUES, max_size=8)
        ).map(lambda t: msgpack.packb([t[0], t[1], *t[2]])),  # any type code, any field count
        st.builds(  # a real message type with the right number of random fields, as a request
            lambda kind, request_id, data: msgpack.packb(
                [
                    kind,
                    request_id,
                    *data.draw(st.lists(VALUES, min_size=FIELD(kind), max_size=FIELD(kind))),
                ]
            ),  # fmt: skip
            st.sampled_from(FUZZED_TYPES),
            st.integers(-3, 3),
            st.data(),
        ),
    )


def FIELD(kind: int) -> int:  # noqa: N802 (reads as a constant in the strategy above)
    return len(MESSAGE_CLASSES[kind].__slots__)


@pytest.mark.parametrize("listener", LISTENERS)
def test_a_token_holder_sending_malformed_frames_breaks_nothing(
    fuzz_cluster, healthy_after, listener
):
    _, listeners, token, _, _ = fuzz_cluster
    address, _ = listeners[listener]

    @FUZZ
    @given(
        bodies=st.lists(wrong_shapes(), min_size=1, max_size=3),
        tail=st.sampled_from(["", "huge", "short"]),
    )
    def one(bodies: list[bytes], tail: str) -> None:
        sock = raw_connect(address)
        handshake(sock, token)
        data = b"".join(framing.frame(b) for b in bodies)
        if tail == "huge":  # past max_frame_bytes: closed as soon as the header arrives
            data += struct.pack(">I", 2**32 - 1)
        elif tail == "short":  # a header promising more than ever comes
            data += struct.pack(">I", 1000) + b"x" * 10
        send_quietly(sock, data)
        finish(sock)

    one()


# --- slow clients --------------------------------------------------------------------------------


@pytest.mark.parametrize("listener", LISTENERS)
def test_a_silent_or_trickling_client_is_dropped_at_the_handshake_deadline(
    fuzz_cluster, healthy_after, listener
):
    _, listeners, _, _, _ = fuzz_cluster
    address, _ = listeners[listener]
    silent, trickling = raw_connect(address), raw_connect(address)
    start = time.monotonic()
    with contextlib.suppress(OSError):
        for i in range(int(4 * HANDSHAKE_TIMEOUT_S / 0.1)):  # one byte per 100 ms
            trickling.send(b"\x00" if i < 3 else b"\x40")
            time.sleep(0.1)
    trickled = time.monotonic() - start
    trickling.close()
    assert 0.8 * HANDSHAKE_TIMEOUT_S < trickled < 3 * HANDSHAKE_TIMEOUT_S
    hello = read_until_closed(silent, timeout=3 * HANDSHAKE_TIMEOUT_S)
    assert hello[4:8] == framing.MAGIC and len(hello) == HELLO_SIZE


@pytest.mark.parametrize("listener", LISTENERS)
def test_strangers_cannot_exhaust_a_listener_while_token_holders_keep_working(
    fuzz_cluster, healthy_after, listener
):
    _, listeners, token, _, _ = fuzz_cluster
    address, pid = listeners[listener]
    before = fd_count(pid)
    strangers = []
    try:
        for _ in range(5 * MAX_HANDSHAKING):
            strangers.append(raw_connect(address))
        time.sleep(0.2)
        # each connection in its handshake holds two descriptors (the socket and its dup);
        # past the cap the oldest are closed, so 40 strangers hold no more than 8 do
        held = fd_count(pid) - before
        assert held <= 2 * MAX_HANDSHAKING + 4, f"{held} descriptors held by strangers"
        # while strangers fill the cap, a token holder gets in, and minray calls work
        sock = raw_connect(address)
        handshake(sock, token)
        finish(sock)
        assert minray.get(plus_one.remote(41), timeout=30) == 42
    finally:
        for sock in strangers:
            sock.close()


# --- a client flooding lease requests --------------------------------------------------------


@pytest.mark.parametrize("listener", ["node_unix", "node_tcp"])
def test_a_client_flooding_lease_requests_is_refused_past_the_cap(
    fuzz_cluster, healthy_after, listener
):
    _, listeners, token, _, _ = fuzz_cluster
    address, _ = listeners[listener]
    sock = raw_connect(address)
    handshake(sock, token)
    flood = 3 * MAX_PENDING_LEASES
    infeasible = {"CPU": 1000.0}  # waits at the node for good (the node has 1 CPU)
    sock.sendall(
        b"".join(
            framing.encode(RequestLease(i, infeasible, "flood", b"", {}, True, None, None, b""), i)
            for i in range(1, flood + 1)
        )
    )
    decoder, refusals = framing.FrameDecoder(1 << 20), {}
    deadline = time.monotonic() + 10
    while len(refusals) < flood - MAX_PENDING_LEASES and time.monotonic() < deadline:
        for body in decoder.feed(sock.recv(65536)):
            msg, request_id = framing.decode(body)
            if type(msg) is ErrorReply:
                refusals[-request_id] = msg
    sock.close()
    assert sorted(refusals) == list(range(MAX_PENDING_LEASES + 1, flood + 1))
    assert all("MINRAY_MAX_PENDING_LEASES_PER_CLIENT" in m.message for m in refusals.values())
