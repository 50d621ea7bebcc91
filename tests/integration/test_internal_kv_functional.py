"""``ray.experimental.internal_kv`` on a local cluster: shared by the driver and its tasks."""

from __future__ import annotations

import pytest

import minray
from minray.experimental import internal_kv as kv


def test_the_driver_and_its_tasks_share_the_kv(cluster):
    assert kv._internal_kv_initialized()
    assert kv._internal_kv_put("course", "minray") is False
    assert kv._internal_kv_put(b"course", b"other", overwrite=False) is True
    assert kv._internal_kv_get("course") == b"minray"

    @minray.remote
    def in_a_task():
        from minray.experimental import internal_kv

        internal_kv._internal_kv_put("from_task", b"\x00\x01", namespace="n")
        return internal_kv._internal_kv_get("course")

    assert minray.get(in_a_task.remote()) == b"minray"
    assert kv._internal_kv_get("from_task") is None  # another namespace
    assert kv._internal_kv_get("from_task", namespace="n") == b"\x00\x01"
    kv._internal_kv_put("course/1", "a")
    kv._internal_kv_put("course/2", "b")
    assert kv._internal_kv_list("course/") == [b"course/1", b"course/2"]
    assert kv._internal_kv_exists("course/1")
    assert kv._internal_kv_del("course/", del_by_prefix=True) == 2
    assert kv._internal_kv_del("course") == 1
    assert kv._internal_kv_list("") == []


def test_bad_keys_are_refused_with_the_type(cluster):
    with pytest.raises(TypeError, match="key must be str or bytes, got int"):
        kv._internal_kv_get(5)
