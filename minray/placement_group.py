"""Placement groups (``ray.util.placement_group``): bundles of resources reserved together.

``placement_group(bundles, strategy)`` asks the node to reserve every bundle at
once (see node/placement_groups.py) and returns at once; ``pg.ready()`` is an
ObjectRef that resolves when the group is placed, ``pg.wait(seconds)`` waits
for that. Tasks and actors run in a bundle with
``scheduling_strategy=PlacementGroupSchedulingStrategy(pg, bundle_index)``.
``remove_placement_group(pg)`` stops them and frees the resources. With
``placement_group_capture_child_tasks=True``, what such a task or actor starts
(naming no strategy of its own) runs in the same group, as in Ray;
``get_current_placement_group()`` says which group the running code is in.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from . import api, ids
from .head.placement import check_bundles
from .protocol.connection import RemoteError
from .protocol.messages import (
    CreatePlacementGroup,
    GetPlacementGroups,
    RemovePlacementGroup,
    WaitPlacementGroup,
)
from .remote_function import RemoteFunction
from .scheduling_strategies import PlacementGroupSchedulingStrategy

logger = logging.getLogger("minray")


class PlacementGroup:
    """A handle on a placement group; it can be passed to tasks and actors."""

    def __init__(self, id: ids.PlacementGroupID, bundle_specs: list[dict]):
        self.id = id
        self.bundle_specs = [dict(b) for b in bundle_specs]

    @property
    def bundle_count(self) -> int:
        return len(self.bundle_specs)

    def ready(self):
        """An ObjectRef that resolves (to this group) once every bundle is reserved."""
        strategy = PlacementGroupSchedulingStrategy(self)
        return _bundle_reservation_check.options(
            num_cpus=0, scheduling_strategy=strategy, name="placement_group.ready"
        ).remote(self)

    def wait(self, timeout_seconds: float = 30) -> bool:
        """Whether the group was placed within ``timeout_seconds`` (asks the node
        directly: no task is run, unlike ``ready()``)."""
        worker = api._auto_init()
        message = WaitPlacementGroup(self.id.binary(), float(timeout_seconds))
        try:
            reply = worker.call_node(message, timeout_seconds + 10)
        except RemoteError as e:
            raise ValueError(str(e)) from None
        return reply.groups[0]["state"] == "CREATED"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlacementGroup) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"PlacementGroup(id={self.id.hex()}, bundles={self.bundle_specs})"

    def __reduce__(self):
        return PlacementGroup, (self.id, self.bundle_specs)


def _check_reservation(group: PlacementGroup) -> PlacementGroup:
    return group


_bundle_reservation_check = RemoteFunction(_check_reservation, {"max_retries": 0})


def placement_group(
    bundles: list[dict[str, float]],
    strategy: str = "PACK",
    name: str = "",
    lifetime: str | None = None,
    **unsupported: Any,
) -> PlacementGroup:
    """Reserve ``bundles`` with ``strategy`` (PACK, SPREAD, STRICT_PACK, STRICT_SPREAD).
    Returns at once; ``pg.ready()`` / ``pg.wait()`` tell when it is placed."""
    if unsupported:
        raise TypeError(f"placement_group() got unsupported arguments {sorted(unsupported)}")
    check_bundles(bundles, strategy)
    if lifetime not in (None, "detached"):
        raise ValueError(
            f"Placement group `lifetime` argument must be either `None` or 'detached', "
            f"got {lifetime!r}."
        )
    if not isinstance(name, str):
        raise TypeError(f"placement group name must be a str, got {type(name)}")
    worker = api._auto_init()
    group_id = ids.PlacementGroupID(os.urandom(ids.PlacementGroupID.size))
    message = CreatePlacementGroup(
        group_id.binary(),
        name,
        worker.current_namespace(),
        [{k: float(v) for k, v in b.items()} for b in bundles],
        strategy,
        lifetime == "detached",
    )
    try:
        reply = worker.call_node(message)
    except RemoteError as e:
        raise ValueError(str(e)) from None
    reason = reply.groups[0]["infeasible_reason"]
    if reason:
        logger.warning("The placement group %s cannot be scheduled: %s", group_id.hex(), reason)
    return PlacementGroup(group_id, bundles)


def remove_placement_group(placement_group: PlacementGroup) -> None:
    """Free the group's resources; tasks and actors running in it are stopped.

    Asynchronous, as in Ray: it returns once the request is on its way. Requests
    from this process to the node are handled in order, so what this process
    asks next already sees the group removed."""
    if not isinstance(placement_group, PlacementGroup):
        raise TypeError(f"expected a PlacementGroup, got {type(placement_group)}")
    api._auto_init()._send_to_node(RemovePlacementGroup(placement_group.id.binary()))


def get_current_placement_group() -> PlacementGroup | None:
    """The placement group the running task or actor was scheduled in; None in the
    driver and outside any group."""
    context = api._auto_init().current_task
    placement = context.placement if context is not None else None
    if not placement:
        return None
    group_id, bundles, _ = placement
    return PlacementGroup(ids.PlacementGroupID(group_id), bundles)


def get_placement_group(placement_group_name: str) -> PlacementGroup:
    """The live placement group of this name in the current namespace."""
    worker = api._auto_init()
    namespace = worker.current_namespace()
    message = GetPlacementGroups(b"", placement_group_name, namespace)
    found = worker.call_node(message).groups
    if not found:
        raise ValueError(
            f"Failed to look up placement group with name: {placement_group_name} "
            f"(namespace {namespace!r})."
        )
    return _from_record(found[0])


def placement_group_table(placement_group: PlacementGroup | None = None) -> dict:
    """One group's record (Ray's keys), or every group's, keyed by id."""
    worker = api._auto_init()
    wanted = placement_group.id.binary() if placement_group is not None else b""
    records = [_keyed(r) for r in worker.call_node(GetPlacementGroups(wanted, "", "")).groups]
    if placement_group is not None:
        return records[0] if records else {}
    return {record["placement_group_id"]: record for record in records}


def _keyed(record: dict) -> dict:
    """Ray's table keys bundles and their nodes by bundle index."""
    return {
        **record,
        "bundles": dict(enumerate(record["bundles"])),
        "bundles_to_node_id": dict(enumerate(record["bundles_to_node_id"])),
    }


def _from_record(record: dict) -> PlacementGroup:
    bundles = record["bundles"]
    group_id = ids.PlacementGroupID(bytes.fromhex(record["placement_group_id"]))
    return PlacementGroup(group_id, bundles)
