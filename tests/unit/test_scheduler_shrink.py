"""minray.runtime.scheduler.LeaseScheduler.shrink: an actor gives back all but what it holds."""

from hypothesis import given
from hypothesis import strategies as st

from minray.runtime.scheduler import UNIT, Allocation, LeaseScheduler, to_units


def grant(s, shape, key="lease"):
    s.submit(key, shape)
    [(granted_key, alloc)] = s.schedule()
    assert granted_key == key
    return alloc


def test_shrinking_to_nothing_gives_everything_back():
    s = LeaseScheduler({"CPU": 2, "GPU": 1, "A": 1})
    alloc = grant(s, {"CPU": 1, "GPU": 1, "A": 0.5})
    assert s.shrink(alloc, {}) == Allocation({}, ())
    assert s.available == s.total
    assert s._gpu_free == {0: UNIT}


def test_actor_placed_with_one_cpu_holds_none_and_frees_the_cpu():
    s = LeaseScheduler({"CPU": 1})
    alloc = grant(s, {"CPU": 1})
    s.submit("next", {"CPU": 1})
    assert s.schedule() == []
    assert s.shrink(alloc, {}) == Allocation({}, ())
    assert [key for key, _ in s.schedule()] == ["next"]


def test_shrink_keeps_only_what_is_asked_and_returns_the_rest():
    s = LeaseScheduler({"CPU": 4, "A": 2})
    alloc = grant(s, {"CPU": 3, "A": 2})
    kept = s.shrink(alloc, {"CPU": 0.5})
    assert kept == Allocation({"CPU": to_units(0.5)}, ())
    assert s.available_resources() == {"CPU": 3.5, "A": 2.0}


def test_keeping_everything_changes_nothing():
    s = LeaseScheduler({"CPU": 2, "GPU": 2})
    alloc = grant(s, {"CPU": 2, "GPU": 1})
    before = dict(s.available)
    assert s.shrink(alloc, {"CPU": 2, "GPU": 1}) == alloc
    assert s.available == before


def test_keep_is_capped_at_what_the_allocation_had():
    s = LeaseScheduler({"CPU": 4})
    alloc = grant(s, {"CPU": 1})
    assert s.shrink(alloc, {"CPU": 3, "B": 1}) == Allocation({"CPU": UNIT}, ())
    assert s.available_resources() == {"CPU": 3.0}


def test_shrink_returns_a_new_allocation_and_leaves_the_old_one_alone():
    s = LeaseScheduler({"CPU": 2})
    alloc = grant(s, {"CPU": 2})
    s.shrink(alloc, {"CPU": 1})
    assert alloc == Allocation({"CPU": 2 * UNIT}, ())


def test_releasing_the_shrunk_allocation_restores_the_totals():
    s = LeaseScheduler({"CPU": 2, "GPU": 1})
    kept = s.shrink(grant(s, {"CPU": 2, "GPU": 1}), {"GPU": 1})
    s.release(kept)
    assert s.available == s.total
    assert s._gpu_free == {0: UNIT}


# --- GPU ids ---------------------------------------------------------------------------


def test_gpu_ids_stay_with_the_allocation_when_the_gpu_is_kept():
    s = LeaseScheduler({"CPU": 1, "GPU": 1})
    alloc = grant(s, {"CPU": 1, "GPU": 1})
    kept = s.shrink(alloc, {"GPU": 1})
    assert kept == Allocation({"GPU": UNIT}, ((0, UNIT),))
    s.submit("other", {"GPU": 0.5})
    assert s.schedule() == []


def test_gpu_ids_are_dropped_when_the_gpu_is_not_kept():
    s = LeaseScheduler({"CPU": 2, "GPU": 2})
    alloc = grant(s, {"CPU": 1, "GPU": 2})
    kept = s.shrink(alloc, {"CPU": 1})
    assert kept == Allocation({"CPU": UNIT}, ())
    assert kept.gpu_id_list() == []
    assert s._gpu_free == {0: UNIT, 1: UNIT}


def test_a_released_gpu_can_be_handed_out_again():
    s = LeaseScheduler({"CPU": 1, "GPU": 1})
    s.shrink(grant(s, {"CPU": 1, "GPU": 1}), {"CPU": 1})
    other = grant(s, {"GPU": 1}, key="other")
    assert other.gpu_id_list() == [0]


def test_a_released_fractional_gpu_share_can_be_handed_out_again():
    s = LeaseScheduler({"GPU": 1})
    first = grant(s, {"GPU": 0.5}, key="first")
    s.shrink(grant(s, {"GPU": 0.5}, key="second"), {})
    assert grant(s, {"GPU": 0.5}, key="third").gpu_ids == ((0, UNIT // 2),)
    assert first.gpu_ids == ((0, UNIT // 2),)


def test_keeping_one_of_two_gpus_frees_the_other_gpu_id():
    s = LeaseScheduler({"GPU": 2})
    kept = s.shrink(grant(s, {"GPU": 2}), {"GPU": 1})
    assert s.available_resources() == {"GPU": 1.0}
    assert len(kept.gpu_ids) == 1
    assert sum(s._gpu_free.values()) == s.available["GPU"]
    assert grant(s, {"GPU": 1}, key="other").gpu_id_list() != kept.gpu_id_list()


# --- properties ------------------------------------------------------------------------

AMOUNTS = st.sampled_from([0.25, 0.5, 0.75, 1, 1.25, 2])
TOTAL = {"CPU": 4, "GPU": 2, "mem": 3, "A": 2.5}


@st.composite
def shapes_and_keeps(draw):
    shape = draw(
        st.fixed_dictionaries(
            {"CPU": AMOUNTS},
            optional={
                "GPU": st.sampled_from([0.25, 0.5, 1, 2]),
                "mem": AMOUNTS,
                "A": AMOUNTS,
            },
        )
    )
    keep = {}
    for name, amount in shape.items():
        if name == "GPU":
            if draw(st.booleans()):
                keep[name] = amount
        else:
            keep[name] = draw(st.sampled_from([0, 0.25, 0.5, amount, amount + 1]))
    return shape, keep


@given(shapes_and_keeps())
def test_shrink_returns_exactly_what_is_not_kept(shape_and_keep):
    shape, keep = shape_and_keep
    s = LeaseScheduler(TOTAL)
    alloc = grant(s, shape)
    kept = s.shrink(alloc, keep)
    expected = {n: min(to_units(a), to_units(keep.get(n, 0))) for n, a in shape.items()}
    assert kept.resources == {n: u for n, u in expected.items() if u}
    assert s.available == {n: s.total[n] - kept.resources.get(n, 0) for n in s.total}
    assert kept.gpu_ids == (alloc.gpu_ids if "GPU" in kept.resources else ())
    assert sum(s._gpu_free.values()) == s.available["GPU"]
    s.release(kept)
    assert s.available == s.total
    assert all(units == UNIT for units in s._gpu_free.values())


@given(st.lists(shapes_and_keeps(), min_size=1, max_size=4))
def test_shrinking_several_leases_then_releasing_them_restores_exact_totals(leases):
    s = LeaseScheduler({name: 10 * amount for name, amount in TOTAL.items()})
    kept = [s.shrink(grant(s, shape, key=i), keep) for i, (shape, keep) in enumerate(leases)]
    held = {n: sum(k.resources.get(n, 0) for k in kept) for n in s.total}
    assert s.available == {n: s.total[n] - held[n] for n in s.total}
    for allocation in kept:
        s.release(allocation)
    assert s.available == s.total
    assert all(units == UNIT for units in s._gpu_free.values())
