"""minray and Ray side by side, in one run, written to benchmarks/results/latest.md.

    python benchmarks/compare.py --ray-python .bench/ray/bin/python   (or: make bench-compare)

Runs the rows of benchmarks/core.py and of `minray microbenchmark` (Ray's own
row definitions) for both runtimes, alternating, each row set in fresh
processes. Figures are medians; the ratio is minray / Ray, so above 1 is better
for rates and below 1 is better for times and memory.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from core import QUEUED_ROW, ROWS, run_row, settle  # noqa: E402

MICRO = re.compile(r"^(?P<name>.+) per second (?P<mean>[0-9.e+-]+) \+- (?P<std>[0-9.e+-]+)$")


def microbenchmark(python: str, runtime: str, trial_seconds: float) -> dict[str, float]:
    # run the rows' file by path: Ray's virtualenv has none of minray's dependencies
    path = os.path.join(ROOT, "minray", "microbenchmark.py")
    code = (
        f"import runpy\nrows = runpy.run_path({path!r})\n"
        f"rows['main'](trial_seconds={trial_seconds}, runtime={runtime!r})\n"
    )
    settle()
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=ROOT)
    rows = {}
    for line in out.stdout.splitlines():
        match = MICRO.match(line.strip())
        if match:
            rows[match["name"]] = float(match["mean"])
    if not rows:
        raise RuntimeError(f"microbenchmark on {runtime} failed:\n{out.stdout}\n{out.stderr}")
    return rows


def _median_rows(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each row's median over the runs it appears in (in the first run's row order)."""
    return {name: statistics.median(run[name] for run in runs if name in run) for name in runs[0]}


PERFORMANCE_INTRO = """# Performance: minray and Ray side by side

This page is written by `make bench-compare` (`benchmarks/compare.py`); do not edit it
by hand. It installs Ray 2.60 into its own virtualenv (`.bench/ray`, never a
dependency of minray), runs every row for minray and for Ray alternately, each in
fresh processes, and writes the tables below (also `benchmarks/results/latest.md`).
Before each run it waits until the previous run's processes are gone and the CPUs
are quiet, so neither runtime is measured while the other is still cleaning up.

* Core rows come from `benchmarks/core.py`; each is the median of fresh runs.
* The `ray microbenchmark` rows use Ray's row names and workloads
  (`minray/microbenchmark.py`; `minray microbenchmark` prints minray's alone); each
  figure is the median of alternating runs (`--micro-rounds`, 2 by default).
* The floors (`benchmarks/floor.py`) say what the machine allows.
* The plots come from `benchmarks/sweep.py` and `benchmarks/plot.py`.
* Flame graphs of the hot paths (sync actor call, sync task, 1,000 async tasks,
  1,000 async actor calls), one SVG per process: `docs/flamegraphs/`, recorded
  with py-spy by `make flamegraphs` (`benchmarks/flamegraphs.py`). The
  `before-674a923-*` pair shows the sync actor call before the hand-offs were cut.

These machines are noisy: read ratios, not digits.

"""


def draw_plots(runtimes: dict[str, str], plot_python: str) -> str:
    """Run the sweeps for both runtimes and draw the PNGs; returns the markdown for them."""
    paths = []
    for runtime, python in runtimes.items():
        out = subprocess.run(
            [python, os.path.join(HERE, "sweep.py"), runtime],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        path = os.path.join(HERE, "results", f"sweep-{runtime}.json")
        with open(path, "w") as f:
            f.write(out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "{}")
        if out.returncode != 0:
            raise RuntimeError(f"sweep on {runtime} failed:\n{out.stderr[-3000:]}")
        paths.append(path)
    docs = os.path.join(ROOT, "docs")
    subprocess.run([plot_python, os.path.join(HERE, "plot.py"), *paths, docs], check=True)
    return (
        "\n## Plots\n\n"
        "![tasks per second against tasks in flight](performance-tasks-in-flight.png)\n\n"
        "![put and get GB/s against object size](performance-object-size.png)\n"
    )


def scaling_section() -> str:
    """benchmarks/results/scaling.md (from benchmarks/scaling.py, run on its own), its plot,
    and the notes written by hand from other runs (HAND_NOTES)."""
    path = os.path.join(HERE, "results", "scaling.md")
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        text = "\n" + f.read().rstrip("\n") + "\n"
    if os.path.exists(os.path.join(ROOT, "docs", "performance-scaling.png")):
        text += "\n![throughput against cores](performance-scaling.png)\n"
    for name in HAND_NOTES:
        notes = os.path.join(HERE, "results", name)
        if os.path.exists(notes):
            with open(notes) as f:
                text += "\n" + f.read().rstrip("\n") + "\n"
    return text


#: notes written by hand from runs of their own, kept at the end of docs/performance.md
HAND_NOTES = (
    "device-h200.md",
    "tls-2026-12-05.md",
    "single-node-2026-12-06.md",
    "round2-2026-12-06.md",
    "round3-2026-12-07.md",
)


#: (minray's core row, the floor it is read against, how: "rate" or "time", #15's target)
#: the target of a ``ray microbenchmark`` row: 3× Ray's figure (shown against the floor)
THREE_TIMES_RAY = "3x Ray"
#: minray's rows (core.py's, or ``ray microbenchmark``'s by name) against a floor.py row
FLOOR_RATIOS = (
    ("async_noop_tasks_per_s", "mp_pool_map_async_noops_per_s", "rate", "≥ 0.6"),
    ("async_noop_tasks_per_s", "mp_pool_async_noops_per_s", "rate", ""),
    ("noop_round_trip_ms", "mp_pool_round_trip_ms", "time", "≤ 2.5"),
    ("actor_call_round_trip_ms", "mp_pool_round_trip_ms", "time", "≤ 2"),
    ("noop_round_trip_ms", "uvloop_unix_ping_pong_p50_us", "time", ""),
    ("single client put gigabytes", "single_put_copy_gb_per_s", "rate", THREE_TIMES_RAY),
    ("multi client put gigabytes", "multi_put_copy_gb_per_s", "rate", THREE_TIMES_RAY),
)


def against_floors(core: dict, floor: dict[str, float], micro: dict | None = None) -> list[str]:
    """minray's rows as multiples of the machine's floors (medians of the same run): a rate
    as minray / floor (higher is better), a time as minray / floor (lower is better). A
    microbenchmark row's target, 3× Ray, is shown as a share of its floor: over 1.00, no
    runtime could meet it on this machine."""
    micro = micro or {}
    mine_micro, ray_micro = micro.get("minray", {}), micro.get("ray", {})
    lines = [
        "",
        "### minray against the floors (medians of this run; the floors ran between rows)",
        "",
        "| minray row | floor | minray | floor | ratio | target (#15) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row, name, kind, target in FLOOR_RATIOS:
        if name not in floor:
            continue
        if (row, "minray") in core:
            mine = statistics.median(core[(row, "minray")])
        elif row in mine_micro:
            mine = mine_micro[row]
        else:
            continue
        base = floor[name]
        if target == THREE_TIMES_RAY:
            wanted = 3 * ray_micro.get(row, float("nan"))
            target = f"≥ 3× Ray = {wanted:,.2f}, {wanted / base:.2f} of the floor"
        if name.endswith("_us"):  # (the socket floor is in microseconds, the rows in ms)
            base /= 1000
        ratio = mine / base
        better = "higher" if kind == "rate" else "lower"
        lines.append(
            f"| {row} | {name} | {mine:,.3f} | {base:,.3f} | {ratio:.2f} ({better} is better) "
            f"| {target} |"
        )
    return lines


def machine_floor() -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "floor.py")], capture_output=True, text=True, cwd=ROOT
    )
    rows: dict[str, float] = {}
    for line in out.stdout.splitlines():
        rows.update(json.loads(line))
    if not rows:
        raise RuntimeError(f"floor.py failed:\n{out.stdout}\n{out.stderr}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ray-python", required=True, help="a Python with ray installed")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--trial-seconds", type=float, default=2.0)
    parser.add_argument(
        "--micro-rounds", type=int, default=2, help="microbenchmark runs per runtime, alternating"
    )
    parser.add_argument("--output", default=os.path.join(HERE, "results", "latest.md"))
    parser.add_argument(
        "--queued", type=int, default=1_000_000, help="tasks in the queued-tasks row (0: skip)"
    )
    args = parser.parse_args()
    runtimes = {"minray": sys.executable, "ray": args.ray_python}
    core: dict[tuple[str, str], list[float]] = {}
    rows = [(name, code, args.repeat) for name, code in ROWS.items()]
    if args.queued:  # slow: once per runtime
        rows += [(name, code, 1) for name, code in QUEUED_ROW.items()]
    floors: list[dict[str, float]] = []
    for name, code, repeat in rows:
        for _ in range(repeat):
            for runtime, python in runtimes.items():
                for key, value in run_row(name, code, 1000, runtime, python, args.queued).items():
                    core.setdefault((key, runtime), []).append(value)
            if len(floors) < args.repeat:  # the floors in turn with the rows, not after them
                floors.append(machine_floor())
    rounds: dict[str, list[dict[str, float]]] = {rt: [] for rt in runtimes}
    for _ in range(args.micro_rounds):
        for runtime, python in runtimes.items():
            rounds[runtime].append(microbenchmark(python, runtime, args.trial_seconds))
    micro = {rt: _median_rows(results) for rt, results in rounds.items()}
    floor = _median_rows(floors)
    plots = draw_plots(runtimes, args.ray_python)
    ray_version = subprocess.run(
        [args.ray_python, "-c", "import ray; print(ray.__version__)"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    lines = [
        "# minray vs Ray, side by side",
        "",
        f"Date: {datetime.date.today().isoformat()} · machine: {psutil.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, {platform.system()} "
        f"{platform.machine()}, Python {platform.python_version()} · Ray {ray_version}",
        "",
        "Reproduce: `make bench-compare`. Medians of fresh runs; the ratio is minray / Ray.",
        "",
        "## Core figures (`benchmarks/core.py`; lower is better for times and memory)",
        "",
        "| row | minray | Ray | minray / Ray |",
        "|---|---:|---:|---:|",
    ]
    for key in dict.fromkeys(k for k, _ in core):
        mine, theirs = (statistics.median(core[(key, rt)]) for rt in runtimes)
        lines.append(f"| {key} | {mine:,.3f} | {theirs:,.3f} | {mine / theirs:.2f} |")
    lines += [
        "",
        "## `ray microbenchmark` rows (per second; higher is better)",
        "",
        "| row | minray | Ray | minray / Ray |",
        "|---|---:|---:|---:|",
    ]
    for name, mine in micro["minray"].items():
        theirs = micro["ray"].get(name)
        ratio = f"{mine / theirs:.2f}" if theirs else "–"
        lines.append(f"| {name} | {mine:,.2f} | {theirs or 0:,.2f} | {ratio} |")
    lines += [
        "",
        "## What the machine allows (`benchmarks/floor.py`)",
        "",
        "Read minray's figures against these: `put` copies once (memcpy), every call is at",
        "least one socket round trip, and a stdlib process pool is the Python floor.",
        "",
        "| floor | value |",
        "|---|---:|",
    ]
    lines += [f"| {key} | {value:,.3f} |" for key, value in floor.items()]
    lines += against_floors(core, floor, micro)
    lines.append("")
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(ROOT, "docs", "performance.md"), "w") as f:
        f.write(PERFORMANCE_INTRO + "\n".join(lines[2:]) + plots + scaling_section())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
