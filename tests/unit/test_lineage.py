"""The lineage table (runtime/lineage.py): which finished tasks an owner keeps, what it
releases, and when it lets them go."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from minray import ids
from minray.runtime.lineage import ENTRY_OVERHEAD, LineageTable


@dataclass
class Spec:
    task_id: bytes
    args_blob: bytes = b"x" * 10
    arg_ids: list = field(default_factory=list)

    def argument_ref_ids(self) -> list:
        return list(self.arg_ids)


def task(n: int) -> bytes:
    return n.to_bytes(ids.TASK_ID_SIZE, "little")


def result(n: int, index: int = 1) -> bytes:
    return ids.object_id_for(task(n), index)


def keep(table: LineageTable, n: int, args: list = (), in_use=None) -> tuple[list, list]:
    spec = Spec(task(n), arg_ids=list(args))
    return table.finished(spec, True, {result(n)} if in_use is None else in_use, list(args))


def test_a_task_with_a_result_in_use_is_kept_and_its_arguments_keep_their_counts():
    table = LineageTable(1 << 20)
    release, dropped = keep(table, 1, [b"put-object"])
    assert task(1) in table and release == [] and dropped == []
    assert table.used == 10 + ENTRY_OVERHEAD


def test_a_task_that_may_not_run_again_is_not_kept_and_says_why():
    table = LineageTable(1 << 20)
    spec = Spec(task(1), arg_ids=[b"a"])
    release, dropped = table.finished(spec, False, set(), [], "max_retries")
    assert task(1) not in table and release == []
    assert [d.spec for d in dropped] == [spec] and dropped[0].linked == []
    assert table.why_not_kept(task(1)) == "max_retries"


def test_a_kept_argument_is_linked_not_counted_and_lives_while_its_dependent_does():
    table = LineageTable(1 << 20)
    keep(table, 1)
    release, _ = keep(table, 2, [result(1)])
    assert release == [result(1)]  # its count goes: only its lineage is kept
    assert table.result_freed(result(1)) == []  # task 2 still depends on task 1
    assert task(1) in table
    dropped = table.result_freed(result(2))
    assert [d.spec.task_id for d in dropped] == [task(2), task(1)]
    assert dropped[0].linked == [result(1)]
    assert len(table) == 0 and table.used == 0


def test_over_the_budget_the_oldest_go_and_are_remembered_as_evicted():
    table = LineageTable(3 * (10 + ENTRY_OVERHEAD))
    for n in range(5):
        keep(table, n)
    assert [n for n in range(5) if task(n) in table] == [2, 3, 4]
    assert table.why_not_kept(task(0)) == "evicted"
    assert table.used <= table.budget


def test_a_rerun_that_succeeds_stays_kept_and_releases_only_its_linked_arguments():
    table = LineageTable(1 << 20)
    keep(table, 1)
    keep(table, 2, [result(1), b"small"])
    kept = table.start_rerun(task(2), [result(2)])
    assert kept.running and kept.linked == [result(1)]
    assert table.result_freed(result(2)) == []  # running: not let go
    release, dropped = table.finished(kept.spec, True, {result(2)}, [result(1), b"small"])
    assert release == [result(1)] and dropped == [] and task(2) in table


def test_a_rerun_that_fails_lets_the_task_go():
    table = LineageTable(1 << 20)
    keep(table, 1)
    keep(table, 2, [result(1)])
    kept = table.start_rerun(task(2), [result(2)])
    release, dropped = table.finished(kept.spec, False, set(), [result(1)])
    assert release == [result(1)]
    assert [d.spec.task_id for d in dropped] == [task(2)]
    assert task(1) in table  # its own result is still in use


def test_a_running_task_is_not_evicted():
    table = LineageTable(2 * (10 + ENTRY_OVERHEAD))
    keep(table, 1)
    table.start_rerun(task(1), [result(1)])
    keep(table, 2)
    keep(table, 3)
    assert task(1) in table and task(2) not in table


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["keep", "free"]), st.integers(0, 11), st.integers(0, 11)),
        max_size=60,
    ),
    st.integers(1, 8),
)
def test_bytes_and_dependents_stay_consistent_whatever_happens(steps, budget_entries):
    """Kept tasks form chains (task n may take task m < n's result); whatever is kept or
    freed, the bytes used match the kept entries, and every dependent count matches."""
    table = LineageTable(budget_entries * (10 + ENTRY_OVERHEAD))
    finished: set = set()
    for op, n, m in steps:
        if op == "keep" and n not in finished:
            finished.add(n)
            args = [result(m)] if m < n else []
            keep(table, n, args)
        elif op == "free":
            table.result_freed(result(n))
        kept = {tid: table.get(tid) for tid in (task(k) for k in range(12)) if tid in table}
        assert table.used == sum(k.size for k in kept.values())
        assert table.used <= table.budget or all(k.running for k in kept.values())
        for tid, k in kept.items():
            dependents = sum(
                1 for other in kept.values() for a in other.linked if a[: ids.TASK_ID_SIZE] == tid
            )
            assert k.dependents == dependents
            assert k.live or k.dependents or k.running
