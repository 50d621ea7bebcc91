"""Two sweeps for the plots in docs/performance.md, on minray or on Ray.

    python benchmarks/sweep.py minray|ray  > sweep.json

* throughput of no-op tasks against how many are kept in flight (1 … 1024);
* put and get throughput (GB/s) of a numpy array against its size (1 KiB … 1 GiB).

Each run starts its own cluster; the output is one JSON object.
"""

from __future__ import annotations

import importlib
import json
import sys
import time

IN_FLIGHT = [1, 2, 4, 8, 16, 64, 256, 1024]
SIZES = [2**10 * 4**i for i in range(11)]  # 1 KiB, 4 KiB, ..., 1 GiB


def main(runtime: str) -> dict:
    import numpy as np

    rt = importlib.import_module(runtime)
    rt.init(num_cpus=2)

    @rt.remote
    def noop():
        return None

    rt.get([noop.remote() for _ in range(500)])
    tasks = []
    for k in IN_FLIGHT:
        total = max(2000, 4 * k)
        t = time.perf_counter()
        for _ in range(total // k):
            rt.get([noop.remote() for _ in range(k)])
        tasks.append(total // k * k / (time.perf_counter() - t))
    puts, gets = [], []
    for size in SIZES:
        array = np.ones(size // 8)
        repeat = 3 if size >= 2**28 else 10
        put_times, get_times = [], []
        for _ in range(repeat):
            t = time.perf_counter()
            ref = rt.put(array)
            put_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            value = rt.get(ref)
            get_times.append(time.perf_counter() - t)
            del ref, value
        puts.append(size / min(put_times) / 1e9)
        gets.append(size / min(get_times) / 1e9)
    rt.shutdown()
    return {
        "runtime": runtime,
        "in_flight": IN_FLIGHT,
        "tasks_per_s": tasks,
        "sizes": SIZES,
        "put_gb_per_s": puts,
        "get_gb_per_s": gets,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else "minray")))
