"""minray.runtime.stacks (pure) and the sampler thread of runtime/stack_sampling.py."""

from __future__ import annotations

import sys
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minray.runtime.stack_sampling import sample_stacks, thread_names
from minray.runtime.stacks import (
    MAX_DEPTH,
    Folder,
    fold,
    folded_text,
    format_dump,
    frame_label,
    frames_of,
    from_rows,
    merge,
    parse_folded,
    profile_problem,
    short_path,
    snapshot,
)

labels = st.text(
    alphabet=st.characters(blacklist_characters=";\n\r", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
).filter(lambda s: s.strip() == s and " " not in s)
stacks = st.lists(st.lists(labels, min_size=1, max_size=5).map(tuple), max_size=40)


# --- folding ------------------------------------------------------------------------------


@given(stacks)
def test_folding_counts_every_stack_once_per_occurrence(samples):
    counts = fold(samples)
    assert sum(counts.values()) == len(samples)
    for stack, count in counts.items():
        assert count == samples.count(stack)


@given(stacks, stacks)
def test_folding_two_halves_and_merging_is_folding_the_whole(first, second):
    assert merge(fold(first), fold(second)) == fold(first + second)


@given(stacks)
def test_folding_does_not_depend_on_the_order_of_samples(samples):
    assert fold(samples) == fold(list(reversed(samples)))


@given(stacks)
def test_folded_text_reads_back_as_the_same_counts(samples):
    counts = fold(samples)
    assert parse_folded(folded_text(counts)) == counts


@given(stacks)
def test_a_profile_message_carries_the_folding_unchanged(samples):
    folder = Folder()
    for name, *frames in samples:
        folder.add([(name, 1, [("/d/f.py", 1, frame) for frame in frames])])
    assert folder.samples == len(samples)
    assert from_rows(folder.rows()) == folder.counts
    assert sum(folder.counts.values()) == len(samples)


def test_a_semicolon_in_a_label_cannot_split_a_frame_in_folded_text():
    text = folded_text({("thread main", "f (a;b.py:1)"): 2})
    assert text == "thread main;f (a b.py:1) 2\n"
    with pytest.raises(ValueError, match="line 1"):
        parse_folded("no count here")


def test_the_folder_counts_each_thread_of_a_snapshot_under_its_name():
    folder = Folder()
    frames = [("/x/app.py", 3, "main"), ("/x/app.py", 9, "work")]
    for _ in range(3):
        folder.add([("MainThread", 1, frames), ("minray-loop", 2, frames[:1])])
    assert folder.samples == 3
    assert folder.counts == {
        ("thread MainThread", "main (x/app.py:3)", "work (x/app.py:9)"): 3,
        ("thread minray-loop", "main (x/app.py:3)"): 3,
    }


def test_labels_name_the_function_and_the_last_two_parts_of_the_path():
    assert short_path("/usr/lib/python3.11/threading.py") == "python3.11/threading.py"
    assert short_path("app.py") == "app.py"
    assert frame_label(("/a/b/c.py", 7, "f")) == "f (b/c.py:7)"


# --- snapshots and dumps ------------------------------------------------------------------


def here():
    return sys._getframe()


def test_frames_run_outermost_first_and_end_at_the_frame_given():
    frames = frames_of(here())
    assert frames[-1][2] == "here" and frames[-2][2] == (
        "test_frames_run_outermost_first_and_end_at_the_frame_given"
    )
    assert frames[-1][0] == __file__


def test_frames_of_a_very_deep_stack_are_cut():
    def deep(n):
        return deep(n - 1) if n else sys._getframe()

    assert len(frames_of(deep(MAX_DEPTH + 50))) == MAX_DEPTH


def test_a_snapshot_puts_the_main_thread_first_and_leaves_out_excluded_threads():
    current = sys._current_frames()
    me = threading.get_ident()
    threads = snapshot(current, {me: "MainThread", 99: "other"}, exclude=())
    assert threads[0][0] == "MainThread" and threads[0][1] == me
    assert snapshot(current, {}, exclude=current.keys()) == []


def test_the_dump_reads_like_a_traceback_innermost_last():
    text = format_dump([("MainThread", 7, [("a.py", 1, "outer"), ("b.py", 2, "inner")]),
                        ("idle", 8, [])])  # fmt: skip
    assert text.splitlines() == [
        'Thread 7 "MainThread" (most recent call last):',
        '  File "a.py", line 1, in outer',
        '  File "b.py", line 2, in inner',
        "",
        'Thread 8 "idle" (most recent call last):',
        "  (no Python frames)",
    ]


@pytest.mark.parametrize(
    ("duration", "rate", "problem"),
    [(1.0, 100, ""), (0.1, 1, ""), (60, 1000, ""), (0.0, 100, "duration"),
     (61, 100, "duration"), (float("nan"), 100, "duration"), ("5", 100, "duration"),
     (1.0, 0, "rate"), (1.0, 1001, "rate"), (1.0, 2.5, "rate"), (True, 100, "duration"),
     (1.0, True, "rate")],
)  # fmt: skip
def test_a_profile_out_of_bounds_is_refused_saying_which_bound(duration, rate, problem):
    said = profile_problem(duration, rate)
    assert (said == "") == (problem == "") and problem in said


# --- the sampler thread -------------------------------------------------------------------


def spin_here(stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():  # pure Python: holds the GIL but for the switch interval
        n += 1


def test_the_sampler_sees_a_thread_busy_in_pure_python_about_rate_times_a_second():
    stop = threading.Event()
    busy = threading.Thread(target=spin_here, args=(stop,), name="busy", daemon=True)
    busy.start()
    sampled: list = []
    sampler = threading.Thread(
        target=lambda: sampled.append(sample_stacks(0.5, 100, threading.Event())),
        name="minray-profiler",
    )
    try:
        sampler.start()
        sampler.join(10)
    finally:
        stop.set()
        busy.join(10)
    ((folder, seconds),) = sampled
    assert 0.5 <= seconds < 1.5
    assert 25 <= folder.samples <= 75  # 50 expected
    in_spin = sum(c for s, c in folder.counts.items() if s[0] == "thread busy"
                  and any(f.startswith("spin_here") for f in s))  # fmt: skip
    assert in_spin >= folder.samples * 0.8
    assert not any(s[0] == "thread minray-profiler" for s in folder.counts)  # not itself
    assert "busy" not in thread_names().values()


def test_the_sampler_stops_early_when_told():
    stop = threading.Event()
    stop.set()
    start = time.monotonic()
    folder, seconds = sample_stacks(30, 100, stop)
    assert folder.samples == 1 and seconds < 1 and time.monotonic() - start < 1
