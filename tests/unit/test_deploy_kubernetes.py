"""The Kubernetes manifests of ``deploy/kubernetes/``: valid against the Kubernetes
schemas, every ``minray`` command in them one that minray's own parser accepts (run
through ``sh`` with the environment a pod would have), and no token in any of them."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from minray.cli import build_parser
from tests.deploy_files import (
    KUBERNETES,
    containers,
    deployment,
    documents,
    fake_minray,
    manifest_files,
    pod_environment,
    quantity,
)

TOKEN = "ab" * 32
POD_IP = "10.244.1.7"
#: the oldest Kubernetes minor still maintained when these files were written, and the newest
#: whose schemas kubernetes-validate bundles (checked in the test)
OLDEST_VERSION = "1.30.0"


def test_every_manifest_is_valid_against_the_kubernetes_schemas():
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate",
        reason="needs kubernetes-validate (pip install 'minray[dev]'): it bundles the schemas",
    )
    docs = documents()
    assert {d["kind"] for d in docs} == {"Service", "Deployment"}
    for version in (OLDEST_VERSION, kubernetes_validate.latest_version()):
        for doc in docs:
            # strict: a misspelt or misplaced field is an error, not silently dropped
            kubernetes_validate.validate(doc, version, strict=True)


def test_a_misplaced_field_fails_the_schema_check():
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="needs it (above)")
    head = deployment("minray-head")
    broken = {**head, "spec": {**head["spec"], "replica": 1}}  # a typo of replicas
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, OLDEST_VERSION, strict=True)


def recorded_commands(shell_command: list[str], env: dict, tmp_path) -> list[list[str]]:
    """The argument lists each ``minray`` call of ``shell_command`` gets, run by ``sh`` with
    ``env`` and a stand-in ``minray`` that records them."""
    record = tmp_path / "calls"
    record.unlink(missing_ok=True)
    fake_minray(str(tmp_path), str(record))
    subprocess.run(
        shell_command,
        env={**env, "PATH": f"{tmp_path}:/usr/bin:/bin"},
        capture_output=True,
        timeout=30,
    )
    calls = record.read_text().split("\n")[:-1] if record.exists() else []
    return [call.split("\0")[:-1] for call in calls]


def parse(argv: list[str]):
    try:
        return build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"`minray {' '.join(argv)}` is refused by minray's parser")


@pytest.mark.parametrize("name", ["minray-head", "minray-worker"])
def test_each_pod_runs_minray_start_with_options_it_accepts(name, tmp_path):
    (container,) = deployment(name)["spec"]["template"]["spec"]["containers"]
    env = pod_environment(container, POD_IP, TOKEN)
    (argv,) = recorded_commands(container["command"] + container["args"], env, tmp_path)
    args = parse(argv)
    limits = container["resources"]["limits"]
    assert args.command == "start" and args.block
    assert args.node_ip_address == POD_IP
    assert args.num_cpus == float(quantity(limits["cpu"]))
    assert args.object_store_memory == int(quantity(limits["memory"]) * 3 / 10)
    assert args.token is None  # it comes from MINRAY_AUTH_TOKEN, never a command line
    if name == "minray-head":
        assert args.head and args.port == 6380
        assert (args.dashboard_host, args.dashboard_port) == ("0.0.0.0", 8265)
    else:
        assert args.address == "minray-head:6380"


def test_a_pod_with_half_a_cpu_and_odd_memory_gets_whole_numbers(tmp_path):
    (container,) = deployment("minray-worker")["spec"]["template"]["spec"]["containers"]
    env = pod_environment(container, POD_IP, TOKEN, {"cpu": "500m", "memory": "1000M"})
    (argv,) = recorded_commands(container["command"] + container["args"], env, tmp_path)
    args = parse(argv)
    assert (args.num_cpus, args.object_store_memory) == (1.0, 300_000_000)


def test_probes_and_the_wait_for_the_head_ask_minray_status_with_options_it_accepts(tmp_path):
    expected = {"minray-head": f"{POD_IP}:6380", "minray-worker": "minray-head:6380"}
    seen = 0
    for name, address in expected.items():
        spec = deployment(name)["spec"]["template"]["spec"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            env = pod_environment(container, POD_IP, TOKEN)
            probes = [container[p]["exec"]["command"] for p in ("readinessProbe", "livenessProbe")
                      if p in container]  # fmt: skip
            if container.get("args") and "start" not in container["args"][0]:
                probes.append(container["command"] + container["args"])  # the wait
            for command in probes:
                calls = recorded_commands(command, env, tmp_path)
                assert calls, f"{command} does not run minray"
                args = parse(calls[0])
                assert (args.command, args.address) == ("status", address)
                seen += 1
    assert seen == 5  # two probes per pod, and the workers' wait for the head


def test_the_token_never_appears_in_a_manifest():
    for path in manifest_files() + [os.path.join(KUBERNETES, "Dockerfile")]:
        with open(path) as f:
            text = f.read()
        assert not re.search(r"[0-9a-fA-F]{32}", text), f"{path} holds something like a token"
        assert "--token" not in text, f"{path} puts a token on a command line"
    assert all(doc["kind"] != "Secret" for doc in documents()), "the Secret is made by kubectl"
    for container in containers():
        names = [var["name"] for var in container["env"]]
        assert "MINRAY_AUTH_TOKEN" in names, f"{container['name']} has no token"
        for var in container["env"]:
            if var["name"] == "MINRAY_AUTH_TOKEN":
                assert var["valueFrom"]["secretKeyRef"] == {"name": "minray-token", "key": "token"}


def test_the_service_names_the_head_pod_and_its_ports():
    (service,) = [d for d in documents() if d["kind"] == "Service"]
    template = deployment("minray-head")["spec"]["template"]
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    worker = deployment("minray-worker")["spec"]["template"]["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= worker.items()
    (head,) = template["spec"]["containers"]
    container_ports = {p["name"]: p["containerPort"] for p in head["ports"]}
    assert {p["name"]: p["targetPort"] for p in service["spec"]["ports"]} == container_ports
    assert container_ports == {"node": 6380, "dashboard": 8265}
    # the dashboard accepts a Host header naming its own host name: the Service's name
    assert template["spec"]["hostname"] == service["metadata"]["name"] == "minray-head"
    assert deployment("minray-head")["spec"]["replicas"] == 1


def test_the_object_store_fits_the_pods_shared_memory():
    for name in ("minray-head", "minray-worker"):
        spec = deployment(name)["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        (mount,) = container["volumeMounts"]
        (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
        assert mount["mountPath"] == "/dev/shm" and volume["emptyDir"]["medium"] == "Memory"
        store = quantity(container["resources"]["limits"]["memory"]) * 3 / 10
        assert store <= quantity(volume["emptyDir"]["sizeLimit"])
