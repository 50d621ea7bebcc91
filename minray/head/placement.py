"""Placement-group bundling: which node each bundle of a placement group goes to.

A pure function over a snapshot of free resources, as Ray's four strategies
define them:

* ``STRICT_PACK``: every bundle on one node, or nowhere.
* ``PACK``: as few nodes as possible; one node when the group fits on one.
* ``STRICT_SPREAD``: every bundle on a different node, or nowhere. Solved
  exactly as a matching (bundles to nodes that can hold them), so a greedy
  first choice never hides a placement that exists.
* ``SPREAD``: as evenly as the free resources allow; never fails for want of
  distinct nodes, only for want of room.

Amounts are compared in the lease scheduler's integer units, so ten bundles of
0.1 CPU fit exactly one CPU. Call it with the nodes' *available* resources to
place a group now, and with their *totals* to ask whether it can ever fit
(None then means infeasible: report it and keep it pending).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..runtime.scheduler import to_units

STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")

Resources = Mapping[str, float]


def check_bundles(bundles: list, strategy: str) -> None:
    """Ray's checks on ``placement_group(bundles, strategy)``, with errors that say what to do."""
    if strategy not in STRATEGIES:
        raise ValueError(
            f"Invalid placement group strategy {strategy!r}. Supported strategies are: "
            f"{list(STRATEGIES)}."
        )
    if not isinstance(bundles, list) or not bundles:
        raise ValueError(
            "The placement group `bundles` argument must be a non-empty list of dicts, "
            f"e.g. [{{'CPU': 1}}, {{'CPU': 1}}]; got {bundles!r}."
        )
    for index, bundle in enumerate(bundles):
        if not isinstance(bundle, dict) or not bundle:
            raise ValueError(
                f"Bundle {index} must be a non-empty dict of resources, got {bundle!r}."
            )
        for name, amount in bundle.items():
            if not isinstance(name, str):
                raise TypeError(f"Bundle {index}: resource names must be strings, got {name!r}.")
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
                raise ValueError(
                    f"Bundle {index}: {name} must be a non-negative number, got {amount!r}."
                )
        if all(amount == 0 for amount in bundle.values()):
            raise ValueError(
                f"Bundle {index} {bundle} asks for nothing; every bundle needs a positive amount."
            )


def place_bundles(
    bundles: list[Resources], strategy: str, nodes: Mapping[bytes, Resources]
) -> list[bytes] | None:
    """The node of each bundle (in bundle order), or None when the strategy cannot place
    them on ``nodes`` (node id -> free resources; their order breaks ties)."""
    need = [_units(b) for b in bundles]
    room = {node: _units(free) for node, free in nodes.items()}
    if strategy == "STRICT_PACK":
        return _strict_pack(need, room)
    if strategy == "PACK":
        return _strict_pack(need, room) or _greedy(need, room, prefer_used=True)
    if strategy == "STRICT_SPREAD":
        return _matching(need, room)
    if strategy == "SPREAD":
        return _matching(need, room) or _greedy(need, room, prefer_used=False)
    raise ValueError(f"unknown placement strategy {strategy!r}")


Plan = dict[bytes, dict[int, Resources]]  #: node -> {bundle index: bundle} to reserve there


def plan_missing(
    bundles: list[Resources],
    placed: list[bytes],
    strategy: str,
    view: Mapping[bytes, tuple[Resources, Resources]],
) -> tuple[Plan | None, str]:
    """Where a group's unplaced bundles (``placed[i] == b""``) go now, from ``view``
    (node -> (total, free), in order of preference): ``(plan, "")``; or ``(None, "")``
    when they must wait for room; or ``(None, why)`` when no set of these nodes could
    ever hold them. Under STRICT_SPREAD a node holding one of the group's bundles takes
    no other; a STRICT_PACK group is placed whole, never in part."""
    missing = [i for i, node in enumerate(placed) if not node]
    need = [bundles[i] for i in missing]
    avoid = set(placed) if strategy == "STRICT_SPREAD" else set()
    usable = [node for node in view if node not in avoid]
    chosen = place_bundles(need, strategy, {node: view[node][1] for node in usable})
    if chosen is not None:
        plan: Plan = {}
        for index, node in zip(missing, chosen):
            plan.setdefault(node, {})[index] = bundles[index]
        return plan, ""
    if place_bundles(need, strategy, {node: view[node][0] for node in usable}) is not None:
        return None, ""
    totals = [dict(view[node][0]) for node in usable]
    return None, (
        f"{strategy} placement of {[dict(b) for b in need]} cannot be met by this cluster's "
        f"nodes ({totals}); it stays pending until a node that fits it joins"
    )


# --- internals ---------------------------------------------------------------------------


def _units(resources: Resources) -> dict[str, int]:
    return {name: to_units(v) for name, v in resources.items() if v > 0}


def _fits(need: dict[str, int], free: dict[str, int]) -> bool:
    return all(free.get(name, 0) >= units for name, units in need.items())


def _take(need: dict[str, int], free: dict[str, int]) -> None:
    for name, units in need.items():
        free[name] -= units


def _strict_pack(need: list[dict[str, int]], room: dict[bytes, dict[str, int]]):
    total: dict[str, int] = {}
    for bundle in need:
        for name, units in bundle.items():
            total[name] = total.get(name, 0) + units
    for node, free in room.items():
        if _fits(total, free):
            return [node] * len(need)
    return None


def _greedy(need, room, prefer_used: bool):
    """Largest bundle first; PACK prefers nodes already holding bundles, SPREAD the
    node holding fewest. Ties go to the node listed first."""
    room = {node: dict(free) for node, free in room.items()}
    count = dict.fromkeys(room, 0)
    order = list(room)
    placed: list[bytes | None] = [None] * len(need)
    for index in sorted(range(len(need)), key=lambda i: -sum(need[i].values())):
        fitting = [node for node in order if _fits(need[index], room[node])]
        if not fitting:
            return None
        sign = -1 if prefer_used else 1
        node = min(fitting, key=lambda n: (sign * count[n], order.index(n)))
        _take(need[index], room[node])
        count[node] += 1
        placed[index] = node
    return placed


def _matching(need, room):
    """Each bundle on its own node (Kuhn's augmenting paths), or None."""
    order = list(room)
    can_hold = [[node for node in order if _fits(bundle, room[node])] for bundle in need]
    holder: dict[bytes, int] = {}  # node -> bundle index

    def assign(index: int, visited: set) -> bool:
        for node in can_hold[index]:
            if node in visited:
                continue
            visited.add(node)
            if node not in holder or assign(holder[node], visited):
                holder[node] = index
                return True
        return False

    for index in range(len(need)):
        if not assign(index, set()):
            return None
    placed: list[bytes] = [b""] * len(need)
    for node, index in holder.items():
        placed[index] = node
    return placed


# --- bundles as resources -------------------------------------------------------------
#
# As in Ray, a placed bundle turns into resources of its own: bundle i of group G with
# {"CPU": 2} adds "CPU_group_i_G": 2 and "CPU_group_G": 2 to its node, plus
# "bundle_group_i_G" / "bundle_group_G" (1000 per bundle) that even a task asking for no
# CPU takes a sliver of, so it runs only where the bundle is.

BUNDLE_UNITS = 1000.0
BUNDLE_SLIVER = 0.001


def bundle_resources(
    group_hex: str, bundles: list[Resources] | Mapping[int, Resources]
) -> dict[str, float]:
    """The resources placed bundles add to their node: ``bundles`` is the group's list,
    or ``{bundle index: bundle}`` for those of its bundles on the node."""
    out: dict[str, float] = {}
    pairs = bundles.items() if isinstance(bundles, Mapping) else enumerate(bundles)
    for index, bundle in pairs:
        for name, amount in [*bundle.items(), ("bundle", BUNDLE_UNITS)]:
            if amount > 0:
                for key in (f"{name}_group_{index}_{group_hex}", f"{name}_group_{group_hex}"):
                    out[key] = out.get(key, 0.0) + amount
    return out


def in_bundle(shape: Resources, group_hex: str, index: int = -1) -> dict[str, float]:
    """A task's resource shape, asked of bundle ``index`` of the group (-1: any bundle)."""
    suffix = f"group_{group_hex}" if index < 0 else f"group_{index}_{group_hex}"
    out = {f"{name}_{suffix}": amount for name, amount in shape.items() if amount > 0}
    out[f"bundle_{suffix}"] = BUNDLE_SLIVER
    return out


def is_bundle_resource(name: str) -> bool:
    return "_group_" in name
