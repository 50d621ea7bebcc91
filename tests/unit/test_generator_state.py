"""The owner's record of a generator task's items (runtime/generator_state.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minray.runtime.generator_state import Next, StreamState


def test_items_are_handed_out_in_index_order_whatever_order_they_arrive_in():
    state = StreamState()
    assert state.arrive(1, "b") and state.arrive(0, "a")
    assert state.take() == (Next.ITEM, "a")
    assert state.take() == (Next.ITEM, "b")
    assert state.take() == (Next.WAIT, None)


def test_a_finished_task_stops_after_its_last_item():
    state = StreamState()
    state.arrive(0, "a")
    state.end(failed=False)
    assert state.take() == (Next.ITEM, "a")
    assert state.take() == (Next.STOP, None)
    assert state.finished()


def test_a_failed_task_hands_out_its_error_once_then_stops():
    state = StreamState()
    state.arrive(0, "a")
    state.end(failed=True)
    assert state.take()[0] is Next.ITEM
    assert not state.finished()
    assert state.take() == (Next.ERROR, None)
    assert state.take() == (Next.STOP, None)


def test_an_item_reported_again_by_a_retry_is_refused():
    state = StreamState()
    assert state.arrive(0, "a")
    assert not state.arrive(0, "a again")
    state.take()
    assert not state.arrive(0, "a once more")
    assert state.arrive(1, "b")


def test_a_closed_stream_refuses_items_and_returns_the_untaken_ones():
    state = StreamState()
    state.arrive(0, "a")
    state.arrive(1, "b")
    state.take()
    assert state.close() == ["b"]
    assert not state.arrive(2, "c")


def test_backpressure_holds_answers_until_enough_is_taken():
    state = StreamState(threshold=2)
    assert state.answer_now(0)  # 1 untaken < 2
    state.arrive(0, "a")
    state.arrive(1, "b")
    assert not state.answer_now(1)  # 2 untaken
    state.hold(1, "answer of 1")
    assert state.release() == []
    state.take()
    assert state.release() == ["answer of 1"]


def test_closing_releases_every_held_answer():
    state = StreamState(threshold=1)
    state.arrive(0, "a")
    state.hold(0, "answer")
    state.close()
    assert state.release() == ["answer"]


@pytest.mark.parametrize("threshold", [0, -2])
def test_a_threshold_must_be_positive_or_minus_one(threshold):
    with pytest.raises(ValueError):
        StreamState(threshold)


@given(
    order=st.permutations(list(range(8))),
    duplicates=st.lists(st.integers(0, 7), max_size=8),
    takes=st.lists(st.booleans(), max_size=30),
    failed=st.booleans(),
)
def test_every_item_is_handed_out_exactly_once_in_order(order, duplicates, takes, failed):
    state = StreamState()
    out = []
    pending = list(order) + duplicates
    for take in takes:
        if take:
            what, item = state.take()
            if what is Next.ITEM:
                out.append(item)
        elif pending:
            index = pending.pop(0)
            state.arrive(index, index)
    for index in pending:
        state.arrive(index, index)
    state.end(failed)
    while True:
        what, item = state.take()
        if what is Next.ITEM:
            out.append(item)
        elif what is Next.STOP:
            break
    assert out == sorted(set(out)) == list(range(8))


@given(threshold=st.integers(1, 5), steps=st.lists(st.booleans(), max_size=40))
def test_with_backpressure_a_worker_never_gets_more_than_the_threshold_ahead(threshold, steps):
    """Model the worker: it reports items and waits for its last answer when told to."""
    state = StreamState(threshold)
    produced, answered, waiting_on = 0, set(), None
    for produce in steps:
        if produce and waiting_on is None:
            index = produced
            produced += 1
            state.arrive(index, index)
            if state.answer_now(index):
                answered.add(index)
            else:
                state.hold(index, index)
                waiting_on = index
        elif not produce:
            state.take()
            answered.update(state.release())
            if waiting_on in answered:
                waiting_on = None
        assert produced - state.taken <= threshold
