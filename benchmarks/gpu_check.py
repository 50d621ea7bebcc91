"""Check minray's GPU handling against a real NVIDIA GPU (run it on a machine that has one).

    python benchmarks/gpu_check.py [--out DIR]

Each check prints PASS or FAIL with what it saw; the whole record goes to
DIR/gpu_check.json. What is checked:

* ``init()`` with no ``num_gpus`` finds the GPU (and ``accelerator_type:<model>``);
  so does ``init(num_gpus=1)`` given by hand;
* a ``num_gpus=1`` task sees exactly its GPU: ``CUDA_VISIBLE_DEVICES``,
  ``get_gpu_ids()``, ``nvidia-smi -L`` run inside it, and, when PyTorch or CuPy is
  installed, the devices the framework sees and a matrix multiply checked
  against the CPU;
* an actor with ``num_gpus=1`` holds memory on the GPU from its own process
  (``nvidia-smi --query-compute-apps``), and a ``num_gpus=1`` task waits until
  it is gone;
* two ``num_gpus=0.5`` tasks share the GPU at the same time.

Exits 1 if a check failed, 2 if the machine has no GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import minray  # noqa: E402
from minray import accelerators  # noqa: E402
from minray.exceptions import GetTimeoutError  # noqa: E402

RESULTS: list[dict] = []


def check(name: str, ok: bool, **seen) -> bool:
    RESULTS.append({"check": name, "ok": bool(ok), **seen})
    print(f"{'PASS' if ok else 'FAIL'}  {name}  {json.dumps(seen, default=str)}", flush=True)
    return ok


def smi(*args: str) -> str:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return "(no nvidia-smi)"
    out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=30)
    return (out.stdout + out.stderr).strip()


def framework_probe(size: int = 4096) -> dict:
    """What PyTorch (or CuPy) sees from inside a task, and a checked matrix multiply."""
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and torch.cuda.is_available():
        a = torch.randn(size, size, device="cuda", dtype=torch.float32)
        b = torch.randn(size, size, device="cuda", dtype=torch.float32)
        torch.cuda.synchronize()
        start = time.perf_counter()
        c = a @ b
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        rows = slice(0, 64)
        expected = a[rows].cpu().double() @ b.cpu().double()
        error = (c[rows].cpu().double() - expected).abs().max().item()
        return {
            "framework": f"torch {torch.__version__}",
            "device_count": torch.cuda.device_count(),
            "device_name": torch.cuda.get_device_name(0),
            "matmul_max_abs_error": error,
            "matmul_ok": error < 1e-1,
            "matmul_tflops_first_call": 2 * size**3 / seconds / 1e12,
        }
    try:
        import cupy
    except ImportError:
        return {"framework": None}
    a = cupy.random.rand(size, size, dtype=cupy.float32)
    b = cupy.random.rand(size, size, dtype=cupy.float32)
    c = a @ b
    error = float(abs(cupy.asnumpy(c[:64]) - cupy.asnumpy(a[:64]) @ cupy.asnumpy(b)).max())
    return {
        "framework": f"cupy {cupy.__version__}",
        "device_count": cupy.cuda.runtime.getDeviceCount(),
        "matmul_max_abs_error": error,
        "matmul_ok": error < 1e-1,
    }


@minray.remote(num_gpus=1)
def whole_gpu(probe: bool) -> dict:
    seen = {
        "pid": os.getpid(),
        "gpu_ids": minray.get_gpu_ids(),
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "nvidia_smi_L": smi("-L"),
    }
    if probe:
        seen.update(framework_probe())
    return seen


@minray.remote(num_gpus=0.5)
def half_gpu(seconds: float) -> dict:
    start = time.monotonic()
    time.sleep(seconds)
    return {"gpu_ids": minray.get_gpu_ids(), "start": start, "end": time.monotonic()}


@minray.remote(num_gpus=1)
class GpuHolder:
    """Keeps a tensor on its GPU, so nvidia-smi lists this actor's process."""

    def __init__(self):
        self.tensor = None
        try:
            import torch

            if torch.cuda.is_available():
                self.tensor = torch.ones(256 * 2**20 // 4, device="cuda")
        except ImportError:
            pass

    def where(self) -> dict:
        return {
            "pid": os.getpid(),
            "gpu_ids": minray.get_gpu_ids(),
            "holds_tensor": self.tensor is not None,
        }


def check_detected_cluster() -> None:
    found = accelerators.detect_gpus()
    print(f"detection: {found}", flush=True)
    minray.init()
    try:
        resources = minray.cluster_resources()
        kind = accelerators.accelerator_type(found.model)
        check(
            "init() with no num_gpus detects the GPU",
            resources.get("GPU") == found.count >= 1,
            resources={k: v for k, v in resources.items() if k != "memory"},
            source=found.source,
        )
        check("accelerator_type resource", f"accelerator_type:{kind}" in resources, model=kind)

        seen = minray.get(whole_gpu.remote(True), timeout=120)
        visible = seen["CUDA_VISIBLE_DEVICES"]
        smi_gpus = [line for line in seen["nvidia_smi_L"].splitlines() if line.startswith("GPU ")]
        check(
            "num_gpus=1 task sees exactly its GPU",
            seen["gpu_ids"] == [0] and visible == "0" and len(smi_gpus) == 1,
            **seen,
        )
        if seen.get("framework"):
            check(
                "matrix multiply inside the task",
                seen.get("matmul_ok") and seen.get("device_count") == 1,
                **{k: v for k, v in seen.items() if k.startswith(("matmul", "device", "frame"))},
            )
        check(
            "driver has no GPU ids and its environment is untouched",
            minray.get_gpu_ids() == [] and os.environ.get("CUDA_VISIBLE_DEVICES") is None,
        )
        check_actor_holds_the_gpu()
        check_half_gpus_share()
    finally:
        minray.shutdown()


def check_actor_holds_the_gpu() -> None:
    holder = GpuHolder.remote()
    where = minray.get(holder.where.remote(), timeout=120)
    apps = smi("--query-compute-apps=pid,used_memory", "--format=csv,noheader")
    listed = str(where["pid"]) in apps
    check(
        "an actor with num_gpus=1 uses the GPU from its own process",
        where["gpu_ids"] == [0] and (listed or not where["holds_tensor"]),
        actor=where,
        compute_apps=apps,
        note="" if listed else "nvidia-smi did not list the actor's pid (PID namespace?)",
    )
    waiting = whole_gpu.remote(False)
    try:
        minray.get(waiting, timeout=2)
        waited = False
    except GetTimeoutError:
        waited = True
    minray.kill(holder)
    after = minray.get(waiting, timeout=120)
    check(
        "a num_gpus=1 task waits while an actor holds the GPU, then runs",
        waited and after["gpu_ids"] == [0],
        waited_2s=waited,
        then=after["gpu_ids"],
    )


def check_half_gpus_share() -> None:
    a, b = minray.get([half_gpu.remote(2.0), half_gpu.remote(2.0)], timeout=120)
    overlap = min(a["end"], b["end"]) - max(a["start"], b["start"])
    check(
        "two num_gpus=0.5 tasks share the GPU at the same time",
        a["gpu_ids"] == b["gpu_ids"] == [0] and overlap > 1.0,
        overlap_s=round(overlap, 3),
        ids=[a["gpu_ids"], b["gpu_ids"]],
    )


def check_given_num_gpus() -> None:
    minray.init(num_gpus=1)
    try:
        seen = minray.get(whole_gpu.remote(False), timeout=120)
        check(
            "init(num_gpus=1) given by hand",
            minray.cluster_resources().get("GPU") == 1.0 and seen["CUDA_VISIBLE_DEVICES"] == "0",
            gpu_ids=seen["gpu_ids"],
        )
    finally:
        minray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".")
    args = parser.parse_args()
    print(smi("-L"), flush=True)
    if accelerators.detect_gpus().count == 0:
        print("no GPU found: nothing to check here")
        sys.exit(2)
    check_detected_cluster()
    check_given_num_gpus()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gpu_check.json"), "w") as f:
        json.dump({"nvidia_smi_L": smi("-L"), "checks": RESULTS}, f, indent=1, default=str)
    failed = [r["check"] for r in RESULTS if not r["ok"]]
    print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
