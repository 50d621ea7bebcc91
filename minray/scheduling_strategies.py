"""Ray's scheduling strategies (``ray.util.scheduling_strategies``).

Pass one as ``scheduling_strategy=`` to ``.options()`` or ``@remote``:

* ``"DEFAULT"`` and ``"SPREAD"`` (strings);
* :class:`PlacementGroupSchedulingStrategy`: run in a bundle of a placement group;
* :class:`NodeAffinitySchedulingStrategy`: run on one node (``soft``: elsewhere if it
  cannot; else a node that is gone fails the task with TaskUnschedulableError).
  Tasks and actors alike.
"""

from __future__ import annotations

from typing import Any


class PlacementGroupSchedulingStrategy:
    """Run in ``placement_group``: in bundle ``placement_group_bundle_index``, or in any
    of its bundles (-1)."""

    def __init__(
        self,
        placement_group: Any,
        placement_group_bundle_index: int = -1,
        placement_group_capture_child_tasks: bool | None = None,
    ):
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index
        self.placement_group_capture_child_tasks = placement_group_capture_child_tasks

    def __repr__(self) -> str:
        return (
            f"PlacementGroupSchedulingStrategy({self.placement_group!r}, "
            f"placement_group_bundle_index={self.placement_group_bundle_index})"
        )


class NodeAffinitySchedulingStrategy:
    """Run on the node ``node_id`` (hex, as ``get_runtime_context().get_node_id()``)."""

    def __init__(
        self,
        node_id: str,
        soft: bool,
        _spill_on_unavailable: bool = False,
        _fail_on_unavailable: bool = False,
    ):
        self.node_id = node_id
        self.soft = soft
        self._spill_on_unavailable = _spill_on_unavailable
        self._fail_on_unavailable = _fail_on_unavailable

    def __repr__(self) -> str:
        return f"NodeAffinitySchedulingStrategy(node_id={self.node_id!r}, soft={self.soft})"
