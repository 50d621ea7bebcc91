"""``minray stack``: print the Python stacks of a cluster's processes, as ``ray stack`` does.

``minray stack [--actor-id ID | --worker-id ID] [--address HOST:PORT]`` prints
every thread's stack of the worker hosting the actor, of the worker (or driver)
named, or, with neither, of every worker and driver of the cluster. The stacks
are read in each process (runtime/stack_sampling.py), so no py-spy and no ptrace
permission is needed; the request travels as the dashboard's "Stack" button's
does (head/profile_service.py). The cluster is found as ``minray list`` finds it
(util/state/client.py).
"""

from __future__ import annotations

import argparse
import sys

from .protocol.connection import RemoteError
from .protocol.messages import GetStacks, Stacks
from .runtime.stacks import ANSWER_TIMEOUT_S, format_dump
from .util import state
from .util.state.client import ask

#: seconds the CLI waits for one process's stacks (its node and the head wait less)
TIMEOUT_S = 3 * ANSWER_TIMEOUT_S


def add_command(commands) -> None:
    stack = commands.add_parser(
        "stack", help="print the Python stacks of an actor's or a worker's threads (or all)"
    )
    which = stack.add_mutually_exclusive_group()
    which.add_argument("--actor-id", default=None, help="the worker hosting this actor (hex)")
    which.add_argument("--worker-id", default=None, help="this worker or driver (hex)")
    stack.add_argument("--address", default=None, help="the head's HOST:PORT")


def run(args: argparse.Namespace) -> int:
    try:
        targets = _targets(args)
        failed = 0
        for worker_id, actor_id in targets:
            try:
                reply = ask(GetStacks(b"", worker_id, actor_id), args.address, TIMEOUT_S)
            except RemoteError as e:
                if len(targets) == 1:
                    raise
                failed += 1  # (it exited since it was listed, most likely)
                print(f"worker {worker_id.hex()}: {e}\n", file=sys.stderr)
                continue
            print(header(reply))
            print(format_dump(_threads(reply)))
    except (ValueError, ConnectionError, RemoteError, state.RayStateApiException) as e:
        print(f"minray stack: {e}", file=sys.stderr)
        return 1
    return 1 if failed and failed == len(targets) else 0


def header(reply: Stacks) -> str:
    """The line above a process's stacks: which process, worker and node."""
    return f"Process {reply.pid}: worker {reply.worker_id.hex()} on node {reply.node_id.hex()[:12]}"


def _targets(args: argparse.Namespace) -> list[tuple[bytes, bytes]]:
    """``(worker_id, actor_id)`` of each process to print: the one named, or every
    worker and driver of the cluster."""
    if args.actor_id or args.worker_id:
        return [_target(args.worker_id or "", args.actor_id or "")]
    rows = state.list_workers(args.address, limit=10_000)
    return [(bytes.fromhex(row.worker_id), b"") for row in rows]


def _target(worker_hex: str, actor_hex: str) -> tuple[bytes, bytes]:
    try:
        return bytes.fromhex(worker_hex), bytes.fromhex(actor_hex)
    except ValueError:
        raise ValueError(
            f"{'--actor-id' if actor_hex else '--worker-id'} must be a hex id, as "
            "`minray list actors` / `minray list workers` print it"
        ) from None


def _threads(reply: Stacks) -> list:
    return [(name, ident, [tuple(f) for f in frames]) for name, ident, frames in reply.threads]
