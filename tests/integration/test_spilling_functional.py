"""A full object store spills to disk: puts and task results go on, get() brings the
values back (zero-copy, read-only, byte for byte), and the files go with the objects.
ObjectStoreFullError comes only when nothing can spill, and says what holds the store."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import threading
import zlib

import numpy as np
import pytest

import minray
from minray.exceptions import ObjectStoreFullError, OutOfDiskError, RaySystemError
from minray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from .cluster_helpers import live_node_info, two_node_cluster, wait_until

MiB = 2**20
SMALL_STORE = {"object_store_memory": 64 * MiB}


def array(seed: int, size: int = 8 * MiB) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)


def node() -> dict:
    return minray.nodes()[0]


def spill_files() -> list[str]:
    return os.listdir(node()["ObjectSpillingDirectory"])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cluster", [SMALL_STORE], indirect=True)
def test_four_times_the_store_in_puts_comes_back_intact_and_the_files_go_with_the_refs(cluster):
    refs, sums = [], []
    for i in range(32):  # 32 x 8 MiB = 4 x the store
        value = array(i)
        sums.append(zlib.crc32(value))
        refs.append(minray.put(value))
    info = node()
    assert info["ObjectStoreUsedBytes"] <= 64 * MiB
    assert info["ObjectStoreSpilledObjects"] >= 24
    assert info["ObjectStoreSpilledBytes"] >= 24 * 8 * MiB
    directory = info["ObjectSpillingDirectory"]
    assert directory.startswith(cluster)  # under the session directory by default
    for ref, expected in zip(reversed(refs), reversed(sums)):  # newest first, then the rest
        value = minray.get(ref)
        assert zlib.crc32(value) == expected
        assert not value.flags.writeable  # still a zero-copy view of shared memory
        del value
    assert node()["ObjectStoreRestoredBytesTotal"] >= 24 * 8 * MiB
    assert len(spill_files()) >= 24
    del refs, ref
    gc.collect()
    assert wait_until(lambda: not os.listdir(directory), timeout=10)
    assert wait_until(lambda: node()["ObjectStoreSpilledBytes"] == 0, timeout=5)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cluster", [SMALL_STORE], indirect=True)
def test_tasks_return_big_values_into_a_full_store_and_others_read_them(cluster):
    @minray.remote
    def make(seed):
        return array(seed)

    @minray.remote
    def checksum(refs):  # a borrower on the same node reads a spilled object
        return zlib.crc32(minray.get(refs[0]))

    refs = [make.remote(i) for i in range(24)]  # 3 x the store
    assert minray.get(checksum.remote([refs[0]])) == zlib.crc32(array(0))
    assert node()["ObjectStoreSpilledObjects"] > 0
    for i, ref in enumerate(refs):
        assert zlib.crc32(minray.get(ref)) == zlib.crc32(array(i))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cluster", [{"object_store_memory": 32 * MiB}], indirect=True)
def test_threads_and_tasks_filling_the_store_at_once_all_read_back_intact(cluster):
    def sized(i: int) -> np.ndarray:
        return array(i, (2 + i % 5) * MiB)

    @minray.remote
    def make(i):
        return sized(i)

    @minray.remote
    def checksums(refs):
        return [zlib.crc32(minray.get(ref)) for ref in refs]

    failures: list[str] = []

    def fill_and_read(t: int) -> None:
        try:
            made = []
            for k in range(10):
                made.append((t * 100 + k, minray.put(sized(t * 100 + k))))
                made.append((t * 100 + 50 + k, make.remote(t * 100 + 50 + k)))
            expected = [zlib.crc32(sized(i)) for i, _ in made]
            assert minray.get(checksums.remote([ref for _, ref in made[:6]])) == expected[:6]
            assert [zlib.crc32(minray.get(ref)) for _, ref in made] == expected
        except Exception as e:  # reported below, in the test's thread
            failures.append(f"thread {t}: {e!r}")

    threads = [threading.Thread(target=fill_and_read, args=(t,)) for t in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(100)
    assert not failures and not any(thread.is_alive() for thread in threads)
    assert node()["ObjectStoreSpilledBytesTotal"] > 64 * MiB


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cluster", [SMALL_STORE], indirect=True)
def test_a_result_whose_worker_has_gone_idle_can_spill(cluster):
    @minray.remote
    def make():
        return array(7, 48 * MiB)

    # the worker says it has written the result only with its next reservation, which
    # never comes: the node must ask it (FlushWritten) before it can spill the result
    result = make.remote()
    minray.wait([result])
    assert zlib.crc32(minray.get(minray.put(array(8, 32 * MiB)))) == zlib.crc32(array(8, 32 * MiB))
    assert node()["ObjectStoreSpilledObjects"] >= 1
    assert zlib.crc32(minray.get(result)) == zlib.crc32(array(7, 48 * MiB))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cluster", [SMALL_STORE], indirect=True)
def test_a_store_full_of_objects_being_read_is_full_and_says_so(cluster):
    refs = [minray.put(array(i)) for i in range(4)]
    held = [minray.get(ref) for ref in refs]  # 32 MiB mapped by us, live
    held += [minray.get(minray.put(array(i))) for i in range(4, 7)]  # 24 MiB, refs dropped
    with pytest.raises(ObjectStoreFullError) as info:
        minray.put(array(99, 16 * MiB))
    text = str(info.value)
    assert "4 (33,555,200 bytes) are pinned" in text and "numpy arrays" in text
    assert "3 freed objects (25,166,400 bytes) are still mapped" in text
    assert "object_store_memory" in text
    assert zlib.crc32(held[0]) == zlib.crc32(array(0))  # nothing was lost
    del held
    gc.collect()
    assert zlib.crc32(minray.get(minray.put(array(99, 16 * MiB)))) == zlib.crc32(
        array(99, 16 * MiB)
    )


@pytest.mark.timeout(60)
def test_an_object_larger_than_the_store_says_so():
    minray.init(num_cpus=1, **SMALL_STORE)
    try:
        with pytest.raises(ObjectStoreFullError, match="larger than the whole object store"):
            minray.put(np.zeros(65 * MiB, dtype=np.uint8))
    finally:
        minray.shutdown()


@pytest.mark.timeout(90)
def test_a_configured_spill_directory_is_used_and_emptied_at_shutdown(tmp_path):
    spec = {"type": "filesystem", "params": {"directory_path": str(tmp_path)}}
    minray.init(
        num_cpus=1, _system_config={"object_spilling_config": json.dumps(spec)}, **SMALL_STORE
    )
    try:
        refs = [minray.put(array(i)) for i in range(12)]
        directory = node()["ObjectSpillingDirectory"]
        assert os.path.dirname(directory) == str(tmp_path) and spill_files()
        assert zlib.crc32(minray.get(refs[0])) == zlib.crc32(array(0))
    finally:
        minray.shutdown()
    assert os.listdir(tmp_path) == []  # the node's directory and its files are gone


def test_an_unwritable_spill_directory_fails_init_and_starts_nothing(tmp_path):
    (tmp_path / "file").write_text("")
    spec = {"type": "filesystem", "params": {"directory_path": str(tmp_path / "file" / "d")}}
    with pytest.raises(ValueError, match="file/d.*cannot be used"):
        minray.init(num_cpus=1, _system_config={"object_spilling_config": json.dumps(spec)})
    assert not minray.is_initialized()


@pytest.fixture
def two_small_nodes(monkeypatch):
    monkeypatch.setenv("MINRAY_HEARTBEAT_INTERVAL_S", "0.2")
    yield from two_node_cluster(
        {"num_cpus": 1, "node_ip_address": "127.0.0.2", "object_store_memory": 64 * MiB}
    )


@pytest.mark.timeout(120)
def test_an_object_spilled_on_one_node_is_read_on_another(two_small_nodes):
    cluster, far = two_small_nodes

    @minray.remote
    def make(seed):
        return array(seed)

    @minray.remote
    def checksum(value):
        return zlib.crc32(value)

    here = NodeAffinitySchedulingStrategy(far.node_id, soft=False)
    refs = [make.options(scheduling_strategy=here).remote(i) for i in range(16)]  # 2x its store
    minray.wait(refs, num_returns=len(refs), fetch_local=False)
    assert wait_until(lambda: live_node_info(far)["ObjectStoreSpilledObjects"] > 0)
    # the first results are on the far node's disk now: the driver's node pulls them
    for i in (0, 1, 15):
        assert zlib.crc32(minray.get(refs[i])) == zlib.crc32(array(i))
    # and a task on the far node reads one restored there
    assert minray.get(checksum.options(scheduling_strategy=here).remote(refs[2])) == zlib.crc32(
        array(2)
    )
    del refs
    gc.collect()
    directory = live_node_info(far)["ObjectSpillingDirectory"]
    assert wait_until(lambda: not os.listdir(directory), timeout=10)


def test_a_bad_spill_directory_in_the_environment_stops_the_node_with_the_reason(
    tmp_path, monkeypatch
):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("MINRAY_OBJECT_SPILLING_DIRECTORY", str(tmp_path / "file" / "d"))
    with pytest.raises(RaySystemError, match="file/d' cannot be used: Not a directory"):
        minray.init(num_cpus=1)
    assert not minray.is_initialized()


@pytest.fixture
def tiny_disk(tmp_path):
    """A 4 MiB file system (tmpfs), where this test may mount one (root on Linux)."""
    path = tmp_path / "tiny"
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root on Linux)")
    try:
        yield str(path)
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.mark.timeout(60)
def test_a_full_disk_is_out_of_disk_error_and_loses_nothing(tiny_disk):
    spec = {"type": "filesystem", "params": {"directory_path": tiny_disk}}
    minray.init(
        num_cpus=1, _system_config={"object_spilling_config": json.dumps(spec)}, **SMALL_STORE
    )
    try:
        refs = [minray.put(array(i)) for i in range(7)]  # 56 MiB: fits in memory
        with pytest.raises(OutOfDiskError, match="disk is full"):
            minray.put(array(7))  # must spill 8 MiB to a 4 MiB disk
        assert os.listdir(node()["ObjectSpillingDirectory"]) == []  # no half-written file
        assert [zlib.crc32(minray.get(r)) for r in refs] == [zlib.crc32(array(i)) for i in range(7)]
    finally:
        minray.shutdown()
    assert os.listdir(tiny_disk) == []
