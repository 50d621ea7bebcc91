"""``minray.cloudpickle`` (Ray's ``ray.cloudpickle``): the cloudpickle that minray uses.

Ray vendors cloudpickle as ``ray.cloudpickle``; minray uses the installed
``cloudpickle`` package and offers it under the same name, so
``ray.cloudpickle.dumps(f)`` and ``from ray import cloudpickle`` work in Ray
programs (also under ``python -m minray.compat``). Objects pickled with it load
with ``pickle.loads`` wherever cloudpickle is installed, as with Ray's.
"""

from __future__ import annotations

from pickle import PicklingError

import cloudpickle as _cloudpickle
from cloudpickle import (
    DEFAULT_PROTOCOL,
    CloudPickler,
    Pickler,
    dump,
    dumps,
    load,
    loads,
    register_pickle_by_value,
    unregister_pickle_by_value,
)
from cloudpickle import cloudpickle as cloudpickle  # Ray has this submodule name too

__version__: str = _cloudpickle.__version__

__all__ = [
    "DEFAULT_PROTOCOL",
    "CloudPickler",
    "Pickler",
    "PicklingError",
    "dump",
    "dumps",
    "load",
    "loads",
    "register_pickle_by_value",
    "unregister_pickle_by_value",
]
