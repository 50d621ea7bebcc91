"""Run unmodified Ray Core programs on minray: ``import ray`` gives minray.

From a shell, run a Ray program as you would run it with ``python``::

    python -m minray.compat script.py [args ...]
    python -m minray.compat -m package.module [args ...]

From a notebook or an interpreter, switch with one line before the first
``import ray``::

    import minray.compat; minray.compat.install()

Either way, ``import ray`` and every ``ray.*`` module a program imports
resolve to minray's own module objects: ``ray`` is ``minray``,
``ray.util.queue`` is ``minray.util.queue``, and
``ray.exceptions.RayTaskError is minray.exceptions.RayTaskError``. A ``ray.X``
that minray does not have raises :class:`ModuleNotFoundError` saying so and
listing what minray has at that level.

How it works:

* A ``sys.meta_path`` finder, placed first, answers every ``ray`` and
  ``ray.*`` import with the matching ``minray`` module (imported if needed)
  and stores it under the ``ray`` name in ``sys.modules``. Nothing is copied
  or wrapped, and minray's modules keep their own ``__name__`` and
  ``__spec__``, so pickles and remote tracebacks name ``minray``.
* Python processes started afterwards (minray's node, and so its workers, and
  any Python child the program starts) get a one-file ``ray`` package on
  ``PYTHONPATH`` that installs the same finder, so a helper module that a
  worker imports by name and that says ``import ray`` works there too.

If the real Ray is installed, the mapping still wins: the finder comes before
the path-based finders, and :func:`install` sets aside ``ray`` modules already
imported (:func:`uninstall` puts them back). Run the program with plain
``python`` to use the real Ray.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import io
import os
import pkgutil
import runpy
import sys
import threading
import types

ALIAS = "ray"
TARGET = "minray"
#: Ray's libraries, which are not Ray Core: named in the error for ``import ray.data`` and such.
RAY_LIBRARIES = frozenset({"air", "data", "rllib", "serve", "train", "tune", "workflow"})
#: The directory put on PYTHONPATH: it holds a ``ray`` package that installs the mapping.
SHIM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_shim")

USAGE = """\
usage: python -m minray.compat script.py [args ...]
       python -m minray.compat -m module [args ...]

Run a Ray Core program unmodified on minray: `import ray` and every `ray.*`
module it imports resolve to minray's (`ray.util.queue` is
`minray.util.queue`, and so on). The program runs as with `python script.py`:
sys.argv is [script, *args], __name__ is "__main__", the script's directory
comes first on sys.path, and its exit code is this command's exit code.

In a notebook: `import minray.compat; minray.compat.install()` before `import ray`.
"""

_lock = threading.RLock()


class _State:
    def __init__(self) -> None:
        self.installed = False
        #: ``ray`` modules that were in sys.modules before install(): put back by uninstall().
        self.set_aside: dict[str, types.ModuleType] = {}
        #: PYTHONPATH before install() (None: it was not set).
        self.pythonpath: str | None = None


_state = _State()


def _is_alias_name(name: str) -> bool:
    return name == ALIAS or name.startswith(ALIAS + ".")


def _target_name(name: str) -> str:
    return TARGET + name[len(ALIAS) :]


def _is_minray_module(module: object) -> bool:
    """Whether a sys.modules value is one of minray's modules (or the ``ray`` shim)."""
    if getattr(module, "__minray_compat_shim__", False):
        return True
    name = getattr(module, "__name__", None)
    return isinstance(name, str) and (name == TARGET or name.startswith(TARGET + "."))


def provided_modules(name: str = ALIAS) -> list[str]:
    """The ``ray.*`` modules minray has directly under ``name`` (``ray`` or ``ray.X``)."""
    try:
        package = importlib.import_module(_target_name(name))
    except ImportError:
        return []
    path = getattr(package, "__path__", None)
    if path is None:
        return []
    names = [info.name for info in pkgutil.iter_modules(path)]
    return sorted(f"{name}.{child}" for child in names if not child.startswith("_"))


def _missing_message(name: str) -> str:
    parent = name.rpartition(".")[0]
    provided = provided_modules(parent)
    listing = ", ".join(provided) if provided else "no modules"
    message = (
        f"minray does not provide `{name}`: minray.compat maps `ray` to minray, which has no "
        f"module `{_target_name(name)}`. What minray provides under `{parent}`: {listing}."
    )
    if name.split(".")[1] in RAY_LIBRARIES:
        message += (
            " minray is Ray Core only: Ray's libraries (Data, Train, Tune, Serve, RLlib, ...)"
            " are not part of it."
        )
    return message


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``ray`` and ``ray.*`` as the matching ``minray`` modules, themselves."""

    def find_spec(self, fullname, path=None, target=None):
        if not _is_alias_name(fullname):
            return None
        target_name = _target_name(fullname)
        existing = sys.modules.get(target_name)
        if existing is not None:
            is_package = hasattr(existing, "__path__")
        else:
            try:
                found = importlib.util.find_spec(target_name)
            except ModuleNotFoundError as error:
                if error.name != target_name:
                    raise
                found = None
            if found is None:
                raise ModuleNotFoundError(_missing_message(fullname), name=fullname)
            is_package = found.submodule_search_locations is not None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=is_package)

    def create_module(self, spec):
        module = importlib.import_module(_target_name(spec.name))
        # The import system is about to set module.__spec__ to this alias spec;
        # keep minray's own spec so that exec_module can put it back.
        spec.loader_state = getattr(module, "__spec__", None)
        return module

    def exec_module(self, module):
        spec = module.__spec__
        if spec is not None and spec.loader is self:
            module.__spec__ = spec.loader_state

    def __repr__(self) -> str:
        return "<minray.compat finder: ray -> minray>"


_FINDER = _AliasFinder()


def _set_aside_real_ray() -> None:
    for name in [name for name in sys.modules if _is_alias_name(name)]:
        module = sys.modules[name]
        if not _is_minray_module(module):
            _state.set_aside[name] = sys.modules.pop(name)


def _put_shim_on_pythonpath() -> None:
    _state.pythonpath = os.environ.get("PYTHONPATH")
    entries = [e for e in (_state.pythonpath or "").split(os.pathsep) if e]
    if SHIM_DIR not in entries:
        os.environ["PYTHONPATH"] = os.pathsep.join([SHIM_DIR, *entries])


def _take_shim_off_pythonpath() -> None:
    current = os.environ.get("PYTHONPATH")
    if current is None:
        return
    entries = current.split(os.pathsep)
    if SHIM_DIR in entries:
        entries.remove(SHIM_DIR)
    remaining = os.pathsep.join(entries)
    if remaining or _state.pythonpath is not None:
        os.environ["PYTHONPATH"] = remaining
    else:
        del os.environ["PYTHONPATH"]


def is_installed() -> bool:
    """Whether ``import ray`` currently gives minray in this process."""
    return _state.installed


def install() -> None:
    """Map ``ray`` and every ``ray.*`` module to minray in this process (idempotent).

    Call it before ``import ray``. A real Ray already imported is set aside
    (names that were bound to it keep it); :func:`uninstall` restores it.
    Python processes started after this call, minray's own included, get the
    same mapping through ``PYTHONPATH``.
    """
    with _lock:
        if _state.installed:
            return
        _set_aside_real_ray()
        sys.meta_path.insert(0, _FINDER)
        _put_shim_on_pythonpath()
        _state.installed = True


def uninstall() -> None:
    """Undo :func:`install` (idempotent): drop the mapping, restore what it set aside."""
    with _lock:
        if not _state.installed:
            return
        while _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)
        for name in [name for name in sys.modules if _is_alias_name(name)]:
            if _is_minray_module(sys.modules[name]):
                del sys.modules[name]
        sys.modules.update(_state.set_aside)
        _state.set_aside.clear()
        _take_shim_off_pythonpath()
        _state.installed = False


def _trim_traceback(tb: types.TracebackType | None) -> types.TracebackType | None:
    """Drop the frames of this runner (and runpy's), so the traceback starts in the user's code."""
    own = {__file__, runpy.__file__, "<frozen runpy>"}
    while tb is not None and tb.tb_frame.f_code.co_filename in own:
        tb = tb.tb_next
    return tb


def _run_script(path: str) -> None:
    """Run a file as ``python path`` does: as a fresh ``__main__`` module, ``__file__`` absolute.

    (``runpy.run_path`` would also make ``sys.argv[0]`` absolute, and put the
    previous ``__main__`` back when the script returns, before atexit handlers
    run.)
    """
    with io.open_code(path) as file:
        source = file.read()
    code = compile(source, path, "exec", dont_inherit=True)
    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__cached__ = None
    module.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
    module.__builtins__ = builtins
    sys.modules["__main__"] = module
    exec(code, module.__dict__)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m minray.compat``; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stderr.write(USAGE)
        return 2
    if args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    as_module = args[0] == "-m"
    if as_module:
        if len(args) < 2:
            sys.stderr.write("python -m minray.compat: -m needs a module name\n\n" + USAGE)
            return 2
        module_name, rest = args[1], args[2:]
    else:
        script, rest = args[0], args[1:]
        if not os.path.isfile(script):
            reason = "Is a directory" if os.path.isdir(script) else "No such file or directory"
            sys.stderr.write(
                f"python -m minray.compat: can't open file {os.path.abspath(script)!r}: {reason}\n"
            )
            return 2

    install()
    try:
        if as_module:
            # As `python -m module`: the current directory stays first on sys.path.
            sys.argv[:] = [module_name, *rest]
            runpy.run_module(module_name, run_name="__main__", alter_sys=True)
        else:
            # As `python script.py`: the script's own directory replaces the
            # current directory that `python -m minray.compat` put first.
            sys.argv[:] = [script, *rest]
            directory = os.path.dirname(os.path.realpath(script))
            if sys.path:
                sys.path[0] = directory
            else:
                sys.path.insert(0, directory)
            _run_script(os.path.abspath(script))
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as error:  # reported as Python reports an uncaught exception
        trimmed = _trim_traceback(error.__traceback__)
        sys.excepthook(type(error), error.with_traceback(trimmed), trimmed)
        return 1
    return 0


__all__ = ["USAGE", "install", "is_installed", "main", "provided_modules", "uninstall"]
