"""minray.object_store.accounting.StoreAccounting: capacity, pins and reuse of segments."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minray.exceptions import ObjectStoreFullError, RayError
from minray.object_store.accounting import Reservation, StoreAccounting

A, B, C = b"a" * 28, b"b" * 28, b"c" * 28


def test_reservations_are_counted_against_capacity():
    store = StoreAccounting(1000)
    assert store.reserve(A, "seg-a", 300, "owner1") == (Reservation("seg-a", 300, False), [])
    store.reserve(B, "seg-b", 200, "owner2")
    assert store.used == store.live_bytes == 500
    assert len(store) == 2
    assert sorted(store.all_segments()) == ["seg-a", "seg-b"]


def test_a_reservation_may_fill_the_store_exactly():
    store = StoreAccounting(1000)
    store.reserve(A, "seg-a", 1000, "o")
    assert store.used == store.capacity


def test_a_reservation_beyond_capacity_raises_object_store_full():
    store = StoreAccounting(1000)
    store.reserve(A, "seg-a", 600, "o")
    with pytest.raises(ObjectStoreFullError, match="object_store_memory") as info:
        store.reserve(B, "seg-b", 401, "o")
    assert "401" in str(info.value) and "400 of 1,000 bytes free" in str(info.value)
    assert isinstance(info.value, RayError)
    assert store.used == 600 and len(store) == 1  # the failed reservation left no trace


def test_without_a_pool_freeing_unlinks_at_once():
    store = StoreAccounting(1000, pool_limit=0)
    store.reserve(A, "seg-a", 400, "o")
    assert store.free(A) == ["seg-a"]
    assert store.used == 0 and store.all_segments() == []


def test_freeing_an_unknown_object_does_nothing():
    store = StoreAccounting(1000, pool_limit=500)
    assert store.free(A) == []


def test_a_freed_segment_is_pooled_and_reused_for_an_object_of_about_its_size():
    store = StoreAccounting(1000, pool_limit=500)
    store.reserve(A, "seg-a", 400, "o")
    assert store.free(A) == []
    assert store.pooled_bytes == 400 and store.live_bytes == 0 and store.used == 400
    reservation, unlink = store.reserve(B, "seg-b", 390, "o")
    assert reservation == Reservation("seg-a", 400, True) and unlink == []
    assert store.pooled_bytes == 0 and store.used == 400


def test_a_much_smaller_object_gets_a_new_segment_instead_of_a_big_pooled_one():
    store = StoreAccounting(1000, pool_limit=500)
    store.reserve(A, "seg-a", 400, "o")
    store.free(A)
    reservation, _ = store.reserve(B, "seg-b", 100, "o")
    assert reservation == Reservation("seg-b", 100, False)


def test_a_pinned_segment_is_not_reused_until_its_last_reader_unpins():
    store = StoreAccounting(1000, pool_limit=500)
    store.reserve(A, "seg-a", 400, "o")
    store.pin("seg-a")
    store.pin("seg-a")
    assert store.free(A) == []
    reservation, _ = store.reserve(B, "seg-b", 400, "o")
    assert reservation.segment == "seg-b", "a mapped segment must never be handed out"
    store.free(B)  # seg-b goes to the pool
    assert store.unpin("seg-a") == []
    assert store.unpin("seg-a") == ["seg-b"]  # seg-a pooled; the older seg-b makes room
    assert store.pooled_bytes == 400
    reservation, _ = store.reserve(C, "seg-c", 400, "o")
    assert reservation == Reservation("seg-a", 400, True)


def test_the_pool_stays_under_its_limit_by_unlinking_the_oldest():
    store = StoreAccounting(10_000, pool_limit=500)
    for oid, name in ((A, "seg-a"), (B, "seg-b"), (C, "seg-c")):
        store.reserve(oid, name, 200, "o")
    assert store.free(A) == []
    assert store.free(B) == []
    assert store.free(C) == ["seg-a"]
    assert store.pooled_bytes == 400


def test_the_pool_is_emptied_before_a_reservation_is_refused():
    store = StoreAccounting(1000, pool_limit=500)
    store.reserve(A, "seg-a", 400, "o")
    store.free(A)
    reservation, unlink = store.reserve(B, "seg-b", 900, "o")
    assert reservation.segment == "seg-b" and unlink == ["seg-a"]
    assert store.used == 900


def test_reserving_an_object_again_frees_the_earlier_attempt():
    store = StoreAccounting(1000)
    store.reserve(A, "seg-a", 10, "o")
    _, unlink = store.reserve(A, "seg-a2", 30, "o")
    assert unlink == ["seg-a"]
    assert store.used == store.live_bytes == 30
    store.free(A)
    assert store.used == 0


def test_owner_gone_frees_only_that_owners_segments():
    store = StoreAccounting(1000)
    store.reserve(A, "seg-a", 100, "dead")
    store.reserve(B, "seg-b", 200, "alive")
    store.reserve(C, "seg-c", 300, "dead")
    assert sorted(store.owner_gone("dead")) == ["seg-a", "seg-c"]
    assert store.all_segments() == ["seg-b"] and store.used == 200


operations = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "free", "pin", "unpin", "spill"]),
        st.integers(min_value=0, max_value=4),
        st.integers(min_value=1, max_value=300),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_used_always_equals_what_is_held_and_pinned_segments_are_never_handed_out(ops):
    store = StoreAccounting(1000, pool_limit=400)
    pins: dict[str, int] = {}
    live: dict[int, str] = {}
    named: set[str] = set()
    unlinked: set[str] = set()
    for step, (op, index, size) in enumerate(ops):
        object_id = bytes([index]) * 28
        unlink: list[str] = []
        if op == "reserve":
            before = (sorted(store.all_segments()), store.used)
            try:
                reservation, unlink = store.reserve(object_id, f"seg-{step}", size, "o")
            except ObjectStoreFullError:
                assert (sorted(store.all_segments()), store.used) == before
                continue
            named.add(reservation.segment)
            assert pins.get(reservation.segment, 0) == 0, "handed out a mapped segment"
            assert reservation.size >= size
            live[index] = reservation.segment
        elif op == "free":
            unlink = store.free(object_id)
            live.pop(index, None)
        elif op == "pin" and index in live:
            store.pin(live[index])
            pins[live[index]] = pins.get(live[index], 0) + 1
        elif op == "unpin":
            pinned = sorted(name for name, count in pins.items() if count)
            if pinned:
                name = pinned[index % len(pinned)]
                pins[name] -= 1
                unlink = store.unpin(name)
        elif op == "spill":  # written to disk, then dropped from shared memory
            victims = store.victims(size) or []
            assert all(pins.get(info.segment, 0) == 0 for _, info in victims), "spilled a pin"
            for victim, _ in victims:
                store.start_spill(victim)
            assert store.victims(1) is None or not {v for v, _ in store.victims(1)} & {
                v for v, _ in victims
            }, "chose an object already on its way to disk"
            for victim, _ in victims:
                segment = store.end_spill(victim, evict=True)
                if segment is not None:
                    unlink.append(segment)
                    live.pop(victim[0], None)
        assert all(pins.get(name, 0) == 0 for name in unlink), "unlinked a mapped segment"
        unlinked.update(unlink)
        held = set(store.all_segments())
        assert named == held | unlinked and not held & unlinked, "a segment was forgotten"
        assert store.pooled_bytes <= store.pool_limit
        assert 0 <= store.used <= store.capacity
        assert store.live_bytes <= store.used


def test_a_failed_reservation_unlinks_nothing_and_forgets_nothing():
    store = StoreAccounting(10 * 2**20, pool_limit=2**20)
    store.reserve(A, "seg-a", 2**20, "o")
    store.free(A)  # pooled
    with pytest.raises(ObjectStoreFullError):
        store.reserve(B, "seg-b", 20 * 2**20, "o")
    assert store.all_segments() == ["seg-a"] and store.pooled_bytes == 2**20


# --- spilling to disk -------------------------------------------------------------------


def test_victims_are_the_least_recently_pinned_objects_not_pinned_now():
    store = StoreAccounting(1000)
    store.reserve(A, "seg-a", 300, "o")
    store.reserve(B, "seg-b", 300, "o")
    store.reserve(C, "seg-c", 300, "o")
    store.pin("seg-a")  # A was read last: it is the most recently used
    store.unpin("seg-a")
    store.pin("seg-b")  # B is read now: it cannot spill
    assert [oid for oid, _ in store.victims(200)] == [C]
    assert [oid for oid, _ in store.victims(400)] == [C, A]
    assert store.victims(700) is None  # B is pinned: 600 bytes is all spilling can give


def test_an_evicted_object_leaves_shared_memory_and_its_segment_is_unlinked_not_pooled():
    store = StoreAccounting(1000, pool_limit=1000)
    store.reserve(A, "seg-a", 300, "o")
    store.start_spill(A)
    assert store.victims(100) is None  # on its way to disk already
    assert store.end_spill(A, evict=True) == "seg-a"
    assert store.used == 0 and store.pooled_bytes == 0 and store.info(A) is None
    assert store.free(A) == []


def test_an_object_pinned_while_it_was_written_to_disk_stays_in_memory():
    store = StoreAccounting(1000)
    store.reserve(A, "seg-a", 300, "o")
    store.start_spill(A)
    store.pin("seg-a")
    assert store.end_spill(A, evict=True) is None
    assert store.info(A) is not None and store.used == 300


def test_a_failed_spill_leaves_the_object_a_candidate_again():
    store = StoreAccounting(1000)
    store.reserve(A, "seg-a", 300, "o")
    store.start_spill(A)
    assert store.end_spill(A, evict=False) is None
    assert [oid for oid, _ in store.victims(100)] == [A]


def test_spilling_ahead_names_unpinned_objects_until_the_store_is_at_its_threshold():
    store = StoreAccounting(1000)
    for oid, seg in ((A, "seg-a"), (B, "seg-b"), (C, "seg-c")):
        store.reserve(oid, seg, 300, "o")  # 900 of 1000
    assert store.ahead(0.9, 0) == []  # at the threshold, not over it
    store.pin("seg-a")  # A is being read: it stays, though oldest
    assert [oid for oid, _ in store.ahead(0.5, 0)] == [B, C]  # 400 over: two objects
    assert [oid for oid, _ in store.ahead(0.7, 0)] == [B]  # 200 over: one
    store.start_spill(B)  # on its way: counts as gone
    assert store.ahead(0.7, 0) == []
    assert [oid for oid, _ in store.ahead(0.5, 0)] == [C]
    assert store.ahead(0.5, 1000) == []  # too small a batch while B is spilling
    assert store.ahead(1.0, 0) == []


def test_the_usage_says_what_is_pinned_and_pooled():
    store = StoreAccounting(1000, pool_limit=500)
    store.reserve(A, "seg-a", 300, "o")
    store.reserve(B, "seg-b", 200, "o")
    store.free(B)
    store.pin("seg-a")
    text = store.usage()
    assert (
        "1 live objects hold 300 bytes" in text
        and "1 (300 bytes) are pinned" in text
        and "0 freed objects" in text
    )
    assert "200 bytes are freed segments kept for reuse" in text
    assert store.free_bytes == 1000 - 500 + 200


def test_an_object_made_again_never_gets_the_name_of_a_segment_still_pooled():
    """A retried task's result has the same id, and so the same name, as the first one;
    if that segment is still in the pool, the new one must be named otherwise, or the
    pool would later hand out (and unlink) a segment an object still lives in."""
    store = StoreAccounting(10_000, pool_limit=5_000)
    store.reserve(A, "seg-a", 1000, "o")
    assert store.free(A) == []  # pooled, under its name
    reservation, _ = store.reserve(A, "seg-a", 100, "o")  # too small to reuse the pooled one
    assert reservation.segment != "seg-a" and not reservation.reused
    assert sorted(store.all_segments()) == sorted(["seg-a", reservation.segment])
    store.reserve(B, "seg-b", 1000, "o")  # takes the pooled seg-a
    again, _ = store.reserve(A, "seg-a", 100, "o")  # A made once more: seg-a is B's now
    assert again.segment != "seg-a"


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from([A, B, C]), st.integers(1, 400), st.booleans())))
def test_no_two_live_objects_or_pooled_segments_share_a_name(steps):
    store = StoreAccounting(10_000, pool_limit=2_000)
    for object_id, size, free in steps:
        if free:
            store.free(object_id)
        else:
            store.reserve(object_id, "seg-" + object_id[:1].decode(), size, "o")
        names = store.all_segments()
        assert len(names) == len(set(names)), names


def test_a_pooled_segment_whose_file_vanished_is_dropped_not_handed_out():
    gone = {"seg-a"}
    store = StoreAccounting(10_000, pool_limit=5_000, exists=lambda name: name not in gone)
    store.reserve(A, "seg-a", 1000, "o")
    store.free(A)  # pooled; then its file disappears (unlinked behind the store's back)
    reservation, _ = store.reserve(B, "seg-b", 1000, "o")
    assert reservation == Reservation("seg-b", 1000, False)
    assert store.vanished == 1 and store.used == 1000
    assert sorted(store.all_segments()) == ["seg-b"]
