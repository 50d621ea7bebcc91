"""Ray's ``ray.util.scheduling_strategies`` names (defined in ``minray.scheduling_strategies``)."""

from minray.scheduling_strategies import (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)

__all__ = ["NodeAffinitySchedulingStrategy", "PlacementGroupSchedulingStrategy"]
