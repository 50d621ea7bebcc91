"""The memory monitor's choice of worker, its reading of memory, and its settings."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minray import system_config
from minray.config import Config
from minray.node.memory_monitor import read_memory
from minray.node.oom_policy import (
    KILL_CREDIT_S,
    Candidate,
    MemoryReading,
    RecentKill,
    choose_victim,
    kill_message,
    over_threshold,
)

candidates = st.lists(
    st.builds(
        Candidate,
        pid=st.integers(1, 10_000),
        busy_since=st.floats(0, 1e6, allow_nan=False),
        retriable=st.booleans(),
        name=st.sampled_from(["f", "g", "Actor"]),
        is_actor=st.booleans(),
    ),
    max_size=12,
)


@given(candidates)
def test_the_victim_is_the_newest_retriable_worker_else_the_newest(pool):
    victim = choose_victim(pool)
    if not pool:
        assert victim is None
        return
    retriable = [c for c in pool if c.retriable]
    assert victim.retriable == bool(retriable)
    eligible = retriable or pool
    assert victim in eligible
    assert victim.busy_since == max(c.busy_since for c in eligible)


def test_an_older_retriable_task_goes_before_a_newer_one_that_may_not_run_again():
    old = Candidate(1, 10.0, True, "retriable")
    new = Candidate(2, 20.0, False, "precious")
    assert choose_victim([new, old]) is old
    assert choose_victim([new]) is new


@pytest.mark.parametrize(
    "used,total,threshold,expected",
    [(95, 100, 0.95, True), (94, 100, 0.95, False), (100, 100, 0, False), (5, 0, 0.5, False)],
)
def test_over_threshold(used, total, threshold, expected):
    assert over_threshold(MemoryReading(used, total), threshold) is expected


def test_the_message_names_the_task_the_node_the_use_and_the_biggest_workers():
    victim = Candidate(42, 1.0, False, "hog")
    reading = MemoryReading(int(9.5 * 2**30), 10 * 2**30)
    top = [(42, "hog", 3 * 2**30), (7, "Cache", 2**30)]
    message = kill_message(victim, reading, 0.9, "IP: 10.0.0.2, ID: ab12", top)
    assert "task hog (pid=42)" in message
    assert "IP: 10.0.0.2, ID: ab12" in message
    assert "9.50 GB / 10.00 GB (0.950)" in message and "threshold of 0.9" in message
    assert "42\t3.00\thog" in message and "7\t1.00\tCache" in message
    assert "none of the workers' work may run again" in message
    actor = kill_message(Candidate(7, 1.0, True, "Cache", is_actor=True), reading, 0.9, "n", [])
    assert actor.startswith("The actor Cache (pid=7)")


def test_read_memory_uses_a_cgroup_limit_below_the_machines_memory(tmp_path):
    (tmp_path / "memory.max").write_text("1073741824\n")
    (tmp_path / "memory.current").write_text(str(600 << 20))
    (tmp_path / "memory.stat").write_text(f"anon 1\ninactive_file {100 << 20}\nactive_file 3\n")
    reading = read_memory(str(tmp_path))
    assert (reading.used, reading.total) == (500 << 20, 1 << 30)
    assert reading.source == "the node's cgroup"


@pytest.mark.parametrize("limit", ["max\n", None])
def test_read_memory_without_a_cgroup_limit_reads_the_machine(tmp_path, limit):
    if limit is not None:
        (tmp_path / "memory.max").write_text(limit)
    reading = read_memory(str(tmp_path))
    assert reading.source == "the machine" and 0 < reading.used < reading.total


def test_rays_memory_monitor_keys_set_the_nodes_environment():
    env = system_config.node_environment(
        {"memory_usage_threshold": 0.5, "memory_monitor_refresh_ms": 100}
    )
    assert env["MINRAY_MEMORY_USAGE_THRESHOLD"] == "0.5"
    assert env["MINRAY_MEMORY_MONITOR_REFRESH_S"] == "0.1"
    off = system_config.node_environment({"memory_monitor_refresh_ms": 0})
    assert off["MINRAY_MEMORY_MONITOR_REFRESH_S"] == "0.0"


@pytest.mark.parametrize("bad", [1.5, -0.1, "high", True])
def test_a_memory_usage_threshold_that_is_not_a_share_is_refused(bad):
    with pytest.raises(ValueError, match="memory_usage_threshold"):
        system_config.node_environment({"memory_usage_threshold": bad})


def test_config_refuses_a_threshold_outside_0_to_1():
    with pytest.raises(ValueError, match="MINRAY_MEMORY_USAGE_THRESHOLD"):
        dataclasses.replace(Config(), memory_usage_threshold=2.0)
    assert dataclasses.replace(Config(), memory_usage_threshold=0.0).memory_usage_threshold == 0


# --- memory a kill freed, credited back until the kernel shows it -------------------------

GIB = 1 << 30


def test_a_kill_whose_memory_does_not_show_as_free_yet_is_credited_back():
    def kill():
        return RecentKill(used_before=10 * GIB, freed=3 * GIB, at=100.0)

    lagging = MemoryReading(10 * GIB, 16 * GIB)  # the kernel still counts the victim's pages
    assert kill().adjust(lagging, now=100.5).used == 7 * GIB
    half_shown = MemoryReading(8 * GIB, 16 * GIB)
    assert kill().adjust(half_shown, now=101.0).used == 7 * GIB
    all_shown = MemoryReading(7 * GIB, 16 * GIB)
    assert kill().adjust(all_shown, now=101.0).used == 7 * GIB
    assert kill().adjust(lagging, now=100.0 + KILL_CREDIT_S + 0.1) == lagging  # the credit ends


def test_memory_used_again_after_the_kill_showed_is_not_credited():
    kill = RecentKill(used_before=10 * GIB, freed=3 * GIB, at=100.0)
    assert kill.adjust(MemoryReading(7 * GIB, 16 * GIB), now=100.2).used == 7 * GIB  # shown
    regrown = MemoryReading(10 * GIB, 16 * GIB)  # another task allocates the same again
    assert kill.adjust(regrown, now=100.5).used == 10 * GIB


@given(
    before=st.integers(0, 64 * GIB),
    freed=st.integers(0, 64 * GIB),
    readings=st.lists(st.integers(0, 64 * GIB), min_size=1, max_size=5),
    grown=st.integers(0, 8 * GIB),
    elapsed=st.floats(0, 2 * KILL_CREDIT_S),
)
def test_the_credit_never_hides_more_than_the_victim_held_nor_new_growth(
    before, freed, readings, grown, elapsed
):
    kill = RecentKill(before, freed, at=0.0)
    credits: list[int] = []
    for used in readings:
        adjusted = kill.adjust(MemoryReading(used, 128 * GIB), now=elapsed)
        assert max(0, used - freed) <= adjusted.used <= used
        assert adjusted.total == 128 * GIB and adjusted.source == "the machine"
        credits.append(max(0, freed - max(0, before - min(readings[: len(credits) + 1]))))
        if elapsed > KILL_CREDIT_S:  # the credit has ended
            assert adjusted.used == used
        else:  # what it held, less what has shown as free since
            assert adjusted.used == max(0, used - credits[-1])
        if min(readings[: len(credits)]) <= before - freed:  # all it held has shown
            assert adjusted.used == used
    assert credits == sorted(credits, reverse=True)  # the credit only ever shrinks
    last = readings[-1]
    if last >= freed:  # (no reading goes below 0)
        bigger = kill.adjust(MemoryReading(last + grown, 128 * GIB), now=elapsed)
        again = kill.adjust(MemoryReading(last, 128 * GIB), now=elapsed)
        assert bigger.used - again.used == grown  # growth is never hidden
