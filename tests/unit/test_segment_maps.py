"""A process's readable mappings: kept after their last use (numpy loaded) so the next
read finds its pages mapped, pinned only while used, never reused for another file of
the same name, and dropped when the node unlinks the segment."""

from __future__ import annotations

import gc
import os
import resource

import numpy as np
import pytest

from minray.object_store import shm
from minray.protocol.messages import PinSegments, UnpinSegments
from minray.runtime.segment_maps import SegmentMaps


@pytest.fixture
def segment():
    name = f"{shm.PREFIX}test{os.getpid()}"
    mem = shm.create(name, 4 << 20)
    mem[:4] = b"abcd"
    mem.close()
    yield name
    shm.unlink(name)


def pins(sent: list) -> list:
    return [type(msg).__name__ for msg, _ in sent if type(msg) in (PinSegments, UnpinSegments)]


def read_and_drop(maps: SegmentMaps, name: str) -> None:
    """Read the segment, let the view go."""
    view = maps.readable(name)
    assert isinstance(view, np.ndarray)
    del view
    gc.collect()


def faults_reading(view: np.ndarray) -> int:
    """The page faults of reading the whole view."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    int(view.sum())
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_a_read_mapping_is_pinned_while_used_and_kept_after(segment) -> None:
    sent: list = []
    maps = SegmentMaps(lambda msg, node: sent.append((msg, node)))
    view = maps.readable(segment)
    assert bytes(view[:4]) == b"abcd"
    assert maps.readable(segment) is view  # (one view while it is used)
    assert faults_reading(view) >= 16  # (4 MiB: at least one fault per 64 pages)
    del view
    gc.collect()
    assert pins(sent) == ["PinSegments", "UnpinSegments"]
    again = maps.readable(segment)
    assert faults_reading(again) < 4  # the same mapping: its pages are mapped already
    assert pins(sent) == ["PinSegments", "UnpinSegments", "PinSegments"]
    del again
    maps.forget_all()


def test_a_kept_mapping_is_not_used_for_another_file_of_that_name(segment) -> None:
    maps = SegmentMaps(lambda msg, node: None)
    read_and_drop(maps, segment)
    shm.unlink(segment)
    mem = shm.create(segment, 8192)  # (a lost object rebuilt under the same name)
    mem[:4] = b"wxyz"
    mem.close()
    view = maps.readable(segment)
    assert bytes(view[:4]) == b"wxyz" and len(view) == 8192  # (the file now there)
    del view
    maps.forget_all()


def test_an_unlinked_segment_s_kept_mapping_is_dropped(segment) -> None:
    maps = SegmentMaps(lambda msg, node: None)
    read_and_drop(maps, segment)
    maps.forget([segment])
    mem = shm.open_writable(segment)
    mem[:4] = b"efgh"  # (no kept mapping: the next read maps the file anew)
    mem.close()
    view = maps.readable(segment)
    assert bytes(view[:4]) == b"efgh"
    del view
    maps.forget_all()


def test_with_max_kept_zero_each_read_maps_anew(segment) -> None:
    maps = SegmentMaps(lambda msg, node: None, max_kept=0)
    read_and_drop(maps, segment)
    maps.readable(segment)  # (what was released is let go here, none kept)
    assert not maps._kept
    maps.forget_all()


def test_a_view_that_outlives_its_session_leaves_nothing_kept(segment) -> None:
    maps = SegmentMaps(lambda msg, node: None)
    view = maps.readable(segment)
    maps.forget_all()  # (shutdown, with an array still in use)
    del view
    gc.collect()
    assert not maps._released and not maps._kept
