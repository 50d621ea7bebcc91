"""runtime_env's working_dir, py_modules and excludes: zipped by the caller, uploaded once
to the head, unpacked once per node, the task's current directory and import path;
pip and conda refused; a size limit with a clear error."""

from __future__ import annotations

import dataclasses
import os

import pytest

import minray
from minray.cluster_utils import Cluster
from minray.config import CONFIG
from minray.runtime_env import resolver


def _project(root) -> str:
    """A small project: a module, a data file, and a folder to leave out."""
    root.mkdir()
    (root / "helper_mod.py").write_text("def value():\n    return 42\n")
    (root / "data.txt").write_text("hello from the working_dir\n")
    (root / "big").mkdir()
    (root / "big" / "blob.bin").write_bytes(b"x" * 1000)
    return str(root)


def _package(root) -> str:
    pkg = root / "mypkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("NAME = 'mypkg from py_modules'\n")
    return str(pkg)


@minray.remote
def _look() -> dict:
    import helper_mod

    with open("data.txt") as f:
        data = f.read().strip()
    return {
        "cwd": os.getcwd(),
        "value": helper_mod.value(),
        "data": data,
        "big": os.path.exists(os.path.join("big", "blob.bin")),
    }


@minray.remote
def _cwd() -> str:
    return os.getcwd()


@minray.remote
def _nested() -> dict:
    return minray.get(_look.remote())  # a child task inherits the working_dir


@minray.remote
def _import_pkg() -> str:
    import mypkg

    return mypkg.NAME


@minray.remote
class _Reader:
    def read(self) -> str:
        with open("data.txt") as f:
            return f.read().strip()


@pytest.fixture
def fresh():
    yield
    minray.shutdown()


def test_a_jobs_working_dir_is_each_tasks_directory_and_import_path(tmp_path, fresh):
    project = _project(tmp_path / "project")
    minray.init(num_cpus=2, runtime_env={"working_dir": project, "excludes": ["big/"]})
    seen = minray.get([_look.remote() for _ in range(4)], timeout=60)
    for row in seen:
        assert row["value"] == 42 and row["data"] == "hello from the working_dir"
        assert row["big"] is False  # excluded
        assert os.path.basename(row["cwd"]).startswith("_ray_pkg_")
    assert len({row["cwd"] for row in seen}) == 1  # unpacked once on the node
    assert minray.get(_nested.remote(), timeout=60)["value"] == 42
    assert minray.get(_Reader.remote().read.remote(), timeout=60) == "hello from the working_dir"
    # the node unpacked it once; the head keeps one package
    resources = os.path.dirname(seen[0]["cwd"])
    unpacked = [n for n in os.listdir(resources) if n.startswith("_ray_pkg_") and "." not in n]
    assert unpacked == [os.path.basename(seen[0]["cwd"])]
    packages = os.listdir(os.path.join(resources, "packages"))
    assert packages == [os.path.basename(seen[0]["cwd"]) + ".zip"]


def test_a_tasks_own_working_dir_and_py_modules_and_the_directory_comes_back(tmp_path, fresh):
    minray.init(num_cpus=1)
    project = _project(tmp_path / "project")
    modules = _package(tmp_path / "modules")
    before = minray.get(_cwd.remote(), timeout=60)
    row = minray.get(_look.options(runtime_env={"working_dir": project}).remote(), timeout=60)
    assert row["value"] == 42 and row["big"] is True
    assert minray.get(_cwd.remote(), timeout=60) == before  # the same worker, back home
    with_modules = _import_pkg.options(runtime_env={"py_modules": [modules]})
    assert minray.get(with_modules.remote(), timeout=60) == "mypkg from py_modules"
    with pytest.raises(minray.exceptions.RayTaskError, match="No module named 'mypkg'"):
        minray.get(_import_pkg.remote(), timeout=60)


def test_bad_runtime_envs_are_refused_where_they_are_given(tmp_path, fresh, monkeypatch):
    with pytest.raises(ValueError, match=r"\['pip'\] is not supported by minray: install"):
        minray.init(num_cpus=1, runtime_env={"pip": ["requests"]})
    assert not minray.is_initialized()
    minray.init(num_cpus=1)
    with pytest.raises(ValueError, match=r"\['conda'\] is not supported"):
        _cwd.options(runtime_env={"conda": "env"})
    with pytest.raises(ValueError, match="is not a directory"):
        _cwd.options(runtime_env={"working_dir": str(tmp_path / "missing")}).remote()
    with pytest.raises(ValueError, match="other remote uris are not supported"):
        _cwd.options(runtime_env={"working_dir": "s3://bucket/x.zip"}).remote()
    project = _project(tmp_path / "project")
    monkeypatch.setattr(resolver, "CONFIG", dataclasses.replace(CONFIG, runtime_env_max_bytes=500))
    with pytest.raises(ValueError, match=r"over the limit .* big/blob\.bin .*excludes"):
        _cwd.options(runtime_env={"working_dir": project}).remote()
    ok = _look.options(runtime_env={"working_dir": project, "excludes": ["*.bin"]}).remote()
    assert minray.get(ok, timeout=60)["value"] == 42  # under the limit without it


def test_a_working_dir_reaches_a_task_on_another_node(tmp_path):
    project = _project(tmp_path / "project")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        node = cluster.add_node(num_cpus=1, resources={"second": 1})
        cluster.wait_for_nodes()
        minray.init(address=cluster.address, runtime_env={"working_dir": project})
        value, cwd = minray.get(_look_there.remote(), timeout=60)
        assert value == 42 and cwd.startswith(node.session_dir)  # unpacked on that node
    finally:
        minray.shutdown()
        cluster.shutdown()


@minray.remote(resources={"second": 1})
def _look_there():
    import helper_mod

    return helper_mod.value(), os.getcwd()
