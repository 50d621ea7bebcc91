"""Spilling ahead of a full store, in the background (Ray's object_spilling_threshold).

A mixin of :class:`~minray.node.daemon.NodeDaemon`. After each reservation, and
every housekeeping tick, the node looks whether live objects hold more than
``object_spilling_threshold`` of its store. If so it starts one background task
that spills the least recently used unpinned objects (object_store/spill_policy.py
``choose_ahead``) through the same path as a full store (node/spilling.py
``_spill``: written on the spill threads, dropped from shared memory once the file
is complete), round after round, until the store is at the threshold again; then
the task ends. So a put rarely has to wait for room.

The rule it keeps: it never blocks serving gets and puts. It takes no lock a
reservation that fits would wait for; files are written off the loop; an object
being read (pinned) or not yet written (its writer's pin) is never chosen. A
reservation that does not fit waits for a background round under way before it
spills on its own (node/spilling.py), so what is on its way to disk is never
mistaken for room that cannot be made. A failed write (a full disk) pauses spilling
ahead for PAUSE_AFTER_FAILURE_S: a full store still spills, and says why it cannot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ..config import CONFIG

if TYPE_CHECKING:
    from .daemon import NodeDaemon

logger = logging.getLogger("minray.node")

#: rounds one background task may take (objects made meanwhile may keep it going)
MAX_AHEAD_ROUNDS = 64
#: seconds spilling ahead rests after a write failed
PAUSE_AFTER_FAILURE_S = 5.0


class SpillAhead:
    """The background spiller, mixed into the node daemon."""

    def _init_spill_ahead(self: NodeDaemon) -> None:
        self._ahead: asyncio.Task | None = None  #: the background task, while it runs
        self._ahead_paused_until = 0.0  #: time.monotonic() before which none starts
        self.spilled_ahead_bytes_total = 0  #: bytes spilled ahead since the node started

    def spill_ahead_soon(self: NodeDaemon) -> None:
        """Start the background spiller if the store is over its threshold (cheap when
        it is not: called after every reservation)."""
        if self._ahead is not None or self._stopping:
            return
        store, threshold = self.store, CONFIG.object_spilling_threshold
        if store.used - store.pooled_bytes <= threshold * store.capacity:
            return
        if time.monotonic() < self._ahead_paused_until:
            return
        self._ahead = asyncio.get_running_loop().create_task(self._spill_ahead())
        self._ahead.add_done_callback(self._ahead_done)

    def _ahead_done(self: NodeDaemon, task: asyncio.Task) -> None:
        self._ahead = None
        if not task.cancelled() and task.exception() is not None:
            logger.error("spilling ahead failed", exc_info=task.exception())

    async def _spill_ahead(self: NodeDaemon) -> None:
        for _ in range(MAX_AHEAD_ROUNDS):
            batch = self.store.ahead(CONFIG.object_spilling_threshold, CONFIG.min_spilling_size)
            if not batch or self._stopping:
                return
            failure = await self._spill(batch, ahead=True)
            if failure is not None:
                self._ahead_paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_S
                logger.warning(
                    "spilling ahead of a full store paused for %.0f s: %s",
                    PAUSE_AFTER_FAILURE_S,
                    failure,
                )
                return

    async def spill_ahead_settled(self: NodeDaemon) -> bool:
        """Wait for the background spilling under way (its rounds end at the threshold,
        at most MAX_AHEAD_ROUNDS); True if there was some."""
        task = self._ahead
        if task is None:
            return False
        await asyncio.wait([task])
        return True

    def _close_spill_ahead(self: NodeDaemon) -> None:
        if self._ahead is not None:
            self._ahead.cancel()
