"""The task graph (head/task_graph.py), pure: nodes and edges from the task table's
events, and its summary by function past a number of nodes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from minray.head.task_graph import build, changed_nodes, edges, summarize
from minray.head.task_table import TaskTable

JOB = b"\x01\0\0\0"


def task_id(n: int) -> bytes:
    return n.to_bytes(20, "little") + JOB


def returned(task: int, index: int = 1) -> bytes:
    return task_id(task) + index.to_bytes(4, "little")


def submitted(table: TaskTable, task: int, name: str, args: list, kind: str = "NORMAL_TASK",
              actor: bytes = b"", state: str = "PENDING_NODE_ASSIGNMENT") -> None:  # fmt: skip
    """The owner's first event of a task (the info tuple of runtime/task_events.task_info)."""
    table.add([[task_id(task), 0, state, float(task), [name, kind, JOB, actor, {}, args]]])


def test_a_chain_of_tasks_is_a_chain_of_edges_and_a_put_object_is_a_node():
    table = TaskTable()
    put = task_id(99) + b"\0\0\0\0"  # made by put (index 0): no task in the table made it
    submitted(table, 1, "load", [put])
    submitted(table, 2, "clean", [returned(1)])
    submitted(table, 3, "train", [returned(2), returned(1)])
    table.add([[task_id(1), 0, "FINISHED", 5.0, None]])
    graph = build(table)
    assert graph["mode"] == "tasks" and (graph["tasks"], graph["objects"]) == (3, 1)
    states = {n["name"]: n["state"] for n in graph["nodes"] if n["kind"] == "task"}
    assert states == {"load": "FINISHED", "clean": "PENDING_NODE_ASSIGNMENT",
                      "train": "PENDING_NODE_ASSIGNMENT"}  # fmt: skip
    pairs = {(e["from"], e["to"]) for e in graph["edges"]}
    one, two, three = (task_id(n).hex() for n in (1, 2, 3))
    assert pairs == {(put.hex(), one), (one, two), (two, three), (one, three)}
    assert {e["object"] for e in graph["edges"] if e["to"] == three} == {
        returned(2).hex(),
        returned(1).hex(),
    }


def test_actor_calls_hang_from_their_actors_creation_and_failures_say_what_was_raised():
    table = TaskTable()
    actor = b"a" * 16
    submitted(table, 1, "Counter.__init__", [], "ACTOR_CREATION_TASK", actor)
    submitted(table, 2, "Counter.add", [], "ACTOR_TASK", actor, state="RUNNING")
    submitted(table, 3, "Other.add", [], "ACTOR_TASK", b"b" * 16, state="FINISHED")
    table.add([[task_id(2), 0, "FAILED", 3.0, {"exception_type": "TypeError"}]])
    graph = build(table)
    (edge,) = graph["edges"]
    assert (edge["from"], edge["to"], edge["kind"]) == (task_id(1).hex(), task_id(2).hex(), "actor")
    failed = [n for n in graph["nodes"] if n["state"] == "FAILED"]
    assert [(n["name"], n["error"]) for n in failed] == [("Counter.add", "TypeError")]


def test_an_object_whose_maker_left_the_table_is_a_node_of_its_own():
    table = TaskTable(capacity=2)
    submitted(table, 1, "first", [])
    table.add([[task_id(1), 0, "FINISHED", 1.5, None]])
    submitted(table, 2, "second", [returned(1)])
    submitted(table, 3, "third", [returned(2)])  # the table evicts the finished "first"
    graph = build(table)
    assert graph["tasks"] == 2 and graph["dropped"] == 1
    (obj,) = [n for n in graph["nodes"] if n["kind"] == "object"]
    assert obj["id"] == returned(1).hex()


def test_past_max_nodes_the_graph_is_summarised_by_function_with_counts_per_state():
    table = TaskTable()
    for n in range(10):
        submitted(table, n, "square", [])
        table.add([[task_id(n), 0, "FINISHED" if n < 7 else "RUNNING", 20.0, None]])
    submitted(table, 10, "total", [returned(n) for n in range(10)])
    assert build(table, max_nodes=11)["mode"] == "tasks"
    graph = build(table, max_nodes=10)
    assert graph["mode"] == "summary" and graph["tasks"] == 11
    groups = {g["name"]: (g["count"], g["states"]) for g in graph["nodes"]}
    assert groups == {
        "square": (10, {"FINISHED": 7, "RUNNING": 3}),
        "total": (1, {"PENDING_NODE_ASSIGNMENT": 1}),
    }
    (edge,) = graph["edges"]
    assert (edge["from"], edge["to"], edge["count"]) == (
        "NORMAL_TASK:square",
        "NORMAL_TASK:total",
        10,
    )


def test_the_changed_nodes_are_those_the_table_holds_as_it_has_them_now():
    table = TaskTable()
    submitted(table, 1, "f", [])
    table.add([[task_id(1), 0, "RUNNING", 2.0, None]])
    (node,) = changed_nodes(table, [task_id(1), task_id(2)])
    assert (node["id"], node["state"]) == (task_id(1).hex(), "RUNNING")


# a random program: task i takes the results of some earlier tasks and some put objects
programs = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.lists(st.integers(0, 30), max_size=4),  # earlier tasks (mod i) it takes
        st.integers(0, 2),  # put objects it takes
        st.sampled_from(["PENDING_NODE_ASSIGNMENT", "RUNNING", "FINISHED", "FAILED"]),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(programs, st.integers(1, 40))
def test_any_program_gives_a_dag_whose_summary_counts_every_node_and_edge(program, max_nodes):
    table = TaskTable()
    puts = 0
    for i, (name, takes, put_count, state) in enumerate(program):
        args = [returned(t % i) for t in takes] if i else []
        args += [task_id(1000 + puts + p) + b"\0\0\0\0" for p in range(put_count)]
        puts += put_count
        submitted(table, i, name, args)
        table.add([[task_id(i), 0, state, 100.0, None]])
    tasks = [n for n in build(table, max_nodes=10_000)["nodes"] if n["kind"] == "task"]
    objects, found = edges(tasks)
    assert len(objects) == puts and len(found) == sum(len(t["args"]) for t in tasks)
    order = {t["id"]: i for i, t in enumerate(tasks)}
    for edge in found:  # every edge points forward: the graph has no cycle
        assert edge["from"] not in order or order[edge["from"]] < order[edge["to"]]
    groups, group_edges = summarize(tasks + objects, found)
    assert sum(g["count"] for g in groups) == len(tasks) + len(objects)
    assert sum(sum(g["states"].values()) for g in groups) == len(tasks)
    assert sum(e["count"] for e in group_edges) == len(found)
    graph = build(table, max_nodes)
    assert graph["mode"] == ("tasks" if len(tasks) + len(objects) <= max_nodes else "summary")
