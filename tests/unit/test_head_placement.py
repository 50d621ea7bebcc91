"""minray.head.placement: the four bundling strategies over a snapshot of free resources."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minray.head.placement import check_bundles, place_bundles

A, B, C = b"a" * 28, b"b" * 28, b"c" * 28


def test_strict_pack_puts_every_bundle_on_one_node_or_nowhere():
    nodes = {A: {"CPU": 2}, B: {"CPU": 4}}
    assert place_bundles([{"CPU": 1}] * 3, "STRICT_PACK", nodes) == [B, B, B]
    assert place_bundles([{"CPU": 1}] * 5, "STRICT_PACK", nodes) is None


def test_pack_uses_one_node_when_it_can_and_few_nodes_when_it_cannot():
    nodes = {A: {"CPU": 2}, B: {"CPU": 2}, C: {"CPU": 2}}
    assert place_bundles([{"CPU": 1}] * 2, "PACK", nodes) == [A, A]
    placed = place_bundles([{"CPU": 1}] * 4, "PACK", nodes)
    assert sorted(placed) == [A, A, B, B]
    assert place_bundles([{"CPU": 1}] * 7, "PACK", nodes) is None


def test_strict_spread_needs_one_node_per_bundle():
    nodes = {A: {"CPU": 4}, B: {"CPU": 4}}
    assert sorted(place_bundles([{"CPU": 1}] * 2, "STRICT_SPREAD", nodes)) == [A, B]
    assert place_bundles([{"CPU": 1}] * 3, "STRICT_SPREAD", nodes) is None


def test_strict_spread_finds_the_matching_a_greedy_first_choice_would_miss():
    # bundle 0 fits both nodes, bundle 1 only A: greedy "0 -> A" would fail
    nodes = {A: {"CPU": 2, "GPU": 1}, B: {"CPU": 2}}
    assert place_bundles([{"CPU": 1}, {"GPU": 1}], "STRICT_SPREAD", nodes) == [B, A]


def test_spread_spreads_evenly_and_doubles_up_only_when_it_must():
    nodes = {A: {"CPU": 4}, B: {"CPU": 4}}
    assert sorted(place_bundles([{"CPU": 1}] * 2, "SPREAD", nodes)) == [A, B]
    assert sorted(place_bundles([{"CPU": 1}] * 4, "SPREAD", nodes)) == [A, A, B, B]
    assert place_bundles([{"CPU": 3}] * 3, "SPREAD", nodes) is None


def test_fractions_are_exact():
    assert place_bundles([{"CPU": 0.1}] * 10, "STRICT_PACK", {A: {"CPU": 1}}) == [A] * 10


def test_custom_resources_and_gpus_count():
    nodes = {A: {"CPU": 8}, B: {"CPU": 1, "GPU": 2, "disk": 1}}
    assert place_bundles([{"GPU": 1, "disk": 1}], "PACK", nodes) == [B]
    assert place_bundles([{"GPU": 1}, {"GPU": 1}, {"GPU": 1}], "PACK", nodes) is None


@pytest.mark.parametrize(
    "bundles, strategy, match",
    [
        ([{"CPU": 1}], "TIGHT", "Invalid placement group strategy"),
        ([], "PACK", "non-empty list"),
        ("CPU", "PACK", "non-empty list"),
        ([{}], "PACK", "non-empty dict"),
        ([{"CPU": -1}], "PACK", "non-negative"),
        ([{"CPU": 0}], "PACK", "asks for nothing"),
    ],
)
def test_bad_bundles_are_refused_with_what_to_do(bundles, strategy, match):
    with pytest.raises(ValueError, match=match):
        check_bundles(bundles, strategy)


node_free = st.dictionaries(
    st.sampled_from([A, B, C]),
    st.fixed_dictionaries({"CPU": st.integers(0, 4), "GPU": st.integers(0, 2)}),
    min_size=1,
)
bundle_lists = st.lists(
    st.fixed_dictionaries({"CPU": st.integers(0, 2), "GPU": st.integers(0, 1)}).filter(
        lambda b: any(b.values())
    ),
    min_size=1,
    max_size=5,
)


@given(nodes=node_free, bundles=bundle_lists, strategy=st.sampled_from(["PACK", "SPREAD"]))
def test_a_placement_never_overcommits_a_node(nodes, bundles, strategy):
    placed = place_bundles(bundles, strategy, nodes)
    if placed is None:
        return
    for node, free in nodes.items():
        for name in ("CPU", "GPU"):
            used = sum(b[name] for b, n in zip(bundles, placed) if n == node)
            assert used <= free[name]


@given(nodes=node_free, bundles=bundle_lists)
def test_strict_spread_places_each_bundle_on_its_own_node_whenever_that_is_possible(nodes, bundles):
    import itertools

    placed = place_bundles(bundles, "STRICT_SPREAD", nodes)
    possible = any(
        all(all(nodes[n][k] >= b[k] for k in b) for b, n in zip(bundles, perm))
        for perm in itertools.permutations(nodes, len(bundles))
    )
    assert (placed is not None) == possible
    if placed is not None:
        assert len(set(placed)) == len(placed)


def test_a_placed_group_adds_rays_renamed_resources_per_bundle_and_in_total():
    from minray.head.placement import bundle_resources

    adds = bundle_resources("g1", [{"CPU": 1}, {"CPU": 2, "GPU": 1}])
    assert adds["CPU_group_0_g1"] == 1 and adds["CPU_group_1_g1"] == 2
    assert adds["CPU_group_g1"] == 3 and adds["GPU_group_g1"] == 1
    assert adds["bundle_group_g1"] == 2000 and adds["bundle_group_1_g1"] == 1000


def test_a_task_in_a_group_asks_for_the_renamed_resources_and_a_bundle_sliver():
    from minray.head.placement import in_bundle

    assert in_bundle({"CPU": 1, "GPU": 0}, "g1", 1) == {
        "CPU_group_1_g1": 1,
        "bundle_group_1_g1": 0.001,
    }
    assert in_bundle({}, "g1") == {"bundle_group_g1": 0.001}


def test_options_with_a_placement_group_strategy_turn_into_bundle_resources():
    from minray.ids import PlacementGroupID
    from minray.options import actor_resources, task_resources
    from minray.placement_group import PlacementGroup
    from minray.scheduling_strategies import PlacementGroupSchedulingStrategy

    group = PlacementGroup(PlacementGroupID(b"\x01" * 18), [{"CPU": 2}])
    hexid = group.id.hex()
    strategy = PlacementGroupSchedulingStrategy(group, 0)
    assert task_resources({"num_cpus": 1, "scheduling_strategy": strategy}) == {
        f"CPU_group_0_{hexid}": 1.0,
        f"bundle_group_0_{hexid}": 0.001,
    }
    needed, held = actor_resources({"scheduling_strategy": strategy})
    assert needed == {f"CPU_group_0_{hexid}": 1.0, f"bundle_group_0_{hexid}": 0.001}
    assert held == {f"bundle_group_0_{hexid}": 0.001}


# --- plan_missing: the bundles still to place, on which nodes -----------------------------


def view_of(**nodes) -> dict:
    """``{node: (total, free)}`` from ``a=(total_cpus, free_cpus)``."""
    return {k.encode() * 28: ({"CPU": t}, {"CPU": f}) for k, (t, f) in nodes.items()}


def test_plan_missing_places_only_the_unplaced_bundles():
    from minray.head.placement import plan_missing

    view = view_of(a=(2, 0), b=(2, 2))
    plan, reason = plan_missing([{"CPU": 1}, {"CPU": 1}], [A, b""], "PACK", view)
    assert plan == {B: {1: {"CPU": 1}}} and reason == ""


def test_plan_missing_keeps_strict_spread_off_nodes_that_hold_a_bundle_of_the_group():
    from minray.head.placement import plan_missing

    view = view_of(a=(4, 3), b=(4, 3))
    plan, reason = plan_missing([{"CPU": 1}] * 2, [A, b""], "STRICT_SPREAD", view)
    assert plan == {B: {1: {"CPU": 1}}}
    plan, reason = plan_missing([{"CPU": 1}] * 3, [A, B, b""], "STRICT_SPREAD", view)
    assert plan is None and "cannot be met" in reason


def test_plan_missing_tells_waiting_for_room_from_never_fitting():
    from minray.head.placement import plan_missing

    busy = view_of(a=(2, 0))
    assert plan_missing([{"CPU": 2}], [b""], "STRICT_PACK", busy) == (None, "")
    plan, reason = plan_missing([{"CPU": 3}], [b""], "STRICT_PACK", busy)
    assert plan is None and "STRICT_PACK" in reason and "joins" in reason


@given(
    st.lists(st.integers(1, 3), min_size=1, max_size=5),
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=4),
    st.sampled_from(["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"]),
)
def test_a_plan_fits_the_free_resources_and_keeps_the_strategy(cpus, nodes, strategy):
    from minray.head.placement import plan_missing

    bundles = [{"CPU": c} for c in cpus]
    view = {bytes([i]) * 28: ({"CPU": max(t, f)}, {"CPU": f}) for i, (t, f) in enumerate(nodes)}
    plan, reason = plan_missing(bundles, [b""] * len(bundles), strategy, view)
    if plan is None:
        return
    assert sorted(i for held in plan.values() for i in held) == list(range(len(bundles)))
    for node, held in plan.items():
        assert sum(b["CPU"] for b in held.values()) <= view[node][1]["CPU"]
    if strategy == "STRICT_PACK":
        assert len(plan) == 1
    if strategy == "STRICT_SPREAD":
        assert all(len(held) == 1 for held in plan.values())
