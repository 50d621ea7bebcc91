"""Draw docs/performance-*.png from the JSON of benchmarks/sweep.py for both runtimes.

    python benchmarks/plot.py minray.json ray.json docs/

Needs matplotlib (installed into the Ray benchmark virtualenv by `make bench-compare`,
never a dependency of minray).
"""

from __future__ import annotations

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def label_size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n // scale} {unit}"
    return f"{n} B"


def main(paths: list[str], out_dir: str) -> None:
    runs = [json.load(open(p)) for p in paths]
    fig, ax = plt.subplots(figsize=(6, 4))
    for run in runs:
        ax.plot(run["in_flight"], run["tasks_per_s"], marker="o", label=run["runtime"])
    ax.set_xscale("log", base=2)
    ax.set_xlabel("no-op tasks in flight")
    ax.set_ylabel("tasks per second")
    ax.set_title("Task throughput vs tasks in flight (2 CPUs)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "performance-tasks-in-flight.png"), dpi=100)

    fig, ax = plt.subplots(figsize=(6, 4))
    for run in runs:
        ax.plot(run["sizes"], run["put_gb_per_s"], marker="o", label=f"{run['runtime']} put")
        ax.plot(
            run["sizes"],
            run["get_gb_per_s"],
            marker="s",
            linestyle="--",
            label=f"{run['runtime']} get",
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ticks = runs[0]["sizes"][::2]
    ax.set_xticks(ticks, [label_size(t) for t in ticks])
    ax.set_xlabel("numpy array size")
    ax.set_ylabel("GB/s (log)")
    ax.set_title("put / get throughput vs object size")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "performance-object-size.png"), dpi=100)


if __name__ == "__main__":
    main(sys.argv[1:-1], sys.argv[-1])
