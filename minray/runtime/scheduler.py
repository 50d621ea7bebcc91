"""The node's lease scheduler: resource accounting as a pure state machine.

Owners ask for a *lease* on a worker with a resource shape (``{"CPU": 1}``).
Requests queue in arrival order; :meth:`LeaseScheduler.schedule` grants every
queued request that fits the free resources, skipping ones that do not fit so
that a large request does not block small ones behind it. Amounts are kept as
integers in units of 1/10,000 so fractions like 0.5 never drift.

GPUs are also handed out by id: a whole-number request takes that many fully
free GPUs, a fractional one shares a GPU that still has room.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import NamedTuple

UNIT = 10_000


def to_units(amount: float) -> int:
    return round(amount * UNIT)


def from_units(units: int) -> float:
    return units / UNIT


class Allocation(NamedTuple):
    resources: dict  #: name -> units
    gpu_ids: tuple  #: ((gpu_id, units), ...)

    def gpu_id_list(self) -> list[int]:
        return [gpu for gpu, _ in self.gpu_ids]


class LeaseScheduler:
    def __init__(self, total: dict[str, float]):
        self.total = {name: to_units(v) for name, v in total.items()}
        self.available = dict(self.total)
        self._gpu_free = {i: UNIT for i in range(int(total.get("GPU", 0)))}
        self._queue: dict[Hashable, dict[str, int]] = {}

    # --- queries ---------------------------------------------------------------------

    def missing(self, resources: dict[str, float]) -> dict[str, float]:
        """Resources this node can never provide for the request (empty when feasible)."""
        out = {}
        for name, amount in resources.items():
            if to_units(amount) > self.total.get(name, 0):
                out[name] = amount
        gpus = resources.get("GPU", 0)
        if gpus > 1 and gpus != int(gpus):
            out["GPU"] = gpus  # more than one GPU must be a whole number
        return out

    def available_resources(self) -> dict[str, float]:
        return {name: from_units(v) for name, v in self.available.items() if v > 0}

    def total_resources(self) -> dict[str, float]:
        return {name: from_units(v) for name, v in self.total.items()}

    def pending(self) -> int:
        return len(self._queue)

    def queued(self) -> list[Hashable]:
        """The keys of the queued requests, in the order :meth:`schedule` looks at them."""
        return list(self._queue)

    # --- changes ---------------------------------------------------------------------

    def submit(self, key: Hashable, resources: dict[str, float]) -> None:
        self._queue[key] = {n: to_units(a) for n, a in resources.items() if a > 0}

    def cancel(self, key: Hashable) -> bool:
        return self._queue.pop(key, None) is not None

    def schedule(self) -> list[tuple[Hashable, Allocation]]:
        """Grant every queued request that fits now, in arrival order."""
        granted = []
        for key, need in list(self._queue.items()):
            alloc = self._try_allocate(need)
            if alloc is not None:
                del self._queue[key]
                granted.append((key, alloc))
        return granted

    def release(self, alloc: Allocation) -> None:
        for name, units in alloc.resources.items():
            if name in self.total:  # a removed placement group's resources are gone
                self.available[name] = self.available.get(name, 0) + units
        for gpu, units in alloc.gpu_ids:
            self._gpu_free[gpu] += units

    def shrink(self, alloc: Allocation, keep: dict[str, float]) -> Allocation:
        """Give back all of ``alloc`` but ``keep`` (an actor placed with 1 CPU holds 0)."""
        kept = {}
        for name, units in alloc.resources.items():
            held = min(units, to_units(keep.get(name, 0)))
            self.available[name] = self.available.get(name, 0) + units - held
            if held:
                kept[name] = held
        gpu_ids = []
        to_keep = kept.get("GPU", 0)
        for gpu, units in alloc.gpu_ids:
            held = min(units, to_keep)
            to_keep -= held
            self._gpu_free[gpu] += units - held
            if held:
                gpu_ids.append((gpu, held))
        return Allocation(kept, tuple(gpu_ids))

    def reserve(self, need: dict[str, float], adds: dict[str, float]) -> bool:
        """Take ``need`` from what is free and add ``adds`` as new resources (a placement
        group's bundles become ``CPU_group_<id>``...), all or nothing."""
        units = {name: to_units(v) for name, v in need.items() if v > 0}
        if any(self.available.get(name, 0) < u for name, u in units.items()):
            return False
        for name, u in units.items():
            self.available[name] -= u
        for name, amount in adds.items():
            self.total[name] = self.total.get(name, 0) + to_units(amount)
            self.available[name] = self.available.get(name, 0) + to_units(amount)
        return True

    def unreserve(self, need: dict[str, float], adds: dict[str, float]) -> None:
        """Undo :meth:`reserve`: the added resources go, ``need`` is free again. Leases
        still holding added resources must have been ended first."""
        for name, amount in adds.items():
            self.total[name] = self.total.get(name, 0) - to_units(amount)
            self.available[name] = self.available.get(name, 0) - to_units(amount)
            if self.total[name] <= 0:
                del self.total[name]
                self.available.pop(name, None)
        for name, v in need.items():
            if v > 0:
                self.available[name] = self.available.get(name, 0) + to_units(v)

    def block(self, alloc: Allocation) -> None:
        """The lease's task waits in get(): lend its CPU to other tasks."""
        cpu = alloc.resources.get("CPU", 0)
        self.available["CPU"] = self.available.get("CPU", 0) + cpu

    def unblock(self, alloc: Allocation) -> None:
        """The task resumed: take its CPU back, even if that oversubscribes for a while."""
        cpu = alloc.resources.get("CPU", 0)
        self.available["CPU"] = self.available.get("CPU", 0) - cpu

    # --- internals -------------------------------------------------------------------

    def _try_allocate(self, need: dict[str, int]) -> Allocation | None:
        for name, units in need.items():
            if self.available.get(name, 0) < units:
                return None
        gpu_ids: tuple = ()
        gpus = need.get("GPU", 0)
        if gpus:
            gpu_ids = self._pick_gpus(gpus)
            if gpu_ids is None:
                return None
        for name, units in need.items():
            self.available[name] -= units
        for gpu, units in gpu_ids:
            self._gpu_free[gpu] -= units
        return Allocation(dict(need), gpu_ids)

    def _pick_gpus(self, units: int):
        if units >= UNIT:
            whole = [g for g, free in sorted(self._gpu_free.items()) if free == UNIT]
            count = units // UNIT
            return tuple((g, UNIT) for g in whole[:count]) if len(whole) >= count else None
        for g, free in sorted(self._gpu_free.items()):
            if free >= units:
                return ((g, units),)
        return None
