"""The head's placement groups (head/placement_service.py) with fake nodes: two-phase
reservation, refusal, removal, and a dead node's bundles placed again."""

from __future__ import annotations

import asyncio

from minray.head.service import HeadService
from minray.protocol.connection import RemoteError
from minray.protocol.messages import (
    CommitBundles,
    CreatePlacementGroup,
    ErrorReply,
    Ok,
    PrepareBundles,
    RemovePlacementGroup,
    ReturnBundles,
)

HEAD, B, C = b"h" * 28, b"b" * 28, b"c" * 28


class FakeNode:
    """A node that holds bundles while it has the CPUs (the head's own, or a member)."""

    def __init__(self, cpus: float, refuse: bool = False):
        self.free = cpus
        self.refuse = refuse
        self.got: list = []
        self.info: dict = {}

    def handle_PrepareBundles(self, conn, msg):
        self.got.append(msg)
        need = sum(bundle.get("CPU", 0) for _, bundle in msg.bundles)
        if self.refuse or need > self.free:
            return ErrorReply("ResourcesBusy", "no room")
        self.free -= need
        return Ok()

    def handle_CommitBundles(self, conn, msg):
        self.got.append(msg)

    def handle_ReturnBundles(self, conn, msg):
        self.got.append(msg)

    # as a member's connection, seen from the head
    def request(self, msg):
        fut = asyncio.get_running_loop().create_future()
        reply = self.handle_PrepareBundles(None, msg)
        if type(reply) is ErrorReply:
            fut.set_exception(RemoteError(reply.error, reply.message))
        else:
            fut.set_result(reply)
        return fut

    def send(self, msg):
        getattr(self, f"handle_{type(msg).__name__}")(None, msg)

    def send_frame(self, frame):
        pass

    def close(self):
        pass


def head_with(local: FakeNode, **members: FakeNode) -> HeadService:
    def local_info():
        cpus = {"CPU": 1.0}
        return {"AvailableResources": cpus, "RayletSocketName": "unix:/x", "Resources": cpus}

    head = HeadService(HEAD, local_info, 10.0)
    head.local_node = local
    head.local_resources = lambda: ({"CPU": 1.0}, {"CPU": local.free})
    for name, node in members.items():
        node_id = name.encode() * 28
        head.table.register(node_id, f"tcp:{name}:1", {"CPU": 2.0}, 0.0)
        head.members[node_id] = node
    return head


def create(head: HeadService, bundles, strategy="PACK", detached=False, creator=None):
    group_id = bytes([len(head.groups) + 1]) * 18
    conn = None if creator is None else creator
    msg = CreatePlacementGroup(group_id, "", "ns", bundles, strategy, detached)
    return group_id, head.handle_CreatePlacementGroup(conn, msg).groups[0]


class Creator:
    def __init__(self, node_id: bytes):
        self.info = {"node_id": node_id}


def kinds(node: FakeNode) -> list[str]:
    return [type(m).__name__ for m in node.got]


async def settle():
    """Let the placements in flight finish (a bounded number of loop turns)."""
    for _ in range(50):
        await asyncio.sleep(0)


async def test_a_group_that_fits_on_the_head_node_is_placed_within_the_call():
    local = FakeNode(1)
    head = head_with(local)
    _, record = create(head, [{"CPU": 1}])
    assert record["state"] == "CREATED" and record["bundles_to_node_id"] == [HEAD.hex()]
    assert kinds(local) == ["PrepareBundles", "CommitBundles"]


async def test_bundles_on_two_nodes_are_prepared_on_both_before_either_commits():
    local, member = FakeNode(1), FakeNode(2)
    head = head_with(local, b=member)
    group_id, record = create(head, [{"CPU": 1}, {"CPU": 1}], "STRICT_SPREAD")
    assert record["state"] == "PENDING"
    await settle()
    assert head.groups[group_id].state == "CREATED"
    assert kinds(local) == kinds(member) == ["PrepareBundles", "CommitBundles"]
    nodes = head.groups[group_id].nodes
    assert sorted(nodes) == sorted([HEAD, B])
    # the head's view shows the member's bundle before its next heartbeat
    total = head.table.get(B).total
    assert total[f"CPU_group_{nodes.index(B)}_{group_id.hex()}"] == 1.0
    assert head.table.get(B).available["CPU"] == 1


async def test_a_node_that_refuses_makes_the_others_give_their_bundles_back():
    local, member = FakeNode(1), FakeNode(2, refuse=True)
    head = head_with(local, b=member)
    group_id, _ = create(head, [{"CPU": 1}, {"CPU": 1}], "STRICT_SPREAD")
    await settle()
    assert head.groups[group_id].state == "PENDING"
    assert kinds(local) == ["PrepareBundles", "ReturnBundles"]
    member.refuse, local.free = False, 1
    head.place_pending()  # (the next change of the view)
    await settle()
    assert head.groups[group_id].state == "CREATED"


async def test_removing_a_group_gives_each_node_its_bundles_back():
    local, member = FakeNode(1), FakeNode(2)
    head = head_with(local, b=member)
    group_id, _ = create(head, [{"CPU": 1}, {"CPU": 1}], "STRICT_SPREAD")
    await settle()
    head.handle_RemovePlacementGroup(None, RemovePlacementGroup(group_id))
    assert head.groups[group_id].state == "REMOVED"
    assert kinds(local)[-1] == kinds(member)[-1] == "ReturnBundles"
    assert not any("_group_" in name for name in head.table.get(B).total)


async def test_a_dead_nodes_bundles_are_placed_again_and_its_creators_groups_removed():
    local, b, c = FakeNode(1), FakeNode(2), FakeNode(2)
    head = head_with(local, b=b)
    kept, _ = create(head, [{"CPU": 1}, {"CPU": 1}], "SPREAD", detached=True, creator=Creator(B))
    await settle()
    owned, _ = create(head, [{"CPU": 1}], "PACK", creator=Creator(B))
    await settle()
    assert head.groups[kept].state == head.groups[owned].state == "CREATED"

    head.members.pop(B)
    head._mark_dead(B, "gone")
    assert head.groups[owned].state == "REMOVED"  # its creator's node died
    assert head.groups[kept].state == "RESCHEDULING"  # detached: placed again
    assert head.groups[kept].nodes[0] == HEAD or head.groups[kept].nodes[1] == HEAD

    head.table.register(C, "tcp:c:1", {"CPU": 2.0}, 0.0)
    head.members[C] = c
    head._changed(C)
    await settle()
    assert head.groups[kept].state == "CREATED" and C in head.groups[kept].nodes
    assert isinstance(c.got[0], PrepareBundles) and isinstance(c.got[1], CommitBundles)
    assert not any(isinstance(m, ReturnBundles) for m in local.got)
