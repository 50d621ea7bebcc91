"""Ray's ``ray.util.multiprocessing``: the stdlib ``multiprocessing.Pool`` API on minray actors.

``from minray.util.multiprocessing import Pool`` and use it like
``multiprocessing.Pool``: each "process" of the pool is a minray actor, so the
pool spreads over the cluster's CPUs and can use any machine of a cluster.
"""

from multiprocessing import JoinableQueue, TimeoutError

from .pool import AsyncResult, IMapIterator, IMapUnorderedIterator, Pool

__all__ = [
    "AsyncResult",
    "IMapIterator",
    "IMapUnorderedIterator",
    "JoinableQueue",
    "Pool",
    "TimeoutError",
]
