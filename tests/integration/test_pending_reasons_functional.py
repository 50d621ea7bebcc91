"""Why a task or an actor is pending, as recorded where that was decided, on a real
cluster: a head with one CPU and a node with no CPU (only a custom resource), on
loopback. Each reason is read through minray.util.state and `minray why` (and the
list and status commands)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import minray
from minray.util import state
from minray.util.placement_group import placement_group, remove_placement_group
from minray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from .cluster_helpers import pid_in, two_node_cluster, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def nodes():
    yield from two_node_cluster({"num_cpus": 0, "resources": {"other": 1}})


def cli(cluster, *args: str) -> str:
    """`minray ARGS --address` of this cluster, as a user runs it; its output."""
    env = {k: v for k, v in os.environ.items() if k not in ("MINRAY_ADDRESS", "RAY_ADDRESS")}
    env["MINRAY_AUTH_TOKEN"] = cluster.token.hex()
    out = subprocess.run(
        [sys.executable, "-m", "minray.cli", *args, "--address", cluster.address],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


def reason(ref) -> str:
    """The task's recorded reason ("" while none reached the head)."""
    attempts = state.get_task(ref.task_id().hex())
    return (attempts[-1].pending_reason or "") if attempts else ""


@minray.remote
def hold(pid_file: str, release: str) -> int:
    """Take the head's only CPU until ``release`` exists (at most 60 s)."""
    import time

    with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
    deadline = time.monotonic() + 60
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)
    return 1


@minray.remote
def use(value: int) -> int:
    return value + 1


@minray.remote(num_cpus=1)
class Worker:
    def ping(self) -> str:
        return "pong"


def test_infeasible_tasks_say_no_node_can_fit_them_and_what_each_node_has(nodes):
    cluster, _ = nodes
    gpu = use.options(num_gpus=1).remote(0)
    custom = use.options(resources={"nowhere": 1}).remote(0)
    assert wait_until(lambda: reason(gpu).startswith("Infeasible"))
    assert "no node can ever fit {CPU: 1, GPU: 1}" in reason(gpu)
    assert "{CPU: 1}" in reason(gpu) and "{other: 1}" in reason(gpu)  # what the nodes have
    assert wait_until(lambda: "fit {CPU: 1, nowhere: 1}" in reason(custom))
    explained = cli(cluster, "why", custom.task_id().hex())
    assert (
        "PENDING_NODE_ASSIGNMENT" in explained and "Infeasible: no node can ever fit" in explained
    )
    minray.cancel(gpu)
    minray.cancel(custom)


def test_a_task_behind_a_long_one_names_the_holder_and_its_position(nodes, tmp_path):
    cluster, _ = nodes
    release = tmp_path / "release"
    held = hold.remote(str(tmp_path / "pid"), str(release))
    pid = pid_in(str(tmp_path / "pid"))
    queued = use.remote(1)  # waits for the CPU hold has
    assert wait_until(lambda: reason(queued).startswith("Resources busy"))
    assert f"in use by task hold (worker pid {pid})" in reason(queued)
    assert "position 1 of 1 in the node's queue for CPU" in reason(queued)
    explained = state.why(queued.task_id().hex())
    assert "it waits for a node to run it" in explained and "position 1 of 1" in explained

    # an actor that needs the CPU waits behind it, and says so
    actor = Worker.remote()
    actor_id = actor._actor_id.hex()

    def actor_reason() -> str:
        found = state.get_actor(actor_id)
        return (found.pending_reason or "") if found is not None else ""

    assert wait_until(lambda: "position 2 of 2 in the node's queue for CPU" in actor_reason())
    assert state.get_actor(actor_id).state == "PENDING_CREATION"
    assert f"in use by task hold (worker pid {pid})" in actor_reason()
    assert "REASON" in cli(cluster, "list", "actors") and "Resources busy" in cli(
        cluster, "list", "tasks", "--filter", "state=PENDING_NODE_ASSIGNMENT"
    )
    status = cli(cluster, "status")
    assert "Pending demands:" in status and "Resources busy" in status, status

    release.write_text("")
    assert minray.get([held, queued]) == [1, 2]
    assert minray.get(actor.ping.remote()) == "pong"
    assert state.get_actor(actor_id).pending_reason is None  # alive: nothing to wait for
    minray.kill(actor)


def test_a_task_waiting_for_an_argument_names_it_its_owner_and_where_its_maker_runs(
    nodes, tmp_path
):
    cluster, _ = nodes
    release = tmp_path / "release"
    held = hold.remote(str(tmp_path / "pid"), str(release))
    pid_in(str(tmp_path / "pid"))
    after = use.remote(held)
    object_hex = held.hex()
    assert wait_until(lambda: reason(after).startswith("Waiting for 1 argument(s)"))
    assert f"object {object_hex[:16]} (owned by its owner, pid {os.getpid()}" in reason(after)
    # (hold's RUNNING comes from its worker's events, which may reach the head later)
    assert wait_until(lambda: "which is RUNNING" in state.why(after.task_id().hex()))
    explained = cli(cluster, "why", after.task_id().hex())
    assert "PENDING_ARGS_AVAIL" in explained and "made by hold, which is RUNNING" in explained
    release.write_text("")
    assert minray.get(after) == 2


def test_a_task_in_a_group_that_cannot_be_placed_waits_for_the_group(nodes):
    cluster, _ = nodes
    group = placement_group([{"CPU": 8}])  # no node has 8 CPUs
    strategy = PlacementGroupSchedulingStrategy(group)
    waiting = use.options(scheduling_strategy=strategy).remote(0)
    group_hex = group.id.hex()
    assert wait_until(
        lambda: reason(waiting).startswith(f"Waiting for placement group {group_hex}")
    )
    assert "its bundle is not placed yet (it is PENDING" in reason(waiting)
    explained = cli(cluster, "why", waiting.task_id().hex())
    assert f"Its placement group {group_hex} is PENDING now" in explained
    minray.cancel(waiting)
    remove_placement_group(group)
