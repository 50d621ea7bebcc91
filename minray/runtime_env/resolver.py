"""A caller's side of runtime_env: local paths become packages kept by the cluster.

``resolve`` zips the ``working_dir`` and each ``py_modules`` entry (packaging.py),
uploads each package to the head once per cluster (asking first whether it has
it), and returns what the task carries to its worker: ``{"working_dir": uri,
"py_modules": [uri, ...]}``. Packages are made once per process for a path; a
file changed after that is not seen until the process starts again (as in Ray).
"""

from __future__ import annotations

import os
import threading
import types
from typing import TYPE_CHECKING, Any

from ..config import CONFIG
from ..protocol.connection import RemoteError
from ..protocol.messages import GetPackage, UploadPackage
from .packaging import is_package_uri, package, package_name

if TYPE_CHECKING:
    from ..runtime.core_worker import CoreWorker

_lock = threading.Lock()
_packaged: dict[tuple, tuple[str, bytes | None]] = {}  #: (path, excludes, under) -> package
_uploaded: set[tuple[str, str]] = set()  #: (cluster session, package name)
#: the runtime_env packages this process's work runs with, which the tasks and actors it
#: submits inherit: init's (a driver), or the running task's or actor's (a worker)
inherited: dict | None = None


def for_task(worker: CoreWorker, runtime_env: dict | None) -> dict | None:
    """The packages of a task or actor submitted with ``runtime_env`` (its options'):
    its own over those it inherits."""
    if not runtime_env or ("working_dir" not in runtime_env and "py_modules" not in runtime_env):
        return inherited
    return merged(inherited, resolve(worker, runtime_env))


def resolve(worker: CoreWorker, runtime_env: dict | None) -> dict | None:
    """What workers need of ``runtime_env`` (its packages' uris), or None if nothing."""
    if not runtime_env:
        return None
    excludes = list(runtime_env.get("excludes") or [])
    out: dict[str, Any] = {}
    working_dir = runtime_env.get("working_dir")
    if working_dir is not None:
        out["working_dir"] = _uri(worker, working_dir, excludes, "", "runtime_env['working_dir']")
    modules = runtime_env.get("py_modules")
    if modules:
        out["py_modules"] = [_module_uri(worker, m, excludes) for m in modules]
    return out or None


def merged(job: dict | None, task: dict | None) -> dict | None:
    """A task's own runtime_env packages over its job's (key by key, as in Ray)."""
    if not job:
        return task
    if not task:
        return job
    return {**job, **task}


def _module_uri(worker: CoreWorker, module: Any, excludes: list[str]) -> str:
    if isinstance(module, types.ModuleType):
        where = getattr(module, "__file__", None)
        if where is None:
            raise ValueError(f"py_modules: module {module.__name__} has no file to send")
        module = os.path.dirname(where) if where.endswith("__init__.py") else where
    path = os.path.abspath(os.path.expanduser(module)) if not is_package_uri(module) else module
    under = os.path.basename(path.rstrip(os.sep)) if os.path.isdir(path) else ""
    return _uri(worker, path, excludes, under, "runtime_env['py_modules'] entry")


def _uri(worker: CoreWorker, path: str, excludes: list[str], under: str, what: str) -> str:
    if is_package_uri(path):  # uploaded already (a job's, by the job API)
        _check_known(worker, package_name(path), what)
        return path
    if "://" in path:
        raise ValueError(
            f"{what} {path!r}: minray takes local paths (the cluster gets a copy) or the "
            "gcs:// uri of a package uploaded to it; other remote uris are not supported"
        )
    key = (os.path.realpath(os.path.expanduser(path)), tuple(excludes), under)
    with _lock:
        made = _packaged.get(key)
    if made is None:
        made = package(key[0], excludes, CONFIG.runtime_env_max_bytes, what, under)
        with _lock:
            _packaged[key] = made
    uri, data = made
    name = package_name(uri)
    if (worker.session_dir, name) not in _uploaded:
        try:
            if not worker.call_node(GetPackage(name, True)).found:
                worker.call_node(UploadPackage(name, data))
        except RemoteError as e:
            raise ValueError(f"{what} {path!r} could not be uploaded: {e}") from None
        with _lock:
            _uploaded.add((worker.session_dir, name))
    return uri


def _check_known(worker: CoreWorker, name: str, what: str) -> None:
    if (worker.session_dir, name) in _uploaded:
        return
    if not worker.call_node(GetPackage(name, True)).found:
        raise ValueError(f"{what}: the cluster has no package {name} (upload it first)")
    with _lock:
        _uploaded.add((worker.session_dir, name))
