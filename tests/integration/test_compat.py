"""minray.compat: ``ray`` and every ``ray.*`` module are minray's, and scripts run as with python.

The in-process tests change sys.modules, sys.meta_path and PYTHONPATH; the
``compat`` fixture puts all three back as they were, since other tests share
this interpreter.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import types

import pytest

import minray
import minray.exceptions
from minray import compat


def _ray_modules() -> dict[str, types.ModuleType]:
    return {
        name: module
        for name, module in sys.modules.items()
        if name == "ray" or name.startswith("ray.")
    }


@pytest.fixture
def compat_state():
    """Undo every change the test makes to sys.modules, sys.meta_path and PYTHONPATH."""
    ray_modules = _ray_modules()
    meta_path = list(sys.meta_path)
    pythonpath = os.environ.get("PYTHONPATH")
    try:
        yield
    finally:
        compat.uninstall()
        for name in _ray_modules():
            del sys.modules[name]
        sys.modules.update(ray_modules)
        sys.meta_path[:] = meta_path
        if pythonpath is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = pythonpath


@pytest.fixture
def installed(compat_state):
    compat.install()
    yield


# --- the import hook, in this process ---------------------------------------------------------


def test_import_ray_is_minray(installed):
    ray = importlib.import_module("ray")
    assert ray is minray
    assert sys.modules["ray"] is minray
    assert ray.remote is minray.remote and ray.ObjectRef is minray.ObjectRef
    # minray keeps its own identity: pickles and tracebacks say minray.
    assert minray.__name__ == "minray" and minray.__spec__.name == "minray"


@pytest.mark.parametrize(
    "name",
    ["ray.exceptions", "ray.actor", "ray.util", "ray.runtime_context", "ray.util.queue"],
)
def test_submodules_are_minrays_module_objects(installed, name):
    module = importlib.import_module(name)
    assert module is importlib.import_module("minray" + name[3:])
    assert sys.modules[name] is module
    assert module.__spec__.name == "minray" + name[3:], "the alias must not rename minray's module"


def test_names_imported_from_ray_are_minrays(installed):
    namespace: dict = {}
    exec(
        textwrap.dedent(
            """
            import ray
            import ray.exceptions
            import ray.util.queue
            from ray import ObjectRef
            from ray.exceptions import GetTimeoutError, RayTaskError
            """
        ),
        namespace,
    )
    assert namespace["ray"] is minray
    assert namespace["ObjectRef"] is minray.ObjectRef
    assert namespace["GetTimeoutError"] is minray.exceptions.GetTimeoutError
    assert namespace["RayTaskError"] is minray.exceptions.RayTaskError
    assert namespace["ray"].exceptions.RayTaskError is minray.exceptions.RayTaskError
    assert namespace["ray"].util.queue is sys.modules["minray.util.queue"]


@pytest.mark.parametrize(
    "statement, module, attribute",
    [
        ("from ray.util.multiprocessing import Pool", "minray.util.multiprocessing", "Pool"),
        ("from ray.util.joblib import register_ray", "minray.util.joblib", "register_ray"),
        ("from ray.util.queue import Queue", "minray.util.queue", "Queue"),
        ("from ray.util import ActorPool", "minray.util", "ActorPool"),
    ],
)
def test_library_names_are_minrays(installed, statement, module, attribute):
    target = importlib.import_module(module)
    if not hasattr(target, attribute):
        pytest.skip(f"{module}.{attribute} is not written yet")
    namespace: dict = {}
    exec(statement, namespace)
    assert namespace[attribute] is getattr(target, attribute)


def test_ray_util_actor_pool_attribute(installed):
    if not hasattr(minray.util, "ActorPool"):
        pytest.skip("minray.util.ActorPool is not written yet")
    ray = importlib.import_module("ray")
    assert ray.util.ActorPool is minray.util.ActorPool


@pytest.mark.parametrize(
    "name, parent, listed",
    [
        ("ray.data", "ray", "ray.exceptions"),
        ("ray.util.no_such_helper", "ray.util", "ray.util.queue"),
    ],
)
def test_a_module_minray_lacks_says_so(installed, name, parent, listed):
    with pytest.raises(ModuleNotFoundError) as raised:
        importlib.import_module(name)
    message = str(raised.value)
    assert raised.value.name == name
    assert f"minray does not provide `{name}`" in message
    assert f"What minray provides under `{parent}`" in message and listed in message
    assert name not in sys.modules


def test_ray_libraries_are_named_as_not_part_of_core(installed):
    with pytest.raises(ModuleNotFoundError, match="Ray Core only"):
        importlib.import_module("ray.tune")


def test_provided_modules_lists_public_modules_only():
    provided = compat.provided_modules("ray")
    assert "ray.exceptions" in provided and "ray.util" in provided
    assert not [name for name in provided if name.split(".")[-1].startswith("_")]
    assert compat.provided_modules("ray.exceptions") == []  # a module, not a package


def test_install_and_uninstall_are_idempotent(compat_state):
    before_meta_path = list(sys.meta_path)
    before_pythonpath = os.environ.get("PYTHONPATH")
    compat.install()
    compat.install()
    assert compat.is_installed()
    finders = [f for f in sys.meta_path if type(f).__name__ == "_AliasFinder"]
    assert len(finders) == 1 and sys.meta_path[0] is finders[0]
    assert os.environ["PYTHONPATH"].split(os.pathsep).count(compat.SHIM_DIR) == 1
    assert importlib.import_module("ray.util") is minray.util

    compat.uninstall()
    compat.uninstall()
    assert not compat.is_installed()
    assert sys.meta_path == before_meta_path
    assert os.environ.get("PYTHONPATH") == before_pythonpath
    assert not _ray_modules()
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("ray")

    compat.install()  # and again after an uninstall
    assert importlib.import_module("ray") is minray


def test_uninstall_keeps_a_pythonpath_the_user_had(compat_state, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/some/dir")
    compat.install()
    assert os.environ["PYTHONPATH"] == os.pathsep.join([compat.SHIM_DIR, "/some/dir"])
    compat.uninstall()
    assert os.environ["PYTHONPATH"] == "/some/dir"


def test_an_already_imported_real_ray_is_set_aside_and_restored(compat_state):
    """As if the real Ray were installed and imported: install() still maps ray to minray."""
    real_ray = types.ModuleType("ray")
    real_util = types.ModuleType("ray.util")
    sys.modules["ray"] = real_ray
    sys.modules["ray.util"] = real_util
    compat.install()
    assert importlib.import_module("ray") is minray
    assert importlib.import_module("ray.util") is minray.util
    compat.uninstall()
    assert sys.modules["ray"] is real_ray and sys.modules["ray.util"] is real_util


def test_the_shim_on_pythonpath_gives_minray(compat_state):
    """What a worker started from a compat program does on `import ray`."""
    spec = importlib.util.spec_from_file_location(
        "ray",
        os.path.join(compat.SHIM_DIR, "ray", "__init__.py"),
        submodule_search_locations=[os.path.join(compat.SHIM_DIR, "ray")],
    )
    shim = importlib.util.module_from_spec(spec)
    sys.modules["ray"] = shim
    spec.loader.exec_module(shim)
    assert sys.modules["ray"] is minray
    assert compat.is_installed()
    assert importlib.import_module("ray.exceptions") is minray.exceptions


# --- python -m minray.compat -------------------------------------------------------------------


def run_compat(*args, cwd, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "minray.compat", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_no_arguments_prints_usage_and_exits_2(tmp_path):
    result = run_compat(cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: python -m minray.compat script.py" in result.stderr


def test_help_exits_0(tmp_path):
    result = run_compat("--help", cwd=tmp_path)
    assert result.returncode == 0 and "usage:" in result.stdout


def test_a_missing_script_is_a_clear_error(tmp_path):
    result = run_compat("no_such_script.py", cwd=tmp_path)
    assert result.returncode == 2
    assert "can't open file" in result.stderr and "no_such_script.py" in result.stderr
    assert "No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_script_runs_as_with_python(tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    write(scripts / "sibling.py", "VALUE = 'found next to the script'\n")
    write(
        scripts / "show.py",
        """
        import json
        import sys

        import ray
        import sibling

        print(json.dumps({
            "argv": sys.argv,
            "name": __name__,
            "path0": sys.path[0],
            "file": __file__,
            "ray": ray.__name__,
            "sibling": sibling.VALUE,
        }))
        sys.exit(int(sys.argv[2]))
        """,
    )
    result = run_compat("scripts/show.py", "--flag", "3", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    shown = json.loads(result.stdout)
    assert shown == {
        "argv": ["scripts/show.py", "--flag", "3"],
        "name": "__main__",
        "path0": str(scripts),
        "file": str(scripts / "show.py"),
        "ray": "minray",
        "sibling": "found next to the script",
    }


def test_an_uncaught_exception_points_at_the_users_file(tmp_path):
    write(
        tmp_path / "fails.py",
        """
        import ray


        def inner():
            raise LookupError("from the user's code")


        inner()
        """,
    )
    result = run_compat("fails.py", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1].startswith(f'  File "{tmp_path / "fails.py"}", line 9, in <module>')
    assert "minray/compat" not in result.stderr and "runpy" not in result.stderr
    assert lines[-1] == "LookupError: from the user's code"


def test_a_missing_ray_module_in_a_script(tmp_path):
    write(tmp_path / "uses_data.py", "import ray.data\n")
    result = run_compat("uses_data.py", cwd=tmp_path)
    assert result.returncode == 1
    assert "ModuleNotFoundError: minray does not provide `ray.data`" in result.stderr


def test_dash_m_runs_a_module(tmp_path):
    package = tmp_path / "tool"
    package.mkdir()
    write(package / "__init__.py", "")
    write(package / "__main__.py", "import sys, ray\nprint(__name__, ray.__name__, sys.argv[1:])\n")
    result = run_compat("-m", "tool", "a", "b", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "__main__ minray ['a', 'b']"


RAY_PROGRAM = """
import sys
import time

import ray
import ray.util
from ray.exceptions import GetTimeoutError, RayTaskError

from shapes import Square  # a module of the program, imported by the workers too


@ray.remote
def area(side):
    return Square(side).area()


@ray.remote
def imports_inside():
    import ray.util.queue  # an import in a task body runs in the worker

    return ray.util.queue.__name__


@ray.remote
def fail():
    raise ValueError("a task failed")


@ray.remote
def slow():
    time.sleep(5)


@ray.remote
class Counter:
    def __init__(self):
        self.n = 0

    def incr(self, by=1):
        self.n += by
        return self.n


if __name__ == "__main__":
    ray.init(num_cpus=2)
    print("areas:", ray.get([area.remote(i) for i in range(4)]))
    print("chain:", ray.get(area.remote(area.remote(2))))
    counter = Counter.remote()
    print("counter:", ray.get([counter.incr.remote() for _ in range(3)]))
    try:
        ray.get(fail.remote())
    except RayTaskError as error:
        print("RayTaskError and ValueError:", isinstance(error, ValueError))
    try:
        ray.get(slow.remote(), timeout=0.2)
    except GetTimeoutError:
        print("GetTimeoutError")
    print("import in a task:", ray.get(imports_inside.remote()))
    shapes_in_worker = ray.get(ray.remote(lambda: Square.__module__).remote())
    print("module in a worker:", shapes_in_worker)
    ray.shutdown()
    sys.exit(int(sys.argv[1]))
"""

SHAPES = """
import ray  # a helper module that imports ray, imported by name in the workers


class Square:
    def __init__(self, side):
        self.side = side

    def area(self):
        assert ray.is_initialized()
        return self.side * self.side
"""


def test_a_ray_program_with_tasks_actors_and_errors(tmp_path):
    write(tmp_path / "program.py", RAY_PROGRAM)
    write(tmp_path / "shapes.py", SHAPES)
    result = run_compat("program.py", "5", cwd=tmp_path)
    assert result.returncode == 5, result.stderr
    assert result.stdout.splitlines() == [
        "areas: [0, 1, 4, 9]",
        "chain: 16",
        "counter: [1, 2, 3]",
        "RayTaskError and ValueError: True",
        "GetTimeoutError",
        "import in a task: minray.util.queue",
        "module in a worker: shapes",
    ]
    assert "Traceback" not in result.stderr
