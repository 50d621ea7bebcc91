"""The zygote: a process forked from the node before it starts any thread or event loop.

The zygote has imported the runtime (and numpy, if installed), so forking a
ready worker from it takes milliseconds instead of the ~0.3 s of a fresh
interpreter. It serves one request per line on a socket pair:

    node -> zygote   "fork <worker_id hex>\\n"
    zygote -> node   "<worker_id hex> <pid>\\n"

and exits when the node closes its end. It reaps its children; the node learns
of a worker's death when the worker's connection closes. The node's handle on it
is ``worker_pool.ZygoteClient``.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from ..proctitle import set_title


def worker_entry(settings: Any, token: bytes) -> Callable[[bytes], None]:
    """What a forked worker runs: the worker main loop of a node with these settings."""

    def entry(worker_id: bytes) -> None:
        from ..runtime.worker_main import run_worker

        run_worker(settings, token, worker_id)

    return entry


def start_zygote(worker_entry: Callable[[bytes], None]) -> tuple[int, socket.socket]:
    """Fork the zygote; returns its pid and the node's end of the socket pair."""
    node_end, zygote_end = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the zygote
        node_end.close()
        try:
            _zygote_main(zygote_end, worker_entry)
        finally:
            os._exit(0)
    zygote_end.close()
    return pid, node_end


def _reap(signum, frame) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _zygote_main(sock: socket.socket, worker_entry: Callable[[bytes], None]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, _reap)
    set_title("zygote")
    try:
        import numpy  # noqa: F401 - preload for workers when available
    except ImportError:
        pass
    reader = sock.makefile("rb")
    for line in reader:
        parts = line.split()
        if len(parts) != 2 or parts[0] != b"fork":
            continue
        worker_id = bytes.fromhex(parts[1].decode())
        pid = os.fork()
        if pid == 0:
            reader.close()
            sock.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                worker_entry(worker_id)
            except BaseException:  # noqa: B036 - report anything, then leave
                import traceback

                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        sock.sendall(f"{parts[1].decode()} {pid}\n".encode())
