"""minray.options: checking actor options, and the resources an actor needs and holds."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minray.options import (
    ACTOR_DEFAULTS,
    TASK_DEFAULTS,
    UNSUPPORTED_ACTOR_OPTIONS,
    actor_resources,
    validate_actor_options,
)

# --- validate_actor_options --------------------------------------------------------------


def test_every_default_actor_option_value_is_valid():
    assert validate_actor_options(dict(ACTOR_DEFAULTS)) == ACTOR_DEFAULTS


def test_valid_actor_options_are_returned_unchanged():
    options = {
        "num_cpus": 0.5,
        "num_gpus": 1,
        "resources": {"custom": 2},
        "memory": 10**9,
        "name": "counter",
        "namespace": "prod",
        "lifetime": "detached",
        "max_concurrency": 4,
        "max_restarts": -1,
        "max_task_retries": -1,
        "max_pending_calls": 10,
        "get_if_exists": True,
        "scheduling_strategy": "SPREAD",
        "runtime_env": {"env_vars": {"A": "1"}},
        "allow_out_of_order_execution": True,
        "concurrency_groups": {"io": 2},
    }
    before = dict(options)
    assert validate_actor_options(options) == before
    assert options == before


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"num_cpus": None},
        {"num_cpus": 0},
        {"num_gpus": 0.25},
        {"lifetime": None},
        {"lifetime": "non_detached"},
        {"max_restarts": 0},
        {"max_restarts": -1},
        {"max_task_retries": -1},
        {"max_pending_calls": -1},
        {"max_concurrency": None},
        {"max_concurrency": 1},
        {"name": None},
        {"get_if_exists": False},
    ],
    ids=repr,
)
def test_accepted_actor_options(options):
    assert validate_actor_options(options) == options


@pytest.mark.parametrize("key", ["num_returns", "max_retries", "retry_exceptions", "bogus"])
def test_unknown_or_task_only_option_is_invalid_for_actors(key):
    valid = re.escape(str(sorted(ACTOR_DEFAULTS)))
    with pytest.raises(ValueError, match=rf"^Invalid option keyword {key} for actors\. "):
        validate_actor_options({key: TASK_DEFAULTS.get(key, 1)})
    with pytest.raises(ValueError, match=rf"Valid ones are {valid}\.$"):
        validate_actor_options({key: TASK_DEFAULTS.get(key, 1)})


@pytest.mark.parametrize("key", sorted(UNSUPPORTED_ACTOR_OPTIONS))
def test_ray_actor_options_minray_lacks_are_refused_by_name(key):
    with pytest.raises(ValueError, match=rf"'{key}'.*minray does not support"):
        validate_actor_options({key: None})


def test_concurrency_groups_are_accepted_as_a_dict_of_positive_sizes():
    options = {"concurrency_groups": {"io": 2, "compute": 4}}
    assert validate_actor_options(options) == options


@pytest.mark.parametrize("groups", [["io"], "io", {"io"}], ids=repr)
def test_concurrency_groups_must_be_a_dict(groups):
    with pytest.raises(TypeError, match="'concurrency_groups' must be dict"):
        validate_actor_options({"concurrency_groups": groups})


@pytest.mark.parametrize("size", [0, -1])
def test_a_concurrency_group_of_no_calls_is_refused(size):
    with pytest.raises(ValueError, match="group 'io' must be at least 1"):
        validate_actor_options({"concurrency_groups": {"io": size}})


def test_empty_actor_name_is_rejected():
    with pytest.raises(ValueError, match=r"^Actor name cannot be an empty string\.$"):
        validate_actor_options({"name": ""})


@pytest.mark.parametrize("name", [1, b"counter", ["counter"]], ids=repr)
def test_non_string_actor_name_is_a_type_error(name):
    with pytest.raises(TypeError, match="'name' must be str"):
        validate_actor_options({"name": name})


@pytest.mark.parametrize("namespace", ["", 3], ids=repr)
def test_namespace_must_be_a_non_empty_string(namespace):
    with pytest.raises(TypeError, match="namespace"):
        validate_actor_options({"namespace": namespace})


@pytest.mark.parametrize("lifetime", ["forever", "DETACHED", True], ids=repr)
def test_lifetime_must_be_detached_or_non_detached(lifetime):
    with pytest.raises(ValueError, match="'detached'"):
        validate_actor_options({"lifetime": lifetime})


@pytest.mark.parametrize("key", ["max_restarts", "max_task_retries", "max_pending_calls"])
def test_limits_below_minus_one_are_rejected(key):
    with pytest.raises(ValueError, match=rf"{key} must be"):
        validate_actor_options({key: -2})


@pytest.mark.parametrize("key", ["max_restarts", "max_task_retries", "max_concurrency"])
@pytest.mark.parametrize("value", [1.5, "3", True], ids=repr)
def test_integer_options_reject_other_types(key, value):
    with pytest.raises(TypeError, match=f"'{key}' must be int"):
        validate_actor_options({key: value})


@pytest.mark.parametrize("value", [0, -1])
def test_max_concurrency_must_be_at_least_one(value):
    with pytest.raises(ValueError, match="max_concurrency must be at least 1"):
        validate_actor_options({"max_concurrency": value})


@pytest.mark.parametrize(
    "options", [{"get_if_exists": True}, {"get_if_exists": True, "name": None}]
)
def test_get_if_exists_needs_a_name(options):
    message = r"^The actor name must be specified to use `get_if_exists`\.$"
    with pytest.raises(ValueError, match=message):
        validate_actor_options(options)


def test_get_if_exists_must_be_a_bool():
    with pytest.raises(TypeError, match="'get_if_exists' must be bool"):
        validate_actor_options({"get_if_exists": 1, "name": "x"})


@pytest.mark.parametrize("key", ["num_cpus", "num_gpus"])
@pytest.mark.parametrize("value", ["x", True, [1]], ids=repr)
def test_resource_quantities_must_be_numbers(key, value):
    with pytest.raises(TypeError, match=f"'{key}' must be"):
        validate_actor_options({key: value})


@pytest.mark.parametrize("key", ["num_cpus", "num_gpus"])
def test_negative_resource_quantities_are_rejected(key):
    with pytest.raises(ValueError, match="cannot be negative"):
        validate_actor_options({key: -1})


def test_cpu_and_gpu_belong_in_num_cpus_and_num_gpus_not_resources():
    with pytest.raises(ValueError, match="num_cpus"):
        validate_actor_options({"resources": {"CPU": 1}})


@given(st.integers(min_value=-1, max_value=10**6))
def test_any_max_restarts_from_minus_one_up_is_accepted(value):
    assert validate_actor_options({"max_restarts": value}) == {"max_restarts": value}


# --- actor_resources ---------------------------------------------------------------------


def test_actor_without_resources_is_placed_with_one_cpu_and_holds_none():
    assert actor_resources({}) == ({"CPU": 1.0}, {})


def test_actor_with_only_default_options_is_placed_with_one_cpu_and_holds_none():
    assert actor_resources(dict(ACTOR_DEFAULTS)) == ({"CPU": 1.0}, {})


@pytest.mark.parametrize("num_cpus", [2, 0.5, 1])
def test_explicit_num_cpus_is_needed_and_held(num_cpus):
    shape = {"CPU": float(num_cpus)}
    assert actor_resources({**ACTOR_DEFAULTS, "num_cpus": num_cpus}) == (shape, shape)


def test_explicit_zero_cpus_needs_and_holds_nothing():
    assert actor_resources({**ACTOR_DEFAULTS, "num_cpus": 0}) == ({}, {})


def test_gpus_with_zero_cpus_need_and_hold_only_the_gpus():
    options = {**ACTOR_DEFAULTS, "num_cpus": 0, "num_gpus": 1}
    assert actor_resources(options) == ({"GPU": 1.0}, {"GPU": 1.0})


def test_custom_resources_with_zero_cpus_are_needed_and_held():
    options = {**ACTOR_DEFAULTS, "num_cpus": 0, "resources": {"A": 1}}
    assert actor_resources(options) == ({"A": 1.0}, {"A": 1.0})


def test_cpus_gpus_and_custom_resources_together_are_needed_and_held():
    options = {**ACTOR_DEFAULTS, "num_cpus": 2, "num_gpus": 0.5, "resources": {"A": 1}}
    shape = {"CPU": 2.0, "GPU": 0.5, "A": 1.0}
    assert actor_resources(options) == (shape, shape)


# Ray (ActorClass._remote): once any non-memory resource is given, CPU defaults to
# DEFAULT_ACTOR_CREATION_CPU_SPECIFIED = 1, held for the actor's life; memory alone
# keeps the default case (1 CPU to place, 0 held).


def test_gpus_without_num_cpus_also_need_and_hold_one_cpu():
    shape = {"CPU": 1.0, "GPU": 1.0}
    assert actor_resources({**ACTOR_DEFAULTS, "num_gpus": 1}) == (shape, shape)


def test_custom_resources_without_num_cpus_also_need_and_hold_one_cpu():
    shape = {"CPU": 1.0, "A": 1.0}
    assert actor_resources({**ACTOR_DEFAULTS, "resources": {"A": 1}}) == (shape, shape)


def test_memory_alone_still_needs_one_cpu_to_place_and_holds_only_memory():
    options = {**ACTOR_DEFAULTS, "memory": 10**9}
    assert actor_resources(options) == ({"CPU": 1.0, "memory": 1e9}, {"memory": 1e9})


@given(
    num_cpus=st.sampled_from([0.25, 0.5, 1, 2, 8]),
    num_gpus=st.sampled_from([0, 0.5, 1, 2]),
    custom=st.dictionaries(st.sampled_from(["A", "B"]), st.sampled_from([0.5, 1, 3])),
)
def test_explicit_resources_are_held_exactly_as_placed(num_cpus, num_gpus, custom):
    options = {**ACTOR_DEFAULTS, "num_cpus": num_cpus, "num_gpus": num_gpus}
    placed, held = actor_resources({**options, "resources": custom})
    assert placed == held
    assert placed["CPU"] == num_cpus
    assert placed.get("GPU", 0) == num_gpus
    assert {k: v for k, v in placed.items() if k not in ("CPU", "GPU")} == custom
