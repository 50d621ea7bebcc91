"""minray.head.node_table: registration, heartbeats and the death detector on a fake clock."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minray.head.node_table import NodeState, NodeTable

A, B = b"\xaa" * 28, b"\xbb" * 28


def table_with_two_nodes(timeout=10.0):
    table = NodeTable(death_timeout_s=timeout)
    table.register(A, "127.0.0.1:7001", {"CPU": 2}, now=0.0)
    table.register(B, "127.0.0.1:7002", {"CPU": 4, "GPU": 1}, now=0.0)
    return table


def test_a_new_node_is_alive_with_everything_free():
    table = table_with_two_nodes()
    assert [n.node_id for n in table.alive()] == [A, B]
    assert table.resource_view()[B] == ({"CPU": 4, "GPU": 1}, {"CPU": 4, "GPU": 1})


def test_a_node_heard_from_in_time_stays_alive_and_a_silent_one_dies():
    table = table_with_two_nodes(timeout=10.0)
    assert table.heartbeat(A, now=9.0)
    assert table.expire(now=10.0) == []
    dead = table.expire(now=12.0)
    assert [n.node_id for n in dead] == [B]
    assert table.get(B).state is NodeState.DEAD
    assert "no heartbeat for 12.0 s" in table.get(B).death_reason
    assert [n.node_id for n in table.alive()] == [A]
    assert B not in table.resource_view()


def test_a_dead_node_is_not_revived_by_a_late_heartbeat_or_a_re_registration():
    table = table_with_two_nodes(timeout=1.0)
    table.expire(now=5.0)
    assert not table.heartbeat(A, now=5.1)
    with pytest.raises(ValueError, match="declared dead.*new id"):
        table.register(A, "127.0.0.1:7001", {"CPU": 2}, now=5.2)


def test_leaving_marks_dead_once_with_the_reason():
    table = table_with_two_nodes()
    assert table.remove(A, "minray stop").death_reason == "minray stop"
    assert table.remove(A, "again") is None
    assert table.remove(b"unknown", "x") is None
    assert table.get(A).available == {}


def test_version_moves_only_when_the_view_changes():
    table = table_with_two_nodes()
    version = table.version
    table.heartbeat(A, now=1.0)
    table.heartbeat(A, now=2.0, available={"CPU": 2})  # unchanged
    assert table.version == version
    table.heartbeat(A, now=3.0, available={"CPU": 1})
    assert table.version == version + 1
    assert table.resource_view()[A][1] == {"CPU": 1}


def test_next_deadline_is_the_oldest_live_nodes():
    table = table_with_two_nodes(timeout=10.0)
    table.heartbeat(A, now=4.0)
    assert table.next_deadline() == 10.0  # B, last seen at 0
    table.remove(B, "left")
    assert table.next_deadline() == 14.0
    table.remove(A, "left")
    assert table.next_deadline() is None


def test_the_timeout_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        NodeTable(death_timeout_s=0)


@given(
    timeout=st.floats(0.5, 20),
    beats=st.lists(st.tuples(st.sampled_from([A, B]), st.floats(0, 100)), max_size=40),
    end=st.floats(0, 130),
)
def test_a_node_dies_exactly_when_the_detector_finds_it_silent_longer_than_the_timeout(
    timeout, beats, end
):
    table = NodeTable(death_timeout_s=timeout)
    model = {}  # node -> last heard, or None once dead
    for node in (A, B):
        table.register(node, "127.0.0.1:1", {"CPU": 1}, now=0.0)
        model[node] = 0.0
    events = sorted((at, node) for node, at in beats if at <= end) + [(end, None)]
    for at, node in events:
        table.expire(now=at)
        for n, last in model.items():
            if last is not None and at - last > timeout:
                model[n] = None
        if node is not None:
            assert table.heartbeat(node, now=at) == (model[node] is not None)
            if model[node] is not None:
                model[node] = at
    for node, last in model.items():
        assert table.get(node).alive == (last is not None)
