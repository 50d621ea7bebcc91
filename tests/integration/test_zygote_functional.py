"""Workers forked from the zygote share its memory, and keep sharing it (node/zygote.py)."""

from __future__ import annotations

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
