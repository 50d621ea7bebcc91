"""``minray debug``: list the tasks paused at a breakpoint and attach this terminal to one.

``minray debug [N] [--index N] [--wait SECONDS] [--address HOST:PORT]`` finds
the cluster as ``minray list`` does (minray/util/state/client.py: an address, a
head started on this machine, else the newest script running an embedded
cluster), reads the open breakpoints from its internal KV (registry.py), prints
them numbered, oldest first, and attaches to the one chosen (``N``, or the
index typed at the prompt). Attaching dials the paused worker's pdb socket and
proves the cluster token (the handshake of protocol/framing.py); then lines
typed here go to pdb and pdb's output comes here, until the session ends
(``continue`` or ``quit`` there, end of input or Ctrl-C here).
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import sys
import time

from ..head.query import parse_host_port
from ..protocol import blocking, tls
from ..protocol.connection import RemoteError
from ..protocol.framing import ProtocolError
from ..protocol.messages import KvRequest
from ..util.state.client import RayStateApiException, ask, ask_with_token
from .registry import NAMESPACE, Breakpoint

#: seconds for each question to the cluster, and to dial and authenticate at a worker
TIMEOUT_S = 10.0
#: seconds between looks for a breakpoint with --wait
POLL_S = 0.25


def add_command(commands) -> None:
    debug = commands.add_parser(
        "debug", help="list tasks paused at breakpoint() and attach a pdb session to one"
    )
    debug.add_argument("number", nargs="?", type=int, help="attach to this breakpoint index")
    debug.add_argument("--index", type=int, default=None, help="the same, as an option")
    debug.add_argument(
        "--wait", type=float, default=0.0, metavar="SECONDS",
        help="wait this long for a breakpoint when there is none yet",
    )  # fmt: skip
    debug.add_argument("--address", default=None, help="the head's HOST:PORT")


def run(args: argparse.Namespace) -> int:
    index = args.index if args.index is not None else args.number
    try:
        found, token = _wait_for_breakpoints(args.address, args.wait)
    except (ValueError, ConnectionError, RemoteError, RayStateApiException) as e:
        print(f"minray debug: {e}", file=sys.stderr)
        return 1
    if not found:
        print("No active breakpoints: no task or actor is paused at breakpoint().")
        return 0
    print(_table(found))
    chosen = str(index)
    if index is None:
        chosen = _ask("Enter a breakpoint index (or press Enter to quit): ").strip()
        if not chosen:
            return 0
        index = int(chosen) if chosen.isdigit() else -1
    if not 0 <= index < len(found):
        print(f"minray debug: no breakpoint {chosen!r}; give an index from 0 to {len(found) - 1}",
              file=sys.stderr)  # fmt: skip
        return 2
    key, entry = found[index]
    return attach(entry, key, token, args.address)


def breakpoints(address: str | None) -> tuple[list[tuple[bytes, Breakpoint]], bytes]:
    """The open breakpoints of the cluster (oldest first) and the cluster's token."""
    keys, token = ask_with_token(KvRequest("keys", NAMESPACE, b"", None, False), address, TIMEOUT_S)
    found = []
    for key in keys.result:
        blob = ask(KvRequest("get", NAMESPACE, key, None, False), address, TIMEOUT_S).result
        if blob is not None:  # (resumed since we listed it)
            found.append((key, Breakpoint.from_bytes(blob)))
    found.sort(key=lambda item: item[1].time)
    return found, token


def attach(entry: Breakpoint, key: bytes, token: bytes, address: str | None) -> int:
    """Bridge this terminal to the paused task's pdb until the session ends."""
    host, port = parse_host_port(entry.address)
    try:
        sock = blocking.dial(f"tcp:{host}:{port}", token, TIMEOUT_S)
    except tls.TLSHandshakeError as e:  # says which side refused and why
        print(f"minray debug: {e}", file=sys.stderr)
        return 1
    except (ProtocolError, ConnectionError) as e:
        if isinstance(e, ConnectionRefusedError):
            print(f"minray debug: {entry.task} is no longer paused there (resumed, or its "
                  "worker exited)", file=sys.stderr)  # fmt: skip
            return 1
        print(f"minray debug: the paused task at {entry.address} refused the connection "
              f"({e}): the token is not the cluster's", file=sys.stderr)  # fmt: skip
        return 1
    except TimeoutError:
        print(f"minray debug: {entry.task} at {entry.address} did not answer in {TIMEOUT_S:g} s; "
              "is another minray debug attached to it?", file=sys.stderr)  # fmt: skip
        return 1
    except OSError as e:
        print(f"minray debug: could not reach {entry.address} ({e}). Its worker listens on "
              f"its node's address ({entry.node_ip}): run minray debug where it can be "
              "reached.", file=sys.stderr)  # fmt: skip
        return 1
    print(f"Attached to {entry.task} (pid {entry.pid}) at {entry.file}:{entry.line}: `c` "
          "continues it, `q` ends it with BdbQuit, Ctrl-C detaches.", file=sys.stderr)  # fmt: skip
    try:
        _bridge(sock)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    if _still_open(key, address):
        print("\nminray debug: detached; the task is still paused (run minray debug again).",
              file=sys.stderr)  # fmt: skip
    else:
        print("\nminray debug: the session ended.", file=sys.stderr)
    return 0


def _bridge(sock: socket.socket) -> None:
    """Copy stdin to the socket and the socket to stdout until the socket closes."""
    sock.settimeout(None)
    stdin = sys.stdin.fileno()
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        selector.register(stdin, selectors.EVENT_READ)
        while True:  # ends when the worker closes the session
            for key, _ in selector.select():
                if key.fileobj is sock:
                    data = sock.recv(65536)
                    if not data:
                        return
                    sys.stdout.buffer.write(data)
                    sys.stdout.flush()
                    continue
                line = os.read(stdin, 65536)
                if line:
                    sock.sendall(line)
                else:  # end of input: pdb sees it and lets the next client attach
                    selector.unregister(stdin)
                    sock.shutdown(socket.SHUT_WR)


def _still_open(key: bytes, address: str | None) -> bool:
    try:
        request = KvRequest("exists", NAMESPACE, key, None, False)
        return bool(ask(request, address, TIMEOUT_S).result)
    except (ConnectionError, RemoteError, RayStateApiException):
        return False  # the cluster is gone: so is the task


def _wait_for_breakpoints(address: str | None, wait: float):
    """The breakpoints, waiting up to ``wait`` seconds for one (and for the cluster: a
    script started a moment ago may not have one yet)."""
    deadline = time.monotonic() + max(wait, 0.0)
    while True:  # bounded by --wait
        try:
            found, token = breakpoints(address)
        except (ConnectionError, RayStateApiException):
            if time.monotonic() >= deadline:
                raise
            found = token = None
        if found or time.monotonic() >= deadline:
            return found, token
        time.sleep(POLL_S)


def _ask(prompt: str) -> str:
    sys.stdout.write(prompt)
    sys.stdout.flush()
    return _read_line()


def _read_line(limit: int = 1024) -> str:
    """A line from stdin read byte by byte, so that nothing typed after it stays in a
    buffer the bridge would not see (input() reads ahead when stdin is a pipe)."""
    data = bytearray()
    while len(data) < limit and (byte := os.read(sys.stdin.fileno(), 1)):  # "" at the end
        if byte == b"\n":
            break
        data += byte
    return data.decode(errors="replace")


def _table(found: list[tuple[bytes, Breakpoint]]) -> str:
    rows = [("INDEX", "PAUSED AT", "TASK", "FILE:LINE", "PID", "NODE")]
    for i, (_, b) in enumerate(found):
        when = time.strftime("%H:%M:%S", time.localtime(b.time))
        task = f"{b.task} (post-mortem)" if b.post_mortem else b.task
        where = f"{os.path.basename(b.file)}:{b.line}"
        rows.append((str(i), when, task, where, str(b.pid), b.node_ip))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "Active breakpoints:\n" + "\n".join(lines)
