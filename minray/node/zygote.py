"""The zygote: a process forked from the node before it starts any thread or event loop.

The zygote then imports what workers run (``WORKER_MODULES``, and numpy if
installed), so forking a ready worker from it takes milliseconds instead of the
~0.3 s of a fresh interpreter. It serves one request per line on a socket pair:

    node -> zygote   "fork <worker_id hex>\\n"
    zygote -> node   "<worker_id hex> <pid>\\n"

and exits when the node closes its end. It reaps its children; the node learns
of a worker's death when the worker's connection closes. Standard library only,
so that the node can fork it before loading anything else (node/main.py); the
node's handle on it is ``worker_pool.ZygoteClient``.
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
import socket
import sys
import tempfile
import traceback
from collections.abc import Callable
from typing import Any

from ..proctitle import set_title

#: what a worker imports to run tasks; the zygote loads them before its first fork
WORKER_MODULES = (
    "minray.runtime.worker_main",
    "minray.runtime.core_worker",
    "minray.runtime.task_executor",
    "minray.debugger.remote_pdb",
    "minray.api",
)


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
        code = 0
        try:
            _zygote_main(zygote_end, worker_entry)
        except BaseException:  # noqa: B036 - a module that cannot load: said in the node's log
            traceback.print_exc()
            code = 1
        finally:
            sys.stderr.flush()
            os._exit(code)
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


#: objects that fill the allocator's free blocks (see _fill_free_blocks); kept for ever
_FILLERS: list = []


def _fill_free_blocks() -> None:
    """Fill the free blocks of the small-object allocator's partly used pools with small
    objects the zygote keeps. What a worker allocates after the fork then goes to pages of
    its own, not into holes spread over pages it shares with the zygote: writing one such
    hole copies a whole 4 KiB page. (CPython only: the counts come from its allocator's
    statistics; where they cannot be read, nothing is filled.)"""
    stats = getattr(sys, "_debugmallocstats", None)
    if stats is None:
        return
    with tempfile.TemporaryFile() as report:
        if sys.stderr is not None:
            sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(report.fileno(), 2)  # (the statistics go to the C-level stderr)
        try:
            stats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        report.seek(0)
        text = report.read().decode(errors="replace")
    for size, free in _free_blocks(text):
        for n in range(free):
            if size == 16:
                _FILLERS.append(object())
            elif size == 32:
                _FILLERS.append(n + 0.5)  # (a float: 24 bytes)
            elif size >= 48:
                _FILLERS.append(bytes(size - 33))  # (a bytes object: 33 bytes + its length)


def _free_blocks(report: str) -> list[tuple[int, int]]:
    """(block size, free blocks in used pools) per size class, from the allocator's
    statistics (``sys._debugmallocstats``: "class size pools in-use available" rows)."""
    rows = []
    for line in report.splitlines():
        fields = line.split()
        if len(fields) == 5 and all(field.isdigit() for field in fields):
            rows.append((int(fields[1]), int(fields[4])))
    return rows


def _clear_type_cache() -> None:
    """Empty the interpreter's cache of attribute lookups on types. Each entry holds a
    reference to an attribute name; a worker's own lookups replace entries, and dropping
    the old name's reference writes to that name's page, which copies it. Emptied, the
    cache holds no names of the zygote's to drop."""
    clear = getattr(sys, "_clear_internal_caches", None) or getattr(sys, "_clear_type_cache", None)
    if clear is not None:
        clear()


def _zygote_main(sock: socket.socket, worker_entry: Callable[[bytes], None]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, _reap)
    set_title("zygote")
    # what every worker runs, loaded once here (the node itself does not need it), while
    # the node goes on starting on the other core; then numpy, when installed
    for module in WORKER_MODULES:
        importlib.import_module(module)
    try:
        import numpy  # noqa: F401 - preload for workers when available
    except ImportError:
        pass
    # what the workers share with the zygote stays shared (each page a worker writes to is a
    # page copied): the freeze, so that a worker's garbage collections skip the objects
    # loaded here instead of writing to each; then a full collection, which has none of
    # them to visit (under 1 ms, where one before the freeze takes 6 ms) but empties the
    # interpreter's free lists, so a worker's first full collection frees none of the
    # zygote's objects; what a worker allocates goes to pages of its own, not into holes
    # in shared ones; and the type attribute cache holds none of the zygote's names
    gc.freeze()
    gc.collect()
    _fill_free_blocks()
    _clear_type_cache()
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
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        sock.sendall(f"{parts[1].decode()} {pid}\n".encode())
