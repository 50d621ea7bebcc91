"""Core figures of minray on this machine (not a test: these machines are noisy).

    python benchmarks/core.py [--quick]

Prints: init() until the first result, no-op task round trip (p50/p99), the
throughput of 10,000 async no-op tasks, put/get of a 1 GiB numpy array, idle
memory of all minray processes, shutdown() time, a task summing a 100 MiB
numpy array passed by value and as a ``put`` ref, and for actors: creation
until the first call's result, sync call round trip, 10,000 async calls on one
sync actor and on one async actor, and n:n calls (4 caller tasks, 4 actors).
Each figure comes from a fresh driver process so start-up state does not leak
between rows.
"""

from __future__ import annotations

import argparse
import compileall
import functools
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time

import psutil

#: the start of the actor rows: a CPUS-CPU cluster, a sync and an async actor class
WITH_ACTORS = """
        import time
        import RUNTIME as minray
        minray.init(num_cpus=CPUS)
        @minray.remote
        class Actor:
            def noop(self):
                return None
        @minray.remote
        class AsyncActor:
            async def noop(self):
                return None
"""

#: 10 * N calls in flight on one actor of the class ``cls`` (after a warm-up)
MANY_CALLS_ON = """
        actor = {cls}.remote()
        minray.get([actor.noop.remote() for _ in range(1000)])
        t = time.perf_counter()
        minray.get([actor.noop.remote() for _ in range(N * 10)])
        result = N * 10 / (time.perf_counter() - t)
        minray.shutdown()
"""

#: a task given a 100 MiB numpy array as ``argument`` (made before the clock starts: the
#: array itself, copied into the store by each call, or a ref put once); ``returns``: what
#: the task computes from it, ``warm_up``: a first call before the clock starts, or ""
ARGUMENT_100MIB = """
        import numpy as np
        @minray.remote
        def task(array):
            return {returns}
        array = np.ones(100 * 2**20 // 8)
        expected = {expected}
        argument = {argument}
        {warm_up}
        samples = []
        for _ in range(5):
            t = time.perf_counter()
            assert minray.get(task.remote(argument)) == expected
            samples.append(time.perf_counter() - t)
        result = statistics.median(samples) * 1000
        minray.shutdown()
"""
#: the first call before the clock starts
WARM_UP = "assert minray.get(task.remote(argument)) == expected"
#: the sum of the array's ones (its size), computed by the task
SUM_100MIB = {"returns": "float(array.sum())", "expected": "array.size", "warm_up": WARM_UP}

#: the start of every row but the first: a CPUS-CPU cluster and a no-op task
ON_A_CLUSTER = """
        import time
        import RUNTIME as minray
        minray.init(num_cpus=CPUS)
        @minray.remote
        def noop():
            return None
"""

ROWS = {
    "init_to_first_result_s": """
        import time
        start = time.perf_counter()
        import RUNTIME as minray
        minray.init(num_cpus=CPUS)
        @minray.remote
        def noop():
            return None
        minray.get(noop.remote())
        result = time.perf_counter() - start
        t = time.perf_counter(); minray.shutdown(); extra = {"shutdown_s": time.perf_counter() - t}
    """,
    "noop_round_trip_ms": ON_A_CLUSTER
    + """
        for _ in range(200):
            minray.get(noop.remote())
        samples = []
        for _ in range(N):
            t = time.perf_counter()
            minray.get(noop.remote())
            samples.append(time.perf_counter() - t)
        samples.sort()
        result = samples[len(samples) // 2] * 1000
        extra = {"noop_round_trip_p99_ms": samples[int(len(samples) * 0.99)] * 1000}
        minray.shutdown()
    """,
    "async_noop_tasks_per_s": ON_A_CLUSTER
    + """
        minray.get([noop.remote() for _ in range(1000)])
        t = time.perf_counter()
        minray.get([noop.remote() for _ in range(N * 10)])
        result = N * 10 / (time.perf_counter() - t)
        minray.shutdown()
    """,
    "put_1gib_gb_per_s": ON_A_CLUSTER
    + """
        import numpy as np
        array = np.ones(2**27)
        puts, gets = [], []
        for _ in range(3):
            t = time.perf_counter(); ref = minray.put(array); puts.append(time.perf_counter() - t)
            t = time.perf_counter(); value = minray.get(ref); gets.append(time.perf_counter() - t)
            del ref, value
            time.sleep(0.5)
        result = array.nbytes / min(puts) / 1e9
        extra = {"get_1gib_ms": min(gets) * 1000}
        minray.shutdown()
    """,
    "idle_rss_mib": ON_A_CLUSTER
    + """
        import os, psutil
        minray.get([noop.remote() for _ in range(10)])
        time.sleep(1)
        me = psutil.Process(os.getpid())
        procs = [me, *me.children(recursive=True)]
        infos = [p.memory_full_info() for p in procs]
        result = sum(i.rss for i in infos) / 2**20
        extra = {"idle_uss_mib": sum(i.uss for i in infos) / 2**20, "processes": len(procs)}
        minray.shutdown()
    """,
}


ROWS.update(
    {
        "arg_100mib_ms": ON_A_CLUSTER
        + ARGUMENT_100MIB.format(
            returns="array.nbytes", expected="array.nbytes", argument="array", warm_up=""
        ),
        "sum_100mib_by_value_ms": ON_A_CLUSTER
        + ARGUMENT_100MIB.format(**SUM_100MIB, argument="array"),
        "sum_100mib_put_ref_ms": ON_A_CLUSTER
        + ARGUMENT_100MIB.format(**SUM_100MIB, argument="minray.put(array)"),
        "actor_creation_ms": WITH_ACTORS
        + """
        minray.get(Actor.remote().noop.remote())
        samples = []
        for _ in range(max(N // 50, 10)):
            t = time.perf_counter()
            actor = Actor.remote()
            minray.get(actor.noop.remote())
            samples.append(time.perf_counter() - t)
            del actor
        samples.sort()
        result = samples[len(samples) // 2] * 1000
        minray.shutdown()
    """,
        "actor_call_round_trip_ms": WITH_ACTORS
        + """
        actor = Actor.remote()
        for _ in range(200):
            minray.get(actor.noop.remote())
        samples = []
        for _ in range(N):
            t = time.perf_counter()
            minray.get(actor.noop.remote())
            samples.append(time.perf_counter() - t)
        samples.sort()
        result = samples[len(samples) // 2] * 1000
        extra = {"actor_call_round_trip_p99_ms": samples[int(len(samples) * 0.99)] * 1000}
        minray.shutdown()
    """,
        "actor_async_calls_per_s": WITH_ACTORS + MANY_CALLS_ON.format(cls="Actor"),
        "async_actor_calls_per_s": WITH_ACTORS + MANY_CALLS_ON.format(cls="AsyncActor"),
        "n_n_actor_calls_per_s": WITH_ACTORS
        + """
        @minray.remote(num_cpus=0.5)
        def caller(actors, n):
            minray.get([actors[i % len(actors)].noop.remote() for i in range(n)])
        actors = [Actor.remote() for _ in range(4)]
        minray.get([caller.remote(actors, 100) for _ in range(4)])
        t = time.perf_counter()
        minray.get([caller.remote(actors, N * 10 // 4) for _ in range(4)])
        result = N * 10 / (time.perf_counter() - t)
        minray.shutdown()
    """,
    }
)


#: run once per runtime (slow): QUEUED no-op tasks submitted at once, then all fetched
QUEUED_ROW = {
    "queued_tasks_s": ON_A_CLUSTER
    + """
        import os, psutil, threading
        peak = [0]
        done = threading.Event()
        def watch():
            me = psutil.Process(os.getpid())
            while not done.is_set():
                peak[0] = max(peak[0], me.memory_info().rss)
                time.sleep(0.05)
        threading.Thread(target=watch, daemon=True).start()
        t = time.perf_counter()
        refs = [noop.remote() for _ in range(QUEUED)]
        submitted = time.perf_counter() - t
        minray.get(refs)
        result = time.perf_counter() - t
        done.set()
        extra = {"queued_submit_s": submitted, "queued_peak_driver_rss_mib": peak[0] / 2**20}
        minray.shutdown()
    """
}


#: what is left of a run that has not exited yet (Ray's raylet and workers can take seconds)
_LEFTOVERS = ("raylet", "gcs_server", "ray::", "minray.node.main", "dashboard/agent.py")


def settle(timeout: float = 60.0) -> None:
    """Before a run: wait until the previous run's processes are gone and the CPUs are quiet,
    so that no runtime is measured while the other one is still cleaning up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cmdlines = (" ".join(p.info["cmdline"] or ()) for p in psutil.process_iter(["cmdline"]))
        leftovers = any(mark in cmdline for cmdline in cmdlines for mark in _LEFTOVERS)
        if not leftovers and psutil.cpu_percent(interval=0.5) < 15:
            return
        time.sleep(0.5)


@functools.cache
def compile_minray() -> None:
    """Write minray's bytecode once, before the first row, as pip does when it installs a
    package (Ray's wheel comes with its .pyc). Where PYTHONDONTWRITEBYTECODE is set, as on
    these machines, each fresh driver, node and zygote would otherwise compile minray from
    source: ~0.2 s more for init() than a user's installed copy pays."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    compileall.compile_dir(os.path.join(root, "minray"), quiet=1)


def run_row(
    name: str,
    code: str,
    n: int,
    runtime: str,
    python: str,
    queued: int = 1_000_000,
    *,
    cpus: int = 2,
    prelude: str = "",
    timeout: float | None = None,
) -> dict:
    """One row in a fresh driver (N, CPUS, QUEUED, then prelude): ``{name: result, **extra}``."""
    compile_minray()
    settle()
    body = textwrap.dedent(prelude) + "\n" + textwrap.dedent(code).replace("RUNTIME", runtime)
    script = f"N = {n}\nCPUS = {cpus}\nQUEUED = {queued}\nimport statistics\nextra = {{}}\n"
    script += f"{body}\nimport json\nprint('RESULT', json.dumps({{{name!r}: result, **extra}}))"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run(
            [python, "-c", script], capture_output=True, text=True, cwd=root, timeout=timeout
        )
    except subprocess.TimeoutExpired as e:  # e.stderr: the bytes read so far, or None
        tail = (e.stderr or b"").decode(errors="replace")
        raise RuntimeError(f"{name} timed out after {timeout} s:\n{tail}") from None
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"{name} failed:\n{out.stdout}\n{out.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--repeat", type=int, default=3, help="fresh runs per row")
    parser.add_argument("--queued", type=int, default=0, help="also run the queued row: N tasks")
    parser.add_argument(
        "--ray-python", help="a Python with Ray: run every row on Ray too, alternating"
    )
    args = parser.parse_args()
    n = 200 if args.quick else 1000
    runtimes = [("minray", sys.executable)]
    if args.ray_python:
        runtimes.append(("ray", args.ray_python))
    results: dict[tuple[str, str], list[float]] = {}
    rows = [(name, code, 1 if args.quick else args.repeat) for name, code in ROWS.items()]
    if args.queued:
        rows += [(name, code, 1) for name, code in QUEUED_ROW.items()]
    for name, code, repeat in rows:
        for _ in range(repeat):
            for runtime, python in runtimes:
                for key, value in run_row(name, code, n, runtime, python, args.queued).items():
                    results.setdefault((key, runtime), []).append(value)
    keys = list(dict.fromkeys(key for key, _ in results))
    header = f"{'row':30} {'minray':>10}"
    if args.ray_python:
        header += f" {'ray':>10} {'minray/ray':>10}"
    print(header + "   (medians of fresh runs)")
    for key in keys:
        mine = statistics.median(results[(key, "minray")])
        line = f"{key:30} {mine:10.3f}"
        if args.ray_python and (key, "ray") in results:
            theirs = statistics.median(results[(key, "ray")])
            line += f" {theirs:10.3f} {mine / theirs:10.2f}"
        print(line)


if __name__ == "__main__":
    main()
