"""minray: Ray Core's API as a small pure-Python asyncio runtime.

``import minray as ray`` and use ``ray.init()``, ``@ray.remote``, ``ray.get``,
``ray.put`` and ``ray.wait`` as in Ray.
"""

from . import exceptions
from .api import (
    available_resources,
    cluster_resources,
    get,
    get_gpu_ids,
    init,
    is_initialized,
    nodes,
    put,
    remote,
    shutdown,
    wait,
)
from .object_ref import ObjectRef
from .runtime_context import get_runtime_context

__version__ = "0.1.0"

__all__ = [
    "ObjectRef",
    "available_resources",
    "cluster_resources",
    "exceptions",
    "get",
    "get_gpu_ids",
    "get_runtime_context",
    "init",
    "is_initialized",
    "nodes",
    "put",
    "remote",
    "shutdown",
    "wait",
]
