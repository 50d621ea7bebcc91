"""Which worker the memory monitor kills, and what its owner is told (pure).

When a node's memory use passes its threshold (node/memory_monitor.py), it kills
one worker: the one given most recently to a task that may run again (its
``max_retries`` is not 0, or its actor may restart), so the least work is lost
and none of it for good. Only when no worker's task may run again does it kill
the newest of all, whose task then fails with ``OutOfMemoryError``.

After a kill, the memory the victim held may take seconds to show as free (a
virtual machine that reports freed pages to its host takes them off the free
lists meanwhile). :class:`RecentKill` credits it back for a while, so the next
reading does not look just as high and kill a second, innocent worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

GB = 1024**3


@dataclass(frozen=True)
class MemoryReading:
    """Bytes in use and in all, of the machine or of the node's cgroup (``source``)."""

    used: int
    total: int
    source: str = "the machine"

    @property
    def fraction(self) -> float:
        return self.used / self.total if self.total > 0 else 0.0


#: how long the memory a kill freed is credited back while the kernel has not shown it
KILL_CREDIT_S = 10.0


@dataclass
class RecentKill:
    """The last kill: the reading that caused it, what its victim held, and when."""

    used_before: int  #: bytes in use when the victim was chosen
    freed: int  #: the victim's memory not shared with other processes
    at: float  #: when it was killed (monotonic clock)
    lowest: int = -1  #: the lowest reading since (-1: none yet)

    def adjust(self, reading: MemoryReading, now: float) -> MemoryReading:
        """The reading less what the kill freed and the kernel does not show as free yet.

        The credit shrinks for good as readings fall below ``used_before`` (memory
        that grows again afterwards is new use, never hidden) and ends after
        :data:`KILL_CREDIT_S`.
        """
        if now - self.at > KILL_CREDIT_S:
            return reading
        if self.lowest < 0 or reading.used < self.lowest:
            self.lowest = reading.used
        shown = max(0, self.used_before - self.lowest)
        credit = max(0, self.freed - shown)
        return replace(reading, used=max(0, reading.used - credit))


def over_threshold(reading: MemoryReading, threshold: float) -> bool:
    """Whether the memory monitor must act (a threshold of 0 turns it off)."""
    return threshold > 0 and reading.total > 0 and reading.fraction >= threshold


@dataclass(frozen=True)
class Candidate:
    """A worker running a task (under a lease) or hosting an actor."""

    pid: int
    busy_since: float  #: when the worker was given to its task or actor (monotonic clock)
    retriable: bool  #: its task may run again / its actor may restart
    name: str  #: the task's function or the actor's class, for the messages
    is_actor: bool = False
    lease_id: int = 0  #: the lease of a task's worker (0 for an actor's)
    owner: Any = None  #: the connection of the lease's owner, told before the kill


def choose_victim(candidates: Iterable[Candidate]) -> Candidate | None:
    """The newest retriable candidate, else the newest of all; None if there is none."""
    pool = list(candidates)
    retriable = [c for c in pool if c.retriable]
    pool = retriable or pool
    return max(pool, key=lambda c: (c.busy_since, c.pid)) if pool else None


def kill_message(
    victim: Candidate,
    reading: MemoryReading,
    threshold: float,
    node: str,
    top_users: Sequence[tuple[int, str, int]],
) -> str:
    """What the victim's owner (or its actor's callers) and the node's log are told.

    ``node`` says which node ("IP: ..., ID: ..."); ``top_users`` are (pid, name,
    bytes) of the node's biggest workers, biggest first.
    """
    what = f"actor {victim.name}" if victim.is_actor else f"task {victim.name}"
    why = (
        "the most recently scheduled worker whose work may run again"
        if victim.retriable
        else "the most recently scheduled worker (none of the workers' work may run again)"
    )
    lines = [
        f"The {what} (pid={victim.pid}) was killed because its node ran low on memory.",
        f"Memory on the node ({node}) was {reading.used / GB:.2f} GB / "
        f"{reading.total / GB:.2f} GB ({reading.fraction:.3f}) of {reading.source}, "
        f"which is over the memory usage threshold of {threshold}. "
        f"The node killed {why}.",
        "Its biggest workers (memory not shared with other processes):",
        "PID\tMEM(GB)\tNAME",
    ]
    lines += [f"{pid}\t{size / GB:.2f}\t{name}" for pid, name, size in top_users]
    lines.append(
        "To avoid this: run fewer tasks at once (ask each task for more CPUs, or for "
        "memory=<bytes>), use less memory per task, or pass large data with put(). The "
        "threshold is MINRAY_MEMORY_USAGE_THRESHOLD (0 turns the monitor off)."
    )
    return "\n".join(lines)


__all__ = [
    "KILL_CREDIT_S",
    "Candidate",
    "MemoryReading",
    "RecentKill",
    "choose_victim",
    "kill_message",
    "over_threshold",
]
