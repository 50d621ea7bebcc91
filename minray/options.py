"""Checking ``@remote(...)`` and ``.options(...)`` arguments, with errors that say what to do.

Names and rules follow Ray's; an unknown or wrongly typed option fails at
decoration or ``.options()`` time, never later on a worker.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any

from .accelerators import ACCELERATOR_TYPE_PREFIX
from .head.placement import in_bundle
from .runtime.concurrency_groups import check_concurrency_groups
from .runtime.generator_streams import GeneratorCall
from .runtime.task_context import _task_context
from .runtime_env.validate import check as check_runtime_env
from .scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy

_NUMBER = (int, float)

#: options minray implements for tasks, and their defaults
TASK_DEFAULTS: dict[str, Any] = {
    "num_cpus": 1,
    "num_gpus": 0,
    "resources": None,
    "memory": None,
    "object_store_memory": None,
    "num_returns": 1,
    "max_retries": 3,
    "retry_exceptions": False,
    "name": None,
    "scheduling_strategy": None,
    "runtime_env": None,
    "accelerator_type": None,
    "_generator_backpressure_num_objects": None,
}

#: Ray options (of tasks and actors) that minray does not implement yet: refused clearly
_UNSUPPORTED_OPTIONS = {
    "placement_group",
    "placement_group_bundle_index",
    "placement_group_capture_child_tasks",
    "label_selector",
    "fallback_strategy",
    "enable_task_events",
    "_labels",
}

UNSUPPORTED_TASK_OPTIONS = _UNSUPPORTED_OPTIONS | {
    "max_calls",
    "_num_objects_per_yield",
}


def _check_quantity(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, _NUMBER):
        raise TypeError(
            f"The type of keyword '{key}' must be (<class 'int'>, <class 'float'>), "
            f"but received type {type(value)}"
        )
    if value < 0:
        raise ValueError(f"The quantity of resource {key} cannot be negative, got {value}.")


def _check_resources(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise TypeError(f"The type of keyword 'resources' must be dict, but received {type(value)}")
    for name, amount in value.items():
        if not isinstance(name, str):
            raise TypeError(f"resource names must be strings, got {name!r}")
        if name in ("CPU", "GPU"):
            raise ValueError(
                "Use the 'num_cpus' and 'num_gpus' keyword instead of 'CPU' and "
                f"'GPU' in 'resources' keyword (got resources={value!r})."
            )
        _check_quantity(f"resources[{name!r}]", amount)


def _check_num_returns(value: Any) -> None:
    if value in ("streaming", "dynamic"):  # generators: see object_ref_generator.py
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"The type of keyword 'num_returns' must be int, but received {type(value)}"
        )
    if value < 0:
        raise ValueError(f"num_returns must be a non-negative integer, got {value}.")


def _check_max_retries(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"The type of keyword 'max_retries' must be int, but received {type(value)}"
        )
    if value < -1:
        raise ValueError(f"max_retries must be -1 (retry forever), 0 or positive, got {value}.")


def _check_retry_exceptions(value: Any) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, (list, tuple)) and all(
        isinstance(e, type) and issubclass(e, BaseException) for e in value
    ):
        return
    raise TypeError(
        f"retry_exceptions must be a bool or a list/tuple of exception classes, got {value!r}."
    )


def _check_runtime_env(value: Any) -> None:
    check_runtime_env(value)


def _check_scheduling_strategy(value: Any) -> None:
    if isinstance(value, NodeAffinitySchedulingStrategy):
        return
    if isinstance(value, PlacementGroupSchedulingStrategy):
        index, count = value.placement_group_bundle_index, value.placement_group.bundle_count
        if not isinstance(index, int) or not -1 <= index < count:
            raise ValueError(
                f"placement_group_bundle_index {index!r} is out of range: the placement "
                f"group has {count} bundles (0 to {count - 1}), or -1 for any bundle."
            )
        return
    if value not in (None, "DEFAULT", "SPREAD"):
        raise ValueError(
            f"scheduling_strategy {value!r} is not valid; use 'DEFAULT', 'SPREAD', "
            "a PlacementGroupSchedulingStrategy or a NodeAffinitySchedulingStrategy "
            "(minray.util.scheduling_strategies)."
        )


def lease_strategy(options: dict):
    """How the node should place a task's lease: None (DEFAULT, and placement groups,
    which resources already pin), "SPREAD", or ("affinity", node id, soft)."""
    strategy = options.get("scheduling_strategy")
    if strategy == "SPREAD":
        return "SPREAD"
    if isinstance(strategy, NodeAffinitySchedulingStrategy):
        return ("affinity", strategy.node_id, bool(strategy.soft))
    return None


def _check_accelerator_type(value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(
            f"The type of keyword 'accelerator_type' must be str, but received {type(value)}"
        )


def _check_name(value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"The type of keyword 'name' must be str, but received {type(value)}")


def _check_backpressure(value: Any) -> None:
    if value is None:
        return
    _check_int("_generator_backpressure_num_objects", value, -1, "-1 (no limit) or positive")
    if value == 0:
        raise ValueError("_generator_backpressure_num_objects must be -1 (no limit) or positive.")


def generator_call(options: dict) -> GeneratorCall | None:
    """How a task or method with these options runs as a generator, or None (fixed returns)."""
    num_returns = options.get("num_returns")
    if num_returns not in ("streaming", "dynamic"):
        return None
    backpressure = options.get("_generator_backpressure_num_objects")
    dynamic = num_returns == "dynamic"
    return GeneratorCall(dynamic, -1 if backpressure is None or dynamic else backpressure)


_CHECKS = {
    "num_cpus": _check_quantity,
    "num_gpus": _check_quantity,
    "memory": lambda v: v is None or _check_quantity("memory", v),
    "object_store_memory": lambda v: v is None or _check_quantity("object_store_memory", v),
    "resources": _check_resources,
    "num_returns": _check_num_returns,
    "max_retries": _check_max_retries,
    "retry_exceptions": _check_retry_exceptions,
    "runtime_env": _check_runtime_env,
    "scheduling_strategy": _check_scheduling_strategy,
    "name": _check_name,
    "accelerator_type": _check_accelerator_type,
    "_generator_backpressure_num_objects": _check_backpressure,
}


_NONE_MEANS_DEFAULT = ("num_cpus", "num_gpus", "num_returns", "max_retries", "retry_exceptions")


def validate_task_options(options: dict) -> dict:
    """Check task options; return them with ``None`` replaced by defaults, or raise."""
    options = {
        key: TASK_DEFAULTS[key] if value is None and key in _NONE_MEANS_DEFAULT else value
        for key, value in options.items()
    }
    for key, value in options.items():
        if key in UNSUPPORTED_TASK_OPTIONS:
            raise ValueError(f"The option {key!r} is a Ray option minray does not support yet.")
        check = _CHECKS.get(key)
        if check is None:
            raise ValueError(
                f"Invalid option keyword {key} for remote functions. "
                f"Valid ones are {sorted(TASK_DEFAULTS)}."
            )
        if key in ("num_cpus", "num_gpus"):
            check(key, value)
        else:
            check(value)
    return options


#: options minray implements for actors, and their defaults (num_cpus None: see actor_resources)
ACTOR_DEFAULTS: dict[str, Any] = {
    "num_cpus": None,
    "num_gpus": None,
    "resources": None,
    "memory": None,
    "object_store_memory": None,
    "name": None,
    "namespace": None,
    "lifetime": None,
    "max_concurrency": None,
    "max_restarts": 0,
    "max_task_retries": 0,
    "max_pending_calls": -1,
    "get_if_exists": False,
    "scheduling_strategy": None,
    "runtime_env": None,
    "accelerator_type": None,
    "allow_out_of_order_execution": False,
    "concurrency_groups": None,
}

UNSUPPORTED_ACTOR_OPTIONS = _UNSUPPORTED_OPTIONS | {
    "enable_tensor_transport",
    "_actor_generator_backpressure_num_objects",
}


def _check_actor_name(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(f"The type of keyword 'name' must be str, but received {type(value)}")
    if value == "":
        raise ValueError("Actor name cannot be an empty string.")


def _check_int(key: str, value: Any, minimum: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"The type of keyword '{key}' must be int, but received {type(value)}")
    if value < minimum:
        raise ValueError(f"{key} must be {what}, got {value}.")


def _check_lifetime(value: Any) -> None:
    if value not in (None, "detached", "non_detached"):
        raise ValueError(
            "actor `lifetime` argument must be one of 'detached', 'non_detached' and 'None'."
        )


_ACTOR_CHECKS = {
    **_CHECKS,
    "name": _check_actor_name,
    "namespace": lambda v: v is None or _check_name_string("namespace", v),
    "lifetime": _check_lifetime,
    "max_concurrency": lambda v: (
        v is None
        or _check_int("max_concurrency", v, 1, "at least 1 (calls the actor may run at once)")
    ),
    "max_restarts": lambda v: _check_int("max_restarts", v, -1, "-1 (no limit), 0 or more"),
    "max_task_retries": lambda v: _check_int("max_task_retries", v, -1, "-1 (no limit), 0 or more"),
    "max_pending_calls": lambda v: _check_int("max_pending_calls", v, -1, "-1 or more"),
    "get_if_exists": lambda v: _check_bool("get_if_exists", v),
    "allow_out_of_order_execution": lambda v: _check_bool("allow_out_of_order_execution", v),
    "concurrency_groups": check_concurrency_groups,
}


def _check_name_string(key: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise TypeError(f"The keyword '{key}' must be a non-empty str, but received {value!r}")


def _check_bool(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"The type of keyword '{key}' must be bool, but received {type(value)}")


def validate_actor_options(options: dict) -> dict:
    """Check actor options (Ray's names and rules); returns them, or raises."""
    for key, value in options.items():
        if key in UNSUPPORTED_ACTOR_OPTIONS:
            raise ValueError(f"The option {key!r} is a Ray option minray does not support yet.")
        check = _ACTOR_CHECKS.get(key) if key in ACTOR_DEFAULTS else None
        if check is None:
            raise ValueError(
                f"Invalid option keyword {key} for actors. Valid ones are {sorted(ACTOR_DEFAULTS)}."
            )
        if key in ("num_cpus", "num_gpus"):
            if value is not None:
                check(key, value)
        else:
            check(value)
    if options.get("get_if_exists") and not options.get("name"):
        raise ValueError("The actor name must be specified to use `get_if_exists`.")
    return options


def actor_resources(options: dict) -> tuple[dict, dict]:
    """(what placing the actor needs, what it holds while it lives), as Ray decides them.

    With no num_cpus, num_gpus, resources or accelerator_type given, an actor needs
    1 CPU to be placed and holds no CPU while it runs. Once any of them is given,
    what it asks for is needed and held for its whole life, num_cpus defaulting to 1.
    ``memory`` alone does not count as given (as in Ray) but is always held.
    """
    given = any(
        options.get(key) is not None
        for key in ("num_cpus", "num_gpus", "resources", "accelerator_type")
    )
    if not given:
        held = task_resources({**options, "num_cpus": 0})
        return task_resources({**options, "num_cpus": 1}), held
    num_cpus = options.get("num_cpus")
    shape = task_resources({**options, "num_cpus": 1 if num_cpus is None else num_cpus})
    return shape, dict(shape)


def check_num_returns_zero(function, num_returns: int) -> None:
    """num_returns=0 on a function that returns a value would silently drop it."""
    if num_returns == 0 and returns_value(function):
        raise ValueError(
            f"{function.__qualname__} returns a value but has num_returns=0, so the value "
            "would be lost. Use num_returns=1 (the default), or remove the return statement."
        )


def returns_value(function) -> bool:
    """Whether the function's own body has a ``return <expr>`` (best effort, via its source)."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return False
    top = tree.body[0] if tree.body else None
    if not isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    stack = list(top.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                return True
        stack.extend(ast.iter_child_nodes(node))
    return False


def task_resources(options: dict) -> dict:
    """The resource shape a task asks the scheduler for."""
    shape = {"CPU": float(options.get("num_cpus", 1))}
    gpus = options.get("num_gpus") or 0
    if gpus:
        shape["GPU"] = float(gpus)
    if options.get("memory"):
        shape["memory"] = float(options["memory"])
    for name, amount in (options.get("resources") or {}).items():
        if amount:
            shape[name] = float(amount)
    if options.get("accelerator_type"):
        # as in Ray: a sliver of the node's accelerator_type:<TYPE> resource
        shape[ACCELERATOR_TYPE_PREFIX + options["accelerator_type"]] = 0.001
    return _in_placement_group(options, shape)


def placement_of(options: dict) -> list | None:
    """The placement group a task or actor is sent to run in, as it travels:
    ``[group id, bundles, capture_child_tasks]``, or None."""
    strategy = options.get("scheduling_strategy")
    if not isinstance(strategy, PlacementGroupSchedulingStrategy):
        return None
    group = strategy.placement_group
    return [
        group.id.binary(),
        group.bundle_specs,
        bool(strategy.placement_group_capture_child_tasks),
    ]


def may_inherit_placement(options: dict) -> bool:
    """Whether a call with these options runs in its caller's placement group when the
    caller captures child tasks (it names no scheduling strategy of its own)."""
    return options.get("scheduling_strategy") in (None, "DEFAULT")


def inherited_placement() -> list | None:
    """The placement group of the running task or actor, if it captures child tasks
    (``placement_group_capture_child_tasks=True``): its children run in it too."""
    context = _task_context.get()
    if context is None or not context.placement or not context.placement[2]:
        return None
    return context.placement


def own_env_vars(options: dict) -> dict | None:
    """The env_vars of the runtime_env in a task's or actor's options, or None."""
    return (options.get("runtime_env") or {}).get("env_vars") or None


def env_vars_for(own: dict | None, job_env_vars: dict) -> dict | None:
    """Environment variables for a new task or actor whose options set ``own``: those of
    the task or actor running this code (in a worker), else those of init's runtime_env
    (``job_env_vars``), with its own over them, as Ray merges an inherited runtime_env."""
    context = _task_context.get()
    inherited = context.env_vars if context is not None else job_env_vars
    if not own:
        return inherited or None
    return {**inherited, **own} if inherited else own


def in_inherited_bundle(shape: dict, placement: list) -> dict:
    """A child's resource shape, asked of any bundle of its parent's group."""
    return in_bundle(shape, placement[0].hex(), -1)


def _in_placement_group(options: dict, shape: dict) -> dict:
    """The shape, asked of a placement group's bundle when the strategy says so."""
    strategy = options.get("scheduling_strategy")
    if isinstance(strategy, PlacementGroupSchedulingStrategy):
        group = strategy.placement_group
        return in_bundle(shape, group.id.hex(), strategy.placement_group_bundle_index)
    return {k: v for k, v in shape.items() if v > 0}


#: the kinds of parameter positional_arity counts
_PLAIN = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def positional_arity(signature: inspect.Signature) -> int | None:
    """How many arguments every call passes by position, when that is all ``signature``
    takes (no defaults, ``*args``, ``**kwargs`` or keyword-only parameters); else None.
    A call with exactly that many positional arguments binds: it skips ``bind()``."""
    count = 0
    for parameter in signature.parameters.values():
        if parameter.kind not in _PLAIN or parameter.default is not parameter.empty:
            return None
        count += 1
    return count
