"""The head's tables on disk (head/store.py) and a restarted head taking them back
(head/saved_tables.py), without processes: a dict model with hypothesis, and two
HeadServices, the second recovering what the first saved."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minray import __version__
from minray.head.saved_tables import unpack
from minray.head.service import PYTHON_VERSION, HeadService
from minray.head.store import TABLES, HeadStore, copy_store
from minray.protocol.messages import (
    ActorHome,
    AddJob,
    ClaimActor,
    CreatePlacementGroup,
    DetachedActor,
    GetPlacementGroups,
    KvRequest,
    RegisterNode,
    WhereIsActor,
)

from .test_head_placement_service import FakeNode

OLD_HEAD, NEW_HEAD, MEMBER = b"h" * 28, b"n" * 28, b"m" * 28

ops = st.lists(
    st.tuples(
        st.sampled_from(["put", "put_many", "delete", "flush"]),
        st.sampled_from(TABLES),
        st.binary(max_size=4),
        st.binary(max_size=64),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_what_was_written_reads_back_the_same_after_the_file_is_reopened(steps):
    model: dict[str, dict[bytes, bytes]] = {table: {} for table in TABLES}
    with tempfile.TemporaryDirectory() as where:
        path = os.path.join(where, "head.sqlite3")
        store = HeadStore(path)
        for op, table, key, value in steps:
            if op == "put":
                store.put(table, key, value)
                model[table][key] = value
            elif op == "put_many":
                store.put_many(table, [(key, value), (key + b"+", value)])
                model[table].update({key: value, key + b"+": value})
            elif op == "delete":
                store.delete(table, key)
                model[table].pop(key, None)
            else:
                store.flush()
            assert store.load(table) == model[table]  # queued changes show at once
        store.close()
        again = HeadStore(path)
        try:
            assert {table: again.load(table) for table in TABLES} == model
        finally:
            again.close()


def test_changes_of_one_batch_ask_for_one_flush(tmp_path):
    asked = []
    store = HeadStore(str(tmp_path / "head.sqlite3"), on_dirty=lambda: asked.append(1))
    store.put("kv", b"a", b"1")
    store.put("kv", b"b", b"2")
    store.delete("kv", b"a")
    assert asked == [1]
    store.flush()
    store.put("jobs", b"j", b"x")
    assert asked == [1, 1]
    store.close()
    assert os.stat(tmp_path / "head.sqlite3").st_mode & 0o777 == 0o600


def test_an_unknown_table_is_refused_by_name(tmp_path):
    store = HeadStore(str(tmp_path / "head.sqlite3"))
    with pytest.raises(ValueError, match="no head table 'users'; the tables are kv, actors"):
        store.put("users", b"k", b"v")
    store.close()


def test_the_file_of_a_head_that_never_closed_it_is_copied_with_its_last_commits(tmp_path):
    store = HeadStore(str(tmp_path / "dead.sqlite3"))
    store.put("kv", b"k", b"v")
    store.flush()  # committed to the WAL; the process "dies" without closing
    copy_store(str(tmp_path / "dead.sqlite3"), str(tmp_path / "new.sqlite3"))
    store.close()
    again = HeadStore(str(tmp_path / "new.sqlite3"))
    assert again.load("kv") == {b"k": b"v"}
    again.close()
    with pytest.raises(FileNotFoundError, match="no head tables to recover"):
        copy_store(str(tmp_path / "none.sqlite3"), str(tmp_path / "other.sqlite3"))


class FakeConn:
    def __init__(self):
        self.info: dict = {}
        self.close_callbacks: list = []
        self.sent: list = []

    def send(self, msg):
        self.sent.append(msg)

    def send_frame(self, frame):
        pass

    def close(self):
        pass


class HeadNode(FakeNode):
    """The head's own node: takes in the detached actors of a dead home."""

    def __init__(self, cpus: float):
        super().__init__(cpus)
        self.taken_in: list[DetachedActor] = []

    def handle_DetachedActor(self, conn, msg):
        self.taken_in.append(msg)


def head(node_id: bytes, node: FakeNode) -> HeadService:
    def local_info():
        cpus = {"CPU": 1.0}
        return {
            "NodeID": node_id.hex(),
            "AvailableResources": cpus,
            "RayletSocketName": "unix:/x",
            "Resources": cpus,
        }

    service = HeadService(node_id, local_info, 10.0)
    service.local_node = node
    service.local_resources = lambda: ({"CPU": 1.0}, {"CPU": node.free})
    return service


async def test_a_restarted_head_takes_back_what_the_dead_one_saved(tmp_path):
    old = head(OLD_HEAD, HeadNode(1))
    old.open_store(str(tmp_path / "old.sqlite3"))
    register = RegisterNode(MEMBER, "tcp:m:1", {"CPU": 2.0}, {"NodeID": MEMBER.hex()},
                            __version__, PYTHON_VERSION)  # fmt: skip
    old.handle_RegisterNode(FakeConn(), register)
    old.handle_KvRequest(None, KvRequest("put", b"ns", b"key", b"value", True))
    old.handle_ClaimActor(None, ClaimActor(b"a" * 16, MEMBER, "named", "ns", False))
    old.handle_ClaimActor(None, ClaimActor(b"d" * 16, OLD_HEAD, "kept", "ns", False))
    kept = DetachedActor(b"d" * 16, "kept", "ns", "Counter", 1, b"handle", b"creation")
    old.handle_DetachedActor(None, kept)
    old.handle_ClaimActor(None, ClaimActor(b"x" * 16, OLD_HEAD, "lost", "ns", False))
    member_job = old.handle_AddJob(None, AddJob(MEMBER, {"pid": 1})).job_id
    head_job = old.handle_AddJob(None, AddJob(OLD_HEAD, {"pid": 2})).job_id
    group = CreatePlacementGroup(b"g" * 18, "group", "ns", [{"CPU": 1}], "PACK", True)
    old.handle_CreatePlacementGroup(None, group)
    await asyncio.sleep(0)  # the batch is written at the end of the loop iteration
    # the old head's process dies here: its file is left as it was

    node = HeadNode(1)
    new = head(NEW_HEAD, node)
    summary = new.open_store(str(tmp_path / "new.sqlite3"), str(tmp_path / "old.sqlite3"))
    assert "1 member node(s)" in summary and "3 actor(s)" in summary
    assert (
        new.handle_KvRequest(None, KvRequest("get", b"ns", b"key", b"", False)).result == b"value"
    )
    found = new.handle_WhereIsActor(None, WhereIsActor(b"", "named", "ns"))
    assert found == ActorHome(b"a" * 16, MEMBER, True)  # alive, until its grace ends
    assert [a.actor_id for a in node.taken_in] == [b"d" * 16]  # the new head node's now
    assert new.actor_homes.named("kept", "ns") == (b"d" * 16, NEW_HEAD)
    assert new.actor_homes.named("lost", "ns") is None  # went with the old head's node
    jobs = {j["JobID"]: j["IsDead"] for j in new.handle_GetJobs(None, None).jobs}
    assert jobs == {member_job.hex(): False, head_job.hex(): True}
    assert new.handle_AddJob(None, AddJob(MEMBER, {})).job_id == (3).to_bytes(4, "little")
    nodes = {n["NodeID"]: n for n in new.nodes_info()}
    assert nodes[MEMBER.hex()]["Alive"] and not nodes[OLD_HEAD.hex()]["Alive"]
    assert nodes[MEMBER.hex()]["AvailableResources"] == {}  # nothing free until it reports
    groups = new.handle_GetPlacementGroups(None, GetPlacementGroups(b"", "group", "ns")).groups
    assert groups[0]["state"] in ("CREATED", "RESCHEDULING")  # its bundle was on the old head
    new.close()
    old.close()
    db = sqlite3.connect(tmp_path / "new.sqlite3")
    saved_head = unpack(db.execute("SELECT v FROM meta").fetchone()[0])
    db.close()
    assert saved_head[0] == NEW_HEAD


async def test_a_returning_node_corrects_the_actors_it_is_home_to(tmp_path):
    service = head(OLD_HEAD, HeadNode(1))
    service.open_store(str(tmp_path / "head.sqlite3"))
    conn = FakeConn()
    first = RegisterNode(MEMBER, "tcp:m:1", {"CPU": 2.0}, {}, __version__, PYTHON_VERSION)
    service.handle_RegisterNode(conn, first)
    service.handle_ClaimActor(None, ClaimActor(b"a" * 16, MEMBER, "gone", "ns", False))
    again = RegisterNode(MEMBER, "tcp:m:1", {"CPU": 2.0}, {}, __version__, PYTHON_VERSION,
                         [[b"b" * 16, "ns", "new"]])  # fmt: skip
    service.handle_RegisterNode(FakeConn(), again)
    assert service.actor_homes.named("gone", "ns") is None  # its ActorGone was lost
    assert service.actor_homes.named("new", "ns") == (b"b" * 16, MEMBER)
    service.close()


def test_a_damaged_file_is_refused_saying_how_to_start_empty(tmp_path):
    (tmp_path / "old.sqlite3").write_bytes(b"not a database, just bytes" * 100)
    service = head(NEW_HEAD, HeadNode(1))
    with pytest.raises(RuntimeError, match="cannot be read .* --fresh"):
        service.open_store(str(tmp_path / "new.sqlite3"), str(tmp_path / "old.sqlite3"))
