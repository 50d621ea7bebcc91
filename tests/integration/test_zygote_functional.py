"""Workers forked from the zygote share its memory, and keep sharing it (node/zygote.py)."""

from __future__ import annotations

import os

import pytest

import minray


@minray.remote(num_cpus=0)
class FrozenCount:
    def count(self) -> int:
        import gc

        return gc.get_freeze_count()


def test_workers_inherit_the_zygotes_objects_frozen(cluster):
    """A worker's garbage collections skip what it shares with the zygote (gc.freeze there),
    so they do not copy those pages: a long-lived actor stays small."""
    actor = FrozenCount.remote()
    assert minray.get(actor.count.remote(), timeout=60) > 10_000


def _private_kib() -> int:
    """This process's pages no other process maps (its USS), in KiB."""
    with open("/proc/self/smaps_rollup") as rollup:
        return sum(int(line.split()[1]) for line in rollup if line.startswith("Private_"))


@minray.remote(num_cpus=0)
class Collector:
    def private_kib_around_a_full_collection(self) -> tuple[int, int]:
        import gc

        before = _private_kib()
        gc.collect()
        return before, _private_kib()


NO_ROLLUP = not os.path.exists("/proc/self/smaps_rollup")


@pytest.mark.skipif(NO_ROLLUP, reason="needs Linux's /proc/self/smaps_rollup")
def test_a_workers_first_full_collection_copies_next_to_nothing(cluster):
    """The zygote runs a full collection after its freeze, which empties the interpreter's
    free lists: a worker's first full collection then frees none of the zygote's objects,
    which would write to, and so copy, the pages they sit on (about 0.4 MiB per worker)."""
    actor = Collector.remote()
    before, after = minray.get(actor.private_kib_around_a_full_collection.remote(), timeout=60)
    assert after - before < 128, (before, after)
