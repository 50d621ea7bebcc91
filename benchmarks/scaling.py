"""How minray's throughput grows with cores, and which process saturates.

    python benchmarks/scaling.py --cpus 1,2,4,8,16 --out benchmarks/results

For each CPU count C, each row (ABOUT) runs in fresh driver processes (core.run_row) on
``minray.init(num_cpus=C)``; a figure is the median of ``--repeat`` runs. The first three
rows are core.py's workloads. The C-client rows follow "multi client tasks async" and
"n:n actor calls async": C tasks with num_cpus=0 (so they hold no CPU the no-ops need)
submit the work. In calls_on_C_actors_per_s each calls its own actor, which exercises C
cores (the driver round-robining over C actors ran at the one-actor rate on 2 cores).

Around each timed section a psutil probe (its snapshots outside the timed code) measures
CPU time per second of wall time, in cores, of the driver and its busiest thread, the node
daemon, the workers and the machine. Writes OUT/scaling.json (raw) and OUT/scaling.md;
benchmarks/plot_scaling.py draws OUT/scaling.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from core import ON_A_CLUSTER, WITH_ACTORS, run_row  # noqa: E402

#: defines probe_start() and probe_stop() -> dict in the row's driver (see the module doc)
PROBE = """
import os as _os, threading as _threading, time as _time
import psutil as _psutil
_PROBE = {}

def _snapshot():
    procs = {}
    me = _psutil.Process()
    for p in [me, *me.children(recursive=True)]:
        try:
            with p.oneshot():
                cpu, ppid, cmd = p.cpu_times(), p.ppid(), " ".join(p.cmdline())
                threads = {t.id: t.user_time + t.system_time for t in p.threads()}
        except _psutil.Error:
            continue
        procs[p.pid] = (ppid, cmd, cpu.user + cpu.system, threads)
    m = _psutil.cpu_times()  # busy: all but idle and iowait; guest time is already in user
    skip = ("idle", "iowait", "guest", "guest_nice")
    return procs, sum(v for k, v in m._asdict().items() if k not in skip)

def probe_start():
    _PROBE["before"] = _snapshot()
    _PROBE["t"] = _time.perf_counter()

def probe_stop():
    wall = _time.perf_counter() - _PROBE["t"]
    (before, busy0), (after, busy1) = _PROBE["before"], _snapshot()
    me, procs = _os.getpid(), {}
    daemon = next((pid for pid, (ppid, cmd, _, _) in after.items()
                   if ppid == me and cmd.startswith(("minray::head", "minray::node"))), None)
    for pid, (ppid, cmd, cpu, threads) in after.items():
        old = before.get(pid, (0, "", 0.0, {}))
        role = ("driver" if pid == me else "daemon" if pid == daemon
                else "zygote" if ppid == daemon else "other" if ppid == me else "worker")
        tops = {tid: (t - old[3].get(tid, 0.0)) / wall for tid, t in threads.items()}
        top = max(tops, key=tops.get, default=None)
        procs[pid] = {"role": role, "cores": (cpu - old[2]) / wall, "top_thread": top,
                      "top_thread_cores": tops.get(top, 0.0)}
    d, n = procs[me], procs.get(daemon, {"cores": 0.0, "top_thread_cores": 0.0})
    names = {t.native_id: t.name for t in _threading.enumerate()} | {me: "main"}
    workers = [p["cores"] for p in procs.values() if p["role"] == "worker"]
    return {"wall_s": wall, "machine_cores": (busy1 - busy0) / wall, "driver_cores": d["cores"],
            "driver_top_thread": names.get(d["top_thread"], str(d["top_thread"])),
            "driver_top_thread_cores": d["top_thread_cores"], "daemon_cores": n["cores"],
            "daemon_top_thread_cores": n["top_thread_cores"], "workers": len(workers),
            "workers_cores": sum(workers), "worker_max_cores": max(workers, default=0.0),
            "procs": procs}
"""

#: the timed section of the one-driver rows, wrapped by the probe; ``{submit}`` is one item
ONE_DRIVER = """
        minray.get([{submit} for _ in range(1000)])
        probe_start()
        t = time.perf_counter()
        minray.get([{submit} for _ in range(N * 10)])
        result = N * 10 / (time.perf_counter() - t)
        extra["probe"] = probe_stop()
        minray.shutdown()
"""

#: ``{client}`` tasks (num_cpus=0) each run ``{call}`` n times and get the results
MANY_CLIENTS = """
        @minray.remote(num_cpus=0)
        def client(target, n):
            minray.get([{call} for _ in range(n)])
        {setup}
        minray.get([client.remote(x, 1000 // CPUS + 1) for x in targets])
        share = N * 10 // CPUS
        probe_start()
        t = time.perf_counter()
        minray.get([client.remote(x, share) for x in targets])
        result = share * CPUS / (time.perf_counter() - t)
        extra["probe"] = probe_stop()
        minray.shutdown()
"""

PUT = """
        import numpy as np
        array = np.ones(2**27)
        puts, gets, probes = [], [], []
        for _ in range(3):
            probe_start()
            t = time.perf_counter(); ref = minray.put(array); puts.append(time.perf_counter() - t)
            probes.append(probe_stop())
            t = time.perf_counter(); value = minray.get(ref); gets.append(time.perf_counter() - t)
            del ref, value; time.sleep(0.5)
        result = array.nbytes / min(puts) / 1e9
        extra = {"get_1gib_ms": min(gets) * 1000, "probe": probes[puts.index(min(puts))]}
        minray.shutdown()
"""

_INIT = "minray.init(num_cpus=CPUS)"
assert _INIT in ON_A_CLUSTER
#: 6 GiB: the segment pool (a quarter of it) keeps the freed 1 GiB segment for the next put,
#: as core.py's default store does; with 3 GiB each put faulted in fresh pages (~10x slower)
_BIG_STORE = "minray.init(num_cpus=CPUS, object_store_memory=6 * 2**30)"
_ACTOR = WITH_ACTORS + "        actor = Actor.remote()\n"
#: with --nodes N: the same rows on N nodes of CPUS/N CPUs each (cluster_utils.Cluster; the
#: driver connects through the head, tasks spill over to the others)
_CLUSTER = (
    "from minray.cluster_utils import Cluster; _c = Cluster(initialize_head=True, "
    "head_node_args={'num_cpus': CPUS // NODES}); "
    "[_c.add_node(num_cpus=CPUS // NODES) for _ in range(NODES - 1)]; "
    "_c.wait_for_nodes(); _c.connect()"
)
_C_ACTORS = "targets = [Actor.remote() for _ in range(CPUS)]"

#: what each row measures, for scaling.md
ABOUT = {
    "async_noop_tasks_per_s": "the driver submits 10*N no-op tasks, then gets them (as core.py)",
    "actor_async_calls_per_s": "the driver makes 10*N calls on one sync actor (as core.py)",
    "put_1gib_gb_per_s": "the driver puts a 1 GiB numpy array, best of 3 (as core.py)",
    "tasks_from_C_submitters_per_s": "C tasks (num_cpus=0) each submit and get 10*N/C no-ops",
    "calls_on_C_actors_per_s": "C tasks (num_cpus=0) each make 10*N/C calls on their own actor",
}
#: each row's code
ROWS = {
    "async_noop_tasks_per_s": ON_A_CLUSTER + ONE_DRIVER.format(submit="noop.remote()"),
    "actor_async_calls_per_s": _ACTOR + ONE_DRIVER.format(submit="actor.noop.remote()"),
    "put_1gib_gb_per_s": ON_A_CLUSTER.replace(_INIT, _BIG_STORE) + PUT,
    "tasks_from_C_submitters_per_s": ON_A_CLUSTER
    + MANY_CLIENTS.format(call="noop.remote()", setup="targets = [None] * CPUS"),
    "calls_on_C_actors_per_s": WITH_ACTORS
    + MANY_CLIENTS.format(call="target.noop.remote()", setup=_C_ACTORS),
}
#: each row's N (10 * N tasks or calls): timed sections of ~1-3 s; C-client rows: N * sqrt(C)
N_BASE = {"actor_async_calls_per_s": 3000, "put_1gib_gb_per_s": 1, "calls_on_C_actors_per_s": 3000}
GROWS = {"tasks_from_C_submitters_per_s", "calls_on_C_actors_per_s"}

#: the probe's summary figures (cores, but for the worker count), as in scaling.md's table
FIELDS = "driver_cores driver_top_thread_cores daemon_cores worker_max_cores workers_cores "
FIELDS += "workers machine_cores daemon_top_thread_cores"
PROBE_COLUMNS = "driver | driver's busiest thread | node daemon | busiest worker | all workers "
PROBE_COLUMNS += "(count) | machine |"


def shm_problem() -> str | None:
    """Why the 1 GiB put row cannot run here, or None."""
    free = shutil.disk_usage("/dev/shm").free if os.path.isdir("/dev/shm") else 0
    if free < 2.5 * 2**30:
        return f"/dev/shm has {free / 2**30:.1f} GiB free, under the 2.5 GiB a 1 GiB put needs"
    return None


def run_point(name: str, n: int, cpus: int, timeout: float, nodes: int = 1) -> dict:
    """One fresh driver process; a failure is recorded, never raised."""
    start, rec = time.perf_counter(), {"row": name, "cpus": cpus, "n": n}
    try:
        code, python = ROWS[name], sys.executable
        if nodes > 1:
            code = code.replace(_INIT, _CLUSTER)
        prelude = PROBE + f"\nNODES = {nodes}\n"
        out = run_row(name, code, n, "minray", python, cpus=cpus, prelude=prelude, timeout=timeout)
    except RuntimeError as e:
        rec.update(ok=False, error=str(e)[-3000:])
    else:
        rec.update(ok=True, value=out.pop(name), probe=out.pop("probe", None), extra=out)
    return rec | {"seconds": time.perf_counter() - start}


def summarise(records: list[dict]) -> dict[str, dict[int, dict]]:
    """Per row and CPU count: the median value and the median of each probe figure."""
    out: dict[str, dict[int, dict]] = {}
    for rec in records:
        if rec["ok"]:
            out.setdefault(rec["row"], {}).setdefault(rec["cpus"], []).append(rec)
    for points in out.values():
        for c, runs in points.items():
            probe = {f: statistics.median(r["probe"][f] for r in runs) for f in FIELDS.split()}
            probe["driver_top_thread"] = runs[0]["probe"]["driver_top_thread"]
            points[c] = {"value": statistics.median(r["value"] for r in runs), "probe": probe}
    return out


def probe_cells(p: dict) -> str:
    """The probe's figures as the cells of PROBE_COLUMNS."""
    return (
        f"{p['driver_cores']:.2f} | {p['driver_top_thread_cores']:.2f} ({p['driver_top_thread']}) "
        f"| {p.get('daemon_cores', 0.0):.2f} | {p['worker_max_cores']:.2f} "
        f"| {p['workers_cores']:.2f} ({p['workers']:.0f}) | {p['machine_cores']:.2f} |"
    )


def observation(name: str, cpus: int, p: dict) -> str:
    """Which process was at >= 90% of one core in the row's timed section."""
    cores = lambda x: f"{x:.0%} of a core" if x < 1.05 else f"{x:.2f} cores"
    who = [(f"driver {p['driver_top_thread']} thread", p["driver_top_thread_cores"], "")]
    if who[0][1] < 0.9:
        who = [("driver", p["driver_cores"], " over its threads")]
    who += [("node daemon", p["daemon_cores"], ""), ("busiest worker", p["worker_max_cores"], "")]
    said = "; ".join(f"{w} at {cores(x)}{more}" for w, x, more in who if x >= 0.9)
    said = said or "no process at 90% of a core or more"
    return f"- `{name}` at {cpus} CPUs: {said}; machine {p['machine_cores']:.1f} cores busy."


def markdown(data: dict) -> str:
    summary, cpus, m, nodes = data["summary"], data["cpus"], data["machine"], data["nodes"]
    where = "`minray.init(num_cpus=C)`"
    if nodes > 1:
        where = f"a `cluster_utils.Cluster` of {nodes} nodes with C/{nodes} CPUs each"
    head = " | ".join(f"{c} CPU{'s' if c > 1 else ''}" for c in cpus)
    lines = [
        "## Scaling with cores\n",
        f"`benchmarks/scaling.py --cpus {','.join(map(str, cpus))} --nodes {nodes}` on a "
        f"{m['cpu_count']}-CPU machine ({m['platform']}, Python {m['python']}), {data['date']}. "
        f"Each figure is the median of {data['repeat']} fresh driver processes on {where}; "
        "higher is better.\n",
        *(f"* `{name}`: {ABOUT[name]}" for name in data["rows"]),
        "",
        f"| row | {head} | {cpus[-1]} / {cpus[0]} |",
        "|---|" + "---:|" * (len(cpus) + 1),
    ]
    for name in data["rows"]:
        vals = [summary.get(name, {}).get(c, {}).get("value") for c in cpus]
        cells = [f"{v:,.2f}" if v is not None else "failed" for v in vals]
        ratio = f"{vals[-1] / vals[0]:.2f}" if vals[0] and vals[-1] else "–"
        lines.append(f"| {name} | {' | '.join(cells)} | {ratio} |")
    for name, why in data["skipped"].items():
        lines.append(f"| {name} | skipped: {why} |" + " |" * len(cpus))
    lines += ["", "CPU time per second of wall time, in cores, in each timed section (psutil):"]
    lines += ["", f"| row | CPUs | {PROBE_COLUMNS}\n|---|" + "---:|" * 7]
    notes = []
    for name, points in summary.items():
        for c, point in sorted(points.items()):
            lines.append(f"| {name} | {c} | {probe_cells(point['probe'])}")
        notes.append(observation(name, max(points), points[max(points)]["probe"]))
    return "\n".join([*lines, "", *notes, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", default="1,2", help="comma-separated CPU counts")
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="output folder")
    parser.add_argument("--repeat", type=int, default=2, help="fresh runs per point")
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated row names")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every row's N")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per driver")
    parser.add_argument("--nodes", type=int, default=1, help="nodes sharing the CPUs")
    args = parser.parse_args()
    cpus, rows = sorted({int(c) for c in args.cpus.split(",")}), args.rows.split(",")
    os.makedirs(args.out, exist_ok=True)
    skipped = {}
    if "put_1gib_gb_per_s" in rows and args.nodes > 1:
        rows.remove("put_1gib_gb_per_s")  # a put stays on the driver's node
    if "put_1gib_gb_per_s" in rows and (reason := shm_problem()):
        print(f"skipping put_1gib_gb_per_s: {reason}")
        skipped["put_1gib_gb_per_s"] = reason
        rows.remove("put_1gib_gb_per_s")
    machine = {"cpu_count": psutil.cpu_count(), "physical": psutil.cpu_count(logical=False)}
    machine |= {"memory_gib": round(psutil.virtual_memory().total / 2**30, 1)}
    machine |= {"python": platform.python_version(), "platform": platform.platform()}
    data = {"date": datetime.date.today().isoformat(), "cpus": cpus, "rows": rows}
    data |= {"repeat": args.repeat, "machine": machine, "skipped": skipped, "records": []}
    data["nodes"] = args.nodes
    start = time.perf_counter()
    print("| row | CPUs | run | s | result | " + PROBE_COLUMNS)
    for c in cpus:
        for rep in range(args.repeat):
            for name in rows:
                grow = c**0.5 if name in GROWS else 1
                n = max(1, round(N_BASE.get(name, 1000) * args.scale * grow))
                rec = run_point(name, n, c, args.timeout, args.nodes)
                data["records"].append(rec)
                head = f"| {name} | {c} | {rep + 1} | {rec['seconds']:.1f} |"
                if rec["ok"]:
                    print(f"{head} {rec['value']:,.2f} | {probe_cells(rec['probe'])}", flush=True)
                else:
                    print(f"{head} FAILED |\n{rec['error'][-1500:]}", flush=True)
        data["summary"] = summarise(data["records"])
        data["elapsed_s"] = time.perf_counter() - start
        with open(os.path.join(args.out, "scaling.json"), "w") as f:
            json.dump(data, f, indent=1)
        with open(os.path.join(args.out, "scaling.md"), "w") as f:
            f.write(markdown(data))
    print(f"\n{markdown(data)}\n({data['elapsed_s']:.0f} s; wrote scaling.json, scaling.md)")


if __name__ == "__main__":
    main()
