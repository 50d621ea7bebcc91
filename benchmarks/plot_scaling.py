"""Draw throughput against cores from the JSON of benchmarks/scaling.py.

    python benchmarks/plot_scaling.py benchmarks/results/scaling.json docs/performance-scaling.png

Three panels: rates per second, the same rates relative to the fewest CPUs (with the
linear ideal), and put GB/s. Needs matplotlib (like benchmarks/plot.py, run it with a
Python that has it; never a dependency of minray).
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

#: rows drawn on their own panel (not a rate of tasks or calls)
BYTES_ROWS = ("put_1gib_gb_per_s",)


def main(path: str, out: str) -> None:
    with open(path) as f:
        data = json.load(f)
    cpus: list[int] = data["cpus"]
    fig, (rates, relative, gbs) = plt.subplots(1, 3, figsize=(15, 4.5))
    for name, points in data.get("summary", {}).items():
        xs = [c for c in cpus if (points.get(str(c)) or {}).get("value") is not None]
        ys = [points[str(c)]["value"] for c in xs]
        if not xs:
            continue
        if name in BYTES_ROWS:
            gbs.plot(xs, ys, marker="o", label=name)
            continue
        rates.plot(xs, ys, marker="o", label=name)
        relative.plot(xs, [y / ys[0] for y in ys], marker="o", label=name)
    relative.plot(cpus, [c / cpus[0] for c in cpus], color="grey", linestyle=":", label="linear")
    machine = data["machine"]
    fig.suptitle(
        f"minray throughput against num_cpus ({machine['cpu_count']}-CPU machine, "
        f"median of {data['repeat']} fresh runs)"
    )
    fewest = f"{cpus[0]} CPU{'s' if cpus[0] > 1 else ''}"
    titles = ("tasks or calls per second", f"relative to {fewest}", "put of 1 GiB, GB/s")
    for ax, title in zip((rates, relative, gbs), titles):
        ax.set_xscale("log", base=2)
        ax.set_xticks(cpus, [str(c) for c in cpus])
        ax.set_xlabel("num_cpus")
        ax.set_title(title)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.1)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
