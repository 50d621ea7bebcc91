"""Spilling to disk, minray beside Ray, with the same object store size and spill disk.

    python benchmarks/spill.py --ray-python .bench/ray/bin/python   (or: make bench-spill)
    python benchmarks/spill.py --store-mib 256 --spill-gib 1 --repeat 2
    python benchmarks/spill.py --threshold 1.0   (spill only when full: no spilling ahead)

Each run starts a fresh runtime (one CPU, ``object_store_memory`` = the store),
``put``s ``--spill-gib`` of 32 MiB numpy arrays (4x the store by default, so
three quarters of it must go to disk while the loop runs), then ``get``s every
one back in order (most of them from disk) and checks its first and last byte.
Both runtimes spill into a fresh directory under the same temp dir. ``--threshold``
sets both runtimes' ``object_spilling_threshold`` (default: each one's own, 0.8):
past that share of the store they spill in the background, ahead of a full store.

Rows: spill GB/s (bytes put / time of the put loop) and restore GB/s (bytes
read / time of the get loop), medians over ``--repeat`` runs, minray / Ray
ratio (above 1: minray is faster), and minray's spill rate as a share of the
disk's raw sequential write speed with fsync (benchmarks/floor.py). minray does
not fsync spill files (nor does Ray): a spill file never outlives its node.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CHUNK = 32 * 2**20


def child(runtime: str, store: int, total: int, spill_dir: str, threshold: float) -> dict:
    """One run in this process: put ``total`` bytes into a ``store``-byte store, get them."""
    import numpy as np

    if runtime == "ray":
        import ray as rt
    else:
        sys.path.insert(0, ROOT)
        import minray as rt
    spec = {"type": "filesystem", "params": {"directory_path": spill_dir}}
    settings: dict = {"object_spilling_config": json.dumps(spec)}
    if threshold >= 0:
        settings["object_spilling_threshold"] = threshold
    rt.init(
        num_cpus=1,
        object_store_memory=store,
        _system_config=settings,
        include_dashboard=False,
    )
    try:
        values = [np.full(CHUNK, i % 251, dtype=np.uint8) for i in range(total // CHUNK)]
        t = time.perf_counter()
        refs = [rt.put(value) for value in values]
        spill_s = time.perf_counter() - t
        del values
        t = time.perf_counter()
        for i, ref in enumerate(refs):
            value = rt.get(ref)
            if value[0] != i % 251 or value[-1] != i % 251:
                raise AssertionError(f"object {i} came back wrong")
            del value
        restore_s = time.perf_counter() - t
    finally:
        rt.shutdown()
    return {"spill_gb_per_s": total / spill_s / 1e9, "restore_gb_per_s": total / restore_s / 1e9}


def run(python: str, runtime: str, store: int, total: int, threshold: float) -> dict:
    spill_dir = tempfile.mkdtemp(prefix=f"spill-bench-{runtime}-")
    try:
        out = subprocess.run(
            [python, __file__, "--child", runtime, "--store-bytes", str(store),
             "--total-bytes", str(total), "--spill-dir", spill_dir,
             "--threshold", str(threshold)],
            capture_output=True, text=True, cwd=ROOT, timeout=600,
        )  # fmt: skip
        lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
        if out.returncode != 0 or not lines:
            raise RuntimeError(f"{runtime} run failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
        return json.loads(lines[-1])
    finally:
        shutil.rmtree(spill_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ray-python", default=None, help="Ray's virtualenv python")
    parser.add_argument("--store-mib", type=int, default=256)
    parser.add_argument("--spill-gib", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--threshold", type=float, default=-1.0,
        help="object_spilling_threshold for both runtimes (default: their own, 0.8)",
    )  # fmt: skip
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--store-bytes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--total-bytes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--spill-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        got = child(args.child, args.store_bytes, args.total_bytes, args.spill_dir, args.threshold)
        print(json.dumps(got))
        return
    store, total = args.store_mib * 2**20, int(args.spill_gib * 2**30)
    runtimes = {"minray": sys.executable}
    if args.ray_python:
        runtimes["ray"] = args.ray_python
    results: dict[str, list[dict]] = {name: [] for name in runtimes}
    for _ in range(args.repeat):  # alternate, so both see the same machine
        for name, python in runtimes.items():
            results[name].append(run(python, name, store, total, args.threshold))
    sys.path.insert(0, HERE)
    from floor import disk_write_gb_per_s

    disk = disk_write_gb_per_s(tempfile.gettempdir())
    print(
        f"store {args.store_mib} MiB, {args.spill_gib:g} GiB put then read back "
        f"({total // CHUNK} x {CHUNK // 2**20} MiB); disk write+fsync {disk:.2f} GB/s; "
        f"object_spilling_threshold {args.threshold if args.threshold >= 0 else 'default'}"
    )
    for row in ("spill_gb_per_s", "restore_gb_per_s"):
        figures = {name: statistics.median(r[row] for r in rs) for name, rs in results.items()}
        line = "  ".join(f"{name} {value:6.2f}" for name, value in figures.items())
        if "ray" in figures:
            line += f"  ratio {figures['minray'] / figures['ray']:.2f}x"
        print(f"{row:18} {line}")
        print(json.dumps({f"{name}_{row}": round(v, 3) for name, v in figures.items()}))
    share = statistics.median(r["spill_gb_per_s"] for r in results["minray"]) / disk
    print(json.dumps({"minray_spill_share_of_disk_write": round(share, 3)}))


if __name__ == "__main__":
    main()
