"""Stacks and profiles of an actor on another node: the head passes the request to the node
that hosts it (at 127.0.0.2, over TCP as another machine would be), which asks the worker."""

from __future__ import annotations

import time

import pytest

import minray
from minray.head.query import query_head
from minray.protocol.connection import RemoteError
from minray.protocol.messages import GetStacks, ProfileProcess
from minray.runtime.stacks import from_rows

from .cluster_helpers import two_node_cluster, wait_until


@pytest.fixture
def two_nodes():
    yield from two_node_cluster(
        {"num_cpus": 1, "resources": {"far": 1}, "node_ip_address": "127.0.0.2"}
    )


@minray.remote(num_cpus=0, resources={"far": 1})
class FarSpinner:
    def node(self) -> str:
        return minray.get_runtime_context().get_node_id()

    def spin_far(self, seconds: float) -> int:
        n, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            n += 1
        return n


def test_an_actor_on_another_node_is_sampled_where_it_runs(two_nodes):
    cluster, node = two_nodes
    actor = FarSpinner.remote()
    assert minray.get(actor.node.remote()) == node.node_id
    ref = actor.spin_far.remote(6)
    actor_id = actor._actor_id

    def stacks():
        reply = query_head(cluster.address, cluster.token, GetStacks(b"", b"", actor_id), 15)
        assert reply.node_id.hex() == node.node_id
        return reply

    assert wait_until(lambda: any(f[2] == "spin_far" for _, _, fr in stacks().threads for f in fr))
    ask = ProfileProcess(b"", b"", actor_id, 0.5, 100)
    profile = query_head(cluster.address, cluster.token, ask, 15)
    assert 25 <= profile.samples <= 75 and 0.5 <= profile.seconds < 1.5
    counts = from_rows(profile.stacks)
    assert sum(c for s, c in counts.items() if any(f.startswith("spin_far") for f in s)) >= 20
    minray.kill(actor)
    del ref
    with pytest.raises(RemoteError, match="dead|no process"):
        assert wait_until(lambda: not query_head(cluster.address, cluster.token,
                                                 GetStacks(b"", b"", actor_id), 15))  # fmt: skip
