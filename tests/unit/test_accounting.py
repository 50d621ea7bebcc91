"""minray.object_store.accounting.StoreAccounting: capacity and ownership of segments."""

import pytest

from minray.exceptions import ObjectStoreFullError, RayError
from minray.object_store.accounting import SegmentInfo, StoreAccounting

A, B, C = b"a" * 28, b"b" * 28, b"c" * 28


def test_reservations_are_counted_against_capacity():
    store = StoreAccounting(1000)
    store.reserve(A, "seg-a", 300, "owner1")
    store.reserve(B, "seg-b", 200, "owner2")
    assert store.used == 500
    assert len(store) == 2
    assert sorted(store.all_segments()) == [
        SegmentInfo("seg-a", 300, "owner1"),
        SegmentInfo("seg-b", 200, "owner2"),
    ]


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


def test_an_object_larger_than_the_whole_store_is_refused():
    store = StoreAccounting(10)
    with pytest.raises(ObjectStoreFullError):
        store.reserve(A, "seg-a", 11, "o")


def test_reserving_an_object_again_keeps_used_equal_to_the_recorded_sizes():
    store = StoreAccounting(1000)
    store.reserve(A, "seg-a", 10, "o")
    try:
        store.reserve(A, "seg-a2", 30, "o")  # refusing or replacing are both fine
    except ValueError:
        pass
    assert store.used == sum(info.size for info in store.all_segments())
    store.free(A)
    assert store.used == 0


def test_free_returns_the_segment_and_its_room():
    store = StoreAccounting(1000)
    store.reserve(A, "seg-a", 1000, "o")
    assert store.free(A) == SegmentInfo("seg-a", 1000, "o")
    assert store.used == 0 and len(store) == 0
    store.reserve(B, "seg-b", 1000, "o")  # the room is usable again


def test_freeing_an_unknown_object_returns_none():
    store = StoreAccounting(1000)
    assert store.free(A) is None
    store.reserve(A, "seg-a", 5, "o")
    store.free(A)
    assert store.free(A) is None
    assert store.used == 0


def test_owner_gone_frees_only_that_owners_segments():
    store = StoreAccounting(1000)
    store.reserve(A, "seg-a", 100, "dead")
    store.reserve(B, "seg-b", 200, "alive")
    store.reserve(C, "seg-c", 300, "dead")
    gone = store.owner_gone("dead")
    assert sorted(gone) == [SegmentInfo("seg-a", 100, "dead"), SegmentInfo("seg-c", 300, "dead")]
    assert store.used == 200
    assert store.all_segments() == [SegmentInfo("seg-b", 200, "alive")]
    assert store.owner_gone("dead") == []


def test_zero_capacity_store_accepts_only_empty_objects():
    store = StoreAccounting(0)
    store.reserve(A, "seg-a", 0, "o")
    with pytest.raises(ObjectStoreFullError):
        store.reserve(B, "seg-b", 1, "o")
