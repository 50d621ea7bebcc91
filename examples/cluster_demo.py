"""Three nodes on this machine: where tasks run, and what happens when a node dies.

``minray.cluster_utils.Cluster`` starts a head and two more nodes as real
processes, each with its own workers and shared memory, joined over TCP on
127.0.0.1. On real machines you would run ``minray start --head`` and
``minray start --address=HOST:PORT`` instead (see docs/cluster.md); the
program below would be the same after ``minray.init(address="auto")``.

Run it with ``python examples/cluster_demo.py``.
"""

import time

import minray
from minray.cluster_utils import Cluster


@minray.remote
def where(i: int) -> tuple[int, str]:
    time.sleep(0.3)  # long enough that the driver's node fills up and tasks spill over
    return i, minray.get_runtime_context().get_node_id()


def main() -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    second = cluster.add_node(num_cpus=1)
    third = cluster.add_node(num_cpus=1, resources={"big_disk": 1})
    cluster.wait_for_nodes()
    cluster.connect()
    names = {
        cluster.head_node.node_id: "head",
        second.node_id: "node 2",
        third.node_id: "node 3 (big_disk)",
    }
    count, cpus = len(minray.nodes()), minray.cluster_resources()["CPU"]
    print(f"cluster at {cluster.address}: {count} nodes, {cpus:.0f} CPUs")

    results = minray.get([where.remote(i) for i in range(6)])
    for i, node in results:
        print(f"task {i} ran on {names[node]}")
    print(f"tasks ran on {len({node for _, node in results})} nodes")

    _, node = minray.get(where.options(resources={"big_disk": 1}).remote(99))
    print(f"a task that needs big_disk ran on {names[node]}")

    cluster.remove_node(second, allow_graceful=False)  # as if its machine crashed
    dead = [n for n in minray.nodes() if not n["Alive"]]
    print(f"{names[dead[0]['NodeID']]} is dead: {dead[0]['DeathReasonMessage'][:40]}...")
    results = minray.get([where.remote(i) for i in range(3)])
    print(f"after that, tasks ran on: {sorted({names[n] for _, n in results})}")
    minray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main()
