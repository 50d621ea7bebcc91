"""minray.object_store.spill_files: complete files or none, a full disk said plainly."""

from __future__ import annotations

import errno
import os

import pytest

from minray.exceptions import OutOfDiskError, RayError
from minray.object_store import shm, spill_files


@pytest.fixture
def segment():
    name = f"/minray_test{os.getpid()}{os.urandom(3).hex()}"
    mem = shm.create(name, 3 * 2**20)
    mem[:] = os.urandom(len(mem))
    data = bytes(mem)
    mem.close()
    yield name, data
    shm.unlink(name)


def test_a_segment_goes_to_a_file_and_comes_back_byte_for_byte(segment, tmp_path):
    name, data = segment
    path = str(tmp_path / "obj")
    spill_files.write(name, len(data), path)
    assert os.listdir(tmp_path) == ["obj"] and os.path.getsize(path) == len(data)
    restored = name + "r"
    try:
        spill_files.read_into(path, len(data), restored, new=True)
        mem = shm.open_readonly(restored)
        assert bytes(mem) == data
        mem.close()
    finally:
        shm.unlink(restored)


def test_a_full_disk_is_out_of_disk_error_and_leaves_no_file(segment, tmp_path, monkeypatch):
    name, data = segment

    def no_space(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "sendfile", no_space)
    monkeypatch.setattr(os, "write", no_space)
    with pytest.raises(OutOfDiskError, match="disk is full") as info:
        spill_files.write(name, len(data), str(tmp_path / "obj"))
    assert isinstance(info.value, RayError) and str(tmp_path) in str(info.value)
    assert os.listdir(tmp_path) == []  # no half-written file


def test_a_file_of_the_wrong_size_is_not_read_back(segment, tmp_path):
    name, data = segment
    path = tmp_path / "obj"
    path.write_bytes(data[:1000])
    with pytest.raises(OSError, match="is not"):
        spill_files.read_into(str(path), len(data), name + "x", new=True)
    with pytest.raises(FileNotFoundError):
        shm.open_readonly(name + "x")  # nothing was created


def test_a_directory_that_cannot_be_made_is_a_value_error_naming_it(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="a-file/spill.*object_spilling_config"):
        spill_files.check_directory(str(blocker / "spill"))


def test_each_node_spills_into_a_directory_of_its_own(tmp_path):
    one = spill_files.node_directory(str(tmp_path), b"\x01" * 28)
    two = spill_files.node_directory(str(tmp_path), b"\x02" * 28)
    assert one != two and os.path.isdir(one) and os.path.isdir(two)
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(one), os.path.basename(two)])
