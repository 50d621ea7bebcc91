"""What every exercise's check shares: which answer to check, and one cluster per exercise.

A check file (``check_*.py``) never imports the student's file by name. It asks
for the ``answer`` fixture, which loads one file of the exercise's folder:

* ``starter.py`` by default: the file the student edits;
* ``solution.py`` with ``--answer=solution`` (``make course-check EX=N SOLUTION=1``);
* any other Python file with ``--answer=path/to/file.py``.

The answer (and the check module itself) is loaded as a module whose functions
and classes cloudpickle sends by value, so workers can run them without
importing the file (as when a student runs ``python starter.py``, where the
module is ``__main__``).

``ray_cluster`` starts one local cluster for all the checks of a file and,
when they are done, shuts it down and checks that nothing was left behind:
no process started by the cluster, no session directory, no shared-memory
segment.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

import psutil
import pytest

import minray
from minray import cloudpickle

#: logical CPUs of the checks' cluster: the checks' tasks mostly sleep, so this is
#: more than a 2-core machine has and still measures parallelism
NUM_CPUS = 4


def pytest_addoption(parser):
    parser.addoption(
        "--answer",
        default="starter",
        help="the file to check: starter (default), solution, or a path to a .py file",
    )


def answer_path(choice: str, exercise_dir: Path) -> Path:
    """The file ``--answer`` names, for the exercise in ``exercise_dir``."""
    if choice in ("starter", "solution"):
        return exercise_dir / f"{choice}.py"
    path = Path(choice).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    return path


def load_answer(path: Path, name: str):
    if not path.is_file():
        raise pytest.UsageError(f"--answer: there is no file {path}")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # (cloudpickle's register_pickle_by_value looks it up here)
    cloudpickle.register_pickle_by_value(module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def answer(request):
    """The student's module (or the solution), loaded from the check's folder."""
    exercise_dir = Path(request.module.__file__).parent
    path = answer_path(request.config.getoption("--answer"), exercise_dir)
    name = f"course_{exercise_dir.name}_answer"
    cloudpickle.register_pickle_by_value(request.module)  # the check's own helpers, too
    try:
        yield load_answer(path, name)
    finally:
        cloudpickle.unregister_pickle_by_value(request.module)
        module = sys.modules.pop(name, None)
        if module is not None:
            cloudpickle.unregister_pickle_by_value(module)


@pytest.fixture(scope="module")
def ray_cluster():
    """A local cluster for one exercise's checks; left clean when they are done."""
    if minray.is_initialized():  # a check that failed half-way must not leak its cluster
        minray.shutdown()
    context = minray.init(num_cpus=NUM_CPUS)
    session_dir = context["session_dir"]
    yield context
    started = psutil.Process().children(recursive=True)
    minray.shutdown()
    assert_nothing_left(started, session_dir)


def assert_nothing_left(processes: list[psutil.Process], session_dir: str) -> None:
    deadline = time.monotonic() + 5
    alive = processes
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"processes outlived the cluster: {alive}"
    assert not os.path.exists(session_dir), f"session directory left behind: {session_dir}"
    tag = "minray_" + os.path.basename(session_dir)[-6:]
    if os.path.isdir("/dev/shm"):
        left = [name for name in os.listdir("/dev/shm") if name.startswith(tag)]
        assert not left, f"shared-memory segments left behind: {left}"
