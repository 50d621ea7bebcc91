"""Flame graphs of minray's hot paths, recorded with py-spy (``make flamegraphs``).

    python benchmarks/flamegraphs.py [--seconds 6] [--out docs/flamegraphs]

For each hot path a fresh driver runs the workload in a loop while py-spy samples
the driver and the worker that serves it; each process gives one SVG,
``<path>-driver.svg`` and ``<path>-worker.svg``. py-spy attaches with ptrace:
run as root or allow it (``/proc/sys/kernel/yama/ptrace_scope`` = 0).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

#: hot path -> the loop body of the workload (``actor``, ``f`` and ``minray`` are defined)
PATHS = {
    "sync-actor-call": "minray.get(actor.small.remote())",
    "sync-task": "minray.get(f.remote())",
    "async-tasks": "minray.get([f.remote() for _ in range(1000)])",
    "async-actor-calls": "minray.get([actor.small.remote() for _ in range(1000)])",
}

WORKLOAD = """
import os, sys, time
import minray
minray.init(num_cpus=2)
@minray.remote
class Actor:
    def pid(self):
        return os.getpid()
    def small(self):
        return b"ok"
@minray.remote
def f():
    return b"ok"
@minray.remote
def pid():
    return os.getpid()
actor = Actor.remote()
worker = minray.get(actor.pid.remote()) if "actor" in {path!r} else minray.get(pid.remote())
print(worker, flush=True)
end = time.time() + {seconds}
while time.time() < end:
    {body}
minray.shutdown()
"""


def record(path: str, body: str, seconds: int, out: str, py_spy: str) -> list[str]:
    """Run one workload and sample its driver and worker; returns the SVG paths."""
    code = WORKLOAD.format(path=path, body=body, seconds=seconds + 6)
    driver = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        worker = int(driver.stdout.readline())
        time.sleep(1)  # past the warm-up
        svgs, samplers = [], []
        for role, pid in (("driver", driver.pid), ("worker", worker)):
            svg = os.path.join(out, f"{path}-{role}.svg")
            command = [py_spy, "record", "-r", "250", "-d", str(seconds), "-f", "flamegraph"]
            command += ["--nonblocking"]  # do not pause the process while sampling it
            samplers.append(
                subprocess.Popen([*command, "-o", svg, "-p", str(pid)], stdout=subprocess.DEVNULL)
            )
            svgs.append(svg)
        for sampler in samplers:
            if sampler.wait() != 0:
                raise RuntimeError(f"py-spy failed on {path} (is ptrace allowed?)")
    finally:
        driver.wait(60)
    return svgs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=6, help="seconds of sampling per path")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "flamegraphs"))
    args = parser.parse_args()
    py_spy = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
    if py_spy is None:
        sys.exit("py-spy is not installed: pip install py-spy (or: make flamegraphs)")
    os.makedirs(args.out, exist_ok=True)
    for path, body in PATHS.items():
        for svg in record(path, body, args.seconds, args.out, py_spy):
            print(os.path.relpath(svg, ROOT))


if __name__ == "__main__":
    main()
