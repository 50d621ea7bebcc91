"""minray.head.cluster_scheduler: where a lease request goes, per scheduling strategy."""

from hypothesis import given
from hypothesis import strategies as st

from minray.head.cluster_scheduler import NodeAffinity, choose_node

A, B, C = b"a" * 28, b"b" * 28, b"c" * 28


def view(**free):
    """Nodes a, b, c with 4 CPUs each and the given CPUs free (default 4)."""
    nodes = {A: "a", B: "b", C: "c"}
    return {node: ({"CPU": 4.0}, {"CPU": float(free.get(name, 4))}) for node, name in nodes.items()}


def test_default_stays_on_the_local_node_while_it_has_room():
    assert choose_node({"CPU": 1}, view(), local=B) == (B, True, "")


def test_default_spills_to_the_least_used_node_with_room():
    choice = choose_node({"CPU": 1}, view(b=0, a=1, c=3), local=B)
    assert choice.node_id == C and choice.has_room


def test_default_queues_locally_when_nobody_has_room():
    choice = choose_node({"CPU": 1}, view(a=0, b=0, c=0), local=B)
    assert choice.node_id == B and not choice.has_room


def test_default_prefers_the_node_holding_the_large_arguments():
    choice = choose_node({"CPU": 1}, view(), local=A, arg_bytes={C: 100 << 20, B: 1 << 20})
    assert choice.node_id == C
    # ... but not when that node is full
    choice = choose_node({"CPU": 1}, view(c=0), local=A, arg_bytes={C: 100 << 20})
    assert choice.node_id == A


def test_an_infeasible_request_names_what_was_asked_and_what_nodes_have():
    choice = choose_node({"CPU": 8}, view(), local=A)
    assert choice.infeasible
    assert "{'CPU': 8}" in choice.reason and "'CPU': 4.0" in choice.reason
    assert "no node is alive" in choose_node({"CPU": 1}, {}, local=A).reason


def test_custom_resources_decide_which_nodes_can_run_it():
    nodes = view()
    nodes[B] = ({"CPU": 4.0, "ssd": 1.0}, {"CPU": 4.0, "ssd": 1.0})
    assert choose_node({"CPU": 1, "ssd": 1}, nodes, local=A).node_id == B


def test_spread_goes_round_robin_over_nodes_with_room():
    chosen, last = [], None
    for _ in range(6):
        last = choose_node({"CPU": 1}, view(b=0), local=A, strategy="SPREAD", last_spread=last)[0]
        chosen.append(last)
    assert chosen == [A, C, A, C, A, C]


def test_node_affinity_hard_and_soft():
    dead = b"d" * 28
    assert choose_node({"CPU": 1}, view(c=0), A, NodeAffinity(C)) == (C, False, "")
    hard = choose_node({"CPU": 1}, view(), A, NodeAffinity(dead))
    assert hard.infeasible and "soft=False" in hard.reason and "not alive" in hard.reason
    assert choose_node({"CPU": 1}, view(), A, NodeAffinity(dead, soft=True)).node_id == A
    too_big = choose_node({"CPU": 5}, view(), A, NodeAffinity(B))
    assert too_big.infeasible and "can never fit" in too_big.reason


@given(
    free=st.lists(st.integers(0, 4), min_size=3, max_size=3),
    cpus=st.integers(1, 5),
    strategy=st.sampled_from(["DEFAULT", "SPREAD"]),
    local=st.sampled_from([A, B, C]),
)
def test_a_node_chosen_with_room_really_has_room_and_feasible_requests_always_get_a_node(
    free, cpus, strategy, local
):
    nodes = view(a=free[0], b=free[1], c=free[2])
    choice = choose_node({"CPU": cpus}, nodes, local, strategy)
    assert choice.infeasible == (cpus > 4)
    if choice.has_room:
        assert nodes[choice.node_id][1]["CPU"] >= cpus
    elif not choice.infeasible:
        assert all(available["CPU"] < cpus for _, available in nodes.values())


def test_a_burst_of_spills_spreads_over_the_nodes_with_room_until_fresh_figures_come():
    from minray.node.spillback import SpillTally

    now = [0.0]
    tally = SpillTally(memory_s=2.0, clock=lambda: now[0])
    nodes = view(a=0, b=1, c=1)  # we are a (full); b and c have one CPU each
    chosen = []
    for _ in range(3):
        choice = choose_node({"CPU": 1}, tally.adjust(nodes), A)
        if choice.has_room:
            tally.record(choice.node_id, {"CPU": 1})
        chosen.append(choice.node_id if choice.has_room else None)
    assert sorted(chosen[:2]) == [B, C] and chosen[2] is None
    now[0] = 3.0  # the sent requests are in the nodes' own figures by now
    assert choose_node({"CPU": 1}, tally.adjust(nodes), A).has_room
