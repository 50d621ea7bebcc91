"""Ray's ``ray.util``: libraries built only on minray's public API.

* ``ActorPool`` — a fixed set of actors working through a stream of items;
* ``queue.Queue`` — a queue shared by tasks and actors (an async actor);
* ``multiprocessing.Pool`` — a drop-in for the stdlib pool, backed by actors;
* ``joblib.register_ray()`` — a joblib backend ("ray", "minray") for scikit-learn;
* ``iter`` — Ray 1.x parallel iterators (sharded, lazy);
* ``progress`` — a tqdm progress bar over many refs;
* ``pdb`` (and ``rpdb``) — ``set_trace()`` that pauses a task for ``minray debug``;
* ``list_named_actors()``;
* ``placement_group()`` and friends, ``scheduling_strategies``.
"""

from __future__ import annotations

from minray.actor import list_named_actors

from . import iter, pdb, progress, queue, rpdb, scheduling_strategies  # noqa: A004 - Ray's names
from .actor_pool import ActorPool

# the submodule first, so that the name then means the function, as in Ray
from .placement_group import (
    get_current_placement_group,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)

__all__ = [
    "ActorPool",
    "get_current_placement_group",
    "get_placement_group",
    "iter",
    "list_named_actors",
    "pdb",
    "placement_group",
    "placement_group_table",
    "progress",
    "queue",
    "remove_placement_group",
    "rpdb",
    "scheduling_strategies",
]
