"""Why a task waits: the node's decision and words (node/pending_reasons.py,
node/pending_notices.py), the owner's queue reasons (runtime/pending_reasons.py), the
head's table (head/task_table.py) and ``minray status``'s demand line; pure, no I/O."""

from __future__ import annotations

import collections
from types import SimpleNamespace

from minray.cluster_cli import demand_line
from minray.head.task_table import TaskTable
from minray.node import pending_reasons as words
from minray.node.pending_notices import PendingNotices
from minray.node.placement_groups import HeldBundles
from minray.node.spillback import pending_demands
from minray.runtime import pending_reasons as owner
from minray.runtime.scheduler import LeaseScheduler

T1 = b"\x01" * 24
ME = "unix:/tmp/owner.sock"


# --- the node's words --------------------------------------------------------------------------


def test_an_infeasible_reason_shows_the_shape_and_what_each_node_has_without_internal_names():
    text = words.infeasible(
        {"CPU": 1, "GPU": 1, "memory": 5, "bundle_group_ab": 0.001},
        [("127.0.0.1 (aa)", {"CPU": 2, "node:127.0.0.1": 1}), ("127.0.0.1 (bb)", {"x": 1})],
    )
    assert text.startswith("Infeasible: no node can ever fit {CPU: 1, GPU: 1}")
    assert "127.0.0.1 (aa): {CPU: 2}; 127.0.0.1 (bb): {x: 1}" in text


def test_holders_are_named_up_to_a_limit_and_the_rest_counted():
    holders = [f"task t{i} (worker pid {i})" for i in range(5)]
    assert words.holders_text(holders).endswith("task t2 (worker pid 2) and 2 more")
    assert words.holders_text(holders[:1]) == "task t0 (worker pid 0)"
    assert "nothing this node can name" in words.holders_text([])


def test_a_busy_reason_says_what_is_short_who_holds_it_and_the_position():
    where = words.place(1, 3, "CPU")
    text = words.busy("abc", {"CPU": 1, "x": 1}, ["CPU"], ["task hold (worker pid 9)"], where)
    assert text.startswith("Resources busy: it asks for {CPU: 1, x: 1}")
    assert "has no {CPU: 1} free, in use by task hold (worker pid 9)" in text
    assert text.endswith("position 1 of 3 in the node's queue for CPU.")


def test_a_group_reason_says_whether_it_is_placed_and_shows_the_shape_asked_for():
    assert "is not placed yet (it is PENDING: no node fits)" in words.group_not_placed(
        "ab", "PENDING", "no node fits"
    )
    shape = {"CPU_group_0_ab": 2, "bundle_group_0_ab": 0.001}
    text = words.group_busy(
        "ab", shape, ["task f (worker pid 3)"], words.place(2, 2, "CPU_group_0_ab")
    )
    assert "the {CPU: 2} it asks for is in use by task f" in text
    assert "position 2 of 2 in the node's queue for CPU." in text
    assert words.group_of(shape) == "ab" and words.group_of({"CPU": 1}) == ""


def test_short_of_names_only_what_is_not_free_enough():
    assert words.short_of({"CPU": 1, "GPU": 0.5}, {"CPU": 0.5, "GPU": 1}) == ["CPU"]
    assert words.short_of({"CPU": 1}, {"CPU": 1}) == []


# --- the node's decision -------------------------------------------------------------------


class FakeNode(PendingNotices):
    """What the reason pass reads of a node daemon, with no loop and no sockets."""

    def __init__(self, total: dict):
        self.settings = SimpleNamespace(node_id=bytes.fromhex("ab" * 28))
        self.scheduler = LeaseScheduler(total)
        self._requests: dict = {}
        self.leases: dict = {}
        self.waiting: collections.deque = collections.deque()
        self.starting = 0
        self.actors = SimpleNamespace(actors={})
        self.guests: dict = {}
        self.held_bundles: dict = {}
        self.head = None

    def _cluster_nodes(self) -> list[dict]:
        return [{"NodeID": "ab" * 28, "NodeManagerAddress": "127.0.0.1", "Alive": True,
                 "Resources": self.scheduler.total_resources()}]  # fmt: skip

    def ask(self, owner: object, request_id: int, shape: dict) -> None:
        key = (owner, request_id)
        self._requests[key] = (None, SimpleNamespace(resources=shape))
        self.scheduler.submit(key, shape)
        for granted, alloc in self.scheduler.schedule():
            del self._requests[granted]
            worker = SimpleNamespace(pid=100 + granted[1])
            self.leases[granted[1]] = SimpleNamespace(
                alloc=alloc, blocked=0, task_name=f"t{granted[1]}", worker=worker
            )


def test_the_node_says_who_holds_the_cpu_and_each_waiting_requests_real_position():
    node, owner_conn = FakeNode({"CPU": 1}), object()
    node.ask(owner_conn, 1, {"CPU": 1})  # granted: holds the CPU
    node.ask(owner_conn, 2, {"CPU": 1, "nowhere": 1})  # infeasible: in no one's way
    node.ask(owner_conn, 3, {"CPU": 1})
    node.ask(owner_conn, 4, {"CPU": 1})
    reasons = {key[1]: text for key, text in node.waiting_reasons()}
    assert reasons[2].startswith("Infeasible: no node can ever fit {CPU: 1, nowhere: 1}")
    assert "in use by task t1 (worker pid 101)" in reasons[3]
    assert reasons[3].endswith("position 1 of 2 in the node's queue for CPU.")
    assert reasons[4].endswith("position 2 of 2 in the node's queue for CPU.")


def test_a_blocked_task_does_not_count_as_holding_the_cpu_it_lent():
    node = FakeNode({"CPU": 1, "x": 1})
    node.ask(object(), 1, {"CPU": 1, "x": 1})
    node.leases[1].blocked = 1
    assert node._holders({"CPU"}) == [] and node._holders({"x"}) == ["task t1 (worker pid 101)"]


def test_a_request_for_a_group_not_placed_here_waits_for_the_group():
    node = FakeNode({"CPU": 1})
    node.ask(object(), 1, {"CPU_group_cd": 1, "bundle_group_cd": 0.001})
    ((_, reason),) = node.waiting_reasons()
    assert reason.startswith("Waiting for placement group cd: its bundle is not placed yet")


def test_bundles_held_here_are_named_as_holders():
    node = FakeNode({"CPU": 2})
    node.held_bundles[bytes.fromhex("cd")] = HeldBundles({0: {"CPU": 2}})
    node.scheduler.reserve({"CPU": 2}, {})
    node.ask(object(), 1, {"CPU": 1})
    ((_, reason),) = node.waiting_reasons()
    assert "in use by placement group cd" in reason


def test_granted_leases_waiting_for_a_worker_say_so_in_order():
    node, conn = FakeNode({"CPU": 2}), SimpleNamespace(closed=False)
    node.waiting.extend(SimpleNamespace(owner=conn, request_id=i) for i in (7, 8))
    node.starting = 1
    reasons = list(node.waiting_reasons())
    assert [key[1] for key, _ in reasons] == [7, 8]
    assert reasons[1][1].startswith("Waiting for a worker process to start on node abab")
    assert "(2 of 2 leases waiting for a worker; 1 starting)" in reasons[1][1]


def test_pending_demands_carry_the_reason_told_for_the_first_request_of_each_shape():
    node, conn = FakeNode({"CPU": 1}), object()
    node.ask(conn, 1, {"CPU": 1})
    node.ask(conn, 2, {"CPU": 1})
    node.ask(conn, 3, {"CPU": 1})
    told = dict(node.waiting_reasons())
    ((shape, count, infeasible, reason),) = pending_demands(node._requests, node.scheduler, told)
    assert (shape, count, infeasible) == ({"CPU": 1}, 2, False) and "position 1 of 2" in reason
    line = demand_line("abc", [shape, count, infeasible, reason])
    assert line.startswith("{'CPU': 1} x 2, queued at abc: Resources busy")
    assert "no reason told yet" in demand_line("abc", [shape, 1, False, ""])


# --- the owner -------------------------------------------------------------------------------


def queued_task(attempt: int = 0) -> SimpleNamespace:
    return SimpleNamespace(task_id=T1, attempts=attempt, pending_reason=None)


def test_a_queue_takes_the_reason_of_its_oldest_request():
    assert owner.queue_reason({9: "later", 4: "first"}) == "first"
    assert owner.queue_reason({}) == ""


def test_queued_tasks_get_an_event_once_per_reason_and_again_on_a_new_attempt():
    spec = queued_task()
    queue = SimpleNamespace(tasks=collections.deque([spec]), reasons={3: "Resources busy: a"})
    told: list = []

    def record(task, info):
        told.append(info["pending_reason"])

    owner.record_queue_reasons([queue], record)
    owner.record_queue_reasons([queue], record)
    assert told == ["Resources busy: a"]
    queue.reasons[3] = "Resources busy: b"
    owner.record_queue_reasons([queue], record)
    spec.attempts = 1
    owner.record_queue_reasons([queue], record)
    assert told == ["Resources busy: a", "Resources busy: b", "Resources busy: b"]
    queue.reasons.clear()  # (granted: nothing new to say)
    owner.record_queue_reasons([queue], record)
    assert len(told) == 3


def test_an_argument_reason_names_the_object_its_owner_and_where_its_task_runs():
    mine, theirs = b"\x0a" * 28, b"\x0b" * 28

    def makers(object_id):
        return ("make", "running", "cd" * 28) if object_id == mine else None

    text = owner.arguments_reason([(mine, ME), (theirs, "tcp:10.0.0.2:7")], ME, 42, makers)
    assert text.startswith("Waiting for 2 argument(s): object 0a0a0a")
    assert "(owned by its owner, pid 42; made by make, running on node cdcdcdcdcdcd)" in text
    assert "(owned by the process at tcp:10.0.0.2:7)" in text
    many = [(bytes([i]) * 28, ME) for i in range(5)]
    assert owner.arguments_reason(many, ME, 1, lambda o: None).endswith("; and 2 more.")


def test_a_spilled_request_says_where_it_went():
    assert owner.spilled("ef" * 28).startswith("Spilled to node efefefefefef")


# --- the head's table ------------------------------------------------------------------------


def test_the_table_keeps_the_latest_reason_while_pending_and_drops_it_when_the_task_moves_on():
    table = TaskTable()
    args = {"name": "f", "pending_reason": "Waiting for 1 argument(s): x"}
    table.add([[T1, 0, "PENDING_ARGS_AVAIL", 1.0, args]])
    assert table.rows()[0]["pending_reason"].startswith("Waiting for 1 argument")
    table.add([[T1, 0, "PENDING_NODE_ASSIGNMENT", 2.0, None]])
    assert table.rows()[0]["pending_reason"] is None  # (that was the arguments' reason)
    table.add([[T1, 0, "PENDING_NODE_ASSIGNMENT", 3.0, {"pending_reason": "Resources busy"}]])
    assert table.pending_reason(T1) == "Resources busy"
    assert table.first_starting_with(T1[:16]) == T1
    table.add([[T1, 0, "SUBMITTED_TO_WORKER", 4.0, {"node_id": "ab"}]])
    assert table.rows()[0]["pending_reason"] is None and table.pending_reason(T1) is None


def test_a_late_reason_does_not_bring_a_finished_task_back():
    table = TaskTable()
    table.add([[T1, 0, "FINISHED", 2.0, None]])
    table.add([[T1, 0, "PENDING_NODE_ASSIGNMENT", 1.0, {"pending_reason": "Resources busy"}]])
    assert table.rows()[0]["state"] == "FINISHED" and table.rows()[0]["pending_reason"] is None


def test_the_scheduler_lists_its_queue_in_the_order_it_grants():
    scheduler = LeaseScheduler({"CPU": 1})
    for key in ("a", "b", "c"):
        scheduler.submit(key, {"CPU": 2})
    scheduler.cancel("b")
    assert scheduler.queued() == ["a", "c"]
