"""The head's table of actor homes and names (pure; hypothesis on sequences of events)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minray.exceptions import ActorAlreadyExistsError
from minray.head.actor_homes import ActorHomes

A, B = b"node-a", b"node-b"


def test_names_are_unique_per_namespace_across_nodes_until_the_actor_dies():
    homes = ActorHomes()
    assert homes.claim(b"x", A, "counter", "ns", False) == b"x"
    with pytest.raises(ActorAlreadyExistsError, match="already taken"):
        homes.claim(b"y", B, "counter", "ns", False)
    assert homes.claim(b"y", B, "counter", "ns", True) == b"x"  # get_if_exists
    assert homes.claim(b"z", B, "counter", "other", False) == b"z"
    assert homes.named("counter", "ns") == (b"x", A)
    assert homes.list_named("ns") == [["counter", "ns"]]
    assert homes.list_named(None) == [["counter", "ns"], ["counter", "other"]]
    homes.gone(b"x")
    assert homes.named("counter", "ns") is None
    assert homes.home(b"x") == A  # still answered: the home says it is dead
    assert homes.claim(b"w", B, "counter", "ns", False) == b"w"


def test_a_dead_node_frees_the_names_of_its_actors():
    homes = ActorHomes()
    homes.claim(b"x", A, "a", "ns", False)
    homes.claim(b"y", B, "b", "ns", False)
    assert homes.node_died(A) == [b"x"]
    assert homes.named("a", "ns") is None and homes.named("b", "ns") == (b"y", B)
    assert homes.home(b"x") == A


def test_dead_homes_are_bounded_oldest_first():
    homes = ActorHomes(dead_kept=2)
    for i in range(3):
        homes.claim(bytes([i]), A, "", "ns", False)
        homes.gone(bytes([i]))
    assert homes.home(b"\x00") is None and homes.home(b"\x02") == A


events = st.lists(
    st.tuples(st.sampled_from(["claim", "gone", "node"]), st.integers(0, 5), st.integers(0, 2)),
    max_size=40,
)


@given(events)
def test_a_live_name_always_points_at_a_live_actor_of_that_name(steps):
    homes = ActorHomes()
    live: dict[bytes, tuple[bytes, str]] = {}
    for kind, i, n in steps:
        actor, node, name = bytes([i]), bytes([n]), f"n{i % 3}"
        if kind == "claim" and actor not in live and homes.home(actor) is None:
            try:
                homes.claim(actor, node, name, "ns", False)
                live[actor] = (node, name)
            except ActorAlreadyExistsError:
                assert any(v[1] == name for v in live.values())
        elif kind == "gone":
            homes.gone(actor)
            live.pop(actor, None)
        elif kind == "node":
            for lost in homes.node_died(node):
                live.pop(lost, None)
        for actor_id, (node_id, name) in live.items():
            assert homes.named(name, "ns") == (actor_id, node_id)
        assert len(homes.list_named("ns")) == len(live)


class _Kept:
    def __init__(self, actor_id: bytes):
        self.actor_id = actor_id


def test_a_kept_detached_actor_moves_to_a_new_home_with_its_name_when_its_home_dies():
    homes = ActorHomes()
    homes.claim(b"kept", A, "survivor", "ns", False)
    homes.claim(b"plain", A, "plain", "ns", False)
    homes.claim(b"other", B, "other", "ns", False)
    homes.keep(b"kept", _Kept(b"kept"))
    homes.keep(b"unknown", _Kept(b"unknown"))  # not a live actor: nothing to keep
    moved = homes.move_kept(A, B)
    assert [k.actor_id for k in moved] == [b"kept"]
    assert homes.node_died(A) == [b"plain"]
    assert homes.named("survivor", "ns") == (b"kept", B)
    assert homes.named("plain", "ns") is None
    assert homes.move_kept(B, B) == []  # (never to the node that died)
    homes.gone(b"kept")  # dead for good: nothing is kept any more
    assert homes.move_kept(B, A) == [] and homes.named("survivor", "ns") is None
