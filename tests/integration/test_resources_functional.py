"""Resources: CPUs limit parallelism, fractions pack, infeasible tasks warn."""

from __future__ import annotations

import time

import pytest

import minray


@minray.remote
def hold(seconds):
    time.sleep(seconds)
    return time.time()


def test_two_cpus_run_four_one_second_tasks_in_about_two_seconds(cluster):
    minray.get(hold.remote(0))  # warm
    start = time.perf_counter()
    minray.get([hold.remote(1) for _ in range(4)])
    elapsed = time.perf_counter() - start
    assert 1.9 < elapsed < 3.5


def test_half_cpu_tasks_pack_two_per_cpu(cluster_1cpu):
    half = hold.options(num_cpus=0.5)
    minray.get([half.remote(0), half.remote(0)])
    start = time.perf_counter()
    minray.get([half.remote(1) for _ in range(2)])
    assert time.perf_counter() - start < 1.9


def test_cluster_and_available_resources_follow_ray_keys(cluster):
    total = minray.cluster_resources()
    assert total["CPU"] == 2.0
    assert "memory" in total and "object_store_memory" in total
    assert total["node:__internal_head__"] == 1.0
    ref = hold.options(num_cpus=2).remote(1.5)
    deadline = time.time() + 5
    while "CPU" in minray.available_resources() and time.time() < deadline:
        time.sleep(0.05)
    assert "CPU" not in minray.available_resources(), "a fully used resource disappears"
    minray.get(ref)
    deadline = time.time() + 5  # leases go back to the node a moment after the task ends
    while minray.available_resources().get("CPU") != 2.0 and time.time() < deadline:
        time.sleep(0.01)
    assert minray.available_resources()["CPU"] == 2.0
    (node,) = minray.nodes()
    assert node["Alive"] and len(node["NodeID"]) == 56 and node["Resources"]["CPU"] == 2.0


def test_an_infeasible_task_stays_pending_and_warns_with_its_name(cluster, minray_log):
    @minray.remote(num_gpus=1)
    def needs_gpu():
        return 1

    with pytest.raises(minray.exceptions.GetTimeoutError):
        minray.get(needs_gpu.remote(), timeout=1)
    assert "needs_gpu" in minray_log.text and "GPU" in minray_log.text


def test_an_unknown_custom_resource_is_reported_by_name(cluster, minray_log):
    @minray.remote(resources={"accelerator_x": 1})
    def needs_custom():
        return 1

    with pytest.raises(minray.exceptions.GetTimeoutError):
        minray.get(needs_custom.remote(), timeout=0.5)
    assert "accelerator_x" in minray_log.text and "needs_custom" in minray_log.text


@pytest.mark.parametrize("cluster", [{"resources": {"accelerator_x": 1}}], indirect=True)
def test_custom_resources_from_init_are_scheduled(cluster):
    @minray.remote(resources={"accelerator_x": 1})
    def needs_custom():
        return "ran"

    assert minray.get(needs_custom.remote(), timeout=10) == "ran"


@pytest.mark.parametrize("cluster", [{"num_gpus": 2}], indirect=True)
def test_gpu_tasks_get_their_gpu_ids_and_cuda_visible_devices(cluster):
    @minray.remote(num_gpus=1)
    def gpu_task():
        import os

        return minray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES")

    @minray.remote(num_gpus=2)
    def two_gpus():
        import os

        return minray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES")

    ids, visible = minray.get(gpu_task.remote())
    assert len(ids) == 1 and visible == str(ids[0])
    assert minray.get(two_gpus.remote()) == ([0, 1], "0,1")
    assert minray.get_gpu_ids() == []
