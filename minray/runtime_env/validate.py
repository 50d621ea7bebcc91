"""What a ``runtime_env`` may hold, checked where it is given (pure).

minray supports ``env_vars``, ``working_dir``, ``py_modules`` and ``excludes``.
Ray's per-environment installers (``pip``, ``conda``, ``uv``, containers) are
refused with what to do instead: install what the code needs on every node.
"""

from __future__ import annotations

import types
from typing import Any

SUPPORTED = ("env_vars", "working_dir", "py_modules", "excludes")
#: Ray's keys minray refuses, and what to do instead
REFUSED = {
    "pip": "install the packages on every node (for example in the setup_commands of "
    "`minray up`, or in the nodes' image) and leave 'pip' out",
    "conda": "create the environment on every node, start minray from it, and leave 'conda' out",
    "uv": "install the packages on every node and leave 'uv' out",
    "container": "start the nodes in the image you want and leave 'container' out",
    "image_uri": "start the nodes in the image you want and leave 'image_uri' out",
}


def check(value: Any) -> None:
    """Raise TypeError or ValueError, saying what is wrong, unless ``value`` is a valid
    runtime_env (None is: no runtime_env)."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise TypeError(f"runtime_env must be a dict, got {type(value).__name__}")
    for key in value:
        if key in REFUSED:
            raise ValueError(f"runtime_env[{key!r}] is not supported by minray: {REFUSED[key]}.")
        if key not in SUPPORTED:
            raise ValueError(f"minray's runtime_env supports {', '.join(SUPPORTED)}; got {key!r}.")
    env = value.get("env_vars") or {}
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise TypeError("runtime_env['env_vars'] must be a dict of str to str.")
    working_dir = value.get("working_dir")
    if working_dir is not None and not isinstance(working_dir, str):
        raise TypeError(
            "runtime_env['working_dir'] must be the path of a local directory (a str), "
            f"got {type(working_dir).__name__}"
        )
    modules = value.get("py_modules")
    if modules is not None and (
        not isinstance(modules, list)
        or not all(isinstance(m, (str, types.ModuleType)) for m in modules)
    ):
        raise TypeError(
            "runtime_env['py_modules'] must be a list of local package directories or .py "
            "files (paths), or of imported modules"
        )
    excludes = value.get("excludes")
    if excludes is not None and (
        not isinstance(excludes, list) or not all(isinstance(e, str) for e in excludes)
    ):
        raise TypeError(
            "runtime_env['excludes'] must be a list of patterns (str), such as "
            "['*.csv', 'data/', '.git']"
        )
