"""``minray microbenchmark``: the rows of ``ray microbenchmark``, measured on minray.

Row names, workloads and the output line (``<row> per second <mean> +- <std>``)
follow Ray's, so the two can be compared line by line. Each row runs its
function for a one-second warm-up and then four two-second trials; the figure
is calls per second times the row's multiplier (items per call).

Set ``TESTS_TO_RUN=<substring>`` to run only matching rows, as with Ray.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time
from collections.abc import Callable


def timeit(
    name: str,
    fn: Callable[[], object],
    multiplier: float = 1,
    trials: int = 4,
    trial_seconds: float = 2.0,
) -> tuple[str, float, float] | None:
    """Measure ``fn`` and print Ray's line for it; returns (name, mean, std)."""
    pattern = os.environ.get("TESTS_TO_RUN", "")
    if pattern and pattern not in name:
        return None
    start = time.perf_counter()
    count = 0
    while time.perf_counter() - start < 1:
        fn()
        count += 1
    step = count // 10 + 1
    rates = []
    for _ in range(trials):
        start = time.perf_counter()
        count = 0
        while time.perf_counter() - start < trial_seconds:
            for _ in range(step):
                fn()
            count += step
        rates.append(multiplier * count / (time.perf_counter() - start))
    mean, std = statistics.mean(rates), statistics.pstdev(rates)
    print(f"{name} per second {round(mean, 2)} +- {round(std, 2)}", flush=True)
    return name, mean, std


def main(trial_seconds: float = 2.0, runtime: str = "minray") -> list:
    """Run every row; ``runtime="ray"`` runs the same rows on Ray, for comparison."""
    import importlib

    import numpy as np

    minray = importlib.import_module(runtime)
    minray.init(ignore_reinit_error=True, resources={"custom": 100})  # as Ray's
    results: list = []

    def row(name, fn, multiplier=1):
        results.append(timeit(name, fn, multiplier, trial_seconds=trial_seconds))

    @minray.remote
    def small_value():
        return b"ok"

    @minray.remote
    def do_put_small():
        for _ in range(100):
            minray.put(0)

    @minray.remote
    def do_put():
        for _ in range(10):
            minray.put(np.zeros(10 * 1024 * 1024, dtype=np.int64))

    @minray.remote
    def create_object_containing_ref():
        return [minray.put(1) for _ in range(10000)]

    value = minray.put(0)
    row("single client get calls (Plasma Store)", lambda: minray.get(value))
    row("single client put calls (Plasma Store)", lambda: minray.put(0))
    row(
        "multi client put calls (Plasma Store)",
        lambda: minray.get([do_put_small.remote() for _ in range(10)]),
        1000,
    )
    array = np.zeros(100 * 1024 * 1024, dtype=np.int64)
    row("single client put gigabytes", lambda: minray.put(array), 8 * 0.1)
    row(
        "single client tasks and get batch",
        lambda: minray.get([small_value.remote() for _ in range(1000)]),
    )
    row(
        "multi client put gigabytes",
        lambda: minray.get([do_put.remote() for _ in range(10)]),
        10 * 8 * 0.1,
    )
    containing = create_object_containing_ref.remote()
    row("single client get object containing 10k refs", lambda: minray.get(containing))

    def wait_1k_refs():
        not_ready = [small_value.remote() for _ in range(1000)]
        for _ in range(1000):
            _, not_ready = minray.wait(not_ready)

    row("single client wait 1k refs", wait_1k_refs)
    row("single client tasks sync", lambda: minray.get(small_value.remote()))
    row(
        "single client tasks async",
        lambda: minray.get([small_value.remote() for _ in range(1000)]),
        1000,
    )

    @minray.remote
    def small_value_batch(n):
        minray.get([small_value.remote() for _ in range(n)])

    row(
        "multi client tasks async",
        lambda: minray.get([small_value_batch.remote(2500) for _ in range(4)]),
        10000,
    )
    _actor_rows(minray, row, small_value)
    _placement_group_row(minray, row)
    minray.shutdown()
    return [r for r in results if r is not None]


def _placement_group_row(minray, row, num_groups: int = 100) -> None:
    """Ray's row: create 100 one-bundle groups, wait for each, remove each."""
    import importlib

    util = importlib.import_module(f"{minray.__name__}.util.placement_group")

    def create_and_remove():
        groups = [util.placement_group([{"custom": 0.001}]) for _ in range(num_groups)]
        for group in groups:
            group.wait(timeout_seconds=30)
        for group in groups:
            util.remove_placement_group(group)

    row("placement group create/removal", create_and_remove, num_groups)


def _actor_rows(minray, row, small_value) -> None:
    """The actor rows of ``ray microbenchmark``: the same workloads, on the given runtime."""
    half = max(1, multiprocessing.cpu_count() // 2)

    @minray.remote
    class Actor:
        def small_value(self):
            return b"ok"

        def small_value_arg(self, x):
            return b"ok"

    @minray.remote
    class AsyncActor:
        async def small_value(self):
            return b"ok"

        async def small_value_with_arg(self, x):
            return b"ok"

    @minray.remote(num_cpus=0)
    class Client:
        def __init__(self, servers):
            self.servers = servers if isinstance(servers, list) else [servers]

        def small_value_batch(self, n):
            minray.get([s.small_value.remote() for s in self.servers for _ in range(n)])

        def small_value_batch_arg(self, n):
            x = minray.put(0)
            minray.get([s.small_value_arg.remote(x) for s in self.servers for _ in range(n)])

    @minray.remote
    def call_actors(actors, n):
        minray.get([actors[i % len(actors)].small_value.remote() for i in range(n)])

    def calls(actor, n=1000, method="small_value", arg=False):
        def run():
            bound = getattr(actor, method)
            minray.get([bound.remote(i) if arg else bound.remote() for i in range(n)])

        return run

    actor = Actor.remote()
    row("1:1 actor calls sync", lambda: minray.get(actor.small_value.remote()))
    row("1:1 actor calls async", calls(actor), 1000)
    concurrent = Actor.options(max_concurrency=16).remote()
    row("1:1 actor calls concurrent", calls(concurrent), 1000)
    actors = [Actor.remote() for _ in range(half)]
    client = Client.remote(actors)
    row(
        "1:n actor calls async",
        lambda: minray.get(client.small_value_batch.remote(5000)),
        5000 * len(actors),
    )
    actors = [Actor.remote() for _ in range(half)]
    row(
        "n:n actor calls async",
        lambda: minray.get([call_actors.remote(actors, 1000) for _ in range(4)]),
        4 * 1000,
    )
    clients = [Client.remote(Actor.remote()) for _ in range(half)]
    row(
        "n:n actor calls with arg async",
        lambda: minray.get([c.small_value_batch_arg.remote(1000) for c in clients]),
        1000 * len(clients),
    )
    async_actor = AsyncActor.remote()
    row("1:1 async-actor calls sync", lambda: minray.get(async_actor.small_value.remote()))
    row("1:1 async-actor calls async", calls(async_actor), 1000)
    row(
        "1:1 async-actor calls with args async",
        calls(async_actor, method="small_value_with_arg", arg=True),
        1000,
    )
    async_actors = [AsyncActor.remote() for _ in range(half)]
    async_client = Client.remote(async_actors)
    row(
        "1:n async-actor calls async",
        lambda: minray.get(async_client.small_value_batch.remote(5000)),
        5000 * len(async_actors),
    )
    async_actors = [AsyncActor.remote() for _ in range(half)]
    row(
        "n:n async-actor calls async",
        lambda: minray.get([call_actors.remote(async_actors, 5000) for _ in range(4)]),
        4 * 5000,
    )
