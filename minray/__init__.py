"""minray: Ray Core's API as a small pure-Python asyncio runtime.

``import minray as ray`` and use ``ray.init()``, ``@ray.remote``, ``ray.get``,
``ray.put`` and ``ray.wait`` as in Ray.
"""

from . import actor, exceptions
from . import cloudpickle as cloudpickle  # ray.cloudpickle; not in __all__, as in Ray
from .actor import method
from .api import (
    available_resources,
    cancel,
    cluster_resources,
    get,
    get_actor,
    get_gpu_ids,
    init,
    is_initialized,
    kill,
    nodes,
    put,
    remote,
    shutdown,
    wait,
)
from .object_ref import ObjectRef
from .object_ref_generator import DynamicObjectRefGenerator, ObjectRefGenerator
from .runtime_context import get_runtime_context

__version__ = "0.1.0"

from . import util  # noqa: E402 - last: the libraries use the names above


def timeline(filename: str | None = None, address: str | None = None) -> list[dict] | None:
    """Which worker ran what, when, as Chrome trace events (``ray.timeline``): written to
    ``filename`` (JSON) if given, else returned. See minray/task_timeline.py."""
    from .task_timeline import timeline as trace  # (the state API: only when asked)

    return trace(filename, address)


__all__ = [
    "DynamicObjectRefGenerator",
    "ObjectRef",
    "ObjectRefGenerator",
    "actor",
    "available_resources",
    "cancel",
    "cluster_resources",
    "exceptions",
    "get",
    "get_actor",
    "get_gpu_ids",
    "get_runtime_context",
    "init",
    "is_initialized",
    "kill",
    "method",
    "nodes",
    "put",
    "remote",
    "shutdown",
    "timeline",
    "util",
    "wait",
]
