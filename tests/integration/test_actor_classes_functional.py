"""Actor classes themselves: their name inside methods, subclassing, decoration errors."""

from __future__ import annotations

import pytest

import minray
from minray.actor import ActorClassInheritanceException


class Base:
    BASE_LIMIT = 100

    @staticmethod
    def base_helper(x):
        return x * 2


@minray.remote
class Counter(Base):
    START = 10

    @staticmethod
    def step(x):
        return x + 1

    @classmethod
    def describe(cls):
        return cls.START, cls.BASE_LIMIT

    def __init__(self):
        self.n = Counter.START  # the name is the actor class, as in Ray

    def incr(self):
        self.n = Counter.step(self.n)
        return self.n

    def through_the_name(self):
        return Counter.START, Counter.BASE_LIMIT, Counter.base_helper(3), Counter.describe()


# --- the class's name inside its methods ------------------------------------------------------


def test_class_and_static_attributes_through_the_class_name_in_methods(cluster):
    counter = Counter.remote()
    assert minray.get(counter.incr.remote(), timeout=30) == 11
    assert minray.get(counter.through_the_name.remote(), timeout=30) == (10, 100, 6, (10, 100))


def test_a_class_defined_in_a_function_reaches_itself_through_its_name(cluster):
    @minray.remote
    class Local:
        LIMIT = 3

        def limit(self):
            return Local.LIMIT

    assert minray.get(Local.remote().limit.remote(), timeout=30) == 3


def test_class_attributes_through_the_actor_class_in_the_driver():
    assert Counter.START == 10
    assert Counter.step(1) == 2
    assert Counter.base_helper(2) == 4
    assert Counter.describe() == (10, 100)
    with pytest.raises(AttributeError, match="ActorClass\\(Counter\\).*no attribute 'MISSING'"):
        Counter.MISSING  # noqa: B018


# --- subclassing an actor class ---------------------------------------------------------------


@pytest.mark.parametrize("bases", ["(Counter)", "(Base, Counter)", "(Counter, Base)"])
def test_subclassing_an_actor_class_raises_ray_s_inheritance_error(bases):
    with pytest.raises(ActorClassInheritanceException) as info:
        exec(f"class Sub{bases}:\n    pass", {"Counter": Counter, "Base": Base})
    assert isinstance(info.value, TypeError)
    text = str(info.value)
    assert text.startswith("Attempted to define subclass 'Sub' of actor class 'Counter'.")
    assert "Inheriting from actor classes is not currently supported." in text
    assert "make the derived class an actor class (with @minray.remote)" in text


def test_subclassing_the_plain_base_and_decorating_it_works(cluster):
    @minray.remote
    class Derived(Base):
        def limit(self):
            return Derived.BASE_LIMIT + 1

    assert minray.get(Derived.remote().limit.remote(), timeout=30) == 101


# --- @minray.remote with invalid arguments: refused when decorating ---------------------------


class Plain:
    def get(self):
        return 1


def plain_function():
    return 1


class CallableObject:
    def __call__(self):
        return 1


@pytest.mark.parametrize(
    "decorate",
    [
        pytest.param(lambda: minray.remote(2), id="a-number"),
        pytest.param(lambda: minray.remote(2)(Plain), id="a-number-then-a-class"),
        pytest.param(lambda: minray.remote(Plain, 2), id="a-class-and-a-number"),
        pytest.param(lambda: minray.remote(Plain, num_cpus=1), id="a-class-and-an-option"),
        pytest.param(lambda: minray.remote(), id="empty-parentheses"),
    ],
)
def test_positional_arguments_besides_the_target_raise_assertion_error(decorate):
    with pytest.raises(AssertionError) as info:
        decorate()
    text = str(info.value)
    assert text.startswith("The @minray.remote decorator must be applied either with no")
    assert "'max_concurrency'" in text and "'num_returns'" in text  # lists task and actor options
    assert "It was given @minray.remote(" in text


@pytest.mark.parametrize(
    ("options", "target", "message"),
    [
        pytest.param({"bad": 1}, Plain, "Invalid option keyword bad for actors.", id="class"),
        pytest.param(
            {"num_returns": 2}, Plain, "Invalid option keyword num_returns for actors.", id="task"
        ),
        pytest.param(
            {"max_restarts": 1},
            plain_function,
            "Invalid option keyword max_restarts for remote functions.",
            id="actor-option-on-a-function",
        ),
        pytest.param(
            {"num_cpus": 1, "bad": 1},
            plain_function,
            "Invalid option keyword bad for remote functions.",
            id="function",
        ),
    ],
)
def test_unknown_keyword_options_raise_value_error_when_decorating(options, target, message):
    with pytest.raises(ValueError, match="^" + message.replace(".", "\\.") + " Valid ones are"):
        minray.remote(**options)(target)


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(len, id="builtin"),
        pytest.param(CallableObject(), id="callable-object"),
        pytest.param(CallableObject().__call__, id="bound-method"),
    ],
)
def test_decorating_a_callable_that_is_not_a_function_raises_type_error(target):
    with pytest.raises(TypeError, match="must be applied to either a function or a class"):
        minray.remote(target)
    with pytest.raises(TypeError, match="wrap it in a function defined with def"):
        minray.remote(num_cpus=1)(target)
    with pytest.raises(TypeError, match="It was applied to 5 \\(int\\)"):
        minray.remote(num_cpus=1)(5)
