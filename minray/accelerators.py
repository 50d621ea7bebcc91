"""Which NVIDIA GPUs this machine has, and which of them a task may see.

Detection runs once, in ``init()``, when ``num_gpus`` is not given. Sources, in order:

1. ``/proc/driver/nvidia/gpus``: one folder per GPU, written by the NVIDIA driver;
   reading it costs no process start.
2. ``nvidia-smi -L``: where the driver's folder is absent (some containers).

``CUDA_VISIBLE_DEVICES``, if set, says which of them minray may hand out: with
``"2,3"`` a task sees ``"2"`` or ``"3"``, and ``get_gpu_ids()`` returns those
strings, as in Ray.

Each source is a plain function that takes where to look, so tests point it at a
fake folder or a fake ``nvidia-smi``. The model name also gives Ray's
``accelerator_type:<TYPE>`` node resource (``"NVIDIA H200"`` -> ``H200``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from typing import NamedTuple

PROC_GPUS_DIR = "/proc/driver/nvidia/gpus"
#: node resource that marks the GPU model, as in Ray (``accelerator_type:H200``)
ACCELERATOR_TYPE_PREFIX = "accelerator_type:"
#: seconds nvidia-smi may take before detection gives up on it
NVIDIA_SMI_TIMEOUT_S = 5.0

_SMI_LINE = re.compile(r"^GPU (?P<index>\d+): (?P<model>.+?)(?: \(UUID: (?P<uuid>[^)]+)\))?$")
_VENDOR_WORDS = {"NVIDIA", "TESLA", "GEFORCE", "QUADRO"}


class GpuDetection(NamedTuple):
    """What detection found: the device ids tasks are given, the model, and where from."""

    device_ids: list  #: ints 0..n-1, or the strings of CUDA_VISIBLE_DEVICES
    model: str | None  #: e.g. "NVIDIA H200"; None when the source does not say
    source: str  #: "CUDA_VISIBLE_DEVICES", PROC_GPUS_DIR, "nvidia-smi" or "none"

    @property
    def count(self) -> int:
        return len(self.device_ids)


def visible_devices(environ: Mapping[str, str]) -> list[str] | None:
    """The ids in ``CUDA_VISIBLE_DEVICES``; None when it is unset.

    As in CUDA, an empty value or ``-1`` hides every GPU, and nothing after an
    invalid (negative) entry is visible.
    """
    raw = environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return None
    ids = []
    for entry in raw.split(","):
        entry = entry.strip()
        if not entry or entry.startswith("-") or entry == "NoDevFiles":
            break
        ids.append(entry)
    return ids


def read_proc_gpus(proc_dir: str = PROC_GPUS_DIR) -> list[str] | None:
    """The model of each GPU the driver lists (one folder per GPU, by PCI address),
    or None when the folder does not exist."""
    try:
        entries = sorted(os.listdir(proc_dir))
    except OSError:
        return None
    models = []
    for entry in entries:
        model = ""
        try:
            with open(os.path.join(proc_dir, entry, "information")) as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key.strip() == "Model":
                        model = value.strip()
                        break
        except OSError:
            pass
        models.append(model)
    return models


def run_nvidia_smi(which: Callable[[str], str | None] = shutil.which) -> list[str] | None:
    """The model of each GPU that ``nvidia-smi -L`` lists, or None without a usable one."""
    smi = which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, "-L"], capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    models = []
    for line in out.stdout.splitlines():
        match = _SMI_LINE.match(line.strip())
        if match:
            models.append(match["model"].strip())
    return models


def detect_gpus(
    environ: Mapping[str, str] | None = None,
    proc_dir: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> GpuDetection:
    """Find this machine's GPUs from the first source that answers (see the module doc).

    As in Ray, ``CUDA_VISIBLE_DEVICES`` narrows what the machine has: with it set,
    the node gets its first ids, as many as the driver or ``nvidia-smi`` finds GPUs.
    """
    environ = os.environ if environ is None else environ
    proc_dir = PROC_GPUS_DIR if proc_dir is None else proc_dir
    visible = visible_devices(environ)
    if visible == []:
        return GpuDetection([], None, "CUDA_VISIBLE_DEVICES")
    models, source = read_proc_gpus(proc_dir), proc_dir
    if not models:
        models, source = run_nvidia_smi(which), "nvidia-smi"
    if not models:
        return GpuDetection([], None, "none")
    model = next((m for m in models if m), None)
    if visible is not None:
        return GpuDetection(visible[: len(models)], model, "CUDA_VISIBLE_DEVICES")
    return GpuDetection(list(range(len(models))), model, source)


def accelerator_type(model: str | None) -> str | None:
    """Ray's short name of a GPU model: "NVIDIA H200" -> "H200",
    "Tesla V100-SXM2-16GB" -> "V100", "NVIDIA GeForce RTX 4090" -> "RTX-4090"."""
    if not model:
        return None
    words = [w for w in model.split() if w.upper() not in _VENDOR_WORDS]
    for i, word in enumerate(words):
        if any(ch.isdigit() for ch in word):
            name = "-".join([*words[:i], word.split("-")[0]]) if i <= 1 else word.split("-")[0]
            return name or None
    return words[0] if words else None


def node_gpu_ids(num_gpus: float | None, environ: Mapping[str, str] | None = None) -> list:
    """The device ids a node hands to tasks when ``num_gpus`` is given by the user.

    With ``CUDA_VISIBLE_DEVICES`` set, task GPUs are taken from it in order (Ray does
    the same), and asking for more GPUs than it lists is an error.
    """
    environ = os.environ if environ is None else environ
    count = int(num_gpus or 0)
    visible = visible_devices(environ)
    if visible is None:
        return list(range(count))
    if count > len(visible):
        raise ValueError(
            f"init(num_gpus={num_gpus}) asks for {count} GPUs, but CUDA_VISIBLE_DEVICES="
            f"{environ.get('CUDA_VISIBLE_DEVICES')!r} makes only {len(visible)} visible. "
            "Ask for fewer GPUs, or unset or widen CUDA_VISIBLE_DEVICES."
        )
    return visible[:count]
