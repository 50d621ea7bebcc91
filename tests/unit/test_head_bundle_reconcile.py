"""A re-joining node's held bundles set against the head's groups: the pure decision
(head/bundle_reconcile.py) and the head applying it (head/placement_service.py)."""

from __future__ import annotations

from minray import __version__
from minray.head.bundle_reconcile import reconcile
from minray.head.placement_service import GroupRecord
from minray.head.service import PYTHON_VERSION
from minray.node.placement_groups import PlacementGroupHandlers
from minray.protocol.messages import CommitBundles, Ok, PrepareBundles, RegisterNode, ReturnBundles
from minray.runtime.scheduler import LeaseScheduler

from .test_head_placement_service import HEAD, FakeNode, create, head_with, settle

N, M = b"n" * 28, b"m" * 28
G, H = b"g" * 18, b"h" * 18
ONE = {"CPU": 1.0}


def group(nodes, strategy="PACK", state="CREATED", bundles=None) -> GroupRecord:
    bundles = bundles or [dict(ONE) for _ in nodes]
    return GroupRecord(G, "", "ns", bundles, strategy, False, M, list(nodes), state)


def held(index, committed=True, used=None, group_id=G, bundle=None):
    return [group_id, index, bundle or dict(ONE), committed, used or {}]


def test_bundles_held_where_the_head_placed_them_change_nothing():
    out = reconcile(N, [held(0), held(1)], {G: group([N, N])})
    assert not out.changed


def test_a_group_the_head_does_not_know_is_given_back_whole():
    out = reconcile(N, [held(0, used={"CPU": 1.0}), held(1)], {})
    assert list(out.release) == [G] and "no longer knows" in out.release[G]
    assert out.in_use == 1 and not out.replace


def test_a_removed_group_is_given_back():
    out = reconcile(N, [held(0)], {G: group([b""], state="REMOVED")})
    assert list(out.release) == [G]


def test_a_bundle_only_prepared_where_the_head_placed_it_is_committed():
    out = reconcile(N, [held(0, committed=False)], {G: group([N, M])})
    assert out.commit == [G] and not out.release and not out.adopt


def test_a_waiting_groups_unplaced_bundle_is_adopted():
    out = reconcile(N, [held(1, committed=False)], {G: group([M, b""], state="RESCHEDULING")})
    assert out.adopt == {G: [1]} and out.commit == [G] and not out.release


def test_a_bundle_of_the_group_being_placed_is_given_back_not_adopted():
    out = reconcile(N, [held(1)], {G: group([M, b""], state="PENDING")}, placing=G)
    assert list(out.release) == [G] and not out.adopt


def test_strict_spread_adopts_no_second_bundle_on_one_node():
    record = group([b"", b""], "STRICT_SPREAD", "PENDING")
    assert list(reconcile(N, [held(0), held(1)], {G: record}).release) == [G]
    assert reconcile(N, [held(0)], {G: record}).adopt == {G: [0]}


def test_strict_pack_adopts_only_what_completes_the_group_on_the_node():
    record = group([b"", b""], "STRICT_PACK", "PENDING")
    assert list(reconcile(N, [held(0)], {G: record}).release) == [G]
    assert reconcile(N, [held(0), held(1)], {G: record}).adopt == {G: [0, 1]}


def test_a_bundle_placed_elsewhere_sends_the_groups_bundles_here_back_and_placed_again():
    out = reconcile(N, [held(0), held(1)], {G: group([N, M])})
    assert list(out.release) == [G] and out.replace == {G: [0]}


def test_a_bundle_that_differs_from_the_groups_is_given_back():
    out = reconcile(N, [held(0, bundle={"CPU": 2.0})], {G: group([N])})
    assert list(out.release) == [G] and out.replace == {G: [0]}


def test_bundles_the_head_has_on_the_node_that_it_does_not_hold_are_placed_again():
    out = reconcile(N, [held(0)], {G: group([N, N]), H: group([M, N])})
    assert list(out.release) == [G]
    assert out.replace == {G: [0, 1], H: [1]}


# --- the head applying it ------------------------------------------------------------------


def rejoin(head, node_id: bytes, bundles: list) -> None:
    """The member registers again (on the same fake connection) holding ``bundles``."""
    conn = head.members[node_id]
    conn.close_callbacks = []
    msg = RegisterNode(node_id, "tcp:b:1", {"CPU": 2.0}, {}, __version__, PYTHON_VERSION, [],
                       bundles)  # fmt: skip
    head.handle_RegisterNode(conn, msg)


async def test_a_rejoining_node_gives_back_an_unknown_group_and_commits_a_lost_commit():
    local, member = FakeNode(1), FakeNode(2)
    head = head_with(local, b=member)
    group_id, _ = create(head, [{"CPU": 1}, {"CPU": 1}], "STRICT_SPREAD")
    await settle()
    node_b = b"b" * 28
    assert sorted(head.groups[group_id].nodes) == sorted([HEAD, node_b])
    index = head.groups[group_id].nodes.index(node_b)
    member.got.clear()
    rejoin(head, node_b, [[group_id, index, {"CPU": 1}, False, {}], [b"u" * 18, 0, ONE, True, {}]])
    given_back, committed = member.got
    assert type(given_back) is ReturnBundles and given_back.group_id == b"u" * 18
    assert "no longer knows" in given_back.cause
    assert committed == CommitBundles(group_id)
    assert head.groups[group_id].state == "CREATED"


async def test_a_rejoining_node_that_lost_its_bundle_has_it_placed_again():
    local, member = FakeNode(0), FakeNode(2)
    head = head_with(local, b=member)
    node_b = b"b" * 28
    group_id, _ = create(head, [{"CPU": 1}])
    await settle()
    assert head.groups[group_id].nodes == [node_b]
    member.got.clear()
    rejoin(head, node_b, [])
    assert head.groups[group_id].state == "RESCHEDULING"
    await settle()
    assert head.groups[group_id].state == "CREATED"
    assert [type(m).__name__ for m in member.got] == ["PrepareBundles", "CommitBundles"]


# --- the node's report ---------------------------------------------------------------------


class Daemon:
    """What PlacementGroupHandlers use of a node daemon."""

    def __init__(self):
        self.scheduler = LeaseScheduler({"CPU": 4.0})
        self.held_bundles: dict = {}

    def _schedule(self) -> None:
        pass


async def test_a_node_reports_each_bundle_it_holds_committed_or_not_and_what_is_in_use():
    node = Daemon()
    handlers = PlacementGroupHandlers
    bundles = [[0, {"CPU": 1.0}], [1, {"CPU": 1.0}]]
    assert handlers.handle_PrepareBundles(node, None, PrepareBundles(G, bundles)) == Ok()
    handlers.handle_CommitBundles(node, None, CommitBundles(G))
    handlers.handle_PrepareBundles(node, None, PrepareBundles(H, [[0, {"CPU": 2.0}]]))
    node.scheduler.submit("lease", {f"CPU_group_0_{G.hex()}": 0.5})
    assert node.scheduler.schedule()  # a task runs in bundle 0 of G
    report = handlers.held_bundles_report(node)
    assert sorted(report) == sorted([
        [G, 0, {"CPU": 1.0}, True, {"CPU": 0.5}],
        [G, 1, {"CPU": 1.0}, True, {}],
        [H, 0, {"CPU": 2.0}, False, {}],
    ])  # fmt: skip
