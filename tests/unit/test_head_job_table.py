"""minray.head.job_table: one job per driver, ended by its disconnect or its node's death."""

from minray.head.job_table import JobTable

A, B = b"a" * 28, b"b" * 28


def test_each_driver_gets_the_next_job_id_in_rays_format():
    table = JobTable()
    first = table.add(A, {"pid": 10, "address": "10.0.0.1"}, now=100.0)
    second = table.add(B, {"pid": 11}, now=101.0)
    assert first.hex() == "01000000" and second.hex() == "02000000"
    row = table.describe()[0]
    assert row["JobID"] == "01000000" and row["DriverPid"] == 10
    assert row["DriverIPAddress"] == "10.0.0.1" and row["StartTime"] == 100_000
    assert row["IsDead"] is False and row["EndTime"] == 0


def test_a_job_ends_once_when_its_driver_goes():
    table = JobTable()
    job = table.add(A, {}, now=1.0)
    assert table.finish(job, now=2.5)
    assert not table.finish(job, now=3.0)
    assert not table.finish(b"\x09\x00\x00\x00", now=3.0)
    row = table.describe()[0]
    assert row["IsDead"] and row["EndTime"] == 2500


def test_the_death_of_a_node_ends_the_jobs_of_drivers_connected_through_it():
    table = JobTable()
    on_a = [table.add(A, {}, now=1.0) for _ in range(2)]
    on_b = table.add(B, {}, now=1.0)
    assert table.node_died(A, now=5.0) == on_a
    assert [r["IsDead"] for r in table.describe()] == [True, True, False]
    assert table.jobs[on_b].is_dead is False


def test_finished_jobs_are_kept_up_to_a_bound_and_running_ones_always():
    table = JobTable(keep_finished=2)
    running = table.add(A, {}, now=0.0)
    for _ in range(5):
        table.finish(table.add(A, {}, now=0.0), now=1.0)
    assert len(table.jobs) == 3 and running in table.jobs
    assert table.add(A, {}, now=2.0).hex() == "07000000"  # ids are never reused
