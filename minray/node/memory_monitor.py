"""The node's memory monitor: reads memory use and kills a worker before the machine runs out.

A mixin of :class:`~minray.node.daemon.NodeDaemon`. Every
``memory_monitor_refresh_s`` it reads the memory in use, of the node's cgroup when
that has a limit (a container), else of the machine. Past
``memory_usage_threshold`` it picks a worker (node/oom_policy.py), tells the
owner of the worker's lease why (``OomKilled``, answered before the kill, so the
owner retries the task on its memory budget or fails it with
``OutOfMemoryError``), and kills it. An actor killed this way dies with the
message as its cause, and restarts if ``max_restarts`` allows. It then waits
for that worker to be gone, and credits back what it held until the kernel shows
it as free (``RecentKill``), before it kills another.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING

import psutil

from ..config import CONFIG
from ..protocol.messages import OomKilled
from .oom_policy import (
    Candidate,
    MemoryReading,
    RecentKill,
    choose_victim,
    kill_message,
    over_threshold,
)
from .processes import alive
from .processes import kill as _kill

if TYPE_CHECKING:
    from .daemon import NodeDaemon, WorkerRecord

logger = logging.getLogger("minray.node")

CGROUP = "/sys/fs/cgroup"
#: how long the owner of a lease has to say it heard of the kill before the kill goes on
OWNER_TOLD_TIMEOUT_S = 1.0
#: how many of the biggest workers the message names
TOP_USERS = 5


def read_memory(cgroup: str = CGROUP) -> MemoryReading:
    """Memory in use: the cgroup's (v2, when it has a limit below the machine's
    memory; page cache that can be dropped is not counted), else the machine's."""
    machine = psutil.virtual_memory()
    try:
        with open(os.path.join(cgroup, "memory.max")) as f:
            limit = f.read().strip()
        if limit != "max" and int(limit) < machine.total:
            with open(os.path.join(cgroup, "memory.current")) as f:
                current = int(f.read())
            inactive = 0
            with open(os.path.join(cgroup, "memory.stat")) as f:
                for line in f:
                    if line.startswith("inactive_file "):
                        inactive = int(line.split()[1])
            return MemoryReading(max(0, current - inactive), int(limit), "the node's cgroup")
    except (OSError, ValueError):
        pass
    return MemoryReading(machine.total - machine.available, machine.total)


def unshared_bytes(pid: int) -> int:
    """A process's resident memory less what it shares (the object store, the zygote's pages)."""
    try:
        info = psutil.Process(pid).memory_info()
    except (psutil.Error, OSError):
        return 0
    return max(0, info.rss - getattr(info, "shared", 0))


class MemoryMonitor:
    """Watches the node's memory and kills a worker when it runs low."""

    def _start_memory_monitor(self: NodeDaemon) -> None:
        if CONFIG.memory_usage_threshold > 0 and CONFIG.memory_monitor_refresh_s > 0:
            asyncio.get_running_loop().create_task(self._watch_memory())

    async def _watch_memory(self: NodeDaemon) -> None:
        threshold, victim_pid, warned = CONFIG.memory_usage_threshold, 0, False
        last_kill: RecentKill | None = None
        while not self._stopping:
            await asyncio.sleep(CONFIG.memory_monitor_refresh_s)
            if victim_pid and alive(victim_pid):
                continue  # the last kill has not freed its memory yet
            victim_pid = 0
            raw = read_memory()
            reading = raw if last_kill is None else last_kill.adjust(raw, time.monotonic())
            if not over_threshold(reading, threshold):
                warned = False
                continue
            candidates = self._oom_candidates()
            victim = choose_victim(candidates)
            if victim is None:
                if not warned:  # nothing of ours to kill: the memory is used elsewhere
                    logger.warning(
                        "memory use is %.3f of %s, over the threshold of %s, but no worker "
                        "of this node runs a task or an actor", reading.fraction,
                        reading.source, threshold,
                    )  # fmt: skip
                    warned = True
                continue
            victim_pid = victim.pid
            freed = await self._oom_kill(victim, candidates, reading, threshold)
            still_credited = raw.used - reading.used  # by an earlier kill
            last_kill = RecentKill(raw.used, freed + still_credited, time.monotonic())

    def _oom_candidates(self: NodeDaemon) -> list[Candidate]:
        found = []
        for worker in self.workers.values():
            if not worker.pid:
                continue
            lease = worker.lease
            if lease is not None:
                found.append(
                    Candidate(worker.pid, worker.busy_since, lease.retriable, lease.task_name,
                              lease_id=lease.lease_id, owner=lease.owner)
                )  # fmt: skip
            elif worker.actor is not None:
                found.append(self._actor_candidate(worker))
        return found

    def _actor_candidate(self: NodeDaemon, worker: WorkerRecord) -> Candidate:
        actor = worker.actor
        record = self.actors.get(actor.actor_id)
        if record is not None and record.host == b"":  # at home here: its restarts are known
            left = record.max_restarts == -1 or record.restarts < record.max_restarts
            name = record.class_name
        else:  # a guest: its home decides, from what it asked for
            left, name = actor.retriable, actor.class_name
        return Candidate(worker.pid, worker.busy_since, left, name, is_actor=True)

    async def _oom_kill(
        self: NodeDaemon, victim: Candidate, candidates: list[Candidate], reading, threshold: float
    ) -> int:
        """Kill ``victim`` after telling its owner why; returns the bytes it held."""
        names = {c.pid: c.name for c in candidates}
        pids = [w.pid for w in self.workers.values() if w.pid]
        sizes = sorted(
            ((pid, names.get(pid, "idle worker"), unshared_bytes(pid)) for pid in pids),
            key=lambda row: -row[2],
        )
        node = f"IP: {self.settings.node_ip}, ID: {self.settings.node_id.hex()}"
        message = kill_message(victim, reading, threshold, node, sizes[:TOP_USERS])
        logger.warning("memory monitor: %s", message)
        self._oom_causes[victim.pid] = message
        if victim.owner is not None and not victim.owner.closed:
            try:  # told first, so its worker's closed connection reads as this kill
                await asyncio.wait_for(
                    victim.owner.request(OomKilled(victim.lease_id, message)),
                    OWNER_TOLD_TIMEOUT_S,
                )
            except Exception as e:  # the kill goes on: the task then reads as a crash
                logger.info("the owner of lease %d was not told of the kill: %r",
                            victim.lease_id, e)  # fmt: skip
        _kill(victim.pid)
        return next((size for pid, _, size in sizes if pid == victim.pid), 0)

    def oom_cause(self: NodeDaemon, worker: WorkerRecord) -> str | None:
        """The memory monitor's message if it killed this worker (said once)."""
        return self._oom_causes.pop(worker.pid, None) if worker.pid else None


__all__ = ["MemoryMonitor", "read_memory", "unshared_bytes"]
