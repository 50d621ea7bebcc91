"""minray.options: checking task options, and spotting functions that return a value."""

import inspect

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minray.options import (
    TASK_DEFAULTS,
    UNSUPPORTED_TASK_OPTIONS,
    check_num_returns_zero,
    positional_arity,
    returns_value,
    task_resources,
    validate_task_options,
)

# --- validate_task_options --------------------------------------------------------------


def test_every_default_option_value_is_valid():
    assert validate_task_options(dict(TASK_DEFAULTS)) == TASK_DEFAULTS


def test_valid_options_are_returned_with_the_same_values():
    options = {
        "num_cpus": 0.5,
        "num_gpus": 1,
        "resources": {"custom": 2, "other": 0.25},
        "memory": 10**9,
        "object_store_memory": None,
        "num_returns": 0,
        "max_retries": -1,
        "retry_exceptions": [ValueError, KeyError],
        "name": "my_task",
        "scheduling_strategy": "SPREAD",
        "runtime_env": {"env_vars": {"A": "1"}},
        "accelerator_type": "A100",
    }
    before = dict(options)
    assert validate_task_options(options) == before
    assert options == before  # the caller's dict is not modified


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"num_cpus": 0},
        {"num_gpus": 0.25},
        {"resources": None},
        {"resources": {}},
        {"memory": None},
        {"retry_exceptions": True},
        {"retry_exceptions": (OSError,)},
        {"runtime_env": None},
        {"runtime_env": {}},
        {"runtime_env": {"env_vars": None}},
        {"scheduling_strategy": None},
        {"scheduling_strategy": "DEFAULT"},
        {"name": None},
        {"max_retries": 0},
    ],
    ids=repr,
)
def test_accepts_valid_option_values(options):
    assert validate_task_options(options) == options


@pytest.mark.parametrize(
    "key", ["num_cpus", "num_gpus", "num_returns", "max_retries", "retry_exceptions"]
)
def test_none_means_the_default_for_counting_options(key):
    options = {key: None}
    assert validate_task_options(options) == {key: TASK_DEFAULTS[key]}
    assert options == {key: None}


def test_none_stays_none_for_options_whose_default_is_none():
    options = {"resources": None, "memory": None, "name": None, "runtime_env": None}
    assert validate_task_options(options) == options


def test_unknown_option_raises_value_error_listing_the_valid_ones():
    with pytest.raises(ValueError, match="Invalid option keyword num_cpu ") as info:
        validate_task_options({"num_cpu": 1})
    assert "num_cpus" in str(info.value)


@pytest.mark.parametrize("key", sorted(UNSUPPORTED_TASK_OPTIONS))
def test_ray_options_minray_lacks_are_refused_by_name(key):
    with pytest.raises(ValueError, match="does not support yet"):
        validate_task_options({key: None})


@pytest.mark.parametrize(
    "options",
    [
        {"num_cpus": -1},
        {"num_gpus": -0.5},
        {"memory": -1},
        {"object_store_memory": -1},
        {"resources": {"custom": -1}},
    ],
    ids=repr,
)
def test_negative_quantities_raise_value_error(options):
    with pytest.raises(ValueError, match="cannot be negative"):
        validate_task_options(options)


@pytest.mark.parametrize("name", ["CPU", "GPU"])
def test_cpu_or_gpu_inside_resources_raises_value_error(name):
    with pytest.raises(ValueError, match="num_cpus.*num_gpus"):
        validate_task_options({"resources": {name: 1}})


@pytest.mark.parametrize(
    "options",
    [
        {"num_returns": -1},
        {"_generator_backpressure_num_objects": 0},
        {"_generator_backpressure_num_objects": -2},
        {"max_retries": -2},
        {"runtime_env": {"pip": ["numpy"]}},
        {"scheduling_strategy": "NODE_AFFINITY"},
    ],
    ids=repr,
)
def test_unsupported_values_raise_value_error(options):
    with pytest.raises(ValueError):
        validate_task_options(options)


@pytest.mark.parametrize(
    "options",
    [
        {"num_cpus": "1"},
        {"num_cpus": True},
        {"num_gpus": [1]},
        {"memory": "1GB"},
        {"resources": [("custom", 1)]},
        {"resources": {1: 1}},
        {"resources": {"custom": "1"}},
        {"resources": {"custom": False}},
        {"num_returns": 1.0},
        {"num_returns": True},
        {"max_retries": "3"},
        {"max_retries": 1.5},
        {"retry_exceptions": "yes"},
        {"retry_exceptions": [int]},
        {"retry_exceptions": [ValueError()]},
        {"runtime_env": "env"},
        {"runtime_env": {"env_vars": {"A": 1}}},
        {"runtime_env": {"env_vars": ["A=1"]}},
        {"name": 3},
    ],
    ids=repr,
)
def test_wrong_types_raise_type_error(options):
    with pytest.raises(TypeError):
        validate_task_options(options)


def test_first_bad_option_is_reported_even_after_good_ones():
    with pytest.raises(TypeError, match="num_gpus"):
        validate_task_options({"num_cpus": 1, "num_gpus": "x"})


# --- task_resources ---------------------------------------------------------------------


def test_task_resources_default_to_one_cpu():
    assert task_resources({}) == {"CPU": 1.0}


def test_task_resources_collects_every_requested_resource():
    options = {"num_cpus": 0.5, "num_gpus": 2, "memory": 100, "resources": {"a": 1, "b": 0}}
    assert task_resources(options) == {"CPU": 0.5, "GPU": 2.0, "memory": 100.0, "a": 1.0}


def test_task_with_zero_cpus_asks_for_no_cpu():
    assert task_resources({"num_cpus": 0}) == {}


# --- returns_value ------------------------------------------------------------------------


def returns_x(x):
    return x


def bare_return(x):
    if x:
        return
    print(x)


def returns_none_explicitly():
    return None


def no_return():
    pass


def return_only_in_nested_function():
    def inner():
        return 1

    return


def return_only_in_nested_async_function():
    async def inner():
        return 1


def return_only_in_nested_class():
    class Inner:
        def method(self):
            return 1

    print(Inner)


def return_only_in_lambda():
    f = lambda: 1
    f()


def return_inside_control_flow(xs):
    for x in xs:
        try:
            with open(x) as f:
                if f:
                    return f.read()
        except OSError:
            pass


def returns_a_lambda():
    return lambda: 1


async def async_returns_value():
    return 1


async def async_bare_return():
    return


def decorator(fn):
    return fn


@decorator
def decorated_returns_value():
    return 2


class Methods:
    def returns(self):
        return self

    def does_not(self):
        self.x = 1


@pytest.mark.parametrize(
    "function",
    [
        returns_x,
        return_inside_control_flow,
        returns_a_lambda,
        async_returns_value,
        decorated_returns_value,
        Methods.returns,
        Methods().returns,
    ],
    ids=lambda f: f.__qualname__,
)
def test_returns_value_detects_a_return_with_a_value(function):
    assert returns_value(function)


@pytest.mark.parametrize(
    "function",
    [
        bare_return,
        returns_none_explicitly,
        no_return,
        return_only_in_nested_function,
        return_only_in_nested_async_function,
        return_only_in_nested_class,
        return_only_in_lambda,
        async_bare_return,
        Methods.does_not,
    ],
    ids=lambda f: f.__qualname__,
)
def test_returns_value_ignores_bare_returns_and_nested_functions(function):
    assert not returns_value(function)


def test_returns_value_of_a_function_defined_inside_a_test():
    def local(x):
        return x * 2

    def local_none():
        return

    assert returns_value(local)
    assert not returns_value(local_none)


def test_returns_value_is_false_without_source():
    namespace = {}
    exec("def made_by_exec():\n    return 1\n", namespace)
    assert not returns_value(namespace["made_by_exec"])
    assert not returns_value(len)
    assert not returns_value(lambda: 1)  # a lambda is not a def statement


# --- check_num_returns_zero ---------------------------------------------------------------


def test_num_returns_zero_on_a_function_returning_a_value_raises():
    with pytest.raises(ValueError, match="returns_x returns a value but has num_returns=0"):
        check_num_returns_zero(returns_x, 0)


@pytest.mark.parametrize("function", [no_return, bare_return, return_only_in_nested_function])
def test_num_returns_zero_on_a_function_without_a_value_is_fine(function):
    check_num_returns_zero(function, 0)


@pytest.mark.parametrize("num_returns", [1, 2])
def test_nonzero_num_returns_is_never_checked(num_returns):
    check_num_returns_zero(returns_x, num_returns)


@pytest.mark.parametrize("num_returns", ["streaming", "dynamic"])
def test_generator_num_returns_are_accepted(num_returns):
    assert validate_task_options({"num_returns": num_returns}) == {"num_returns": num_returns}


def test_generator_call_says_how_a_generator_task_runs():
    from minray.options import generator_call

    assert generator_call({"num_returns": 2}) is None
    limit = {"_generator_backpressure_num_objects": 3}
    streaming = generator_call({"num_returns": "streaming", **limit})
    assert (streaming.dynamic, streaming.backpressure) == (False, 3)
    dynamic = generator_call({"num_returns": "dynamic", **limit})
    assert (dynamic.dynamic, dynamic.backpressure) == (True, -1)


# --- positional_arity: calls that may skip Signature.bind ---------------------------------------


def _plain(a, b, /, c):
    pass


def _with_default(a, b=1):
    pass


def _with_star_args(a, *rest):
    pass


def _with_keyword_only(a, *, b):
    pass


def _with_kwargs(a, **options):
    pass


@pytest.mark.parametrize(
    ("function", "arity"),
    [(_plain, 3), (lambda: None, 0), (_with_default, None), (_with_star_args, None),
     (_with_keyword_only, None), (_with_kwargs, None)],
)  # fmt: skip
def test_positional_arity_is_given_only_for_plain_positional_signatures(function, arity):
    assert positional_arity(inspect.signature(function)) == arity


@given(
    kinds=st.lists(st.sampled_from(["plain", "positional_only", "default", "star", "kw_only"]),
                   max_size=5),
    passed=st.integers(min_value=0, max_value=6),
)  # fmt: skip
def test_a_call_that_skips_bind_is_exactly_one_bind_accepts(kinds, passed):
    """The fast path (``len(args) == arity``, no keywords) never admits a call bind()
    would refuse, and always admits the plain signature's one good call."""
    parameters, kind_of = [], inspect.Parameter
    order = {"positional_only": 0, "plain": 1, "default": 1, "star": 2, "kw_only": 3}
    for i, kind in enumerate(sorted(kinds, key=order.get)):
        if kind == "star" and any(p.kind == kind_of.VAR_POSITIONAL for p in parameters):
            continue
        if kind == "plain" and any(p.default is not p.empty for p in parameters):
            kind = "default"  # (no required positional after one with a default)
        parameters.append(
            inspect.Parameter(
                f"p{i}",
                {
                    "positional_only": kind_of.POSITIONAL_ONLY,
                    "plain": kind_of.POSITIONAL_OR_KEYWORD,
                    "default": kind_of.POSITIONAL_OR_KEYWORD,
                    "star": kind_of.VAR_POSITIONAL,
                    "kw_only": kind_of.KEYWORD_ONLY,
                }[kind],
                default=1 if kind in ("default", "kw_only") else inspect.Parameter.empty,
            )  # fmt: skip
        )
    signature = inspect.Signature(parameters)
    arity = positional_arity(signature)
    try:
        signature.bind(*range(passed))
        binds = True
    except TypeError:
        binds = False
    if arity is not None:
        assert (passed == arity) == binds
