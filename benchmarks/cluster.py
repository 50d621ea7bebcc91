"""Two nodes on this machine, minray beside Ray (``cluster_utils.Cluster`` of each).

    python benchmarks/cluster.py [--ray-python .bench/ray/bin/python] [--repeat 3]
    python benchmarks/cluster.py --tls [--only ROW ...]   # minray with TLS off beside on

Rows, each in fresh driver processes, alternating runtimes; figures are medians:

* ``two_node_cluster_start_s``: ``Cluster(initialize_head=True)``, ``add_node``,
  ``wait_for_nodes`` and ``connect`` until the first task's result;
* ``cross_node_round_trip_ms``: ``get(f.remote())`` of a no-op pinned to the second
  node (a custom resource only it has), median of 300 after a warm-up;
* ``two_node_async_noops_per_s``: 10,000 no-op tasks submitted at once to a head
  with 1 CPU and a node with 1 CPU (DEFAULT scheduling: both runtimes spill
  tasks over to the second node);
* ``two_node_spread_noops_per_s``: the same with ``scheduling_strategy="SPREAD"``;
* ``pull_1gib_gb_per_s``: a 1 GiB numpy array ``put`` on the head, read by a task
  pinned to the second node (which copies it into its own store first), median
  of 3 fresh arrays. minray's second node is at 127.0.0.2, so the copy goes over
  loopback TCP as Ray's does (at 127.0.0.1 it would take the Unix socket). The
  floor beside it is ``loopback_tcp_stream_gb_per_s`` of benchmarks/floor.py,
  measured in the same run.

``--tls`` runs minray alone, each row with TLS off and then on (MINRAY_USE_TLS=1
with certificates made for the run by ``minray.tls_certs``, removed after): the
cost of TLS between the nodes. The second node at 127.0.0.2 makes every
node-to-node and driver-to-worker connection TCP, hence TLS.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from core import run_row  # noqa: E402
from floor import loopback_tcp_gb_per_s  # noqa: E402

TWO_NODES = """
        import time
        t0 = time.perf_counter()
        import RUNTIME as minray
        from RUNTIME.cluster_utils import Cluster
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        # minray: the second node at another loopback address, reached over TCP as Ray's is
        elsewhere = {"node_ip_address": "127.0.0.2"} if minray.__name__ == "minray" else {}
        cluster.add_node(num_cpus=1, resources={"pin": 1}, **elsewhere)
        cluster.wait_for_nodes()
        cluster.connect()
        @minray.remote
        def noop():
            return None
        minray.get(noop.remote())
        started = time.perf_counter() - t0
"""

#: 10,000 no-ops of TASK after a warm-up of 1,000, per second
NOOPS = """
        task = TASK
        minray.get([task.remote() for _ in range(1000)])
        t = time.perf_counter()
        minray.get([task.remote() for _ in range(10_000)])
        result = 10_000 / (time.perf_counter() - t)
        minray.shutdown(); cluster.shutdown()
"""

ROWS = {
    "two_node_cluster_start_s": TWO_NODES
    + """
        result = started
        minray.shutdown(); cluster.shutdown()
    """,
    "cross_node_round_trip_ms": TWO_NODES
    + """
        pinned = noop.options(resources={"pin": 0.01})
        for _ in range(100):
            minray.get(pinned.remote())
        samples = []
        for _ in range(300):
            t = time.perf_counter()
            minray.get(pinned.remote())
            samples.append(time.perf_counter() - t)
        result = statistics.median(samples) * 1000
        minray.shutdown(); cluster.shutdown()
    """,
    "two_node_async_noops_per_s": TWO_NODES + NOOPS.replace("TASK", "noop"),
    "two_node_spread_noops_per_s": TWO_NODES
    + NOOPS.replace("TASK", 'noop.options(scheduling_strategy="SPREAD")'),
    "pull_1gib_gb_per_s": TWO_NODES
    + """
        import numpy as np
        @minray.remote(resources={"pin": 0.01})
        def first(x):
            return int(x[0])
        minray.get(first.remote(np.zeros(1000)))
        rates = []
        for i in range(3):
            ref = minray.put(np.full(1 << 30, i + 1, dtype=np.uint8))
            t = time.perf_counter()
            assert minray.get(first.remote(ref)) == i + 1
            rates.append((1 << 30) / (time.perf_counter() - t) / 1e9)
            del ref
        result = statistics.median(rates)
        minray.shutdown(); cluster.shutdown()
    """,
}


@contextlib.contextmanager
def tls_on():
    """MINRAY_USE_TLS=1 with a fresh CA and a certificate for the loopback addresses, for
    the driver processes started meanwhile."""
    sys.path.insert(0, os.path.dirname(HERE))
    from minray import tls_certs

    folder = tempfile.mkdtemp(prefix="mr-bench-tls-")
    ca = tls_certs.make_ca()
    cert, key, ca_cert = (os.path.join(folder, n) for n in ("n.crt", "n.key", "ca.crt"))
    tls_certs.write_issued(ca, ca_cert, os.path.join(folder, "ca.key"))
    issued = tls_certs.make_node_cert(ca, ["127.0.0.1", "127.0.0.2", "localhost"])
    tls_certs.write_issued(issued, cert, key)
    env = {
        "MINRAY_USE_TLS": "1",
        "MINRAY_TLS_SERVER_CERT": cert,
        "MINRAY_TLS_SERVER_KEY": key,
        "MINRAY_TLS_CA_CERT": ca_cert,
    }
    os.environ.update(env)
    try:
        yield
    finally:
        for name in env:
            os.environ.pop(name, None)
        shutil.rmtree(folder)


def compare_tls(rows: dict, repeat: int) -> None:
    """Each row with TLS off, then on, ``repeat`` times; a table of medians."""
    results: dict[tuple[str, bool], list[float]] = {}
    for name, code in rows.items():
        for _ in range(repeat):
            for tls in (False, True):
                with tls_on() if tls else contextlib.nullcontext():
                    row = run_row(name, code, 0, "minray", sys.executable, timeout=300)
                results.setdefault((name, tls), []).append(row[name])
    print("| row | TLS off | TLS on | on / off |\n|---|---:|---:|---:|")
    for name in rows:
        off = statistics.median(results[(name, False)])
        on = statistics.median(results[(name, True)])
        print(f"| {name} | {off:,.3f} | {on:,.3f} | {on / off:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ray-python", default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=list(ROWS), help="run only these rows")
    parser.add_argument("--tls", action="store_true", help="minray with TLS off beside on")
    args = parser.parse_args()
    rows = {name: ROWS[name] for name in args.only or ROWS}
    if args.tls:
        compare_tls(rows, args.repeat)
        return
    runtimes = [("minray", sys.executable)]
    if args.ray_python:
        runtimes.append(("ray", args.ray_python))
    results: dict[tuple[str, str], list[float]] = {}
    for name, code in rows.items():
        for _ in range(args.repeat):
            for runtime, python in runtimes:
                row = run_row(name, code, 0, runtime, python, timeout=300)
                results.setdefault((name, runtime), []).append(row[name])
    floor = statistics.median(loopback_tcp_gb_per_s() for _ in range(args.repeat))
    print("| row | minray | Ray | minray / Ray |\n|---|---:|---:|---:|")
    for name in rows:
        mine = statistics.median(results[(name, "minray")])
        if args.ray_python:
            theirs = statistics.median(results[(name, "ray")])
            print(f"| {name} | {mine:,.3f} | {theirs:,.3f} | {mine / theirs:.2f} |")
        else:
            print(f"| {name} | {mine:,.3f} | | |")
    if "pull_1gib_gb_per_s" in rows:
        pulled = statistics.median(results[("pull_1gib_gb_per_s", "minray")])
        print(f"\nloopback TCP stream (floor.py): {floor:.3f} GB/s; the pull: {pulled / floor:.0%}")


if __name__ == "__main__":
    main()
