"""minray's library layers against what they replace (not a test: these machines are noisy).

    python benchmarks/libraries.py [--quick] [--ray-python .bench/ray/bin/python]

Prints two comparisons, each row from a fresh Python process:

* ``Pool.map`` of 100,000 tiny items (``x + 1``) with
  ``minray.util.multiprocessing.Pool`` and with the stdlib
  ``multiprocessing.Pool``, the same number of processes, default chunking and
  ``chunksize=100``, and with Ray's Pool when ``--ray-python`` is given. The
  pool is started and warmed up before timing.
* scikit-learn's ``RandomizedSearchCV(SVC, n_iter=100, cv=5)`` on the digits
  data under joblib's "loky" backend and under minray's "ray" backend, both
  with ``n_jobs=-1`` (all CPUs); the wall time of ``fit`` includes starting
  the workers, as a user sees it. ``--quick`` uses n_iter=20.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

PROCESSES = 2

POOL_MAP = """
    import json, time
    {setup}
    def inc(x):
        return x + 1
    items = range(100_000)
    with Pool({processes}) as pool:
        pool.map(abs, range(100))  # warm up: every process started
        out = {{}}
        for label, chunksize in (("default chunks", None), ("chunksize=100", 100)):
            began = time.perf_counter()
            result = pool.map(inc, items, chunksize=chunksize)
            out[label] = time.perf_counter() - began
            assert result[-1] == 100_000
    print(json.dumps(out))
"""

MINRAY_POOL = """
    import minray
    from minray.util.multiprocessing import Pool
    minray.init(num_cpus={processes})
"""

STDLIB_POOL = """
    from multiprocessing import Pool
"""

RAY_POOL = """
    import ray
    from ray.util.multiprocessing import Pool
    ray.init(num_cpus={processes})
"""

SEARCH = """
    import json, time
    import joblib
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import RandomizedSearchCV
    from sklearn.svm import SVC
    {setup}
    digits = load_digits()
    space = {{
        "C": np.logspace(-6, 6, 30),
        "gamma": np.logspace(-8, 8, 30),
        "tol": np.logspace(-4, -1, 30),
        "class_weight": [None, "balanced"],
    }}
    search = RandomizedSearchCV(SVC(kernel="rbf"), space, cv=5, n_iter={n_iter}, random_state=0)
    began = time.perf_counter()
    with joblib.parallel_backend("{backend}", n_jobs=-1):
        search.fit(digits.data, digits.target)
    seconds = time.perf_counter() - began
    best = {{k: getattr(v, "item", lambda: v)() for k, v in search.best_params_.items()}}
    print(json.dumps({{"seconds": seconds, "best": best}}))
"""

MINRAY_BACKEND = """
    import minray
    from minray.util.joblib import register_ray
    minray.init(num_cpus={processes})
    register_ray()
"""


def run(code: str, python: str = sys.executable) -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [python, "-c", textwrap.dedent(code)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n_iter=20 for the search")
    parser.add_argument("--ray-python", help="a Python with Ray installed: add Ray's Pool")
    args = parser.parse_args()
    n_iter = 20 if args.quick else 100

    print(f"Pool.map of 100,000 tiny items, {PROCESSES} processes (seconds)")
    rows = {}
    pools = [
        ("minray Pool", MINRAY_POOL, sys.executable),
        ("stdlib Pool", STDLIB_POOL, sys.executable),
    ]
    if args.ray_python:
        pools.append(("Ray Pool", RAY_POOL, args.ray_python))
    for name, setup, python in pools:
        setup = textwrap.indent(textwrap.dedent(setup.format(processes=PROCESSES)), "    ")
        rows[name] = run(POOL_MAP.format(setup=setup.strip(), processes=PROCESSES), python)
    labels = list(next(iter(rows.values())))
    print(f"  {'':16}" + "".join(f"{label:>18}" for label in labels))
    for name, row in rows.items():
        print(f"  {name:16}" + "".join(f"{row[label]:18.3f}" for label in labels))

    print(f"\nRandomizedSearchCV(SVC, n_iter={n_iter}, cv=5) on digits, n_jobs=-1 (seconds)")
    results = {}
    for backend in ("loky", "ray"):
        setup = MINRAY_BACKEND.format(processes=PROCESSES) if backend == "ray" else ""
        setup = textwrap.indent(textwrap.dedent(setup), "    ").strip()
        results[backend] = run(SEARCH.format(setup=setup, n_iter=n_iter, backend=backend))
        print(f"  {backend:16}{results[backend]['seconds']:18.2f}")
    same = results["loky"]["best"] == results["ray"]["best"]
    print(f"  same best_params_: {same} {results['ray']['best']}")


if __name__ == "__main__":
    main()
