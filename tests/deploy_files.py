"""The deployment files under ``deploy/`` as tests read them: the Kubernetes manifests,
their containers, and what a container's environment would be in a pod (the downward
API and the Secret, worked out here as the kubelet would), so that a container's command
can be run as a process on this machine.
"""

from __future__ import annotations

import glob
import math
import os
import re
import stat
import sys
from fractions import Fraction

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KUBERNETES = os.path.join(ROOT, "deploy", "kubernetes")
SLURM_SCRIPT = os.path.join(ROOT, "deploy", "slurm", "minray.sbatch")

_SUFFIXES = {
    "m": Fraction(1, 1000), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}  # fmt: skip


def manifest_files() -> list[str]:
    """The files ``kubectl apply -f deploy/kubernetes/`` reads."""
    return sorted(
        path
        for path in glob.glob(os.path.join(KUBERNETES, "*"))
        if path.endswith((".yaml", ".yml", ".json"))
    )


def documents() -> list[dict]:
    """Every object of every manifest."""
    out = []
    for path in manifest_files():
        with open(path) as f:
            out.extend(doc for doc in yaml.safe_load_all(f) if doc)
    return out


def deployment(name: str) -> dict:
    found = [d for d in documents() if d["kind"] == "Deployment" and d["metadata"]["name"] == name]
    assert len(found) == 1, f"one Deployment {name!r} expected, found {len(found)}"
    return found[0]


def containers(include_init: bool = True) -> list[dict]:
    """Every container of every pod template, init containers included."""
    out = []
    for doc in documents():
        spec = doc.get("spec", {}).get("template", {}).get("spec")
        if spec:
            out.extend(spec.get("initContainers", []) if include_init else [])
            out.extend(spec["containers"])
    return out


def quantity(text: str | int) -> Fraction:
    """A Kubernetes quantity (``"2"``, ``"500m"``, ``"4Gi"``) as an exact number."""
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(text))
    assert match, f"not a Kubernetes quantity: {text!r}"
    number, suffix = match.groups()
    return Fraction(number) * _SUFFIXES.get(suffix, 1) if suffix else Fraction(number)


def pod_environment(container: dict, pod_ip: str, token: str, limits: dict | None = None):
    """The environment the kubelet gives ``container`` (its ``env``, with the Secret's
    token, the pod's IP and its resource limits, ``limits`` overriding the manifest's)."""
    limits = {**container.get("resources", {}).get("limits", {}), **(limits or {})}
    env = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        source = var["valueFrom"]
        if "secretKeyRef" in source:
            assert source["secretKeyRef"] == {"name": "minray-token", "key": "token"}
            env[var["name"]] = token
        elif "fieldRef" in source:
            assert source["fieldRef"]["fieldPath"] == "status.podIP"
            env[var["name"]] = pod_ip
        else:
            ref = source["resourceFieldRef"]
            assert ref["containerName"] == container["name"], ref
            kind, resource = ref["resource"].split(".")
            assert kind == "limits", "the limits are what the node may use"
            divided = quantity(limits[resource]) / quantity(ref.get("divisor", "1"))
            env[var["name"]] = str(math.ceil(divided))  # the kubelet rounds up
    return env


def fake_minray(folder: str, record: str | None = None) -> str:
    """A ``minray`` command in ``folder``: this checkout's CLI, or with ``record`` a stand-in
    that appends its arguments to that file (one NUL-separated line per call)."""
    path = os.path.join(folder, "minray")
    if record is None:
        body = f'PYTHONPATH={ROOT} exec {sys.executable} -m minray.cli "$@"\n'
    else:
        body = f"printf '%s\\0' \"$@\" >> {record}\nprintf '\\n' >> {record}\n"
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path
