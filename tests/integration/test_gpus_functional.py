"""GPUs end to end, with faked detection sources: init() finds them, tasks and actors
get their own, fractions share one, and CUDA_VISIBLE_DEVICES is respected."""

from __future__ import annotations

import os
import time

import pytest

import minray
from minray import accelerators, api
from minray.exceptions import GetTimeoutError
from tests.conftest import assert_cleaned_up, runtime_processes
from tests.unit.test_accelerators import SMI_TWO, fake_nvidia_smi, fake_proc_dir


@pytest.fixture
def detected_cluster(request, tmp_path, monkeypatch):
    """init() without num_gpus on a machine whose GPU sources are faked: the param is
    (models in the driver folder, CUDA_VISIBLE_DEVICES or None, nvidia-smi output or None)."""
    models, visible, smi_output = request.param
    monkeypatch.setattr(accelerators, "PROC_GPUS_DIR", str(tmp_path / "no-driver-folder"))
    if models:
        monkeypatch.setattr(accelerators, "PROC_GPUS_DIR", fake_proc_dir(tmp_path, models))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if smi_output is not None:
        fake_nvidia_smi(bin_dir, smi_output)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    minray.init(num_cpus=4)
    session_dir = api._state.session_dir
    yield
    processes = runtime_processes()
    minray.shutdown()
    assert_cleaned_up(processes, session_dir)


@minray.remote(num_gpus=1)
def one_gpu():
    ctx = minray.get_runtime_context()
    return minray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES"), ctx.get_accelerator_ids()


@minray.remote(num_gpus=0.5)
def half_gpu(seconds):
    start = time.monotonic()
    time.sleep(seconds)
    return minray.get_gpu_ids(), start, time.monotonic()


@pytest.mark.parametrize("detected_cluster", [(["NVIDIA H200"] * 2, None, None)], indirect=True)
def test_init_finds_the_gpus_in_the_driver_folder(detected_cluster):
    resources = minray.cluster_resources()
    assert resources["GPU"] == 2.0
    assert resources["accelerator_type:H200"] == 1.0
    ids, visible, accel = minray.get(one_gpu.remote())
    assert ids in ([0], [1]) and visible == str(ids[0]) and accel == {"GPU": [visible]}
    assert minray.get_gpu_ids() == []
    assert minray.get_runtime_context().get_accelerator_ids() == {"GPU": []}

    on_h200 = one_gpu.options(accelerator_type="H200")
    assert minray.get(on_h200.remote(), timeout=30)[0] in ([0], [1])


@pytest.mark.parametrize("detected_cluster", [([], None, SMI_TWO)], indirect=True)
def test_init_falls_back_to_nvidia_smi(detected_cluster):
    assert minray.cluster_resources()["GPU"] == 2.0
    assert minray.cluster_resources()["accelerator_type:H200"] == 1.0
    both = minray.get([one_gpu.remote(), one_gpu.remote()])
    assert {visible for _, visible, _ in both} <= {"0", "1"}


@pytest.mark.parametrize("detected_cluster", [([], None, None)], indirect=True)
def test_without_any_gpu_source_there_are_no_gpus_and_gpu_tasks_are_infeasible(
    detected_cluster, minray_log
):
    assert "GPU" not in minray.cluster_resources()
    with pytest.raises(GetTimeoutError):
        minray.get(one_gpu.remote(), timeout=1)
    assert "GPU" in minray_log.text


@pytest.mark.parametrize("detected_cluster", [(["NVIDIA H200"] * 4, "3,5", None)], indirect=True)
def test_cuda_visible_devices_chooses_which_gpus_tasks_see(detected_cluster):
    assert minray.cluster_resources()["GPU"] == 2.0
    seen = minray.get([one_gpu.remote() for _ in range(4)])
    for ids, visible, accel in seen:
        assert visible in ("3", "5")
        assert ids == [visible]  # strings, as Ray returns ids taken from CUDA_VISIBLE_DEVICES
        assert accel == {"GPU": [visible]}


@pytest.mark.parametrize("detected_cluster", [(["NVIDIA H200"], None, None)], indirect=True)
def test_two_half_gpu_tasks_share_the_gpu_at_the_same_time(detected_cluster):
    (ids_a, start_a, end_a), (ids_b, start_b, end_b) = minray.get(
        [half_gpu.remote(1.0), half_gpu.remote(1.0)], timeout=30
    )
    assert ids_a == ids_b == [0]
    assert start_a < end_b and start_b < end_a, "the two halves did not run side by side"


@pytest.mark.parametrize("detected_cluster", [(["NVIDIA H200"], None, None)], indirect=True)
def test_a_gpu_task_waits_while_an_actor_holds_the_gpu(detected_cluster):
    @minray.remote(num_gpus=1)
    class Holder:
        def ids(self):
            return minray.get_gpu_ids()

    holder = Holder.remote()
    assert minray.get(holder.ids.remote(), timeout=30) == [0]
    waiting = one_gpu.remote()
    with pytest.raises(GetTimeoutError):
        minray.get(waiting, timeout=1)
    minray.kill(holder)
    assert minray.get(waiting, timeout=30)[1] == "0"
