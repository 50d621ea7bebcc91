"""``ray.cloudpickle``: minray offers cloudpickle under Ray's name, plain and under compat."""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
import textwrap
import types

import pytest

import minray
from minray import compat


@pytest.fixture
def installed():
    """compat.install() for one test; sys.modules, sys.meta_path and PYTHONPATH put back."""
    before = {n: m for n, m in sys.modules.items() if n == "ray" or n.startswith("ray.")}
    meta_path = list(sys.meta_path)
    pythonpath = os.environ.get("PYTHONPATH")
    compat.install()
    try:
        yield
    finally:
        compat.uninstall()
        for name in [n for n in sys.modules if n == "ray" or n.startswith("ray.")]:
            del sys.modules[name]
        sys.modules.update(before)
        sys.meta_path[:] = meta_path
        if pythonpath is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = pythonpath


def test_from_minray_import_cloudpickle_pickles_a_lambda():
    from minray import cloudpickle

    assert isinstance(minray.cloudpickle, types.ModuleType)
    offset = 3
    data = cloudpickle.dumps(lambda x: x + offset)
    assert pickle.loads(data)(1) == 4
    assert cloudpickle.loads(data)(2) == 5
    assert issubclass(cloudpickle.CloudPickler, pickle.Pickler)
    assert cloudpickle.PicklingError is pickle.PicklingError


def test_ray_cloudpickle_under_compat(installed):
    ray = importlib.import_module("ray")
    assert ray.cloudpickle is minray.cloudpickle
    assert importlib.import_module("ray.cloudpickle") is minray.cloudpickle
    namespace: dict = {}
    exec("from ray import cloudpickle\nfrom ray.cloudpickle import dumps", namespace)
    assert namespace["cloudpickle"] is minray.cloudpickle
    assert namespace["dumps"] is minray.cloudpickle.dumps


SCRIPT = """
import pickle

import ray
from ray import cloudpickle

ray.init(num_cpus=1)


@ray.remote
def apply(blob, x):
    return pickle.loads(blob)(x)


blob = ray.cloudpickle.dumps(lambda x: x * 10)
print("result", ray.get(apply.remote(blob, 4)), cloudpickle is ray.cloudpickle)
ray.shutdown()
"""


def test_a_compat_script_uses_ray_cloudpickle(tmp_path):
    (tmp_path / "uses_cloudpickle.py").write_text(textwrap.dedent(SCRIPT))
    result = subprocess.run(
        [sys.executable, "-m", "minray.compat", "uses_cloudpickle.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "result 40 True" in result.stdout
