"""The head at scale, simulated: many light fake nodes joining one real head.

    python benchmarks/head_scale.py [--nodes 500] [--processes 4] [--seconds 10]

Starts a real head (``cluster_utils.Cluster``), then ``--processes`` processes that
each open ``nodes / processes`` authenticated TCP connections to it. Each fake
node registers like a node does (``RegisterNode``), sends ``NodeHeartbeat`` every
second with a random phase, and keeps the ``ClusterView`` pushes it gets.

Measured:
* the head process's CPU share (of one core) over ``--seconds`` of steady
  heartbeats;
* how long a resource change takes to reach every node: one fake node reports
  that a CPU is in use, and each node notes when a pushed view first shows
  that. The figure is the slowest node's delay.

Prints one JSON line. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from minray import __version__  # noqa: E402
from minray.cluster_utils import Cluster  # noqa: E402
from minray.config import CONFIG  # noqa: E402
from minray.head.service import PYTHON_VERSION  # noqa: E402
from minray.protocol.connection import connect  # noqa: E402
from minray.protocol.messages import NodeHeartbeat, RegisterNode  # noqa: E402


class FakeNode:
    """Handler of one fake node's connection: notes when the change first shows."""

    def __init__(self, watched: str):
        self.watched = watched
        self.seen_at = 0.0
        self.views = 0

    def handle_ClusterView(self, conn, msg) -> None:
        self.views += 1
        if self.seen_at:
            return
        for node in msg.nodes:
            if node["NodeID"] == self.watched and node["AvailableResources"].get("CPU") == 3.0:
                self.seen_at = time.time()


async def run_fake_nodes(address: str, token: bytes, count: int, first: int, args) -> dict:
    watched = f"{0:056x}"
    nodes, conns = [], []
    for i in range(first, first + count):
        node_id = bytes.fromhex(f"{i:056x}")
        handler = FakeNode(watched)
        conn = await connect(f"tcp:{address}", handler, token, CONFIG.max_frame_bytes)
        info = {"NodeManagerAddress": "127.0.0.1", "RayletSocketName": f"unix:/fake/{i}"}
        register = RegisterNode(
            node_id, f"unix:/fake/{i}", {"CPU": 4.0}, info, __version__, PYTHON_VERSION
        )
        await conn.request(register)
        nodes.append((node_id, handler))
        conns.append(conn)

    sent = {}

    async def heartbeat(node_id, conn, is_changer):
        await asyncio.sleep(random.random())
        while True:
            available = None
            if is_changer and time.time() >= args.change_at:
                available = {"CPU": 3.0}
                sent.setdefault("at", time.time())
            conn.send(NodeHeartbeat(node_id, available, None))
            await asyncio.sleep(1.0)

    for (node_id, _), conn in zip(nodes, conns):
        asyncio.get_running_loop().create_task(heartbeat(node_id, conn, node_id == bytes(28)))
    await asyncio.sleep(max(0.0, args.end_at - time.time()))
    seen = [handler.seen_at for _, handler in nodes]
    for conn in conns:
        conn.close()
    return {"seen": seen, "views": sum(h.views for _, h in nodes), "sent_at": sent.get("at")}


def fake_main(args) -> None:
    token = bytes.fromhex(args.token)
    result = asyncio.run(run_fake_nodes(args.address, token, args.count, args.first, args))
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fake", action="store_true", help=argparse.SUPPRESS)
    for name in ("address", "token"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    for name in ("count", "first"):
        parser.add_argument(f"--{name}", type=int, help=argparse.SUPPRESS)
    for name in ("change_at", "end_at"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake:
        fake_main(args)
        return
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        report = measure(cluster, args)
    finally:
        cluster.shutdown()
    print(json.dumps(report))


def measure(cluster: Cluster, args) -> dict:
    join_s = 3.0 + args.nodes / 200  # time for every fake node to connect and register
    start = time.time()
    steady_from = start + join_s
    change_at = steady_from + args.seconds
    end_at = change_at + 5.0
    per = args.nodes // args.processes
    procs = []
    for p in range(args.processes):
        cmd = [
            sys.executable, __file__, "--fake", "--address", cluster.address,
            "--token", cluster.token.hex(), "--count", str(per), "--first", str(p * per),
            "--change-at", str(change_at), "--end-at", str(end_at),
        ]  # fmt: skip
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT))
    head = psutil.Process(cluster.head_node.pid)
    time.sleep(max(0.0, steady_from - time.time()))
    cpu0, t0 = sum(head.cpu_times()[:2]), time.time()
    time.sleep(max(0.0, change_at - time.time()))
    head_share = (sum(head.cpu_times()[:2]) - cpu0) / (time.time() - t0)
    seen, views, sent_at = [], 0, None
    for proc in procs:
        out, _ = proc.communicate(timeout=end_at - time.time() + 60)
        for line in out.splitlines():
            if line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
                seen += result["seen"]
                views += result["views"]
                sent_at = result["sent_at"] or sent_at
    reached = [t for t in seen if t]
    return {
        "nodes": len(seen),
        "head_cpu_share_of_one_core": round(head_share, 4),
        "change_reached_nodes": len(reached),
        # from the changed heartbeat leaving its node to the last node seeing it
        "change_to_all_nodes_s": round(max(reached) - sent_at, 3) if reached else None,
        "views_received": views,
        "cpus": psutil.cpu_count(),
    }


if __name__ == "__main__":
    main()
