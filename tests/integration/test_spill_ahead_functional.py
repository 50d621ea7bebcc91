"""A store more than object_spilling_threshold full spills in the background, before a
put finds it full: files appear, use falls back to the threshold, every get returns the
right bytes; objects being read stay; threshold 1.0 spills only when full; bad values
are refused at init."""

from __future__ import annotations

import time
import zlib

import pytest

import minray

from .cluster_helpers import wait_until
from .test_spilling_functional import MiB, array, node, spill_files

STORE = 64 * MiB


def at_most_threshold(threshold: float = 0.8) -> bool:
    return node()["ObjectStoreUsedBytes"] <= threshold * STORE


@pytest.mark.timeout(90)
@pytest.mark.parametrize("cluster", [{"object_store_memory": STORE}], indirect=True)
def test_a_store_past_its_threshold_spills_in_the_background_and_reads_back_intact(cluster):
    held = [minray.put(array(i)) for i in (100, 101)]
    pinned = [minray.get(ref) for ref in held]  # read now, and the oldest: they must stay
    refs = [minray.put(array(i)) for i in range(5)]  # 7 x 8 MiB = 56 MiB: past 80%, not full
    assert wait_until(lambda: node()["ObjectStoreSpilledAheadBytesTotal"] >= 8 * MiB, 10)
    assert wait_until(at_most_threshold, 10)
    info = node()
    assert info["ObjectStoreSpilledBytesTotal"] == info["ObjectStoreSpilledAheadBytesTotal"]
    files = spill_files()
    assert files and not {ref.hex() for ref in held} & set(files)  # read objects stayed
    assert [zlib.crc32(v) for v in pinned] == [zlib.crc32(array(i)) for i in (100, 101)]
    for ref, i in zip(refs, range(5)):
        assert zlib.crc32(minray.get(ref)) == zlib.crc32(array(i))
    assert node()["ObjectStoreRestoredBytesTotal"] >= 8 * MiB  # what spilled came back


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "cluster",
    [{"object_store_memory": STORE, "_system_config": {"object_spilling_threshold": 1.0}}],
    indirect=True,
)
def test_threshold_one_spills_only_when_the_store_is_full(cluster):
    refs = [minray.put(array(i)) for i in range(7)]  # 56 MiB: fits
    deadline = time.monotonic() + 1.5  # three housekeeping ticks
    while time.monotonic() < deadline:
        assert node()["ObjectStoreSpilledBytesTotal"] == 0
        time.sleep(0.25)
    assert spill_files() == []
    refs.append(minray.put(array(7)))  # 8 x (8 MiB + a header): one must go, at this put
    info = node()
    assert info["ObjectStoreSpilledBytesTotal"] >= 8 * MiB
    assert info["ObjectStoreSpilledAheadBytesTotal"] == 0
    for ref, i in zip(refs, range(8)):
        assert zlib.crc32(minray.get(ref)) == zlib.crc32(array(i))


@pytest.mark.parametrize(
    "setting, value",
    [
        ("object_spilling_threshold", 1.5),
        ("object_spilling_threshold", -0.1),
        ("object_spilling_threshold", "high"),
        ("min_spilling_size", -1),
        ("min_spilling_size", 1.5),
    ],
)
def test_bad_spilling_settings_are_refused_at_init_naming_the_setting(setting, value):
    with pytest.raises(ValueError, match=setting):
        minray.init(num_cpus=1, _system_config={setting: value})
    assert not minray.is_initialized()
