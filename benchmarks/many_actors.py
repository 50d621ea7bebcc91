"""Many actors: create N (``num_cpus=0``) and call each once, minray or Ray.

    python benchmarks/many_actors.py minray 1000
    .bench/ray/bin/python benchmarks/many_actors.py ray 100

Prints one JSON line: the actors, the seconds from the first ``.remote()`` until every
first call has answered, that time per actor, and the memory of the actor processes
(USS, the pages only that process holds; the median of up to 50 of them, read with
psutil after the calls). Ray runs fewer: each of its actor processes holds tens of MiB,
so a thousand would not fit this machine; compare the per-actor figures.
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import sys
import time

import psutil


def main() -> None:
    runtime, count = sys.argv[1], int(sys.argv[2])
    rt = importlib.import_module(runtime)
    rt.init(num_cpus=2)

    @rt.remote(num_cpus=0)
    class Pinger:
        def pid(self) -> int:
            return os.getpid()

    started = time.perf_counter()
    actors = [Pinger.remote() for _ in range(count)]
    pids = rt.get([actor.pid.remote() for actor in actors], timeout=900)
    elapsed = time.perf_counter() - started
    uss = []
    for pid in pids[:50]:
        try:
            uss.append(psutil.Process(pid).memory_full_info().uss / 2**20)
        except psutil.Error:
            pass
    result = {
        "runtime": runtime,
        "actors": count,
        "create_and_call_s": round(elapsed, 2),
        "ms_per_actor": round(elapsed / count * 1000, 2),
        "uss_per_actor_mib": round(statistics.median(uss), 2),
    }
    del actors
    rt.shutdown()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
