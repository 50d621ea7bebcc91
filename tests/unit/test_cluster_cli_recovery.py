"""Which dead head ``minray start --head`` recovers (cluster_cli.crashed_head)."""

from __future__ import annotations

import os

from minray.cluster_cli import crashed_head


def session(tmp_path, name: str, tables: bool) -> str:
    path = tmp_path / name
    path.mkdir()
    if tables:
        (path / "head.sqlite3").write_bytes(b"")
    return str(path)


def head(pid: int, session_dir: str, port: int = 6380, host: str = "127.0.0.1") -> dict:
    return {"pid": pid, "session_dir": session_dir, "role": "head", "host": host, "port": port}


def test_the_dead_head_on_the_same_address_that_left_its_tables_is_recovered(tmp_path):
    dead = ("a.json", head(1, session(tmp_path, "a", True)))
    assert crashed_head([dead], "127.0.0.1", 6380, lambda pid: False) == dead


def test_a_running_head_another_address_or_no_tables_is_not_recovered(tmp_path):
    records = [
        ("a.json", head(1, session(tmp_path, "a", True))),  # still running
        ("b.json", head(2, session(tmp_path, "b", True), port=7000)),
        ("c.json", head(3, session(tmp_path, "c", True), host="127.0.0.2")),
        ("d.json", head(4, session(tmp_path, "d", False))),  # stopped: its tables went
        ("e.json", {**head(5, session(tmp_path, "e", True)), "role": "node"}),
        ("f.json", {"pid": 6, "session_dir": session(tmp_path, "f", True), "role": "head"}),
    ]
    assert crashed_head(records, "127.0.0.1", 6380, lambda pid: pid == 1) is None


def test_of_several_dead_heads_the_one_that_wrote_last_is_recovered(tmp_path):
    old = ("a.json", head(1, session(tmp_path, "a", True)))
    new = ("b.json", head(2, session(tmp_path, "b", True)))
    os.utime(os.path.join(old[1]["session_dir"], "head.sqlite3"), (1, 1))
    assert crashed_head([new, old], "127.0.0.1", 6380, lambda pid: False) == new
