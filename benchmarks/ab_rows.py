"""Rows of benchmarks/core.py on two or more minray source trees, in turn, on one machine.

    python benchmarks/ab_rows.py ROW [ROW ...] --tree OLD_CHECKOUT --tree . [--rounds 5]
    python benchmarks/ab_rows.py async_noop_tasks_per_s --tree . --tree .:MINRAY_TASK_EVENTS=0

A before/after figure for a change, or a check that a row held since an older commit
(``git worktree add /tmp/old COMMIT``): each round runs every tree once, in a fresh
driver, so drift of a noisy machine falls on all trees alike. A tree may carry
environment settings after a colon (``PATH:NAME=VALUE,NAME=VALUE``). Each tree's
bytecode is compiled first. Prints the median and every value per row and tree.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import textwrap

from core import ROWS, settle


def run(row: str, tree: str, env_settings: dict[str, str]) -> float | None:
    """The row's result in a fresh driver that imports minray from ``tree``."""
    settle()
    body = textwrap.dedent(ROWS[row]).replace("RUNTIME", "minray")
    script = f"N = 1000\nCPUS = 2\nQUEUED = 0\nimport statistics\nextra = {{}}\n{body}\n"
    script += f"import json\nprint('RESULT', json.dumps({{{row!r}: result}}))"
    env = {**os.environ, "PYTHONPATH": tree, **env_settings}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tree, env=env
    )
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])[row]
    print(f"{row} on {tree} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="+", choices=sorted(ROWS), metavar="ROW")
    parser.add_argument("--tree", action="append", required=True, help="PATH[:NAME=VALUE,...]")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    trees = []
    for spec in args.tree:
        path, _, settings = spec.partition(":")
        path = os.path.abspath(path)
        compileall.compile_dir(os.path.join(path, "minray"), quiet=1)
        trees.append((spec, path, dict(kv.split("=", 1) for kv in settings.split(",") if kv)))
    for row in args.rows:
        results: dict[str, list[float]] = {spec: [] for spec, _, _ in trees}
        for _ in range(args.rounds):
            for spec, path, env_settings in trees:
                value = run(row, path, env_settings)
                if value is not None:
                    results[spec].append(value)
        print(f"== {row}")
        for spec, values in results.items():
            median = statistics.median(values) if values else float("nan")
            print(f"{spec:40} median {median:12.3f}  {[round(v, 3) for v in values]}")


if __name__ == "__main__":
    main()
