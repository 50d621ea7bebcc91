"""A worker's side of runtime_env: unpack packages once per node, enter them for a task.

A package is fetched from the head (through the node) and unpacked into the
node's session directory, ``runtime_resources/<package>/``, by the first worker
of the node that needs it; the others wait on a file lock and find it there.
For a task, ``py_modules`` go on ``sys.path`` and the ``working_dir`` becomes the
current directory (and goes first on ``sys.path``); both are undone when the task
ends, and the modules it imported from them are forgotten, so the next task on the
worker imports its own. An actor keeps them for its whole life.
"""

from __future__ import annotations

import fcntl
import io
import os
import shutil
import sys
import zipfile
from typing import TYPE_CHECKING

from ..exceptions import RuntimeEnvSetupError
from ..protocol.connection import RemoteError
from ..protocol.messages import GetPackage
from . import resolver
from .packaging import package_name

if TYPE_CHECKING:
    from ..runtime.core_worker import CoreWorker


class WorkerEnvs:
    def __init__(self, worker: CoreWorker):
        self.worker = worker
        self.root = os.path.join(worker.session_dir, "runtime_resources")

    def enter(self, runtime_env: dict) -> tuple:
        """Put the task's packages in place; returns what :meth:`leave` restores. What
        the task submits inherits them."""
        saved = (os.getcwd(), list(sys.path), resolver.inherited, [])
        resolver.inherited = runtime_env
        try:
            for uri in runtime_env.get("py_modules") or ():
                saved[3].append(self.directory(uri))
                sys.path.insert(0, saved[3][-1])
            working_dir = runtime_env.get("working_dir")
            if working_dir:
                saved[3].append(self.directory(working_dir))
                sys.path.insert(0, saved[3][-1])
                os.chdir(saved[3][-1])
        except BaseException:
            self.leave(saved)
            raise
        return saved

    def leave(self, saved: tuple) -> None:
        """Undo :meth:`enter`, and forget the modules imported from the packages (the next
        task, with other packages or none, imports its own)."""
        cwd, path, resolver.inherited, folders = saved
        sys.path[:] = path
        try:
            os.chdir(cwd)
        except OSError:
            pass  # (the task removed it)
        if folders:
            inside = tuple(os.path.join(f, "") for f in folders)
            for name, module in list(sys.modules.items()):
                if (getattr(module, "__file__", None) or "").startswith(inside):
                    del sys.modules[name]

    def directory(self, uri: str) -> str:
        """The folder where the package ``uri`` is unpacked on this node (once)."""
        name = package_name(uri)
        target = os.path.join(self.root, name.removesuffix(".zip"))
        if os.path.isdir(target):
            return target
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        with open(target + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one worker of the node unpacks it
            if os.path.isdir(target):
                return target
            data = self._fetch(name)
            partial = f"{target}.{os.getpid()}.part"
            shutil.rmtree(partial, ignore_errors=True)
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    archive.extractall(partial)  # (zipfile drops absolute and ".." parts)
            except (zipfile.BadZipFile, OSError) as e:
                shutil.rmtree(partial, ignore_errors=True)
                raise RuntimeEnvSetupError(
                    f"could not unpack runtime_env package {name}: {e}"
                ) from None
            os.rename(partial, target)
        return target

    def _fetch(self, name: str) -> bytes:
        try:
            reply = self.worker.call_node(GetPackage(name, False))
        except RemoteError as e:
            raise RuntimeEnvSetupError(f"could not fetch runtime_env package {name}: {e}") from None
        if not reply.found:
            raise RuntimeEnvSetupError(
                f"the cluster has no runtime_env package {name} (was the head restarted "
                "since it was uploaded?)"
            )
        return reply.data
