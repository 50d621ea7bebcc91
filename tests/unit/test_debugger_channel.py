"""The paused worker's side of remote breakpoints, without a cluster: the channel's
token check, its line I/O, detach and re-attach, and the registry's records."""

from __future__ import annotations

import socket
import threading

import pytest

from minray.debugger.channel import DebugChannel
from minray.debugger.registry import Breakpoint, entry_key, worker_prefix
from minray.protocol import blocking
from minray.protocol.framing import ProtocolError, new_token

TOKEN = new_token()
TIMEOUT_S = 10.0


class Pdb:
    """Stands in for pdb: reads lines from the channel on a thread, as the task's would."""

    def __init__(self, channel: DebugChannel, count: int) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(channel, count), daemon=True)
        self.thread.start()

    def _read(self, channel: DebugChannel, count: int) -> None:
        for _ in range(count):
            self.lines.append(channel.readline())

    def join(self) -> None:
        self.thread.join(TIMEOUT_S)
        assert not self.thread.is_alive(), "the channel never gave the lines"


@pytest.fixture
def channel():
    registered: list[str] = []
    listening = threading.Event()

    def register(address: str) -> None:
        registered.append(address)
        listening.set()

    ch = DebugChannel("127.0.0.1", TOKEN, register, lambda: registered.append("gone"))
    ch.registered, ch.listening = registered, listening
    yield ch
    ch.end()


def dial(ch: DebugChannel, token: bytes = TOKEN) -> socket.socket:
    assert ch.listening.wait(TIMEOUT_S), "the channel did not listen"
    host, port = ch.registered[0].rsplit(":", 1)
    return blocking.dial(f"tcp:{host}:{port}", token, TIMEOUT_S)


def test_output_written_before_a_client_attaches_reaches_it_then_its_lines_are_read(channel):
    shown = b"> where it stopped\n(Pdb) "
    channel.write(shown.decode())
    pdb = Pdb(channel, 1)
    with dial(channel) as client:
        assert blocking.recv_exactly(client, len(shown)) == shown
        client.sendall(b"p x\n")
        pdb.join()
    assert pdb.lines == ["p x\n"]


def test_a_client_with_the_wrong_token_is_refused_and_the_next_one_is_served(channel):
    pdb = Pdb(channel, 1)
    with pytest.raises((ProtocolError, ConnectionError)):
        dial(channel, token=new_token())
    with dial(channel) as client:
        client.sendall(b"c\n")
        pdb.join()
    assert pdb.lines == ["c\n"]


def test_a_client_that_goes_away_leaves_the_session_open_for_the_next(channel):
    pdb = Pdb(channel, 2)
    with dial(channel) as first:
        first.sendall(b"where\n")
    with dial(channel) as second:
        second.sendall(b"c\n")
        pdb.join()
    assert pdb.lines == ["where\n", "c\n"]
    assert len(channel.registered) == 1  # one entry for the whole session


def test_end_removes_the_entry_then_closes_the_client(channel):
    pdb = Pdb(channel, 1)
    with dial(channel) as client:
        client.sendall(b"c\n")
        pdb.join()
        channel.end()
        assert channel.registered[-1] == "gone"
        client.settimeout(TIMEOUT_S)
        assert client.recv(10) == b""
    assert channel.address is None
    channel.end()  # twice is harmless
    assert channel.registered.count("gone") == 1


def test_a_breakpoint_that_cannot_be_registered_fails_with_the_reason_and_closes_its_socket():
    def register(address: str) -> None:
        raise ConnectionError("the head is unreachable")

    ch = DebugChannel("127.0.0.1", TOKEN, register, lambda: None)
    with pytest.raises(ConnectionError, match="the head is unreachable"):
        ch.readline()
    assert ch.address is None


def test_a_breakpoint_record_round_trips_and_keys_group_by_worker():
    entry = Breakpoint("f", "ab", "/x.py", 3, "f", 12, "127.0.0.1", "cd", "127.0.0.1:9", 1.0)
    assert Breakpoint.from_bytes(entry.to_bytes()) == entry
    key = entry_key(b"\x01", b"\x02", 7)
    assert key.startswith(worker_prefix(b"\x01", b"\x02")) and key == b"01:02:7"
    with pytest.raises(ValueError, match="not a minray breakpoint entry"):
        Breakpoint.from_bytes(b'{"task": 1}')
