"""runtime_env (pure parts): checking, excludes, deterministic packages, the head's store."""

from __future__ import annotations

import io
import os
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minray.head.packages import PackageStore
from minray.runtime_env import RuntimeEnv
from minray.runtime_env.packaging import PackageTooLarge, excluded, package, package_name
from minray.runtime_env.validate import check


def _tree(root, files: dict[str, bytes]) -> str:
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return str(root)


def _names(data: bytes) -> list[str]:
    return sorted(zipfile.ZipFile(io.BytesIO(data)).namelist())


@pytest.mark.parametrize(
    "value, error",
    [
        ({"pip": ["x"]}, "install the packages on every node"),
        ({"conda": "env"}, "create the environment on every node"),
        ({"container": {}}, "not supported"),
        ({"colour": 1}, "supports env_vars, working_dir, py_modules, excludes"),
        ({"working_dir": 3}, "path of a local directory"),
        ({"py_modules": "pkg"}, "list of local package directories"),
        ({"excludes": "*.csv"}, "list of patterns"),
        ({"env_vars": {"A": 1}}, "dict of str to str"),
        ("env", "must be a dict"),
    ],
)
def test_what_is_not_supported_says_what_to_do(value, error):
    with pytest.raises((TypeError, ValueError), match=error):
        check(value)
    check({"env_vars": {"A": "1"}, "working_dir": ".", "py_modules": [os], "excludes": []})


def test_runtime_env_is_rays_dict():
    env = RuntimeEnv(working_dir="/w", env_vars={"A": "1"})
    assert env == {"working_dir": "/w", "env_vars": {"A": "1"}}
    with pytest.raises(ValueError, match="pip"):
        RuntimeEnv(pip=["numpy"])


@pytest.mark.parametrize(
    "path, is_dir, patterns, out",
    [
        ("data/x.csv", False, ["*.csv"], True),
        ("x.py", False, ["*.csv"], False),
        ("a/data", True, ["data/"], True),
        ("a/data", False, ["data/"], False),  # a file named data, not a directory
        ("sub/x.txt", False, ["sub/x.txt"], True),
        ("other/sub/x.txt", False, ["sub/x.txt"], False),  # anchored at the top
        ("sub/x.txt", False, ["/sub/*.txt"], True),
        (".git", True, [".git"], True),
        ("x", False, ["", "  "], False),
    ],
)
def test_excludes_are_gitignore_like(path, is_dir, patterns, out):
    assert excluded(path, is_dir, patterns) is out


def test_a_package_is_the_same_bytes_for_the_same_files_and_leaves_out_excludes(tmp_path):
    files = {"a.py": b"A = 1\n", "sub/b.txt": b"b", "data/big.csv": b"1,2\n", ".git/HEAD": b"x"}
    one = _tree(tmp_path / "one", files)
    two = _tree(tmp_path / "two", files)
    uri1, data1 = package(one, ["*.csv", ".git"], 10**6, "working_dir")
    os.utime(os.path.join(two, "a.py"), (1, 1))  # other times: the same package
    uri2, data2 = package(two, ["*.csv", ".git"], 10**6, "working_dir")
    assert (uri1, data1) == (uri2, data2)
    assert uri1.startswith("gcs://_ray_pkg_") and package_name(uri1).endswith(".zip")
    assert _names(data1) == ["a.py", "sub/b.txt"]
    _tree(tmp_path / "two", {"a.py": b"A = 2\n"})
    assert package(two, ["*.csv", ".git"], 10**6, "working_dir")[0] != uri1  # content counts


def test_a_py_module_keeps_its_package_name_and_a_file_is_its_own_module(tmp_path):
    pkg = _tree(tmp_path / "mypkg", {"__init__.py": b"", "core.py": b""})
    _, data = package(pkg, [], 10**6, "py_modules entry", under="mypkg")
    assert _names(data) == ["mypkg/__init__.py", "mypkg/core.py"]
    single = tmp_path / "helper.py"
    single.write_text("X = 1\n")
    assert _names(package(str(single), [], 10**6, "py_modules entry")[1]) == ["helper.py"]


def test_too_large_and_missing_are_clear(tmp_path):
    big = _tree(tmp_path / "big", {"weights.bin": b"0" * 5000, "a.py": b"x"})
    with pytest.raises(PackageTooLarge, match=r"5,001 bytes of files, over the limit of 4,096"):
        package(big, [], 4096, "working_dir")
    with pytest.raises(ValueError, match="is not a directory"):
        package(str(tmp_path / "nope"), [], 4096, "working_dir")


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z]{1,6}(/[a-z]{1,6}){0,2}\.(py|txt|csv)", fullmatch=True),
                       st.binary(max_size=64), min_size=1, max_size=8))  # fmt: skip
def test_every_file_not_excluded_is_in_the_package_with_its_bytes(tmp_path_factory, files):
    root = tmp_path_factory.mktemp("tree")
    tops = {rel.split("/")[0] for rel in files}
    files = {rel: data for rel, data in files.items() if rel not in tops}  # (no file/dir clash)
    if not files:
        return
    _tree(root, files)
    _, data = package(str(root), ["*.csv"], 10**6, "working_dir")
    archive = zipfile.ZipFile(io.BytesIO(data))
    kept = {rel: data for rel, data in files.items() if not rel.endswith(".csv")}
    assert sorted(archive.namelist()) == sorted(kept)
    assert all(archive.read(rel) == body for rel, body in kept.items())


def test_the_heads_store_keeps_a_package_once_checks_names_and_is_bounded(tmp_path):
    store = PackageStore(str(tmp_path / "packages"), budget=100)
    name = "_ray_pkg_" + "ab" * 16 + ".zip"
    assert not store.has(name) and store.get(name) is None
    store.put(name, b"z" * 60)
    store.put(name, b"other")  # kept once: the same name is the same content
    assert store.get(name) == b"z" * 60 and store.has(name)
    with pytest.raises(ValueError, match="over its budget"):
        store.put("_ray_pkg_" + "cd" * 16 + ".zip", b"y" * 60)
    for bad in ("../../etc/passwd", "_ray_pkg_zz.zip", "x.zip", ""):
        with pytest.raises(ValueError, match="not a runtime_env package name"):
            store.get(bad)
