"""GPU detection against fake sources: a fake driver folder and a fake nvidia-smi."""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minray import accelerators
from minray.accelerators import (
    accelerator_type,
    detect_gpus,
    node_gpu_ids,
    read_proc_gpus,
    run_nvidia_smi,
    visible_devices,
)
from minray.options import actor_resources, task_resources

H200_INFO = "Model: \t\t NVIDIA H200\nIRQ:   \t\t 30\nGPU UUID: \t GPU-1234\nBus Type: \t PCIe\n"


def fake_proc_dir(root, models: list[str]) -> str:
    """A stand-in for /proc/driver/nvidia/gpus: one folder per GPU, by PCI address."""
    path = root / "gpus"
    path.mkdir()
    for i, model in enumerate(models):
        gpu = path / f"0000:{i + 1:02x}:00.0"
        gpu.mkdir()
        (gpu / "information").write_text(H200_INFO.replace("NVIDIA H200", model))
    return str(path)


def fake_nvidia_smi(root, stdout: str, exit_code: int = 0) -> str:
    path = root / "nvidia-smi"
    path.write_text(f"#!/bin/sh\ncat <<'EOF'\n{stdout}EOF\nexit {exit_code}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


SMI_TWO = (
    "GPU 0: NVIDIA H200 (UUID: GPU-aaaaaaaa-1111-2222-3333-444444444444)\n"
    "GPU 1: NVIDIA H200 (UUID: GPU-bbbbbbbb-1111-2222-3333-444444444444)\n"
)
NO_SMI = lambda name: None  # noqa: E731 - a `which` that finds nothing


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, None),
        ("", []),
        ("-1", []),
        ("0", ["0"]),
        ("2,3", ["2", "3"]),
        (" 1 , 0 ", ["1", "0"]),
        ("0,-1,2", ["0"]),  # CUDA ignores everything after an invalid id
        ("GPU-aaaa,GPU-bbbb", ["GPU-aaaa", "GPU-bbbb"]),
        ("NoDevFiles", []),
    ],
)
def test_visible_devices_reads_cuda_visible_devices_as_cuda_does(value, expected):
    environ = {} if value is None else {"CUDA_VISIBLE_DEVICES": value}
    assert visible_devices(environ) == expected


@given(st.lists(st.integers(0, 15), min_size=1, max_size=8))
def test_visible_devices_keeps_any_list_of_ids_in_order(ids):
    raw = ",".join(str(i) for i in ids)
    assert visible_devices({"CUDA_VISIBLE_DEVICES": raw}) == [str(i) for i in ids]


def test_proc_folder_gives_one_model_per_gpu(tmp_path):
    proc = fake_proc_dir(tmp_path, ["NVIDIA H200", "NVIDIA H200"])
    assert read_proc_gpus(proc) == ["NVIDIA H200", "NVIDIA H200"]
    assert read_proc_gpus(str(tmp_path / "missing")) is None


def test_nvidia_smi_lines_are_parsed_and_failures_mean_no_answer(tmp_path):
    smi = fake_nvidia_smi(tmp_path, SMI_TWO)
    assert run_nvidia_smi(lambda name: smi) == ["NVIDIA H200", "NVIDIA H200"]
    assert run_nvidia_smi(NO_SMI) is None
    broken = tmp_path / "broken"
    broken.mkdir()
    failing = fake_nvidia_smi(broken, "NVIDIA-SMI has failed\n", exit_code=9)
    assert run_nvidia_smi(lambda name: failing) is None


def test_detection_prefers_the_driver_folder_and_numbers_gpus_from_zero(tmp_path):
    proc = fake_proc_dir(tmp_path, ["NVIDIA H200", "NVIDIA H200"])
    smi = fake_nvidia_smi(tmp_path, "GPU 0: Tesla T4 (UUID: GPU-x)\n")
    found = detect_gpus({}, proc, lambda name: smi)
    assert found.device_ids == [0, 1]
    assert found.model == "NVIDIA H200"
    assert found.source == proc


def test_detection_falls_back_to_nvidia_smi_without_the_driver_folder(tmp_path):
    smi = fake_nvidia_smi(tmp_path, SMI_TWO)
    found = detect_gpus({}, str(tmp_path / "no-proc"), lambda name: smi)
    assert (found.device_ids, found.model, found.source) == ([0, 1], "NVIDIA H200", "nvidia-smi")


def test_no_source_means_no_gpus(tmp_path):
    found = detect_gpus({}, str(tmp_path / "no-proc"), NO_SMI)
    assert (found.device_ids, found.model, found.source) == ([], None, "none")
    # CUDA_VISIBLE_DEVICES alone does not make GPUs (Ray takes the smaller count)
    found = detect_gpus({"CUDA_VISIBLE_DEVICES": "0,1"}, str(tmp_path / "no-proc"), NO_SMI)
    assert found.count == 0


def test_cuda_visible_devices_narrows_and_names_the_detected_gpus(tmp_path):
    proc = fake_proc_dir(tmp_path, ["NVIDIA H200"] * 4)
    found = detect_gpus({"CUDA_VISIBLE_DEVICES": "3,1"}, proc, NO_SMI)
    assert (found.device_ids, found.source) == (["3", "1"], "CUDA_VISIBLE_DEVICES")
    found = detect_gpus({"CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5"}, proc, NO_SMI)
    assert found.device_ids == ["0", "1", "2", "3"]
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": ""}, proc, NO_SMI).count == 0


@pytest.mark.parametrize(
    "model, expected",
    [
        ("NVIDIA H200", "H200"),
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("Tesla V100-SXM2-16GB", "V100"),
        ("NVIDIA A100-SXM4-40GB", "A100"),
        ("Tesla T4", "T4"),
        ("NVIDIA A10G", "A10G"),
        ("NVIDIA GeForce RTX 4090", "RTX-4090"),
        ("", None),
        (None, None),
    ],
)
def test_accelerator_type_is_rays_short_model_name(model, expected):
    assert accelerator_type(model) == expected


def test_node_gpu_ids_take_cuda_visible_devices_in_order():
    assert node_gpu_ids(2, {}) == [0, 1]
    assert node_gpu_ids(0, {}) == []
    assert node_gpu_ids(1, {"CUDA_VISIBLE_DEVICES": "5,6"}) == ["5"]
    with pytest.raises(ValueError, match=r"num_gpus=3.*only 2 visible.*CUDA_VISIBLE_DEVICES"):
        node_gpu_ids(3, {"CUDA_VISIBLE_DEVICES": "5,6"})


def test_accelerator_type_option_asks_for_a_sliver_of_the_node_resource():
    assert task_resources({"num_cpus": 1, "accelerator_type": "H200"}) == {
        "CPU": 1.0,
        "accelerator_type:H200": 0.001,
    }
    needed, held = actor_resources({"accelerator_type": "H200"})
    assert needed == held == {"CPU": 1.0, "accelerator_type:H200": 0.001}


def test_detect_gpus_reads_the_module_defaults_at_call_time(tmp_path, monkeypatch):
    proc = fake_proc_dir(tmp_path, ["NVIDIA H200"])
    monkeypatch.setattr(accelerators, "PROC_GPUS_DIR", proc)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert detect_gpus().device_ids == [0]
    assert os.environ.get("CUDA_VISIBLE_DEVICES") is None
