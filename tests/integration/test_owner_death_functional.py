"""Owner death: borrowers get OwnerDiedError naming the owner; the tasks and actors a
dead worker or driver owned go with it (fate-sharing), its detached actors stay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

import minray
from minray.cluster_utils import Cluster

from .cluster_helpers import pid_in, wait_until

#: how long cleanup of a dead owner's work may take (its connections close at once)
BOUND_S = 10.0


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@minray.remote
def _child(path: str) -> None:
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)


@minray.remote
class _Holder:
    def __init__(self, path: str):
        with open(path, "w") as f:
            f.write(str(os.getpid()))

    def ping(self) -> str:
        return "pong"


def _spawn_work(tmp: str, child_resources: dict) -> list:
    """Start a long child task, an actor and a detached actor; wait until all three run."""
    child = _child.options(resources=child_resources).remote(os.path.join(tmp, "child"))
    actor = _Holder.options(resources=child_resources).remote(os.path.join(tmp, "actor"))
    detached = _Holder.options(
        name="survivor", namespace="fate", lifetime="detached", resources=child_resources
    ).remote(os.path.join(tmp, "detached"))
    minray.get([actor.ping.remote(), detached.ping.remote()])
    pid_in(os.path.join(tmp, "child"))
    return [child, actor, detached]


@minray.remote(max_retries=0)
def _parent(tmp: str, child_resources: dict) -> None:
    handles = _spawn_work(tmp, child_resources)  # noqa: F841 (held until the exit)
    with open(os.path.join(tmp, "parent"), "w") as f:
        f.write(str(os.getpid()))
    os._exit(1)


def _check_fate_shared(tmp: str) -> None:
    child, actor = pid_in(os.path.join(tmp, "child")), pid_in(os.path.join(tmp, "actor"))
    detached = pid_in(os.path.join(tmp, "detached"))
    start = time.monotonic()
    assert wait_until(lambda: not _running(child) and not _running(actor), BOUND_S), (
        f"child task alive: {_running(child)}, actor alive: {_running(actor)} "
        f"{BOUND_S} s after their owner died"
    )
    print(f"owner's child task and actor gone {time.monotonic() - start:.2f} s after")
    time.sleep(0.5)
    assert _running(detached), "a detached actor died with its creator"
    survivor = minray.get_actor("survivor", namespace="fate")
    assert minray.get(survivor.ping.remote(), timeout=30) == "pong"
    minray.kill(survivor)
    assert wait_until(lambda: not _running(detached), BOUND_S)


@pytest.fixture
def two_nodes():
    """A head and a second node that behaves as if on another machine (127.0.0.2)."""
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 4, "resources": {"head": 10}}
    )
    node = cluster.add_node(num_cpus=4, resources={"other": 10}, node_ip_address="127.0.0.2")
    cluster.wait_for_nodes()
    cluster.connect()
    yield cluster, node
    cluster.shutdown()


@pytest.mark.parametrize("cluster", [{"num_cpus": 4}], indirect=True)
def test_a_dead_workers_child_task_and_actor_go_with_it_and_its_detached_actor_stays(
    cluster, tmp_path
):
    with pytest.raises(minray.exceptions.WorkerCrashedError):
        minray.get(_parent.remote(str(tmp_path), {}), timeout=60)
    _check_fate_shared(str(tmp_path))


def test_fate_sharing_reaches_the_work_a_dead_worker_placed_on_another_node(two_nodes, tmp_path):
    parent = _parent.options(resources={"head": 1})
    with pytest.raises(minray.exceptions.WorkerCrashedError):
        minray.get(parent.remote(str(tmp_path), {"other": 1}), timeout=60)
    _check_fate_shared(str(tmp_path))


@minray.remote
def _middle(tmp: str) -> None:
    grandchild = _child.remote(os.path.join(tmp, "grandchild"))  # noqa: F841 (held)
    with open(os.path.join(tmp, "middle"), "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)


@minray.remote(max_retries=0)
def _grandparent(tmp: str) -> None:
    middle = _middle.remote(tmp)  # noqa: F841 (held until the exit)
    pid_in(os.path.join(tmp, "grandchild"))
    os._exit(1)


@pytest.mark.parametrize("cluster", [{"num_cpus": 4}], indirect=True)
def test_fate_sharing_reaches_the_tasks_that_a_dead_owners_tasks_submitted(cluster, tmp_path):
    with pytest.raises(minray.exceptions.WorkerCrashedError):
        minray.get(_grandparent.remote(str(tmp_path)), timeout=60)
    pids = [pid_in(os.path.join(tmp_path, name)) for name in ("middle", "grandchild")]
    assert wait_until(lambda: not any(map(_running, pids)), BOUND_S), (
        f"still running {BOUND_S} s after the owner died: {[p for p in pids if _running(p)]}"
    )


DRIVER = textwrap.dedent(
    """
    import os, time
    import minray

    @minray.remote
    def child(path):
        with open(path, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(120)

    @minray.remote
    class Holder:
        def __init__(self, path):
            with open(path, "w") as f:
                f.write(str(os.getpid()))

        def ping(self):
            return "pong"

    minray.init(address={address!r}, _token=bytes.fromhex({token!r}))
    work = [
        child.options(resources={resources!r}).remote(os.path.join({tmp!r}, "child")),
        Holder.options(resources={resources!r}).remote(os.path.join({tmp!r}, "actor")),
        Holder.options(
            name="survivor", namespace="fate", lifetime="detached", resources={resources!r}
        ).remote(os.path.join({tmp!r}, "detached")),
    ]
    minray.get([work[1].ping.remote(), work[2].ping.remote()])
    while not os.path.exists(os.path.join({tmp!r}, "child")):
        time.sleep(0.05)
    os._exit(0)
    """
)


@pytest.mark.parametrize("resources", [{}, {"other": 1}], ids=["same-node", "other-node"])
def test_a_driver_that_exits_takes_its_tasks_and_actors_and_leaves_detached_ones(
    two_nodes, tmp_path, resources
):
    cluster, _ = two_nodes
    script = DRIVER.format(
        address=cluster.address,
        token=cluster.token.hex(),
        tmp=str(tmp_path),
        resources=resources,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    driver = subprocess.run([sys.executable, "-c", script], env=env, timeout=120)
    assert driver.returncode == 0
    _check_fate_shared(str(tmp_path))


# --- OwnerDiedError names the owner -------------------------------------------------------


@minray.remote(max_retries=0)
def _put_and_report() -> tuple:
    return [minray.put("owned by a worker")], os.getpid()


def _owner_died_error(ref) -> minray.exceptions.OwnerDiedError:
    with pytest.raises(minray.exceptions.OwnerDiedError) as caught:
        minray.get(ref, timeout=30)
    return caught.value


@pytest.mark.parametrize("where", ["same-node", "other-node"])
def test_a_borrower_of_a_dead_workers_object_is_told_its_pid_node_and_address(two_nodes, where):
    resources = {"other": 1} if where == "other-node" else {}
    (inner,), pid = minray.get(_put_and_report.options(resources=resources).remote())
    assert minray.get(inner) == "owned by a worker"
    owner = inner.owner_address
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not _running(pid), BOUND_S)
    error = _owner_died_error(inner)
    ip = "127.0.0.2" if where == "other-node" else "127.0.0.1"
    assert (error.owner_pid, error.owner_ip, error.owner_address) == (pid, ip, owner)
    assert error.owner_kind == "worker"
    message = str(error)
    for part in (inner.hex(), f"pid {pid}", ip, owner, "owner has exited", "worker-"):
        assert part in message, f"{part!r} not in {message!r}"


HOLDER = textwrap.dedent(
    """
    import minray
    minray.init(address={address!r}, _token=bytes.fromhex({token!r}))
    keeper = minray.get_actor("keeper", namespace="fate")
    minray.get(keeper.keep.remote([minray.put("owned by a driver")]))
    """
)


@minray.remote
class _Keeper:
    def keep(self, refs: list) -> None:
        self.refs = refs

    def read(self) -> str:
        try:
            return minray.get(self.refs[0], timeout=30)
        except minray.exceptions.OwnerDiedError as e:
            return f"{e.owner_kind}|{e.owner_pid}|{e}"


def test_a_borrower_of_an_exited_drivers_object_is_told_it_was_that_driver(two_nodes):
    cluster, _ = two_nodes
    keeper = _Keeper.options(
        name="keeper", namespace="fate", lifetime="detached", resources={"other": 1}
    ).remote()
    script = HOLDER.format(address=cluster.address, token=cluster.token.hex())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    driver = subprocess.Popen([sys.executable, "-c", script], env=env)
    assert driver.wait(120) == 0
    kind, pid, message = minray.get(keeper.read.remote(), timeout=60).split("|", 2)
    assert (kind, int(pid)) == ("driver", driver.pid), message
    assert f"pid {driver.pid} on the node at 127.0.0.1" in message
    minray.kill(keeper)
