"""Ray's ``ray.util``: libraries built only on minray's public API.

* ``ActorPool`` — a fixed set of actors working through a stream of items;
* ``queue.Queue`` — a queue shared by tasks and actors (an async actor);
* ``multiprocessing.Pool`` — a drop-in for the stdlib pool, backed by actors;
* ``joblib.register_ray()`` — a joblib backend ("ray", "minray") for scikit-learn;
* ``iter`` — Ray 1.x parallel iterators (sharded, lazy);
* ``progress`` — a tqdm progress bar over many refs;
* ``list_named_actors()``.
"""

from __future__ import annotations

from minray.actor import list_named_actors

from . import iter, progress, queue  # noqa: A004 - Ray's module names
from .actor_pool import ActorPool

__all__ = ["ActorPool", "iter", "list_named_actors", "progress", "queue"]
