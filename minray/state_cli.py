"""``minray list`` and ``minray summary``: the state API in a terminal.

``minray list tasks|actors|objects|nodes|jobs|workers|placement-groups [--filter K=V]
[--limit N] [--detail] [--format table|json] [--address HOST:PORT]`` and
``minray summary tasks|actors``; ``minray timeline [--output FILE]`` writes a
Chrome trace of the task runs. Without ``--address`` they ask the cluster that
``MINRAY_ADDRESS`` or a head started on this machine names, else the newest
script running an embedded cluster (see minray/util/state/client.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .util import state
from .util.state.why import NOT_YET

KINDS = {
    "actors": state.list_actors,
    "nodes": state.list_nodes,
    "jobs": state.list_jobs,
    "workers": state.list_workers,
    "objects": state.list_objects,
    "placement-groups": state.list_placement_groups,
    "tasks": state.list_tasks,
}


#: the states of tasks and actors that wait, with a reason to show (``minray why`` says more)
WAITING = {
    "tasks": ("PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT"),
    "actors": ("PENDING_CREATION", "RESTARTING"),
}


def add_commands(commands) -> None:
    listing = commands.add_parser("list", help="list tasks, actors, nodes, jobs, workers...")
    listing.add_argument("kind", choices=sorted(KINDS))
    listing.add_argument(
        "--filter", action="append", default=[], metavar="KEY=VALUE",
        help="keep rows whose column KEY is VALUE (KEY!=VALUE: is not); may repeat",
    )  # fmt: skip
    listing.add_argument("--limit", type=int, default=100, help="at most this many rows")
    listing.add_argument("--detail", action="store_true", help="every column")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    listing.add_argument("--address", default=None, help="the head's HOST:PORT")
    summary = commands.add_parser("summary", help="count tasks or actors by name and state")
    summary.add_argument("kind", choices=["actors", "tasks"])
    summary.add_argument("--address", default=None, help="the head's HOST:PORT")
    logs = commands.add_parser("logs", help="a worker's output, by task, actor or worker id")
    which = logs.add_mutually_exclusive_group(required=True)
    which.add_argument("--task-id", help="the worker that ran this task (its latest attempt)")
    which.add_argument("--actor-id", help="the worker of this actor")
    which.add_argument("--worker-id", help="this worker")
    logs.add_argument("--node-id", default=None, help="the worker's node (for a worker id)")
    logs.add_argument("--err", action="store_true", help="its stderr, not its stdout")
    logs.add_argument("--tail", type=int, default=1000, help="the last N lines (-1: all)")
    logs.add_argument("--follow", action="store_true", help="then print what it writes next")
    logs.add_argument("--address", default=None, help="the head's HOST:PORT")
    explain = commands.add_parser("why", help="why is this task pending (or what became of it)")
    explain.add_argument("task_id", help="the task's id (hex), as minray list tasks shows it")
    explain.add_argument("--address", default=None, help="the head's HOST:PORT")
    trace = commands.add_parser("timeline", help="write which worker ran what, when (Chrome trace)")
    trace.add_argument("--output", default=None, help="the JSON file (default: a new one here)")
    trace.add_argument("--address", default=None, help="the head's HOST:PORT")


def run(args: argparse.Namespace) -> int:
    try:
        if args.command == "timeline":
            return _timeline(args)
        if args.command == "logs":
            return _logs(args)
        if args.command == "why":
            print(state.why(args.task_id, args.address))
            return 0
        if args.command == "summary":
            summarize = state.summarize_tasks if args.kind == "tasks" else state.summarize_actors
            print(json.dumps(summarize(args.address), indent=2))
            return 0
        filters = [_parse_filter(text) for text in args.filter]
        rows = KINDS[args.kind](args.address, filters, args.limit, detail=args.detail)
    except (ValueError, ConnectionError, state.RayStateApiException) as e:
        print(f"minray {args.command}: {e}", file=sys.stderr)
        return 1
    dicts = [row.asdict() for row in rows]
    columns = type(rows[0]).list_columns(args.detail) if rows else []
    waiting = WAITING.get(args.kind, ())
    if waiting and not args.detail and any(row.state in waiting for row in rows):
        # the reason each pending one waits (a detail column), shown as REASON
        detailed = KINDS[args.kind](args.address, filters, args.limit, detail=True)
        reasons = {_key(row): row.pending_reason for row in detailed}
        for row in dicts:
            pending = row["state"] in waiting
            row["reason"] = (reasons.get(_key(row)) or NOT_YET) if pending else None
        columns.append("reason")
    if args.format == "json":
        print(json.dumps(dicts, indent=2, default=str))
    else:
        print(_table(dicts, columns))
    return 0


def _logs(args: argparse.Namespace) -> int:
    chunks = state.get_log(
        args.address, args.node_id, args.actor_id, args.task_id, args.worker_id,
        follow=args.follow, tail=args.tail, suffix="err" if args.err else "out",
    )  # fmt: skip
    try:
        for text in chunks:
            sys.stdout.write(text)
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    return 0


def _timeline(args: argparse.Namespace) -> int:
    from .task_timeline import timeline

    path = args.output or time.strftime("minray-timeline-%Y%m%d-%H%M%S.json")
    events = timeline(address=args.address)
    with open(path, "w") as f:
        json.dump(events, f)
    print(f"Wrote {len(events)} task runs to {path}; open it in chrome://tracing or "
          "https://ui.perfetto.dev")  # fmt: skip
    return 0


def _key(row) -> str:
    """A task's or an actor's id (rows as dicts, or as the state API's rows)."""
    return row.get("task_id") or row.get("actor_id")


def _parse_filter(text: str) -> tuple[str, str, str]:
    for op in ("!=", "="):
        if op in text:
            key, value = text.split(op, 1)
            return key.strip(), op, value.strip()
    raise ValueError(f"--filter {text!r}: write KEY=VALUE or KEY!=VALUE")


def _table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)
