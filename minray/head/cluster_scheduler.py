"""Which node a lease request should go to: the cluster-level scheduling choice.

A node that cannot grant a lease itself asks this pure function where to send
the owner (spillback), using the head's resource view. The view may be stale;
that is fine, because the chosen node checks again and refuses if it cannot
fit, and the owner then asks anew.

The choice, by strategy (as Ray's, in fewer rules):

* ``DEFAULT``: the node holding most of the task's large arguments, if it has
  room now (locality); else the local node if it has room; else the node with
  room whose busiest resource is least used; else, when nobody has room, queue
  where it could ever fit (the local node first).
* ``SPREAD``: round-robin over the nodes that have room now (else over those
  where it could ever fit), starting after the node chosen last time.
* ``NodeAffinity(node_id, soft)``: that node, if it is alive and could ever fit
  the request; else, when ``soft``, the ``DEFAULT`` choice; else unschedulable.

An answer is a :class:`Choice`: a node and whether it has room now, or no node
with the reason (``infeasible`` names what no node has; ``unschedulable``
explains the affinity that cannot hold).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from ..runtime.scheduler import to_units

Resources = Mapping[str, float]
#: node id -> (total, available), as the head's node table gives it
View = Mapping[bytes, tuple[Resources, Resources]]


class NodeAffinity(NamedTuple):
    node_id: bytes
    soft: bool = False


class Choice(NamedTuple):
    node_id: bytes | None
    has_room: bool = False  #: False: queue there until it frees up
    reason: str = ""  #: why no node was chosen ("" when one was)

    @property
    def infeasible(self) -> bool:
        return self.node_id is None


def choose_node(
    shape: Resources,
    view: View,
    local: bytes,
    strategy: str | NodeAffinity = "DEFAULT",
    arg_bytes: Mapping[bytes, int] | None = None,
    last_spread: bytes | None = None,
) -> Choice:
    """Where a request of ``shape`` should run; see the module doc for the rules."""
    need = {name: to_units(v) for name, v in shape.items() if v > 0}
    order = sorted(view)
    ever = [n for n in order if _fits(need, view[n][0])]
    now = [n for n in ever if _fits(need, view[n][1])]
    if isinstance(strategy, NodeAffinity):
        if strategy.node_id in ever:
            return Choice(strategy.node_id, strategy.node_id in now)
        if not strategy.soft:
            where = "is not alive" if strategy.node_id not in view else "can never fit it"
            return Choice(
                None,
                reason=f"NodeAffinitySchedulingStrategy(soft=False): node "
                f"{strategy.node_id.hex()[:12]} {where}",
            )
        strategy = "DEFAULT"
    if not ever:
        return Choice(None, reason=_infeasible_reason(shape, view))
    if strategy == "SPREAD":
        pool = now or ever
        after = [n for n in pool if last_spread is not None and n > last_spread]
        node = (after or pool)[0]
        return Choice(node, node in now)
    if strategy != "DEFAULT":
        raise ValueError(f"unknown scheduling strategy {strategy!r}")
    if arg_bytes:
        holder = max(arg_bytes, key=lambda n: (arg_bytes[n], n == local))
        if holder in now:
            return Choice(holder, True)
    if local in now:
        return Choice(local, True)
    if now:
        return Choice(min(now, key=lambda n: _utilisation(view[n])), True)
    return Choice(local if local in ever else ever[0], False)


def _fits(need: dict[str, int], resources: Resources) -> bool:
    return all(to_units(resources.get(name, 0)) >= units for name, units in need.items())


def _utilisation(node: tuple[Resources, Resources]) -> float:
    """The share used of the node's busiest resource (0 idle, 1 full)."""
    total, available = node
    shares = [1 - available.get(name, 0) / amount for name, amount in total.items() if amount > 0]
    return max(shares, default=0.0)


def _infeasible_reason(shape: Resources, view: View) -> str:
    if not view:
        return f"no node is alive to run {dict(shape)}"
    totals = [dict(total) for total, _ in view.values()]
    return (
        f"no node can ever fit {dict(shape)}; the cluster's nodes have {totals}. "
        "Add a node that has these resources, or ask for less."
    )
