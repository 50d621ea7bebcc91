"""What recording task events costs: two rows of benchmarks/core.py with events on and off.

    python benchmarks/task_events_cost.py [--rounds 5]

Runs ``async_noop_tasks_per_s`` (10,000 async no-op tasks) and
``actor_async_calls_per_s`` (10,000 async calls on one actor), each in fresh
drivers, alternating MINRAY_TASK_EVENTS=1 and =0 in the same run, and prints the
medians and the share lost with events on (target: at most 5%).
"""

from __future__ import annotations

import argparse
import statistics
import sys

from core import ROWS, run_row

WATCHED = ("async_noop_tasks_per_s", "actor_async_calls_per_s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="fresh runs per row and setting")
    args = parser.parse_args()
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for row in WATCHED:
            for setting in ("1", "0"):
                prelude = f"import os\nos.environ['MINRAY_TASK_EVENTS'] = {setting!r}\n"
                value = run_row(row, ROWS[row], 1000, "minray", sys.executable, prelude=prelude)
                results.setdefault((row, setting), []).append(value[row])
    print(f"{'row':28} {'events on':>12} {'events off':>12} {'lost':>7}   (medians)")
    for row in WATCHED:
        on = statistics.median(results[(row, "1")])
        off = statistics.median(results[(row, "0")])
        print(f"{row:28} {on:12,.0f} {off:12,.0f} {1 - on / off:7.1%}")


if __name__ == "__main__":
    main()
