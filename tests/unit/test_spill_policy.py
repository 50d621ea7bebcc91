"""minray.object_store.spill_policy: which objects spill first, and the table of spill files."""

from hypothesis import given
from hypothesis import strategies as st

from minray.object_store.spill_policy import (
    Candidate,
    SpilledObject,
    SpillTable,
    choose_ahead,
    choose_victims,
)


def cand(name: str, size: int, last_use: int, pinned: bool = False) -> Candidate:
    return Candidate(name.encode(), size, last_use, pinned)


def test_the_least_recently_used_objects_spill_first():
    objects = [cand("new", 10, 3), cand("old", 10, 1), cand("mid", 10, 2)]
    assert [c.object_id for c in choose_victims(objects, 15)] == [b"old", b"mid"]


def test_pinned_objects_never_spill_even_when_oldest():
    objects = [cand("read", 100, 0, pinned=True), cand("idle", 10, 5)]
    assert choose_victims(objects, 10) == [objects[1]]


def test_nothing_spills_when_even_every_unpinned_object_is_not_enough():
    objects = [cand("read", 100, 0, pinned=True), cand("idle", 10, 5)]
    assert choose_victims(objects, 11) is None


def test_nothing_spills_when_nothing_is_needed():
    assert choose_victims([cand("a", 10, 1)], 0) == []


candidates = st.lists(
    st.builds(
        Candidate,
        st.binary(min_size=1, max_size=4),
        st.integers(1, 1000),
        st.integers(0, 50),
        st.booleans(),
    ),
    max_size=30,
    unique_by=lambda c: c.object_id,
)


@given(candidates, st.integers(-10, 5000))
def test_the_choice_is_unpinned_lru_minimal_and_enough(objects, needed):
    chosen = choose_victims(objects, needed)
    free = [c for c in objects if not c.pinned]
    if needed <= 0:
        assert chosen == []
        return
    if sum(c.size for c in free) < needed:
        assert chosen is None
        return
    assert chosen is not None
    assert not any(c.pinned for c in chosen)
    assert sum(c.size for c in chosen) >= needed  # enough
    assert sum(c.size for c in chosen[:-1]) < needed  # no more than needed
    rest = [c for c in free if c not in chosen]
    assert all(c.last_use <= r.last_use for c in chosen for r in rest)  # least recent first


def test_spilling_ahead_brings_the_store_back_to_its_threshold_oldest_first():
    objects = [cand("new", 10, 3), cand("old", 10, 1), cand("mid", 10, 2), cand("x", 10, 4)]
    # 40 of 50 bytes live, threshold 0.7 (35 bytes): 5 bytes over, the oldest goes
    assert [c.object_id for c in choose_ahead(objects, 40, 50, 0.7)] == [b"old"]
    # threshold 0.5 (25 bytes): 15 bytes over, the two oldest go
    assert [c.object_id for c in choose_ahead(objects, 40, 50, 0.5)] == [b"old", b"mid"]


def test_nothing_spills_ahead_at_or_below_the_threshold_or_with_threshold_one():
    objects = [cand("a", 10, 1), cand("b", 10, 2)]
    assert choose_ahead(objects, 20, 25, 0.8) == []  # exactly at it
    assert choose_ahead(objects, 20, 20, 1.0) == []  # full, but 1.0 spills only when full


def test_spilling_ahead_skips_pinned_objects_and_takes_what_it_can():
    objects = [cand("read", 30, 0, pinned=True), cand("idle", 10, 5)]
    assert choose_ahead(objects, 40, 40, 0.5) == [objects[1]]  # not enough, but all it can
    assert choose_ahead([objects[0]], 40, 40, 0.5) == []


def test_what_is_already_on_its_way_to_disk_counts_as_gone():
    objects = [cand("a", 10, 1), cand("b", 10, 2)]
    assert choose_ahead(objects, 40, 50, 0.7, in_flight=5) == []  # 35 left: at the threshold
    assert [c.object_id for c in choose_ahead(objects, 40, 50, 0.7, in_flight=4)] == [b"a"]


def test_a_small_batch_waits_while_another_spill_is_under_way():
    objects = [cand("a", 10, 1), cand("b", 10, 2)]
    assert choose_ahead(objects, 40, 50, 0.5, min_spilling_size=100, in_flight=1) == []
    # with nothing under way it goes at once, however small
    assert len(choose_ahead(objects, 40, 50, 0.5, min_spilling_size=100)) == 2


@given(
    candidates,
    st.integers(0, 30_000),
    st.integers(1, 30_000),
    st.floats(0, 1),
    st.integers(0, 2000),
    st.integers(0, 3000),
)
def test_spilling_ahead_is_unpinned_lru_and_stops_at_the_threshold(
    objects, live, capacity, threshold, min_size, in_flight
):
    chosen = choose_ahead(objects, live, capacity, threshold, min_size, in_flight)
    excess = live - in_flight - int(threshold * capacity)
    free = [c for c in objects if not c.pinned]
    if threshold >= 1.0 or excess <= 0:
        assert chosen == []
        return
    total = sum(c.size for c in chosen)
    if in_flight > 0 and total < min_size:
        assert chosen == []  # (only a batch under min_size waits)
    assert not any(c.pinned for c in chosen)
    assert len({c.object_id for c in chosen}) == len(chosen)
    if chosen:
        assert sum(c.size for c in chosen[:-1]) < excess  # stops once at the threshold
        rest = [c for c in free if c not in chosen]
        assert all(c.last_use <= r.last_use for c in chosen for r in rest)  # oldest first
        assert total >= excess or len(chosen) == len(free)  # enough, or all it could
    elif free and not (in_flight > 0):
        raise AssertionError("over the threshold with unpinned objects, yet nothing chosen")


def test_the_table_gives_files_back_when_objects_are_freed_or_their_owner_exits():
    table = SpillTable()
    table.add(b"a", SpilledObject("/s/a", 10, "owner1", "seg-a"))
    table.add(b"b", SpilledObject("/s/b", 20, "owner2", "seg-b"))
    table.add(b"c", SpilledObject("/s/c", 30, "owner2", "seg-c"))
    assert table.spilled_bytes_total == 60 and len(table) == 3
    assert table.on_disk(lambda oid: oid == b"a") == (2, 50)  # a was restored: in memory too
    assert table.pop(b"a") == "/s/a" and table.pop(b"a") is None
    assert sorted(table.owner_gone("owner2")) == ["/s/b", "/s/c"]
    assert len(table) == 0 and table.paths() == []
