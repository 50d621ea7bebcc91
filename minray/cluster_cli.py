"""``minray start``, ``minray stop`` and ``minray status``: a cluster by hand.

* ``minray start --head`` starts a head node (detached unless ``--block``:
  then Ctrl-C or SIGTERM stops it), with
  the cluster token from ``--token``, ``MINRAY_AUTH_TOKEN`` or
  ``~/.minray/auth_token`` (made there, mode 0600, if none exists), and prints
  how to join it.
* A head started where the last head of this machine on the same address died
  without being stopped (its recorded pid is gone, its session directory and
  ``head.sqlite3`` are still there) takes that head's tables back and says so; its
  nodes reconnect within ``head_reconnect_timeout_s``. ``--fresh`` starts empty
  instead (and forgets them); ``minray stop`` after a crash forgets them too.
* ``minray start --address HOST:PORT`` starts a node that joins that head.
* ``minray stop`` stops the nodes this machine started, by the pids recorded
  under ``<session root>/started/`` (never by process name).
* ``minray status`` shows the head's view of the nodes.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import sys
import time

from . import api
from .exceptions import RaySystemError
from .head.query import parse_host_port, query_head
from .head.store import FILE_NAME
from .node import launcher
from .node.cluster_address import (
    TOKEN_ENV,
    configured_token,
    connection_target,
    read_current_cluster,
    route_ip,
    user_token_file,
)
from .node.private_dirs import session_root, user_dir
from .node.processes import alive, kill, remove_segments, remove_session
from .proctitle import NODE_TITLES
from .protocol import framing, tls
from .protocol.messages import GetClusterInfo, GetJobs
from .protocol.reach import LOOPBACK

DEFAULT_PORT = 6380

UNENCRYPTED_WARNING = (
    "WARNING: TLS is off: traffic between this machine ({ip}) and the others, including "
    "pickled code and objects, travels unencrypted, and anyone on the path can read or alter "
    "it. To turn TLS on: `minray tls init DIR --hosts ADDRESS...`, then set MINRAY_USE_TLS=1, "
    "MINRAY_TLS_SERVER_CERT, MINRAY_TLS_SERVER_KEY and MINRAY_TLS_CA_CERT on every machine "
    '(docs/cluster.md, "TLS").'
)


def add_commands(commands) -> None:
    """Register ``start``, ``stop`` and ``status`` on the ``minray`` parser."""
    start = commands.add_parser("start", help="start a head node, or a node joining a head")
    role = start.add_mutually_exclusive_group(required=True)
    role.add_argument("--head", action="store_true", help="start the head node")
    role.add_argument("--address", help="HOST:PORT of the head to join")
    start.add_argument("--port", type=int, default=DEFAULT_PORT, help="the head's port")
    start.add_argument(
        "--node-ip-address",
        default=None,
        help="this machine's address for the cluster (default: 127.0.0.1 for a head; for a "
        "joining node, the address it reaches the head from)",
    )
    start.add_argument("--num-cpus", type=float, default=None)
    start.add_argument("--num-gpus", type=float, default=None)
    start.add_argument("--resources", default=None, help='custom resources, as JSON: {"ssd": 1}')
    start.add_argument("--object-store-memory", type=int, default=None, help="bytes")
    start.add_argument("--token", default=None, help="the cluster token (hex)")
    start.add_argument("--block", action="store_true", help="stay in the foreground")
    start.add_argument(
        "--fresh", action="store_true",
        help="with --head: start with empty tables, even where the last head on this "
        "address died without being stopped (by default the new head takes its tables back)",
    )  # fmt: skip
    start.add_argument(
        "--include-dashboard", choices=["true", "false"], default="true",
        help="serve the dashboard from the head (default: true)",
    )  # fmt: skip
    start.add_argument("--dashboard-host", default="127.0.0.1", help="the dashboard's address")
    start.add_argument("--dashboard-port", type=int, default=8265, help="the dashboard's port")
    stop = commands.add_parser("stop", help="stop the minray nodes started on this machine")
    stop.add_argument("--force", action="store_true", help="SIGKILL at once")
    status = commands.add_parser("status", help="show the cluster's nodes and resources")
    status.add_argument("--address", default="auto", help="HOST:PORT of the head")


def run(args) -> int:
    try:
        if args.command == "start":
            return start(args)
        if args.command == "stop":
            return stop(args.force)
        return status(args.address)
    except (ValueError, ConnectionError, RaySystemError) as e:
        print(f"minray {args.command}: {e}", file=sys.stderr)
        return 1


# --- start ------------------------------------------------------------------------------


def start(args) -> int:
    tls.check()  # missing or bad certificate files: said now, before anything starts
    if not args.head:
        address, token = connection_target(args.address, args.token)
    if args.node_ip_address is None:
        args.node_ip_address = LOOPBACK if args.head else _route_to(address)
    resources = json.loads(args.resources) if args.resources else None
    if resources is not None and not isinstance(resources, dict):
        raise ValueError(f'--resources must be a JSON object such as {{"ssd": 1}}, not {resources}')
    node_resources, gpu_ids, store = api._node_resources(
        args.num_cpus,
        args.num_gpus,
        resources,
        args.object_store_memory,
        head=args.head,
        node_ip=args.node_ip_address,
    )
    settings = launcher.node_settings(
        node_resources,
        gpu_ids,
        store,
        embedded=False,
        parent_pid=os.getpid() if args.block else 0,
        node_ip=args.node_ip_address,
    )
    crashed = None
    if args.head:
        token = _head_token(args.token)
        _check_port_free(args.node_ip_address, args.port, "--port")
        settings.update(head=True, head_host=args.node_ip_address, head_port=args.port)
        crashed = crashed_head(_read_records(), args.node_ip_address, args.port, _is_our_node)
        if crashed is not None and not args.fresh:
            settings["recover_from"] = os.path.join(crashed[1]["session_dir"], FILE_NAME)
        if args.include_dashboard == "true":
            _check_port_free(args.dashboard_host, args.dashboard_port, "--dashboard-port")
            settings.update(dashboard_host=args.dashboard_host, dashboard_port=args.dashboard_port)
    else:
        settings["head_address"] = f"tcp:{address}"
    warning = unencrypted_warning(args.node_ip_address, tls.enabled())
    if warning:
        print(warning, file=sys.stderr)
    started = time.monotonic()
    process, _ = launcher.start_node(settings, token)
    where = {"host": args.node_ip_address, "port": args.port} if args.head else {}
    _record(process.pid, settings["session_dir"], "head" if args.head else "node", where)
    if crashed is not None:  # taken back (or, --fresh, forgotten): the dead head's files go
        _forget(*crashed)
    if args.head:
        _print_head_started(args, time.monotonic() - started, settings["session_dir"])
        if crashed is not None and not args.fresh:
            _print_recovered(crashed[1], settings["session_dir"])
    else:
        print(
            f"Node {settings['node_id'][:12]} joined the cluster at {address} (pid {process.pid})."
        )
    if args.block:
        sys.stdout.flush()  # seen now in a pod's or a Slurm job's log, not at the node's end
        # SIGTERM (``docker stop``, a pod deleted, a Slurm job's end) stops the node as Ctrl-C
        # does, so it says goodbye and cleans up before its container or job goes.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            process.wait()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGTERM)
            process.wait(15)
    return 0


def crashed_head(records: list, host: str, port: int, running) -> tuple[str, dict] | None:
    """``(path, record)`` of the head recorded on ``host:port`` that died without being
    stopped and left its tables (``running(pid)``: whether that pid is still our node),
    the latest if several; None if there is none."""
    found = [
        (path, record)
        for path, record in records
        if record.get("role") == "head"
        and record.get("host") == host
        and record.get("port") == port
        and not running(record["pid"])
        and os.path.exists(os.path.join(record["session_dir"], FILE_NAME))
    ]
    found.sort(key=lambda pr: os.path.getmtime(os.path.join(pr[1]["session_dir"], FILE_NAME)))
    return found[-1] if found else None


def _forget(path: str, record: dict) -> None:
    """A dead node's leftovers: its segments, its session (but its logs), its record."""
    remove_segments(record["session_dir"])
    remove_session(record["session_dir"], keep_logs=True)
    os.unlink(path)


def _print_recovered(record: dict, session_dir: str) -> None:
    try:
        with open(os.path.join(session_dir, "head_recovered")) as f:
            summary = f.read().strip()
    except OSError:
        summary = "see its log"
    print(
        f"Recovered the tables of the head (pid {record['pid']}) that stopped here without "
        f"`minray stop`: {summary}.\n(`minray stop` then `minray start --head`, or "
        "--fresh, starts with empty tables instead.)\n"
    )


def unencrypted_warning(node_ip: str, use_tls: bool) -> str | None:
    """The warning for a node reachable from other machines without TLS, else None."""
    if use_tls or ipaddress.ip_address(node_ip).is_loopback:
        return None
    return UNENCRYPTED_WARNING.format(ip=node_ip)


def _route_to(address: str) -> str:
    host, _ = parse_host_port(address)
    try:
        return route_ip(host)
    except OSError as e:
        raise ConnectionError(
            f"no route from this machine to the head at {address} ({e.strerror or e}); "
            "check the address, or name this machine's address with --node-ip-address"
        ) from None


def _head_token(given: str | None) -> bytes:
    """The configured token, or a new one saved (mode 0600) where joiners look for it."""
    token = configured_token(given, private_file=True)
    if token is not None:
        return token
    path = user_token_file()
    token = framing.new_token()
    user_dir()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token.hex() + "\n")
    return token


def _check_port_free(host: str, port: int, option: str) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        # as the listener will: a crashed head's closed connections do not hold the port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            raise ValueError(
                f"cannot listen on {host}:{port} ({e.strerror}). Is a minray head already "
                f"running there (`minray status`)? Choose another port with {option}."
            ) from None


def _print_head_started(args, seconds: float, session_dir: str) -> None:
    address = f"{args.node_ip_address}:{args.port}"
    print(f"Started the minray head at {address} in {seconds:.2f} s.\n")
    print("To connect a driver on this machine:   minray.init(address='auto')")
    print(f"To add a node on another machine:      minray start --address={address}")
    print(
        f"  with the cluster token in {user_token_file()} there, or passed as\n"
        f"  --token=$(cat {user_token_file()}) or in ${TOKEN_ENV}."
    )
    print("To stop it:                            minray stop")
    url = os.path.join(session_dir, "dashboard_url")
    if os.path.exists(url):
        with open(url) as f:
            print(f"Dashboard:                             http://{f.read().strip()}")
        print("  it asks for the cluster token (`minray dashboard` prints the URL and the token)")
    if not ipaddress.ip_address(args.node_ip_address).is_loopback:
        print(
            f"\nWARNING: the head listens on {args.node_ip_address}: anyone who can reach "
            f"port {args.port} and holds the token can run code on this machine."
        )


# --- stop and status --------------------------------------------------------------------


def _records_dir() -> str:
    return os.path.join(session_root(), "started")


def _record(pid: int, session_dir: str, role: str, where: dict) -> None:
    os.makedirs(_records_dir(), mode=0o700, exist_ok=True)
    with open(os.path.join(_records_dir(), f"{pid}.json"), "w") as f:
        json.dump({"pid": pid, "session_dir": session_dir, "role": role, **where}, f)


def _read_records() -> list[tuple[str, dict]]:
    """``(path, record)`` of each node started on this machine (unreadable ones go)."""
    records = []
    for name in sorted(os.listdir(_records_dir())) if os.path.isdir(_records_dir()) else []:
        path = os.path.join(_records_dir(), name)
        try:
            with open(path) as f:
                records.append((path, json.load(f)))
        except (OSError, ValueError):
            os.unlink(path)
    return records


def stop(force: bool) -> int:
    records = _read_records()
    running = [(p, r) for p, r in records if _is_our_node(r["pid"])]
    for path, record in records:
        if (path, record) not in running:  # it crashed (or was killed): clean up after it
            _forget(path, record)
    if not running:
        print("No minray node started on this machine is running; nothing to stop.")
        return 0
    for _, record in sorted(running, key=lambda pr: pr[1]["role"] == "head"):  # nodes first
        _stop_one(record, force)
    for path, _ in running:
        os.unlink(path)
    print(f"Stopped {len(running)} minray node(s).")
    return 0


def _is_our_node(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()  # the node's title (minray/proctitle.py), or its command
        return alive(pid) and (cmdline.startswith(NODE_TITLES) or b"minray.node.main" in cmdline)
    except OSError:
        return False


def _stop_one(record: dict, force: bool) -> None:
    pid = record["pid"]
    if not force:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    if alive(pid):
        kill(pid)
        remove_segments(record["session_dir"])  # a killed node cleans nothing up
    remove_session(record["session_dir"], keep_logs=True)
    print(f"  stopped the {record['role']} (pid {pid}); its logs: {record['session_dir']}/logs")


def status(address: str) -> int:
    if address == "auto":
        address = os.environ.get("MINRAY_ADDRESS") or os.environ.get("RAY_ADDRESS") or address
    if address == "auto" and read_current_cluster() is None:
        # no head started by hand here: a running script's embedded cluster, as for
        # `minray list` (its node answers the same questions on its Unix socket)
        from .util.state.client import RayStateApiException, ask

        def reply(msg):
            return ask(msg, None, STATUS_TIMEOUT_S)

        where = "minray cluster (the embedded one of a running script)"
        try:
            nodes = reply(GetClusterInfo()).nodes
        except RayStateApiException as e:
            raise ConnectionError(str(e)) from None
    else:
        target, token = connection_target(address, None)

        def reply(msg):
            return query_head(target, token, msg)

        where = f"minray cluster at {target}"
        nodes = reply(GetClusterInfo()).nodes
    alive_nodes = [n for n in nodes if n["Alive"]]
    print(f"{where}: {len(alive_nodes)} node(s) alive, "
          f"{len(nodes) - len(alive_nodes)} dead")  # fmt: skip
    for node in nodes:
        state = "head" if node.get("IsHead") else "alive" if node["Alive"] else "DEAD"
        total, free = node["Resources"], node.get("AvailableResources", {})
        used = ", ".join(
            f"{name} {total[name] - free.get(name, 0):g}/{total[name]:g}"
            for name in ("CPU", "GPU")
            if name in total
        )
        line = f"  {node['NodeID'][:12]}  {node['NodeManagerAddress']:15}  {state:5}  {used}"
        if not node["Alive"]:
            line += f"  ({node.get('DeathReasonMessage', '')})"
        print(line)
        if node["Alive"] and "ObjectStoreSpilledBytes" in node:
            print("      " + _store_line(node))
    demands = [
        (node["NodeID"][:12], demand)
        for node in alive_nodes
        for demand in node.get("PendingDemands") or []
    ]
    print("Pending demands:" if demands else "No pending demands.")
    for node_id, demand in demands:
        print("  " + demand_line(node_id, demand))
    jobs = [job for job in reply(GetJobs()).jobs if not job["IsDead"]]
    print(f"Jobs running: {len(jobs)}" if jobs else "No jobs running.")
    for job in jobs:
        started = time.strftime("%H:%M:%S", time.localtime(job["StartTime"] / 1000))
        where = f"pid {job['DriverPid']} on {job['DriverIPAddress']}"
        print(f"  {job['JobID']}  {where}, since {started}: {job['Entrypoint'][:60]}")
    return 0


STATUS_TIMEOUT_S = 10.0


def demand_line(node_id: str, demand: list) -> str:
    """A queued demand of ``minray status``: its shape, how many, where, and why they wait,
    as the node that queues them told their owner (node/pending_reasons.py)."""
    shape, count, infeasible = demand[:3]
    reason = demand[3] if len(demand) > 3 else ""
    if not reason:  # (queued a moment ago: the node's first reason pass comes shortly)
        reason = "Infeasible here" if infeasible else "no reason told yet (queued just now)"
    return f"{shape} x {count}, queued at {node_id}: {reason}"


def _store_line(node: dict) -> str:
    """The object store of a node in ``minray status``: memory, and what went to disk."""
    mib = 2**20
    capacity = node["Resources"].get("object_store_memory", 0)
    return (
        f"object store: {node['ObjectStoreUsedBytes'] / mib:.1f} of {capacity / mib:.1f} MiB "
        f"used, {node['ObjectStoreSpilledBytes'] / mib:.1f} MiB in "
        f"{node['ObjectStoreSpilledObjects']} object(s) spilled to disk "
        f"({node['ObjectStoreSpilledBytesTotal'] / mib:.1f} MiB spilled, "
        f"{node.get('ObjectStoreSpilledAheadBytesTotal', 0) / mib:.1f} MiB of it before "
        "the store was full, "
        f"{node['ObjectStoreRestoredBytesTotal'] / mib:.1f} MiB restored in all)"
    )
