"""minray: Ray Core's API as a small pure-Python asyncio runtime.

``import minray as ray`` and use ``ray.init()``, ``@ray.remote``, ``ray.get``,
``ray.put`` and ``ray.wait`` as in Ray.

The public names load on first use (PEP 562): ``import minray`` costs next to
nothing, and the node process, which imports ``minray.node.*``, never loads the
driver's API (that kept ``init()`` from its first result for ~0.3 s).
"""

import importlib as _importlib
import typing as _typing

__version__ = "0.1.0"

#: each public name, and the module it lives in
_HOME = {
    "available_resources": "api",
    "cancel": "api",
    "cluster_resources": "api",
    "get": "api",
    "get_actor": "api",
    "get_gpu_ids": "api",
    "init": "api",
    "is_initialized": "api",
    "kill": "api",
    "nodes": "api",
    "put": "api",
    "remote": "api",
    "shutdown": "api",
    "wait": "api",
    "method": "actor",
    "ObjectRef": "object_ref",
    "DynamicObjectRefGenerator": "object_ref_generator",
    "ObjectRefGenerator": "object_ref_generator",
    "get_runtime_context": "runtime_context",
}


def __getattr__(name: str) -> _typing.Any:
    """Load a public name, or a submodule (``minray.util``, ``minray.exceptions``), on
    first use; later uses find it in the module's namespace."""
    home = _HOME.get(name)
    if home is not None:
        value = getattr(_importlib.import_module(f".{home}", __name__), name)
    elif name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    else:
        try:
            value = _importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def timeline(filename: str | None = None, address: str | None = None) -> list[dict] | None:
    """Which worker ran what, when, as Chrome trace events (``ray.timeline``): written to
    ``filename`` (JSON) if given, else returned. See minray/task_timeline.py."""
    from .task_timeline import timeline as trace  # (the state API: only when asked)

    return trace(filename, address)


if _typing.TYPE_CHECKING:  # what the names above are, for type checkers and editors
    from . import actor, exceptions, util
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
