"""The head's store of runtime_env packages (the zipped ``working_dir``/``py_modules``).

One file per package under the head's session directory, named by its content
hash (``_ray_pkg_<hash>.zip``, Ray's names), so a package is uploaded once however
many drivers use it. The store is bounded; names are checked (no path can escape
its directory); the bytes are never opened here.
"""

from __future__ import annotations

import os
import re

NAME = re.compile(r"^_ray_pkg_[0-9a-f]{16,64}\.zip$")


class PackageStore:
    def __init__(self, folder: str, budget: int) -> None:
        self.folder = folder
        self.budget = budget
        self.used = 0

    def _path(self, name: str) -> str:
        if not isinstance(name, str) or not NAME.match(name):
            raise ValueError(
                f"{name!r} is not a runtime_env package name (_ray_pkg_<hex hash>.zip)"
            )
        return os.path.join(self.folder, name)

    def has(self, name: str) -> bool:
        return os.path.exists(self._path(name))

    def put(self, name: str, data: bytes) -> None:
        """Keep a package (once: a name already kept is left as it is)."""
        path = self._path(name)
        if os.path.exists(path):
            return
        if self.used + len(data) > self.budget:
            raise ValueError(
                f"the head's runtime_env package store would hold {self.used + len(data):,} "
                f"bytes, over its budget of {self.budget:,} (MINRAY_RUNTIME_ENV_STORE_BYTES): "
                "make working_dir smaller with runtime_env['excludes'], or restart the cluster"
            )
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        partial = f"{path}.{os.getpid()}.part"
        with open(partial, "wb") as f:
            f.write(data)
        os.replace(partial, path)  # readers never see half a file
        self.used += len(data)

    def get(self, name: str) -> bytes | None:
        try:
            with open(self._path(name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None
