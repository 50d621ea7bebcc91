"""Why a lease request waits at a node, said in one line (pure, no I/O).

The node decides every lease request (node/daemon.py): it grants it, sends it on
(spillback), or keeps it. While it keeps one it knows why, and these functions
put that into words from what the node passes in:

* ``Infeasible``: no live node can ever fit the request (with what each has);
* ``Waiting for placement group``: its bundle is not placed on this node yet, or
  the bundle's resources are in use (by whom);
* ``Resources busy``: this node could run it, but what it needs is in use: by
  whom, and its real position in the node's queue;
* ``Waiting for a worker process``: its resources are granted and a worker is
  being started for it.

The first word names the kind; tests and tools may match on it. Resource names
the user never wrote (``node:...``, ``memory``, a group's renamed resources) are
left out of the shapes shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..runtime.scheduler import to_units

#: holders named in a reason at most; the rest are counted
MAX_HOLDERS = 3

Resources = Mapping[str, float]


def short(resources: Resources) -> str:
    """``{CPU: 1, GPU: 1}``: a shape as the user wrote it (internal names left out)."""
    shown = {k: v for k, v in resources.items() if not _internal(k) and v > 0}
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(shown.items())) + "}"


def _internal(name: str) -> bool:
    return (
        name.startswith("node:") or "_group_" in name or name in ("memory", "object_store_memory")
    )


def group_of(shape: Resources) -> str:
    """The hex id of the placement group whose bundle the shape asks for ("" if none)."""
    for name in shape:
        if "_group_" in name:
            return name.rsplit("_", 1)[1]
    return ""


def short_of(shape: Resources, available: Resources) -> list[str]:
    """The resources of ``shape`` that ``available`` has too little of now."""
    return [
        name
        for name, amount in shape.items()
        if amount > 0 and to_units(available.get(name, 0)) < to_units(amount)
    ]


def holders_text(holders: list[str]) -> str:
    """``task f (worker pid 12), actor A (pid 13) and 2 more``, or ``nothing this node
    can name`` when none is known (a lease given back a moment ago)."""
    if not holders:
        return "nothing this node can name (they were freed a moment ago)"
    named = ", ".join(holders[:MAX_HOLDERS])
    more = len(holders) - MAX_HOLDERS
    return f"{named} and {more} more" if more > 0 else named


def infeasible(shape: Resources, nodes: Iterable[tuple[str, Resources]]) -> str:
    """No live node can ever fit ``shape``; ``nodes``: (name, total resources) of each."""
    have = "; ".join(f"{name}: {short(total)}" for name, total in nodes) or "no live node"
    return (
        f"Infeasible: no node can ever fit {short(shape)} (the nodes have {have}). It runs "
        "once a node with these resources joins; or ask for less."
    )


def group_not_placed(group_hex: str, state: str = "", why: str = "") -> str:
    """The request's placement group holds no bundle for it on this node yet."""
    said = f" (it is {state}{': ' + why if why else ''})" if state else ""
    return (
        f"Waiting for placement group {group_hex}: its bundle is not placed yet{said}. "
        "It runs once the group is created."
    )


def place(position: int, queued: int, name: str) -> str:
    """``position 1 of 2 in the node's queue for CPU``: of the requests queued there that
    ask for ``name`` (the node grants in queue order what fits; those that ask for other
    resources do not stand in the way)."""
    return f"position {position} of {queued} in the node's queue for {name.split('_group_')[0]}"


def group_busy(group_hex: str, shape: Resources, holders: list[str], where: str) -> str:
    """The bundle is placed here, and what the request needs of it is in use;
    ``where``: its :func:`place`."""
    return (
        f"Waiting for placement group {group_hex}: its bundle is placed, but the "
        f"{short(_ungrouped(shape))} it asks for is in use by {holders_text(holders)}; "
        f"{where}."
    )


def busy(node: str, shape: Resources, names: list[str], holders: list[str], where: str) -> str:
    """This node could run it, but ``names`` of what it asks for are in use; ``where``:
    its :func:`place`."""
    what = short({n: shape[n] for n in names}) if names else short(shape)
    return (
        f"Resources busy: it asks for {short(shape)} and node {node} has no {what} free, "
        f"in use by {holders_text(holders)}; {where}."
    )


def fits_now(node: str) -> str:
    """It fits what is free: granted at the node's next scheduling pass."""
    return f"Resources free: node {node} has room for it now and grants it at once."


def worker_starting(node: str, position: int, waiting: int, starting: int) -> str:
    """Its resources are granted; a worker process is being started for it."""
    return (
        f"Waiting for a worker process to start on node {node}: its resources are granted "
        f"({position} of {waiting} leases waiting for a worker; {starting} starting)."
    )


def _ungrouped(shape: Resources) -> dict:
    """A group's renamed resources as the user asked for them (``CPU_group_0_ab`` -> CPU);
    the sliver of ``bundle_group_...`` every task in a group takes is left out."""
    out: dict = {}
    for name, amount in shape.items():
        base = name.split("_group_", 1)[0]
        if base != "bundle":
            out[base] = out.get(base, 0.0) + amount
    return out
