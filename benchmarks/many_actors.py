"""Many actors: create N (``num_cpus=0``) and call each once, minray or Ray.

    python benchmarks/many_actors.py minray 1000
    .bench/ray/bin/python benchmarks/many_actors.py ray 100

Prints one JSON line: the actors, the seconds from the first ``.remote()`` until every
first call has answered, that time per actor, and the memory of the actor processes
(USS, the pages only that process holds; the median of up to 50 of them, read with
psutil after the calls), and their USS again after each ran a full garbage
collection, as a long-lived actor does sooner or later (a collection writes to
every object it visits, so pages shared with the process it was forked from get
copied unless the objects were frozen before the fork). Ray runs fewer: each of its
actor processes holds tens of MiB, so a thousand would not fit this machine; compare
the per-actor figures.
"""

from __future__ import annotations

import gc
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

        def collect(self) -> int:
            gc.collect()  # what a long-lived actor's garbage collector does sooner or later
            return os.getpid()

    started = time.perf_counter()
    actors = [Pinger.remote() for _ in range(count)]
    pids = rt.get([actor.pid.remote() for actor in actors], timeout=900)
    elapsed = time.perf_counter() - started
    uss = _median_uss(pids[:50])
    rt.get([actor.collect.remote() for actor in actors[:50]], timeout=300)
    result = {
        "runtime": runtime,
        "actors": count,
        "create_and_call_s": round(elapsed, 2),
        "ms_per_actor": round(elapsed / count * 1000, 2),
        "uss_per_actor_mib": uss,
        "uss_per_actor_after_gc_mib": _median_uss(pids[:50]),
    }
    del actors
    rt.shutdown()
    print(json.dumps(result))


def _median_uss(pids: list[int]) -> float:
    """The median USS of these processes, in MiB."""
    uss = []
    for pid in pids:
        try:
            uss.append(psutil.Process(pid).memory_full_info().uss / 2**20)
        except psutil.Error:
            pass
    return round(statistics.median(uss), 2)


if __name__ == "__main__":
    main()
