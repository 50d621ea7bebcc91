"""minray.runtime.scheduler.LeaseScheduler: resource accounting as a pure state machine."""

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    precondition,
    rule,
)

from minray.runtime.scheduler import UNIT, LeaseScheduler, from_units, to_units


def keys(granted):
    return [key for key, _ in granted]


# --- units ---------------------------------------------------------------------------


def test_amounts_are_counted_in_ten_thousandths():
    assert to_units(1) == UNIT
    assert to_units(0.5) == UNIT // 2
    assert to_units(0.1) * 3 == to_units(0.3)
    assert from_units(to_units(0.25)) == 0.25


def test_new_scheduler_has_everything_available():
    s = LeaseScheduler({"CPU": 4, "GPU": 2, "custom": 1.5})
    assert s.total_resources() == {"CPU": 4.0, "GPU": 2.0, "custom": 1.5}
    assert s.available_resources() == s.total_resources()
    assert s.pending() == 0


# --- fractional CPUs and ordering -----------------------------------------------------------


def test_two_half_cpu_requests_share_one_cpu():
    s = LeaseScheduler({"CPU": 1})
    s.submit("a", {"CPU": 0.5})
    s.submit("b", {"CPU": 0.5})
    s.submit("c", {"CPU": 0.5})
    granted = s.schedule()
    assert keys(granted) == ["a", "b"]
    assert granted[0][1].resources == {"CPU": UNIT // 2}
    assert s.available_resources() == {}
    assert s.pending() == 1


def test_ten_tenth_cpu_requests_fill_one_cpu_exactly():
    s = LeaseScheduler({"CPU": 1})
    for i in range(11):
        s.submit(i, {"CPU": 0.1})
    assert keys(s.schedule()) == list(range(10))
    assert s.available["CPU"] == 0


def test_requests_are_granted_in_arrival_order():
    s = LeaseScheduler({"CPU": 3})
    for key in ["z", "a", "m"]:
        s.submit(key, {"CPU": 1})
    assert keys(s.schedule()) == ["z", "a", "m"]


def test_a_request_that_does_not_fit_is_skipped_not_blocking_smaller_ones():
    s = LeaseScheduler({"CPU": 2})
    s.submit("small1", {"CPU": 1})
    s.submit("big", {"CPU": 2})
    s.submit("small2", {"CPU": 1})
    assert keys(s.schedule()) == ["small1", "small2"]
    assert s.pending() == 1  # "big" waits


def test_skipped_request_is_granted_once_resources_are_released():
    s = LeaseScheduler({"CPU": 2})
    s.submit("small", {"CPU": 1})
    s.submit("big", {"CPU": 2})
    [(_, small)] = s.schedule()
    assert s.schedule() == []
    s.release(small)
    assert keys(s.schedule()) == ["big"]


def test_request_needing_several_resources_waits_for_all_of_them():
    s = LeaseScheduler({"CPU": 2, "mem": 1})
    s.submit("a", {"CPU": 1, "mem": 1})
    s.submit("b", {"CPU": 1, "mem": 1})
    assert keys(s.schedule()) == ["a"]
    assert s.available_resources() == {"CPU": 1.0}


def test_zero_and_negative_amounts_are_ignored():
    s = LeaseScheduler({"CPU": 1})
    s.submit("a", {"CPU": 0, "other": -1})
    [(key, alloc)] = s.schedule()
    assert key == "a" and alloc.resources == {}


def test_cancelled_request_is_never_granted():
    s = LeaseScheduler({"CPU": 1})
    s.submit("a", {"CPU": 2})
    assert s.cancel("a") is True
    assert s.cancel("a") is False
    assert s.pending() == 0
    assert s.schedule() == []


# --- release, block, unblock --------------------------------------------------------------


def test_release_returns_resources_for_the_next_request():
    s = LeaseScheduler({"CPU": 1})
    s.submit("a", {"CPU": 1})
    s.submit("b", {"CPU": 1})
    [(_, a)] = s.schedule()
    assert s.schedule() == []
    s.release(a)
    assert s.available_resources() == {"CPU": 1.0}
    assert keys(s.schedule()) == ["b"]


def test_blocked_lease_lends_its_cpu_and_takes_it_back_when_unblocked():
    s = LeaseScheduler({"CPU": 1})
    s.submit("waiter", {"CPU": 1})
    s.submit("helper", {"CPU": 1})
    [(_, waiter)] = s.schedule()
    s.block(waiter)
    assert s.available_resources() == {"CPU": 1.0}
    [(_, helper)] = s.schedule()
    s.unblock(waiter)
    assert s.available["CPU"] == -UNIT  # oversubscribed for a while
    s.release(helper)
    s.release(waiter)
    assert s.available == s.total


def test_block_lends_only_the_cpu_not_other_resources():
    s = LeaseScheduler({"CPU": 1, "GPU": 1})
    s.submit("a", {"CPU": 1, "GPU": 1})
    [(_, alloc)] = s.schedule()
    s.block(alloc)
    assert s.available_resources() == {"CPU": 1.0}
    s.unblock(alloc)
    assert s.available_resources() == {}


# --- feasibility -----------------------------------------------------------------------


def test_missing_is_empty_for_a_feasible_request():
    s = LeaseScheduler({"CPU": 2, "GPU": 1})
    assert s.missing({"CPU": 2, "GPU": 1}) == {}
    assert s.missing({"CPU": 0.5, "GPU": 0.25}) == {}


def test_missing_names_resources_the_node_can_never_provide():
    s = LeaseScheduler({"CPU": 2})
    assert s.missing({"CPU": 3, "GPU": 1, "custom": 0.5}) == {"CPU": 3, "GPU": 1, "custom": 0.5}


def test_missing_ignores_currently_used_resources():
    s = LeaseScheduler({"CPU": 1})
    s.submit("a", {"CPU": 1})
    s.schedule()
    assert s.missing({"CPU": 1}) == {}


def test_more_than_one_gpu_must_be_a_whole_number():
    s = LeaseScheduler({"CPU": 1, "GPU": 4})
    assert s.missing({"GPU": 1.5}) == {"GPU": 1.5}
    assert s.missing({"GPU": 2.0}) == {}


# --- GPU ids ---------------------------------------------------------------------------


def test_whole_gpu_requests_get_distinct_gpu_ids():
    s = LeaseScheduler({"GPU": 3})
    s.submit("a", {"GPU": 2})
    s.submit("b", {"GPU": 1})
    s.submit("c", {"GPU": 1})
    granted = dict(s.schedule())
    assert set(granted) == {"a", "b"}
    assert granted["a"].gpu_id_list() == [0, 1]
    assert granted["b"].gpu_id_list() == [2]
    assert granted["a"].gpu_ids == ((0, UNIT), (1, UNIT))


def test_fractional_gpu_requests_share_a_gpu():
    s = LeaseScheduler({"GPU": 2})
    s.submit("a", {"GPU": 0.5})
    s.submit("b", {"GPU": 0.5})
    s.submit("c", {"GPU": 0.5})
    granted = dict(s.schedule())
    assert granted["a"].gpu_ids == ((0, UNIT // 2),)
    assert granted["b"].gpu_ids == ((0, UNIT // 2),)
    assert granted["c"].gpu_id_list() == [1]


def test_whole_gpu_request_skips_a_partly_used_gpu():
    s = LeaseScheduler({"GPU": 2})
    s.submit("part", {"GPU": 0.25})
    s.submit("whole", {"GPU": 1})
    s.submit("whole2", {"GPU": 1})
    granted = dict(s.schedule())
    assert granted["part"].gpu_id_list() == [0]
    assert granted["whole"].gpu_id_list() == [1]
    assert "whole2" not in granted  # 1.75 GPUs are free, but not one whole GPU


def test_fragmented_gpus_refuse_a_fraction_that_fits_no_single_gpu():
    s = LeaseScheduler({"GPU": 2})
    for key in ("a", "b"):
        s.submit(key, {"GPU": 0.7})
    s.schedule()
    s.submit("c", {"GPU": 0.6})  # 0.6 free in total, but only 0.3 on each GPU
    assert s.schedule() == []
    assert s.available["GPU"] == to_units(0.6)


def test_released_gpu_ids_can_be_handed_out_again():
    s = LeaseScheduler({"GPU": 1})
    s.submit("a", {"GPU": 1})
    [(_, a)] = s.schedule()
    s.submit("b", {"GPU": 0.5})
    assert s.schedule() == []
    s.release(a)
    [(_, b)] = s.schedule()
    assert b.gpu_ids == ((0, UNIT // 2),)


# --- properties ------------------------------------------------------------------------


TOTAL = {"CPU": 4, "GPU": 2, "mem": 1.5}
SHAPES = st.fixed_dictionaries(
    {},
    optional={
        "CPU": st.sampled_from([0, 0.1, 0.25, 0.5, 1, 2, 3]),
        "GPU": st.sampled_from([0, 0.1, 0.3, 0.5, 1, 2]),
        "mem": st.sampled_from([0.5, 1, 1.5]),
    },
)


class SchedulerMachine(RuleBasedStateMachine):
    """Random submit/cancel/schedule/block/unblock/release sequences keep the books straight."""

    leases = Bundle("leases")

    def __init__(self):
        super().__init__()
        self.s = LeaseScheduler(TOTAL)
        self.next_key = 0
        self.requests = {}
        self.blocked = set()
        self.held = {}  #: key -> Allocation of every granted, unreleased lease

    @rule(shape=SHAPES)
    def submit(self, shape):
        self.next_key += 1
        self.requests[self.next_key] = shape
        self.s.submit(self.next_key, shape)

    @precondition(lambda self: self.s.pending() > 0)
    @rule(data=st.data())
    def cancel(self, data):
        key = data.draw(st.sampled_from(sorted(self.s._queue)))
        assert self.s.cancel(key)

    @rule(target=leases)
    def schedule(self):
        granted = self.s.schedule()
        for key, alloc in granted:
            shape = {n: to_units(a) for n, a in self.requests.pop(key).items() if a > 0}
            assert alloc.resources == shape
            gpus = shape.get("GPU", 0)
            if gpus:
                assert sum(units for _, units in alloc.gpu_ids) == gpus
                assert len(set(alloc.gpu_id_list())) == len(alloc.gpu_ids)
            else:
                assert alloc.gpu_ids == ()
            self.held[key] = alloc
        return multiple_allocs(granted)

    @rule(lease=leases)
    def block(self, lease):
        if lease.key not in self.blocked:
            self.blocked.add(lease.key)
            self.s.block(lease.alloc)

    @rule(lease=leases)
    def unblock(self, lease):
        if lease.key in self.blocked:
            self.blocked.discard(lease.key)
            self.s.unblock(lease.alloc)

    @rule(lease=consumes(leases))
    def release(self, lease):
        if lease.key in self.blocked:  # the node unblocks a lease before releasing it
            self.blocked.discard(lease.key)
            self.s.unblock(lease.alloc)
        del self.held[lease.key]
        self.s.release(lease.alloc)

    @invariant()
    def available_is_total_minus_held_plus_lent(self):
        expected = dict(self.s.total)
        for key, alloc in self.held.items():
            for name, units in alloc.resources.items():
                expected[name] -= units
            if key in self.blocked:  # a blocked lease lends its CPU back
                expected["CPU"] += alloc.resources.get("CPU", 0)
        assert self.s.available == expected

    @invariant()
    def available_never_exceeds_total(self):
        for name, units in self.s.available.items():
            assert units <= self.s.total[name]
        for name in ("GPU", "mem"):
            assert self.s.available[name] >= 0  # only unblock may oversubscribe, and only CPU

    @invariant()
    def gpu_ids_match_gpu_accounting(self):
        free = self.s._gpu_free
        assert all(0 <= units <= UNIT for units in free.values())
        assert sum(free.values()) == self.s.available["GPU"]

    def teardown(self):
        # release everything still held: the books must balance exactly
        for key, alloc in self.held.items():
            if key in self.blocked:
                self.s.unblock(alloc)
            self.s.release(alloc)
        assert self.s.available == self.s.total
        assert all(units == UNIT for units in self.s._gpu_free.values())


class Lease:
    def __init__(self, key, alloc):
        self.key = key
        self.alloc = alloc

    def __repr__(self):
        return f"Lease({self.key})"


def multiple_allocs(granted):
    return multiple(*[Lease(key, alloc) for key, alloc in granted])


SchedulerMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=25, deadline=None
)
test_random_lease_sequences_keep_available_within_total = SchedulerMachine.TestCase


@pytest.mark.parametrize("amounts", [[0.5, 0.5], [0.1] * 10, [0.3, 0.3, 0.4], [0.25] * 4])
def test_releasing_every_fractional_grant_restores_exact_totals(amounts):
    s = LeaseScheduler({"CPU": 1})
    for i, amount in enumerate(amounts):
        s.submit(i, {"CPU": amount})
    granted = s.schedule()
    assert len(granted) == len(amounts)
    assert s.available["CPU"] == 0
    for _, alloc in granted:
        s.release(alloc)
    assert s.available == s.total


def test_reserving_takes_resources_all_or_nothing_and_adds_the_renamed_ones():
    s = LeaseScheduler({"CPU": 2})
    assert not s.reserve({"CPU": 3}, {"CPU_group_g": 3})
    assert s.available_resources() == {"CPU": 2.0}
    assert s.reserve({"CPU": 2}, {"CPU_group_g": 2})
    assert s.available_resources() == {"CPU_group_g": 2.0}
    s.submit("in-group", {"CPU_group_g": 1})
    ((key, alloc),) = s.schedule()
    s.unreserve({"CPU": 2}, {"CPU_group_g": 2})
    s.release(alloc)  # a lease of a removed group gives back nothing that no longer exists
    assert s.total_resources() == {"CPU": 2.0}
    assert s.available_resources() == {"CPU": 2.0}
