"""``minray chaos``: break your own cluster on purpose, to watch it recover.

``minray chaos kill-worker | kill-node | kill-actor [--every SECONDS] [--count N]
[--name NAME] [--address HOST:PORT] [--token HEX]``

* ``kill-worker``: a random worker process that runs a task or hosts an actor
  (never a driver, a node or its zygote);
* ``kill-node``: a random node other than the head, with all its workers;
* ``kill-actor``: the worker of a random live actor that is not detached, or of
  the actor called ``--name`` (detached or not): it restarts if its
  ``max_restarts`` allows, as after a crash (unlike ``minray.kill``).

What to kill is chosen here from the state API; the kill itself is a message to
the head, which passes it to the node that runs the process, and that node
kills it by pid (node/fault_injection.py), so this works from any machine that
holds the cluster token. Each kill prints one line; ``--count`` (default 1)
bounds the run, ``--every`` spaces the kills, Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from .head.query import query_head
from .node.cluster_address import connection_target
from .protocol.connection import RemoteError
from .protocol.messages import GetClusterInfo, GetStates, KillNode, KillWorker, ProcessKilled

#: a chosen worker may finish (and go idle) before the kill arrives: choose again
_TRIES = 3


def add_commands(commands) -> None:
    chaos = commands.add_parser(
        "chaos", help="kill a random worker, node or actor of your cluster, to test recovery"
    )
    chaos.add_argument(
        "action", choices=["kill-worker", "kill-node", "kill-actor"],
        help="kill-worker: a random worker running a task or hosting an actor; kill-node: a "
        "random node other than the head, with its workers; kill-actor: the worker of a "
        "random actor that is not detached (it restarts if it may)",
    )  # fmt: skip
    chaos.add_argument(
        "--every", type=float, default=None, metavar="SECONDS",
        help="repeat, this many seconds apart, until --count kills were tried",
    )  # fmt: skip
    chaos.add_argument("--count", type=int, default=1, help="how many kills (default 1)")
    chaos.add_argument(
        "--name", default=None, help="kill-actor: the actor with this name (detached or not)"
    )
    chaos.add_argument(
        "--address", default="auto",
        help="HOST:PORT of the head (default: the cluster started on this machine)",
    )  # fmt: skip
    chaos.add_argument(
        "--token", default=None,
        help="the cluster token (hex); else $MINRAY_AUTH_TOKEN or ~/.minray/auth_token",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Kill ``--count`` times; 0 if every round killed something, 1 if any found nothing
    (or on an error), 130 when stopped with Ctrl-C."""
    try:
        _check(args)
        address, token = connection_target(args.address, args.token)
    except (ValueError, ConnectionError) as e:
        print(f"minray chaos: {e}", file=sys.stderr)
        return 1
    chooser = random.Random()
    killed = 0
    try:
        for round_ in range(args.count):
            if round_ and args.every:
                time.sleep(args.every)
            reply = _kill_once(args, address, token, chooser)
            stamp = time.strftime("%H:%M:%S")
            if isinstance(reply, ProcessKilled):
                killed += 1
                print(f"{stamp} killed {reply.what} (pid {reply.pid}) on {reply.node_ip}, "
                      f"node {reply.node_id.hex()[:12]}", flush=True)  # fmt: skip
            else:
                print(f"{stamp} nothing to kill: {reply}", flush=True)
    except KeyboardInterrupt:
        print(f"minray chaos: stopped after {killed} kill(s)", file=sys.stderr)
        return 130
    except (ConnectionError, RemoteError) as e:
        print(f"minray chaos: {e}", file=sys.stderr)
        return 1
    return 0 if killed == args.count else 1


def _check(args: argparse.Namespace) -> None:
    if args.count < 1:
        raise ValueError(f"--count must be at least 1, got {args.count}")
    if args.every is not None and args.every <= 0:
        raise ValueError(f"--every must be a positive number of seconds, got {args.every}")
    if args.name is not None and args.action != "kill-actor":
        raise ValueError(f"--name picks an actor: it goes with kill-actor, not {args.action}")


def _kill_once(args, address: str, token: bytes, chooser: random.Random) -> ProcessKilled | str:
    """One kill: the head's answer, or why there was nothing to kill."""
    if args.action == "kill-node":
        nodes = query_head(address, token, GetClusterInfo()).nodes
        others = [n for n in nodes if n["Alive"] and not n.get("IsHead")]
        if not others:
            return "the cluster has no live node besides the head"
        return query_head(address, token, KillNode(bytes.fromhex(chooser.choice(others)["NodeID"])))
    for _ in range(_TRIES):
        victims = _workers(args, address, token)
        if isinstance(victims, str):
            return victims
        node_id, pid = chooser.choice(victims)
        try:
            return query_head(address, token, KillWorker(bytes.fromhex(node_id), pid))
        except RemoteError as e:  # it finished (or died) since we looked
            last = str(e)
    return f"the workers chosen were gone or idle by the time the kill came ({last})"


def _workers(args, address: str, token: bytes) -> list[tuple[str, int]] | str:
    """``(node id, pid)`` of each worker that may be killed, or why there is none."""
    if args.action == "kill-worker":
        rows = query_head(address, token, GetStates("workers", False)).rows
        busy = [r for r in rows if r["worker_type"] == "WORKER" and r["busy"]]
        found = [(r["node_id"], r["pid"]) for r in busy]
        return found or "no worker runs a task or hosts an actor now"
    rows = query_head(address, token, GetStates("actors", False)).rows
    alive = [r for r in rows if r["state"] == "ALIVE" and r["pid"] and r["node_id"]]
    if args.name is not None:
        found = [(r["node_id"], r["pid"]) for r in alive if r["name"] == args.name]
        return found or f"no live actor is named {args.name!r}"
    found = [(r["node_id"], r["pid"]) for r in alive if not r["is_detached"]]
    return found or "no live actor that is not detached (name one with --name)"
